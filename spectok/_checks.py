"""Checks of plain arguments shared across spectok (numbers, pairs, bools, names), so that
each is refused the same way everywhere. Spectra and wavelengths are the adapter's
(`spectok.adapter.prepare.check_spectra`, `spectok.adapter.units.as_wavelength_range`)."""

import numbers
from collections.abc import Iterable, Mapping, Set

import numpy as np

__all__ = ["as_number", "as_pair", "is_integer", "check_bool", "check_names"]


def as_number(value, message):
    """``value`` as a float, or ValueError(``message``) unless it is one number.

    A string or a bool is refused although `float` takes it: ``snr="10"`` or
    ``redshift=True`` is more likely a slip than a number.
    """
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise ValueError(message)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(message) from None


def as_pair(value, message):
    """``value`` as two floats ``(low, high)``, or ValueError(``message``) unless it is a
    sequence of two numbers (`as_number` each: strings and bools are refused)."""
    if isinstance(value, (str, bytes, Mapping, Set)) or not hasattr(value, "__len__") \
            or len(value) != 2:   # a dict's keys are no pair, a set has no order
        raise ValueError(message)
    return tuple(as_number(v, message) for v in value)


def is_integer(value):
    """Whether ``value`` is an int or a numpy integer, and not a bool (which `int` subclasses)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_bool(value, name):
    """Raise ValueError unless ``value`` is a bool (``resume="no"`` would count as true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_names(names, known, argument, what, *, single=True):
    """``names`` as a tuple of distinct names from ``known``, in the order given.

    With ``single``, one string is one name; without, it is refused, since a
    list was expected (``tasks="redshift"`` would otherwise be read letter by
    letter). Bytes, a set (no order), a mapping or a name that is not a string
    is a TypeError; an empty selection, an unknown name or one given twice
    (its work would be done twice) a ValueError. ``what`` names the kind in
    the unknown-name message, e.g. ``"model sets"``.
    """
    expected = "a name or a sequence of names" if single else "a list of names"
    if isinstance(names, str) and single:
        names = (names,)
    elif isinstance(names, (str, bytes, Set, Mapping)) or not isinstance(names, Iterable):
        raise TypeError(f"{argument} must be {expected} from {sorted(known)}, got {names!r}")
    names = tuple(names)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{argument} must hold names (strings), got {name!r}")
    if not names:
        raise ValueError(f"{argument} is empty; choose from {sorted(known)}")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"{argument}: unknown {what} {unknown}; choose from {sorted(known)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{argument} lists {repeated} more than once")
    return names

