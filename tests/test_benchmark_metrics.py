"""Tests of the benchmark's scores (`spectok.benchmarks.metrics`)."""

import astropy.units as u
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
    # ties count against the twin (they went to it, so one embedding for every object had
    # ranked every twin first)
    assert diagonal_ranks([[1, 1, 2], [0, 1, 0], [3, 3, 3]]).tolist() == [3, 1, 3]
    assert twin_ranks(np.ones((4, 8)), np.ones((4, 8))).tolist() == [4] * 4
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
    assert diagonal_ranks([[1, 0, 1], [0, 1, 2]]).tolist() == [2, 2]


_EYE = np.eye(3)


@pytest.mark.parametrize("function, arguments, message", [
    # each was taken before: NaN (with numpy's warnings), a string or a bool read as a number,
    # no ranks at all, every rank 1, or an error about a score the caller never gave
    (nmad, ([],), "values is empty"),
    (nmad, (None,), "values must be an array of numbers, got object values: None"),
    (nmad, (["1", "2"],), "values must be an array of numbers"),
    (nmad, ([True, False, True],), "values must be an array of numbers, got bool values"),
    (nmad, ([[1.0, 2.0], [3.0]],), "values must be an array of numbers, got a ragged sequence"),
    (nmad, ([1 * u.K, 2 * u.K],), "values must be an array of numbers"),   # astropy's TypeError
    (twin_ranks, (np.zeros((0, 3)), np.zeros((0, 3))), "a has no rows"),
    (twin_ranks, (np.zeros((3, 0)), np.zeros((3, 0))), "as many features, at least one"),
    (twin_ranks, (np.where(_EYE == 1, np.nan, 0.0), _EYE), r"a holds NaN or infinity in 3 rows"),
    (twin_ranks, (_EYE, np.vstack([_EYE, [np.inf, 0, 0]])),
     r"b holds NaN or infinity in 1 rows \(the first is row 3\)"),
    (twin_ranks, ("abc", "abc"), "a must be an array of numbers"),
    (diagonal_ranks, (np.zeros((0, 3)),), "score has no rows"),
    (diagonal_ranks, ([[True, False], [False, True]],), "score must be an array of numbers"),
])
def test_bad_metric_input_is_refused(function, arguments, message):
    with pytest.raises(ValueError, match=message):
        function(*arguments)
