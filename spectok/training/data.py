"""The pretraining data stream: a weighted mixture of sources seen through instruments.

Every training example is one object seen twice: two *views* through two
instrument presets (or its published spectrum), with their own grid,
resolution, noise and coverage, sharing one redshift. A step draws one
source and one pair of instruments, so every batch holds spectra of similar
length (bucketing without a sort) and little padding.

The stream is a pure function of ``(seed, step, example index)``: the same
global batch is produced whether one process or many draw it, and a resumed
run continues the exact stream without saving any data-loader state.
"""

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch

from ..adapter import PreparedSpectrum, SpectrumInputError, prepare_spectrum, to_batch
from ..model import patch_geometry
from .config import _check_source
from .losses import hide_patches

__all__ = ["Source", "SOURCES", "check_source_configs", "build_sources", "TrainingStream"]

_VALIDATION_STREAM = 1
_MAX_REDRAWS = 20


@dataclass
class Source:
    """A population of objects to train on.

    Parameters
    ----------
    name : str
        Name used in logs.
    draw : callable
        ``draw(rng, redshift) -> Spectrum | SpectrumList | ModelArrays``: one
        object's spectrum in its rest frame, as high-resolution as the source
        has (the redshift it will be observed at is given so that, e.g.,
        galaxies are not older than the Universe then). A simulator's
        `~spectok.datasets.ModelArrays` (e.g. from
        `~spectok.datasets.GalaxyGenerator.model`) skips a conversion but has
        no ``"native"`` view.
    weight : float
        Relative frequency of this source in the mixture.
    instruments : tuple of str
        Instrument presets to observe through; ``"native"`` keeps the spectrum
        as published.
    snr : tuple of float
        Log-uniform range of the signal-to-noise ratio per pixel.
    redshift : tuple of float
        Uniform range of redshift.
    reconstruction_target : {"data", "init_weights"}
        What the decoder learns to reconstruct on this source's spectra (see
        `~spectok.training.SourceConfig`); each view of a batch says so in
        its ``"reconstruct_init_weights"`` entry (a bool).

    Examples
    --------
    A source of one's own: rest-frame spectra (here a toy absorption line
    of random depth, finely sampled from 2000 to 11000 Å), observed through
    the SDSS and LAMOST presets at redshifts up to 0.5:

    >>> import astropy.units as u
    >>> import numpy as np
    >>> from specutils import Spectrum
    >>> from spectok.training import Source, TrainingConfig, TrainingStream
    >>> def draw(rng, redshift):
    ...     wave = np.geomspace(2000, 11000, 20000) * u.AA
    ...     line = np.exp(-0.5 * ((wave.value - 4000) / 5) ** 2)
    ...     return Spectrum(spectral_axis=wave, flux=(1 - rng.uniform(0.2, 0.8) * line) * u.Jy)
    >>> source = Source("lines", draw, instruments=("sdss", "lamost"), snr=(20.0, 50.0),
    ...                 redshift=(0.0, 0.5))
    >>> draw(np.random.default_rng(0), 0.0).flux.shape
    (20000,)

    A `TrainingStream` draws objects from it, each seen twice; views
    longer than ``max_view_pixels`` are cut to a window of that many pixels:

    >>> config = TrainingConfig(model="tiny", batch_size=2, max_view_pixels=2048)
    >>> views = TrainingStream([source], config, patch_size=32).batch(0)
    >>> [view["inputs"][1].shape[0] for view in views]  # two objects per view
    [2, 2]
    >>> all(view["inputs"][1].shape[1] <= 2048 for view in views)
    True
    >>> Source("lines", draw, weight=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: source 'lines': weight must be a positive number, got -1.0
    """

    name: str
    draw: object
    weight: float = 1.0
    instruments: tuple = ("sdss",)
    snr: tuple = (10.0, 100.0)
    redshift: tuple = (0.0, 0.0)
    reconstruction_target: str = "data"

    def __post_init__(self):
        _check_source(self)


class _Object:
    """One object of a source, with its arrays converted once and reused for every view.

    Made from a published spectrum, or from the `~spectok.datasets.ModelArrays`
    a simulator built (which has no ``"native"`` view).
    """

    def __init__(self, source):
        self._source = source

    @functools.cached_property
    def model(self):
        from ..datasets import ModelArrays
        if isinstance(self._source, ModelArrays):
            return self._source
        return ModelArrays.from_spectrum(self._source)

    @property
    def simulated(self):
        from ..datasets import ModelArrays
        return isinstance(self._source, ModelArrays)

    @functools.cached_property
    def native(self):
        return prepare_spectrum(self._source)


class _Pool:
    """A fixed collection of objects: draws one at random, and knows each one's neighbours.

    Neighbours are near in coarse spectral shape: the log of the flux
    averaged in 48 bins equally spaced in log λ over the wavelengths most of
    the collection covers, compared on the bins both objects cover after
    removing the mean difference (so brightness does not count, nor does
    coverage). Spectra that share a ``group`` (repeat spectra of one source)
    are never in one batch of neighbours: they would be negatives of each
    other.
    """

    n_bins = 48
    min_shared_bins = 12

    def __init__(self, spectra, groups=None):
        self.objects = [_Object(s) for s in spectra]
        self.groups = np.arange(len(self.objects)) if groups is None else np.asarray(groups)

    def __call__(self, rng, redshift):
        return self.objects[rng.integers(len(self.objects))]

    @functools.cached_property
    def _log_flux(self):
        """(objects, bins) log mean flux, NaN where an object has no positive flux."""
        models = [obj.model for obj in self.objects]
        lo = np.median([m.wavelength[m.good][0] for m in models])
        hi = np.median([m.wavelength[m.good][-1] for m in models])
        edges = np.geomspace(lo, hi, self.n_bins + 1)
        log_flux = np.full((len(models), self.n_bins), np.nan)
        for row, m in enumerate(models):
            wave, flux = m.wavelength[m.good], m.flux[m.good]
            index = np.searchsorted(edges, wave) - 1
            inside = (index >= 0) & (index < self.n_bins) & (flux > 0)
            counts = np.bincount(index[inside], minlength=self.n_bins)
            sums = np.bincount(index[inside], flux[inside], minlength=self.n_bins)
            covered = counts > 0
            log_flux[row, covered] = np.log(sums[covered] / counts[covered])
        return log_flux

    def neighbours(self, index, k):
        """Indices of up to ``k`` objects nearest to object ``index``, itself first, no two
        of one group; objects sharing fewer than `min_shared_bins` bins with it are left out."""
        difference = self._log_flux - self._log_flux[index]
        shared = np.isfinite(difference)
        n_shared = shared.sum(axis=1)
        difference = np.where(shared, difference, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            offset = difference.sum(axis=1) / n_shared
            distance = np.where(shared, (difference - offset[:, None]) ** 2, 0.0).sum(1) / n_shared
        distance[n_shared < self.min_shared_bins] = np.inf
        distance[index] = -1.0
        chosen, seen = [], set()
        for candidate in np.argsort(distance, kind="stable"):
            if len(chosen) == k or not np.isfinite(distance[candidate]):
                break
            if self.groups[candidate] not in seen:
                seen.add(self.groups[candidate])
                chosen.append(candidate)
        return np.array(chosen, dtype=int)


def _miles_training_stars():
    from ..datasets import benchmark_split, load_miles
    miles = load_miles()
    train, _ = benchmark_split("miles", miles.labels)
    return [miles.spectra[i] for i in train]


def _spex_training_sources():
    """The training side of the SpeX split, and each spectrum's source (some have several)."""
    from ..datasets import benchmark_split, load_spex
    spex = load_spex()
    train, _ = benchmark_split("spex", spex.labels)
    return [spex.spectra[i] for i in train], np.asarray(spex.labels["source_key"])[train]


def _stellar_templates():
    from ..datasets import load_stellar_templates
    return load_stellar_templates().spectra


def _model_atmospheres():
    from ..datasets import load_model_atmospheres
    return load_model_atmospheres().spectra


def _ssp_templates():
    from ..datasets import load_ssp_templates
    return load_ssp_templates().spectra


def _simulated(generator):
    """A draw of a new object at each call from a `spectok.datasets` simulator class
    (``GalaxyGenerator`` or ``QuasarGenerator``), built on the SSP templates."""
    from ..datasets import load_ssp_templates
    simulator = generator(load_ssp_templates())
    return lambda rng, redshift: _Object(simulator.model(rng, redshift=redshift)[0])


def _galaxies():
    from ..datasets import GalaxyGenerator
    return _simulated(GalaxyGenerator)


def _quasars():
    from ..datasets import QuasarGenerator
    return _simulated(QuasarGenerator)


SOURCES = {
    "miles": lambda: _Pool(_miles_training_stars()),
    "spex": lambda: _Pool(*_spex_training_sources()),
    "stellar_templates": lambda: _Pool(_stellar_templates()),
    "model_atmospheres": lambda: _Pool(_model_atmospheres()),
    "ssp": lambda: _Pool(_ssp_templates()),
    "galaxies": _galaxies,
    "quasars": _quasars,
}
"""Sources a training configuration can name; each value makes a ``draw(rng, redshift)``.

Only the training side of each benchmark split is used (MILES by star, SpeX
by source), so the benchmark's test objects are never seen in pretraining.
"""

_SIMULATED_SOURCES = frozenset({"galaxies", "quasars"})


def check_source_configs(source_configs):
    """Refuse sources `build_sources` could not build, before any data is loaded.

    Parameters
    ----------
    source_configs : sequence of `~spectok.training.SourceConfig`

    Raises
    ------
    ValueError
        A source name that `SOURCES` does not know, or the ``"native"`` view
        or a negative redshift asked of a simulated source (galaxies,
        quasars), which has no view as published and is drawn at z ≥ 0.

    Examples
    --------
    >>> from spectok.training import SourceConfig
    >>> from spectok.training.data import check_source_configs
    >>> check_source_configs([SourceConfig("miles"), SourceConfig("galaxies")])
    >>> check_source_configs([SourceConfig("mils")])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown training source 'mils'; known: ['galaxies', 'miles', ...]
    """
    for config in source_configs:
        if config.name not in SOURCES:
            raise ValueError(f"unknown training source {config.name!r}; known: {sorted(SOURCES)}")
        if config.name in _SIMULATED_SOURCES and "native" in config.instruments:
            raise ValueError(f"training source {config.name!r} is simulated and has no "
                             "'native' view; list instrument presets only")
        if config.name in _SIMULATED_SOURCES and config.redshift[0] < 0:
            raise ValueError(f"training source {config.name!r} is simulated at redshifts "
                             f"z >= 0, got redshift = {tuple(config.redshift)!r}")


def build_sources(source_configs):
    """Turn `~spectok.training.SourceConfig` entries into `Source` objects (loading data).

    Parameters
    ----------
    source_configs : sequence of `~spectok.training.SourceConfig`
        The sources of a run (``TrainingConfig.sources``), each naming one
        of `SOURCES`.

    Returns
    -------
    list of `Source`
        One per entry, in order, with the entry's weight, instruments,
        signal-to-noise and redshift ranges and reconstruction target, and a
        ``draw`` over the source's data (loaded here, and fetched first
        where they are not cached).

    Raises
    ------
    ValueError
        What `check_source_configs` refuses.

    Examples
    --------
    >>> from spectok.training import SourceConfig, build_sources
    >>> config = SourceConfig("stellar_templates", weight=2.0, instruments=("sdss", "desi"))
    >>> (source,) = build_sources([config])  # doctest: +REMOTE_DATA
    >>> source.name, source.weight, source.instruments  # doctest: +REMOTE_DATA
    ('stellar_templates', 2.0, ('sdss', 'desi'))
    """
    check_source_configs(source_configs)
    sources = []
    for config in source_configs:
        sources.append(Source(config.name, SOURCES[config.name](), config.weight,
                              tuple(config.instruments), tuple(config.snr),
                              tuple(config.redshift), config.reconstruction_target))
    return sources


def _as_object(drawn):
    return drawn if isinstance(drawn, _Object) else _Object(drawn)


def _view(obj, instrument, snr, redshift, rng, patch_size, max_pixels, trim=True,
          min_pixels=64):
    """One view of an object as a `PreparedSpectrum`: observed through ``instrument``
    (or as published, for ``"native"``), each arm cut to its first and last usable
    pixel (``trim``) or kept whole as `spectok.encode` keeps it.

    Raises
    ------
    spectok.adapter.SpectrumInputError
        The instrument sees fewer than ``min_pixels`` pixels of the object, in
        every arm or (arms kept whole) in the window cut from them.
    """
    if instrument == "native":
        return obj.native  # published spectra here are short (SpeX: ~560 pixels)
    from ..datasets import get_instrument, observe_arrays
    inst = get_instrument(instrument)
    try:
        observed = observe_arrays(obj.model, inst, snr=snr, redshift=redshift, rng=rng)
    except ValueError as error:
        raise SpectrumInputError(str(error)) from None
    waves, fluxes, sigmas, masks = [], [], [], []
    for arm, (flux, ivar, mask, _) in zip(inst.arms, observed):
        good = np.flatnonzero(~mask)
        if len(good) < min_pixels:
            continue
        keep = slice(good[0], good[-1] + 1) if trim else slice(None)
        waves.append(arm._centres[keep])
        fluxes.append(flux[keep])
        with np.errstate(divide="ignore"):
            sigmas.append(1 / np.sqrt(ivar[keep]))
        masks.append(mask[keep])
    if not waves:
        raise SpectrumInputError(f"{instrument} sees too little of this object")
    waves, fluxes, sigmas, masks = _crop(rng, max_pixels, waves, fluxes, sigmas, masks)
    if not trim and sum(int((~mask).sum()) for mask in masks) < min_pixels:
        # whole arms may be mostly unusable: a window of one may hold too little
        raise SpectrumInputError(f"the window of {instrument} cut from this object is unusable")
    return PreparedSpectrum.from_arrays(waves, fluxes, sigmas, masks, obj.model.unit,
                                        patch_size=patch_size)


def _crop(rng, max_pixels, *arrays_per_arm):
    """Keep a random window of at most ``max_pixels`` consecutive pixels across the arms.

    Attention costs grow with the square of the number of patches; a window
    bounds the cost of a step and also teaches the model partial coverage.
    """
    lengths = np.array([len(a) for a in arrays_per_arm[0]])
    total = lengths.sum()
    if total <= max_pixels:
        return arrays_per_arm
    start = rng.integers(0, total - max_pixels + 1)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    cropped = [[] for _ in arrays_per_arm]
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        a, b = max(lo, start) - lo, min(hi, start + max_pixels) - lo
        if b - a >= 2:
            for out, arrays in zip(cropped, arrays_per_arm):
                out.append(arrays[k][a:b])
    return cropped


def _mask_bad_region(prepared, rng, probability=0.3, max_fraction=0.1):
    """A copy with a random stretch of pixels unusable, as detector defects and sky lines do."""
    if rng.random() >= probability:
        return prepared
    arm = rng.integers(len(prepared.valid))
    valid = prepared.valid[arm]
    width = int(rng.uniform(0.01, max_fraction) * len(valid))
    if width == 0 or valid.sum() - width < 2 * valid.size // 3:
        return prepared
    start = rng.integers(0, len(valid) - width + 1)
    masked = valid.copy()
    masked[start:start + width] = False
    return dataclasses.replace(prepared, valid=[masked if k == arm else v
                                                for k, v in enumerate(prepared.valid)])


def _query(valid, n_query, rng):
    """Indices of up to ``n_query`` valid pixels per row, padded; and which are real."""
    index = np.zeros((len(valid), n_query), np.int64)
    real = np.zeros((len(valid), n_query), bool)
    for row, (v, r) in enumerate(zip(valid, rng)):
        candidates = np.flatnonzero(v)
        chosen = candidates if len(candidates) <= n_query else \
            np.sort(r.choice(candidates, n_query, replace=False))
        index[row, :len(chosen)] = chosen
        real[row, :len(chosen)] = True
    return torch.from_numpy(index), torch.from_numpy(real)


def _view_tensors(prepared, rngs, config, patch_size, generators):
    batch = to_batch(prepared, patch_size, warn_missing_uncertainty=False)
    _, _, active = patch_geometry(batch.log_wavelength, batch.valid, batch.observed,
                                  batch.spacing, patch_size)
    # Draw each spectrum's hidden patches over its own patches only, so that the
    # draw does not depend on how much padding the batch happens to have.
    hide = torch.zeros_like(active)
    for row, (length, generator) in enumerate(zip(batch.lengths.tolist(), generators)):
        n = length // patch_size
        hide[row, :n] = hide_patches(active[row:row + 1, :n], config.hide_fraction, generator)[0]
    query, query_valid = _query(batch.valid.numpy(), config.max_query_pixels, rngs)
    return {"inputs": batch.model_inputs(), "hide": hide, "query": query,
            "query_valid": query_valid}


class TrainingStream(torch.utils.data.IterableDataset):
    """Batches of paired views for steps ``start_step`` … ``stop_step - 1``.

    Parameters
    ----------
    sources : list of `Source`
    config : `~spectok.training.TrainingConfig`
        Uses ``seed``, ``batch_size``, ``hide_fraction`` and ``max_query_pixels``.
    patch_size : int
    rank, world_size : int
        This process takes examples ``rank * b … (rank + 1) * b - 1`` of each
        global batch, ``b = batch_size // world_size``.
    start_step, stop_step : int
    validation : bool
        Draw from a separate stream (the fixed validation set).

    Notes
    -----
    With DataLoader workers, worker ``w`` of ``n`` makes the batches of steps
    ``w, w + n, …``; the DataLoader's round-robin returns them in step order.

    Examples
    --------
    Batches of four toy spectra of 512 pixels (16 patches), each seen twice
    as published. A view holds the model's inputs (the first six arguments
    of `~spectok.model.SpectralTokenizer.encode`), the patches hidden from
    the encoder and the pixels at which the decoder is queried:

    >>> import astropy.units as u
    >>> import numpy as np
    >>> import torch
    >>> from astropy.nddata import StdDevUncertainty
    >>> from specutils import Spectrum
    >>> from spectok.training import Source, TrainingConfig, TrainingStream
    >>> def draw(rng, redshift):
    ...     wave = np.geomspace(4000, 7000, 512) * u.AA
    ...     flux = (1 + 0.3 * np.sin(wave.value / rng.uniform(20, 60))) * u.Jy
    ...     return Spectrum(spectral_axis=wave, flux=flux,
    ...                     uncertainty=StdDevUncertainty(0.02 * flux))
    >>> source = Source("toy", draw, instruments=("native",))
    >>> config = TrainingConfig(model="tiny", steps=3, batch_size=4, max_query_pixels=128)
    >>> stream = TrainingStream([source], config, patch_size=32)
    >>> view_a, view_b = stream.batch(0)
    >>> sorted(view_a)
    ['hide', 'inputs', 'query', 'query_valid', 'reconstruct_init_weights']
    >>> view_a["inputs"][1].shape, view_a["hide"].shape, view_a["query"].shape
    (torch.Size([4, 512]), torch.Size([4, 16]), torch.Size([4, 128]))

    The stream is the same wherever it is drawn: again, on another rank (half
    of the batch), or by iterating over the steps:

    >>> again = TrainingStream([source], config, patch_size=32).batch(0)[0]
    >>> bool(torch.equal(again["inputs"][1], view_a["inputs"][1]))
    True
    >>> half = TrainingStream([source], config, 32, rank=1, world_size=2).batch(0)[0]
    >>> bool(torch.equal(half["inputs"][1], view_a["inputs"][1][2:]))
    True
    >>> len(list(stream))  # steps 0, 1 and 2
    3
    """

    def __init__(self, sources, config, patch_size, *, rank=0, world_size=1, start_step=0,
                 stop_step=None, validation=False):
        super().__init__()
        self.sources = sources
        self.config = config
        self.patch_size = patch_size
        self.rank, self.world_size = rank, world_size
        self.start_step = start_step
        self.stop_step = config.steps if stop_step is None else stop_step
        self.stream = _VALIDATION_STREAM if validation else 0
        weights = np.array([s.weight for s in sources], float)
        self.probabilities = weights / weights.sum()

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info else (0, 1)
        for step in range(self.start_step, self.stop_step):
            if (step - self.start_step) % n_workers == worker:
                yield self.batch(step)

    def _example(self, source, instruments, step, index, chosen=None):
        """Two views of one object: the pool's object ``chosen``, or a random draw.

        A random draw also replaces a chosen object that the instruments
        cannot observe.
        """
        rng = np.random.default_rng([self.config.seed, self.stream, step, index])
        for attempt in range(_MAX_REDRAWS):
            redshift = rng.uniform(*source.redshift)
            obj = source.draw.objects[chosen] if chosen is not None and attempt == 0 else \
                _as_object(source.draw(rng, redshift))
            if obj.simulated and "native" in instruments:
                raise ValueError(f"training source {source.name!r} draws simulated objects, "
                                 "which have no 'native' view; list instrument presets only")
            views = []
            try:
                for instrument in instruments:
                    snr = float(np.exp(rng.uniform(*np.log(source.snr))))
                    view = _view(obj, instrument, snr, redshift, rng, self.patch_size,
                                 self.config.max_view_pixels, self.config.trim_views)
                    views.append(_mask_bad_region(view, rng))
            except SpectrumInputError:
                continue
            return views, rng
        raise RuntimeError(f"source {source.name!r} gave no object that {instruments} can "
                           f"observe in {_MAX_REDRAWS} draws")

    def batch(self, step):
        """The two views of this rank's share of the global batch of ``step``."""
        rng = np.random.default_rng([self.config.seed, self.stream, step])
        source = self.sources[rng.choice(len(self.sources), p=self.probabilities)]
        instruments = tuple(rng.choice(source.instruments, 2))
        chosen = [None] * self.config.batch_size
        if (self.config.similar_batch_fraction > 0 and isinstance(source.draw, _Pool)
                and rng.random() < self.config.similar_batch_fraction):
            anchor = rng.integers(len(source.draw.objects))
            near = source.draw.neighbours(anchor, self.config.batch_size)
            chosen[:len(near)] = near.tolist()
        local = self.config.batch_size // self.world_size
        indices = range(self.rank * local, (self.rank + 1) * local)
        examples = [self._example(source, instruments, step, i, chosen[i]) for i in indices]
        generators = [torch.Generator().manual_seed(int(np.random.SeedSequence(
            [self.config.seed, self.stream, step, i]).generate_state(1)[0])) for i in indices]
        rngs = [r for _, r in examples]
        held = source.reconstruction_target == "init_weights"
        return tuple({**_view_tensors([views[k] for views, _ in examples], rngs, self.config,
                                      self.patch_size, generators),
                      "reconstruct_init_weights": held} for k in range(2))
