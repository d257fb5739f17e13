"""Tests of spectok.probes: scikit-learn conformance, conformal coverage, persistence."""

import json
import pickle
import re
import warnings

import astropy.units as u
import numpy as np
import pytest
import sklearn
from astropy.table import QTable
from safetensors.numpy import save_file
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import spectok
from spectok.adapter import SpectrumInputWarning
from spectok.probes import (HEADS, NotCalibratedError, ProbeFileError, RedshiftProbe,
                            SpectralClassProbe, SpectrumEmbedder, StellarParameterProbe,
                            build_head, calibration_folds, calibration_split,
                            conformal_quantile, load_probe, refit_head,
                            make_head, predict_in_blocks, save_probe, token_features,
                            trusted_types)


# -- scikit-learn conformance --------------------------------------------------------------
# The array-input probes pass every check. StellarParameterProbe is checked with one
# target: the checks feed 1-D (or 5-column) y, and a probe with the default three
# named targets rightly refuses that; its multi-output path is tested below. That target
# is not Teff: the checks' y of a few units are no temperatures in K, which fit refuses.
# SpectrumEmbedder is not checked: it takes spectra, not numeric arrays (see its docstring).
@parametrize_with_checks([RedshiftProbe(), StellarParameterProbe(targets=("logg",)),
                          RedshiftProbe(head="knn", calibration="cv"), SpectralClassProbe(),
                          SpectralClassProbe(head="knn", calibration="cv"),
                          RedshiftProbe(head="kernel"),
                          SpectralClassProbe(head="kernel", calibration="cv")])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# -- conformal calibration ------------------------------------------------------------------

def _regression_problem(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    noise = rng.standard_t(5, size=n) * (0.05 + 0.05 * np.abs(X[:, 1]))
    z = np.exp(0.3 * X[:, 0] - 0.1 * X[:, 2] + noise) - 0.3
    return X, z


@pytest.mark.parametrize("probe, n_calibration", [
    (RedshiftProbe(head="ridge"), 800),
    (StellarParameterProbe(targets=("logg",), head="ridge"), 800),
    (RedshiftProbe(head="ridge", calibration="cv"), 4000),
    (RedshiftProbe(head="knn", calibration="cv"), 4000),
])
def test_interval_coverage(probe, n_calibration):
    X, y = _regression_problem(8000, seed=1)
    train, test = slice(0, 4000), slice(4000, None)
    probe.fit(X[train], y[train])
    assert probe.n_calibration_ == n_calibration
    for alpha, tolerance in ((0.68, 0.05), (0.95, 0.03)):
        lower, upper = probe.predict_interval(X[test], alpha=alpha)
        covered = np.mean((y[test] >= lower) & (y[test] <= upper))
        assert abs(covered - alpha) < tolerance, (alpha, covered)
    lower68, upper68 = probe.predict_interval(X[test], 0.68)
    lower95, upper95 = probe.predict_interval(X[test], 0.95)
    assert np.all(lower95 <= lower68) and np.all(upper95 >= upper68)


def test_multi_output_intervals_and_units():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 5))
    teff = 5500 * np.exp(0.15 * X[:, 0] + 0.02 * rng.normal(size=3000))
    logg = 4.0 + 0.4 * X[:, 1] + 0.05 * rng.normal(size=3000)
    feh = 0.3 * X[:, 2] + 0.05 * rng.normal(size=3000)
    y = np.column_stack([teff, logg, feh])
    probe = StellarParameterProbe(head="ridge").fit(X[:2000], y[:2000])
    assert probe.units_ == {"teff": "K", "logg": "dex(cm / s2)", "feh": "dex"}
    assert probe.target_names_ == ["teff", "logg", "feh"]
    pred = probe.predict(X[2000:])
    assert pred.shape == (1000, 3)
    assert 4000 < np.median(pred[:, 0]) < 7000  # back in K, not log10 K
    lower, upper = probe.predict_interval(X[2000:], 0.68)
    covered = ((y[2000:] >= lower) & (y[2000:] <= upper)).mean(axis=0)
    assert np.all(np.abs(covered - 0.68) < 0.06), covered
    # Teff intervals are symmetric in log10 Teff, hence wider above the prediction
    assert np.all(upper[:, 0] - pred[:, 0] > pred[:, 0] - lower[:, 0])

    table = probe.predict(X[:4], as_quantity=True)
    assert isinstance(table, QTable)
    assert table["teff"].unit == u.K
    assert table["logg"].unit == u.dex(u.cm / u.s ** 2)
    np.testing.assert_allclose(table["teff"].value, probe.predict(X[:4])[:, 0])
    low_q, high_q = probe.predict_interval(X[:4], 0.95, as_quantity=True)
    assert np.all(low_q["feh"] < high_q["feh"])


def test_cross_calibration_fits_the_head_on_every_sample():
    X, z = _regression_problem(500, seed=4)
    cross = RedshiftProbe(head="knn", head_params={"n_neighbors": 1}, calibration="cv").fit(X, z)
    split = RedshiftProbe(head="knn", head_params={"n_neighbors": 1}).fit(X, z)
    # one neighbour: the cross-calibrated head reproduces every training redshift ...
    np.testing.assert_allclose(cross.predict(X), z)
    # ... the split one only those it was fitted on (four fifths)
    assert np.isclose(split.predict(X), z).mean() == pytest.approx(0.8)
    # each score is an out-of-fold error, not the head's zero training error
    assert cross.n_calibration_ == 500 and np.median(cross.calibration_scores_) > 0


@pytest.mark.parametrize("fraction, sizes", [(0.2, [20, 20, 20, 20, 20]), (0.5, [50, 50]),
                                             (0.9, [50, 50]), (0.0, [])])
def test_calibration_folds_cover_every_sample_once(fraction, sizes):
    parts = calibration_folds(100, fraction, np.random.RandomState(0))
    assert [len(part) for part in parts] == sizes
    if parts:
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(100))
    assert calibration_folds(3, 0.2, np.random.RandomState(0)) == []  # too few to fold
    with pytest.raises(ValueError, match="calibration_fraction"):
        calibration_folds(100, 1.0, np.random.RandomState(0))


def test_cross_calibration_needs_four_samples():
    X, z = _regression_problem(3, seed=7)
    probe = RedshiftProbe(head="ridge", calibration="cv").fit(X, z)
    assert probe.n_calibration_ == 0
    with pytest.raises(NotCalibratedError, match="calibration='cv' needs at least 4"):
        probe.predict_interval(X)


def test_refit_head_copies_parameters_not_state():
    X, z = _regression_problem(40, seed=8)
    head = make_head("knn", "regression", n_samples=40, params={"n_neighbors": 10}).fit(X, z)
    small = refit_head(head, X[:4], z[:4])
    assert small is not head and small.n_neighbors == 4 and head.n_neighbors == 10
    np.testing.assert_allclose(small.predict(X[:4]), z[:4])  # fitted on the four only
    mlp = make_head("mlp", "regression", n_samples=40, random_state=3)
    assert refit_head(mlp, X, z).get_params() == mlp.get_params()


def test_kernel_head_fits_what_a_linear_head_cannot():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 4))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2
    test = rng.normal(size=(200, 4))
    truth = np.sin(2 * test[:, 0]) + 0.5 * test[:, 1] ** 2
    errors = {head: np.sqrt(np.mean((make_head(head, "regression", 300).fit(X, y)
                                     .predict(test) - truth) ** 2))
              for head in ("ridge", "kernel")}
    assert errors["kernel"] < 0.3 * errors["ridge"]
    # a ring: no straight line separates the classes
    labels = np.where(np.hypot(X[:, 0], X[:, 1]) > 1.2, "out", "in")
    expected = np.where(np.hypot(test[:, 0], test[:, 1]) > 1.2, "out", "in")
    accuracy = {head: np.mean(make_head(head, "classification", 300, random_state=0)
                              .fit(X, labels).predict(test) == expected)
                for head in ("ridge", "kernel")}
    assert accuracy["kernel"] > 0.9 > accuracy["ridge"]


def test_kernel_head_parameters():
    regressor = make_head("kernel", "regression", 50, params={"gamma": 0.2, "alpha": 1.0})
    assert (regressor.kernel, regressor.gamma, regressor.alpha) == ("rbf", 0.2, 1.0)
    classifier = make_head("kernel", "classification", 50, random_state=1,
                           params={"gamma": 0.2, "C": 3.0, "class_weight": "balanced"})
    nystroem, logistic = (step for _, step in classifier.steps)
    assert (nystroem.gamma, nystroem.n_components, nystroem.random_state) == (0.2, 50, 1)
    assert (logistic.C, logistic.class_weight) == (3.0, "balanced")
    with pytest.raises(ValueError, match="head_params for the 'kernel' head"):
        make_head("kernel", "regression", 50, params={"n_neighbors": 3})
    # refitted on fewer samples than the Nyström map was built from: it shrinks
    X = np.random.default_rng(2).normal(size=(50, 3))
    labels = np.where(X[:, 0] > 0, "a", "b")
    small = refit_head(classifier, X[:20], labels[:20])
    assert small.named_steps["nystroem"].n_components == 20
    assert classifier.named_steps["nystroem"].n_components == 50


def test_auto_head_tunes_the_kernel_width_on_the_features():
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import KFold, cross_val_score

    rng = np.random.default_rng(12)
    X = rng.normal(size=(150, 5))
    y = np.sin(2 * X).sum(axis=1)   # its best kernel is not the first one tried
    estimator, name, scores = build_head("auto", "regression", X, y, random_state=0)
    assert name == "kernel" and scores["kernel"] == max(scores.values())
    # the option kept is the best of the grid, scored on the same folds
    folds = KFold(3, shuffle=True, random_state=0)
    grid = {(width, alpha): np.mean(cross_val_score(
        KernelRidge(kernel="rbf", gamma=width / 5, alpha=alpha), X, y, cv=folds,
        scoring="neg_mean_squared_error"))
        for width in (0.1, 0.3, 1.0) for alpha in (1e-3, 1e-2, 1e-1)}
    best = max(grid, key=grid.get)
    assert (estimator.gamma, estimator.alpha) == pytest.approx((best[0] / 5, best[1]))
    assert scores["kernel"] == pytest.approx(grid[best])
    assert best != (0.1, 1e-3)


def test_auto_head_picks_the_kernel_classifier_for_a_ring():
    X = np.random.default_rng(13).normal(size=(240, 2))
    labels = np.where(np.hypot(X[:, 0], X[:, 1]) > 1.2, "out", "in")
    probe = SpectralClassProbe(head="auto", random_state=0).fit(X, labels)
    assert probe.head_name_ == "kernel"
    logistic = probe.head_.named_steps["logistic"]
    assert logistic.C in (1.0, 10.0)
    assert probe.head_.named_steps["nystroem"].gamma * 2 in (0.1, 0.3, 1.0)


def test_kernel_classifier_parameters_named_twice_are_an_error():
    with pytest.raises(ValueError, match="'gamma' and 'nystroem__gamma' name the same"):
        make_head("kernel", "classification", 50, params={"gamma": 0.1, "nystroem__gamma": 0.5})
    head = make_head("kernel", "classification", 50, params={"n_components": 500,
                                                             "logistic__max_iter": 7})
    assert head.named_steps["nystroem"].n_components == 50
    assert head.named_steps["logistic"].max_iter == 7


@pytest.mark.parametrize("rows", [0, -3, 2.5, True, "8"])
def test_predict_in_blocks_rejects_a_bad_block_size(rows):
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        predict_in_blocks(np.asarray, np.zeros((5, 2)), rows=rows)


@pytest.mark.parametrize("kind", [RedshiftProbe, SpectralClassProbe])
def test_probes_predict_in_blocks_as_at_once(kind, monkeypatch):
    from spectok.probes import heads

    X, probe = _fitted(kind, "kernel")
    whole = probe.predict_proba(X) if kind is SpectralClassProbe else probe.predict(X)
    monkeypatch.setattr(heads, "_PREDICT_BLOCK_ROWS", 7)
    blocks = probe.predict_proba(X) if kind is SpectralClassProbe else probe.predict(X)
    np.testing.assert_allclose(blocks, whole, rtol=1e-12, atol=1e-12)


def test_unknown_calibration_is_an_error():
    X, z = _regression_problem(50, seed=5)
    with pytest.raises(ValueError, match="calibration must be one of"):
        RedshiftProbe(calibration="jackknife").fit(X, z)
    with pytest.raises(ValueError, match="calibration must be one of"):
        SpectralClassProbe(calibration="jackknife").fit(X, z > np.median(z))


def test_stratified_calibration_folds_deal_each_class_over_the_parts():
    groups = np.repeat([0, 1, 2], [50, 30, 1])
    parts = calibration_folds(81, 0.2, np.random.RandomState(0), groups=groups)
    assert len(parts) == 5
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(81))
    for part in parts:
        assert np.sum(groups[part] == 0) == 10 and np.sum(groups[part] == 1) == 6


def test_cross_calibrated_classifier_sets_cover_and_use_every_sample():
    rng = np.random.default_rng(6)
    n = 4000
    X = rng.normal(size=(n, 4))
    y = np.array(["M", "L", "T"])[np.digitize(X[:, 0] + 0.8 * rng.normal(size=n), [-0.5, 0.5])]
    probe = SpectralClassProbe(head="ridge", calibration="cv").fit(X[:2000], y[:2000])
    assert probe.n_calibration_ == 2000
    for alpha, tolerance in ((0.68, 0.05), (0.9, 0.03)):
        sets = probe.predict_set(X[2000:], alpha)
        covered = sets[np.arange(2000), np.searchsorted(probe.classes_, y[2000:])].mean()
        assert abs(covered - alpha) < tolerance, (alpha, covered)


@pytest.mark.parametrize("head", ["ridge", "mlp"])
def test_cross_calibration_with_a_class_of_one(head):
    # the fold that holds the lone sample out leaves one class to fit on
    X = np.random.default_rng(3).normal(size=(50, 3))
    probe = SpectralClassProbe(head=head, calibration="cv", random_state=0).fit(
        X, ["star"] * 49 + ["quasar"])
    assert probe.n_calibration_ == 50 and probe.calibration_scores_[-1] == 1.0


def test_stellar_targets_must_match_y():
    X = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match="shape"):
        StellarParameterProbe(head="ridge").fit(X, X[:, :2] + 5)
    with pytest.raises(ValueError, match="Teff must be positive"):
        StellarParameterProbe(head="ridge").fit(X, np.column_stack([X[:, 0], X[:, 1], X[:, 2]]))


@pytest.mark.parametrize("targets", [{"teff", "logg", "feh"}, {"teff": 0}, b"teff"])
def test_stellar_targets_must_be_ordered_names(targets):
    # a set's order varies between processes, so names could be paired with other columns
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="targets must be a name or a tuple of names"):
        StellarParameterProbe(targets=targets, head="ridge").fit(X, np.abs(X) + 1)


def test_stellar_target_names_ignore_case():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(120, 4))
    y = np.column_stack([5000 + 500 * X[:, 0], 4 + 0.2 * X[:, 1], 0.1 * X[:, 2]])
    lower = StellarParameterProbe(head="ridge").fit(X, y)
    mixed = StellarParameterProbe(targets=("Teff", "LOGG", "FeH"), head="ridge").fit(X, y)
    # the same fit (Teff in log10), under the names as given
    np.testing.assert_array_equal(mixed.predict(X), lower.predict(X))
    for a, b in zip(mixed.predict_interval(X, 0.9), lower.predict_interval(X, 0.9)):
        np.testing.assert_array_equal(a, b)
    assert mixed.target_names_ == ["Teff", "LOGG", "FeH"]
    assert mixed.units_ == {"Teff": "K", "LOGG": "dex(cm / s2)", "FeH": "dex"}
    table = mixed.predict(X[:2], as_quantity=True)
    assert table.colnames == ["Teff", "LOGG", "FeH"] and table["Teff"].unit == u.K
    assert mixed.__sklearn_tags__().target_tags.positive_only
    # Quantities convert to each target's unit (Teff in K was "must be dimensionless")
    quantities = QTable({"Teff": y[:, 0] * u.K, "LOGG": y[:, 1] * u.dex(u.cm / u.s ** 2),
                         "FeH": y[:, 2] * u.dex})
    np.testing.assert_allclose(
        StellarParameterProbe(targets=("Teff", "LOGG", "FeH"), head="ridge")
        .fit(X, quantities).predict(X), lower.predict(X), rtol=1e-9)
    with pytest.raises(ValueError, match=r"distinct names \(ignoring case\), got \('teff', 'Teff'"):
        StellarParameterProbe(targets=("teff", "Teff")).fit(X, y[:, :2])
    with pytest.raises(ValueError, match="targets must be names"):
        StellarParameterProbe(targets=("teff", 2)).fit(X, y[:, :2])


@pytest.mark.parametrize("name", ["teff", "Teff", "TEFF"])
def test_teff_must_be_in_kelvin_not_log10(name):
    rng = np.random.default_rng(10)
    X = rng.normal(size=(60, 3))
    log_teff = 3.7 + 0.05 * X[:, 0]
    with pytest.raises(ValueError, match=r"Teff must be in K, not log10 K: 60 of 60 values are "
                                         r"below 100 K \(the lowest is 3\.5"):
        StellarParameterProbe(targets=(name, "logg"), head="ridge").fit(
            X, np.column_stack([log_teff, 4 + X[:, 1]]))
    with pytest.raises(ValueError, match="Teff must be in K"):   # one bad value is enough
        StellarParameterProbe(targets=name).fit(X, np.append(10 ** log_teff[1:], 3.7))
    # the coldest brown dwarfs (Y dwarfs, ~250 K) are temperatures all right
    cold = StellarParameterProbe(targets=name).fit(X, 250 + 100 * np.abs(X[:, 0]))
    assert np.all(cold.predict(X) > 200)


def test_redshift_must_exceed_minus_one():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match="> -1"):
        RedshiftProbe().fit(X, np.full(30, -1.5))


def test_classifier_prediction_sets_cover():
    rng = np.random.default_rng(3)
    n = 6000
    X = rng.normal(size=(n, 4))
    score = X[:, 0] + 0.8 * rng.normal(size=n)  # overlapping classes
    y = np.array(["M", "L", "T"])[np.digitize(score, [-0.5, 0.5])]
    probe = SpectralClassProbe(head="ridge").fit(X[:3000], y[:3000])
    assert list(probe.classes_) == ["L", "M", "T"]
    proba = probe.predict_proba(X[3000:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    for alpha in (0.68, 0.9):
        sets = probe.predict_set(X[3000:], alpha)
        truth = np.searchsorted(probe.classes_, y[3000:])
        covered = sets[np.arange(len(truth)), truth].mean()
        assert abs(covered - alpha) < 0.04, (alpha, covered)
    assert probe.predict_set(X[3000:], 0.9).sum() >= probe.predict_set(X[3000:], 0.68).sum()


def test_class_probe_quantiles_of_ordered_classes(tmp_path):
    rng = np.random.default_rng(4)
    subtype = rng.integers(0, 8, 600)
    X = np.column_stack([subtype + rng.normal(0, 0.8, 600), rng.normal(size=600)])
    probe = SpectralClassProbe(head="ridge").fit(X[:400], subtype[:400])
    proba = probe.predict_proba(X[400:])
    median = probe.predict_quantile(X[400:])
    # the smallest subtype whose cumulative probability reaches one half, found one by one
    expected = [probe.classes_[next(k for k in range(len(p)) if p[:k + 1].sum() >= 0.5)]
                for p in proba]
    np.testing.assert_array_equal(median, expected)
    low, high = probe.predict_quantile(X[400:], 0.16), probe.predict_quantile(X[400:], 0.84)
    assert np.all(low <= median) and np.all(median <= high) and np.any(low < high)
    assert np.all(probe.predict_quantile(X[400:], 1.0) <= probe.classes_[-1])
    # on an ordered grid the median errs less, on average, than the most probable subtype
    error = np.abs(median - subtype[400:]).mean()
    assert error <= np.abs(probe.predict(X[400:]) - subtype[400:]).mean()
    loaded = SpectralClassProbe.load(probe.save(tmp_path / "subtypes.safetensors"))
    np.testing.assert_array_equal(loaded.predict_quantile(X[400:]), median)
    for q in (0.0, 1.5):
        with pytest.raises(ValueError, match="q must be in"):
            probe.predict_quantile(X[400:], q)
    named = SpectralClassProbe(head="ridge").fit(X[:400], np.array(["M", "L"])[subtype[:400] % 2])
    with pytest.raises(ValueError, match="ordered classes"):
        named.predict_quantile(X[400:])


def test_not_calibrated_and_bad_alpha():
    X = np.random.default_rng(0).normal(size=(40, 3))
    probe = RedshiftProbe(head="ridge", calibration_fraction=0).fit(X, np.abs(X[:, 0]))
    assert probe.n_calibration_ == 0
    with pytest.raises(NotCalibratedError, match="calibration"):
        probe.predict_interval(X)
    calibrated = RedshiftProbe(head="ridge").fit(X, np.abs(X[:, 0]))
    for alpha in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="coverage"):
            calibrated.predict_interval(X, alpha=alpha)
    clf = SpectralClassProbe(calibration_fraction=0).fit(X, X[:, 0] > 0)
    with pytest.raises(NotCalibratedError):
        clf.predict_set(X)


@pytest.mark.parametrize("value", ["0.9", True, None, [0.5, 0.9]])
def test_alpha_q_and_calibration_fraction_that_are_not_one_number_are_named(value):
    # before: "0.9" was taken as 0.9, True as 1.0 ("got 1.0"), None and lists raised
    # float()'s TypeError, and predict_quantile compared them with '<' (TypeError, or an
    # array's "truth value ... is ambiguous")
    X = np.random.default_rng(0).normal(size=(60, 3))
    regressor = RedshiftProbe(head="ridge").fit(X, np.abs(X[:, 0]))
    classifier = SpectralClassProbe().fit(X, (X[:, 0] > 0).astype(int))
    shown = re.escape(repr(value))
    with pytest.raises(ValueError, match=rf"alpha .* must be a number in \(0, 1\), got {shown}"):
        regressor.predict_interval(X, alpha=value)
    with pytest.raises(ValueError, match=rf"alpha .* must be a number in \(0, 1\), got {shown}"):
        classifier.predict_set(X, alpha=value)
    with pytest.raises(ValueError, match=rf"q must be a number in \(0, 1\], got {shown}"):
        classifier.predict_quantile(X, q=value)
    if value is not None:   # None is no calibration fraction either, but scikit-learn's checks
        with pytest.raises(ValueError, match=rf"calibration_fraction must be a number .*"
                                             rf"got {shown}"):
            RedshiftProbe(calibration_fraction=value).fit(X, np.abs(X[:, 0]))
    with pytest.raises(ValueError, match=r"q must be a number in \(0, 1\], got array"):
        classifier.predict_quantile(X, q=np.array([0.5, 0.6]))


@pytest.mark.parametrize("kind", [RedshiftProbe, SpectralClassProbe])
def test_parameters_of_the_wrong_kind_are_refused(kind):
    # before: head_params="alpha" raised "dictionary update sequence element #0 has length
    # 1" (a class probe: "'str' object has no attribute 'get'"), and standardize="no" was
    # taken as True
    X = np.random.default_rng(0).normal(size=(60, 3))
    y = np.where(X[:, 0] > 0, "a", "b") if kind is SpectralClassProbe else np.abs(X[:, 0])
    with pytest.raises(ValueError, match="head_params must be a dict .* got 'alpha'"):
        kind(head_params="alpha").fit(X, y)
    with pytest.raises(ValueError, match=r"head_params must be a dict .* got \[\('C', 1\)\]"):
        kind(head_params=[("C", 1)]).fit(X, y)
    with pytest.raises(ValueError, match="standardize must be True or False, got 'no'"):
        kind(standardize="no").fit(X, y)
    kind(standardize=np.False_, head_params={}).fit(X, y)   # still fine


def test_stellar_targets_and_as_quantity_of_the_wrong_kind_are_refused():
    # before: targets=None raised "'NoneType' object is not iterable", and
    # as_quantity="no" returned a table
    X = np.random.default_rng(0).normal(size=(60, 3))
    y = np.column_stack([5000 + 100 * X[:, 0], 4 + 0.1 * X[:, 1]])
    for targets in (None, 3):
        with pytest.raises(ValueError, match=f"targets must be a name or a tuple of names "
                                             rf"\(strings\), got {targets}"):
            StellarParameterProbe(targets=targets).fit(X, y)
    probe = StellarParameterProbe(targets=np.array(["teff", "logg"])).fit(X, y)
    with pytest.raises(ValueError, match="as_quantity must be True or False, got 'no'"):
        probe.predict(X, as_quantity="no")
    with pytest.raises(ValueError, match="as_quantity must be True or False, got 1"):
        probe.predict_interval(X, as_quantity=1)


def test_not_calibrated_messages_say_what_is_missing():
    X = np.random.default_rng(0).normal(size=(40, 3))
    regressor = StellarParameterProbe(targets="logg", calibration_fraction=0).fit(X, X[:, 0])
    with pytest.raises(NotCalibratedError, match=r"^StellarParameterProbe was fitted without a "
                                                 r"calibration set \(calibration_fraction=0, or "
                                                 r"too few samples\); .* to get intervals$"):
        regressor.predict_interval(X)
    classifier = SpectralClassProbe(calibration="cv").fit(X[:3], [0, 1, 1])
    with pytest.raises(NotCalibratedError, match=r"^SpectralClassProbe was fitted .*classes too "
                                                 r"small \(calibration='cv' needs at least 4\)\); "
                                                 r".* to get prediction sets$"):
        classifier.predict_set(X)


def test_conformal_quantile_rank():
    scores = np.arange(1.0, 20.0)  # 19 scores
    assert conformal_quantile(scores, 0.5) == 10.0  # ceil(20 * 0.5) = 10th
    assert conformal_quantile(scores, 1e-11) == 1.0  # the narrowest, never the widest
    assert conformal_quantile(scores, 0.95) == 19.0
    assert np.isinf(conformal_quantile(scores[:5], 0.9))
    np.testing.assert_array_equal(conformal_quantile(np.column_stack([scores, 2 * scores]), 0.5),
                                  [10.0, 20.0])


def test_calibration_split_is_stratified_and_complete():
    groups = np.repeat([0, 1, 2], [50, 10, 1])
    fit, cal = calibration_split(len(groups), 0.2, np.random.RandomState(0), groups=groups)
    assert sorted(np.concatenate([fit, cal]).tolist()) == list(range(len(groups)))
    assert np.bincount(groups[cal], minlength=3).tolist() == [10, 2, 0]
    with pytest.raises(ValueError, match="calibration_fraction"):
        calibration_split(10, 1.0, np.random.RandomState(0))


def test_heads_are_validated():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="head must be one of"):
        RedshiftProbe(head="forest").fit(X, np.ones(10))
    with pytest.raises(ValueError, match="head_params"):
        make_head("ridge", "regression", 10, params={"no_such_parameter": 1})
    assert make_head("knn", "classification", 4, params={"n_neighbors": 50}).n_neighbors == 4
    for value in (None, 2.7, "3", 0, True):
        with pytest.raises(ValueError, match="head_params 'n_neighbors' must be a positive "):
            make_head("knn", "regression", 10, params={"n_neighbors": value})
    with pytest.raises(ValueError, match="head_params 'n_components' must be a positive"):
        make_head("kernel", "classification", 10, params={"n_components": None})
    assert make_head("knn", "regression", 10, params={"n_neighbors": np.int64(3)}).n_neighbors == 3
    with pytest.raises(ValueError, match="calibration_fraction must be a number"):
        RedshiftProbe(calibration_fraction=None).fit(np.ones((10, 2)), np.ones(10))


def test_targets_as_quantities_and_tables():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4))
    teff = 5000 + 500 * X[:, 0]
    kelvin = StellarParameterProbe(targets="teff").fit(X, teff)
    celsius = (teff * u.K).to(u.deg_C, equivalencies=u.temperature())
    np.testing.assert_allclose(StellarParameterProbe(targets="teff").fit(X, celsius).predict(X),
                               kelvin.predict(X), rtol=1e-9)
    y = np.column_stack([teff, 4 + 0.2 * X[:, 1], 0.1 * X[:, 2]])
    probe = StellarParameterProbe().fit(X, y)
    table = QTable({"teff": y[:, 0] * u.K, "logg": u.Dex(y[:, 1], u.dex(u.cm / u.s ** 2)),
                    "feh": y[:, 2] * u.dex})
    np.testing.assert_allclose(StellarParameterProbe().fit(X, table).predict(X),
                               probe.predict(X), rtol=1e-9)
    # what predict(as_quantity=True) gives is taken back as targets
    StellarParameterProbe().fit(X, probe.predict(X, as_quantity=True))
    with pytest.raises(u.UnitConversionError, match="target 'teff' is given in m"):
        StellarParameterProbe(targets="teff").fit(X, teff * u.m)
    with pytest.raises(u.UnitConversionError, match="'z' must be dimensionless, got .* m"):
        RedshiftProbe().fit(X, np.abs(X[:, 0]) * u.m)
    with pytest.raises(ValueError, match="no column 'feh'"):
        StellarParameterProbe().fit(X, table["teff", "logg"])
    with pytest.raises(ValueError, match="y contains NaN"):   # a masked target, not lost
        masked = QTable(table, masked=True)
        masked["feh"].mask[0] = True
        StellarParameterProbe().fit(X, masked)


def test_class_labels_and_class_weights(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 4))
    y = np.array(["M", "L", "T"])[np.argmax(X[:, :3], axis=1)]
    with pytest.raises(ValueError, match="all strings or all numbers; got a mix of int, str"):
        SpectralClassProbe().fit(X, np.array(["a", 1] * 45, dtype=object))
    for head in ("ridge", "kernel"):
        weighted = SpectralClassProbe(head=head, head_params={"class_weight": {"M": 5.0}},
                                      random_state=0).fit(X, y)
        plain = SpectralClassProbe(head=head, random_state=0).fit(X, y)
        assert np.mean(weighted.predict(X) == "M") > np.mean(plain.predict(X) == "M")
        loaded = load_probe(weighted.save(tmp_path / head))
        assert loaded.predict_proba(X).tobytes() == weighted.predict_proba(X).tobytes()
    numbered = SpectralClassProbe(head_params={"class_weight": {0: 5.0}}).fit(X, X[:, 0] > 0)
    assert load_probe(numbered.save(tmp_path / "numbered")).get_params() == numbered.get_params()
    with pytest.raises(ValueError, match="class_weight names 'X', which is not a class"):
        SpectralClassProbe(head_params={"class_weight": {"X": 2.0}}).fit(X, y)


def test_auto_head_follows_the_data():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    _, linear, scores = build_head("auto", "regression", X, X @ [1.0, -1.0], random_state=0)
    assert linear == "ridge" and scores["ridge"] == max(scores.values())
    # a target no linear model can follow
    _, curved, scores = build_head("auto", "regression", X, np.sin(3 * X[:, 0]), random_state=0)
    assert curved != "ridge" and scores[curved] > scores["ridge"] + 0.1


def test_auto_head_in_probes_records_its_choice(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    probe = RedshiftProbe(head="auto").fit(X, 0.5 + 0.3 * np.sin(3 * X[:, 0]))
    assert probe.head_name_ in HEADS and set(probe.head_scores_) == set(HEADS)
    assert type(probe.head_) is type(make_head(probe.head_name_, "regression", 10))
    loaded = RedshiftProbe.load(probe.save(tmp_path / "auto.safetensors"))
    assert loaded.head_name_ == probe.head_name_ and loaded.head_scores_ == probe.head_scores_
    np.testing.assert_array_equal(loaded.predict(X), probe.predict(X))
    fixed = SpectralClassProbe(head="knn").fit(X, np.where(X[:, 0] > 0, "a", "b"))
    assert fixed.head_name_ == "knn" and fixed.head_scores_ is None


def test_auto_head_chooses_the_number_of_neighbours():
    rng = np.random.default_rng(6)
    X = rng.uniform(size=(300, 1))
    y = np.sin(60 * X[:, 0])   # wiggles a few samples wide: only close neighbours follow them
    estimator, name, _ = build_head("auto", "regression", X, y, random_state=0)
    assert name == "knn" and estimator.n_neighbors <= 5
    named, _, _ = build_head("knn", "regression", X, y)
    assert named.n_neighbors == 15   # a named head keeps its defaults


def test_auto_head_takes_a_scorer():
    X = np.random.default_rng(4).normal(size=(120, 2))

    def prefers_neighbours(estimator, X, y):
        return 1.0 if type(estimator).__name__.startswith("KNeighbors") else 0.0

    _, name, scores = build_head("auto", "regression", X, X @ [1.0, -1.0], random_state=0,
                                 scoring=prefers_neighbours)
    assert name == "knn" and scores == {"ridge": 0.0, "knn": 1.0, "mlp": 0.0, "kernel": 0.0}


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_auto_head_scores_are_cross_val_scores_in_one_or_two_threads(task):
    # build_head fits every (option, fold) pair in one parallel call; each head's score
    # must still be what cross_val_score gives its best option, with or without workers
    from joblib import parallel_config
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    from spectok.probes.heads import _auto_options

    rng = np.random.default_rng(14)
    X = rng.normal(size=(90, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1]
    if task == "classification":
        y = np.digitize(y, [-0.5, 0.5])
        folds = StratifiedKFold(3, shuffle=True, random_state=7)
    else:
        folds = KFold(3, shuffle=True, random_state=7)
    scoring = "accuracy" if task == "classification" else "neg_mean_squared_error"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # as build_head ignores it
        expected = {head: max(np.mean(cross_val_score(
            make_head(head, task, 60, random_state=7, params=option), X, y, cv=folds,
            scoring=scoring)) for option in _auto_options(head, task, 3, 60)) for head in HEADS}
    _, _, serial = build_head("auto", task, X, y, random_state=7)
    with parallel_config(backend="threading", n_jobs=2):
        _, _, threaded = build_head("auto", task, X, y, random_state=7)
    assert serial == threaded == expected


def test_auto_head_reports_a_head_that_cannot_be_fitted():
    X = np.random.default_rng(16).normal(size=(30, 2))
    X[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        build_head("auto", "regression", X, X[:, 0], random_state=0)


def test_auto_head_fits_a_nystroem_map_once_for_both_c(monkeypatch):
    from sklearn.kernel_approximation import Nystroem

    fits = []
    original = Nystroem.fit
    monkeypatch.setattr(Nystroem, "fit", lambda self, *a, **k: fits.append(self.gamma)
                        or original(self, *a, **k))
    X = np.random.default_rng(15).normal(size=(60, 2))
    build_head("auto", "classification", X, (X[:, 0] > 0).astype(int), random_state=0)
    # three widths, three folds; each map serves C = 1 and C = 10
    assert len(fits) == 9 and len(set(fits)) == 3


def test_redshift_heads_are_compared_by_capped_outlier_error():
    from spectok.probes.regression import _capped_redshift_error_score

    class Shifted:   # predicts the standardised target shifted by fixed amounts
        def predict(self, X):
            return X[:, 0]

    # |Δz|/(1+z) = 0.01, 0.2 and 1/3 (a prediction too low); the last two are capped at 0.05
    delta = np.log([1.01, 1.2, 1 / 1.5])
    score = _capped_redshift_error_score(Shifted(), (delta / 2)[:, None], np.zeros(3), scale=2.0)
    assert score == pytest.approx(-(0.01 + 0.05 + 0.05) / 3)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 3))
    probe = RedshiftProbe(head="auto").fit(X, 0.5 + 0.3 * np.sin(3 * X[:, 0]))
    assert all(-0.05 <= value <= 0 for value in probe.head_scores_.values())


def test_auto_head_refuses_what_it_cannot_do():
    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(ValueError, match="needs at least 3 samples to fit on"):
        RedshiftProbe(head="auto", calibration_fraction=0.5).fit(X[:3], np.abs(X[:3, 0]))
    with pytest.raises(ValueError, match="name a head to give head_params"):
        RedshiftProbe(head="auto", head_params={"alpha": 1.0}).fit(X, np.abs(X[:, 0]))
    y = np.array(["common"] * 38 + ["rare"] * 2)
    with pytest.raises(ValueError, match="needs at least 3 samples of every class"):
        SpectralClassProbe(head="auto").fit(X, y)


# -- persistence ---------------------------------------------------------------------------

def _fitted(kind, head, n_features=5):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(150, n_features))
    if kind is SpectralClassProbe:
        return X, kind(head=head).fit(X, np.where(X[:, 0] > 0, "star", "galaxy"))
    if kind is StellarParameterProbe:
        y = np.column_stack([5000 + 500 * X[:, 0], 4 + 0.2 * X[:, 1], 0.1 * X[:, 2]])
        return X, kind(head=head).fit(X, y)
    return X, kind(head=head).fit(X, np.abs(X[:, 0]))


@pytest.mark.parametrize("kind", [RedshiftProbe, StellarParameterProbe, SpectralClassProbe])
@pytest.mark.parametrize("head", HEADS)
def test_save_load_round_trip(kind, head, tmp_path):
    X, probe = _fitted(kind, head)
    path = probe.save(tmp_path / "probe.safetensors")
    loaded = kind.load(path)
    assert type(loaded) is kind
    assert loaded.get_params() == probe.get_params()
    np.testing.assert_array_equal(loaded.predict(X), probe.predict(X))
    if kind is SpectralClassProbe:
        np.testing.assert_array_equal(loaded.predict_proba(X), probe.predict_proba(X))
        np.testing.assert_array_equal(loaded.predict_set(X, 0.9), probe.predict_set(X, 0.9))
        assert loaded.classes_.tolist() == probe.classes_.tolist()
    else:
        for a, b in zip(loaded.predict_interval(X, 0.9), probe.predict_interval(X, 0.9)):
            np.testing.assert_array_equal(a, b)
    assert load_probe(path).__class__ is kind


def test_load_refuses_pickles(tmp_path):
    _, probe = _fitted(RedshiftProbe, "ridge")
    path = tmp_path / "probe.safetensors"
    path.write_bytes(pickle.dumps(probe))
    with pytest.raises(ProbeFileError, match="pickle"):
        load_probe(path)
    # protocol 0 has no pickle marker byte: it is refused as a non-safetensors file
    path.write_bytes(pickle.dumps(probe, protocol=0))
    with pytest.raises(ProbeFileError, match="not a safetensors probe file"):
        RedshiftProbe.load(path)


def test_a_probe_file_whose_first_byte_is_a_pickle_marker_loads(tmp_path):
    # safetensors files begin with the header's length; one in 256 lengths
    # begins with 0x80, the byte that opens a pickle: pad the header to one
    X, probe = _fitted(RedshiftProbe, "ridge")
    raw = probe.save(tmp_path / "probe.safetensors").read_bytes()
    length = int.from_bytes(raw[:8], "little")
    padded = length + (0x80 - length) % 256
    path = tmp_path / "padded.safetensors"
    path.write_bytes(padded.to_bytes(8, "little") + raw[8:8 + length]
                     + b" " * (padded - length) + raw[8 + length:])
    assert path.read_bytes()[:1] == b"\x80"
    np.testing.assert_array_equal(RedshiftProbe.load(path).predict(X), probe.predict(X))


def test_load_refuses_untrusted_types(tmp_path):
    path = tmp_path / "evil.safetensors"
    tree = {"t": "estimator", "class": "os.system", "params": {"t": "dict", "v": {}},
            "state": {"t": "dict", "v": {}}}
    versions = json.dumps({"sklearn": sklearn.__version__, "spectok": spectok.__version__})
    save_file({"a0": np.zeros(1)}, str(path),
              metadata={"format": "spectok-probe", "format_version": "1",
                        "versions": versions, "probe": json.dumps(tree)})
    with pytest.raises(ProbeFileError, match="untrusted type 'os.system'"):
        load_probe(path)


def test_load_refuses_other_files(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file({"w": np.ones(3, np.float32)}, str(path))
    with pytest.raises(ProbeFileError, match="not a spectok probe"):
        load_probe(path)
    with pytest.raises(FileNotFoundError):
        load_probe(tmp_path / "missing.safetensors")
    _, probe = _fitted(RedshiftProbe, "ridge")
    probe.save(path)
    with pytest.raises(ProbeFileError, match="not a SpectralClassProbe"):
        SpectralClassProbe.load(path)


@pytest.mark.parametrize("kind", [StellarParameterProbe, SpectralClassProbe])
def test_round_trip_is_bitwise_with_many_features(kind, tmp_path):
    # scikit-learn keeps ridge coefficients in Fortran order; a matrix product's
    # last bits depend on the layout, which a C-order copy would change
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 64))
    y = (np.column_stack([5000 + 500 * X[:, 0], 4 + 0.2 * X[:, 1], 0.1 * X[:, 2]])
         if kind is StellarParameterProbe else np.where(X[:, 0] > 0, "star", "galaxy"))
    probe = kind(head="ridge").fit(X, y)
    loaded = load_probe(probe.save(tmp_path / "probe"))
    method = "predict" if kind is StellarParameterProbe else "predict_proba"
    assert getattr(loaded, method)(X).tobytes() == getattr(probe, method)(X).tobytes()


def _probe_file_with(tmp_path, edit):
    """A saved probe whose JSON description ``edit`` has changed, and its path."""
    from safetensors.numpy import load_file, safe_open

    _, probe = _fitted(RedshiftProbe, "ridge")
    path = probe.save(tmp_path / "probe.safetensors")
    with safe_open(str(path), "np") as f:
        metadata = f.metadata()
    metadata = edit(dict(metadata))
    save_file(load_file(str(path)), str(path), metadata=metadata)
    return path


def _tree_edit(change):
    def edit(metadata):
        tree = json.loads(metadata["probe"])
        change(tree)
        return {**metadata, "probe": json.dumps(tree)}
    return edit


@pytest.mark.parametrize("edit", [
    _tree_edit(lambda tree: tree.pop("params")),
    _tree_edit(lambda tree: tree["params"].pop("v")),
    _tree_edit(lambda tree: tree["params"].update(v=[1, 2])),
    lambda metadata: {**metadata, "versions": "[]"},
    lambda metadata: {**metadata, "probe": "[" * 100_000 + "]" * 100_000},
], ids=["no params", "no value", "dict as list", "versions a list", "deep nesting"])
def test_a_tampered_probe_file_is_a_probe_file_error(tmp_path, edit):
    with pytest.raises(ProbeFileError, match="probe.safetensors"):
        load_probe(_probe_file_with(tmp_path, edit))


@pytest.mark.parametrize("value", [3, [RedshiftProbe(), RedshiftProbe()],
                                   {"a": RedshiftProbe()}])
def test_save_probe_refuses_what_load_probe_would_refuse_before_writing(tmp_path, value):
    path = tmp_path / "probes.safetensors"
    with pytest.raises(TypeError, match="save_probe writes one probe or scikit-learn estimator, "
                                        "not a (int|list|dict); save each probe to its own"):
        save_probe(value, path)
    assert not path.exists()


def test_a_probe_file_that_holds_no_estimator_is_refused(tmp_path):
    # before: load_probe returned the number 3 of a file whose description was {"t": "py", "v": 3}
    def a_number(metadata):
        return {**metadata, "probe": json.dumps({"t": "py", "v": 3})}

    with pytest.raises(ProbeFileError, match="does not hold an estimator"):
        load_probe(_probe_file_with(tmp_path, a_number))


def test_save_into_a_missing_directory_names_the_directory(tmp_path):
    # before: safetensors' "I/O error: No such file or directory ... at path .../.tmpXXXX"
    _, probe = _fitted(RedshiftProbe, "ridge")
    with pytest.raises(FileNotFoundError, match=f"directory {re.escape(str(tmp_path / 'no'))} "
                                                "does not exist"):
        probe.save(tmp_path / "no" / "probe.safetensors")
    assert not (tmp_path / "no").exists()


def test_save_refuses_unknown_objects(tmp_path):
    _, probe = _fitted(RedshiftProbe, "ridge")
    probe.extra_ = object()
    with pytest.raises(TypeError, match="cannot store an object"):
        save_probe(probe, tmp_path / "x.safetensors")
    assert "spectok.probes.RedshiftProbe" in trusted_types()


# -- the embedder ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [RedshiftProbe, StellarParameterProbe, SpectralClassProbe])
def test_probes_refuse_spectra_and_tokens(kind, tiny_model, make_pair, spectrum):
    pairs = [make_pair(seed=0), make_pair(seed=1)]
    batch = spectok.encode(pairs, model=tiny_model)
    X, probe = _fitted(kind, "ridge", n_features=tiny_model.config.width)
    y = probe.predict(X)
    methods = [probe.predict, lambda features: kind(head="ridge").fit(features, y[:2]),
               *([probe.predict_proba, probe.predict_set] if kind is SpectralClassProbe
                 else [probe.predict_interval])]
    inputs = {"a TokenBatch": batch, "a SpectralTokens": batch[0],
              "a list of SpectralTokens": list(batch),
              "an array of SpectralTokens": np.array(list(batch), dtype=object),
              "a Spectrum": spectrum, "a list of Spectrum": [spectrum, spectrum],
              "a (wavelength, flux) tuple": pairs[0],
              "a list of (wavelength, flux) tuples": pairs}
    for method in methods:
        for what, value in inputs.items():
            with pytest.raises(TypeError, match=(
                    rf"^{kind.__name__} takes features as a 2-D array, not {re.escape(what)}: "
                    r"pass the embeddings, batch.embedding of batch = spectok.encode\(spectra\), "
                    r".* put a SpectrumEmbedder before the probe: "
                    rf"make_pipeline\(SpectrumEmbedder\(\), {kind.__name__}\(\)\)$")):
                method(value)
    assert len(probe.predict(batch.embedding)) == 2   # what the message says to pass works


def test_embedder_in_a_pipeline(tiny_model, make_pair):
    spectra = [make_pair(n=120 + 5 * i, seed=i) for i in range(24)]
    embedder = SpectrumEmbedder(model=tiny_model, batch_size=8)
    X = embedder.fit_transform(spectra)
    assert X.shape == (24, tiny_model.config.width)
    assert embedder.n_features_out_ == tiny_model.config.width
    assert embedder.model_name_ == "unnamed"
    assert embedder.get_feature_names_out()[0] == "embedding0"
    # one spectrum alone gives a one-row array, equal to its row in the batch
    np.testing.assert_allclose(embedder.transform(spectra[3])[0], X[3], atol=1e-5)
    z = np.linspace(0.0, 1.0, 24)
    pipeline = make_pipeline(SpectrumEmbedder(model=tiny_model),
                             RedshiftProbe(head="ridge")).fit(spectra, z)
    assert pipeline.predict(spectra[:2]).shape == (2,)


def test_embedder_adds_tokens_aligned_on_wavelength_bins(tiny_model, make_pair):
    spectra = [make_pair(n=150, seed=1), make_pair(n=300, lo=4500, hi=6000, seed=2)]
    bins = np.geomspace(3800, 6200, 9) * u.AA
    embedder = SpectrumEmbedder(model=tiny_model, wavelength_bins=bins).fit()
    X = embedder.transform(spectra)
    c = tiny_model.config
    assert X.shape == (2, c.width + 8 * c.token_dim) == (2, embedder.n_features_out_)
    names = embedder.get_feature_names_out()
    assert len(names) == X.shape[1] and names[c.width] == "bin0_token0"
    assert names[-1] == f"bin7_token{c.token_dim - 1}"
    pooled = SpectrumEmbedder(model=tiny_model).transform(spectra)
    np.testing.assert_allclose(X[:, :c.width], pooled, atol=1e-6)
    tokens = spectok.encode(spectra, model=tiny_model)
    np.testing.assert_allclose(X[:, c.width:], tokens.aligned(bins).filled(0.0).reshape(2, -1),
                               atol=1e-6)
    assert np.all(X[0, -c.token_dim:] == 0)   # the first spectrum stops at 5000 Å
    np.testing.assert_array_equal(token_features(tokens, bins), X)
    np.testing.assert_array_equal(token_features(tokens), tokens.embedding)
    np.testing.assert_array_equal(token_features(tokens[1], bins), X[1:])   # one spectrum's
    # every spectrum skipped: no rows, but the model's columns
    bad = (spectra[0][0], np.full(150, np.nan) * spectra[0][1].unit)
    with pytest.warns(SpectrumInputWarning, match="skipped 1 of 1"):
        empty = spectok.encode([bad], model=tiny_model, errors="warn")
    assert empty.embedding.shape == (0, c.width)
    assert empty.aligned(bins).shape == (0, 8, c.token_dim)
    assert token_features(empty, bins).shape == (0, X.shape[1])
    with pytest.raises(ValueError, match="strictly ascending or descending"):
        SpectrumEmbedder(model=tiny_model, wavelength_bins=[4000, 5000, 4500] * u.AA).fit()
