"""Tests of the benchmark's scores (`spectok.benchmarks.metrics`)."""

import numpy as np
import pytest

from spectok.benchmarks import diagonal_ranks, nmad, twin_ranks


def test_twin_ranks_and_nmad():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 8))
    assert np.all(twin_ranks(a, a) == 1)
    assert np.all(twin_ranks(a, 3 * a + 1e-3 * rng.normal(size=a.shape)) == 1)  # scale-free
    shuffled = twin_ranks(a, a[::-1])
    assert shuffled.min() >= 1 and shuffled.max() <= 20 and np.median(shuffled) > 1
    assert nmad(np.r_[np.zeros(10), 100.0]) == 0.0
    assert diagonal_ranks(-np.abs(a[:, :1] - a[:, :1].T)).tolist() == [1] * 20
    assert diagonal_ranks([[1, 1, 2], [0, 1, 0], [3, 3, 3]]).tolist() == [2, 1, 1]  # ties count
    assert diagonal_ranks([[0.0, -np.inf], [-np.inf, 0.0]]).tolist() == [1, 1]
    with pytest.raises(ValueError, match="at least as many candidates as objects"):
        diagonal_ranks(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN in 1 rows"):
        diagonal_ranks([[1.0, np.nan], [0.0, 1.0]])
    with pytest.raises(ValueError, match="b has 5 rows, fewer than the 20 objects of a"):
        twin_ranks(a, a[:5])
    with pytest.raises(ValueError, match="as many features"):
        twin_ranks(a, a[:, :4])
    # candidates beyond the objects: seen only the second way, they can only push a twin down
    noisy = a[:5] + 0.1 * rng.normal(size=(5, 8))
    assert twin_ranks(a[:5], np.vstack([noisy, a[5:]])).tolist() == [1] * 5
    assert twin_ranks(a[:5], np.vstack([noisy, a[:5]])).tolist() == [2] * 5
    assert diagonal_ranks([[1, 0, 1], [0, 1, 2]]).tolist() == [1, 2]
