"""One spectrum → a `PreparedSpectrum`, and which objects are one spectrum.

Preparing converts the flux to its canonical unit, flags invalid pixels, measures a
robust flux scale and, when there is no uncertainty, estimates a noise level from the
flux (DER_SNR). `iter_spectra` splits the input of `~spectok.encode` into single
spectra.
"""

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from specutils import Spectrum, SpectrumList

from .. import conf
from .._numeric import safe_median
from ..model.tokenizer import patch_is_active
from .errors import SpectrumInputError
from .inputs import _arm_arrays, _label, _medium_of, _prepare_arm
from .units import _canonical_unit, _conversion_factor

__all__ = ["PreparedSpectrum", "is_single_spectrum", "iter_spectra", "check_spectra",
           "prepare_spectrum", "prepare_spectra"]

_MIN_RELATIVE_NOISE = 1e-3
#: Pixels whose |flux| exceeds this many times the flux scale are invalid: no
#: spectrum has that dynamic range, and such values would overflow float32.
_MAX_DYNAMIC_RANGE = 1e8


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
    from ..datasets import SpectrumDataset   # the datasets build on this module

    if isinstance(data, SpectrumDataset):
        data = data.spectra
    if isinstance(data, (list, tuple)):
        if len(data) == 0:
            raise SpectrumInputError("no spectra given: the list is empty")
        return list(data), False
    raise SpectrumInputError(_not_a_spectrum(data))


def check_spectra(spectra, argument, what="spectra"):
    """``spectra`` as an iterable of spectra, one per object, or TypeError naming ``argument``.

    A `~spectok.datasets.SpectrumDataset` gives its spectra. One spectrum (a
    `~specutils.Spectrum`, whose iteration never ends; a
    `~specutils.SpectrumList`, the arms of one object; a ``(wavelength,
    flux)`` tuple), a string, a dict (its keys), a set (no order) or what
    cannot be iterated is refused. The iterable itself is returned, so that a
    generator stays lazy. ``what`` says what the items are, for the message.
    """
    from ..datasets import SpectrumDataset   # the datasets build on this module

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


# -- one spectrum -------------------------------------------------------------------

def _flux_scale(abs_flux):
    """Median of ``|flux|``, or its mean when more than half the pixels are exactly zero."""
    scale = safe_median(abs_flux)
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
    TypeError
        ``items`` is one spectrum rather than a list of them.
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
    # one spectrum would be taken pixel by pixel (and, skipping each, without end)
    for index, item in enumerate(check_spectra(items, "items"), start=start):
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
