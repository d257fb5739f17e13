"""Checks of numeric arguments shared across spectok, so that each is refused the same way."""

import numbers

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
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(message)
    return tuple(as_number(v, message) for v in value)


def is_integer(value):
    """Whether ``value`` is an int or a numpy integer, and not a bool (which `int` subclasses)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_bool(value, name):
    """Raise ValueError unless ``value`` is a bool (``resume="no"`` would count as true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
