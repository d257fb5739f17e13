"""Checks of arguments shared across spectok (numbers, ranges, names, lists of spectra), so
that each is refused the same way everywhere."""

import numbers
from collections.abc import Iterable, Mapping, Set

import numpy as np


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
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") \
            or len(value) != 2:   # a dict's keys are no pair
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


def check_spectra(spectra, argument, what="spectra"):
    """``spectra`` as an iterable of spectra, one per object, or TypeError naming ``argument``.

    A `~spectok.datasets.SpectrumDataset` gives its spectra. One spectrum (a
    `~specutils.Spectrum`, whose iteration never ends; a
    `~specutils.SpectrumList`, the arms of one object; a ``(wavelength,
    flux)`` tuple), a string, a dict (its keys), a set (no order) or what
    cannot be iterated is refused. The iterable itself is returned, so that a
    generator stays lazy. ``what`` says what the items are, for the message.
    """
    from .adapter import is_single_spectrum
    from .datasets import SpectrumDataset

    if isinstance(spectra, SpectrumDataset):
        return spectra.spectra
    if is_single_spectrum(spectra):
        raise TypeError(f"{argument} must be a list of {what}, got one "
                        f"{type(spectra).__name__}: put it in a list")
    # a torch Dataset iterates through __getitem__ alone; a 0-d array does not iterate
    iterable = isinstance(spectra, Iterable) or hasattr(spectra, "__getitem__")
    if isinstance(spectra, (str, bytes, Mapping, Set)) or not iterable \
            or getattr(spectra, "ndim", 1) == 0:
        raise TypeError(f"{argument} must be a list (or another ordered iterable) of {what}, "
                        f"got a {type(spectra).__name__}")
    return spectra


def as_wavelength_range(value, argument):
    """``value`` as (shortest, longest) vacuum wavelength in Å, or ValueError naming ``argument``.

    ``value`` holds two values, each a Quantity in any spectral unit or a
    number in Å (a Quantity of two values will do). Where both are lengths
    (or numbers) they must ascend, so that a reversed range is caught; where
    one is a frequency, energy or wavenumber either order is read, since the
    shorter wavelength is the larger value there.
    """
    import astropy.units as u

    message = (f"{argument} must be two positive, finite wavelengths, shortest first (a "
               f"Quantity in any spectral unit, or numbers in Å), got {value!r}")
    if isinstance(value, (str, bytes, Mapping, Set)) or not hasattr(value, "__len__") \
            or getattr(value, "ndim", 1) != 1 or len(value) != 2:   # a set has no order
        raise ValueError(message)
    values, lengths = [], True
    for item in value:
        if isinstance(item, u.Quantity):
            try:
                values.append(float(item.to_value(u.AA, equivalencies=u.spectral())))
            except (TypeError, u.UnitsError):
                raise ValueError(message) from None
            lengths = lengths and item.unit.physical_type == "length"
        else:
            values.append(as_number(item, message))
    low, high = values if lengths else sorted(values)
    if not 0 < low < high < np.inf:
        raise ValueError(message)
    return low, high
