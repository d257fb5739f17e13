"""Checks of the simulators' numeric arguments, so that each is refused the same way."""

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
