"""Regression probes: redshift and stellar parameters, with conformal intervals."""

from collections.abc import Mapping, Set
from functools import partial

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from .._checks import check_bool
from ._base import _ConformalProbe, standardizer, validate_data, validated_input
from .conformal import conformal_quantile
from .heads import build_head, fit_head, predict_in_blocks, refit_head

__all__ = ["RedshiftProbe", "StellarParameterProbe", "TARGET_UNITS"]

#: Units (astropy unit strings) of the targets `StellarParameterProbe` knows by name,
#: in any case (``"Teff"`` is ``"teff"``). Other names are accepted and get no unit.
TARGET_UNITS = {
    "teff": "K",
    "logg": "dex(cm / s2)",
    "feh": "dex",
    "mh": "dex",
    "alpha_fe": "dex",
    "spt": "",
    "z": "",
}

# Below this, a Teff cannot be in K: the coldest known brown dwarfs are about 250 K,
# while log10 Teff is below 6 for every star.
_MIN_TEFF_K = 100.0


def _unit_of(name):
    """The unit string of target ``name``: `TARGET_UNITS`, matched ignoring case; ``""`` if none."""
    return TARGET_UNITS.get(name.lower(), "")


def _is_teff(name):
    return name.lower() == "teff"


def _plain_targets(y, names):
    """``y`` as plain numbers in the targets' units (`TARGET_UNITS`).

    A Quantity (one column per target) or a table (a column per target, by
    name; what ``predict(X, as_quantity=True)`` returns) is converted, Teff
    with astropy's temperature equivalency; masked table entries become NaN
    (which ``fit`` refuses). Anything else is returned as given.
    """
    import astropy.units as u
    from astropy.table import Table

    if isinstance(y, Table):
        missing = [name for name in names if name not in y.colnames]
        if missing:
            raise ValueError(f"the table of targets has no column {missing[0]!r} (its columns: "
                             f"{', '.join(y.colnames)})")
        columns = [y[name] for name in names]
    elif isinstance(y, u.Quantity):
        if len(names) > 1 and (y.ndim != 2 or y.shape[1] != len(names)):
            raise ValueError(f"y must have shape (n_samples, {len(names)}) with columns "
                             f"{list(names)}, got {y.shape}")
        columns = [y] if len(names) == 1 else [y[:, k] for k in range(len(names))]
    else:
        return y
    values = [_in_target_unit(column, name) for column, name in zip(columns, names)]
    return values[0] if len(names) == 1 else np.column_stack(values)


def _in_target_unit(column, name):
    import astropy.units as u

    if hasattr(column, "filled"):   # a masked table column or Quantity
        column = column.filled(np.nan)
    if not isinstance(column, u.Quantity):
        return np.asarray(column, dtype=np.float64)
    unit = u.Unit(_unit_of(name) or u.dimensionless_unscaled)
    try:
        return np.asarray(column.to_value(unit, equivalencies=u.temperature()), dtype=np.float64)
    except u.UnitsError:
        if unit == u.dimensionless_unscaled:
            raise u.UnitConversionError(f"target {name!r} must be dimensionless, got a Quantity "
                                        f"in {column.unit}") from None
        raise u.UnitConversionError(
            f"target {name!r} is given in {column.unit}, which cannot be converted to {unit}; "
            f"pass it in {unit} or as plain numbers") from None


class _ConformalRegressor(_ConformalProbe, RegressorMixin, BaseEstimator):
    """Standardise → head → conformal absolute-residual intervals (split or cross-validated).

    Subclasses say which targets they predict (``_target_names``), how to map
    them to the space the head works in (``_forward``/``_inverse``, monotonic
    per column) and check their values (``_check_targets``).
    """

    # -- hooks ----------------------------------------------------------------------------
    def _target_names(self):
        raise NotImplementedError

    def _forward(self, y):
        return y

    def _inverse(self, t):
        return t

    def _selection_score(self):
        """Scorer with which ``head="auto"`` compares heads; `None`: negative mean squared error."""
        return None

    def _check_targets(self, y):
        if not np.all(np.isfinite(y)):
            raise ValueError("targets must be finite")

    # -- fitting --------------------------------------------------------------------------
    def fit(self, X, y):
        """Fit the head and calibrate its intervals (see ``calibration``).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Embeddings (or any features).
        y : array-like, `~astropy.units.Quantity` or `~astropy.table.Table`
            Targets, shape (n_samples,) or (n_samples, n_targets): plain
            numbers in the units of `TARGET_UNITS` (K, ``dex(cm / s2)``,
            dex; redshift dimensionless), a Quantity in any unit that
            converts to them (Teff also in °C), or a table with a column
            per target name, such as ``predict(X, as_quantity=True)``
            returns.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            ``X`` is spectra or spectok's tokens rather than an array (pass
            ``spectok.encode(spectra).embedding``, or put a `SpectrumEmbedder`
            before the probe in a pipeline).
        ValueError
            Targets that are not finite or out of their range (a redshift
            ≤ -1; Teff ≤ 0, or below 100 K: log10 Teff, not K), or an
            invalid parameter (an unknown ``head``, ``head_params`` that is
            not a dict, ``standardize`` that is not a bool, ``targets`` that
            are not names).
        astropy.units.UnitConversionError
            A target given in a unit that does not convert to its own.
        """
        self._check_head()
        names = self._target_names()
        multi = len(names) > 1
        y = _plain_targets(y, names)
        X, y = validate_data(self, X, y, multi_output=multi, y_numeric=True, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if multi and (y.ndim != 2 or y.shape[1] != len(names)):
            raise ValueError(f"y must have shape (n_samples, {len(names)}) with columns "
                             f"{list(names)}, got {y.shape}")
        self._check_targets(y.reshape(len(y), -1))
        t = self._forward(y.reshape(len(y), -1))
        rng, fit_idx, cal_idx, folds = self._calibration_parts(len(X))
        self.scaler_, self.target_mean_, self.target_scale_, features, target = \
            self._standardized(X[fit_idx], t[fit_idx])
        head, self.head_name_, self.head_scores_ = build_head(
            self.head, "regression", features, target, params=self.head_params,
            random_state=rng.randint(np.iinfo(np.int32).max), scoring=self._selection_score())
        self.head_ = fit_head(head, features, target)
        if folds:
            residual = np.concatenate([self._held_out_residuals(X, t, part) for part in folds])
        elif len(cal_idx):
            residual = np.abs(t[cal_idx] - self._predict_internal(X[cal_idx]))
        else:
            residual = np.empty((0, t.shape[1]))
        self.calibration_scores_ = np.sort(residual, axis=0)
        self.n_calibration_ = len(residual)
        self.target_names_ = list(names)
        self.units_ = {name: _unit_of(name) for name in names}
        return self

    def _standardized(self, X, t):
        """(scaler, target mean, target scale, features, target) for fitting a head."""
        scaler = standardizer(self.standardize).fit(X)
        mean = t.mean(axis=0)
        spread = t.std(axis=0)
        scale = np.where(spread > 0, spread, 1.0)
        target = (t - mean) / scale
        return scaler, mean, scale, scaler.transform(X), target[:, 0] if t.shape[1] == 1 else target

    def _held_out_residuals(self, X, t, held_out):
        """|t − prediction| on ``held_out`` of the fitted head refitted on the other samples."""
        rest = np.setdiff1d(np.arange(len(X)), held_out)
        scaler, mean, scale, features, target = self._standardized(X[rest], t[rest])
        head = refit_head(self.head_, features, target)
        return np.abs(t[held_out] - _unstandardized(head, scaler, mean, scale, X[held_out]))

    # -- prediction -----------------------------------------------------------------------
    def _predict_internal(self, X):
        return _unstandardized(self.head_, self.scaler_, self.target_mean_, self.target_scale_, X)

    def _shape(self, values):
        return values[:, 0] if values.shape[1] == 1 else values

    def predict(self, X):
        """Predict the targets.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        `~numpy.ndarray`, shape (n_samples,) or (n_samples, n_targets)
            In the targets' natural units (see ``units_``).
        """
        return self._shape(self._inverse(self._predict_internal(validated_input(self, X))))

    def predict_interval(self, X, alpha=0.68):
        """Conformal prediction intervals.

        The head's absolute residuals on the held-out calibration samples
        (with ``calibration="cv"``: of each sample, out of fold), in the
        space the head works in, set a symmetric half-width there (the
        ⌈(n + 1) α⌉-th smallest residual); the bounds are then mapped back to
        natural units, so a Teff interval is symmetric in log Teff. With
        ``calibration="split"`` each target's interval covers the truth with
        probability at least ``alpha`` for samples exchangeable with the
        training set; with ``"cv"`` that holds approximately (measure it).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        alpha : float
            Coverage probability in (0, 1): 0.68 for a 1σ-like interval,
            0.95 for 2σ. (This is the coverage, not the miss rate.)

        Returns
        -------
        lower, upper : `~numpy.ndarray`
            Bounds, each shaped like `predict` output. Unbounded where the
            calibration set is too small for the requested coverage (fewer
            than 1/(1 - alpha) - 1 samples): the target's own limits, −1
            for a redshift, 0 K for Teff, ±inf otherwise.

        Raises
        ------
        ValueError
            If ``alpha`` is not a number in (0, 1).
        spectok.probes.NotCalibratedError
            If the probe was fitted with no calibration set.
        """
        t = self._predict_internal(validated_input(self, X))
        self._require_calibration("too few samples", "intervals")
        q = conformal_quantile(self.calibration_scores_, alpha)
        return self._shape(self._inverse(t - q)), self._shape(self._inverse(t + q))


def _unstandardized(head, scaler, mean, scale, X):
    """A head's predictions for ``X`` in the targets' (forward-mapped) space."""
    out = np.asarray(predict_in_blocks(head.predict, scaler.transform(X)),
                     dtype=np.float64).reshape(len(X), -1)
    return out * scale + mean


# |Δz|/(1 + z) beyond which a redshift counts as an outlier when head="auto" chooses
_REDSHIFT_OUTLIER_BOUND = 0.05


def _capped_redshift_error_score(estimator, X, t, scale):
    """Negative mean of ``min(|Δz|/(1 + z), bound)`` from standardised ln(1 + z) (a scorer)."""
    delta = (estimator.predict(X) - t) * scale   # Δ ln(1 + z)
    return -float(np.mean(np.minimum(np.abs(np.expm1(delta)), _REDSHIFT_OUTLIER_BOUND)))


class RedshiftProbe(_ConformalRegressor):
    """Redshift from embeddings, with split-conformal intervals.

    The head is fitted to ln(1 + z), in which redshift errors are about the
    same at every z, and predictions and interval bounds are mapped back to z.

    Parameters
    ----------
    head : {"ridge", "knn", "mlp", "kernel", "auto"}
        The model fitted on the standardised features (see
        ``spectok.probes.heads``). On simulated SDSS, DESI and LAMOST
        galaxies (1000 per instrument) the default, ``"ridge"``, gives
        σ_NMAD 0.023, ``"knn"`` 0.016, ``"mlp"`` 0.025 and ``"kernel"``
        0.011, none with outliers beyond 0.15
        (`spectok.benchmarks.compare_heads` on the shipped model's pooled
        embedding and aligned tokens: re-measure when the shipped model
        changes). Ridge stays the default because,
        unlike nearest neighbours, it does not need a training set that
        samples every redshift densely, and unlike the kernel it needs no
        width tuned to the features (``"auto"`` tunes it).
        ``"auto"`` picks the head with the lowest 3-fold cross-validated
        mean of ``|Δz|/(1 + z)`` capped at 0.05 on the training data
        (`~spectok.probes.build_head`): a catastrophic error costs the same
        whatever its size, as in the outlier rates by which redshift
        surveys are judged, while the accurate predictions are scored by
        their size. The best head differs between tasks (on the benchmark's
        simulated quasars nearest neighbours give 0.49 outliers beyond 0.05
        against 0.75 for ridge, which the mean squared error of ln(1 + z)
        preferred).
    head_params : dict, optional
        Parameter overrides for the head estimator (not with ``"auto"``).
    standardize : bool
        Scale each feature to zero mean and unit variance first.
    calibration_fraction : float
        Share of the training set held out to calibrate intervals, in [0, 1)
        (with ``calibration="cv"``: held out at a time).
    random_state : int, `numpy.random.RandomState` or None
        Seed of the calibration split and of the MLP head.
    calibration : {"split", "cv"}
        ``"split"``: the head is fitted on the rest of the training set
        (split-conformal: coverage guaranteed). ``"cv"``: the head is fitted
        on every sample, and each sample is scored by the same head (same
        kind and parameters, for ``head="auto"`` chosen on all samples)
        refitted without its part of the data (`calibration_folds`;
        out-of-fold calibration, the "CV" method of Barber et al. 2021): a
        better head from the same data, nearest neighbours especially, but
        coverage only measured, not guaranteed. It needs at least 4 samples
        and costs as many more head fits as there are parts.

    Attributes
    ----------
    scaler_ : `~sklearn.preprocessing.StandardScaler`
    head_ : estimator
        The fitted head (on ln(1 + z), standardised).
    calibration_scores_ : `~numpy.ndarray`, shape (n_calibration, 1)
        Sorted absolute residuals in ln(1 + z) of the calibration samples.
    n_calibration_ : int
    head_name_ : str
        The head used: ``head``, or the one ``"auto"`` chose.
    head_scores_ : dict or None
        For ``head="auto"``, each head's cross-validated score: the negative
        mean of ``min(|Δz|/(1 + z), 0.05)``.
    target_names_ : list of str
        ``["z"]``.
    units_ : dict
        ``{"z": ""}`` (dimensionless).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.probes import RedshiftProbe
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 5))
    >>> z = np.exp(0.3 * X[:, 0] + 0.01 * rng.normal(size=400)) - 0.5
    >>> probe = RedshiftProbe(head="ridge").fit(X, z)
    >>> lower, upper = probe.predict_interval(X[:3], alpha=0.68)
    >>> bool(np.all(lower < probe.predict(X[:3]))), bool(np.all(upper > lower))
    (True, True)
    """

    def _target_names(self):
        return ("z",)

    def _check_targets(self, y):
        super()._check_targets(y)
        if np.any(y <= -1):
            raise ValueError("redshifts must be > -1")

    def _forward(self, y):
        return np.log1p(y)

    def _selection_score(self):
        return partial(_capped_redshift_error_score, scale=float(self.target_scale_[0]))

    def _inverse(self, t):
        return np.expm1(t)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True  # z > -1; the checks' y can be anything
        return tags


class StellarParameterProbe(_ConformalRegressor):
    """Stellar parameters (Teff, log g, [Fe/H] by default) from embeddings.

    One head predicts all targets together; Teff is modelled as log10 Teff
    (its errors scale with Teff), the others as given. Predictions come back
    in natural units: K for Teff, dex for log g (cgs) and [Fe/H]; ``units_``
    records them and ``as_quantity=True`` returns an `~astropy.table.QTable`
    of Quantities instead of an array.

    Parameters
    ----------
    targets : tuple of str
        Names of the columns of ``y``, in order, distinct ignoring case.
        Known names (see `TARGET_UNITS`: ``teff``, ``logg``, ``feh``, ``mh``,
        ``alpha_fe``, ``spt``), in any case (``"Teff"``, ``"FeH"``), get
        units; ``teff`` is modelled in log10 and must be given in K (values
        below 100 K, such as log10 Teff, are refused). The names are kept as
        spelled, in ``target_names_``, ``units_`` and the columns of
        ``as_quantity`` tables.
    head : {"ridge", "knn", "mlp", "kernel", "auto"}
        The model fitted on the standardised features. The default,
        ``"ridge"``, was the most accurate of the first three on MILES for
        Teff and log g and fits 7× faster than ``"mlp"`` (Teff, log g, [Fe/H] RMSE 432 K, 0.50,
        0.40 dex against 479 K, 0.52, 0.37 for ``"mlp"`` and 555 K, 0.75,
        0.40 for ``"knn"``; `spectok.benchmarks.compare_heads` on the shipped
        model's pooled embedding and aligned tokens: re-measure when the
        shipped model changes); ``"kernel"``, tuned by ``"auto"``, gave a
        σ_MAD of log Teff of 0.0089 dex against the ridge's 0.010 in
        ``spectok bench``.
        ``"auto"`` picks the head with the best 3-fold cross-validated
        score on the training data (`~spectok.probes.build_head`): the best
        head differs between tasks.
    head_params : dict, optional
        Parameter overrides for the head estimator (not with ``"auto"``).
    standardize : bool
        Scale each feature to zero mean and unit variance first.
    calibration_fraction : float
        Share of the training set held out to calibrate intervals, in [0, 1)
        (with ``calibration="cv"``: held out at a time).
    random_state : int, `numpy.random.RandomState` or None
        Seed of the calibration split and of the MLP head.
    calibration : {"split", "cv"}
        ``"split"``: the head is fitted on the rest of the training set
        (split-conformal: coverage guaranteed). ``"cv"``: the head is fitted
        on every sample, and each sample is scored by the same head (same
        kind and parameters, for ``head="auto"`` chosen on all samples)
        refitted without its part of the data (`calibration_folds`;
        out-of-fold calibration, the "CV" method of Barber et al. 2021): a
        better head from the same data, nearest neighbours especially, but
        coverage only measured, not guaranteed. It needs at least 4 samples
        and costs as many more head fits as there are parts.

    Attributes
    ----------
    scaler_ : `~sklearn.preprocessing.StandardScaler`
    head_ : estimator
        The fitted head (on standardised log10 Teff, log g, [Fe/H]).
    calibration_scores_ : `~numpy.ndarray`, shape (n_calibration, n_targets)
        Sorted absolute residuals of the calibration samples, per target,
        in the head's space (dex for Teff).
    n_calibration_ : int
    head_name_ : str
        The head used: ``head``, or the one ``"auto"`` chose.
    head_scores_ : dict or None
        For ``head="auto"``, each head's cross-validated score (negative
        mean squared error in the head's standardised space, or accuracy).
    target_names_ : list of str
        ``targets``, as spelled.
    units_ : dict
        Unit string of each target, e.g. ``{"teff": "K", "logg": "dex(cm / s2)",
        "feh": "dex"}``; ``""`` for a name not in `TARGET_UNITS`.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.probes import StellarParameterProbe
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(300, 6))
    >>> y = np.column_stack([5000 * np.exp(0.1 * X[:, 0]), 4 + 0.3 * X[:, 1], 0.2 * X[:, 2]])
    >>> probe = StellarParameterProbe(head="ridge").fit(X, y)
    >>> probe.predict(X[:2]).shape, probe.units_["teff"]
    ((2, 3), 'K')
    >>> table = probe.predict(X[:2], as_quantity=True)
    >>> table.colnames, table["teff"].unit
    (['teff', 'logg', 'feh'], Unit("K"))
    """

    def __init__(self, targets=("teff", "logg", "feh"), head="ridge", head_params=None,
                 standardize=True, calibration_fraction=0.2, random_state=0,
                 calibration="split"):
        super().__init__(head=head, head_params=head_params, standardize=standardize,
                         calibration_fraction=calibration_fraction, random_state=random_state,
                         calibration=calibration)
        self.targets = targets

    def _target_names(self):
        if isinstance(self.targets, (bytes, Mapping, Set)):   # a set's order varies by process
            raise ValueError(f"targets must be a name or a tuple of names (strings), got "
                             f"{self.targets!r}")
        try:
            names = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        except TypeError:   # not iterable: None, a number
            raise ValueError(f"targets must be a name or a tuple of names (strings), got "
                             f"{self.targets!r}") from None
        if not all(isinstance(name, str) for name in names):
            raise ValueError(f"targets must be names (strings), got {self.targets!r}")
        if not names or len({name.lower() for name in names}) != len(names):
            raise ValueError(f"targets must be distinct names (ignoring case), got "
                             f"{self.targets!r}")
        return names

    def _log_columns(self):
        return np.array([_is_teff(name) for name in self._target_names()])

    def _check_targets(self, y):
        super()._check_targets(y)
        teff = y[:, self._log_columns()]
        if np.any(teff <= 0):
            raise ValueError("Teff must be positive (it is modelled as log10 Teff)")
        if np.any(teff < _MIN_TEFF_K):
            raise ValueError(
                f"Teff must be in K, not log10 K: {np.sum(teff < _MIN_TEFF_K)} of {len(teff)} "
                f"values are below {_MIN_TEFF_K:g} K (the lowest is {teff.min():.4g}), colder "
                f"than any star or brown dwarf; give 10**log10_teff, or a Quantity in K")

    def _forward(self, y):
        return np.where(self._log_columns(), np.log10(np.where(self._log_columns(), y, 1.0)), y)

    def _inverse(self, t):
        return np.where(self._log_columns(), 10.0 ** np.where(self._log_columns(), t, 0.0), t)

    def _as_table(self, values):
        import astropy.units as u
        from astropy.table import QTable

        values = values.reshape(len(values), -1)
        return QTable({name: values[:, k] * u.Unit(self.units_[name] or u.dimensionless_unscaled)
                       for k, name in enumerate(self.target_names_)})

    def predict(self, X, as_quantity=False):
        """Predict the parameters.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        as_quantity : bool
            Return an `~astropy.table.QTable` with one Quantity column per
            target (K, ``dex(cm / s2)``, dex) instead of a plain array.

        Returns
        -------
        `~numpy.ndarray` or `~astropy.table.QTable`
            Shape (n_samples, n_targets), or (n_samples,) for one target.

        Examples
        --------
        >>> import numpy as np
        >>> from spectok.probes import StellarParameterProbe
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> y = np.column_stack([5500 + 500 * X[:, 0], 4.2 + 0.3 * X[:, 1]])
        >>> probe = StellarParameterProbe(targets=("Teff", "logg")).fit(X, y)
        >>> probe.predict(X[:3]).shape, probe.units_   # names are matched ignoring case
        ((3, 2), {'Teff': 'K', 'logg': 'dex(cm / s2)'})
        >>> probe.predict(X[:3], as_quantity=True)["Teff"].unit
        Unit("K")
        """
        check_bool(as_quantity, "as_quantity")
        values = super().predict(X)
        return self._as_table(values) if as_quantity else values

    def predict_interval(self, X, alpha=0.68, as_quantity=False):
        """Split-conformal intervals per target (see ``RedshiftProbe.predict_interval``).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        alpha : float
            Coverage probability in (0, 1), e.g. 0.68 or 0.95.
        as_quantity : bool
            Return the bounds as two `~astropy.table.QTable` objects.

        Returns
        -------
        lower, upper : `~numpy.ndarray` or `~astropy.table.QTable`
            Shaped like `predict` output. Teff bounds are symmetric in log10 Teff.

        Raises
        ------
        ValueError
            If ``alpha`` is not a number in (0, 1), or ``as_quantity`` not a bool.
        spectok.probes.NotCalibratedError
            If the probe was fitted with no calibration set.

        Examples
        --------
        >>> import numpy as np
        >>> from spectok.probes import StellarParameterProbe
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> y = np.column_stack([5500 + 500 * X[:, 0], 4.2 + 0.3 * X[:, 1]])
        >>> probe = StellarParameterProbe(targets=("teff", "logg")).fit(X, y)
        >>> lower, upper = probe.predict_interval(X[:3], alpha=0.9)
        >>> lower.shape, bool(np.all(lower < probe.predict(X[:3])) and np.all(lower < upper))
        ((3, 2), True)
        >>> probe.predict_interval(X[:1], 0.9, as_quantity=True)[1]["teff"].unit
        Unit("K")
        """
        check_bool(as_quantity, "as_quantity")
        lower, upper = super().predict_interval(X, alpha)
        if as_quantity:
            return self._as_table(lower), self._as_table(upper)
        return lower, upper

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            names = self._target_names()
        except ValueError:
            names = ()
        tags.target_tags.multi_output = len(names) > 1
        tags.target_tags.single_output = len(names) <= 1
        tags.target_tags.positive_only = any(map(_is_teff, names))
        return tags
