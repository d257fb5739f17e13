"""The benchmark's data and splits: what every task shares (`BenchmarkContext`).

Splits are by object and are the ones pretraining respected
(`~spectok.datasets.benchmark_split`: MILES by star, SpeX by source), so no
test object was seen in pretraining. Simulated galaxies and quasars are
drawn from seeds that pretraining never used.
"""

import zlib

import astropy.units as u
import numpy as np
import torch

from .._checks import check_bool, is_integer
from .features import EmbeddingMethod, FluxPCAMethod, log_grid, token_bins
from .report import BenchmarkReport
from .template_redshift import TemplateRedshiftFit

__all__ = ["BenchmarkContext"]

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


def _check_run_arguments(quick, seed, num_threads=None):
    """Refuse, before any work, a ``quick`` that is not a bool, a ``seed`` that is not a
    non-negative integer or a ``num_threads`` that is not a positive one (None: torch's)."""
    check_bool(quick, "quick")   # quick="yes" was a KeyError, None the full run
    if not is_integer(seed) or seed < 0:   # 1.5 was 1 and -1 failed in numpy, mid-run
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if num_threads is not None and (not is_integer(num_threads) or num_threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")


def grid_token_bins(grid_name):
    """Wavelength bins of the aligned tokens over the range of a task's grid.

    Parameters
    ----------
    grid_name : {"miles", "stars_optical", "spex", "galaxies"}
        The task's grid.

    Returns
    -------
    `~astropy.units.Quantity`
        Ascending bin edges in Å (`token_bins` over the grid's range).

    Raises
    ------
    KeyError
        An unknown grid.

    Examples
    --------
    >>> from spectok.benchmarks.context import grid_token_bins
    >>> edges = grid_token_bins("galaxies")
    >>> len(edges) - 1, edges[0], edges[-1]
    (18, <Quantity 3700. Angstrom>, <Quantity 9000. Angstrom>)
    >>> len(grid_token_bins("miles")) - 1, len(grid_token_bins("spex")) - 1
    (15, 27)
    """
    lo, hi, _ = _GRIDS[grid_name]
    return token_bins(lo, hi)


def _simulation_processes():
    """Worker processes for the simulations: one per torch thread, at most 8."""
    return min(torch.get_num_threads(), _MAX_SIMULATION_PROCESSES)


def _spectra_and_z(datasets):
    spectra, z = [], []
    for ds in datasets:
        spectra.extend(ds.spectra)
        z.extend(np.asarray(ds.labels["z"], dtype=float))
    return spectra, np.array(z)


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

    Examples
    --------
    >>> from spectok.benchmarks import BenchmarkContext
    >>> from spectok.model import CONFIGS, SpectralTokenizer
    >>> ctx = BenchmarkContext(SpectralTokenizer(CONFIGS["tiny"]), quick=True)
    >>> [method.name for method in ctx.methods("miles")]   # the model and two baselines
    ['spectok', 'untrained', 'flux_pca']
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
        >>> from spectok.benchmarks import BenchmarkContext
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
