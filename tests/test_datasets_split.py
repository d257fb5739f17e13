"""Group-aware train/test splits."""

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from spectok.datasets import train_test_split_by


@pytest.fixture
def labels():
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 40, size=200)
    return Table({"id": [str(i) for i in range(200)], "source_key": groups,
                  "name": [f"src-{g}" for g in groups]})


@pytest.mark.parametrize("key", ["source_key", "name"])
def test_groups_never_straddle(labels, key):
    train, test = train_test_split_by(labels, key, test_size=0.25, seed=0)
    assert train.dtype.kind == "i" and test.dtype.kind == "i"
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert not set(labels[key][train]) & set(labels[key][test])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(200))
    n_groups = len(set(labels[key]))
    assert len(set(labels[key][test])) == int(np.ceil(0.25 * n_groups))


def test_deterministic_given_seed(labels):
    a = train_test_split_by(labels, "source_key", seed=7)
    b = train_test_split_by(labels, "source_key", seed=7)
    c = train_test_split_by(labels, "source_key", seed=8)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_integer_test_size_counts_groups(labels):
    _, test = train_test_split_by(labels, "source_key", test_size=3)
    assert len(set(labels["source_key"][test])) == 3


def test_plain_mapping_works():
    train, test = train_test_split_by({"g": ["a", "a", "b", "c"]}, "g", test_size=1, seed=0)
    assert len(train) + len(test) == 4


def test_missing_key_names_columns(labels):
    with pytest.raises(KeyError, match="source_id.*source_key"):
        train_test_split_by(labels, "source_id")


def test_bad_inputs(labels):
    masked = Table({"g": MaskedColumn([1, 2, 3], mask=[False, True, False])})
    with pytest.raises(ValueError, match="1 masked"):
        train_test_split_by(masked, "g")
    with pytest.raises(ValueError, match="NaN"):
        train_test_split_by(Table({"g": [1.0, np.nan, 2.0]}), "g")
    for missing in (None, float("nan")):  # an object column took them as the group "None"/"nan"
        with pytest.raises(ValueError, match=r"column 'g' has 1 missing \(None or NaN\) values"):
            train_test_split_by({"g": np.array(["a", missing, "b", "a"], dtype=object)}, "g")
    with pytest.raises(ValueError, match="at least two groups"):
        train_test_split_by(Table({"g": [1, 1, 1]}), "g")
    with pytest.raises(ValueError, match="fraction"):
        train_test_split_by(labels, "source_key", test_size=1.5)
    with pytest.raises(ValueError, match="count"):
        train_test_split_by(labels, "source_key", test_size=1000)


@pytest.mark.remote_data
def test_spex_split_by_source():
    from spectok.datasets import load_spex

    labels = load_spex().labels
    train, test = train_test_split_by(labels, "source_key", test_size=0.2, seed=0)
    assert not set(labels["source_key"][train]) & set(labels["source_key"][test])
    assert 0.15 < len(test) / len(labels) < 0.25


def test_benchmark_split_is_by_group_and_rejects_unknown_names():
    from astropy.table import Table

    from spectok.datasets import benchmark_split

    labels = Table({"id": [str(i) for i in range(40)], "source_key": [i // 2 for i in range(40)]})
    train, test = benchmark_split("spex", labels)
    assert not set(labels["source_key"][train]) & set(labels["source_key"][test])
    assert sorted([*train, *test]) == list(range(40))
    with pytest.raises(KeyError, match="no benchmark split 'apogee'"):
        benchmark_split("apogee", labels)
    with pytest.raises(KeyError, match=r"no benchmark split \['spex'\]"):
        benchmark_split(["spex"], labels)
