"""The benchmark tasks. Each takes a `BenchmarkContext` and adds rows to its report.

Splits are by object and are the ones pretraining respected
(`~spectok.datasets.benchmark_split`: MILES by star, SpeX by source), so no
test object was seen in pretraining. Simulated galaxies and quasars are
drawn from seeds that pretraining never used.
"""

import time
import warnings
import zlib
from functools import partial

import astropy.units as u
import numpy as np
import torch

from ..probes import AUTO_FOLDS, RedshiftProbe, SpectralClassProbe, StellarParameterProbe
from .features import (EmbeddingMethod, FluxPCAMethod, _prepare, choose_hidden_patches,
                       log_grid, token_bins)
from .figures import embedding_figure, panel_figure, reconstruction_figure
from .report import BenchmarkReport
from .matched_twins import matched_chi2
from .template_redshift import TemplateRedshiftFit

__all__ = ["TASKS", "BenchmarkContext", "twin_ranks", "diagonal_ranks", "nmad"]

#: Galaxy instruments the redshift probe is trained and tested on.
GALAXY_INSTRUMENTS = ("sdss", "desi", "lamost")
#: Instruments through which the MILES test stars are observed for the consistency task.
STAR_INSTRUMENTS = ("sdss", "lamost", "gaia_xp")
#: The pairs of them whose twins are ranked: stars seen through the first, candidates the second.
STAR_PAIRS = tuple((a, b) for i, a in enumerate(STAR_INSTRUMENTS) for b in STAR_INSTRUMENTS[i + 1:])
#: Instruments of the star/galaxy/quasar classification and the quasar redshift tasks.
CLASS_INSTRUMENTS = ("sdss", "desi")
#: Observed wavelengths (Å) the classification task crops every spectrum to: the
#: range MILES stars cover, so that coverage alone cannot tell a star.
CLASS_WINDOW = (3700.0, 7400.0)
_QUASAR_Z = (0.1, 4.5)
_QUASAR_SEED = 8_000_000  # simulated benchmark quasars: far from any pretraining seed
_GALAXY_Z = (0.0, 1.2)  # every SSP library still overlaps LAMOST's red end at z = 1.2
_GALAXY_SEED = 7_000_000  # simulated benchmark galaxies: far from any pretraining seed
_STAR_SNR = 30.0
#: Most worker processes that draw the simulations (each imports spectok and torch and
#: gets the templates: a few hundred MB apiece).
_MAX_SIMULATION_PROCESSES = 8

_SIZES = {
    # None: every available object
    False: {"miles_train": None, "miles_test": None, "spex_train": None, "spex_test": None,
            "galaxy_train": 1000, "galaxy_test": 60, "twin_stars": None, "pca_stars": 150,
            "quasar_train": 1000, "quasar_test": 100, "class_galaxies": 600,
            "class_quasars": 300, "reconstruction": 24, "template_models": 200},
    True: {"miles_train": 80, "miles_test": 24, "spex_train": 100, "spex_test": 30,
           "galaxy_train": 10, "galaxy_test": 6, "twin_stars": 10, "pca_stars": 10,
           "quasar_train": 10, "quasar_test": 6, "class_galaxies": 10, "class_quasars": 10,
           "reconstruction": 3, "template_models": 20},
}

_GRIDS = {
    "miles": (3545.0, 7405.0, 1e-4),      # MILES in vacuum: 3541.5-7411.6 Å
    "stars_optical": (3700.0, 7400.0, 1e-4),
    "spex": (6600.0, 25000.0, 1.06e-3),    # the prism's ~560 log-spaced pixels
    "galaxies": (3700.0, 9000.0, 1e-4),   # common to SDSS, DESI and LAMOST
}


def grid_token_bins(grid_name):
    """Wavelength bins of the aligned tokens over the range of a task's grid."""
    lo, hi, _ = _GRIDS[grid_name]
    return token_bins(lo, hi)


def _simulation_processes():
    """Worker processes for the simulations: one per torch thread, at most 8."""
    return min(torch.get_num_threads(), _MAX_SIMULATION_PROCESSES)


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

    Examples
    --------
    >>> from spectok.benchmarks import nmad
    >>> round(nmad([0.0, 1.0, 2.0, 3.0, 100.0]), 3)
    1.483
    """
    values = np.asarray(values, dtype=float)
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def twin_ranks(a, b):
    """Rank of each object's twin among all candidates, by cosine similarity.

    Row ``i`` of ``a`` and of ``b`` are one object seen two ways; for each
    row of ``a`` every row of ``b`` is a candidate, and the rank of the true
    twin is 1 + the number of candidates more similar than it. Rows of ``b``
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
        If ``a`` and ``b`` are not 2-D arrays with as many features, or
        ``b`` has fewer rows than ``a``.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.benchmarks import twin_ranks
    >>> a = np.eye(3)
    >>> twin_ranks(a, a).tolist(), twin_ranks(a, a[[1, 0, 2]]).tolist()
    ([1, 1, 1], [2, 2, 1])
    >>> twin_ranks(a[:2], [[1, 0, 0], [0, 1, 0], [0.1, 1, 0]]).tolist()  # one more candidate
    [1, 1]
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be (objects, features) arrays with as many features; "
                         f"got shapes {a.shape} and {b.shape}")
    if len(b) < len(a):
        raise ValueError(f"b has {len(b)} rows, fewer than the {len(a)} objects of a: row i "
                         f"of each is one object, and extra rows of b are more candidates")
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-30)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
    return diagonal_ranks(a @ b.T)


def diagonal_ranks(score):
    """Rank of each row's diagonal entry among the row, highest score first.

    ``score[i, j]`` scores candidate ``j`` for object ``i``, whose twin is
    candidate ``i``; its rank is 1 + the number of candidates scored higher
    (ties go to the twin). Columns beyond the rows are candidates that are
    no object's twin. Infinite scores are allowed (``-inf``: never a match).

    Parameters
    ----------
    score : array-like, shape (n, m), m ≥ n

    Returns
    -------
    `~numpy.ndarray` of int, shape (n,)

    Raises
    ------
    ValueError
        If ``score`` has fewer columns than rows or holds NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.benchmarks import diagonal_ranks
    >>> diagonal_ranks(np.array([[0.9, 0.1], [0.8, 0.3]])).tolist()
    [1, 2]
    >>> diagonal_ranks(np.array([[0.9, 0.1, 0.95], [0.8, 0.3, 0.1]])).tolist()
    [2, 2]
    """
    score = np.asarray(score, dtype=float)
    if score.ndim != 2 or score.shape[0] > score.shape[1]:
        raise ValueError(f"score must be objects by candidates, each twin on the diagonal "
                         f"and at least as many candidates as objects; got shape {score.shape}")
    if np.isnan(score).any():
        raise ValueError(f"score holds NaN in {int(np.isnan(score).any(axis=1).sum())} rows; "
                         "a NaN cannot be ranked")
    twin = score[np.arange(len(score)), np.arange(len(score))]
    return 1 + np.sum(score > twin[:, None], axis=1)


class _Data:
    """Loads (once) and subsets everything the tasks share."""

    def __init__(self, quick, seed):
        self.quick = quick
        self.seed = seed
        self.sizes = _SIZES[bool(quick)]
        self._cache = {}

    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def subset(self, indices, size, salt):
        indices = np.asarray(indices)
        if size is None or len(indices) <= size:
            return indices
        rng = np.random.default_rng([self.seed, salt])
        return np.sort(rng.choice(indices, size=size, replace=False))

    # -- real data ---------------------------------------------------------------------
    def miles(self):
        from ..datasets import load_miles
        return self._cached("miles", load_miles)

    def spex(self):
        from ..datasets import load_spex
        return self._cached("spex", load_spex)

    def miles_split(self, complete=True):
        """Train/test indices into `miles` (benchmark split on the full table)."""
        from ..datasets import benchmark_split

        def make():
            labels = self.miles().labels
            train, test = benchmark_split("miles", labels)
            ok = ~(np.ma.getmaskarray(labels["teff"]) | np.ma.getmaskarray(labels["logg"])
                   | np.ma.getmaskarray(labels["feh"]))
            return train, test, ok
        train, test, ok = self._cached("miles_split", make)
        if complete:
            train, test = train[ok[train]], test[ok[test]]
        return train, test

    def spex_split(self):
        from ..datasets import benchmark_split

        def make():
            labels = self.spex().labels
            train, test = benchmark_split("spex", labels)
            ok = (~np.ma.getmaskarray(labels["spectral_class"])
                  & ~np.ma.getmaskarray(labels["spt"]))
            train, test = train[ok[train]], test[ok[test]]
            return (self.subset(train, self.sizes["spex_train"], 11),
                    self.subset(test, self.sizes["spex_test"], 12))
        return self._cached("spex_split", make)

    def desi(self):
        from ..datasets import load_desi_examples
        return self._cached("desi", load_desi_examples)

    def manga(self):
        from ..datasets import load_manga_examples

        def make():
            ds = load_manga_examples()
            return ds[[int(i) for i in np.flatnonzero(np.asarray(ds.labels["usable"]))]]
        return self._cached("manga", make)

    # -- simulations ---------------------------------------------------------------------
    def templates(self):
        from ..datasets import load_ssp_templates
        return self._cached("ssp", lambda: load_ssp_templates().spectra)

    def galaxies(self, part, instrument, n=None):
        """Simulated galaxies; the test sets of all instruments are the same galaxies.

        ``n`` of them (default: the size of the benchmark's set).
        """
        from ..datasets import simulate_galaxies

        k = GALAXY_INSTRUMENTS.index(instrument) if instrument in GALAXY_INSTRUMENTS else 9
        seed = _GALAXY_SEED + 1000 * self.seed + (k if part == "train" else 500)
        n = self.sizes[f"galaxy_{part}"] if n is None else n
        return self._cached(("galaxies", part, instrument, n), lambda: simulate_galaxies(
            n, instrument, z=_GALAXY_Z, seed=seed, templates=self.templates(),
            n_jobs=_simulation_processes()))

    def galaxy_pca_train(self):
        """Training galaxies for flux + PCA's components where no probe is fitted.

        The twins and reconstruction tasks take the first ``class_galaxies``
        of each instrument, as the classes do: enough for the components.
        """
        size = self.sizes["class_galaxies"]
        return [s for inst in GALAXY_INSTRUMENTS
                for s in self.galaxies("train", inst).spectra[:size]]

    def quasars(self, part, instrument):
        """Simulated quasars; the test sets of all instruments are the same quasars."""
        from ..datasets import simulate_quasars

        k = CLASS_INSTRUMENTS.index(instrument)
        seed = _QUASAR_SEED + 1000 * self.seed + (k if part == "train" else 500)
        n = self.sizes[f"quasar_{part}"]
        return self._cached(("quasars", part, instrument), lambda: simulate_quasars(
            n, instrument, z=_QUASAR_Z, seed=seed, host_templates=self.templates(),
            n_jobs=_simulation_processes()))

    def rest_frame_models(self, kind):
        """Noiseless rest-frame galaxies or quasars from the simulators' priors.

        What the template fit learns its eigen-templates from: drawn at
        redshifts across the task's range (which limits galaxy ages and sets
        the quasars' IGM), from seeds no other set uses.
        """
        from ..datasets import GalaxyGenerator, QuasarGenerator

        def make():
            z_range, seed = {"galaxies": (_GALAXY_Z, _GALAXY_SEED),
                             "quasars": (_QUASAR_Z, _QUASAR_SEED)}[kind]
            rng = np.random.default_rng([seed + 1000 * self.seed + 900])
            z = rng.uniform(*z_range, self.sizes["template_models"])
            if kind == "galaxies":
                generator = GalaxyGenerator(self.templates())
                return [generator.spectrum(rng, redshift=float(zi))[0] for zi in z]
            # blue enough for 3500 Å at z = 4.5 (the default starts at 800 Å)
            rest = (600.0, 11000.0) * u.AA
            generator = QuasarGenerator(self.templates())
            return [generator.spectrum(rng, redshift=float(zi), wavelength_range=rest)[0]
                    for zi in z]
        return self._cached(("rest_models", kind), make)

    def star_rows(self, part):
        """Rows of `miles` that `star_views` observes (test: the twin stars)."""
        train, test = self.miles_split(complete=False)
        if part == "test":
            return self.subset(test, self.sizes["twin_stars"], 21)
        return self.subset(train, self.sizes["pca_stars"], 22)

    def star_views(self, part, instrument):
        """MILES stars observed through an instrument (test: the twin stars)."""
        return self._cached(("stars", part, instrument),
                            lambda: self.observe_stars(self.star_rows(part), instrument))

    def observe_stars(self, rows, instrument):
        """Rows of `miles` observed through an instrument, each star with its own noise seed."""
        from ..datasets import observe

        spectra = self.miles().spectra
        key = zlib.crc32(instrument.encode())
        return [observe(spectra[i], instrument, snr=_STAR_SNR, rng=[self.seed, 31, key, int(i)])
                for i in rows]


class BenchmarkContext:
    """Everything a task needs: the model, the baselines, data and the report.

    Parameters
    ----------
    model : `~spectok.model.SpectralTokenizer`
        The model under test.
    quick : bool
        Use small subsets (seconds instead of minutes).
    seed : int
        Seed of subsets, simulations, probes and the untrained baseline.
    """

    def __init__(self, model, quick=False, seed=0):
        from ..model import SpectralTokenizer

        self.model = model.eval()
        self.quick = bool(quick)
        self.seed = int(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(10_000 + self.seed)  # not the seed a test model may use
            untrained = SpectralTokenizer(model.config).eval()
        untrained.name = "untrained"
        self.untrained = untrained
        self.data = _Data(self.quick, self.seed)
        self._caches = {"spectok": {}, "untrained": {}}
        self._prepared = {}
        self.model_name = model.name
        self.report = BenchmarkReport(meta={
            "model": self.model_name, "seed": self.seed, "quick": self.quick,
            "seconds": {}, "heads": {}})

    def record_head(self, probe_name, method, probe):
        """Note in the report which head a fitted probe used (``head="auto"`` chooses)."""
        self.report.meta["heads"].setdefault(probe_name, {})[method] = probe.head_name_

    def methods(self, grid_name):
        """The model under test, the untrained baseline and flux+PCA on a task's grid."""
        bins = grid_token_bins(grid_name)
        return [EmbeddingMethod(self.model, "spectok", bins, cache=self._caches["spectok"]),
                EmbeddingMethod(self.untrained, "untrained", bins,
                                cache=self._caches["untrained"]),
                FluxPCAMethod(log_grid(*_GRIDS[grid_name]), name="flux_pca")]

    def template_fit(self, kind):
        """The classical redshift baseline, fitted to rest-frame galaxy or quasar models."""
        z_range = {"galaxies": _GALAXY_Z, "quasars": _QUASAR_Z}[kind]
        return TemplateRedshiftFit(z_range=z_range).fit(self.data.rest_frame_models(kind))

    def features(self, grid_name, train, *others, need_train=True):
        """Per method: (features of ``train`` or None, [features of each of ``others``]).

        ``train`` is what flux + PCA learns its components from; with
        ``need_train=False`` its features are not computed.
        """
        train, others = self.prepared(train), [self.prepared(spectra) for spectra in others]
        out = {}
        for method in self.methods(grid_name):
            method.fit(train)
            out[method.name] = (method.transform(train) if need_train else None,
                                [method.transform(spectra) for spectra in others])
        return out

    def prepared(self, spectra):
        """Each spectrum as a `~spectok.adapter.PreparedSpectrum`, prepared once per run.

        Every method would otherwise convert the same spectrum again (three
        times a task, and again in each task that shares it). Kept by object,
        as the models' tokens are, so a spectrum shared by several tasks
        comes back as the same prepared object and its tokens are found in
        the cache.

        Parameters
        ----------
        spectra : sequence
            Anything `~spectok.adapter.prepare_spectrum` takes.

        Returns
        -------
        list of `~spectok.adapter.PreparedSpectrum`

        Raises
        ------
        spectok.adapter.SpectrumInputError
            A spectrum the adapter refuses, named by its position.

        Examples
        --------
        >>> import astropy.units as u, numpy as np
        >>> from spectok.benchmarks.tasks import BenchmarkContext
        >>> from spectok.model import CONFIGS, SpectralTokenizer
        >>> ctx = BenchmarkContext(SpectralTokenizer(CONFIGS["tiny"]), quick=True)
        >>> spectrum = (np.linspace(4000, 5000, 200) * u.AA, np.ones(200) * u.Jy)
        >>> first, again = ctx.prepared([spectrum])[0], ctx.prepared([spectrum])[0]
        >>> first is again, first.flux[0].size
        (True, 200)
        """
        from ..adapter import prepare_spectrum

        out = []
        for spectrum in spectra:
            if id(spectrum) not in self._prepared:
                self._prepared[id(spectrum)] = (spectrum, prepare_spectrum(spectrum, len(out)))
            out.append(self._prepared[id(spectrum)][1])
        return out


def _coverage(truth, lower, upper):
    return float(np.mean((truth >= lower) & (truth <= upper)))


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


def _outliers(dz, bound):
    """Fraction of |Δz|/(1+z) above ``bound``; a failed fit (NaN) counts as an outlier."""
    return float(np.mean(~(np.abs(dz) <= bound)))


def _r2(truth, predicted):
    """R² over the finite predictions (failed fits are counted by `_outliers`)."""
    from sklearn.metrics import r2_score

    ok = np.isfinite(predicted)
    return float(r2_score(truth[ok], predicted[ok]))


def _spectra_and_z(datasets):
    spectra, z = [], []
    for ds in datasets:
        spectra.extend(ds.spectra)
        z.extend(np.asarray(ds.labels["z"], dtype=float))
    return spectra, np.array(z)


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
    >>> from spectok.benchmarks.tasks import BenchmarkContext, star_twin_ranks
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
    >>> from spectok.benchmarks.tasks import BenchmarkContext, galaxy_twin_ranks
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

