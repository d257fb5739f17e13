"""The benchmark's scores: robust scatter, twin ranks, interval coverage, outliers and R².

Plain functions of arrays, shared by the tasks (`spectok.benchmarks.tasks`)
and the head comparison (`~spectok.benchmarks.compare_heads`).
"""

import numpy as np

__all__ = ["twin_ranks", "diagonal_ranks", "nmad"]


def _numbers(values, name):
    """``values`` as a float array; ValueError unless they are numbers (not text, bools or None)."""
    try:
        array = np.asarray(values)
    except ValueError:   # a ragged sequence
        raise ValueError(f"{name} must be an array of numbers, got a ragged sequence") from None
    except TypeError:   # Quantities with units, which numpy cannot make one array of
        raise ValueError(f"{name} must be an array of numbers, got "
                         f"{' '.join(repr(values).split()):.80}") from None
    if array.dtype.kind not in "iuf":   # '1' and True were read as numbers, None as NaN
        raise ValueError(f"{name} must be an array of numbers, got {array.dtype} values: "
                         f"{' '.join(repr(values).split()):.80}")
    return array.astype(float)


def nmad(values):
    """Normalised median absolute deviation, 1.4826 · median ``|x - median x|``.

    A robust estimate of the standard deviation: that of a normal
    distribution, unmoved by a few outliers.

    Parameters
    ----------
    values : array-like
        The values (e.g. residuals), of any shape: all are pooled.

    Returns
    -------
    float
        NaN where any value is NaN.

    Raises
    ------
    ValueError
        If ``values`` is empty or holds something other than numbers.

    Examples
    --------
    >>> from spectok.benchmarks import nmad
    >>> round(nmad([0.0, 1.0, 2.0, 3.0, 100.0]), 3)
    1.483
    """
    values = _numbers(values, "values")
    if values.size == 0:   # was NaN, with numpy's 'Mean of empty slice' warnings
        raise ValueError("values is empty: the NMAD of no values is undefined")
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def twin_ranks(a, b):
    """Rank of each object's twin among all candidates, by cosine similarity.

    Row ``i`` of ``a`` and of ``b`` are one object seen two ways; for each
    row of ``a`` every row of ``b`` is a candidate, and the rank of the true
    twin is 1 + the number of other candidates at least as similar (so a
    method that gives every object one embedding ranks each twin last, not
    first). Rows of ``b``
    beyond those of ``a`` are further candidates, objects seen only the
    second way.

    Parameters
    ----------
    a : array-like, shape (n, d)
    b : array-like, shape (m, d), m ≥ n

    Returns
    -------
    `~numpy.ndarray` of int, shape (n,)

    Raises
    ------
    ValueError
        If ``a`` and ``b`` are not 2-D arrays of numbers with as many
        features (at least one), ``a`` has no rows, ``b`` has fewer rows than
        ``a``, or either holds NaN or infinity.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.benchmarks import twin_ranks
    >>> a = np.eye(3)
    >>> twin_ranks(a, a).tolist(), twin_ranks(a, a[[1, 0, 2]]).tolist()
    ([1, 1, 1], [3, 3, 1])
    >>> twin_ranks(a[:2], [[1, 0, 0], [0, 1, 0], [0.1, 1, 0]]).tolist()  # one more candidate
    [1, 1]
    >>> twin_ranks(np.ones((3, 2)), np.ones((3, 2))).tolist()  # nothing told apart
    [3, 3, 3]
    """
    a = _numbers(a, "a")
    b = _numbers(b, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise ValueError(f"a and b must be (objects, features) arrays with as many features, "
                         f"at least one; got shapes {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("a has no rows: there is no twin to rank")
    for name, x in (("a", a), ("b", b)):
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():   # was 'score holds NaN', a score the caller never gave
            raise ValueError(f"{name} holds NaN or infinity in {int(bad.sum())} rows (the first "
                             f"is row {int(np.flatnonzero(bad)[0])}); they cannot be ranked")
    if len(b) < len(a):
        raise ValueError(f"b has {len(b)} rows, fewer than the {len(a)} objects of a: row i "
                         f"of each is one object, and extra rows of b are more candidates")
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-30)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
    return diagonal_ranks(a @ b.T)


def diagonal_ranks(score):
    """Rank of each row's diagonal entry among the row, highest score first.

    ``score[i, j]`` scores candidate ``j`` for object ``i``, whose twin is
    candidate ``i``; its rank is 1 + the number of other candidates scored
    at least as high (ties count against the twin, so a score that tells
    no candidate from another does not rank any twin first). Columns beyond
    the rows are candidates that are no object's twin. Infinite scores are
    allowed (``-inf``: never a match; a twin scored ``-inf`` ranks below
    every other candidate, ``-inf`` ones included).

    Parameters
    ----------
    score : array-like, shape (n, m), m ≥ n

    Returns
    -------
    `~numpy.ndarray` of int, shape (n,)

    Raises
    ------
    ValueError
        If ``score`` is not a 2-D array of numbers, has no rows, has fewer
        columns than rows or holds NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.benchmarks import diagonal_ranks
    >>> diagonal_ranks(np.array([[0.9, 0.1], [0.8, 0.3]])).tolist()
    [1, 2]
    >>> diagonal_ranks(np.array([[0.9, 0.1, 0.95], [0.8, 0.3, 0.1]])).tolist()
    [2, 2]
    """
    score = _numbers(score, "score")
    if score.ndim != 2 or score.shape[0] > score.shape[1]:
        raise ValueError(f"score must be objects by candidates, each twin on the diagonal "
                         f"and at least as many candidates as objects; got shape {score.shape}")
    if len(score) == 0:
        raise ValueError("score has no rows: there is no twin to rank")
    if np.isnan(score).any():
        raise ValueError(f"score holds NaN in {int(np.isnan(score).any(axis=1).sum())} rows; "
                         "a NaN cannot be ranked")
    twin = score[np.arange(len(score)), np.arange(len(score))]
    return np.sum(score >= twin[:, None], axis=1)   # the twin itself counts as the 1


def _coverage(truth, lower, upper):
    """Fraction of ``truth`` within [``lower``, ``upper``] (an interval's coverage)."""
    return float(np.mean((truth >= lower) & (truth <= upper)))


def _outliers(dz, bound):
    """Fraction of |Δz|/(1+z) above ``bound``; a failed fit (NaN) counts as an outlier."""
    return float(np.mean(~(np.abs(dz) <= bound)))


def _r2(truth, predicted):
    """R² over the finite predictions (failed fits are counted by `_outliers`)."""
    from sklearn.metrics import r2_score

    ok = np.isfinite(predicted)
    return float(r2_score(truth[ok], predicted[ok]))
