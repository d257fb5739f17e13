"""Checks of the simulators' numeric arguments, so that each is refused the same way."""

import numpy as np

from .._checks import as_number

__all__ = ["check_snr", "check_redshift"]


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
