"""Classification probe: spectral classes, with conformal prediction sets."""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from ._base import _ConformalProbe, standardizer, validate_data, validated_input
from .._checks import as_number
from .conformal import conformal_quantile
from .heads import build_head, fit_head, predict_in_blocks, refit_head

__all__ = ["SpectralClassProbe"]


class SpectralClassProbe(_ConformalProbe, ClassifierMixin, BaseEstimator):
    """Classes (e.g. M/L/T, star/galaxy/QSO) from embeddings, with conformal sets.

    Parameters
    ----------
    head : {"ridge", "knn", "mlp", "kernel", "auto"}
        The model fitted on the standardised features: ``"ridge"`` is an
        L2-penalised logistic regression, ``"knn"`` inverse-distance
        neighbours, ``"mlp"`` a one-hidden-layer network, ``"kernel"`` a
        logistic regression on a Gaussian-kernel (Nyström) map (see
        ``spectok.probes.heads``). The default, ``"ridge"``, was the most
        accurate of the first three on SpeX M/L/T classes (96.6 % against
        95.0 % for ``"mlp"`` and 94.9 % for ``"knn"``;
        `spectok.benchmarks.compare_heads` on the shipped model's pooled
        embedding and aligned tokens: re-measure when the shipped model
        changes); ``"kernel"``, tuned by ``"auto"``, reached 98.1 % in
        ``spectok bench``.
        ``"auto"`` picks the head with the best 3-fold cross-validated
        accuracy on the training data (`~spectok.probes.build_head`).
    head_params : dict, optional
        Parameter overrides for the head estimator (not with ``"auto"``). A
        ``class_weight`` dict is keyed by class label, as in scikit-learn.
    standardize : bool
        Scale each feature to zero mean and unit variance first.
    calibration_fraction : float
        Share of each class held out to calibrate prediction sets, in [0, 1)
        (with ``calibration="cv"``: held out at a time).
    random_state : int, `numpy.random.RandomState` or None
        Seed of the calibration split, of the MLP head and of the kernel
        head's Nyström map.
    calibration : {"split", "cv"}
        ``"split"``: the head is fitted on the rest of each class
        (split-conformal: coverage guaranteed). ``"cv"``: the head is fitted
        on every sample, and each sample is scored by the same head (same
        kind and parameters, for ``head="auto"`` chosen on all samples)
        refitted without its part of the data (`calibration_folds`, by
        class): more training data for the head, but coverage only
        measured, not guaranteed. It needs at least 4 samples and costs as
        many more head fits as there are parts.

    Attributes
    ----------
    classes_ : `~numpy.ndarray`
        The class labels, sorted.
    scaler_ : `~sklearn.preprocessing.StandardScaler`
    head_ : estimator
        The fitted head (on class indices into ``classes_``).
    calibration_scores_ : `~numpy.ndarray`, shape (n_calibration,)
        Sorted scores 1 - p(true class) of the calibration samples.
    n_calibration_ : int
    head_name_ : str
        The head used: ``head``, or the one ``"auto"`` chose.
    head_scores_ : dict or None
        For ``head="auto"``, each head's cross-validated accuracy.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.probes import SpectralClassProbe
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4))
    >>> y = np.array(["M", "L", "T"])[np.digitize(X[:, 0], [-0.5, 0.5])]
    >>> probe = SpectralClassProbe().fit(X, y)
    >>> probe.classes_.tolist()
    ['L', 'M', 'T']
    >>> probe.predict_proba(X[:2]).shape, probe.predict_set(X[:2], alpha=0.9).shape
    ((2, 3), (2, 3))
    """

    def fit(self, X, y):
        """Fit the head and calibrate its prediction sets (see ``calibration``).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,)
            Class labels (strings or integers).

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
            Fewer than two classes, labels that mix strings and numbers, or
            an invalid parameter (an unknown ``head``, ``head_params`` that
            is not a dict, ``standardize`` that is not a bool).

        Examples
        --------
        >>> import numpy as np
        >>> from spectok.probes import SpectralClassProbe
        >>> X = np.random.default_rng(0).normal(size=(100, 3))
        >>> probe = SpectralClassProbe().fit(X, np.where(X[:, 0] > 0, "star", "galaxy"))
        >>> probe.classes_.tolist(), probe.n_calibration_   # a fifth of each class held out
        (['galaxy', 'star'], 20)
        """
        self._check_head()
        X, y = validate_data(self, X, y, dtype=np.float64)
        try:
            check_classification_targets(y)
            self.classes_, encoded = np.unique(y, return_inverse=True)
        except TypeError:   # labels that cannot be sorted together
            kinds = sorted({type(label).__name__ for label in y})
            raise ValueError(f"class labels must be all strings or all numbers; got a mix of "
                             f"{', '.join(kinds)}") from None
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least two classes; "
                             f"got only one class, {self.classes_[0].item()!r}")
        rng, fit_idx, cal_idx, folds = self._calibration_parts(len(X), groups=encoded)
        self.scaler_ = standardizer(self.standardize).fit(X[fit_idx])
        features = self.scaler_.transform(X[fit_idx])
        head, self.head_name_, self.head_scores_ = build_head(
            self.head, "classification", features, encoded[fit_idx],
            params=self._params_by_class_index(),
            random_state=rng.randint(np.iinfo(np.int32).max))
        self.head_ = fit_head(head, features, encoded[fit_idx])
        if folds:
            scores = np.concatenate([self._held_out_scores(X, encoded, part) for part in folds])
        elif len(cal_idx):
            proba = self._proba(X[cal_idx])
            scores = 1.0 - proba[np.arange(len(cal_idx)), encoded[cal_idx]]
        else:
            scores = np.empty(0)
        self.calibration_scores_ = np.sort(scores)
        self.n_calibration_ = len(scores)
        return self

    def _params_by_class_index(self):
        """``head_params`` for a head fitted on class indices: ``class_weight`` keyed by index."""
        weights = (self.head_params or {}).get("class_weight")
        if not isinstance(weights, dict):
            return self.head_params
        index = {_plain(label): k for k, label in enumerate(self.classes_)}
        unknown = [label for label in weights if _plain(label) not in index]
        if unknown:
            raise ValueError(f"head_params class_weight names {unknown[0]!r}, which is not a "
                             f"class of y (classes: {', '.join(map(repr, index))})")
        return {**self.head_params,
                "class_weight": {index[_plain(label)]: weight for label, weight in weights.items()}}

    def _held_out_scores(self, X, encoded, held_out):
        """1 − p(true class) on ``held_out`` of the fitted head refitted on the other samples.

        A class the other samples lack gets probability 0, so its members score 1;
        where the other samples are all of one class, no head is fitted and
        that class gets probability 1.
        """
        rest = np.setdiff1d(np.arange(len(X)), held_out)
        seen = np.unique(encoded[rest])
        if len(seen) == 1:
            proba = np.zeros((len(held_out), len(self.classes_)))
            proba[:, seen[0]] = 1.0
        else:
            scaler = standardizer(self.standardize).fit(X[rest])
            head = refit_head(self.head_, scaler.transform(X[rest]), encoded[rest])
            proba = _class_probabilities(head, scaler, X[held_out], len(self.classes_))
        return 1.0 - proba[np.arange(len(held_out)), encoded[held_out]]

    def _proba(self, X):
        return _class_probabilities(self.head_, self.scaler_, X, len(self.classes_))

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        `~numpy.ndarray`, shape (n_samples, n_classes)
            Columns in the order of ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from spectok.probes import SpectralClassProbe
        >>> X = np.random.default_rng(0).normal(size=(100, 3))
        >>> probe = SpectralClassProbe().fit(X, np.where(X[:, 0] > 0, "star", "galaxy"))
        >>> proba = probe.predict_proba([[-3.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
        >>> proba.argmax(axis=1), bool(np.allclose(proba.sum(axis=1), 1.0))
        (array([0, 1]), True)
        """
        return self._proba(validated_input(self, X))

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        `~numpy.ndarray`, shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_quantile(self, X, q=0.5):
        """For ordered classes (numbers, such as numeric subtypes): a quantile of each prediction.

        The smallest class whose predicted cumulative probability reaches
        ``q``. With ``q = 0.5`` it is the median of the predicted
        distribution, the class that minimises the expected absolute error,
        so it suits labels on an ordered grid (spectral subtypes) better than
        the most probable class.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        q : float
            Quantile, in (0, 1].

        Returns
        -------
        `~numpy.ndarray`, shape (n_samples,)
            Values of ``classes_``.

        Raises
        ------
        ValueError
            ``q`` not a number in (0, 1], or classes that are not numbers.

        Examples
        --------
        >>> import numpy as np
        >>> from spectok.probes import SpectralClassProbe
        >>> rng = np.random.default_rng(0)
        >>> subtype = np.repeat(np.arange(5), 40)
        >>> X = subtype[:, None] + rng.normal(0, 0.3, (200, 2))
        >>> probe = SpectralClassProbe().fit(X, subtype)
        >>> probe.predict_quantile([[0.0, 0.1], [3.1, 2.9]])
        array([0, 3])
        """
        q = as_number(q, f"q must be a number in (0, 1], got {q!r}")
        if not 0 < q <= 1:
            raise ValueError(f"q must be in (0, 1], got {q}")
        proba = self.predict_proba(X)
        if not np.issubdtype(self.classes_.dtype, np.number):
            raise ValueError(f"predict_quantile needs ordered classes (numbers); this probe's "
                             f"are {self.classes_.tolist()[:3]}...")
        cumulative = np.cumsum(proba, axis=1)
        # the last column is 1 up to rounding: never step past it
        reached = cumulative >= q - 1e-12
        reached[:, -1] = True
        return self.classes_[np.argmax(reached, axis=1)]

    def predict_set(self, X, alpha=0.9):
        """Conformal prediction sets: every class plausible at coverage ``alpha``.

        A class is in a sample's set when its probability is at least
        1 - q, with q the ⌈(n + 1) α⌉-th smallest calibration score
        1 - p(true class); the set holds the true class with probability at
        least ``alpha`` (marginally). Sets may be empty for easy samples at
        low ``alpha`` and hold several classes for ambiguous ones.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        alpha : float
            Coverage probability in (0, 1).

        Returns
        -------
        `~numpy.ndarray` of bool, shape (n_samples, n_classes)
            Membership of each class (columns as ``classes_``).

        Raises
        ------
        ValueError
            If ``alpha`` is not a number in (0, 1).
        spectok.probes.NotCalibratedError
            If the probe was fitted with no calibration set.

        Examples
        --------
        >>> import numpy as np
        >>> from spectok.probes import SpectralClassProbe
        >>> X = np.random.default_rng(0).normal(size=(200, 3))
        >>> probe = SpectralClassProbe().fit(X, np.where(X[:, 0] > 0, "star", "galaxy"))
        >>> sets = probe.predict_set([[3.0, 0.0, 0.0]], alpha=0.9)
        >>> sets, probe.classes_[sets[0]].tolist()   # far from the boundary: one class
        (array([[False,  True]]), ['star'])
        """
        proba = self.predict_proba(X)
        self._require_calibration("classes too small", "prediction sets")
        q = conformal_quantile(self.calibration_scores_, alpha)
        return proba >= 1.0 - q - 1e-12


def _plain(label):
    """A class label as a Python scalar, so that ``"M"`` and ``np.str_("M")`` match."""
    return label.item() if isinstance(label, np.generic) else label


def _class_probabilities(head, scaler, X, n_classes):
    """A head's probabilities in columns of all ``n_classes`` (0 for classes it never saw)."""
    proba = np.zeros((len(X), n_classes))
    proba[:, np.asarray(head.classes_, dtype=int)] = predict_in_blocks(head.predict_proba,
                                                                       scaler.transform(X))
    return proba
