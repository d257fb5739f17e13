"""The small models ("heads") a probe fits on standardised embeddings.

Four kinds, each for regression and classification:

``"ridge"``
    Linear: `~sklearn.linear_model.RidgeCV` (the L2 strength chosen by
    efficient leave-one-out over 10⁻³–10⁴) for regression, L2-penalised
    `~sklearn.linear_model.LogisticRegression` for classes (the probabilistic
    counterpart of a ridge classifier).
``"knn"``
    `~sklearn.neighbors.KNeighborsRegressor` / ``KNeighborsClassifier``,
    15 neighbours weighted by inverse distance, brute-force search (exact,
    and nothing but arrays to store).
``"mlp"``
    `~sklearn.neural_network.MLPRegressor` / ``MLPClassifier``, one hidden
    layer of 256 ReLU units, weight decay 10⁻³, Adam with early stopping on
    a 10 % validation split when there are at least 100 samples.
``"kernel"``
    A Gaussian (RBF) kernel, exp(−γ ‖x − x'‖²) with γ = 1 / (number of
    features) by default, which on standardised features (none constant)
    gives a typical pair of samples a similarity of about e⁻²: for
    regression exact `~sklearn.kernel_ridge.KernelRidge` (L2 strength
    10⁻²); for classes `~sklearn.linear_model.LogisticRegression` (C = 10)
    on scikit-learn's ``Nystroem`` map of the kernel built
    from up to 1000 training samples (chosen with the probe's random
    state), which gives probabilities. Smooth but non-linear where the
    ridge is linear, and unlike nearest neighbours it interpolates between
    training samples. Exact kernel ridge keeps the training features and
    solves an n × n system: fine for the thousands to tens of thousands of
    samples a probe is usually fitted on (10⁴ samples: about 1.6 GB while
    fitting, as the solver copies the kernel), not for millions. Probes
    predict in blocks of rows (`predict_in_blocks`), so predicting costs
    bounded memory however many spectra are given at once.

Every parameter can be overridden with a probe's ``head_params``; for the
kernel classifier ``gamma`` and ``n_components`` go to its Nyström map and
``C`` and ``class_weight`` to its logistic regression, and any other
parameter is named with its step (``nystroem__...``, ``logistic__...``). A probe
given ``head="auto"`` picks one of the four by cross-validation on its
training data, and for ``"knn"`` the number of neighbours and for
``"kernel"`` the kernel width and the regularisation too (`build_head`).
"""

import warnings
from contextlib import contextmanager

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._checks import is_integer

__all__ = ["HEADS", "AUTO_FOLDS", "make_head", "build_head", "fit_head", "refit_head",
           "predict_in_blocks"]

#: The heads a probe can use.
HEADS = ("ridge", "knn", "mlp", "kernel")

#: Folds of the cross-validation with which ``head="auto"`` chooses a head (`build_head`).
AUTO_FOLDS = 3

_RIDGE_ALPHAS = tuple(np.logspace(-3, 4, 15))
#: Numbers of neighbours ``head="auto"`` tries for the ``"knn"`` head.
_NEIGHBOURS = (1, 3, 5, 10, 15, 30)
#: Kernel widths ``head="auto"`` tries for the ``"kernel"`` head, as γ × number of features.
_KERNEL_WIDTHS = (0.1, 0.3, 1.0)
#: Regularisation ``head="auto"`` tries for the ``"kernel"`` head: the kernel
#: ridge's L2 strength, or the inverse strength C of the classifier.
_KERNEL_ALPHAS = (1e-3, 1e-2, 1e-1)
_KERNEL_CS = (1.0, 10.0)
#: Most training samples from which the classifier's Nyström map is built.
_NYSTROEM_COMPONENTS = 1000
#: ``head_params`` of the kernel classifier that need no step prefix.
_CLASSIFIER_KERNEL_ROUTES = {"gamma": "nystroem__gamma", "n_components": "nystroem__n_components",
                             "C": "logistic__C", "class_weight": "logistic__class_weight"}
#: Rows a head is given at a time when it predicts: the kernel head builds a
#: (rows × training samples) kernel, about 80 MB for 10⁴ training samples.
_PREDICT_BLOCK_ROWS = 1024


def make_head(head, task, n_samples, random_state=None, params=None):
    """Build an unfitted head.

    Parameters
    ----------
    head : {"ridge", "knn", "mlp", "kernel"}
        Which kind of model.
    task : {"regression", "classification"}
        What it will be fitted to.
    n_samples : int
        Number of samples it will see (caps the number of neighbours and of
        Nyström components, and switches early stopping on or off).
    random_state : int, optional
        Seed of the MLP's initialisation and validation split and of the
        samples the kernel classifier's Nyström map is built from.
    params : dict, optional
        Overrides for the estimator's parameters (for the kernel
        classifier, see the module's description of ``head_params``).

    Returns
    -------
    estimator : `~sklearn.base.BaseEstimator`
        An unfitted scikit-learn estimator.

    Raises
    ------
    ValueError
        An unknown ``head`` or ``task``, a parameter the estimator does not
        have, or one kernel classifier parameter given by two names.

    Examples
    --------
    >>> from spectok.probes import make_head
    >>> make_head("knn", "regression", n_samples=3)
    KNeighborsRegressor(algorithm='brute', n_neighbors=3, weights='distance')
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    regression = task == "regression"
    n_samples = max(int(n_samples), 1)
    if head == "ridge":
        if regression:
            from sklearn.linear_model import RidgeCV
            estimator = RidgeCV(alphas=_RIDGE_ALPHAS)
        else:
            from sklearn.linear_model import LogisticRegression
            estimator = LogisticRegression(C=1.0, max_iter=5000)
    elif head == "knn":
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
        cls = KNeighborsRegressor if regression else KNeighborsClassifier
        estimator = cls(n_neighbors=min(15, n_samples), weights="distance", algorithm="brute")
    elif head == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        cls = MLPRegressor if regression else MLPClassifier
        estimator = cls(hidden_layer_sizes=(256,), alpha=1e-3, learning_rate_init=1e-3,
                        max_iter=400, early_stopping=n_samples >= 100, n_iter_no_change=20,
                        random_state=random_state)
    elif regression:
        from sklearn.kernel_ridge import KernelRidge
        estimator = KernelRidge(kernel="rbf", alpha=1e-2)
    else:
        from sklearn.kernel_approximation import Nystroem
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        estimator = Pipeline([
            ("nystroem", Nystroem(kernel="rbf", n_components=min(_NYSTROEM_COMPONENTS, n_samples),
                                  random_state=random_state)),
            ("logistic", LogisticRegression(C=10.0, max_iter=5000))])
    if params:
        params = dict(params)
        if head == "knn" and "n_neighbors" in params:
            params["n_neighbors"] = min(_count(params["n_neighbors"], "n_neighbors"), n_samples)
        if head == "kernel" and not regression:
            params = _classifier_kernel_params(params, n_samples)
        try:
            estimator.set_params(**params)
        except ValueError as error:
            raise ValueError(f"head_params for the {head!r} head: {error}") from None
    return estimator


def _count(value, name):
    """A ``head_params`` value that must be a positive integer, checked."""
    if not is_integer(value) or value < 1:
        raise ValueError(f"head_params {name!r} must be a positive integer, got {value!r}")
    return int(value)


def _classifier_kernel_params(params, n_samples):
    """``head_params`` of the kernel classifier routed to its pipeline's steps."""
    routed, given_as = {}, {}
    for name, value in params.items():
        target = _CLASSIFIER_KERNEL_ROUTES.get(name, name)
        if target in routed:
            raise ValueError(f"head_params for the 'kernel' head: {given_as[target]!r} and "
                             f"{name!r} name the same parameter; give one")
        routed[target], given_as[target] = value, name
    if "nystroem__n_components" in routed:
        routed["nystroem__n_components"] = min(
            _count(routed["nystroem__n_components"], given_as["nystroem__n_components"]),
            n_samples)
    return routed


def _auto_options(candidate, task, n_features, fold_size):
    """The parameter sets ``head="auto"`` scores for one head (`None`: its defaults)."""
    if candidate == "knn":
        return [{"n_neighbors": k} for k in _NEIGHBOURS if k <= max(fold_size, 1)]
    if candidate == "kernel":
        name, values = ("alpha", _KERNEL_ALPHAS) if task == "regression" else ("C", _KERNEL_CS)
        return [{"gamma": width / n_features, name: value}
                for width in _KERNEL_WIDTHS for value in values]
    return [None]


def build_head(head, task, X, y, *, params=None, random_state=None, n_splits=AUTO_FOLDS,
               scoring=None):
    """The unfitted head a probe will fit to ``(X, y)``, chosen by cross-validation for ``"auto"``.

    For ``head="auto"``, each of `HEADS` (with its default parameters, but for
    the two tuned below) is scored by ``n_splits``-fold cross-validation on
    ``(X, y)`` -- by default mean squared error for regression (``y``
    standardised by the caller, so the outputs of a multi-output target weigh
    alike), accuracy for classification -- and the best is returned; ties go to
    the simplest (the order of `HEADS`). The ``"knn"`` candidate is scored with
    each of 1, 3, 5, 10, 15 and 30 neighbours and enters with its best (few
    neighbours suit targets that the training set samples sparsely, such as
    redshifts over a wide range). The ``"kernel"`` candidate is scored with
    kernel widths γ of 0.1, 0.3 and 1 over the number of features, each with L2
    strengths 10⁻³, 10⁻² and 10⁻¹ (regression) or C of 1 and 10
    (classification), and enters with its best. Only the training data are
    used, so the choice never sees test objects.

    Parameters
    ----------
    head : {"ridge", "knn", "mlp", "kernel", "auto"}
    task : {"regression", "classification"}
    X, y : array-like
        The data the head will be fitted to (standardised features).
    params : dict, optional
        Overrides for the estimator's parameters; not allowed with ``"auto"``,
        whose candidates differ in their parameters.
    random_state : int, optional
        Seed of the MLP, of the kernel classifier's Nyström map and of the
        folds.
    n_splits : int
        Folds of the cross-validation.
    scoring : callable, optional
        ``scoring(estimator, X, y) -> float``, higher is better (a
        scikit-learn scorer), instead of the default score.

    Returns
    -------
    estimator : `~sklearn.base.BaseEstimator`
        Unfitted.
    name : str
        The head chosen.
    scores : dict or None
        For ``"auto"``, each head's cross-validated score (higher is better:
        negative mean squared error, accuracy, or ``scoring``; for ``"knn"``
        and ``"kernel"`` with their best parameters); otherwise `None`.

    Raises
    ------
    ValueError
        An unknown ``head`` or ``task``, ``params`` with ``"auto"``, or a
        class with fewer than ``n_splits`` samples for ``"auto"``.
    Exception
        For ``"auto"``, whatever a candidate's fit raises: a head that
        cannot be fitted is reported, not skipped.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.probes import build_head
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 3))
    >>> y = X @ [1.0, -2.0, 0.5]
    >>> estimator, name, scores = build_head("auto", "regression", X, y, random_state=0)
    >>> name, sorted(scores)
    ('ridge', ['kernel', 'knn', 'mlp', 'ridge'])
    """
    if head != "auto":
        return make_head(head, task, len(X), random_state=random_state, params=params), head, None
    if params:
        raise ValueError("head='auto' chooses among the heads with their default parameters; "
                         "name a head to give head_params")
    from sklearn.metrics import check_scoring
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "classification":
        counts = np.unique(y, return_counts=True)[1]
        if counts.min() < n_splits:
            raise ValueError(f"head='auto' needs at least {n_splits} samples of every class "
                             f"to fit on for its {n_splits}-fold cross-validation; the rarest "
                             f"class has {counts.min()}")
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=random_state)
    else:
        if len(X) < n_splits:
            raise ValueError(f"head='auto' needs at least {n_splits} samples to fit on for its "
                             f"{n_splits}-fold cross-validation; got {len(X)}")
        folds = KFold(n_splits, shuffle=True, random_state=random_state)
    if scoring is None:
        scoring = "accuracy" if task == "classification" else "neg_mean_squared_error"
    fold_size = len(X) * (n_splits - 1) // n_splits
    candidates = [(candidate, option) for candidate in HEADS
                  for option in _auto_options(candidate, task, X.shape[1], fold_size)]
    estimators = [make_head(candidate, task, fold_size, random_state=random_state, params=option)
                  for candidate, option in candidates]
    mean_scores = _cross_validated_scores(estimators, X, y, folds,
                                          check_scoring(estimators[0], scoring=scoring))
    scores, chosen = {}, {}
    for (candidate, option), score in zip(candidates, mean_scores):
        if candidate not in scores or score > scores[candidate]:
            scores[candidate], chosen[candidate] = float(score), option
    best = max(HEADS, key=lambda name: scores[name])  # first of equals: the simplest
    estimator = make_head(best, task, len(X), random_state=random_state, params=chosen[best])
    return estimator, best, scores


def _cross_validated_scores(estimators, X, y, folds, scorer):
    """Each estimator's mean score over the folds.

    Every fold of every group of estimators is one job of a single
    `joblib.Parallel` call (the workers of the surrounding
    ``joblib.parallel_config``), so workers stay busy to the end: one call per
    estimator, as `~sklearn.model_selection.cross_val_score` makes, leaves a
    worker idle whenever the folds do not divide evenly among them.
    Pipelines that differ only in their last step form a group and share
    the fit of the steps before it (the kernel classifier's Nyström map,
    the same for both of its ``C``). The scores are the ones
    ``cross_val_score`` gives each estimator.
    """
    from sklearn.utils.parallel import Parallel, delayed

    X, y = np.asarray(X), np.asarray(y)
    splits = list(folds.split(X, y))
    groups = []
    for index, estimator in enumerate(estimators):
        steps = _leading_steps(estimator)
        group = next((members for members in groups if steps is not None
                      and _leading_steps(estimators[members[0]]) == steps), None)
        if group is None:
            groups.append([index])
        else:
            group.append(index)
    with _quiet_single_thread():
        results = Parallel()(
            delayed(_fold_scores)([estimators[i] for i in members], X, y, train, test, scorer)
            for members in groups for train, test in splits)
    fold_scores = np.empty((len(estimators), len(splits)))
    jobs = iter(results)
    for members in groups:
        for fold in range(len(splits)):
            fold_scores[members, fold] = next(jobs)
    return fold_scores.mean(axis=1)


def _leading_steps(estimator):
    """A pipeline's steps before its last, comparable with ``==``; `None` for other estimators."""
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline) or len(estimator.steps) < 2:
        return None
    return [(name, type(step), step.get_params()) for name, step in estimator.steps[:-1]]


def _fold_scores(estimators, X, y, train, test, scorer):
    """``scorer`` of each of ``estimators`` fitted on rows ``train``, scored on rows ``test``.

    Several estimators are pipelines with the same steps before their last:
    those steps are fitted once, as each pipeline's own fit would fit them.
    """
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]
    if len(estimators) == 1:
        return [float(scorer(clone(estimators[0]).fit(X_train, y_train), X_test, y_test))]
    leading = clone(Pipeline(estimators[0].steps[:-1])).fit(X_train, y_train)
    features = leading.transform(X_train)
    scores = []
    for estimator in estimators:
        name, last = estimator.steps[-1]
        fitted = Pipeline(leading.steps + [(name, clone(last).fit(features, y_train))])
        scores.append(float(scorer(fitted, X_test, y_test)))
    return scores


@contextmanager
def _quiet_single_thread():
    """One BLAS thread, and no MLP `~sklearn.exceptions.ConvergenceWarning` (see `fit_head`)."""
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def fit_head(estimator, X, y):
    """Fit a head with one BLAS thread, without the MLP's `~sklearn.exceptions.ConvergenceWarning`.

    The heads multiply small matrices many times (an MLP epoch on a few
    hundred samples); with several BLAS threads on a busy machine, thread
    hand-offs cost far more than the arithmetic (30× slower measured on a
    loaded 2-core machine), so fitting uses one BLAS thread. An MLP that
    stops at ``max_iter`` is still a usable probe (its ``n_iter_`` says
    where it stopped); the warning would only be noise in a pipeline that
    fits many probes.

    Parameters
    ----------
    estimator : `~sklearn.base.BaseEstimator`
    X, y : array-like

    Returns
    -------
    estimator
        The fitted estimator.

    Examples
    --------
    An MLP head stopped after five epochs, long before it converges: it is
    fitted (in place) without a warning.

    >>> import numpy as np
    >>> from spectok.probes import fit_head, make_head
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4))
    >>> y = X @ [1.0, -2.0, 0.5, 0.0]
    >>> head = make_head("mlp", "regression", n_samples=len(X), random_state=0,
    ...                  params={"max_iter": 5})
    >>> fitted = fit_head(head, X, y)
    >>> fitted is head, fitted.n_iter_, fitted.predict(X[:3]).shape
    (True, 5, (3,))
    """
    with _quiet_single_thread():
        return estimator.fit(X, y)


def predict_in_blocks(method, X, rows=None):
    """``method(X)``, called on blocks of ``rows`` rows and stacked.

    A kernel head compares every row with every training sample; in blocks
    its memory stays bounded however many spectra are predicted at once.

    Parameters
    ----------
    method : callable
        A fitted head's ``predict`` or ``predict_proba``.
    X : `~numpy.ndarray`, shape (n_samples, n_features)
    rows : int, optional
        Rows per call, at least 1; default 1024.

    Returns
    -------
    `~numpy.ndarray`
        What ``method(X)`` returns.

    Raises
    ------
    ValueError
        If ``rows`` is not a positive integer.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.probes import make_head, predict_in_blocks
    >>> head = make_head("kernel", "regression", n_samples=50).fit(np.eye(50), np.arange(50.0))
    >>> X = np.random.default_rng(0).normal(size=(5, 50))
    >>> bool(np.allclose(predict_in_blocks(head.predict, X, rows=2), head.predict(X)))
    True
    """
    rows = _PREDICT_BLOCK_ROWS if rows is None else rows
    if not is_integer(rows) or rows < 1:
        raise ValueError(f"rows must be a positive integer, got {rows!r}")
    if len(X) <= rows:
        return np.asarray(method(X))
    return np.concatenate([np.asarray(method(X[start:start + rows]))
                           for start in range(0, len(X), rows)])


def refit_head(fitted, X, y):
    """A fresh copy of a fitted head (same kind and parameters), fitted on ``X`` and ``y``.

    A ``"knn"`` head asks for no more neighbours than ``X`` has samples, and
    a ``"kernel"`` classifier for no more Nyström components. The probes use
    this to score held-out data with ``calibration="cv"``.

    Parameters
    ----------
    fitted : `~sklearn.base.BaseEstimator`
        A head, fitted or not (only its parameters are copied).
    X, y : array-like

    Returns
    -------
    estimator
        The new, fitted head; ``fitted`` is not changed.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.probes import make_head, refit_head
    >>> head = make_head("knn", "regression", n_samples=100).fit(np.eye(20), np.arange(20.0))
    >>> refit_head(head, np.eye(3), np.arange(3.0)).n_neighbors, head.n_neighbors
    (3, 15)
    """
    from sklearn.base import clone

    head = clone(fitted)
    params = head.get_params()
    for name in ("n_neighbors", "nystroem__n_components"):
        if name in params:
            head.set_params(**{name: min(params[name], len(X))})
    return fit_head(head, X, y)
