"""Train/test splits that keep groups (a source, a galaxy, a star) on one side."""

import numpy as np

from .._checks import is_integer

__all__ = ["train_test_split_by", "benchmark_split", "BENCHMARK_SPLITS"]


def train_test_split_by(labels, key, test_size=0.25, seed=0):
    """Split rows into train and test so that no value of ``key`` is on both sides.

    Rows sharing a value of ``key`` (several spectra of one SpeX source, two
    spaxels of one MaNGA galaxy) form a group, and whole groups are drawn
    into the test set with `sklearn.model_selection.GroupShuffleSplit`. The
    split depends only on the column values and ``seed``.

    Parameters
    ----------
    labels : `~astropy.table.Table`, mapping or `pandas.DataFrame`
        Anything indexable by column name; ``labels[key]`` gives one value
        per row.
    key : str
        Column holding the group of each row, e.g. ``"source_key"``.
    test_size : float or int, optional
        Fraction of the *groups* (float in (0, 1)) or number of groups
        (int) put in the test set. Default 0.25.
    seed : int, optional
        Random seed, from 0 to 2**32 - 1; the same seed gives the same split.

    Returns
    -------
    train_indices, test_indices : `~numpy.ndarray` of int
        Sorted row indices; together they cover every row exactly once.

    Raises
    ------
    TypeError
        If ``labels`` is neither a table nor a dict of columns.
    KeyError
        If ``labels`` has no column ``key``.
    ValueError
        If ``key`` has missing (masked, NaN or None) values, if there are fewer
        than two groups, if ``test_size`` is out of range or not a number (a
        bool is refused), or if ``seed`` is not an integer from 0 to 2**32 - 1.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from spectok.datasets import train_test_split_by
    >>> t = Table({"id": list("abcdef"), "source": [1, 1, 2, 3, 3, 4]})
    >>> train, test = train_test_split_by(t, "source", test_size=0.5, seed=1)
    >>> sorted(set(t["source"][train]) & set(t["source"][test]))
    []
    >>> len(train) + len(test)
    6
    """
    from sklearn.model_selection import GroupShuffleSplit

    # None drew a new split each call, True was 1; others failed inside sklearn
    if not is_integer(seed) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer from 0 to 2**32 - 1, got {seed!r}")
    names = getattr(labels, "colnames", None)
    if names is None:
        if not hasattr(labels, "keys"):   # it said "no column 'id'; available columns: []"
            raise TypeError(f"labels must be a Table or a dict of columns, got "
                            f"{type(labels).__name__}")
        names = list(labels.keys())
    if key not in names:
        raise KeyError(f"no column {key!r} to split by; available columns: {list(names)}")
    column = labels[key]
    if np.ma.isMaskedArray(column):
        n_masked = int(np.ma.getmaskarray(column).sum())
        if n_masked:
            raise ValueError(f"column {key!r} has {n_masked} masked values; "
                             "fill or drop those rows first")
        values = np.asarray(column.data)
    else:
        values = np.asarray(column)
    if values.ndim != 1:
        raise ValueError(f"column {key!r} must be one value per row, got shape {values.shape}")
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise ValueError(f"column {key!r} has {int(np.isnan(values).sum())} NaN values; "
                         "fill or drop those rows first")
    if values.dtype.kind == "O":
        missing = sum(value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))
                      for value in values)
        if missing:
            raise ValueError(f"column {key!r} has {missing} missing (None or NaN) values; "
                             "fill or drop those rows first")
        values = values.astype(str)
    _, groups = np.unique(values, return_inverse=True)
    n_groups = int(groups.max()) + 1 if groups.size else 0
    if n_groups < 2:
        raise ValueError(f"column {key!r} has {n_groups} distinct value(s); "
                         "need at least two groups to split")
    if isinstance(test_size, (float, np.floating)):
        if not 0 < test_size < 1:
            raise ValueError(f"test_size as a fraction must be in (0, 1), got {test_size}")
    elif is_integer(test_size):  # True failed inside sklearn
        if not 1 <= test_size < n_groups:
            raise ValueError(f"test_size as a count must be in [1, {n_groups - 1}], "
                             f"got {test_size}")
    else:
        raise ValueError(f"test_size must be a float or an int, got {test_size!r}")
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(groups)), groups=groups))
    return np.sort(train).astype(np.intp), np.sort(test).astype(np.intp)


#: The group column and test fraction of each benchmark split. Pretraining uses
#: only the training side, so the benchmark's test objects are never seen.
BENCHMARK_SPLITS = {
    "miles": ("name", 0.25),
    "spex": ("source_key", 0.25),
}


def benchmark_split(name, labels, seed=0):
    """The standard train/test split of a benchmark dataset (by star, by source).

    Parameters
    ----------
    name : str
        A key of `BENCHMARK_SPLITS` (``"miles"``: by star name; ``"spex"``: by
        SpeX source).
    labels : `~astropy.table.Table`
        The dataset's labels.
    seed : int, optional
        The benchmark uses 0.

    Returns
    -------
    train_indices, test_indices : `~numpy.ndarray` of int

    Raises
    ------
    KeyError
        An unknown benchmark name (or one that is not a string).
    ValueError
        As for `train_test_split_by` (a ``seed`` that is not an integer
        from 0 to 2**32 - 1, a labels column with missing values).

    Examples
    --------
    >>> from astropy.table import Table
    >>> from spectok.datasets import benchmark_split
    >>> labels = Table({"id": ["a", "b", "c", "d"], "name": ["x", "x", "y", "z"]})
    >>> train, test = benchmark_split("miles", labels)
    >>> len(train) + len(test)
    4
    """
    if not isinstance(name, str) or name not in BENCHMARK_SPLITS:
        raise KeyError(f"no benchmark split {name!r}; known: {sorted(BENCHMARK_SPLITS)}")
    key, test_size = BENCHMARK_SPLITS[name]
    return train_test_split_by(labels, key, test_size=test_size, seed=seed)
