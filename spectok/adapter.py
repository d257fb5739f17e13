"""The unit-aware adapter: anything spectrum-like → a padded `SpectrumBatch`.

This is the only module of spectok that touches `astropy.units`. Everything
downstream sees plain tensors:

* wavelengths in vacuum Ångström (air converted with the IAU standard of
  Morton 2000 when asked), ascending within each arm;
* flux in one canonical unit per kind (f_λ in erg s⁻¹ cm⁻² Å⁻¹ for any
  spectral flux density; counts and dimensionless fluxes as they are),
  divided by a robust per-spectrum scale that is kept alongside;
* a 1σ error per pixel, and a validity flag.

Arms of a `~specutils.SpectrumList` keep their own pixels: they are laid end
to end in order of wavelength, each padded to a whole number of patches, so
no patch mixes two arms and nothing is resampled.
"""

import functools
import warnings
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
import torch
from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.utils.exceptions import AstropyUserWarning
from astropy.utils.masked import Masked
from specutils import Spectrum, SpectrumList
from specutils.utils.wcs_utils import air_to_vac

from . import conf
from .model.tokenizer import patch_is_active

__all__ = ["SpectrumBatch", "PreparedSpectrum", "prepare_spectrum", "prepare_spectra",
           "warn_skipped", "ERROR_MODES", "to_batch", "iter_spectra",
           "is_single_spectrum", "wavelength_grid", "log_bin_edges", "split_masked",
           "canonical_flux", "flux_in_unit", "fraction_outside",
           "check_wavelength_range", "SpectrumInputError", "SpectrumInputWarning",
           "NoUncertaintyWarning", "WavelengthRangeWarning", "FLAM"]

FLAM = u.erg / u.s / u.cm**2 / u.AA
"""Canonical unit of spectral flux density (f_λ)."""

_COUNT_UNITS = (u.ct, u.electron, u.adu, u.ph)
_MIN_RELATIVE_NOISE = 1e-3
#: Pixels whose |flux| exceeds this many times the flux scale are invalid: no
#: spectrum has that dynamic range, and such values would overflow float32.
_MAX_DYNAMIC_RANGE = 1e8
#: Largest normalised error passed on (the model clips log σ far below it).
_MAX_RELATIVE_SIGMA = 1e30
#: What `spectok.encode` and `spectok.encode_catalogue` can do with a spectrum that
#: cannot be used: raise its error, or leave it out with a warning or silently.
ERROR_MODES = ("raise", "warn", "skip")


class SpectrumInputError(ValueError):
    """A spectrum that spectok cannot use; the message names the spectrum and the problem."""


class SpectrumInputWarning(AstropyUserWarning):
    """Some spectra of a batch could not be used and were skipped."""


class NoUncertaintyWarning(AstropyUserWarning):
    """Spectra without uncertainties were given a constant noise level."""


class WavelengthRangeWarning(AstropyUserWarning):
    """Spectra reach outside the wavelength range the model was trained on, or
    `~spectok.decode` is asked for wavelengths beyond the encoded spectrum."""


def _check_length(n_pixels, label):
    """Refuse a spectrum longer than ``conf.max_pixels`` before anything is allocated for it."""
    limit = int(conf.max_pixels)
    if n_pixels > limit:
        raise SpectrumInputError(
            f"{label}: {n_pixels} pixels is more than the limit of {limit} pixels per spectrum "
            "(spectok.conf.max_pixels); cut it into pieces, or raise the limit if you have "
            "the memory (see the 'Bad input' page of the user guide)")


def _require_usable_patch(valid, patch_size, label):
    if not _active_patches(valid, patch_size):
        raise SpectrumInputError(
            f"{label}: no usable patch: the {int(sum(v.sum() for v in valid))} valid pixels are "
            f"so scattered that no patch of {patch_size} pixels has at least half of its "
            "pixels valid")


@dataclass
class PreparedSpectrum:
    """One spectrum after unit handling, before padding (numpy arrays, one per arm).

    Attributes
    ----------
    label : str
        How the spectrum is named in messages (its index and ``meta['id']``).
    wavelength, flux, sigma, valid : list of `~numpy.ndarray`
        Per arm: vacuum wavelength in Å (ascending), flux and 1σ error in
        ``unit``, and usable pixels.
    scale : float
        Robust flux scale (median of ``|flux|`` over valid pixels) in ``unit``.
    unit : `~astropy.units.Unit`
        Canonical unit of ``flux`` and ``sigma``.
    input_unit : `~astropy.units.Unit`
        The flux unit the spectrum came in (what `~spectok.decode` returns).
    has_uncertainty : bool
        False when the noise level was estimated from the flux.
    """

    label: str
    wavelength: list
    flux: list
    sigma: list
    valid: list
    scale: float
    unit: u.UnitBase
    input_unit: u.UnitBase
    has_uncertainty: bool
    id: object = None

    @classmethod
    def from_arrays(cls, wavelength, flux, sigma, mask, unit, *, label="spectrum", id=None,
                    patch_size=None):
        """Assemble a prepared spectrum from plain arrays, one per arm.

        This is the second half of `prepare_spectrum`, for callers that
        already hold vacuum wavelengths in Å as arrays (simulators, survey
        readers), which avoids building Quantity and Spectrum objects: it
        converts the flux to the canonical unit, flags invalid pixels,
        measures the flux scale, and estimates a noise level where there is
        no error.

        Parameters
        ----------
        wavelength, flux : list of `~numpy.ndarray`
            Per arm: vacuum wavelength in Å (strictly ascending) and flux in ``unit``.
        sigma : list of `~numpy.ndarray` or None
            Per arm 1σ error in ``unit`` (`None` for an arm without errors:
            then every arm gets a constant DER_SNR noise level).
        mask : list of `~numpy.ndarray` of bool
            Per arm, True for pixels known to be bad.
        unit : `~astropy.units.Unit`
            Unit of ``flux`` and ``sigma``; `~spectok.decode` returns flux in it.
        label : str
            How to name the spectrum in errors.
        id : object, optional
        patch_size : int, optional
            Also require one patch of this size with at least half its pixels valid.

        Returns
        -------
        `PreparedSpectrum`

        Raises
        ------
        SpectrumInputError
            No valid pixels, no usable patch, zero flux everywhere, or more
            pixels than ``spectok.conf.max_pixels``.
        astropy.units.UnitConversionError
            ``unit`` is not a flux.

        Notes
        -----
        A pixel is valid when it is not masked, its flux is finite and (when
        there are errors) its error is finite and positive, and its
        ``|flux|`` is at most 10⁸ times the flux scale (the median of
        ``|flux|`` over the other valid pixels): larger values are corrupted
        data, and would overflow the model's float32 arithmetic.

        Examples
        --------
        >>> import numpy as np
        >>> from spectok.adapter import FLAM, PreparedSpectrum
        >>> wave = np.linspace(4000, 5000, 64)
        >>> p = PreparedSpectrum.from_arrays([wave], [np.full(64, 2e-17)], [np.full(64, 1e-18)],
        ...                                  [np.zeros(64, bool)], FLAM)
        >>> p.scale, int(p.valid[0].sum())
        (2e-17, 64)
        """
        _check_length(sum(len(w) for w in wavelength), label)
        canonical = _canonical_unit(unit, label)
        factors = [_conversion_factor(unit, canonical, w, label, unit) for w in wavelength]
        has_uncertainty = all(s is not None for s in sigma)
        # values near the float64 limits overflow to inf here; such pixels become invalid
        with np.errstate(over="ignore", invalid="ignore"):
            flux = [np.asarray(f, float) * k for f, k in zip(flux, factors)]
            sigma = [np.full_like(f, np.nan) if s is None else np.asarray(s, float) * k
                     for f, s, k in zip(flux, sigma, factors)]
        valid = []
        for f, s, bad in zip(flux, sigma, mask):
            good = ~np.asarray(bad, bool) & np.isfinite(f)
            if has_uncertainty:
                good &= np.isfinite(s) & (s > 0)
            valid.append(good)
        all_valid = np.concatenate(valid)
        if not all_valid.any():
            all_flux, all_sigma = np.concatenate(flux), np.concatenate(sigma)
            masked = sum(int(np.sum(bad)) for bad in mask)
            bad_sigma = (np.sum(~(np.isfinite(all_sigma) & (all_sigma > 0)))
                         if has_uncertainty else 0)
            raise SpectrumInputError(
                f"{label}: no valid pixels ({len(all_valid)} pixels: {masked} masked, "
                f"{np.sum(~np.isfinite(all_flux))} with non-finite flux, {bad_sigma} with zero, "
                "negative or non-finite uncertainty)")
        scale = _flux_scale(np.abs(np.concatenate(flux)[all_valid]))
        if scale == 0:
            raise SpectrumInputError(f"{label}: flux is zero at every valid pixel")
        while True:  # corrupted values are invalid, and the scale is that of the rest
            outliers = [good & (np.abs(f) > _MAX_DYNAMIC_RANGE * scale)
                        for f, good in zip(flux, valid)]
            if not any(o.any() for o in outliers):
                break
            valid = [good & ~o for good, o in zip(valid, outliers)]
            scale = _flux_scale(np.abs(np.concatenate(flux)[np.concatenate(valid)]))
        if patch_size is not None:
            _require_usable_patch(valid, patch_size, label)
        if not has_uncertainty:
            sigma = [np.full_like(f, max(_der_snr_noise(f[v]), _MIN_RELATIVE_NOISE * scale))
                     for f, v in zip(flux, valid)]
        return cls(label=label, wavelength=list(wavelength), flux=list(flux), sigma=sigma,
                   valid=valid, scale=scale, unit=canonical, input_unit=unit,
                   has_uncertainty=has_uncertainty, id=id)

    def n_slots(self, patch_size):
        """Pixel slots after padding each arm to a whole number of patches."""
        return sum(-(-len(w) // patch_size) * patch_size for w in self.wavelength)


@dataclass
class SpectrumBatch:
    """Padded tensors for a batch of spectra, ready for the model.

    Attributes
    ----------
    log_wavelength : `~torch.Tensor`, (batch, pixels), float64
        ln of vacuum wavelength in Å.
    flux, sigma : `~torch.Tensor`, (batch, pixels), float32
        Flux and 1σ error divided by ``scale`` (0 and 1 at unusable pixels).
    spacing : `~torch.Tensor`, (batch, pixels), float32
        ln λ step per pixel (the sampling).
    valid, observed : `~torch.Tensor` of bool, (batch, pixels)
        Usable pixels; real pixels (not padding).
    scale : `~torch.Tensor`, (batch,), float64
        Flux scale of each spectrum, in its canonical unit.
    lengths : `~torch.Tensor`, (batch,), int64
        Pixel slots used by each spectrum (a multiple of the patch size).
    spectra : list of `PreparedSpectrum`
        Per-spectrum units, labels and ids.
    """

    log_wavelength: torch.Tensor
    flux: torch.Tensor
    sigma: torch.Tensor
    spacing: torch.Tensor
    valid: torch.Tensor
    observed: torch.Tensor
    scale: torch.Tensor
    lengths: torch.Tensor
    spectra: list = field(default_factory=list)

    def __len__(self):
        return self.flux.shape[0]

    def to(self, device):
        """Return a copy with every tensor on ``device``."""
        moved = {name: getattr(self, name).to(device) for name in
                 ("log_wavelength", "flux", "sigma", "spacing", "valid", "observed",
                  "scale", "lengths")}
        return SpectrumBatch(**moved, spectra=self.spectra)

    def model_inputs(self):
        """The tensors `~spectok.model.SpectralTokenizer.encode` takes, in its argument order."""
        return (self.log_wavelength, self.flux, self.sigma, self.valid, self.observed,
                self.spacing)


# -- recognising inputs ------------------------------------------------------------

def _is_pair(obj):
    return (isinstance(obj, tuple) and len(obj) in (2, 3)
            and all(isinstance(x, (u.Quantity, np.ndarray)) or hasattr(x, "array")
                    for x in obj[:2]))


def is_single_spectrum(obj):
    """Whether ``obj`` is one spectrum (rather than a list of them) for `~spectok.encode`.

    Parameters
    ----------
    obj : object
        Anything given to `~spectok.encode` as its spectra.

    Returns
    -------
    bool
        True for a `~specutils.Spectrum`, a `~specutils.SpectrumList` (the
        arms of one object), a ``(wavelength, flux[, uncertainty])`` tuple
        and a `PreparedSpectrum`.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import is_single_spectrum
    >>> pair = (np.linspace(4000, 5000, 50) * u.AA, np.ones(50) * u.Jy)
    >>> is_single_spectrum(pair), is_single_spectrum([pair, pair])
    (True, False)
    """
    return isinstance(obj, (Spectrum, SpectrumList, PreparedSpectrum)) or _is_pair(obj)


def _not_a_spectrum(obj):
    """The message for something that is not spectrum-like."""
    kind = (f"a tuple of {len(obj)} items" if isinstance(obj, tuple) and not _is_pair(obj)
            else type(obj).__name__)
    return (f"cannot read a spectrum from {kind}: give a specutils Spectrum, a SpectrumList "
            "(arms of one object), a (wavelength, flux[, uncertainty]) tuple of Quantities, "
            "or a list of these")


def iter_spectra(data):
    """Split the input of `~spectok.encode` into single spectra.

    Parameters
    ----------
    data : spectrum-like or list of spectrum-like
        A `~specutils.Spectrum`, a `~specutils.SpectrumList` (arms of one
        object), a ``(wavelength, flux[, uncertainty])`` tuple of Quantities,
        a `PreparedSpectrum`, a list of any of these, or a
        `~spectok.datasets.SpectrumDataset` (its spectra).

    Returns
    -------
    items : list
        The single spectra.
    single : bool
        True when ``data`` was one spectrum rather than a list.

    Raises
    ------
    SpectrumInputError
        An empty list, or something that is not spectrum-like.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import iter_spectra
    >>> pair = (np.linspace(4000, 5000, 50) * u.AA, np.ones(50) * u.Jy)
    >>> items, single = iter_spectra([pair, pair])
    >>> len(items), single
    (2, False)
    """
    if is_single_spectrum(data):
        return [data], True
    if isinstance(data, tuple) and any(isinstance(x, np.ndarray) for x in data):
        raise SpectrumInputError(_not_a_spectrum(data))  # arrays: meant as one spectrum
    from .datasets import SpectrumDataset   # the datasets build on this module

    if isinstance(data, SpectrumDataset):
        data = data.spectra
    if isinstance(data, (list, tuple)):
        if len(data) == 0:
            raise SpectrumInputError("no spectra given: the list is empty")
        return list(data), False
    raise SpectrumInputError(_not_a_spectrum(data))


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


def _median(values):
    """`numpy.median` of a non-empty array of finite values, without overflow.

    numpy averages the two middle values as (a + b) / 2, which overflows near
    the largest float; a / 2 + b / 2 is the same number everywhere else.
    """
    n = len(values)
    middle = np.partition(values, [(n - 1) // 2, n // 2])[[(n - 1) // 2, n // 2]]
    return float(middle[0] if n % 2 else middle[0] / 2 + middle[1] / 2)


def _flux_scale(abs_flux):
    """Median of ``|flux|``, or its mean when more than half the pixels are exactly zero."""
    scale = _median(abs_flux)
    if scale == 0:
        peak = abs_flux.max()
        scale = float(np.mean(abs_flux / peak) * peak) if peak > 0 else 0.0
    return scale


def _der_snr_noise(flux):
    """Noise level from the flux alone (DER_SNR, Stoehr et al. 2008)."""
    if len(flux) < 5:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        second = np.abs(2 * flux[2:-2] - flux[:-4] - flux[4:])
    noise = 1.482602 / np.sqrt(6) * np.median(second)
    return float(noise) if np.isfinite(noise) else 0.0


def _active_patches(valids, patch_size):
    """Patches (per arm, never straddling two) with at least half their real pixels valid."""
    count = 0
    for valid in valids:
        n_valid = np.add.reduceat(valid.astype(int), np.arange(0, len(valid), patch_size))
        n_real = np.minimum(patch_size, len(valid) - np.arange(0, len(valid), patch_size))
        count += int(np.sum(patch_is_active(n_valid, n_real)))
    return count


def prepare_spectrum(item, index=None, medium=None, patch_size=None):
    """Convert one spectrum-like object to canonical units and arrays.

    Parameters
    ----------
    item : `~specutils.Spectrum`, `~specutils.SpectrumList`, tuple or `PreparedSpectrum`
        One spectrum: a Spectrum, the arms of one object, or a
        ``(wavelength, flux[, uncertainty])`` tuple of Quantities (wavelength
        may be bin edges, one longer than flux; uncertainty a 1σ Quantity or
        an `~astropy.nddata.NDUncertainty`). A `PreparedSpectrum` is returned
        as it is (after the ``patch_size`` check), keeping its label.
    index : int, optional
        Position in the caller's list, used to name the spectrum in errors.
    medium : {None, "air", "vacuum"}
        Medium of the wavelengths. `None` reads ``meta['medium']`` and
        defaults to vacuum.
    patch_size : int, optional
        When given, also require at least one patch of this many pixels in
        which half or more of the pixels are valid (the model can use
        nothing else).

    Returns
    -------
    `PreparedSpectrum`

    Raises
    ------
    SpectrumInputError
        No valid pixels (or, with ``patch_size``, no usable patch),
        mismatched lengths, unsorted, duplicated or non-finite wavelengths,
        2-D flux, fewer than 2 pixels or more than ``spectok.conf.max_pixels``
        (checked before any array is converted), an empty SpectrumList, an
        unsupported uncertainty, or something that is not a spectrum.
    astropy.units.UnitConversionError
        A spectral axis that is not spectral, or a flux that is not a flux.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import prepare_spectrum
    >>> wave = np.linspace(400, 500, 100) * u.nm
    >>> flux = np.full(100, 2.0) * u.mJy
    >>> p = prepare_spectrum((wave, flux, 0.1 * flux))
    >>> p.unit, round(float(p.wavelength[0][0]), 6)
    (Unit("erg / (Angstrom s cm2)"), 4000.0)
    """
    if isinstance(item, PreparedSpectrum):
        if patch_size is not None:
            _require_usable_patch(item.valid, patch_size, item.label)
        return item
    # Unit conversions of extreme values overflow or divide by zero; what comes out
    # non-finite is reported below (as a bad axis or as invalid pixels), so numpy's
    # floating-point warnings would only repeat it.
    with np.errstate(all="ignore"):
        return _prepare(item, index, medium, patch_size)


def _prepare(item, index, medium, patch_size):
    label, ident = _label(item, index)
    if not is_single_spectrum(item):
        raise SpectrumInputError(f"{label}: {_not_a_spectrum(item)}")
    medium = _medium_of(item, medium, label)
    if isinstance(item, SpectrumList):
        if len(item) == 0:
            raise SpectrumInputError(f"{label}: the SpectrumList is empty")
        raw = [(_arm_arrays(arm, f"{label} arm {k}"), f"{label} arm {k}")
               for k, arm in enumerate(item)]
    else:
        raw = [(_arm_arrays(item, label), label)]
    _check_length(sum(len(arrays[1]) for arrays, _ in raw), label)
    arms = sorted((_prepare_arm(arrays, arm_label, medium) for arrays, arm_label in raw),
                  key=lambda arm: arm[0][0])

    input_unit = arms[0][1].unit
    fluxes, sigmas = [], []
    for wave, flux, sigma, _ in arms:
        factor = _conversion_factor(flux.unit, input_unit, wave, label, input_unit)
        fluxes.append(flux.value * factor)
        sigmas.append(None if sigma is None else sigma.value * factor)
    return PreparedSpectrum.from_arrays(
        [arm[0] for arm in arms], fluxes, sigmas, [arm[3] for arm in arms], input_unit,
        label=label, id=ident, patch_size=patch_size)


def _check_error_mode(errors):
    """Refuse (ValueError) an ``errors`` option other than those of `ERROR_MODES`."""
    if not isinstance(errors, str) or errors not in ERROR_MODES:
        raise ValueError(f"errors must be one of {ERROR_MODES}, got {errors!r}")


def prepare_spectra(items, medium=None, patch_size=None, *, skip=False, start=0, read=None):
    """`prepare_spectrum` for many spectra, raising for or skipping those that cannot be used.

    Parameters
    ----------
    items : iterable
        Spectrum-like objects (anything `prepare_spectrum` takes), or what
        ``read`` turns into them.
    medium, patch_size
        As for `prepare_spectrum`.
    skip : bool
        Leave out an item that cannot be read or used, and list it in
        ``skipped``, instead of raising its error. (Warning about the items
        left out is the caller's: `warn_skipped`.)
    start : int
        Position of the first item in the caller's list, to name items in
        errors and in ``skipped``.
    read : callable, optional
        Applied to each item first (e.g. to read a file); an `OSError` it
        raises counts as an item that cannot be used.

    Returns
    -------
    prepared : list of (int, `PreparedSpectrum`)
        Position and prepared spectrum of each item used, in input order.
    skipped : list of (int, str)
        Position and error message of each item left out.

    Raises
    ------
    SpectrumInputError, astropy.units.UnitConversionError
        An item that cannot be used (unless ``skip``).
    OSError
        ``read`` failed for an item (unless ``skip``).

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import prepare_spectra
    >>> wave = np.linspace(4000, 5000, 50) * u.AA
    >>> good, empty = (wave, np.ones(50) * u.Jy), (wave, np.full(50, np.nan) * u.Jy)
    >>> prepared, skipped = prepare_spectra([good, empty, good], skip=True)
    >>> [index for index, _ in prepared], skipped[0][0]
    ([0, 2], 1)
    """
    prepared, skipped = [], []
    for index, item in enumerate(items, start=start):
        try:
            spectrum = item if read is None else read(item)
        except OSError as error:
            if not skip:
                raise
            skipped.append((index, str(error)))
            continue
        try:
            prepared.append((index, prepare_spectrum(spectrum, index, medium, patch_size)))
        except (SpectrumInputError, u.UnitsError) as error:
            if not skip:
                raise
            skipped.append((index, str(error)))
    return prepared, skipped


def warn_skipped(skipped, n_spectra, stacklevel=2):
    """Warn once that spectra were left out, quoting the first three reasons.

    Parameters
    ----------
    skipped : list of (int, str)
        Position and error message of each spectrum left out (as from
        `prepare_spectra`); nothing is warned when it is empty.
    n_spectra : int
        How many spectra there were in all.
    stacklevel : int
        As for `warnings.warn`, counted from the caller of this function.

    Warns
    -----
    SpectrumInputWarning
        ``skipped`` is not empty.

    Examples
    --------
    >>> import warnings
    >>> from spectok.adapter import warn_skipped
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_skipped([(1, "spectrum 1: no valid pixels")], 3)
    >>> str(caught[0].message)
    'skipped 1 of 3 spectra: spectrum 1: no valid pixels'
    """
    if skipped:
        warnings.warn(f"skipped {len(skipped)} of {n_spectra} spectra: "
                      + "; ".join(message for _, message in skipped[:3])
                      + ("; …" if len(skipped) > 3 else ""),
                      SpectrumInputWarning, stacklevel=stacklevel + 1)


# -- padding ---------------------------------------------------------------------------

class _SlotLayout:
    """Where the concatenated real pixels of a batch go in its padded (spectra, slots) arrays.

    Each arm is followed by padding to a whole number of patches, and the
    last arm of a row also by the row's padding to the longest row. `place`
    fills an array with two boolean-mask assignments, whatever the number of
    spectra and arms.

    Parameters
    ----------
    arm_length, arm_padding : `~numpy.ndarray` of int
        Real pixels and padding slots of each arm, arms of all rows in order.
    last_arm : `~numpy.ndarray` of int
        Index of the last arm of each row.
    lengths : `~numpy.ndarray` of int
        Slots used by each row.
    """

    def __init__(self, arm_length, arm_padding, last_arm, lengths):
        self.shape = (len(lengths), int(lengths.max()))
        self.padding = arm_padding.copy()
        self.padding[last_arm] += self.shape[1] - lengths
        self.real = np.repeat(np.tile([True, False], len(arm_length)),
                              np.column_stack([arm_length, self.padding]).ravel())
        self.real = self.real.reshape(self.shape)

    def place(self, values, fill, dtype):
        """Padded array of ``values`` (all real pixels); ``fill`` is a scalar or one per arm."""
        if np.ndim(fill) == 0:
            out = np.full(self.shape, fill, dtype)
        else:
            out = np.empty(self.shape, dtype)
            out[~self.real] = np.repeat(fill, self.padding)
        out[self.real] = values
        return out


def _arm_gradient(log_wave, starts, stops):
    """`numpy.gradient` of each arm of the concatenated ``log_wave``, all arms at once."""
    spacing = np.empty_like(log_wave)
    spacing[1:-1] = (log_wave[2:] - log_wave[:-2]) / 2.0
    spacing[starts] = log_wave[starts + 1] - log_wave[starts]
    spacing[stops - 1] = log_wave[stops - 1] - log_wave[stops - 2]
    return spacing


def to_batch(spectra, patch_size=32, medium=None, warn_missing_uncertainty=True):
    """Convert spectra into one padded `SpectrumBatch`.

    Parameters
    ----------
    spectra : list of spectrum-like or of `PreparedSpectrum`
        The spectra (see `prepare_spectrum` for the accepted kinds).
    patch_size : int
        Each arm is padded to a multiple of this many pixels.
    medium : {None, "air", "vacuum"}
        Medium of the wavelengths of every spectrum (`None`: from each
        spectrum's ``meta['medium']``, default vacuum).
    warn_missing_uncertainty : bool
        Emit one `NoUncertaintyWarning` when some spectra have no uncertainty.

    Returns
    -------
    `SpectrumBatch`

    Raises
    ------
    SpectrumInputError, astropy.units.UnitConversionError
        As `prepare_spectrum`, naming the offending spectrum.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import to_batch
    >>> wave = np.linspace(4000, 5000, 100) * u.AA
    >>> flux = np.full(100, 3.0) * u.Jy
    >>> batch = to_batch([(wave, flux, 0.1 * flux), (wave[:40], flux[:40], 0.1 * flux[:40])])
    >>> tuple(batch.flux.shape), batch.lengths.tolist()
    ((2, 128), [128, 64])
    """
    prepared = [s if isinstance(s, PreparedSpectrum) else prepare_spectrum(s, i, medium,
                                                                           patch_size)
                for i, s in enumerate(spectra)]
    if not prepared:
        raise SpectrumInputError("no spectra given: the list is empty")
    missing = [p.label for p in prepared if not p.has_uncertainty]
    if missing and warn_missing_uncertainty:
        warnings.warn(f"{len(missing)} of {len(prepared)} spectra have no uncertainty "
                      f"({', '.join(missing[:3])}{', …' if len(missing) > 3 else ''}); using a "
                      "constant noise level per arm estimated from the flux (DER_SNR)",
                      NoUncertaintyWarning, stacklevel=2)
    # Every arm of every spectrum at once, as one concatenation of real pixels.
    arm_length = np.array([len(w) for p in prepared for w in p.wavelength])
    arms_per_row = np.array([len(p.wavelength) for p in prepared])
    row = np.repeat(np.arange(len(prepared)), arms_per_row)
    arm_padding = -arm_length % patch_size
    lengths = np.bincount(row, weights=arm_length + arm_padding).astype(int)
    stops = np.cumsum(arm_length)
    starts = stops - arm_length
    layout = _SlotLayout(arm_length, arm_padding, np.cumsum(arms_per_row) - 1, lengths)

    log_wave = np.log(np.concatenate([w for p in prepared for w in p.wavelength]))
    spacing = _arm_gradient(log_wave, starts, stops)
    valid = np.concatenate([v for p in prepared for v in p.valid])
    scale = np.repeat([p.scale for p in prepared],
                      np.bincount(row, weights=arm_length).astype(int))
    with np.errstate(over="ignore", invalid="ignore"):  # at invalid pixels only
        flux = np.where(valid, np.concatenate([f for p in prepared for f in p.flux]) / scale, 0)
        sigma = np.where(valid, np.minimum(np.concatenate(
            [s for p in prepared for s in p.sigma]) / scale, _MAX_RELATIVE_SIGMA), 1)
    # Padding repeats the last real pixel before it.
    log_wave = layout.place(log_wave, log_wave[stops - 1], np.float64)
    spacing = layout.place(spacing, spacing[stops - 1], np.float32)
    flux = layout.place(flux, 0, np.float32)
    sigma = layout.place(sigma, 1, np.float32)
    valid = layout.place(valid, False, bool)
    observed = layout.real
    return SpectrumBatch(
        log_wavelength=torch.from_numpy(log_wave), flux=torch.from_numpy(flux),
        sigma=torch.from_numpy(sigma), spacing=torch.from_numpy(spacing),
        valid=torch.from_numpy(valid), observed=torch.from_numpy(observed),
        scale=torch.tensor([p.scale for p in prepared], dtype=torch.float64),
        lengths=torch.tensor(lengths), spectra=prepared)


# -- the model's wavelength range -----------------------------------------------------

def fraction_outside(prepared, wavelength_range):
    """Fraction of a spectrum's valid pixels that lie outside a wavelength range.

    Parameters
    ----------
    prepared : `PreparedSpectrum`
        The spectrum.
    wavelength_range : tuple of float
        Shortest and longest vacuum wavelength in Å (for example the range a
        model was trained on).

    Returns
    -------
    float
        Between 0 (all valid pixels inside) and 1 (none inside).

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import fraction_outside, prepare_spectrum
    >>> wave = np.linspace(3000, 4000, 100) * u.AA
    >>> p = prepare_spectrum((wave, np.ones(100) * u.Jy, np.full(100, 0.1) * u.Jy))
    >>> round(fraction_outside(p, (3500.0, 10000.0)), 2)
    0.5
    """
    low, high = wavelength_range
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
    wavelength_range : tuple of float or None
        Shortest and longest vacuum wavelength in Å the model was trained on
        (``model.metadata["wavelength_range"]``); `None` checks nothing.
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
