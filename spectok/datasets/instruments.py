"""Instrument simulators: what a spectrum looks like through a given spectrograph.

An `Instrument` is a list of `Arm` (wavelength grid and line-spread function)
and a `NoiseModel`. `observe` takes a high-resolution model or template
spectrum and returns what that instrument would record: redshifted,
convolved with the instrument's wavelength-dependent Gaussian line-spread
function (LSF), rebinned with flux conservation onto the instrument's pixels,
with Gaussian noise and the matching inverse variance.

The presets in `INSTRUMENTS` (``sdss``, ``desi``, ``lamost``, ``gaia_xp``,
``apogee``, ``galah``, ``spex_prism``) use published grids and resolving
powers; each preset's ``reference`` says where the numbers come from.

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
from dataclasses import dataclass, field
from functools import cached_property

import astropy.units as u
import numpy as np
from astropy.nddata import InverseVariance
from scipy.special import erf
from specutils import Spectrum, SpectrumList

from ..adapter import canonical_flux, split_masked, wavelength_grid

__all__ = ["Arm", "NoiseModel", "Instrument", "INSTRUMENTS", "get_instrument", "observe",
           "observe_arrays", "ModelArrays"]

#: FWHM of a Gaussian in units of its σ, 2 sqrt(2 ln 2).
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Fine-grid bins per narrowest LSF σ.
_OVERSAMPLE = 8
#: Kernel half-width in units of the LSF σ.
_KERNEL_SIGMAS = 5.0
#: A pixel is masked when more than this fraction of its LSF weight is uncovered.
_COVERAGE_TOLERANCE = 1e-3
#: Largest fine grid observe() will build for one arm.
_MAX_FINE_PIXELS = 20_000_000


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
    start, stop : float
        First and (at most) last pixel centre, in Å (vacuum).
    step : float
        Pixel step: in Å for ``sampling="linear"``, in dex (log10 λ) for
        ``sampling="log"``.
    sampling : {"linear", "log"}
        Whether pixel centres are uniform in λ or in log10 λ.
    resolution : float, sequence of (λ, R) pairs, or callable, optional
        Resolving power R = λ / FWHM. A sequence of ``(wavelength_Å, R)``
        pairs is interpolated linearly (and held constant beyond its ends);
        a callable takes wavelengths in Å (ndarray) and returns R.
    lsf_sigma : float or callable, optional
        Alternatively, the Gaussian LSF σ in Å: a constant or a callable of
        wavelength in Å. Give exactly one of ``resolution`` and ``lsf_sigma``.

    Raises
    ------
    ValueError
        If the grid is empty or ill-defined, ``sampling`` is unknown, or not
        exactly one of ``resolution`` / ``lsf_sigma`` is given.

    Examples
    --------
    >>> from spectok.datasets import Arm
    >>> arm = Arm("demo", 4000.0, 5000.0, 1.0, resolution=2000.0)
    >>> arm.n_pixels, arm.wavelength[:2]
    (1001, <Quantity [4000., 4001.] Angstrom>)
    >>> round(float(arm.lsf_sigma_at(4500.0).value), 4)
    0.9555
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
        if not (np.isfinite(self.start) and np.isfinite(self.stop) and np.isfinite(self.step)):
            raise ValueError(f"arm {self.name!r}: start, stop and step must be finite")
        if not 0 < self.start < self.stop:
            raise ValueError(f"arm {self.name!r}: need 0 < start < stop, "
                             f"got {self.start}, {self.stop}")
        if self.step <= 0:
            raise ValueError(f"arm {self.name!r}: step must be positive, got {self.step}")
        if (self.resolution is None) == (self.lsf_sigma is None):
            raise ValueError(f"arm {self.name!r}: give exactly one of resolution and lsf_sigma")
        res = self.resolution
        if res is not None and not callable(res) and not np.isscalar(res):
            table = np.asarray(res, dtype=float)
            if table.ndim != 2 or table.shape[1] != 2 or len(table) < 1:
                raise ValueError(f"arm {self.name!r}: a resolution table is a sequence of "
                                 "(wavelength, R) pairs")
            if np.any(np.diff(table[:, 0]) <= 0):
                raise ValueError(f"arm {self.name!r}: resolution table wavelengths must increase")
            object.__setattr__(self, "resolution", tuple(map(tuple, table.tolist())))
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
            sig = lam / (self._resolving_power(inside) * _FWHM_PER_SIGMA)
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
        return lam / (self._sigma(lam) * _FWHM_PER_SIGMA)

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
    reference_wavelength : float, optional
        Observed-frame wavelength (Å) where the S/N is defined; default: the
        median over all observed pixels.

    Raises
    ------
    ValueError
        If ``floor_fraction`` is outside [0, 1] or ``reference_wavelength``
        is not positive.

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
        if not 0.0 <= self.floor_fraction <= 1.0:
            raise ValueError(f"floor_fraction must be in [0, 1], got {self.floor_fraction}")
        if self.reference_wavelength is not None and not self.reference_wavelength > 0:
            raise ValueError("reference_wavelength must be positive")

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
            If no pixel is near ``reference_wavelength`` or the flux is all zero.

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
        ref = float(np.median(flux)) if flux.size else 0.0
        if not ref > 0:
            ref = float(np.median(np.abs(flux))) if flux.size else 0.0
        if not (ref > 0 and np.isfinite(ref)):
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
            σ per pixel, same units as ``flux``, always positive.

        Raises
        ------
        ValueError
            If ``snr`` is not positive and finite.

        Examples
        --------
        >>> import numpy as np
        >>> from spectok.datasets import NoiseModel
        >>> NoiseModel(floor_fraction=0.0).sigma(np.array([4.0, 1.0]), snr=2.0,
        ...                                      reference_flux=1.0)
        array([1. , 0.5])
        """
        snr = _check_snr(snr)
        flux = np.asarray(flux, dtype=float)
        ref = self.reference_flux(flux) if reference_flux is None else float(reference_flux)
        r = self.floor_fraction
        var = (ref / snr) ** 2 * ((1.0 - r) * np.maximum(flux, 0.0) / ref + r)
        # A pure shot-noise model (r = 0) would give zero noise on zero flux:
        # keep a tiny floor so the inverse variance stays finite.
        var = np.maximum(var, (ref / snr) ** 2 * 1e-6)
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
        arms = tuple(self.arms)
        if not arms or not all(isinstance(a, Arm) for a in arms):
            raise ValueError(f"instrument {self.name!r}: arms must be a non-empty sequence of Arm")
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
# Numerical helpers (plain arrays, Å)
# --------------------------------------------------------------------------


def _as_angstrom(wavelength):
    if isinstance(wavelength, u.Quantity):
        return np.asarray(wavelength.to_value(u.AA, equivalencies=u.spectral()), dtype=float)
    return np.asarray(wavelength, dtype=float)


def _linear_moments(x, y, t, outside):
    """Zeroth and first moments of the piecewise-linear interpolant of (x, y).

    Returns ``(∫_{x[0]}^{t} f, ∫_{x[0]}^{t} (s - x[0]) f(s) ds)`` for each
    ``t`` (vectorised, no loop over pixels). ``outside="zero"`` treats the
    function as 0 beyond ``x``; ``"edge"`` extends it with its end values.
    """
    x0 = x[0]
    xs = x - x0
    dx = np.diff(xs)
    slope = np.diff(y) / dx

    def segment(k, h):
        m0 = y[k] * h + 0.5 * slope[k] * h * h
        m1 = xs[k] * m0 + 0.5 * y[k] * h * h + slope[k] * h**3 / 3.0
        return m0, m1

    last = np.arange(len(dx))
    seg0, seg1 = segment(last, dx)
    cum0 = np.concatenate([[0.0], np.cumsum(seg0)])
    cum1 = np.concatenate([[0.0], np.cumsum(seg1)])
    ts = np.asarray(t, dtype=float) - x0
    tc = np.clip(ts, 0.0, xs[-1])
    k = np.clip(np.searchsorted(xs, tc, side="right") - 1, 0, len(dx) - 1)
    part0, part1 = segment(k, tc - xs[k])
    m0 = cum0[k] + part0
    m1 = cum1[k] + part1
    if outside == "edge":
        below, above = ts < 0.0, ts > xs[-1]
        m0 = m0 + np.where(below, ts * y[0], 0.0)
        m1 = m1 + np.where(below, 0.5 * ts * ts * y[0], 0.0)
        m0 = m0 + np.where(above, (ts - xs[-1]) * y[-1], 0.0)
        m1 = m1 + np.where(above, 0.5 * (ts * ts - xs[-1] ** 2) * y[-1], 0.0)
    return m0, m1


def _bin_average_linear(x, y, edges, outside="edge"):
    """Average of the piecewise-linear interpolant of (x, y) over each bin of ``edges``."""
    m0, _ = _linear_moments(x, y, edges, outside)
    return np.diff(m0) / np.diff(edges)


def _hat_average(x, y, nodes, outside="edge"):
    """Weighted averages of the interpolant of (x, y) under the hat functions of ``nodes``.

    The hat (linear B-spline) of node k rises from node k-1 to k and falls
    to node k+1. Hats add up to one and reproduce linear functions, so the
    result conserves both the integral and the first moment (line
    positions) of the input exactly: ``Σ_k v_k w_k = ∫ f`` with
    ``w_k = (nodes[k+1] - nodes[k-1]) / 2``, whatever the input sampling.
    """
    step0, step1 = nodes[1] - nodes[0], nodes[-1] - nodes[-2]
    ext = np.concatenate([[nodes[0] - step0], nodes, [nodes[-1] + step1]])
    m0, m1 = _linear_moments(x, y, ext, outside)
    shift = ext - x[0]
    d0, d1, width = np.diff(m0), np.diff(m1), np.diff(ext)
    # ∫ over [a, b] of f (s - a) / (b - a)  and of f (b - s) / (b - a)
    rising = (d1 - shift[:-1] * d0) / width
    falling = d0 - rising
    weight = 0.5 * (ext[2:] - ext[:-2])
    return (rising[:-1] + falling[1:]) / weight


def _add_gaussian_line(profile, edges, centre, sigma_ln, amount):
    """Add ``amount`` × a unit-area Gaussian in ln λ, averaged over the bins of
    ``edges`` (per Å), to ``profile`` in place.

    Only bins within ±10 σ are computed: beyond ~8.3 σ the error function is
    exactly ±1 in double precision, so the rest would add exact zeros.
    """
    reach = 10.0 * sigma_ln
    first = max(int(np.searchsorted(edges, centre * math.exp(-reach))) - 1, 0)
    stop = min(int(np.searchsorted(edges, centre * math.exp(reach))) + 1, len(edges))
    if stop - first < 2:
        return
    window = edges[first:stop]
    cdf = 0.5 * (1.0 + erf((np.log(window) - math.log(centre)) / (math.sqrt(2.0) * sigma_ln)))
    profile[first:stop - 1] += amount * np.diff(cdf) / np.diff(window)


def _gaussian_spread(values, sigma_pix, half_width):
    """Spread each bin of ``values`` (1-D) with a Gaussian of its own σ (in bins).

    Each source bin's kernel is normalised to one, so the sum of ``values``
    is conserved up to what leaves the ends of the array.
    """
    n = values.size
    inv2 = np.full(n, np.inf)  # σ ≈ 0: the kernel is a delta
    wide = sigma_pix > 1e-3
    inv2[wide] = 0.5 / sigma_pix[wide] ** 2
    base = np.exp(-inv2)
    base_squared = base * base

    def weights():
        """exp(-j² a) for j = 1 … half_width, by the recurrence w_j = w_{j-1} e^{-(2j-1) a}:
        two in-place products per offset instead of an exponential. Each yield is the
        same array, updated: use it before the next."""
        w, step = base.copy(), base.copy()
        for _ in range(half_width):
            yield w
            step *= base_squared
            w *= step

    norm = np.ones(n)
    for weight in weights():
        norm += 2.0 * weight
    scaled = values / norm
    out = scaled.copy()
    sw = np.empty_like(scaled)
    for j, weight in enumerate(weights(), start=1):
        np.multiply(scaled, weight, out=sw)
        out[j:] += sw[:n - j]
        out[:n - j] += sw[j:]
    return out


def _check_snr(snr):
    try:
        snr = float(snr)
    except (TypeError, ValueError):
        raise ValueError(f"snr must be a positive number, got {snr!r}") from None
    if not (np.isfinite(snr) and snr > 0):
        raise ValueError(f"snr must be positive and finite, got {snr}")
    return snr


def _resolution_sigma(resolution, lam, n, what):
    """Per-pixel σ (Å) from a resolving power or σ given for a spectrum of ``n`` pixels."""
    if isinstance(resolution, u.Quantity):
        sig = resolution.to_value(u.AA, equivalencies=u.spectral())
    else:
        try:
            res = np.asarray(resolution, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{what}: give a resolving power λ/Δλ (a number or one per pixel) or "
                            f"the line-spread σ as a Quantity, not {resolution!r}") from None
        if np.any(~(res > 0)):
            raise ValueError(f"{what}: resolving power must be positive")
        sig = lam / (res * _FWHM_PER_SIGMA) if res.ndim == 0 or res.shape == (n,) else None
    sig = np.asarray(sig, dtype=float) if sig is not None else None
    if sig is None or (sig.ndim and sig.shape != (n,)):
        raise ValueError(f"{what}: give a scalar or one value per pixel ({n})")
    if np.any(~np.isfinite(sig) | (sig < 0)):
        raise ValueError(f"{what}: σ must be finite and non-negative")
    return np.broadcast_to(sig, (n,)).astype(float)


def _single_arrays(spectrum, input_resolution):
    """Wavelength (Å vacuum), flux, unit, good-pixel mask and input σ (Å or None), unsorted."""
    if spectrum.flux.ndim != 1:
        raise ValueError(f"observe() takes a 1-D spectrum; flux has shape {spectrum.flux.shape}")
    # vacuum Å, checked (finite, positive, monotonic, a known medium) as the adapter does
    _, _, lam = wavelength_grid(spectrum.spectral_axis, spectrum.meta.get("medium", "vacuum"),
                                label="observe(): spectral axis")
    n = lam.size
    if input_resolution == "auto":
        meta = spectrum.meta
        sigma = meta.get("lsf_sigma")
        if isinstance(sigma, u.Quantity) and sigma.unit.physical_type == "length":
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
    flux, unit = canonical_flux(u.Quantity(spectrum.flux), lam, "observe()")
    good = np.isfinite(flux)
    if spectrum.mask is not None:
        good &= ~np.asarray(spectrum.mask, dtype=bool)
    return lam, flux, unit, good, sigma_in


def _input_arrays(spectrum, input_resolution=None):
    """Wavelength (Å vacuum, increasing), flux, flux unit, good-pixel mask, input σ (Å or None).

    A `~specutils.SpectrumList` is merged (all arms' pixels, sorted).
    """
    if isinstance(spectrum, tuple) and len(spectrum) == 2:
        wave, flux, _, mask = split_masked(*spectrum, label="observe()")
        _, _, wave_aa = wavelength_grid(wave, label="observe(): spectral axis")
        flux = flux if isinstance(flux, u.Quantity) else u.Quantity(flux)
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
    order = np.argsort(lam, kind="stable")
    lam, flux, good = lam[order], flux[order], good[order]
    sigma_in = None if sigma_in is None else sigma_in[order]
    if good.sum() < 2:
        raise ValueError("the input spectrum has fewer than 2 valid pixels")
    return lam, flux, unit, good, sigma_in


def _enclosing(x, lo, hi):
    """The slice of ascending ``x`` from its last point ≤ ``lo`` to its first ≥ ``hi``
    (or its ends), at least two points long."""
    start = max(int(np.searchsorted(x, lo, side="right")) - 1, 0)
    stop = min(int(np.searchsorted(x, hi, side="left")) + 1, len(x))
    start = min(start, len(x) - 2)
    return slice(start, max(stop, start + 2))


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
    edges = arm._edges
    n_pix = arm.n_pixels
    lo = max(edges[0], lam[0])
    hi = min(edges[-1], lam[-1])
    lo, hi = (lo - 2 * _KERNEL_SIGMAS * arm._sigma(lo), hi + 2 * _KERNEL_SIGMAS * arm._sigma(hi))
    if lo >= hi or lam[good][0] >= edges[-1] or lam[good][-1] <= edges[0]:
        return np.zeros(n_pix), np.ones(n_pix, dtype=bool), np.zeros(n_pix, dtype=bool)

    # Fine grid, uniform in ln λ, oversampling the narrowest LSF σ.
    probe = np.exp(np.linspace(math.log(lo), math.log(hi), 4096))
    sig_ln_min = float(np.min(arm._sigma(probe) / probe))
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
    near = _enclosing(lam, *reach)
    values = _hat_average(lam[near], flux[near], fine_lam, outside="edge")
    cover_lam, cover = _coverage(lam, good)
    near_cover = _enclosing(cover_lam, *reach)
    bad = 1.0 - _hat_average(cover_lam[near_cover], cover[near_cover], fine_lam, outside="zero")

    # Kernel σ in fine steps: the LSF minus the smoothing the fine grid adds
    # on its own (hat deposit d²/6 plus linear interpolation d²/6, in
    # variance) and minus the input's own resolution.
    sig_ln2 = (arm._sigma(fine_lam) / fine_lam) ** 2 - d * d / 3.0
    limited = np.zeros(fine_lam.size, dtype=bool)
    if sigma_in is not None:
        sig_in_fine = np.interp(fine_lam, lam[near], sigma_in[near]) / fine_lam
        sig_ln2 = sig_ln2 - sig_in_fine**2
        limited = sig_ln2 < -0.01 * sig_ln_min**2
    sigma_pix = np.sqrt(np.clip(sig_ln2, 0.0, None)) / d
    half_width = int(math.ceil(_KERNEL_SIGMAS * sigma_pix.max())) if sigma_pix.max() > 0 else 0
    clean = _bin_average_linear(fine_lam, _gaussian_spread(values, sigma_pix, half_width), edges)
    # ``bad`` is rounding noise (~1e-7) except near the input's ends and gaps. Each value
    # dropped is below 1e-3 of the tolerance, so ``uncovered`` moves by less than that:
    # only a pixel that close to the tolerance could change its mask.
    bad[np.abs(bad) < 1e-3 * _COVERAGE_TOLERANCE] = 0.0
    uncovered = _bin_average_linear(fine_lam, _spread_sparse(bad, sigma_pix, half_width), edges)
    # Pixels that reach beyond the fine grid are uncovered too.
    outside = (edges[:-1] < fine_lam[0]) | (edges[1:] > fine_lam[-1])
    mask = outside | (uncovered > _COVERAGE_TOLERANCE)
    limited = np.interp(arm._centres, fine_lam, limited.astype(float)) > 0.5
    return clean, mask, limited


def _spread_sparse(values, sigma_pix, half_width):
    """`_gaussian_spread` of an array that is mostly zero, computed around its nonzero runs.

    Each run gets a window of ``half_width`` bins either side; the kernel is
    normalised per source bin, so the result is the full spread's. When the
    windows would cover more than a quarter of the array, it is spread whole.
    """
    n = values.size
    out = np.zeros(n)
    nonzero = np.flatnonzero(values)
    if nonzero.size == 0:
        return out
    breaks = np.flatnonzero(np.diff(nonzero) > 2 * half_width + 1)
    starts = nonzero[np.concatenate([[0], breaks + 1])]
    stops = nonzero[np.concatenate([breaks, [nonzero.size - 1]])] + 1
    if np.sum(stops - starts + 2 * half_width) > n / 4:
        return _gaussian_spread(values, sigma_pix, half_width)
    for start, stop in zip(starts, stops):
        lo, hi = max(start - half_width, 0), min(stop + half_width, n)
        out[lo:hi] += _gaussian_spread(values[lo:hi], sigma_pix[lo:hi], half_width)
    return out


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
        (`spectok.adapter.canonical_flux`). Masked and non-finite pixels are
        not used. The arms of a `~specutils.SpectrumList` are merged; a
        ``(wavelength, flux)`` pair of Quantities is also accepted (masked
        values of a ``Masked`` flux are masked pixels), and so is a
        `ModelArrays` (already converted: ``input_resolution`` is then its
        ``sigma``).
    instrument : `Instrument` or str
        The instrument, or a preset name (see `INSTRUMENTS`).
    snr : float
        Signal-to-noise per pixel at the reference flux level (see
        `NoiseModel`).
    redshift : float
        Redshift to apply, > -1.
    rng : int, `numpy.random.Generator` or None
        Seed or generator for the noise.
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
        redshift is ≤ -1, the spectrum is not 1-D or has fewer than two valid
        pixels, or it does not overlap any arm of the instrument.
    TypeError
        If ``spectrum`` is not a spectrum, or ``input_resolution`` is neither
        a number, an array nor a Quantity.
    spectok.adapter.SpectrumInputError
        A spectral axis the adapter refuses: not monotonic, an unknown
        ``meta["medium"]``, or air wavelengths below 2000 Å.
    astropy.units.UnitConversionError
        If the spectral axis is not spectral, or the flux is not a flux
        (magnitudes, a length).

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
                "lsf_sigma": arm._sigma(arm._centres) * u.AA,
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
    """

    wavelength: np.ndarray
    flux: np.ndarray
    unit: u.UnitBase
    good: np.ndarray
    sigma: object = None

    @classmethod
    def from_spectrum(cls, spectrum, input_resolution="auto"):
        """Convert a `~specutils.Spectrum`, `~specutils.SpectrumList` or Quantity pair.

        Parameters and errors are those of the ``spectrum`` and
        ``input_resolution`` arguments of `observe`.

        Examples
        --------
        >>> import numpy as np, astropy.units as u
        >>> from spectok.datasets.instruments import ModelArrays
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
        >>> from spectok.datasets.instruments import ModelArrays
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
    ValueError
        As for `observe`.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from spectok.datasets.instruments import ModelArrays, observe_arrays
    >>> lam = np.linspace(3000.0, 11000.0, 40_000) * u.AA
    >>> model = ModelArrays.from_spectrum((lam, np.ones(lam.size) * u.Unit("erg/(s cm2 AA)")))
    >>> [flux.size for flux, ivar, mask, _ in observe_arrays(model, "desi", snr=10, rng=1)]
    [2751, 2326, 2881]
    """
    inst = get_instrument(instrument)
    snr = _check_snr(snr)
    z = float(redshift)
    if not (np.isfinite(z) and z > -1):
        raise ValueError(f"redshift must be finite and > -1, got {redshift}")
    rng = np.random.default_rng(rng)
    lam = model.wavelength * (1.0 + z)
    flux = model.flux / (1.0 + z)
    good = model.good
    sigma_in = None if model.sigma is None else model.sigma * (1.0 + z)

    results = [(arm, *_observe_arm(arm, lam, flux, good, sigma_in)) for arm in inst.arms]
    if all(mask.all() for _, _, mask, _ in results):
        lo, hi = inst.wavelength_range.value
        raise ValueError(
            f"the spectrum (observed frame {lam[good][0]:.1f}-{lam[good][-1]:.1f} Å at z={z:g}) "
            f"does not cover any pixel of {inst.name!r} ({lo:.1f}-{hi:.1f} Å)")

    covered = np.concatenate([clean[~mask] for _, clean, mask, _ in results])
    covered_lam = np.concatenate([arm._centres[~mask] for arm, _, mask, _ in results])
    ref = inst.noise.reference_flux(covered, covered_lam)

    observed = []
    for _, clean, mask, limited in results:
        sigma = inst.noise.sigma(clean, snr, reference_flux=ref)
        obs = clean + sigma * rng.standard_normal(clean.size) if noise else clean.copy()
        ivar = 1.0 / sigma**2
        obs[mask] = 0.0
        ivar[mask] = 0.0
        observed.append((obs, ivar, mask, limited))
    return observed
