"""Observing a population of simulated objects, one random stream per object.

`observe_population` is the loop that `simulate_galaxies` and
`simulate_quasars` share. Object ``i`` is drawn and observed with its own
stream, ``SeedSequence(seed).spawn(n)[i]``, so the result does not depend
on how the objects are split between worker processes.
"""

import math
import operator

import astropy.units as u
import numpy as np

from .._checks import as_pair, is_integer
from .instruments import get_instrument
from .observing import _observed_spectrum, observe_arrays

#: Rest-frame range asked of a model beyond the instrument's, at each end.
_REST_MARGIN = 1.05


def _draw_range(value, name):
    message = f"{name} must be a number or a (low, high) pair of numbers, got {value!r}"
    lo, hi = as_pair((value, value) if np.ndim(value) == 0 else value, message)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if not hi >= lo:
        raise ValueError(f"{name} range must be (low, high), got {value}")
    return lo, hi


def _check_seed(seed):
    """Raise ValueError unless ``seed`` is None or what `numpy.random.SeedSequence` takes:
    a non-negative integer or a sequence of them (a bool is refused, not taken as 0 or 1)."""
    try:
        if isinstance(seed, (bool, np.bool_)):
            raise TypeError
        np.random.SeedSequence(seed)
    except (TypeError, ValueError):
        raise ValueError(f"seed must be a non-negative integer (or a sequence of them) or "
                         f"None, got {seed!r}") from None


def population_arguments(n, instrument, z, snr, n_jobs=None, seed=None):
    """Check the arguments shared by the simulators of populations, before any work.

    Returns ``n``, the `Instrument`, and the (low, high) ranges of ``z`` and ``snr``.
    """
    try:
        if isinstance(n, (bool, np.bool_)):
            raise TypeError
        n = operator.index(n)
    except TypeError:
        raise ValueError(f"n must be an integer number of objects, at least 1, got "
                         f"{type(n).__name__} {n!r}") from None
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n_jobs is not None and (not is_integer(n_jobs) or n_jobs == 0):
        raise ValueError(f"n_jobs must be a nonzero integer (-1: all cores) or None, "
                         f"got {n_jobs!r}")
    z_range = _draw_range(z, "z")
    if z_range[0] < 0:
        raise ValueError(f"redshifts must be non-negative, got {z}")
    snr_range = _draw_range(snr, "snr")
    if not snr_range[0] > 0:
        raise ValueError(f"snr must be positive, got {snr}")
    _check_seed(seed)
    return n, get_instrument(instrument), z_range, snr_range


def observe_population(draw_model, n, instrument, seed, z_range, snr_range, kind="object",
                       id_tag="obj", n_jobs=None):
    """Draw ``n`` objects and observe each through ``instrument``.

    For each object, its stream draws the redshift (uniform in
    ``z_range``) and the S/N (log-uniform in ``snr_range``), then
    ``draw_model`` the rest-frame model, then `observe_arrays` the noise.

    Parameters
    ----------
    draw_model : callable
        ``draw_model(rng, redshift=z, wavelength_range=rest_range)`` returns
        ``(model, labels)``: a rest-frame
        `~spectok.datasets.ModelArrays` covering ``rest_range``
        (Å Quantity, the instrument's range at ``z`` with 5 % to spare) and
        a dict of labels. It is pickled for worker processes.
    n : int
        Number of objects.
    instrument : `~spectok.datasets.Instrument`
        The instrument observing every object.
    seed : int
        Seed of the objects' streams.
    z_range, snr_range : (float, float)
        Ranges of the redshift and the S/N (equal ends give that value).
    kind : str
        What an object is, for error messages ("galaxy 12 at z=0.310 …").
    id_tag : str
        The middle of each object's id, ``"{instrument}-{id_tag}-{i:06d}"``.
    n_jobs : int, optional
        Worker processes (joblib's convention: None is one unless a
        ``joblib.parallel_config`` sets it, -1 is all cores). They draw and
        observe; the spectra are built in this process.

    Returns
    -------
    spectra : list
        `~spectok.datasets.observe`'s output per object.
    rows : list of dict
        Each object's labels: ``id``, ``z``, what ``draw_model`` returned
        with its model, and ``snr``.

    Raises
    ------
    ValueError
        A ``seed`` that is not a non-negative integer or None, or what
        ``draw_model`` or `observe_arrays` raise, prefixed with the object,
        its redshift and the instrument.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from spectok.datasets import get_instrument
    >>> from spectok.datasets import ModelArrays
    >>> from spectok.datasets._population import observe_population
    >>> def flat(rng, redshift, wavelength_range):
    ...     lam = np.linspace(*wavelength_range.to_value(u.AA), 4000)
    ...     return ModelArrays(lam, np.ones(lam.size), u.one, np.ones(lam.size, bool)), {}
    >>> spectra, rows = observe_population(flat, 2, get_instrument("sdss"), 0, (0.0, 0.5),
    ...                                    (20.0, 20.0))
    >>> len(spectra), spectra[0].flux.size, rows[1]["id"], rows[1]["snr"]
    (2, 4607, 'sdss-obj-000001', 20.0)
    """
    from joblib import Parallel, delayed, effective_n_jobs

    _check_seed(seed)
    streams = np.random.SeedSequence(seed).spawn(n)
    chunks = np.array_split(np.arange(n), max(effective_n_jobs(n_jobs), 1))
    # Processes, whatever backend a surrounding parallel_config names: the work is
    # mostly Python and small numpy calls that hold the GIL (two threads measured no
    # faster than one).
    parts = Parallel(n_jobs=n_jobs, backend="loky")(
        delayed(_observe_objects)(draw_model, instrument, chunk.tolist(),
                                  [streams[i] for i in chunk], z_range, snr_range, kind)
        for chunk in chunks if chunk.size)
    objects = [obj for part in parts for obj in part]
    spectra = [_observed_spectrum(instrument, arms, unit, snr, z)
               for unit, arms, z, snr, _ in objects]
    rows = [{"id": f"{instrument.name}-{id_tag}-{i:06d}", "z": z, **labels, "snr": snr}
            for i, (_, _, z, snr, labels) in enumerate(objects)]
    return spectra, rows


def _observe_objects(draw_model, instrument, indices, streams, z_range, snr_range, kind):
    """Draw and observe objects ``indices`` as plain arrays (cheap to send between processes)."""
    (z_lo, z_hi), (snr_lo, snr_hi) = z_range, snr_range
    lo, hi = instrument.wavelength_range.to_value(u.AA)
    out = []
    for i, stream in zip(indices, streams):
        rng = np.random.default_rng(stream)
        z = float(rng.uniform(z_lo, z_hi))
        snr = float(math.exp(rng.uniform(math.log(snr_lo), math.log(snr_hi))))
        snr = snr_lo if snr_lo == snr_hi else snr
        rest_range = [lo / (1 + z) / _REST_MARGIN, hi / (1 + z) * _REST_MARGIN] * u.AA
        try:
            model, labels = draw_model(rng, redshift=z, wavelength_range=rest_range)
            arms = observe_arrays(model, instrument, snr=snr, redshift=z, rng=rng)
        except ValueError as error:
            raise ValueError(f"{kind} {i} at z={z:.3f} through {instrument.name!r}: "
                             f"{error}") from None
        out.append((model.unit, arms, z, snr, labels))
    return out
