"""Conformal calibration: turn held-out scores into intervals and prediction sets.

A probe keeps a calibration fraction of its training set out of the fit,
scores those samples (absolute residual for a regressor, one minus the
probability of the true class for a classifier) and keeps the sorted
scores. For a new sample the ⌈(n + 1) α⌉-th smallest of the n scores is
the threshold that covers the truth with probability at least α, whatever
the distribution, as long as the new sample is exchangeable with the
calibration ones (Vovk et al. 2005; Lei et al. 2018, JASA 113, 1094).

A probe can instead fit the head on all samples and score every sample out
of fold, with the head refitted on the other folds (``calibration="cv"``,
the "CV" method of Barber et al. 2021, Ann. Stat. 49, 486). That method has
no finite-sample guarantee: its coverage is measured, not promised (the
benchmark reports it).
"""

import math

import numpy as np

from .._checks import as_number

__all__ = ["conformal_quantile", "calibration_split", "calibration_folds", "CALIBRATIONS",
           "NotCalibratedError"]

#: How a probe calibrates: ``"split"`` holds out a fraction of the training set
#: from the fit; ``"cv"`` fits on every sample and scores each one with the head
#: refitted without its fold (out-of-fold calibration).
CALIBRATIONS = ("split", "cv")


class NotCalibratedError(ValueError):
    """A probe was fitted without a calibration set, so it has no intervals."""


def _check_alpha(alpha):
    alpha = as_number(alpha, f"alpha is the coverage probability and must be a number in "
                             f"(0, 1), got {alpha!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha is the coverage probability and must be in (0, 1), got {alpha}")
    return alpha


def _check_calibration(calibration):
    """Raise ValueError unless ``calibration`` is one of `CALIBRATIONS`."""
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")


def _check_fraction(fraction):
    fraction = as_number(fraction, f"calibration_fraction must be a number in [0, 1), got "
                                   f"{fraction!r}")
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"calibration_fraction must be in [0, 1), got {fraction}")
    return fraction


def conformal_quantile(scores, alpha):
    """The split-conformal threshold for coverage ``alpha``.

    Parameters
    ----------
    scores : array-like, shape (n,) or (n, k)
        Non-conformity scores of the calibration samples (one column per
        output, each thresholded on its own).
    alpha : float
        Coverage probability in (0, 1), e.g. 0.68 or 0.95.

    Returns
    -------
    threshold : float or `~numpy.ndarray` of shape (k,)
        The ⌈(n + 1) α⌉-th smallest score; infinite when ``n`` is too small
        for that rank to exist (``(n + 1) α > n``).

    Raises
    ------
    ValueError
        If ``alpha`` is not a number in (0, 1).
    NotCalibratedError
        If there are no scores.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.probes import conformal_quantile
    >>> conformal_quantile(np.arange(1, 100), 0.9)  # the 90th of 99 scores
    np.float64(90.0)
    >>> conformal_quantile([1.0, 2.0], 0.95)
    np.float64(inf)
    """
    alpha = _check_alpha(alpha)
    scores = np.sort(np.asarray(scores, dtype=float), axis=0)
    n = scores.shape[0]
    if n == 0:
        raise NotCalibratedError("no calibration scores: the probe was fitted with "
                                 "calibration_fraction=0 or on too few samples to hold any out")
    rank = max(math.ceil((n + 1) * alpha - 1e-9), 1)   # a tiny alpha: the smallest score
    if rank > n:
        return np.full(scores.shape[1:], np.inf)[()] if scores.ndim > 1 else np.float64(np.inf)
    return scores[rank - 1]


def calibration_folds(n_samples, fraction, random_state, groups=None):
    """Held-out parts of an out-of-fold calibration.

    Every sample is held out once, in ``max(2, round(1 / fraction))`` parts
    of about equal size, but no more than ``n_samples // 2`` parts, so that
    each has at least 2 samples; each part is scored by the head refitted on
    the others. No parts (an empty list) for ``fraction=0`` or fewer than 4
    samples.

    Parameters
    ----------
    n_samples : int
        Size of the training set.
    fraction : float
        Share of the samples in each part, in [0, 1); 0 gives no parts.
    random_state : `numpy.random.RandomState`
        Source of the permutation.
    groups : array-like of int, optional
        Class of each sample: each class is then dealt out over the parts
        in turn (stratified), so every part holds its share of each class.

    Returns
    -------
    list of `~numpy.ndarray` of int
        Sorted indices of each part; together they cover every sample once.

    Raises
    ------
    ValueError
        If ``fraction`` is not a number in [0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.probes import calibration_folds
    >>> [len(part) for part in calibration_folds(10, 0.2, np.random.RandomState(0))]
    [2, 2, 2, 2, 2]
    """
    fraction = _check_fraction(fraction)
    if fraction == 0.0:
        return []
    n_parts = min(max(2, round(1.0 / fraction)), n_samples // 2)
    if n_parts < 2:
        return []
    if groups is None:
        return [np.sort(part) for part in np.array_split(random_state.permutation(n_samples),
                                                          n_parts)]
    groups = np.asarray(groups)
    part_of = np.empty(n_samples, dtype=int)
    start = 0   # each class continues the deal where the last one stopped
    for value in np.unique(groups):
        members = random_state.permutation(np.flatnonzero(groups == value))
        part_of[members] = (start + np.arange(len(members))) % n_parts
        start += len(members)
    return [np.flatnonzero(part_of == k) for k in range(n_parts)]


def calibration_split(n_samples, fraction, random_state, groups=None):
    """Indices of the fitting and calibration parts of a training set.

    Parameters
    ----------
    n_samples : int
        Size of the training set.
    fraction : float
        Share held out for calibration, in [0, 1). Nothing is held out when
        that would leave fewer than one sample on either side.
    random_state : `numpy.random.RandomState`
        Source of the permutation.
    groups : array-like of int, optional
        Class of each sample: the split is then made per class (stratified),
        and a class with one member stays on the fitting side.

    Returns
    -------
    fit_indices, calibration_indices : `~numpy.ndarray` of int
        Sorted; together they cover every sample once.

    Raises
    ------
    ValueError
        If ``fraction`` is not a number in [0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.probes import calibration_split
    >>> fit, cal = calibration_split(10, 0.2, np.random.RandomState(0))
    >>> len(fit), len(cal)
    (8, 2)
    """
    fraction = _check_fraction(fraction)
    if groups is None:
        groups = np.zeros(n_samples, dtype=int)
    groups = np.asarray(groups)
    calibration = []
    for value in np.unique(groups):
        members = np.flatnonzero(groups == value)
        n_cal = int(math.floor(fraction * len(members) + 0.5)) if len(members) > 1 else 0
        n_cal = min(n_cal, len(members) - 1)
        if n_cal > 0:
            calibration.append(random_state.permutation(members)[:n_cal])
    calibration = np.sort(np.concatenate(calibration)) if calibration else np.empty(0, int)
    fit = np.setdiff1d(np.arange(n_samples), calibration)
    return fit.astype(np.intp), calibration.astype(np.intp)
