"""Units and wavelengths: flux to and from its canonical unit, spectral axes to vacuum Å.

Spectral flux densities become f_λ in `FLAM` (surface brightnesses `FLAM` per
steradian); counts keep their unit and a dimensionless flux stays plain numbers.
Spectral axes in any spectral unit become vacuum Ångström, air converted with the
IAU standard (Morton 2000); uncertainties of any astropy kind become a 1σ error.
"""

import functools
from collections.abc import Mapping, Set

import astropy.units as u
import numpy as np
from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.utils.masked import Masked
from specutils.utils.wcs_utils import air_to_vac

from .._checks import as_number
from .errors import SpectrumInputError

__all__ = ["FLAM", "wavelength_grid", "log_bin_edges", "canonical_flux", "flux_in_unit",
           "as_angstrom", "as_wavelength_range"]

FLAM = u.erg / u.s / u.cm**2 / u.AA
"""Canonical unit of spectral flux density (f_λ)."""

_COUNT_UNITS = (u.ct, u.electron, u.adu, u.ph)


# -- units -----------------------------------------------------------------------

def _canonical_unit(unit, label):
    """Canonical flux unit for ``unit``, or raise if it is not a flux (naming ``label``)."""
    canonical = _classify_flux_unit(unit)
    if isinstance(canonical, str):
        raise u.UnitConversionError(f"{label}: {canonical}")
    return canonical


@functools.lru_cache(maxsize=256)
def _classify_flux_unit(unit):
    """Canonical unit for a flux unit, or a message saying why it is not a flux."""
    if isinstance(unit, u.LogUnit) or (hasattr(unit, "physical_unit")):
        return f"flux is in magnitudes ({unit}); convert it to a linear flux density first"
    for canonical in (FLAM, FLAM / u.sr):
        if unit.is_equivalent(canonical, equivalencies=u.spectral_density(1 * u.AA)):
            return canonical
    if unit.physical_type == "dimensionless":
        return u.dimensionless_unscaled
    for base in _COUNT_UNITS:
        if (unit / base).decompose().physical_type in ("dimensionless", "frequency"):
            return unit
    return (f"flux unit {unit} ({unit.physical_type}) is not a flux: use a spectral flux "
            "density (f_λ, f_ν, photon flux), counts or a dimensionless (normalised) flux")


def _conversion_factor(unit, canonical, wave, label, input_unit):
    """Multiplier per pixel (or a scalar) from ``unit`` to ``canonical`` at vacuum Å ``wave``."""
    try:
        return unit.to(canonical)
    except u.UnitConversionError:
        pass
    try:
        return (1 * unit).to_value(canonical, equivalencies=u.spectral_density(wave * u.AA))
    except u.UnitConversionError:
        raise u.UnitConversionError(
            f"{label}: arms have incompatible flux units ({unit} vs {input_unit})") from None


def _wavelength_angstrom(axis, label):
    if not isinstance(axis, u.Quantity):
        raise u.UnitConversionError(
            f"{label}: the spectral axis has no unit; give it as an astropy Quantity "
            "(e.g. wavelength * u.AA)")
    try:
        wave = u.Quantity(axis).to_value(u.AA, equivalencies=u.spectral())
    except u.UnitConversionError:
        raise u.UnitConversionError(
            f"{label}: spectral axis unit {axis.unit.to_string() or 'dimensionless'} is not a "
            "wavelength, frequency, energy or wavenumber") from None
    if wave.ndim != 1:
        raise SpectrumInputError(f"{label}: the spectral axis must be 1-D, got shape {wave.shape}")
    if not np.all(np.isfinite(wave)):
        raise SpectrumInputError(f"{label}: the spectral axis has {np.sum(~np.isfinite(wave))} "
                                 "non-finite values")
    if np.any(wave <= 0):
        raise SpectrumInputError(f"{label}: the spectral axis has non-positive wavelengths")
    return wave


def _air_to_vacuum(wave, label):
    """Vacuum wavelengths (Å) from air ones with the IAU standard (Morton 2000)."""
    if wave.min() < 2000:
        raise SpectrumInputError(
            f"{label}: air wavelengths below 2000 Å ({wave.min():.1f} Å) have no air-to-vacuum "
            "conversion (air does not transmit there); give vacuum wavelengths")
    return air_to_vac(wave * u.AA, scheme="inversion", method="Morton2000").to_value(u.AA)


def _sigma_quantity(uncertainty, flux_unit, label):
    """1σ error as a Quantity in ``flux_unit`` (inf where the error says 'no information')."""
    if not isinstance(uncertainty, (StdDevUncertainty, VarianceUncertainty, InverseVariance)):
        raise SpectrumInputError(
            f"{label}: uncertainty of type {type(uncertainty).__name__} is not supported; use "
            "StdDevUncertainty, VarianceUncertainty or InverseVariance (or a 1σ Quantity)")
    array = np.asarray(uncertainty.array, dtype=float)
    if isinstance(uncertainty, StdDevUncertainty):
        sigma = array * (uncertainty.unit or flux_unit)
    elif isinstance(uncertainty, VarianceUncertainty):
        with np.errstate(invalid="ignore"):
            sigma = np.sqrt(array * (uncertainty.unit or flux_unit**2))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = 1 / np.sqrt(np.where(array > 0, array, 0) * (uncertainty.unit or flux_unit**-2))
    try:
        return sigma.to(flux_unit)
    except u.UnitConversionError:
        raise u.UnitConversionError(
            f"{label}: uncertainty unit {sigma.unit} does not match flux unit {flux_unit}"
        ) from None


# -- the way back: requested grids and output units ------------------------------------

def wavelength_grid(wavelength, medium="vacuum", *, label="requested wavelength grid"):
    """ln λ and sampling of a grid on which to render a spectrum.

    Parameters
    ----------
    wavelength : `~astropy.units.Quantity`
        Strictly monotonic spectral axis in any spectral unit.
    medium : {"vacuum", "air"}
        Medium of ``wavelength``.
    label : str, optional
        What ``wavelength`` is, for error messages.

    Returns
    -------
    log_wavelength : `~numpy.ndarray`
        ln of vacuum wavelength in Å, in the order given.
    spacing : `~numpy.ndarray`
        ln λ step per pixel (positive).
    wavelength_aa : `~numpy.ndarray`
        Vacuum wavelength in Å, in the order given.

    Raises
    ------
    SpectrumInputError, astropy.units.UnitConversionError
        As for an input spectral axis.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import wavelength_grid
    >>> log_wave, spacing, wave = wavelength_grid([1.0, 1.5, 2.0] * u.um)
    >>> wave
    array([10000., 15000., 20000.])
    """
    wave = _wavelength_angstrom(wavelength, label)
    if len(wave) < 2:
        raise SpectrumInputError(f"{label}: needs at least 2 wavelengths, got {len(wave)}")
    step = np.diff(wave)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise SpectrumInputError(f"{label}: must be strictly ascending or descending")
    if medium not in ("air", "vacuum"):
        raise SpectrumInputError(f"{label}: medium must be 'air' or 'vacuum', got {medium!r}")
    if medium == "air":
        wave = _air_to_vacuum(wave, label)
    log_wave = np.log(wave)
    return log_wave, np.abs(np.gradient(log_wave)), wave


def log_bin_edges(bin_edges, medium="vacuum"):
    """Ascending ln(λ / Å) in vacuum of wavelength bin edges given in any spectral unit.

    Parameters
    ----------
    bin_edges : `~astropy.units.Quantity`
        At least two strictly monotonic edges, in any spectral unit.
    medium : {"vacuum", "air"}
        Medium of ``bin_edges``.

    Returns
    -------
    `~numpy.ndarray`
        ln of the vacuum wavelengths in Å, ascending.

    Raises
    ------
    SpectrumInputError, astropy.units.UnitConversionError
        As for `wavelength_grid`.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import log_bin_edges
    >>> np.exp(log_bin_edges([2.0, 1.0] * u.um)).round(6)
    array([10000., 20000.])
    """
    return np.sort(wavelength_grid(bin_edges, medium, label="wavelength bin edges")[0])


def canonical_flux(flux, wavelength_aa, label="flux"):
    """A flux as numbers in the canonical unit the adapter works in.

    Spectral flux densities (f_λ, f_ν, photon flux) become f_λ in `FLAM`,
    surface brightnesses `FLAM` per steradian; counts keep their unit and a
    dimensionless (normalised) flux becomes plain numbers. `flux_in_unit`
    goes back.

    Parameters
    ----------
    flux : `~astropy.units.Quantity`
        Flux of each pixel.
    wavelength_aa : `~numpy.ndarray`
        Vacuum wavelength in Å of each pixel (for f_ν → f_λ).
    label : str
        What the flux belongs to, for error messages.

    Returns
    -------
    values : `~numpy.ndarray`
        The flux in ``unit``.
    unit : `~astropy.units.UnitBase`
        The canonical unit.

    Raises
    ------
    astropy.units.UnitConversionError
        ``flux`` is not a Quantity, or its unit is not a flux (magnitudes,
        a length, ...).
    TypeError
        ``flux`` is masked (``astropy.utils.masked.Masked``): its mask would
        be lost.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import canonical_flux
    >>> values, unit = canonical_flux([3.34] * u.mJy, np.array([5000.0]))
    >>> unit
    Unit("erg / (Angstrom s cm2)")
    >>> f"{values[0]:.4g}"
    '4.005e-15'
    """
    if not isinstance(flux, u.Quantity):
        raise u.UnitConversionError(f"{label}: the flux has no unit; give it as an astropy "
                                    "Quantity (e.g. flux * u.Jy, or * u.one if normalised)")
    if isinstance(flux, Masked):
        raise TypeError(f"{label}: canonical_flux would drop the mask of a Masked flux; pass "
                        "flux.unmasked and keep flux.mask")
    canonical = _canonical_unit(flux.unit, label)
    factor = _conversion_factor(flux.unit, canonical, wavelength_aa, label, flux.unit)
    return np.asarray(flux.value * factor, dtype=float), canonical


def flux_in_unit(values, canonical, unit, wavelength_aa):
    """Turn numbers in a canonical flux unit back into ``unit``.

    Parameters
    ----------
    values : array-like
        Flux (or its error) in ``canonical`` units.
    canonical, unit : `~astropy.units.Unit`
        The canonical unit the adapter used, and the unit wanted.
    wavelength_aa : `~numpy.ndarray`
        Vacuum wavelength in Å of each value (for f_λ ↔ f_ν).

    Returns
    -------
    `~astropy.units.Quantity`

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import FLAM, flux_in_unit
    >>> flux_in_unit(np.array([1e-17]), FLAM, u.Jy, np.array([5000.0])).unit
    Unit("Jy")
    """
    return (np.asarray(values) * canonical).to(unit, equivalencies=u.spectral_density(
        wavelength_aa * u.AA))


# -- single values and ranges ----------------------------------------------------------

def as_angstrom(value, what, *, spectral=True):
    """One wavelength (or, with ``spectral=False``, one length such as a line width) in Å.

    A Quantity in any spectral unit (any length unit without ``spectral``)
    or a number, which is taken as Å; a string, a bool or an array is a
    ValueError naming ``what``. A width is never converted from a frequency:
    2 GHz is no number of Å.
    """
    if isinstance(value, u.Quantity):
        if not value.isscalar:
            raise ValueError(f"{what} must be one value, got {value!r}")
        try:
            return float(value.to_value(u.AA, equivalencies=u.spectral() if spectral else []))
        except u.UnitConversionError:
            kind = "spectral" if spectral else "length"
            raise ValueError(f"{what} must be in Å or another {kind} unit, got {value!r}") \
                from None
    return as_number(value, f"{what} must be a number (Å) or a Quantity, got {value!r}")


def as_wavelength_range(value, argument):
    """``value`` as (shortest, longest) vacuum wavelength in Å, or ValueError naming ``argument``.

    ``value`` holds two values, each a Quantity in any spectral unit or a
    number in Å (a Quantity of two values will do). Where both are lengths
    (or numbers) they must ascend, so that a reversed range is caught; where
    one is a frequency, energy or wavenumber either order is read, since the
    shorter wavelength is the larger value there.
    """
    message = (f"{argument} must be two positive, finite wavelengths, shortest first (a "
               f"Quantity in any spectral unit, or numbers in Å), got {value!r}")
    if isinstance(value, (str, bytes, Mapping, Set)) or not hasattr(value, "__len__") \
            or getattr(value, "ndim", 1) != 1 or len(value) != 2:   # a set has no order
        raise ValueError(message)
    try:
        values = [as_angstrom(item, argument) for item in value]
    except ValueError:
        raise ValueError(message) from None
    lengths = all(not isinstance(item, u.Quantity) or item.unit.physical_type == "length"
                  for item in value)
    low, high = values if lengths else sorted(values)
    if not 0 < low < high < np.inf:
        raise ValueError(message)
    return low, high
