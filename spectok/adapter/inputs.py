"""Reading one spectrum-like object: the checked arrays of each arm, its label and medium.

Each arm's wavelengths, flux, uncertainty and mask (astropy ``Masked`` values
included) are checked (lengths, a sorted axis without duplicates) and come out
in ascending vacuum Å.
"""

import astropy.units as u
import numpy as np
from astropy.nddata import StdDevUncertainty
from astropy.utils.masked import Masked
from specutils import Spectrum, SpectrumList

from .errors import SpectrumInputError
from .units import _air_to_vacuum, _sigma_quantity, _wavelength_angstrom

__all__ = ["split_masked"]


# -- one arm --------------------------------------------------------------------------

def split_masked(wavelength, flux, uncertainty=None, label="spectrum"):
    """Plain arrays and a bad-pixel mask from astropy ``Masked`` inputs.

    Masked values of the flux or of its uncertainty mark invalid pixels, as
    a `~specutils.Spectrum`'s ``mask`` does; a wavelength cannot be masked
    (the pixel would have no place on the grid). Inputs that are not masked
    pass through unchanged.

    Parameters
    ----------
    wavelength, flux : `~astropy.units.Quantity`, possibly ``Masked``
    uncertainty : `~astropy.units.Quantity`, `~astropy.nddata.NDUncertainty` or None
    label : str
        What the arrays belong to, for error messages.

    Returns
    -------
    wavelength, flux, uncertainty
        Without their masks.
    mask : `~numpy.ndarray` of bool or None
        True at masked pixels; `None` when nothing was masked.

    Raises
    ------
    SpectrumInputError
        A masked wavelength, or a masked uncertainty of another length than
        the flux.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from astropy.utils.masked import Masked
    >>> from spectok.adapter import split_masked
    >>> flux = Masked([1.0, 2.0, 3.0] * u.Jy, mask=[False, True, False])
    >>> _, plain, _, mask = split_masked([4000.0, 4001.0, 4002.0] * u.AA, flux)
    >>> plain, mask
    (<Quantity [1., 2., 3.] Jy>, array([False,  True, False]))
    """
    if isinstance(wavelength, Masked):
        if np.any(wavelength.mask):
            raise SpectrumInputError(f"{label}: the spectral axis has {np.sum(wavelength.mask)} "
                                     "masked values; leave those pixels out")
        wavelength = wavelength.unmasked
    mask = None
    if isinstance(flux, Masked):
        flux, mask = flux.unmasked, np.asarray(flux.mask, bool)
    if isinstance(uncertainty, Masked):
        if uncertainty.shape != flux.shape:
            raise SpectrumInputError(f"{label}: uncertainty has {uncertainty.size} values but "
                                     f"flux has {flux.size}")
        uncertainty_mask = np.asarray(uncertainty.mask, bool)
        uncertainty = uncertainty.unmasked
        mask = uncertainty_mask if mask is None else mask | uncertainty_mask
    return wavelength, flux, uncertainty, mask


def _arm_arrays(item, label):
    """(wavelength Quantity, flux Quantity, uncertainty or None, mask or None) of one arm."""
    if isinstance(item, Spectrum):
        flux = item.flux
        if flux.ndim != 1:
            raise SpectrumInputError(
                f"{label}: flux has shape {flux.shape}; spectok takes 1-D spectra. For a stack "
                "of spectra on one grid pass a list, e.g. [spectrum[i] for i in range(n)]")
        return u.Quantity(item.spectral_axis), flux, item.uncertainty, item.mask
    wavelength, flux = item[0], item[1]
    uncertainty = item[2] if len(item) == 3 else None
    if not isinstance(flux, u.Quantity):
        raise u.UnitConversionError(f"{label}: flux has no unit; give it as an astropy Quantity")
    wavelength, flux, uncertainty, mask = split_masked(wavelength, flux, uncertainty, label)
    if flux.ndim != 1:
        raise SpectrumInputError(
            f"{label}: flux has shape {flux.shape}; spectok takes 1-D spectra. For a stack of "
            "spectra on one grid pass a list of (wavelength, row) tuples")
    if isinstance(uncertainty, u.Quantity):
        uncertainty = StdDevUncertainty(uncertainty)
    if isinstance(wavelength, u.Quantity) and wavelength.ndim == 1 \
            and len(wavelength) == len(flux) + 1:
        wavelength = 0.5 * (wavelength[1:] + wavelength[:-1])
    return wavelength, flux, uncertainty, mask


def _prepare_arm(arrays, label, medium):
    wavelength, flux, uncertainty, mask = arrays
    wave = _wavelength_angstrom(wavelength, label)
    if len(wave) != len(flux):
        raise SpectrumInputError(f"{label}: {len(wave)} wavelengths but {len(flux)} flux values")
    if len(wave) < 2:
        raise SpectrumInputError(f"{label}: a spectrum needs at least 2 pixels, got {len(wave)}")
    step = np.diff(wave)
    if np.any(step == 0):
        raise SpectrumInputError(f"{label}: the spectral axis has {np.sum(step == 0)} duplicated "
                                 "wavelengths")
    if not (np.all(step > 0) or np.all(step < 0)):
        raise SpectrumInputError(f"{label}: the spectral axis is not sorted (neither ascending "
                                 "nor descending)")
    sigma = None if uncertainty is None else _sigma_quantity(uncertainty, flux.unit, label)
    if sigma is not None and sigma.shape != flux.shape:
        raise SpectrumInputError(f"{label}: uncertainty has {sigma.size} values but flux has "
                                 f"{flux.size}")
    bad = np.zeros(len(wave), bool) if mask is None else np.asarray(mask) != 0
    if bad.shape != wave.shape:
        raise SpectrumInputError(f"{label}: mask has {bad.size} values but flux has {wave.size}")
    if medium == "air":
        wave = _air_to_vacuum(wave, label)
    order = slice(None, None, -1) if step[0] < 0 else slice(None)
    return wave[order], flux[order], None if sigma is None else sigma[order], bad[order]


# -- one spectrum -------------------------------------------------------------------

def _label(item, index):
    meta = getattr(item, "meta", None) or (item[0].meta if isinstance(item, SpectrumList)
                                           and len(item) else {})
    ident = meta.get("id") if isinstance(meta, dict) else None
    name = "spectrum" if index is None else f"spectrum {index}"
    return (f"{name} (id {ident!r})" if ident is not None else name), ident


def _medium_of(item, medium, label):
    if medium is None:
        meta = getattr(item, "meta", None) or {}
        if isinstance(item, SpectrumList) and len(item):
            meta = item[0].meta
        medium = meta.get("medium", "vacuum") if isinstance(meta, dict) else "vacuum"
    if medium not in ("air", "vacuum"):
        raise SpectrumInputError(f"{label}: medium must be 'air' or 'vacuum', got {medium!r}")
    return medium
