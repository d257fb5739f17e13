"""Checking prepared spectra against the wavelength range a model was trained on."""

import warnings

import numpy as np

from .errors import WavelengthRangeWarning
from .units import as_wavelength_range

__all__ = ["fraction_outside", "check_wavelength_range"]


# -- the model's wavelength range -----------------------------------------------------

def fraction_outside(prepared, wavelength_range):
    """Fraction of a spectrum's valid pixels that lie outside a wavelength range.

    Parameters
    ----------
    prepared : `PreparedSpectrum`
        The spectrum.
    wavelength_range : `~astropy.units.Quantity` or tuple of float
        Shortest and longest vacuum wavelength: a Quantity in any spectral
        unit (shortest wavelength first in a length unit, either order in
        frequency or energy), or two numbers in Å (for
        example the range a model was trained on,
        ``model.metadata["wavelength_range"]``).

    Returns
    -------
    float
        Between 0 (all valid pixels inside) and 1 (none inside).

    Raises
    ------
    ValueError
        ``wavelength_range`` is not two positive, finite wavelengths
        (shortest first, unless given in frequency or energy), or its unit
        is not spectral.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import fraction_outside, prepare_spectrum
    >>> wave = np.linspace(3000, 4000, 100) * u.AA
    >>> p = prepare_spectrum((wave, np.ones(100) * u.Jy, np.full(100, 0.1) * u.Jy))
    >>> round(fraction_outside(p, (3500.0, 10000.0)), 2)
    0.5
    >>> round(fraction_outside(p, [0.35, 1.0] * u.um), 2)
    0.5
    """
    low, high = as_wavelength_range(wavelength_range, "wavelength_range")
    wave = np.concatenate(prepared.wavelength)[np.concatenate(prepared.valid)]
    return float(np.mean((wave < low) | (wave > high)))


def check_wavelength_range(prepared, wavelength_range, stacklevel=2):
    """Warn once about spectra that reach outside the range a model was trained on.

    Outside the wavelengths it was trained on a model extrapolates: the
    tokens and embedding are finite and well defined, but the model has never
    seen such a spectrum, so they may mean little.

    Parameters
    ----------
    prepared : list of `PreparedSpectrum`
        The spectra.
    wavelength_range : `~astropy.units.Quantity`, tuple of float or None
        Shortest and longest vacuum wavelength the model was trained on, as
        for `fraction_outside` (``model.metadata["wavelength_range"]``);
        `None` checks nothing.
    stacklevel : int
        Passed to `warnings.warn`.

    Returns
    -------
    list of str
        Labels of the spectra with valid pixels outside the range.

    Warns
    -----
    WavelengthRangeWarning
        When some spectra have valid pixels outside the range (one warning
        for all of them).

    Examples
    --------
    >>> import warnings
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import check_wavelength_range, prepare_spectrum
    >>> wave = np.linspace(3000, 4000, 100) * u.AA
    >>> p = prepare_spectrum((wave, np.ones(100) * u.Jy, np.full(100, 0.1) * u.Jy))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_wavelength_range([p], (3500.0, 10000.0))
    ['spectrum']
    >>> print(caught[0].message)
    1 of 1 spectra reach outside the 3500–10000 Å the model was trained on (spectrum: 50% of \
its valid pixels); their embeddings are extrapolations
    """
    if wavelength_range is None:
        return []
    wavelength_range = as_wavelength_range(wavelength_range, "wavelength_range")
    outside = [(p.label, fraction_outside(p, wavelength_range)) for p in prepared]
    outside = [(label, fraction) for label, fraction in outside if fraction > 0]
    if outside:
        low, high = wavelength_range
        listed = ", ".join(f"{label}: {fraction:.0%} of its valid pixels"
                           for label, fraction in outside[:3])
        warnings.warn(f"{len(outside)} of {len(prepared)} spectra reach outside the "
                      f"{low:.0f}–{high:.0f} Å the model was trained on ({listed}"
                      f"{', …' if len(outside) > 3 else ''}); their embeddings are "
                      "extrapolations", WavelengthRangeWarning, stacklevel=stacklevel + 1)
    return [label for label, _ in outside]

