"""Observing a population of simulated objects, one random stream per object.

`observe_population` is the loop `simulate_galaxies` and `simulate_quasars`
share. Object ``i`` is drawn and observed with its own stream,
``SeedSequence(seed).spawn(n)[i]``, so the result does not depend on how
the objects are split between worker processes.
"""

import numpy as np

from .instruments import _observed_spectrum, observe_arrays

__all__ = ["observe_population"]


def observe_population(draw, n, instrument, seed, what="object", n_jobs=None):
    """Draw ``n`` model spectra and observe each through ``instrument``.

    Parameters
    ----------
    draw : callable
        ``draw(i, rng)`` returns ``(model, z, snr, row)`` for object ``i``:
        its rest-frame `~spectok.datasets.instruments.ModelArrays`, redshift,
        S/N and labels (a dict). It must pickle when ``n_jobs`` asks for
        more than one process (a module-level function or a
        `functools.partial` of one).
    n : int
        Number of objects.
    instrument : `~spectok.datasets.Instrument`
    seed : int
        Seed of the objects' streams.
    what : str
        What an object is, for error messages ("galaxy 12 at z=0.310 …").
    n_jobs : int, optional
        Processes (joblib's convention: None is one unless a
        `joblib.parallel_config` says otherwise, -1 is all cores). The
        models are drawn and observed in the workers; the spectra are built
        here.

    Returns
    -------
    spectra : list
        `observe`'s output per object.
    rows : list of dict
        The labels per object.

    Raises
    ------
    ValueError
        What ``draw`` or `observe` raise, prefixed with the object, its
        redshift and the instrument.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from spectok.datasets import get_instrument
    >>> from spectok.datasets.instruments import ModelArrays
    >>> from spectok.datasets.population import observe_population
    >>> lam = np.linspace(3000.0, 11000.0, 4000)
    >>> flat = ModelArrays(lam, np.ones(lam.size), u.one, np.ones(lam.size, dtype=bool))
    >>> def draw(i, rng):
    ...     return flat, 0.0, 20.0, {"id": i}
    >>> spectra, rows = observe_population(draw, 2, get_instrument("sdss"), seed=0)
    >>> len(spectra), spectra[0].flux.size, rows[1]
    (2, 4607, {'id': 1})
    """
    from joblib import Parallel, delayed, effective_n_jobs

    streams = np.random.SeedSequence(seed).spawn(n)
    chunks = np.array_split(np.arange(n), max(effective_n_jobs(n_jobs), 1))
    parts = Parallel(n_jobs=n_jobs, backend="loky")(
        delayed(_observe_objects)(draw, instrument, chunk.tolist(), [streams[i] for i in chunk],
                                  what)
        for chunk in chunks if chunk.size)
    spectra, rows = [], []
    for unit, arms, z, snr, row in (obj for part in parts for obj in part):
        spectra.append(_observed_spectrum(instrument, arms, unit, snr, z))
        rows.append(row)
    return spectra, rows


def _observe_objects(draw, instrument, indices, streams, what):
    """Draw and observe objects ``indices`` as plain arrays (cheap to send between processes)."""
    out = []
    for i, stream in zip(indices, streams):
        rng = np.random.default_rng(stream)
        model, z, snr, row = draw(i, rng)
        try:
            arms = observe_arrays(model, instrument, snr=snr, redshift=z, rng=rng)
        except ValueError as error:
            raise ValueError(f"{what} {i} at z={z:.3f} through {instrument.name!r}: "
                             f"{error}") from None
        out.append((model.unit, arms, z, snr, row))
    return out
