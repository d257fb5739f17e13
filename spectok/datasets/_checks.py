"""Checks of the datasets' arguments (the simulators' numbers, the loaders' names), so that
each is refused the same way."""

from collections.abc import Iterable, Mapping, Set

import numpy as np

from .._checks import as_number


def check_snr(snr):
    """``snr`` as a float; ValueError unless it is a positive, finite number."""
    snr = as_number(snr, f"snr must be a positive number, got {snr!r}")
    if not (np.isfinite(snr) and snr > 0):
        raise ValueError(f"snr must be positive and finite, got {snr}")
    return snr


def check_redshift(redshift, *, blueshift=False):
    """``redshift`` as a float; ValueError unless it is finite and ≥ 0 (> -1 with ``blueshift``)."""
    bound = "> -1" if blueshift else "non-negative"
    kind = "a number > -1" if blueshift else "a non-negative number"
    z = as_number(redshift, f"redshift must be {kind}, got {redshift!r}")
    if not (np.isfinite(z) and (z > -1 if blueshift else z >= 0)):
        raise ValueError(f"redshift must be finite and {bound}, got {z}")
    return z


def check_names(names, known, argument, what):
    """``names`` (one name or an ordered sequence of them) as a tuple of distinct ``known`` names.

    A string is one name, not a sequence of letters; bytes, a set (no order)
    or a mapping is refused, and so are an empty selection and a repeat (whose
    spectra would come twice). ``what`` names the kind in the unknown-name
    message, e.g. ``"model sets"``.
    """
    if isinstance(names, str):
        names = (names,)
    elif isinstance(names, (bytes, Set, Mapping)) or not isinstance(names, Iterable):
        raise TypeError(f"{argument} must be a name or a sequence of names, got {names!r}")
    names = tuple(names)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{argument} must hold names (strings), got {name!r}")
    if not names:
        raise ValueError(f"{argument} is empty; choose from {sorted(known)}")
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"{argument}: unknown {what} {unknown}; choose from {sorted(known)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{argument} lists {repeated} more than once")
    return tuple(str(name) for name in names)
