"""What the probes share: parameters, calibration, input checks, standardisation, persistence."""

import functools
from collections.abc import Mapping

import astropy.units as u
import numpy as np
from sklearn.utils import check_random_state

from .._checks import check_bool

from .conformal import (NotCalibratedError, _check_calibration, calibration_folds,
                        calibration_split)
from .heads import HEADS

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - scikit-learn 1.4 and 1.5
    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

__all__ = []


@functools.cache
def _spectral_types():
    """The types of spectra and of spectok's tokens: what `SpectrumEmbedder` takes."""
    from specutils import Spectrum, SpectrumList

    from ..datasets import SpectrumDataset
    from ..tokens import SpectralTokens, TokenBatch

    return TokenBatch, SpectralTokens, Spectrum, SpectrumList, SpectrumDataset


def _spectral_kind(item):
    """What ``item`` is, if it is a spectrum, spectra or spectok's tokens; else `None`."""
    if isinstance(item, _spectral_types()):
        return type(item).__name__
    if (isinstance(item, tuple) and len(item) in (2, 3)
            and all(isinstance(part, u.Quantity) for part in item[:2])):
        return "(wavelength, flux) tuple"
    return None


def _refuse_spectra(estimator, X):
    """Raise TypeError if ``X`` is spectra or tokens (or a list of them), not features."""
    kind = _spectral_kind(X)
    if kind is not None:
        what = f"a {kind}"
    else:
        if isinstance(X, np.ndarray) and X.dtype == object:
            container, items = "an array", X.flat
        elif isinstance(X, (list, tuple)):
            container, items = f"a {type(X).__name__}", X
        else:
            return
        kind = next(filter(None, map(_spectral_kind, items)), None)
        if kind is None:
            return
        what = f"{container} of {kind}{'s' if kind.endswith('tuple') else ''}"
    name = type(estimator).__name__
    raise TypeError(
        f"{name} takes features as a 2-D array, not {what}: pass the embeddings, "
        f"batch.embedding of batch = spectok.encode(spectra), or, to fit and predict on "
        f"spectra, put a SpectrumEmbedder before the probe: "
        f"make_pipeline(SpectrumEmbedder(), {name}())")


def validate_data(estimator, X, *args, **kwargs):
    """`sklearn.utils.validation.validate_data` on any supported scikit-learn.

    Spectra and spectok's tokens (a `~spectok.TokenBatch`, `~spectok.SpectralTokens`,
    spectrum, or a list of these) are refused with a TypeError that says what to
    pass instead.
    """
    _refuse_spectra(estimator, X)
    return _validate_data(estimator, X, *args, **kwargs)


def validated_input(estimator, X):
    """``X`` checked against a fitted estimator (feature count, dtype float64)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    return validate_data(estimator, X, reset=False, dtype=np.float64)


def standardizer(standardize):
    """A `~sklearn.preprocessing.StandardScaler` that is a no-op when ``standardize`` is False."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler(with_mean=bool(standardize), with_std=bool(standardize))


class _PersistenceMixin:
    """``probe.save(path)`` and ``Probe.load(path)``: safetensors + JSON, never pickle."""

    def save(self, path):
        """Write the fitted probe to ``path`` (a safetensors file; see `save_probe`).

        Parameters
        ----------
        path : str or `~pathlib.Path`

        Returns
        -------
        `~pathlib.Path`
            The path written.
        """
        from .persistence import save_probe

        return save_probe(self, path)

    @classmethod
    def load(cls, path):
        """Read a probe written by `save`; no code from the file is ever run.

        Parameters
        ----------
        path : str or `~pathlib.Path`

        Returns
        -------
        probe
            An instance of this class.

        Raises
        ------
        spectok.probes.ProbeFileError
            Not a probe file, a type outside the trusted list, or a probe of
            another class.
        """
        from .persistence import ProbeFileError, load_probe

        probe = load_probe(path)
        if not isinstance(probe, cls):
            raise ProbeFileError(f"{path} holds a {type(probe).__name__}, not a {cls.__name__}")
        return probe


class _ConformalProbe(_PersistenceMixin):
    """Parameters, head check and conformal calibration shared by every probe.

    The probes put this before their scikit-learn mixin and
    `~sklearn.base.BaseEstimator`; their docstrings describe the parameters.
    """

    def __init__(self, head="ridge", head_params=None, standardize=True,
                 calibration_fraction=0.2, random_state=0, calibration="split"):
        self.head = head
        self.head_params = head_params
        self.standardize = standardize
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state
        self.calibration = calibration

    def _check_head(self):
        """Raise ValueError unless ``head`` is one of `HEADS` or ``"auto"``, ``head_params``
        a dict or None and ``standardize`` a bool."""
        if self.head not in (*HEADS, "auto"):
            raise ValueError(f"head must be one of {(*HEADS, 'auto')}, got {self.head!r}")
        if self.head_params is not None and not isinstance(self.head_params, Mapping):
            raise ValueError(f"head_params must be a dict of the head's parameters or None, "
                             f"got {self.head_params!r}")
        check_bool(self.standardize, "standardize")

    def _calibration_parts(self, n_samples, groups=None):
        """The random state and the samples that fit the head and calibrate it.

        Parameters
        ----------
        n_samples : int
        groups : array-like of int, optional
            Class of each sample, to stratify by.

        Returns
        -------
        rng : `numpy.random.RandomState`
            From ``random_state``, after drawing the parts.
        fit_indices, calibration_indices : `~numpy.ndarray` of int
            With ``calibration="split"``, `calibration_split`; with ``"cv"``,
            every sample and none.
        folds : list of `~numpy.ndarray` of int
            With ``calibration="cv"``, the out-of-fold parts (`calibration_folds`);
            empty with ``"split"``.
        """
        _check_calibration(self.calibration)
        rng = check_random_state(self.random_state)
        if self.calibration == "split":
            fit_idx, cal_idx = calibration_split(n_samples, self.calibration_fraction, rng,
                                                 groups=groups)
            return rng, fit_idx, cal_idx, []
        folds = calibration_folds(n_samples, self.calibration_fraction, rng, groups=groups)
        return rng, np.arange(n_samples), np.empty(0, dtype=np.intp), folds

    def _require_calibration(self, too_few, product):
        """Raise `NotCalibratedError` if the probe was fitted without a calibration set.

        ``too_few`` says what was too small (``"too few samples"``), ``product``
        what calibration gives (``"intervals"``).
        """
        if self.n_calibration_ == 0:
            minimum = " (calibration='cv' needs at least 4)" if self.calibration == "cv" else ""
            raise NotCalibratedError(
                f"{type(self).__name__} was fitted without a calibration set "
                f"(calibration_fraction={self.calibration_fraction}, or {too_few}{minimum}); "
                f"refit with calibration_fraction > 0 to get {product}")
