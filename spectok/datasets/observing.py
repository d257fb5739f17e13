"""The instrument simulator: what a spectrum looks like through a given spectrograph.

`observe` takes a high-resolution model or template spectrum and returns
what an `~spectok.datasets.Instrument` (`spectok.datasets.instruments`)
would record: redshifted, convolved with the instrument's
wavelength-dependent Gaussian line-spread function (LSF), rebinned with
flux conservation onto the instrument's pixels, with Gaussian noise and the
matching inverse variance. `observe_arrays` does the same for a
`ModelArrays`, a model already converted to plain arrays, for simulators
that observe one model many times.

(The module is ``observing``, not ``observe``: ``spectok.datasets.observe``
is the function.)

How `observe` works, per arm:

1. The input is put onto a fine grid uniform in ln λ that samples the
   narrowest LSF σ of the arm eight times: each fine node gets the
   hat-function (linear B-spline) average of the input's piecewise-linear
   interpolant, computed exactly from cumulative zeroth and first moments
   (no loop over pixels). This conserves the flux and the position of every
   feature, however finely or coarsely the input is sampled.
2. Each fine node is spread with a Gaussian whose σ is the LSF at that
   node's wavelength (σ_λ = λ / (2.3548 R); in ln λ, σ = 1 / (2.3548 R)),
   less the d²/3 of variance the fine grid itself adds. The kernel is
   normalised per source node (the LSF belongs to the wavelength of the
   light), so flux is conserved exactly even where the resolution changes.
   The banded sum runs over the kernel offsets (tens), vectorised over
   pixels.
3. The piecewise-linear fine spectrum is integrated exactly over each
   instrument pixel, which is the pixel average a detector records
   (flux-conserving rebinning, as in ``spectres``).
4. Pixels that draw more than 0.1 % of their LSF weight from outside the
   input's coverage (or from its masked pixels) are masked, never
   extrapolated.
"""

import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.nddata import InverseVariance
from specutils import Spectrum, SpectrumList

from ..adapter import canonical_flux, split_masked, wavelength_grid
from ._binning import (FWHM_PER_SIGMA, bin_average_linear, enclosing, gaussian_spread,
                       hat_average, spread_sparse)
from ._checks import check_redshift, check_snr
from .instruments import get_instrument

__all__ = ["observe", "observe_arrays", "ModelArrays"]

#: Fine-grid bins per narrowest LSF σ.
_OVERSAMPLE = 8
#: Kernel half-width in units of the LSF σ.
_KERNEL_SIGMAS = 5.0
#: A pixel is masked when more than this fraction of its LSF weight is uncovered.
_COVERAGE_TOLERANCE = 1e-3
#: Largest fine grid observe() will build for one arm.
_MAX_FINE_PIXELS = 20_000_000


# --------------------------------------------------------------------------
# Helpers (plain arrays, Å)
# --------------------------------------------------------------------------


def _resolution_sigma(resolution, lam, n, what):
    """Per-pixel σ (Å) from a resolving power or σ given for a spectrum of ``n`` pixels."""
    if isinstance(resolution, u.Quantity):
        if resolution.unit.physical_type != "length":
            # u.spectral() would turn a width in Hz or eV into the wavelength of that frequency
            unit = resolution.unit
            raise u.UnitConversionError(
                f"{what}: a line-spread σ must be a wavelength Quantity (e.g. 0.5 * u.AA), not "
                + (f"{unit} ({unit.physical_type})" if unit.to_string() else "dimensionless")
                + "; give a resolving power as a plain number")
        sig = resolution.to_value(u.AA)
    else:
        try:
            res = np.asarray(resolution, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{what}: give a resolving power λ/Δλ (a number or one per pixel) or "
                            f"the line-spread σ as a Quantity, not {resolution!r}") from None
        if np.any(~(res > 0)):
            raise ValueError(f"{what}: resolving power must be positive")
        with np.errstate(over="ignore"):  # R below ~1e-304: σ overflows, refused below
            sig = lam / (res * FWHM_PER_SIGMA) if res.ndim == 0 or res.shape == (n,) else None
        if sig is not None and not np.all(np.isfinite(sig)):
            raise ValueError(f"{what}: resolving power {np.min(res):g} is too small: "
                             "σ = λ / (2.3548 R) overflows")
    sig = np.asarray(sig, dtype=float) if sig is not None else None
    if sig is None or (sig.ndim and sig.shape != (n,)):
        raise ValueError(f"{what}: give a scalar or one value per pixel ({n})")
    if np.any(~np.isfinite(sig) | (sig < 0)):
        raise ValueError(f"{what}: σ must be finite and non-negative")
    return np.broadcast_to(sig, (n,)).astype(float)


def _single_arrays(spectrum, input_resolution):
    """Wavelength (Å vacuum), flux, unit, good-pixel mask and input σ (Å or None), unsorted."""
    if isinstance(spectrum.unit, u.FunctionUnitBase):  # spectrum.flux would fail unclearly
        raise u.UnitConversionError(f"observe(): flux is in magnitudes ({spectrum.unit}); "
                                    "convert it to a linear flux density first")
    if spectrum.flux.ndim != 1:
        raise ValueError(f"observe() takes a 1-D spectrum; flux has shape {spectrum.flux.shape}")
    # vacuum Å, checked (finite, positive, monotonic, a known medium) as the adapter does;
    # a zero frequency or an overflowing conversion is a non-finite value, refused by name
    with np.errstate(all="ignore"):
        _, _, lam = wavelength_grid(spectrum.spectral_axis, spectrum.meta.get("medium", "vacuum"),
                                    label="observe(): spectral axis")
    n = lam.size
    if isinstance(input_resolution, str) and input_resolution == "auto":
        meta = spectrum.meta
        sigma = meta.get("lsf_sigma")
        if sigma is not None:
            if not isinstance(sigma, u.Quantity):
                raise TypeError("meta['lsf_sigma']: give the line-spread σ as a wavelength "
                                f"Quantity (e.g. 0.5 * u.AA), not {type(sigma).__name__}")
            sigma_in = _resolution_sigma(sigma, lam, n, "meta['lsf_sigma']")
        elif meta.get("spectral_resolution") is not None:
            sigma_in = _resolution_sigma(meta["spectral_resolution"], lam, n,
                                         "meta['spectral_resolution']")
        else:
            sigma_in = None
    elif input_resolution is None:
        sigma_in = None
    else:
        sigma_in = _resolution_sigma(input_resolution, lam, n, "input_resolution")
    with np.errstate(all="ignore"):  # as in the adapter, a value that overflows is invalid
        flux, unit = canonical_flux(u.Quantity(spectrum.flux), lam, "observe()")
    good = np.isfinite(flux)
    if spectrum.mask is not None:
        good &= ~np.asarray(spectrum.mask, dtype=bool)
    return lam, flux, unit, good, sigma_in


def _input_arrays(spectrum, input_resolution=None):
    """Wavelength (Å vacuum, increasing), flux, flux unit, good-pixel mask, input σ (Å or None).

    A `~specutils.SpectrumList` is merged (all arms' pixels, sorted).
    """
    if isinstance(spectrum, tuple) and len(spectrum) != 2:
        raise TypeError(f"observe() takes a (wavelength, flux) pair, not a tuple of "
                        f"{len(spectrum)} items" + ("; it draws its own noise, so leave the "
                                                    "uncertainty out" if len(spectrum) == 3
                                                    else ""))
    if isinstance(spectrum, tuple):
        wave, flux, _, mask = split_masked(*spectrum, label="observe()")
        with np.errstate(all="ignore"):  # non-finite results are refused by name below
            _, _, wave_aa = wavelength_grid(wave, label="observe(): spectral axis")
            # in the canonical unit already, so magnitudes are refused with the adapter's message
            values, unit = canonical_flux(flux, wave_aa, "observe()")
        spectrum = Spectrum(spectral_axis=wave, flux=values * unit, mask=mask)
    if isinstance(spectrum, SpectrumList):
        if len(spectrum) == 0:
            raise ValueError("the SpectrumList is empty")
        parts = [_single_arrays(s, input_resolution) for s in spectrum]
        units = {p[2] for p in parts}
        if len(units) > 1:
            raise ValueError(f"the arms have incompatible flux units {sorted(map(str, units))}")
        lam = np.concatenate([p[0] for p in parts])
        flux = np.concatenate([p[1] for p in parts])
        good = np.concatenate([p[3] for p in parts])
        sigma_in = None
        if any(p[4] is not None for p in parts):
            sigma_in = np.concatenate([p[4] if p[4] is not None else np.zeros(p[0].size)
                                       for p in parts])
        unit = parts[0][2]
    elif isinstance(spectrum, Spectrum):
        lam, flux, unit, good, sigma_in = _single_arrays(spectrum, input_resolution)
    else:
        raise TypeError("observe() takes a specutils.Spectrum, SpectrumList or a (wavelength, "
                        f"flux) Quantity tuple, not {type(spectrum).__name__}")
    # At a wavelength given twice (overlapping arms) a valid pixel comes first, so that
    # ModelArrays, which keeps the first, does not drop it for an invalid one.
    order = np.lexsort((~good, lam))
    lam, flux, good = lam[order], flux[order], good[order]
    sigma_in = None if sigma_in is None else sigma_in[order]
    if good.sum() < 2:
        raise ValueError("the input spectrum has fewer than 2 valid pixels")
    return lam, flux, unit, good, sigma_in


def _coverage(lam, good):
    """Nodes of the input-coverage indicator: 1 on valid pixels, 0 on invalid ones and
    inside gaps (an interval more than 4 times longer than both its neighbours)."""
    step = np.diff(lam)
    before = np.concatenate([[0.0], step[:-1]])
    after = np.concatenate([step[1:], [0.0]])
    gaps = np.flatnonzero(step > 4.0 * np.maximum(before, after))
    if gaps.size == 0:
        return lam, good.astype(float)
    x = np.concatenate([lam, lam[gaps] + 0.01 * step[gaps], lam[gaps + 1] - 0.01 * step[gaps]])
    y = np.concatenate([good.astype(float), np.zeros(2 * gaps.size)])
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def _observe_arm(arm, lam, flux, good, sigma_in):
    """Noiseless pixel-averaged flux, a validity mask and a resolution-limited flag per pixel.

    ``lam``/``flux`` are the (redshifted) input with invalid pixels already
    replaced; ``good`` marks the valid ones; ``sigma_in`` (Å, per input pixel
    or None) is the input's own resolution.
    """
    edges = arm.bin_edges.value
    n_pix = arm.n_pixels
    lo = max(edges[0], lam[0])
    hi = min(edges[-1], lam[-1])
    lo = lo - 2 * _KERNEL_SIGMAS * arm.lsf_sigma_at(lo).value
    hi = hi + 2 * _KERNEL_SIGMAS * arm.lsf_sigma_at(hi).value
    if lo >= hi or lam[good][0] >= edges[-1] or lam[good][-1] <= edges[0]:
        return np.zeros(n_pix), np.ones(n_pix, dtype=bool), np.zeros(n_pix, dtype=bool)

    # Fine grid, uniform in ln λ, oversampling the narrowest LSF σ.
    probe = np.exp(np.linspace(math.log(lo), math.log(hi), 4096))
    sig_ln_min = float(np.min(arm.lsf_sigma_at(probe).value / probe))
    d = sig_ln_min / _OVERSAMPLE
    n_fine = int(math.ceil(math.log(hi / lo) / d))
    if n_fine > _MAX_FINE_PIXELS:
        raise ValueError(f"arm {arm.name!r}: the LSF is too narrow for its range "
                         f"({n_fine} fine pixels needed)")
    fine_lam = lo * np.exp(d * np.arange(n_fine + 1))

    # Only the input under the fine grid's hats matters (they reach one step
    # beyond its ends): the sums run over that part of a model much wider
    # than the arm.
    reach = (2.0 * fine_lam[0] - fine_lam[1], 2.0 * fine_lam[-1] - fine_lam[-2])
    near = enclosing(lam, *reach)
    values = hat_average(lam[near], flux[near], fine_lam, outside="edge")
    cover_lam, cover = _coverage(lam, good)
    near_cover = enclosing(cover_lam, *reach)
    bad = 1.0 - hat_average(cover_lam[near_cover], cover[near_cover], fine_lam, outside="zero")

    # Kernel σ in fine steps: the LSF minus the smoothing the fine grid adds
    # on its own (hat deposit d²/6 plus linear interpolation d²/6, in
    # variance) and minus the input's own resolution.
    sig_ln2 = (arm.lsf_sigma_at(fine_lam).value / fine_lam) ** 2 - d * d / 3.0
    limited = np.zeros(fine_lam.size, dtype=bool)
    if sigma_in is not None:
        # σ beyond 1e100 λ (or overflowing) is as coarse as any: capped, it cannot overflow
        sig_in_fine = np.minimum(np.interp(fine_lam, lam[near], sigma_in[near]) / fine_lam,
                                 1e100)
        sig_ln2 = sig_ln2 - sig_in_fine**2
        limited = sig_ln2 < -0.01 * sig_ln_min**2
    sigma_pix = np.sqrt(np.clip(sig_ln2, 0.0, None)) / d
    half_width = int(math.ceil(_KERNEL_SIGMAS * sigma_pix.max())) if sigma_pix.max() > 0 else 0
    clean = bin_average_linear(fine_lam, gaussian_spread(values, sigma_pix, half_width), edges)
    # ``bad`` is rounding noise (~1e-7) except near the input's ends and gaps. Each value
    # dropped is below 1e-3 of the tolerance, so ``uncovered`` moves by less than that:
    # only a pixel that close to the tolerance could change its mask.
    bad[np.abs(bad) < 1e-3 * _COVERAGE_TOLERANCE] = 0.0
    uncovered = bin_average_linear(fine_lam, spread_sparse(bad, sigma_pix, half_width), edges)
    # Pixels that reach beyond the fine grid are uncovered too.
    outside = (edges[:-1] < fine_lam[0]) | (edges[1:] > fine_lam[-1])
    mask = outside | (uncovered > _COVERAGE_TOLERANCE)
    limited = np.interp(arm.wavelength.value, fine_lam, limited.astype(float)) > 0.5
    return clean, mask, limited


# --------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------


def observe(spectrum, instrument, snr=20.0, redshift=0.0, rng=None, *, noise=True,
            input_resolution="auto"):
    """Observe a model spectrum with an instrument.

    The input is redshifted (λ → λ (1 + z), f_λ → f_λ / (1 + z)),
    convolved with the instrument's wavelength-dependent Gaussian LSF,
    averaged over the instrument's pixels (conserving flux) and given
    Gaussian noise; pixels the input does not cover are masked.

    Parameters
    ----------
    spectrum : `~specutils.Spectrum`, `~specutils.SpectrumList`, tuple or `ModelArrays`
        The model (rest frame if ``redshift`` is given): any spectral axis
        unit convertible with ``u.spectral()``; ``meta["medium"] == "air"``
        marks air wavelengths, converted to vacuum (Morton 2000), as the
        adapter reads them (`spectok.adapter.wavelength_grid`). Flux densities
        (f_λ, f_ν, photon flux) are converted to erg s⁻¹ cm⁻² Å⁻¹, counts
        keep their unit and a normalised flux becomes plain numbers
        (`spectok.adapter.canonical_flux`). Masked and non-finite pixels
        (and those whose conversion overflows) are not used. The arms of a
        `~specutils.SpectrumList` are merged (where two give the same
        wavelength, a valid pixel is kept); a ``(wavelength, flux)`` pair of
        Quantities is also accepted (masked values of a ``Masked`` flux are
        masked pixels), and so is a
        `ModelArrays` (already converted: ``input_resolution`` is then its
        ``sigma``).
    instrument : `Instrument` or str
        The instrument, or a preset name (see `INSTRUMENTS`).
    snr : float
        Signal-to-noise per pixel at the reference flux level (see
        `NoiseModel`).
    redshift : float
        Redshift to apply, > -1.
    rng : int, sequence of int, `numpy.random.Generator` or None
        Seed (non-negative), seeds, or generator for the noise.
    noise : bool
        If False, return the noiseless flux (the uncertainty is still the
        one the noise would have).
    input_resolution : "auto", None, float, array or `~astropy.units.Quantity`
        The input's own resolution in its own frame, removed in quadrature
        from the instrument kernel so the output has the instrument's
        resolution: a resolving power R (scalar or per pixel) or a Gaussian
        σ (wavelength Quantity, scalar or per pixel). ``"auto"`` (default)
        reads ``meta["lsf_sigma"]`` (a wavelength Quantity, as `observe`
        writes) or ``meta["spectral_resolution"]`` (R per pixel, as MaNGA and
        MaStar files give), and otherwise treats the input as infinitely
        sharp, as does None.

    Returns
    -------
    `~specutils.Spectrum` or `~specutils.SpectrumList`
        One spectrum per arm (a `~specutils.SpectrumList` for multi-arm
        instruments), in Å vacuum, with `~astropy.nddata.InverseVariance`
        uncertainty (0 on masked pixels), ``mask`` (True = no data; flux 0
        there) and ``meta`` keys ``instrument``, ``arm``, ``medium``
        (``"vacuum"``), ``redshift``, ``snr``, ``lsf_sigma`` (LSF σ per pixel,
        Å Quantity) and ``resolution_limited`` (fraction of pixels where the
        input was coarser than the instrument and kept its own resolution).

    Raises
    ------
    ValueError
        If the instrument name is unknown, ``snr`` is not positive, the
        redshift is not a number > -1, the spectrum is not 1-D or has fewer
        than two valid pixels, or it does not overlap any arm of the
        instrument; if ``input_resolution`` (or the ``meta`` it reads) has
        values that are not positive, finite or one per pixel, or ``rng`` is
        a negative seed; if the flux (at that redshift) or the noise (at
        that ``snr``) is beyond float64's range.
    TypeError
        If ``spectrum`` is not a spectrum (or is a tuple of other than two
        items), ``input_resolution`` is neither a number, an array nor a
        Quantity, ``meta["lsf_sigma"]`` is not a Quantity, or ``rng`` is not
        a seed or a numpy random generator.
    spectok.adapter.SpectrumInputError
        A spectral axis the adapter refuses: not finite, positive and
        monotonic, an unknown ``meta["medium"]``, or air wavelengths below
        2000 Å.
    astropy.units.UnitConversionError
        If the spectral axis is not spectral, the flux is not a flux
        (magnitudes, a length), or a line-spread σ is not a wavelength.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from specutils import Spectrum
    >>> from spectok.datasets import observe
    >>> lam = np.linspace(3000.0, 11000.0, 40_000) * u.AA
    >>> model = Spectrum(spectral_axis=lam, flux=np.ones(lam.size) * u.Unit("erg/(s cm2 AA)"))
    >>> obs = observe(model, "sdss", snr=30, redshift=0.1, rng=1)
    >>> obs.meta["instrument"], obs.flux.size, int(obs.mask.sum())
    ('sdss', 4607, 0)
    >>> desi = observe(model, "desi", snr=10, rng=1)
    >>> [arm.meta["arm"] for arm in desi]
    ['b', 'r', 'z']
    """
    inst = get_instrument(instrument)
    if isinstance(spectrum, ModelArrays):
        if not (isinstance(input_resolution, str) and input_resolution == "auto"):
            raise ValueError("a ModelArrays input carries its resolution in its sigma; "
                             "input_resolution cannot be given with it")
        source = spectrum
    else:
        source = ModelArrays.from_spectrum(spectrum, input_resolution)
    arms = observe_arrays(source, inst, snr=snr, redshift=redshift, rng=rng, noise=noise)
    return _observed_spectrum(inst, arms, source.unit, snr, redshift)


def _observed_spectrum(inst, arms, unit, snr, redshift):
    """`observe`'s output from `observe_arrays`' (one Spectrum, or a SpectrumList of arms)."""
    spectra = []
    for arm, (obs, ivar, mask, limited) in zip(inst.arms, arms):
        meta = {"instrument": inst.name, "arm": arm.name, "medium": "vacuum",
                "redshift": float(redshift), "snr": float(snr),
                "lsf_sigma": arm.lsf_sigma_at(),
                "resolution_limited": float(np.mean(limited & ~mask))}
        spectra.append(Spectrum(spectral_axis=arm.wavelength, flux=obs * unit,
                                uncertainty=InverseVariance(ivar * unit**-2), mask=mask,
                                meta=meta))
    return spectra[0] if len(spectra) == 1 else SpectrumList(spectra)


@dataclass(frozen=True)
class ModelArrays:
    """A model spectrum as plain arrays, ready to be observed many times.

    `observe` converts its input to these once per call; simulators that
    observe one model through many instruments (the training stream) build
    it once with `ModelArrays.from_spectrum` and call `observe_arrays`.

    Attributes
    ----------
    wavelength : `~numpy.ndarray`
        Vacuum wavelength in Å, increasing, no duplicates.
    flux : `~numpy.ndarray`
        Flux (erg s⁻¹ cm⁻² Å⁻¹ for flux densities), invalid pixels filled
        from their valid neighbours.
    unit : `~astropy.units.Unit`
    good : `~numpy.ndarray` of bool
        Valid input pixels.
    sigma : `~numpy.ndarray` or None
        The input's own resolution, Gaussian σ in Å per pixel.

    Raises
    ------
    ValueError
        Arrays of different lengths, fewer than 2 wavelengths, wavelengths
        that are not finite, positive and strictly increasing, a flux that
        is not finite, or a ``sigma`` that is not finite and non-negative.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    unit: u.UnitBase
    good: np.ndarray
    sigma: object = None

    def __post_init__(self):
        # observe_arrays quiets the floating-point warnings of extreme but valid input and
        # checks its results after; what it is given must hold no NaN to start with
        lam, n = np.asarray(self.wavelength), np.shape(self.wavelength)
        if lam.ndim != 1 or lam.size < 2:
            raise ValueError(f"ModelArrays: wavelength must be 1-D with at least 2 values, "
                             f"got shape {n}")
        if not (np.all(np.isfinite(lam)) and lam[0] > 0 and np.all(np.diff(lam) > 0)):
            raise ValueError("ModelArrays: wavelength must be finite, positive and strictly "
                             "increasing")
        for name in ("flux", "good") + (("sigma",) if self.sigma is not None else ()):
            if np.shape(getattr(self, name)) != n:
                raise ValueError(f"ModelArrays: {name} has shape "
                                 f"{np.shape(getattr(self, name))}, wavelength {n}")
        if not np.all(np.isfinite(self.flux)):
            raise ValueError("ModelArrays: flux must be finite (fill invalid pixels and mark "
                             "them in good)")
        if self.sigma is not None and not np.all(np.isfinite(self.sigma) & (self.sigma >= 0)):
            raise ValueError("ModelArrays: sigma must be finite and non-negative")

    @classmethod
    def from_spectrum(cls, spectrum, input_resolution="auto"):
        """Convert a `~specutils.Spectrum`, `~specutils.SpectrumList` or Quantity pair.

        Parameters and errors are those of the ``spectrum`` and
        ``input_resolution`` arguments of `observe`.

        Examples
        --------
        >>> import numpy as np, astropy.units as u
        >>> from spectok.datasets import ModelArrays
        >>> m = ModelArrays.from_spectrum((np.linspace(1, 2, 5) * u.um, np.ones(5) * u.Jy))
        >>> round(float(m.wavelength[0]), 6), m.unit
        (10000.0, Unit("erg / (Angstrom s cm2)"))
        """
        lam, flux, unit, good, sigma_in = _input_arrays(spectrum, input_resolution)
        # Fill invalid pixels from their valid neighbours (they stay flagged in
        # ``good`` and so mask whatever they touch).
        if not good.all():
            flux = np.interp(lam, lam[good], flux[good])
        keep = np.concatenate([[True], np.diff(lam) > 0])  # drop duplicate wavelengths
        if np.sum(good[keep]) < 2:
            raise ValueError("the input spectrum has fewer than 2 valid pixels at distinct "
                             "wavelengths")
        return cls(lam[keep], flux[keep], unit, good[keep],
                   None if sigma_in is None else sigma_in[keep])

    def to_spectrum(self, meta=None):
        """The model as a `~specutils.Spectrum` (vacuum Å; invalid pixels masked).

        Parameters
        ----------
        meta : dict, optional
            The spectrum's ``meta``.

        Examples
        --------
        >>> import numpy as np, astropy.units as u
        >>> from spectok.datasets import ModelArrays
        >>> m = ModelArrays(np.array([4000.0, 4001.0]), np.ones(2), u.Jy, np.array([True, False]))
        >>> s = m.to_spectrum({"id": "toy"})
        >>> s.flux.unit, s.mask.tolist(), s.meta["id"]
        (Unit("Jy"), [False, True], 'toy')
        """
        from specutils import Spectrum

        return Spectrum(spectral_axis=self.wavelength * u.AA, flux=self.flux * self.unit,
                        mask=~self.good, meta=meta or {})


def observe_arrays(model, instrument, snr=20.0, redshift=0.0, rng=None, *, noise=True):
    """`observe` on plain arrays: one ``(flux, ivar, mask, resolution_limited)`` per arm.

    Parameters
    ----------
    model : `ModelArrays`
        The model spectrum in its rest frame.
    instrument, snr, redshift, rng, noise
        As for `observe`.

    Returns
    -------
    list of tuple of `~numpy.ndarray`
        Per arm of ``instrument``: observed flux (in ``model.unit``; 0 where
        masked), inverse variance (0 where masked), mask and the
        resolution-limited flag, on the arm's pixel centres
        (``instrument.arms[k].wavelength``).

    Raises
    ------
    ValueError, TypeError
        As for `observe`.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from spectok.datasets import ModelArrays, observe_arrays
    >>> lam = np.linspace(3000.0, 11000.0, 40_000) * u.AA
    >>> model = ModelArrays.from_spectrum((lam, np.ones(lam.size) * u.Unit("erg/(s cm2 AA)")))
    >>> [flux.size for flux, ivar, mask, _ in observe_arrays(model, "desi", snr=10, rng=1)]
    [2751, 2326, 2881]
    """
    inst = get_instrument(instrument)
    snr = check_snr(snr)
    z = check_redshift(redshift, blueshift=True)
    try:
        rng = np.random.default_rng(rng)
    except (TypeError, ValueError) as error:
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"rng must be None, a non-negative integer seed (or a sequence of them) or a "
                   f"numpy.random.Generator, not {rng!r}") from None
    # Extreme inputs may overflow below; what reaches an unmasked pixel is checked after.
    with np.errstate(all="ignore"):
        lam = model.wavelength * (1.0 + z)
        flux = model.flux / (1.0 + z)
        good = model.good
        sigma_in = None if model.sigma is None else model.sigma * (1.0 + z)
        if not np.all(np.isfinite(lam)):
            lo, hi = inst.wavelength_range.value
            raise ValueError(f"the spectrum at z={z:g} reaches beyond the largest float64 "
                             f"wavelength (observed frame); it does not cover any pixel of "
                             f"{inst.name!r} ({lo:.1f}-{hi:.1f} Å)")
        results = [(arm, *_observe_arm(arm, lam, flux, good, sigma_in)) for arm in inst.arms]
    if all(mask.all() for _, _, mask, _ in results):
        lo, hi = inst.wavelength_range.value
        raise ValueError(
            f"the spectrum (observed frame {_aa(lam[good][0])}-{_aa(lam[good][-1])} Å at "
            f"z={z:g}) does not cover any pixel of {inst.name!r} ({lo:.1f}-{hi:.1f} Å)")
    for arm, clean, mask, _ in results:
        if not np.all(np.isfinite(clean[~mask])):
            raise ValueError(
                f"arm {arm.name!r} of {inst.name!r}: the simulated flux is not finite on "
                f"{np.sum(~np.isfinite(clean[~mask]))} pixels: the input's flux (up to "
                f"{np.max(np.abs(flux[good])):.3g} {model.unit} at z={z:g}) or its wavelengths "
                f"(up to {_aa(lam[-1])} Å) overflow float64 arithmetic; give the flux in a unit "
                "nearer its level")

    covered = np.concatenate([clean[~mask] for _, clean, mask, _ in results])
    covered_lam = np.concatenate([arm.wavelength.value[~mask] for arm, _, mask, _ in results])
    ref = inst.noise.reference_flux(covered, covered_lam)

    observed = []
    for arm, clean, mask, limited in results:
        sigma = inst.noise.sigma(clean, snr, reference_flux=ref)
        with np.errstate(all="ignore"):  # checked right after
            obs = clean + sigma * rng.standard_normal(clean.size) if noise else clean.copy()
            ivar = 1.0 / sigma**2
        obs[mask] = 0.0
        ivar[mask] = 0.0
        if not np.all(np.isfinite(obs) & np.isfinite(ivar) & ((ivar > 0) | mask)):
            raise ValueError(
                f"arm {arm.name!r} of {inst.name!r}: the noise at snr={snr:g} (σ from "
                f"{np.min(sigma[~mask]):.3g} to {np.max(sigma[~mask]):.3g} {model.unit}, "
                f"reference flux {ref:.3g}) has an inverse variance beyond float64's range; "
                "give the flux in a unit nearer its level, or a more moderate snr")
        observed.append((obs, ivar, mask, limited))
    return observed


def _aa(wavelength):
    """A wavelength in Å for a message: 0.1 Å resolution, or 4 digits if tiny or huge."""
    return f"{wavelength:.1f}" if 0.1 <= wavelength < 1e7 else f"{wavelength:.4g}"
