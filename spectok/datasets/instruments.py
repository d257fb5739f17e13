"""Instrument definitions: spectrograph arms, noise models and the survey presets.

An `Instrument` is a list of `Arm` (wavelength grid and line-spread function)
and a `NoiseModel`. The simulator `~spectok.datasets.observe` (module
`spectok.datasets.observing`) takes a high-resolution model or template
spectrum and returns what an instrument would record.

The presets in `INSTRUMENTS` (``sdss``, ``desi``, ``lamost``, ``gaia_xp``,
``apogee``, ``galah``, ``spex_prism``) use published grids and resolving
powers; each preset's ``reference`` says where the numbers come from.
"""

import math
from dataclasses import dataclass, field
from functools import cached_property

import astropy.units as u
import numpy as np

from .._checks import as_number
from .._numeric import safe_median
from ..adapter.units import as_angstrom
from ._binning import FWHM_PER_SIGMA
from ._checks import check_snr

__all__ = ["Arm", "NoiseModel", "Instrument", "INSTRUMENTS", "get_instrument"]


def _in_dex(value, what):
    """A step in log10 λ as a float: a number, or a Quantity in dex or dimensionless."""
    if isinstance(value, u.Quantity) and value.isscalar and value.unit == u.dex:
        return float(value.value)
    return _dimensionless(value, f"{what} of a log arm (in dex of λ)")


def _dimensionless_array(value, what):
    try:
        return value.to_value(u.one)
    except u.UnitConversionError:
        raise ValueError(f"{what} must be dimensionless, got {value!r:.80}") from None


def _dimensionless(value, what):
    if isinstance(value, u.Quantity):
        try:
            value = value.to_value(u.one)
        except u.UnitConversionError:
            raise ValueError(f"{what} must be dimensionless, got {value!r}") from None
    return as_number(value, f"{what} must be a number, got {value!r}")


# --------------------------------------------------------------------------
# Instrument description
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One spectrograph arm (or detector chip): a pixel grid and its line-spread function.

    Parameters
    ----------
    name : str
        Short name, e.g. ``"b"``.
    start, stop : float or `~astropy.units.Quantity`
        First and (at most) last pixel centre (vacuum): a Quantity in any
        spectral unit, or a number in Å. Stored in Å.
    step : float or `~astropy.units.Quantity`
        Pixel step: a length (a number in Å) for ``sampling="linear"``; in
        dex of λ (a number, or a Quantity in ``u.dex``) for ``sampling="log"``.
    sampling : {"linear", "log"}
        Whether pixel centres are uniform in λ or in log10 λ.
    resolution : float, sequence of (λ, R) pairs, or callable, optional
        Resolving power R = λ / FWHM: a positive number (or dimensionless
        Quantity); a table of ``(λ, R)`` pairs, λ increasing (a Quantity in
        any spectral unit, or a number in Å), interpolated linearly and held
        constant beyond its ends; or a callable that takes wavelengths in Å
        (ndarray) and returns R.
    lsf_sigma : float, `~astropy.units.Quantity` or callable, optional
        Alternatively, the Gaussian LSF σ: a constant length (a number in
        Å) or a callable of wavelength in Å that returns Å. Give exactly
        one of ``resolution`` and ``lsf_sigma``.

    Raises
    ------
    ValueError
        If the grid is empty or ill-defined, ``sampling`` is unknown, a
        value is not a number or a Quantity of the right kind (a string is
        refused), a constant ``resolution`` or ``lsf_sigma`` is not
        positive, a resolution table is not a sequence of pairs with
        increasing wavelengths and positive R, or not exactly one of
        ``resolution`` and ``lsf_sigma`` is given.

    Examples
    --------
    >>> from spectok.datasets import Arm
    >>> arm = Arm("demo", 4000.0, 5000.0, 1.0, resolution=2000.0)
    >>> arm.n_pixels, arm.wavelength[:2]
    (1001, <Quantity [4000., 4001.] Angstrom>)
    >>> round(float(arm.lsf_sigma_at(4500.0).value), 4)
    0.9555
    >>> import astropy.units as u
    >>> Arm("nir", 1.0 * u.um, 1.1 * u.um, 5 * u.AA, lsf_sigma=2 * u.AA).n_pixels
    201
    """

    name: str
    start: float
    stop: float
    step: float
    sampling: str = "linear"
    resolution: object = None
    lsf_sigma: object = None

    def __post_init__(self):
        if self.sampling not in ("linear", "log"):
            raise ValueError(f"arm {self.name!r}: sampling must be 'linear' or 'log', "
                             f"not {self.sampling!r}")
        what = f"arm {self.name!r}:"
        object.__setattr__(self, "start", as_angstrom(self.start, f"{what} start"))
        object.__setattr__(self, "stop", as_angstrom(self.stop, f"{what} stop"))
        object.__setattr__(self, "step", as_angstrom(self.step, f"{what} step", spectral=False) if
                           self.sampling == "linear" else _in_dex(self.step, f"{what} step"))
        if self.lsf_sigma is not None and not callable(self.lsf_sigma):
            object.__setattr__(self, "lsf_sigma",
                               as_angstrom(self.lsf_sigma, f"{what} lsf_sigma", spectral=False))
        res = self.resolution
        if isinstance(res, np.ndarray) and res.ndim == 0 or np.isscalar(res):   # Quantity too
            object.__setattr__(self, "resolution", _dimensionless(res, f"{what} resolution"))
        elif isinstance(res, u.Quantity):   # a table as one dimensionless Quantity: λ in Å
            object.__setattr__(self, "resolution", _dimensionless_array(res, f"{what} resolution"))
        if not (np.isfinite(self.start) and np.isfinite(self.stop) and np.isfinite(self.step)):
            raise ValueError(f"arm {self.name!r}: start, stop and step must be finite")
        if not 0 < self.start < self.stop:
            raise ValueError(f"arm {self.name!r}: need 0 < start < stop, "
                             f"got {self.start}, {self.stop}")
        if self.step <= 0:
            raise ValueError(f"arm {self.name!r}: step must be positive, got {self.step}")
        if (self.resolution is None) == (self.lsf_sigma is None):
            raise ValueError(f"arm {self.name!r}: give exactly one of resolution and lsf_sigma")
        for constant in ("resolution", "lsf_sigma"):
            value = getattr(self, constant)
            if isinstance(value, float) and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{what} {constant} must be positive and finite, got {value}")
        res = self.resolution
        if res is not None and not callable(res) and not isinstance(res, float):
            message = (f"{what} a resolution table is a sequence of (wavelength, R) pairs, "
                       f"got {res!r:.80}")
            if isinstance(res, (str, bytes)) or not hasattr(res, "__len__") or not len(res) \
                    or not all(hasattr(pair, "__len__") and len(pair) == 2 for pair in res):
                raise ValueError(message)
            table = tuple((as_angstrom(lam, f"{what} resolution table wavelength"),
                           _dimensionless(r, f"{what} resolution table R")) for lam, r in res)
            lam, r = np.array(table).T
            if np.any(np.diff(lam) <= 0):
                raise ValueError(f"arm {self.name!r}: resolution table wavelengths must increase")
            if not np.all(np.isfinite(r) & (r > 0)):   # refused only when first used, before
                raise ValueError(f"{what} resolution table R must be positive and finite")
            object.__setattr__(self, "resolution", table)
        if self.n_pixels < 2:
            raise ValueError(f"arm {self.name!r}: the grid has fewer than 2 pixels")

    # -- grid --------------------------------------------------------------
    @cached_property
    def _centres(self):
        if self.sampling == "linear":
            n = int(math.floor((self.stop - self.start) / self.step + 1e-6)) + 1
            lam = self.start + self.step * np.arange(n)
        else:
            n = int(math.floor(math.log10(self.stop / self.start) / self.step + 1e-6)) + 1
            lam = self.start * 10.0 ** (self.step * np.arange(n))
        lam.flags.writeable = False
        return lam

    @cached_property
    def _edges(self):
        lam = self._centres
        if self.sampling == "linear":
            edges = np.concatenate([[lam[0] - self.step / 2], (lam[1:] + lam[:-1]) / 2,
                                    [lam[-1] + self.step / 2]])
        else:
            half = 10.0 ** (self.step / 2)
            edges = np.concatenate([[lam[0] / half], np.sqrt(lam[1:] * lam[:-1]), [lam[-1] * half]])
        edges.flags.writeable = False
        return edges

    @property
    def n_pixels(self):
        """int: Number of pixels."""
        return len(self._centres)

    @property
    def wavelength(self):
        """`~astropy.units.Quantity`: Pixel centres in Å (vacuum)."""
        return self._centres * u.AA

    @property
    def bin_edges(self):
        """`~astropy.units.Quantity`: Pixel edges in Å (``n_pixels + 1`` values)."""
        return self._edges * u.AA

    # -- line-spread function ----------------------------------------------
    def _sigma(self, lam):
        """LSF σ in Å at wavelengths ``lam`` (Å, ndarray).

        Beyond the arm's ends the LSF definition (R or σ) is held at its end value.
        """
        lam = np.asarray(lam, dtype=float)
        inside = np.clip(lam, self.start, self.stop)
        if self.lsf_sigma is not None:
            sig = self.lsf_sigma(inside) if callable(self.lsf_sigma) else self.lsf_sigma
            sig = np.broadcast_to(np.asarray(sig, dtype=float), lam.shape)
        else:
            sig = lam / (self._resolving_power(inside) * FWHM_PER_SIGMA)
        if not np.all(np.isfinite(sig) & (sig > 0)):
            raise ValueError(f"arm {self.name!r}: the LSF must be positive and finite")
        return np.array(sig, dtype=float)

    def _resolving_power(self, lam):
        res = self.resolution
        if callable(res):
            r = np.asarray(res(lam), dtype=float)
        elif np.isscalar(res):
            r = np.full(np.shape(lam), float(res))
        else:
            table = np.asarray(res)
            r = np.interp(lam, table[:, 0], table[:, 1])
        return np.broadcast_to(r, np.shape(lam))

    def resolving_power(self, wavelength=None):
        """Resolving power R = λ / FWHM of the LSF.

        Parameters
        ----------
        wavelength : `~astropy.units.Quantity` or float or array, optional
            Where to evaluate it (floats are Å); default the pixel centres.
            Beyond the arm's ends, R (or σ for ``lsf_sigma`` arms) is held at
            its end value.

        Returns
        -------
        ndarray
            R at each wavelength.

        Raises
        ------
        ValueError
            If the arm's LSF definition gives a non-positive value.

        Examples
        --------
        >>> from spectok.datasets import get_instrument
        >>> arm = get_instrument("lamost").arms[0]
        >>> float(arm.resolving_power(5500.0))
        1800.0
        """
        lam = self._centres if wavelength is None else _as_angstrom(wavelength)
        if self.resolution is not None:
            self._sigma(lam)  # validates
            return np.array(self._resolving_power(np.clip(lam, self.start, self.stop)), dtype=float)
        return lam / (self._sigma(lam) * FWHM_PER_SIGMA)

    def lsf_sigma_at(self, wavelength=None):
        """Gaussian σ of the LSF.

        Parameters
        ----------
        wavelength : `~astropy.units.Quantity` or float or array, optional
            Where to evaluate it (floats are Å); default the pixel centres.
            Beyond the arm's ends, R (or σ for ``lsf_sigma`` arms) is held at
            its end value.

        Returns
        -------
        `~astropy.units.Quantity`
            σ in Å.

        Raises
        ------
        ValueError
            If the arm's LSF definition gives a non-positive value.

        Examples
        --------
        >>> import astropy.units as u
        >>> from spectok.datasets import get_instrument
        >>> arm = get_instrument("apogee").arms[1]
        >>> arm.lsf_sigma_at(1.6 * u.um).round(3)
        <Quantity 0.302 Angstrom>
        """
        lam = self._centres if wavelength is None else _as_angstrom(wavelength)
        return self._sigma(lam) * u.AA


@dataclass(frozen=True)
class NoiseModel:
    """Per-pixel Gaussian noise: a source (shot-noise) term plus a constant floor.

    For a requested signal-to-noise ``snr`` at the reference flux level
    ``F_ref`` (the median noiseless flux over the observed pixels, or over
    ±1 % around ``reference_wavelength``), each pixel of noiseless flux ``f``
    gets

    .. math:: \\sigma^2 = (F_{ref}/{\\rm snr})^2 \\,
              [(1 - r)\\, \\max(f, 0) / F_{ref} + r]

    where ``r = floor_fraction`` is the share of the variance at ``F_ref``
    that does not scale with the source (sky, read noise, dark current).
    So a pixel at ``F_ref`` has exactly S/N = ``snr``, bright lines have
    higher S/N, and dark pixels keep a finite noise floor.

    Parameters
    ----------
    floor_fraction : float
        ``r`` above, in [0, 1]. 1 gives constant noise.
    reference_wavelength : float or `~astropy.units.Quantity`, optional
        Observed-frame wavelength where the S/N is defined (a Quantity in
        any spectral unit, or a number in Å; stored in Å); default: the
        median over all observed pixels.

    Raises
    ------
    ValueError
        If ``floor_fraction`` is outside [0, 1] or ``reference_wavelength``
        is not a positive wavelength.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.datasets import NoiseModel
    >>> NoiseModel(floor_fraction=1.0).sigma(np.array([1.0, 2.0]), snr=10.0,
    ...                                      reference_flux=1.0)
    array([0.1, 0.1])
    """

    floor_fraction: float = 0.2
    reference_wavelength: float = None

    def __post_init__(self):
        fraction = _dimensionless(self.floor_fraction, "floor_fraction")
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"floor_fraction must be in [0, 1], got {self.floor_fraction!r}")
        object.__setattr__(self, "floor_fraction", fraction)
        if self.reference_wavelength is not None:
            wavelength = as_angstrom(self.reference_wavelength, "reference_wavelength")
            if not (wavelength > 0 and math.isfinite(wavelength)):
                raise ValueError(f"reference_wavelength must be positive and finite, got "
                                 f"{self.reference_wavelength!r}")
            object.__setattr__(self, "reference_wavelength", wavelength)

    def reference_flux(self, flux, wavelength=None):
        """The flux level at which the S/N is defined.

        Parameters
        ----------
        flux : ndarray
            Noiseless flux of the observed (unmasked) pixels.
        wavelength : ndarray, optional
            Their wavelengths in Å; needed with ``reference_wavelength``.

        Returns
        -------
        float
            The median flux (around ``reference_wavelength`` if set); the
            median absolute flux if that is not positive.

        Raises
        ------
        ValueError
            If no pixel is near ``reference_wavelength``, or the flux is all zero
            or has a value that is not finite.

        Examples
        --------
        >>> import numpy as np
        >>> from spectok.datasets import NoiseModel
        >>> float(NoiseModel().reference_flux(np.array([1.0, 3.0, 2.0])))
        2.0
        """
        flux = np.asarray(flux, dtype=float)
        if self.reference_wavelength is not None:
            if wavelength is None:
                raise ValueError("reference_wavelength needs the pixel wavelengths")
            near = np.abs(np.asarray(wavelength) / self.reference_wavelength - 1) <= 0.01
            if not near.any():
                raise ValueError(f"no observed pixel within 1 % of the S/N reference wavelength "
                                 f"{self.reference_wavelength} Å")
            flux = flux[near]
        if not np.all(np.isfinite(flux)):
            raise ValueError("the noiseless flux is not finite; cannot define the S/N")
        ref = safe_median(flux) if flux.size else 0.0
        if not ref > 0:
            ref = safe_median(np.abs(flux)) if flux.size else 0.0
        if not ref > 0:
            raise ValueError("the noiseless spectrum has no non-zero flux to define the S/N "
                             "against")
        return ref

    def sigma(self, flux, snr, reference_flux=None):
        """Per-pixel noise σ for noiseless ``flux`` at signal-to-noise ``snr``.

        Parameters
        ----------
        flux : ndarray
            Noiseless flux per pixel.
        snr : float
            S/N per pixel at the reference flux level.
        reference_flux : float, optional
            The reference level; default ``reference_flux(flux)``.

        Returns
        -------
        ndarray
            σ per pixel, same units as ``flux``, always positive (infinite
            where σ² overflows float64).

        Raises
        ------
        ValueError
            If ``snr`` or ``reference_flux`` is not positive and finite, or
            ``reference_flux / snr`` gives a variance beyond float64's range.

        Examples
        --------
        >>> import numpy as np
        >>> from spectok.datasets import NoiseModel
        >>> NoiseModel(floor_fraction=0.0).sigma(np.array([4.0, 1.0]), snr=2.0,
        ...                                      reference_flux=1.0)
        array([1. , 0.5])
        """
        snr = check_snr(snr)
        flux = np.asarray(flux, dtype=float)
        ref = self.reference_flux(flux) if reference_flux is None else float(reference_flux)
        if not (math.isfinite(ref) and ref > 0):
            raise ValueError(f"reference_flux must be positive and finite, got {ref}")
        r = self.floor_fraction
        try:
            scale = (ref / snr) ** 2  # the variance at the reference flux
        except OverflowError:  # a Python float: ** raises rather than giving inf
            scale = math.inf
        if not (math.isfinite(scale) and scale * 1e-6 > 0):
            raise ValueError(f"snr={snr:g} at the reference flux {ref:.3g} gives a noise σ of "
                             f"{ref / snr:.3g}, whose variance is beyond float64's range; give "
                             "the flux in a unit nearer its level, or a more moderate snr")
        with np.errstate(over="ignore"):  # a pixel far above ref: inf
            var = scale * ((1.0 - r) * np.maximum(flux, 0.0) / ref + r)
        # A pure shot-noise model (r = 0) would give zero noise on zero flux:
        # keep a tiny floor so the inverse variance stays finite.
        var = np.maximum(var, scale * 1e-6)
        return np.sqrt(var)


@dataclass(frozen=True)
class Instrument:
    """A spectrograph: one or more arms and a noise model.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"desi"``.
    arms : sequence of `Arm`
        The arms (or detector chips), blue to red. Observations of a
        multi-arm instrument are `~specutils.SpectrumList` instances.
    noise : `NoiseModel`, optional
        How per-pixel noise is drawn.
    reference : str, optional
        Where the numbers come from.

    Raises
    ------
    TypeError
        If ``arms`` is one `Arm` rather than a list of them, or ``noise`` is
        not a `NoiseModel`.
    ValueError
        If there are no arms or two arms share a name.

    Examples
    --------
    >>> from spectok.datasets import Arm, Instrument
    >>> toy = Instrument("toy", [Arm("a", 4000.0, 5000.0, 2.0, resolution=1000.0)])
    >>> toy.n_pixels, toy.wavelength_range
    (501, <Quantity [4000., 5000.] Angstrom>)
    """

    name: str
    arms: tuple
    noise: NoiseModel = field(default_factory=NoiseModel)
    reference: str = ""

    def __post_init__(self):
        if isinstance(self.arms, Arm):   # "'Arm' object is not iterable"
            raise TypeError(f"instrument {self.name!r}: arms must be a list of Arm; put a single "
                            "arm in a list")
        arms = tuple(self.arms)
        if not arms or not all(isinstance(a, Arm) for a in arms):
            raise ValueError(f"instrument {self.name!r}: arms must be a non-empty sequence of Arm")
        if not isinstance(self.noise, NoiseModel):   # 0.3 failed in observe, AttributeError
            raise TypeError(f"instrument {self.name!r}: noise must be a NoiseModel, got "
                            f"{self.noise!r}")
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise ValueError(f"instrument {self.name!r}: arm names must be unique, got {names}")
        object.__setattr__(self, "arms", arms)

    @property
    def n_pixels(self):
        """int: Total number of pixels over all arms."""
        return sum(a.n_pixels for a in self.arms)

    @property
    def wavelength_range(self):
        """`~astropy.units.Quantity`: First and last pixel centre over all arms, Å."""
        return np.array([min(a._centres[0] for a in self.arms),
                         max(a._centres[-1] for a in self.arms)]) * u.AA


# --------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------


def _on_log_grid(wavelength, step, zero=0.0):
    """First wavelength ≥ ``wavelength`` on the grid log10 λ = zero + k · step."""
    k = math.ceil((math.log10(wavelength) - zero) / step - 1e-9)
    return 10.0 ** (zero + k * step)


def _gaia_xp_resolution(lam):
    # BP (330-680 nm) and RP (640-1050 nm) resolving powers both fall with
    # wavelength; the sampled spectra switch from BP to RP around 640 nm.
    return np.interp(lam, [3360.0, 6000.0, 6800.0, 10200.0], [95.0, 32.0, 65.0, 45.0])


_SDSS = Instrument(
    "sdss",
    [Arm("boss", _on_log_grid(3600.0, 1e-4), 10400.0, 1e-4, "log",
         resolution=((3600.0, 1560.0), (6000.0, 2270.0), (6300.0, 1850.0), (10400.0, 2650.0)))],
    NoiseModel(floor_fraction=0.5),
    reference="BOSS spectrographs (Smee et al. 2013, AJ 146, 32): 3600-10400 Å, coadds on "
              "the SDSS log10 λ grid with 1e-4 dex pixels; R = 1560-2270 (blue camera) "
              "and 1850-2650 (red camera), dichroic near 6000 Å.",
)

_DESI = Instrument(
    "desi",
    [Arm("b", 3600.0, 5800.0, 0.8, "linear", resolution=((3600.0, 2000.0), (5930.0, 3200.0))),
     Arm("r", 5760.0, 7620.0, 0.8, "linear", resolution=((5660.0, 3200.0), (7720.0, 4100.0))),
     Arm("z", 7520.0, 9824.0, 0.8, "linear", resolution=((7470.0, 4100.0), (9824.0, 5500.0)))],
    NoiseModel(floor_fraction=0.5),
    reference="DESI spectrographs (DESI Collaboration 2016, arXiv:1611.00037; 2022, AJ 164, "
              "207): cameras B 3600-5930, R 5660-7720, Z 7470-9824 Å, R from 2000 (blue) to "
              "5500 (red); pixel grids of the DESI coadd data model (0.8 Å: b 3600-5800, "
              "r 5760-7620, z 7520-9824 Å).",
)

_LAMOST = Instrument(
    "lamost",
    [Arm("lrs", _on_log_grid(3700.0, 1e-4), 9000.0, 1e-4, "log", resolution=1800.0)],
    NoiseModel(floor_fraction=0.4),
    reference="LAMOST low-resolution survey (Cui et al. 2012, RAA 12, 1197; Luo et al. 2015, "
              "RAA 15, 1095): 3700-9000 Å, R ≈ 1800, log10 λ pixels of 1e-4 dex.",
)

_GAIA_XP = Instrument(
    "gaia_xp",
    [Arm("xp", 3360.0, 10200.0, 20.0, "linear", resolution=_gaia_xp_resolution)],
    NoiseModel(floor_fraction=0.1),
    reference="Gaia DR3 BP/RP (XP) spectra (Carrasco et al. 2021, A&A 652, A86; De Angeli et "
              "al. 2023, A&A 674, A2; Montegriffo et al. 2023, A&A 674, A3): BP 330-680 nm and "
              "RP 640-1050 nm, λ/Δλ ≈ 30-100 falling with wavelength in each; sampled on the "
              "343-point GaiaXPy default grid, 336-1020 nm in 2 nm steps. Real XP noise is "
              "correlated between samples; this model draws it independently.",
)

_APOGEE_STEP = 6e-6
_APOGEE = Instrument(
    "apogee",
    [Arm(name, _on_log_grid(lo, _APOGEE_STEP, 4.179), hi, _APOGEE_STEP, "log", resolution=22500.0)
     for name, lo, hi in (("a", 15140.0, 15810.0), ("b", 15860.0, 16430.0),
                          ("c", 16470.0, 16960.0))],
    NoiseModel(floor_fraction=0.2),
    reference="APOGEE spectrographs (Wilson et al. 2019, PASP 131, 055001; Majewski et al. "
              "2017, AJ 154, 94): 1.51-1.70 µm on three detectors with gaps (about "
              "15140-15810, 15860-16430, 16470-16960 Å), R ≈ 22,500, apStar grid "
              "log10 λ = 4.179 + 6e-6 k.",
)

_GALAH = Instrument(
    "galah",
    [Arm(name, lo, hi, step, "linear", resolution=28000.0)
     for name, lo, hi, step in (("blue", 4713.0, 4903.0, 0.0464), ("green", 5648.0, 5873.0, 0.0550),
                                ("red", 6478.0, 6737.0, 0.0633), ("ir", 7585.0, 7887.0, 0.0738))],
    NoiseModel(floor_fraction=0.2),
    reference="HERMES on the AAT as used by GALAH (Sheinis et al. 2015, JATIS 1, 035002; "
              "Buder et al. 2021, MNRAS 506, 150): four arms 4713-4903, 5648-5873, 6478-6737, "
              "7585-7887 Å, R ≈ 28,000, about 4096 linear pixels per arm.",
)

_SPEX_PRISM = Instrument(
    "spex_prism",
    [Arm("prism", 6500.0, 25500.0, math.log10(25500.0 / 6500.0) / 559, "log", resolution=120.0)],
    NoiseModel(floor_fraction=0.3),
    reference="IRTF/SpeX prism mode (Rayner et al. 2003, PASP 115, 362; SpeX Prism Library, "
              "Burgasser 2014, ASI Conf. Ser. 11, 7): 0.65-2.55 µm in about 560 pixels, "
              "R ≈ 75-250 depending on slit (0.8″-0.3″); this preset uses R = 120, the 0.5″ "
              "slit of most library spectra. Use dataclasses.replace for other slits.",
)

#: Registry of instrument presets, by name.
INSTRUMENTS = {inst.name: inst for inst in
               (_SDSS, _DESI, _LAMOST, _GAIA_XP, _APOGEE, _GALAH, _SPEX_PRISM)}


def get_instrument(name):
    """Look up an instrument preset by name.

    Parameters
    ----------
    name : str or `Instrument`
        A key of `INSTRUMENTS` (case-insensitive), or an `Instrument`,
        returned unchanged.

    Returns
    -------
    `Instrument`
        The preset.

    Raises
    ------
    ValueError
        If there is no preset of that name; the message lists the valid names.

    Examples
    --------
    >>> from spectok.datasets import get_instrument
    >>> desi = get_instrument("desi")
    >>> [arm.name for arm in desi.arms], desi.n_pixels
    (['b', 'r', 'z'], 7958)
    """
    if isinstance(name, Instrument):
        return name
    key = str(name).strip().lower()
    if key not in INSTRUMENTS:
        raise ValueError(f"unknown instrument {name!r}; valid names: "
                         f"{', '.join(sorted(INSTRUMENTS))}")
    return INSTRUMENTS[key]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _as_angstrom(wavelength):
    if isinstance(wavelength, u.Quantity):
        return np.asarray(wavelength.to_value(u.AA, equivalencies=u.spectral()), dtype=float)
    return np.asarray(wavelength, dtype=float)
