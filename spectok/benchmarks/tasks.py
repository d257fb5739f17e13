"""The benchmark tasks. Each takes a `BenchmarkContext` and adds rows to its report.

The data, splits and constants the tasks share are in
`spectok.benchmarks.context`; the scores in `spectok.benchmarks.metrics`.
"""

import time
import warnings
from functools import partial

import astropy.units as u
import numpy as np

from ..probes import AUTO_FOLDS, RedshiftProbe, SpectralClassProbe, StellarParameterProbe
from .context import (CLASS_INSTRUMENTS, CLASS_WINDOW, GALAXY_INSTRUMENTS, STAR_INSTRUMENTS,
                      STAR_PAIRS, _spectra_and_z)
from .features import _prepare, choose_hidden_patches
from .figures import embedding_figure, panel_figure, reconstruction_figure
from .matched_twins import matched_chi2
from .metrics import _coverage, _outliers, _r2, diagonal_ranks, nmad, twin_ranks

__all__ = ["TASKS"]


def stellar_parameters(ctx):
    """Teff, log g and [Fe/H] of MILES stars (split by star)."""
    data = ctx.data
    train, test = data.miles_split()
    train = data.subset(train, data.sizes["miles_train"], 1)
    test = data.subset(test, data.sizes["miles_test"], 2)
    miles = data.miles()
    labels = miles.labels
    y = np.column_stack([np.asarray(labels[c].filled(np.nan), dtype=float)
                         for c in ("teff", "logg", "feh")])
    spectra = miles.spectra
    feats = ctx.features("miles", [spectra[i] for i in train], [spectra[i] for i in test])
    names = (("Teff", "K"), ("log g", "dex"), ("[Fe/H]", "dex"))
    results = {}
    for method, (x_train, (x_test,)) in feats.items():
        probe = StellarParameterProbe(head="auto", calibration="cv", random_state=ctx.seed).fit(
            x_train, y[train])
        ctx.record_head("MILES parameters", method, probe)
        pred = probe.predict(x_test)
        truth = y[test]
        res = {}
        for k, (name, _) in enumerate(names):
            err = pred[:, k] - truth[:, k]
            res[f"{name} RMSE"] = float(np.sqrt(np.mean(err ** 2)))
            res[f"{name} MAE"] = float(np.mean(np.abs(err)))
        # σ_MAD (normalised median absolute deviation) of the residuals, all in dex
        res["log10 Teff σ_MAD"] = nmad(np.log10(pred[:, 0]) - np.log10(truth[:, 0]))
        res["log g σ_MAD"] = nmad(pred[:, 1] - truth[:, 1])
        res["[Fe/H] σ_MAD"] = nmad(pred[:, 2] - truth[:, 2])
        for alpha in (0.68, 0.95):
            lower, upper = probe.predict_interval(x_test, alpha)
            res[f"{alpha:.0%} interval coverage"] = _coverage(truth, lower, upper)
            if method == "spectok" and alpha == 0.68:
                ctx.report.add_figure("stellar_parameters", partial(panel_figure, [
                    {"title": name, "label": f"{name} ({unit})", "truth": truth[:, k],
                     "predicted": pred[:, k], "interval": (lower[:, k], upper[:, k])}
                    for k, (name, unit) in enumerate(names)],
                    f"MILES test stars, {ctx.model_name} embeddings, 68 % intervals"))
        results[method] = res
    for name, unit in names:
        for stat in ("RMSE", "MAE"):
            metric = f"{name} {stat}"
            ctx.report.add("stellar_parameters", metric, {m: r[metric] for m, r in results.items()},
                           unit=unit, better="lower", n=len(test))
    for name in ("log10 Teff", "log g", "[Fe/H]"):
        metric = f"{name} σ_MAD"
        ctx.report.add("stellar_parameters", metric, {m: r[metric] for m, r in results.items()},
                       unit="dex", better="lower", n=len(test))
    for alpha in (0.68, 0.95):
        metric = f"{alpha:.0%} interval coverage"
        ctx.report.add("stellar_parameters", metric, {m: r[metric] for m, r in results.items()},
                       better=f"≈{alpha}", n=len(test))


def spectral_types(ctx):
    """M/L/T class and numeric subtype of SpeX near-infrared spectra (split by source)."""
    data = ctx.data
    train, test = data.spex_split()
    spex = data.spex()
    labels = spex.labels
    classes = np.asarray(labels["spectral_class"].filled(""))
    spt = np.asarray(labels["spt"].filled(np.nan), dtype=float)
    types, sources = np.unique(spt[train], return_counts=True)
    learnt_types = types[sources >= AUTO_FOLDS]
    feats = ctx.features("spex", [spex.spectra[i] for i in train],
                         [spex.spectra[i] for i in test])
    accuracy, rmse, set_size, mae, within1 = {}, {}, {}, {}, {}
    for method, (x_train, (x_test,)) in feats.items():
        clf = SpectralClassProbe(head="auto", calibration="cv", random_state=ctx.seed).fit(
            x_train, classes[train])
        ctx.record_head("SpeX classes", method, clf)
        predicted_class = clf.predict(x_test)
        accuracy[method] = float(np.mean(predicted_class == classes[test]))
        set_size[method] = float(clf.predict_set(x_test, 0.9).sum(axis=1).mean())
        # subtypes are an ordered grid of types: classify, and predict each source's median
        # type; head="auto" cross-validates with every type in every fold, so types with
        # fewer training sources than folds are not learnt
        typed = np.isin(spt[train], learnt_types)
        subtypes = SpectralClassProbe(head="auto", calibration_fraction=0,
                                      random_state=ctx.seed).fit(x_train[typed], spt[train][typed])
        ctx.record_head("SpeX subtypes", method, subtypes)
        predicted_spt = subtypes.predict_quantile(x_test, 0.5)
        err = predicted_spt - spt[test]
        rmse[method] = float(np.sqrt(np.mean(err ** 2)))
        mae[method] = float(np.mean(np.abs(err)))
        within1[method] = float(np.mean(np.abs(err) <= 1.0))
        if method == "spectok":
            ctx.report.add_figure("spectral_types", partial(panel_figure, [
                {"title": "M/L/T class", "classes": ["M", "L", "T"], "truth": classes[test],
                 "predicted": predicted_class},
                {"title": "numeric subtype", "label": "subtype", "truth": spt[test],
                 "predicted": predicted_spt}],
                f"SpeX test sources, {ctx.model_name} embeddings"))
    ctx.report.add("spectral_types", "M/L/T accuracy", accuracy, better="higher", n=len(test))
    ctx.report.add("spectral_types", "90% prediction set size", set_size, unit="classes",
                   better="lower", n=len(test))
    ctx.report.add("spectral_types", "subtype RMSE", rmse, unit="subtypes", better="lower",
                   n=len(test))
    ctx.report.add("spectral_types", "subtype MAE", mae, unit="subtypes", better="lower",
                   n=len(test))
    ctx.report.add("spectral_types", "fraction within ±1 subtype", within1, better="higher",
                   n=len(test))


def _redshift_panel(title, truth, predicted, interval=None):
    return {"title": title, "label": "z", "truth": truth, "predicted": predicted,
            "interval": interval, "outlier_bound": 0.05}


def redshift(ctx):
    """Galaxy redshift: trained on simulations, tested on simulations and real DESI/MaNGA."""
    data = ctx.data
    train_spectra, z_train = _spectra_and_z(data.galaxies("train", i) for i in GALAXY_INSTRUMENTS)
    test_spectra, z_test = _spectra_and_z(data.galaxies("test", i) for i in GALAXY_INSTRUMENTS)
    desi, manga = data.desi(), data.manga()
    z_desi = np.asarray(desi.labels["z"], dtype=float)
    z_manga = np.asarray(manga.labels["z"], dtype=float)
    feats = ctx.features("galaxies", train_spectra, test_spectra, desi.spectra, manga.spectra)
    rows = {"σ_NMAD of Δz/(1+z), simulated": {}, "outliers |Δz|/(1+z) > 0.15": {},
            "outliers |Δz|/(1+z) > 0.05": {}, "R² of z, simulated": {},
            "68% interval coverage": {}, "median |Δz|/(1+z), DESI": {},
            "median |Δz|/(1+z), MaNGA": {}}
    # one row per real object: its predicted z, the best being the closest to the truth
    objects = [(f"{name} {obj_id}: predicted z (true {z:.4g})", f"≈{z:.4g}", name, k)
               for name, ds, zs in (("DESI", desi, z_desi), ("MaNGA", manga, z_manga))
               for k, (obj_id, z) in enumerate(zip(ds.labels["id"], zs))]
    per_object = {metric: {} for metric, *_ in objects}

    def score(method, z_pred, predicted):
        dz = (z_pred - z_test) / (1 + z_test)
        rows["σ_NMAD of Δz/(1+z), simulated"][method] = nmad(dz[np.isfinite(dz)])
        rows["outliers |Δz|/(1+z) > 0.15"][method] = _outliers(dz, 0.15)
        rows["outliers |Δz|/(1+z) > 0.05"][method] = _outliers(dz, 0.05)
        rows["R² of z, simulated"][method] = _r2(z_test, z_pred)
        for name, z in (("DESI", z_desi), ("MaNGA", z_manga)):
            rows[f"median |Δz|/(1+z), {name}"][method] = float(
                np.median(np.abs(predicted[name] - z) / (1 + z)))
        for metric, _, name, k in objects:
            per_object[metric][method] = float(predicted[name][k])

    panels = []
    for method, (x_train, (x_test, x_desi, x_manga)) in feats.items():
        probe = RedshiftProbe(head="auto", calibration="cv", random_state=ctx.seed).fit(
            x_train, z_train)
        ctx.record_head("galaxy redshifts", method, probe)
        z_pred = probe.predict(x_test)
        score(method, z_pred, {"DESI": np.ravel(probe.predict(x_desi)),
                               "MaNGA": np.ravel(probe.predict(x_manga))})
        lower, upper = probe.predict_interval(x_test, 0.68)
        rows["68% interval coverage"][method] = _coverage(z_test, lower, upper)
        if method == "spectok":
            panels.append(_redshift_panel(f"{ctx.model_name} + RedshiftProbe", z_test, z_pred,
                                          (lower, upper)))
    fit = ctx.template_fit("galaxies")
    z_fit = fit.predict(test_spectra)
    seconds = fit.seconds_per_spectrum_
    score("template_fit", z_fit, {"DESI": fit.predict(desi.spectra),
                                  "MaNGA": fit.predict(manga.spectra)})
    panels.append(_redshift_panel("template fit", z_test, z_fit))
    ctx.report.add_figure("redshift", partial(panel_figure, panels,
                                              "held-out simulated galaxies (SDSS, DESI, LAMOST)"))
    n = {"median |Δz|/(1+z), DESI": len(z_desi), "median |Δz|/(1+z), MaNGA": len(z_manga)}
    for metric, values in rows.items():
        better = {"68% interval coverage": "≈0.68", "R² of z, simulated": "higher"}.get(
            metric, "lower")
        ctx.report.add("redshift", metric, values, better=better, n=n.get(metric, len(z_test)))
    for metric, better, _, _ in objects:
        ctx.report.add("redshift", metric, per_object[metric], better=better, n=1)
    ctx.report.add("redshift", "template fit: seconds per spectrum", {"template_fit": seconds},
                   unit="s", better="lower", n=len(z_test))


def _crop(spectrum, lo, hi):
    """The part of a spectrum (or of each arm of a list) between ``lo`` and ``hi`` Å."""
    from specutils import Spectrum, SpectrumList

    if isinstance(spectrum, SpectrumList):
        arms = [_crop(arm, lo, hi) for arm in spectrum]
        return SpectrumList([arm for arm in arms if arm is not None])
    wave = spectrum.spectral_axis.to_value(u.AA, equivalencies=u.spectral())
    keep = np.flatnonzero((wave >= lo) & (wave <= hi))
    if not len(keep):
        return None
    # A new Spectrum from slices of the arrays: ~12x faster than slicing the
    # Spectrum, which deep-copies it (a quarter of the classification task's time).
    part = slice(keep[0], keep[-1] + 1)
    return Spectrum(spectral_axis=spectrum.spectral_axis[part], flux=spectrum.flux[part],
                    uncertainty=None if spectrum.uncertainty is None else
                    spectrum.uncertainty[part],
                    mask=None if spectrum.mask is None else spectrum.mask[part],
                    meta=dict(spectrum.meta))


def _cropped(spectra):
    return [_crop(s, *CLASS_WINDOW) for s in spectra]


def _mostly_covered(spectrum, fraction=0.5):
    """Whether at least ``fraction`` of the pixels are unmasked (all arms together)."""
    arms = spectrum if isinstance(spectrum, list) else [spectrum]
    masks = [np.zeros(len(a.flux), bool) if a.mask is None else np.asarray(a.mask) for a in arms]
    return np.mean(~np.concatenate(masks)) >= fraction


def object_classes(ctx):
    """Star / galaxy / quasar classification of SDSS-like and DESI-like spectra.

    Stars are MILES stars (benchmark split), galaxies and quasars held-out
    simulations, all cropped to `CLASS_WINDOW` (objects with less than half
    of the window unmasked are left out). A probe per instrument is
    scored on its own instrument; a probe on both is also applied to the
    real DESI and MaNGA galaxies and the real optical quasars, object by object.
    """
    from ..datasets import load_quasar_examples

    data = ctx.data
    classes = ("star", "galaxy", "quasar")

    def sets(part, instrument):
        # Simulated galaxies at high z whose template library ends blue of
        # the window are (correctly) mostly masked there: leave those out.
        stars = data.star_views("test" if part == "test" else "train", instrument)
        galaxies = data.galaxies(part, instrument).spectra
        quasars = data.quasars(part, instrument).spectra
        if part == "train":   # the redshift tasks need more of them than this one
            galaxies = galaxies[:data.sizes["class_galaxies"]]
            quasars = quasars[:data.sizes["class_quasars"]]
        labels = np.repeat(classes, [len(stars), len(galaxies), len(quasars)])
        spectra = _cropped(list(stars) + list(galaxies) + list(quasars))
        keep = [k for k, spectrum in enumerate(spectra) if _mostly_covered(spectrum)]
        return [spectra[k] for k in keep], labels[keep]

    quasars_real = load_quasar_examples()
    optical = [i for i, inst in enumerate(quasars_real.labels["instrument"])
               if inst in ("BOSS", "Keck/ESI", "Magellan/MagE")]
    real = [("DESI", data.desi(), "galaxy", range(len(data.desi()))),
            ("MaNGA", data.manga(), "galaxy", range(len(data.manga()))),
            ("quasar", quasars_real, "quasar", optical)]
    real_spectra = _cropped([ds.spectra[i] for _, ds, _, rows in real for i in rows])
    real_truth = [cls for _, _, cls, rows in real for _ in rows]
    real_names = [f"{what} {ds.labels['id'][i]}" for what, ds, _, rows in real for i in rows]

    train = {inst: sets("train", inst) for inst in CLASS_INSTRUMENTS}
    test = {inst: sets("test", inst) for inst in CLASS_INSTRUMENTS}
    order = [train[i][0] for i in CLASS_INSTRUMENTS] + [test[i][0] for i in CLASS_INSTRUMENTS]
    feats = ctx.features("galaxies", [s for spectra in order for s in spectra], real_spectra,
                         need_train=True)
    sizes = np.cumsum([0] + [len(spectra) for spectra in order])
    rows, panels = {}, []
    per_object = {name: {} for name in real_names}
    # The score is the mean per-class accuracy, and the classes are not equally
    # many (150 training stars, more quasars, and as many galaxies as the window
    # leaves): weight them equally in the fit too.
    balanced = {"class_weight": "balanced"}
    # no prediction sets are reported here: fit on every training sample, calibrate nothing
    options = {"random_state": ctx.seed, "head_params": balanced, "calibration_fraction": 0}
    for method, (x_all, (x_real,)) in feats.items():
        blocks = [x_all[a:b] for a, b in zip(sizes[:-1], sizes[1:])]
        x_train = dict(zip(CLASS_INSTRUMENTS, blocks[:len(CLASS_INSTRUMENTS)]))
        x_test = dict(zip(CLASS_INSTRUMENTS, blocks[len(CLASS_INSTRUMENTS):]))
        for inst in CLASS_INSTRUMENTS:
            probe = SpectralClassProbe(**options).fit(x_train[inst], train[inst][1])
            predicted, truth = probe.predict(x_test[inst]), test[inst][1]
            per_class = [float(np.mean(predicted[truth == c] == c)) for c in classes]
            if method == "spectok":
                panels.append({"title": f"{inst}-like", "classes": list(classes),
                               "truth": truth, "predicted": predicted})
            rows.setdefault(f"mean per-class accuracy, {inst}", {})[method] = np.mean(per_class)
            for c, accuracy in zip(classes, per_class):
                rows.setdefault(f"{c} accuracy, {inst}", {})[method] = accuracy
        both = SpectralClassProbe(**options).fit(
            np.concatenate([x_train[i] for i in CLASS_INSTRUMENTS]),
            np.concatenate([train[i][1] for i in CLASS_INSTRUMENTS]))
        probability = both.predict_proba(x_real)
        for name, truth, p in zip(real_names, real_truth, probability):
            per_object[name][method] = float(p[list(both.classes_).index(truth)])
    for metric, values in rows.items():
        inst = metric.rsplit(", ", 1)[1]
        ctx.report.add("object_classes", metric, values, better="higher",
                       n=len(test[inst][1]))
    for name, truth in zip(real_names, real_truth):
        ctx.report.add("object_classes", f"{name}: P({truth})", per_object[name],
                       better="higher", n=1)
    ctx.report.add_figure("object_classes", partial(
        panel_figure, panels, f"star / galaxy / quasar, {ctx.model_name} embeddings "
        f"(held-out, {CLASS_WINDOW[0]:.0f}-{CLASS_WINDOW[1]:.0f} Å)"))


def quasar_redshift(ctx):
    """Quasar redshift (0.1 ≤ z ≤ 4.5) of held-out simulated SDSS-like and DESI-like quasars."""
    data = ctx.data
    train_spectra, z_train = _spectra_and_z(data.quasars("train", i) for i in CLASS_INSTRUMENTS)
    test_spectra, z_test = _spectra_and_z(data.quasars("test", i) for i in CLASS_INSTRUMENTS)
    feats = ctx.features("galaxies", train_spectra, test_spectra)
    rows = {"σ_NMAD of Δz/(1+z)": {}, "outliers |Δz|/(1+z) > 0.05": {}, "R² of z": {}}
    predictions = {}
    for method, (x_train, (x_test,)) in feats.items():
        probe = RedshiftProbe(head="auto", calibration="cv", random_state=ctx.seed).fit(
            x_train, z_train)
        ctx.record_head("quasar redshifts", method, probe)
        predictions[method] = probe.predict(x_test)
    fit = ctx.template_fit("quasars")
    predictions["template_fit"] = fit.predict(test_spectra)
    ctx.report.add_figure("quasar_redshift", partial(panel_figure, [
        _redshift_panel(f"{ctx.model_name} + RedshiftProbe", z_test, predictions["spectok"]),
        _redshift_panel("template fit", z_test, predictions["template_fit"])],
        "held-out simulated quasars (SDSS, DESI)"))
    for method, z_pred in predictions.items():
        dz = (z_pred - z_test) / (1 + z_test)
        rows["σ_NMAD of Δz/(1+z)"][method] = nmad(dz[np.isfinite(dz)])
        rows["outliers |Δz|/(1+z) > 0.05"][method] = _outliers(dz, 0.05)
        rows["R² of z"][method] = _r2(z_test, z_pred)
    for metric, values in rows.items():
        ctx.report.add("quasar_redshift", metric, values,
                       better="higher" if metric.startswith("R²") else "lower", n=len(z_test))
    ctx.report.add("quasar_redshift", "template fit: seconds per spectrum",
                   {"template_fit": fit.seconds_per_spectrum_}, unit="s", better="lower",
                   n=len(z_test))


def star_twin_ranks(ctx, extra_rows=()):
    """Rank of each MILES test star's twin, for each pair of `STAR_INSTRUMENTS`.

    Each test star seen through instrument ``a`` is ranked against the test
    stars seen through ``b`` and, as further candidates, the MILES stars of
    ``extra_rows`` seen through ``b``.

    Parameters
    ----------
    ctx : `BenchmarkContext`
    extra_rows : sequence of int
        Rows of the MILES table (not test stars) to add as candidates.

    Returns
    -------
    ranks : dict
        ``ranks[a, b][method]``: the ranks, by each of ``ctx.methods`` and
        the matched χ² (``"matched_chi2"``), for each pair of `STAR_PAIRS`.
    sdss_features : `~numpy.ndarray`
        The model's features of the test stars seen as SDSS-like.

    Raises
    ------
    ValueError
        If ``extra_rows`` holds test stars.

    Examples
    --------
    >>> from spectok.benchmarks import BenchmarkContext
    >>> from spectok.benchmarks.tasks import star_twin_ranks
    >>> from spectok.model import CONFIGS, SpectralTokenizer
    >>> ctx = BenchmarkContext(SpectralTokenizer(CONFIGS["tiny"]), quick=True)
    >>> training_stars, _ = ctx.data.miles_split(complete=False)  # doctest: +REMOTE_DATA
    >>> ranks, _ = star_twin_ranks(ctx, training_stars[:2])  # doctest: +REMOTE_DATA
    >>> pair = ranks["sdss", "gaia_xp"]  # doctest: +REMOTE_DATA
    >>> sorted(pair), len(pair["spectok"])  # 10 test stars in quick mode  # doctest: +REMOTE_DATA
    (['flux_pca', 'matched_chi2', 'spectok', 'untrained'], 10)
    >>> bool(pair["spectok"].max() <= 10 + 2)  # among 12 candidates  # doctest: +REMOTE_DATA
    True
    """
    data = ctx.data
    repeated = np.intersect1d(extra_rows, data.star_rows("test"))
    if repeated.size:
        raise ValueError(f"extra_rows holds {repeated.size} test stars (rows "
                         f"{repeated[:5].tolist()}...), which are candidates already; give "
                         "other stars")
    views = {inst: data.star_views("test", inst) for inst in STAR_INSTRUMENTS}
    candidate_side = dict.fromkeys(b for _, b in STAR_PAIRS) if len(extra_rows) else {}
    extra = {b: data.observe_stars(extra_rows, b) for b in candidate_side}
    pca_train = [s for inst in STAR_INSTRUMENTS for s in data.star_views("train", inst)]
    features = ctx.features("stars_optical", pca_train, *views.values(), *extra.values(),
                            need_train=False)
    ranks = {pair: {} for pair in STAR_PAIRS}
    for method, (_, x) in features.items():
        seen, seen_extra = dict(zip(views, x)), dict(zip(extra, x[len(views):]))
        for a, b in STAR_PAIRS:
            candidates = np.vstack([seen[b], seen_extra[b]]) if extra else seen[b]
            ranks[a, b][method] = twin_ranks(seen[a], candidates)
    for a, b in STAR_PAIRS:
        chi2 = matched_chi2(views[a], views[b] + extra.get(b, []), b)
        ranks[a, b]["matched_chi2"] = diagonal_ranks(-chi2)
    return ranks, features["spectok"][1][0]


def galaxy_twin_ranks(ctx, n=None):
    """Rank of each held-out simulated galaxy's DESI-like twin, seen as SDSS-like.

    Parameters
    ----------
    ctx : `BenchmarkContext`
    n : int, optional
        Galaxies, each a query and a candidate (default: the benchmark's
        test set).

    Returns
    -------
    dict
        ``ranks[method]`` by each of ``ctx.methods`` and the matched χ²
        (``"matched_chi2"``).

    Examples
    --------
    >>> from spectok.benchmarks import BenchmarkContext
    >>> from spectok.benchmarks.tasks import galaxy_twin_ranks
    >>> from spectok.model import CONFIGS, SpectralTokenizer
    >>> ctx = BenchmarkContext(SpectralTokenizer(CONFIGS["tiny"]), quick=True)
    >>> ranks = galaxy_twin_ranks(ctx, n=3)  # doctest: +REMOTE_DATA
    >>> ranks["matched_chi2"].tolist()  # doctest: +REMOTE_DATA
    [1, 1, 1]
    """
    data = ctx.data
    views = [data.galaxies("test", inst, n).spectra for inst in ("sdss", "desi")]
    features = ctx.features("galaxies", data.galaxy_pca_train(), *views, need_train=False)
    ranks = {method: twin_ranks(*x) for method, (_, x) in features.items()}
    # The classical reference re-observes the sharper view through the coarser
    # instrument (SDSS's R ≈ 2000 is coarser than DESI's), so the candidates
    # of each SDSS view are ranked down a column.
    ranks["matched_chi2"] = diagonal_ranks(-matched_chi2(views[1], views[0], "sdss").T)
    return ranks


def add_twin_ranks(report, label, ranks):
    """Report the median rank and the top-1 rate of twins, by method.

    Parameters
    ----------
    report : `~spectok.benchmarks.BenchmarkReport`
    label : str
        What was ranked; the metrics are ``"{label}: median twin rank"`` and
        ``"{label}: top-1 rate"`` of the ``cross_instrument`` task.
    ranks : dict of str to `~numpy.ndarray`
        Ranks by method (as `twin_ranks` gives them).

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.benchmarks import BenchmarkReport
    >>> from spectok.benchmarks.tasks import add_twin_ranks
    >>> report = BenchmarkReport()
    >>> add_twin_ranks(report, "stars", {"spectok": np.array([1, 1, 3]),
    ...                                  "flux_pca": np.array([1, 2, 5])})
    >>> report.value("cross_instrument", "stars: top-1 rate"), report.value(
    ...     "cross_instrument", "stars: median twin rank", method="flux_pca")
    (0.6666666666666666, 2.0)
    """
    n = len(next(iter(ranks.values())))
    report.add("cross_instrument", f"{label}: median twin rank",
               {m: float(np.median(r)) for m, r in ranks.items()}, better="lower", n=n)
    report.add("cross_instrument", f"{label}: top-1 rate",
               {m: float(np.mean(r == 1)) for m, r in ranks.items()}, better="higher", n=n)


def cross_instrument(ctx):
    """Is an object's nearest neighbour seen through another instrument its twin?"""
    stars, sdss_features = star_twin_ranks(ctx)
    galaxies = galaxy_twin_ranks(ctx)
    _add_embedding_figure(ctx, sdss_features)
    for (a, b), ranks in stars.items():
        add_twin_ranks(ctx.report, f"MILES stars {a}↔{b}", ranks)
    add_twin_ranks(ctx.report, "galaxies sdss↔desi", galaxies)


def _add_embedding_figure(ctx, embeddings):
    """Embeddings of the SDSS-like test stars by Teff, and one star's SDSS vs LAMOST tokens."""
    from ..encode import encode

    data = ctx.data
    teff = np.asarray(data.miles().labels["teff"].filled(np.nan), dtype=float)
    star = [data.star_views("test", inst)[0] for inst in ("sdss", "lamost")]

    def draw():
        tokens = [encode(s, model=ctx.model, progress=False) for s in star]
        return embedding_figure(embeddings, np.log10(teff[data.star_rows("test")]),
                                "log10 Teff", *tokens, ("SDSS-like", "LAMOST-like"),
                                f"MILES test stars, {ctx.model_name}")
    ctx.report.add_figure("cross_instrument", draw)


def reconstruction(ctx):
    """Reduced χ² of reconstructions against the data errors, and of inpainted patches."""
    data = ctx.data
    size = data.sizes["reconstruction"]
    spex = data.spex()
    spex_train, spex_test = data.spex_split()
    star_test = data.star_views("test", "sdss")
    gal_train = data.galaxy_pca_train()
    gal_test = [s for inst in GALAXY_INSTRUMENTS for s in data.galaxies("test", inst).spectra]
    domains = [
        ("stars, optical (MILES test via SDSS)", "stars_optical",
         data.star_views("train", "sdss"), star_test),
        ("stars, near-IR (SpeX test)", "spex", [spex.spectra[i] for i in spex_train],
         [spex.spectra[i] for i in spex_test]),
        ("galaxies, simulated", "galaxies", gal_train, gal_test),
        ("galaxies, real (DESI + MaNGA)", "galaxies", gal_train,
         list(data.desi().spectra) + list(data.manga().spectra)),
        ("quasars, simulated", "galaxies",
         [s for inst in CLASS_INSTRUMENTS for s in data.quasars("train", inst).spectra],
         [s for inst in CLASS_INSTRUMENTS for s in data.quasars("test", inst).spectra]),
    ]
    patch_size = ctx.model.config.patch_size
    examples = []
    for k, (domain, grid_name, train, test) in enumerate(domains):
        rows = data.subset(np.arange(len(test)), size, 40 + k)
        examples.append((domain, test[rows[0]]))
        prepared = _prepare([test[i] for i in rows], patch_size)
        hidden = choose_hidden_patches(prepared, 0.1, patch_size, seed=[ctx.seed, k])
        recon, inpaint = {}, {}
        for method in ctx.methods(grid_name):
            method.fit(train)
            chi2_all, chi2_hidden = method.reconstruction_chi2(
                prepared, hidden[0] if method.kind == "embedding" else hidden[1])
            recon[method.name] = float(np.nanmedian(chi2_all))
            inpaint[method.name] = float(np.nanmedian(chi2_hidden))
        ctx.report.add("reconstruction", f"median χ²_ν, {domain}", recon, better="≈1",
                       n=len(rows))
        ctx.report.add("reconstruction", f"median χ²_ν of hidden 10%, {domain}", inpaint,
                       better="≈1", n=len(rows))
    ctx.report.add_figure("reconstruction", partial(
        reconstruction_figure, examples, ctx.model,
        f"{ctx.model_name}: reconstructions, residuals and tokens, one spectrum per domain"))


#: The tasks, by name, in the order they run.
TASKS = {
    "stellar_parameters": stellar_parameters,
    "spectral_types": spectral_types,
    "redshift": redshift,
    "object_classes": object_classes,
    "quasar_redshift": quasar_redshift,
    "cross_instrument": cross_instrument,
    "reconstruction": reconstruction,
}


def _run_task(ctx, name):
    start = time.perf_counter()
    with warnings.catch_warnings():
        from ..adapter import NoUncertaintyWarning
        warnings.simplefilter("ignore", NoUncertaintyWarning)
        TASKS[name](ctx)
    ctx.report.meta["seconds"][name] = time.perf_counter() - start
