"""What the probes share: input validation, standardisation and persistence hooks."""

import numpy as np

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - scikit-learn 1.4 and 1.5
    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

__all__ = []


def validate_data(estimator, *args, **kwargs):
    """`sklearn.utils.validation.validate_data` on any supported scikit-learn."""
    return _validate_data(estimator, *args, **kwargs)


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
