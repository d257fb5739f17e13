"""Quasar spectra: a parametric simulator and the real examples that ship in PyPI packages.

The simulator (`quasar_spectrum`, `QuasarGenerator`, `simulate_quasars`)
builds a rest-frame type-1 quasar from published empirical ingredients:

- a power-law continuum f_ν ∝ ν^α_ν with α_ν ~ N(−0.44, 0.30) (the SDSS
  composite slope of Vanden Berk et al. 2001, with the object-to-object
  scatter of Richards et al. 2003), steepening to α_ν = −1.76 below 1000 Å
  (Telfer et al. 2002), plus hot dust emission (a 1200-1400 K black body)
  that dominates beyond ~1 µm (Glikman et al. 2006);
- broad and narrow emission lines at the equivalent widths of the Vanden
  Berk et al. (2001) composite (`QUASAR_LINES`; near-infrared lines from the
  Glikman et al. 2006 composite), each scattered log-normally by
  0.20 dex about a shared per-object strength factor, with the Baldwin
  effect (EW ∝ L^−0.2 for the high-ionisation UV lines, Dietrich et al.
  2002). Broad lines are Gaussian with FWHM log-normal about 4000 km/s
  (0.15 dex; Shen et al. 2011), narrow lines 300-800 km/s;
- the Balmer continuum (Grandi 1982) and Fe II pseudo-continua in the UV
  (2200-3090 Å) and optical (4434-4684 and 5147-5350 Å) with Fe II/Mg II
  and R₄₅₇₀ = Fe II/Hβ strengths drawn from their observed ranges;
- intrinsic SMC-like reddening (Pei 1992; Hopkins et al. 2004), E(B−V)
  exponential with mean 0.04 mag;
- host-galaxy starlight at z < 0.8 from `galaxy_spectrum`, contributing a
  random 0-60 % of the light at 5100 Å, where the drawn template library
  covers the rest-frame range (otherwise no host);
- intergalactic absorption: the mean Lyman-series and Lyman-continuum
  optical depths of Madau (1995), with line-of-sight scatter (a per-sight-line
  log-normal factor of 0.2 dex on τ) and forest-like small-scale structure
  (a log-normal field on τ, correlated over ~100 km/s).

Luminosities are log-uniform in λL_λ(3000 Å) = 10^44.5-10^47 erg s⁻¹ and
fluxes follow from the Planck18 luminosity distance.

The real examples (`load_quasar_examples`) are the 27 near-infrared IRTF/SpeX
quasar spectra of Glikman et al. (2006) shipped with ``splat``, and three
optical quasar spectra (SDSS/BOSS, Keck/ESI, Magellan/MagE) and one
X-shooter NIR-arm spectrum shipped as test data with ``linetools``.
"""

import functools
import gzip
import io
import math

import astropy.units as u
import numpy as np
from astropy.table import Table
from scipy.ndimage import gaussian_filter1d

from .dataset import SpectrumDataset
from .fetch import _open_zip, list_members, read_member
from .galaxies import GalaxyGenerator
from ..adapter import FLAM
from ..adapter.prepare import check_spectra
from ..adapter.units import as_wavelength_range
from ._binning import add_gaussian_line, bin_average_linear
from ._checks import check_redshift
from .observing import ModelArrays
from ._population import observe_population, population_arguments

__all__ = ["QUASAR_LINES", "smc_extinction", "igm_transmission", "quasar_spectrum",
           "QuasarGenerator", "simulate_quasars", "load_quasar_examples"]

_C_KMS = 299792.458
#: FWHM / σ of a Gaussian, rounded: the shipped model's quasars were drawn with it, and the
#: exact 2√(2 ln 2) (`FWHM_PER_SIGMA`) moves every simulated quasar by up to 2e-5 of its flux.
_FWHM_PER_SIGMA_ROUNDED = 2.3548
_LYA = 1215.67
_LYMAN_LIMIT = 911.75

#: Emission lines of the simulator: name -> (vacuum rest wavelength in Å,
#: composite equivalent width in Å, kind). Equivalent widths from Vanden
#: Berk et al. (2001, AJ 122, 549, table 2); He I, Paβ and Paα measured on
#: the Glikman et al. (2006, ApJ 640, 579) near-infrared composite.
#: ``kind`` is ``"broad"``, ``"broad-uv"`` (high-ionisation, with a Baldwin
#: effect) or ``"narrow"``.
QUASAR_LINES = {
    "Lyα": (1215.67, 92.91, "broad-uv"),
    "N V": (1240.14, 1.11, "broad-uv"),
    "Si IV+O IV]": (1399.8, 8.13, "broad-uv"),
    "C IV": (1549.06, 23.78, "broad-uv"),
    "C III]": (1908.73, 21.19, "broad"),
    "Mg II": (2798.75, 32.28, "broad"),
    "[Ne V]": (3426.84, 1.18, "narrow"),
    "[O II]": (3728.48, 1.56, "narrow"),
    "[Ne III]": (3869.85, 1.38, "narrow"),
    "Hδ": (4102.89, 5.05, "broad"),
    "Hγ": (4341.68, 12.62, "broad"),
    "Hβ": (4862.68, 46.21, "broad"),
    "[O III]4959": (4960.30, 3.50, "narrow"),
    "[O III]5007": (5008.24, 13.23, "narrow"),
    "Hα": (6564.61, 194.52, "broad"),
    "He I": (10833.3, 80.0, "broad"),
    "Paβ": (12821.6, 50.0, "broad"),
    "Paα": (18756.1, 52.0, "broad"),
}

_EW_SCATTER_DEX = 0.20
_FWHM_BROAD_KMS = 4000.0
_FWHM_SCATTER_DEX = 0.15
_BALDWIN_SLOPE = -0.2
_LOG_L3000_RANGE = (44.5, 47.0)
_LOG_L3000_PIVOT = 45.75
_HOST_MAX_Z = 0.8
_EW_LABELS = {"lya": "Lyα", "civ": "C IV", "mgii": "Mg II", "hbeta": "Hβ", "halpha": "Hα"}

# Madau (1995, ApJ 441, 18): Lyman-series coefficients A_j of
# τ_j = A_j (λ_obs / λ_j)^3.46.
_MADAU_SERIES = ((1215.67, 3.6e-3), (1025.72, 1.7e-3), (972.537, 1.2e-3), (949.743, 9.3e-4))

# Pei (1992, ApJ 395, 130), table 4, SMC: a_i, λ_i (µm), b_i, n_i.
_PEI_SMC = ((185.0, 0.042, 90.0, 2.0), (27.0, 0.08, 5.50, 4.0), (0.005, 0.22, -1.95, 2.0),
            (0.010, 9.7, -1.95, 2.0), (0.012, 18.0, -1.80, 2.0), (0.030, 25.0, 0.0, 2.0))
_PEI_SMC_RV = 2.93

# Fe II pseudo-continuum windows (Å): UV (Vestergaard & Wilkes 2001) and the
# optical blends of Boroson & Green (1992).
_FEII_UV = (2200.0, 3090.0)
_FEII_OPTICAL = ((4434.0, 4684.0), (5147.0, 5350.0))


# --------------------------------------------------------------------------
# Physical ingredients
# --------------------------------------------------------------------------


def smc_extinction(wavelength, ebv):
    """SMC extinction A_λ in magnitudes, Pei (1992) fit, R_V = 2.93.

    Parameters
    ----------
    wavelength : `~astropy.units.Quantity` or float
        Rest wavelength (any spectral unit; floats are Å).
    ebv : float
        Colour excess E(B−V) in magnitudes.

    Returns
    -------
    `numpy.ndarray`
        A_λ in magnitudes.

    Examples
    --------
    >>> import astropy.units as u
    >>> from spectok.datasets import smc_extinction
    >>> a_v = smc_extinction(5500 * u.AA, ebv=0.1)
    >>> bool(0.27 < a_v < 0.31)  # R_V = 2.93
    True
    """
    lam = u.Quantity(wavelength, u.AA).to_value(u.um, equivalencies=u.spectral())
    lam = np.asarray(lam, dtype=float)
    xi = sum(a / ((lam / w) ** n + (w / lam) ** n + b) for a, w, b, n in _PEI_SMC)
    return ebv * (1.0 + _PEI_SMC_RV) * xi


def igm_transmission(wavelength, redshift, rng=None, *, scatter=True):
    """Intergalactic transmission exp(−τ) towards a source at ``redshift``.

    The mean optical depth is that of Madau (1995): Lyman-series line
    blanketing by the Lyα forest (Lyα to Lyδ) and photoelectric absorption
    by Lyman-limit systems. With ``scatter``, each sight line gets a
    log-normal factor on τ (0.2 dex) and forest-like structure: τ is
    multiplied by a unit-mean log-normal field (σ = 0.8 in ln τ) correlated
    over ~100 km/s, so a sight line shows discrete absorption troughs while
    its mean transmission stays close to the Madau model.

    Parameters
    ----------
    wavelength : `~astropy.units.Quantity` or array of float
        Rest-frame wavelengths (floats are Å), increasing.
    redshift : float
        Redshift of the source, ≥ 0.
    rng : int, `numpy.random.Generator` or None
        Seed or generator for the scatter.
    scatter : bool
        Draw line-of-sight scatter (otherwise the mean model).

    Returns
    -------
    `numpy.ndarray`
        Transmission in [0, 1] at each wavelength.

    Raises
    ------
    ValueError
        If ``redshift`` is not a finite, non-negative number.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.datasets import igm_transmission
    >>> lam = np.linspace(1050.0, 1180.0, 200)
    >>> [round(float(igm_transmission(lam, z, scatter=False).mean()), 2) for z in (2, 3, 4)]
    [0.89, 0.72, 0.5]
    """
    lam = np.asarray(u.Quantity(wavelength, u.AA).to_value(u.AA, equivalencies=u.spectral()),
                     dtype=float)
    redshift = check_redshift(redshift)
    lam_obs = lam * (1.0 + redshift)
    tau = np.zeros_like(lam)
    for line, coefficient in _MADAU_SERIES:
        tau += np.where(lam < line, coefficient * (lam_obs / line) ** 3.46, 0.0)
    below_limit = lam < _LYMAN_LIMIT
    if below_limit.any():
        xc = lam_obs[below_limit] / _LYMAN_LIMIT
        xe = 1.0 + redshift
        tau[below_limit] += (0.25 * xc**3 * (xe**0.46 - xc**0.46)
                             + 9.4 * xc**1.5 * (xe**0.18 - xc**0.18)
                             - 0.7 * xc**3 * (xc**-1.32 - xe**-1.32)
                             - 0.023 * (xe**1.68 - xc**1.68))
    tau = np.clip(tau, 0.0, None)
    if scatter and np.any(tau > 0):
        rng = np.random.default_rng(rng)
        tau = tau * 10.0 ** rng.normal(0.0, 0.2)
        tau = tau * _lognormal_field(lam, rng, sigma=0.8, correlation_kms=100.0)
    return np.exp(-tau)


def _lognormal_field(lam, rng, sigma, correlation_kms):
    """A unit-mean log-normal random field on the grid ``lam``, correlated in velocity."""
    step_kms = np.median(np.diff(np.log(lam))) * _C_KMS if len(lam) > 1 else correlation_kms
    smooth = max(correlation_kms / step_kms, 1e-3)
    delta = gaussian_filter1d(rng.standard_normal(len(lam)), smooth, mode="wrap")
    delta /= max(float(delta.std()), 1e-12)
    return np.exp(sigma * delta - sigma**2 / 2)


def _blackbody_lambda(lam_aa, temperature):
    """Planck B_λ up to a constant, λ in Å."""
    x = 1.4387769e8 / (lam_aa * temperature)  # hc / (λ k T), λ in Å
    return lam_aa**-5.0 / np.expm1(np.clip(x, 1e-8, 700.0))


def _band(grid, lo, hi, sigma_ln, rng):
    """A blended pseudo-continuum between ``lo`` and ``hi``: many broadened
    multiplets of random strength, normalised to unit integral.

    Each multiplet is evaluated within ±8 σ of its centre (its tail beyond
    adds less than e⁻³² of its peak).
    """
    centres = np.arange(lo, hi, 12.0)
    strengths = rng.gamma(2.0, 1.0, len(centres))
    profile = np.zeros_like(grid)
    log_grid = np.log(grid)
    for centre, strength in zip(centres, strengths):
        first, stop = np.searchsorted(log_grid, math.log(centre) + np.array([-8, 8]) * sigma_ln)
        offset = (log_grid[first:stop] - math.log(centre)) / sigma_ln
        profile[first:stop] += strength * np.exp(-0.5 * offset**2)
    area = np.trapezoid(profile, grid)
    return profile / area if area > 0 else profile


# --------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------


def quasar_spectrum(rng=None, *, redshift=1.0, wavelength_range=None, host_templates=None):
    """One synthetic rest-frame quasar spectrum with its physical labels.

    See the module docstring for the model and its references.

    Parameters
    ----------
    rng : int, `numpy.random.Generator` or None
        Seed or generator.
    redshift : float
        Redshift of the quasar (sets the IGM absorption, the flux through
        the luminosity distance, and whether host light is added).
    wavelength_range : `~astropy.units.Quantity`, optional
        Rest-frame (min, max) to build; default 800 Å - 3 µm.
    host_templates : sequence of `~specutils.Spectrum`, optional
        SSP templates (or a `~spectok.datasets.SpectrumDataset` of them) for
        the host galaxy (see `~spectok.datasets.galaxy_spectrum`); without
        them no host is added.

    Returns
    -------
    spectrum : `~specutils.Spectrum`
        Rest frame, vacuum wavelengths on a log-λ grid (Δ ln λ = 1e-4), flux
        density in erg s⁻¹ cm⁻² Å⁻¹ times (1 + z), so that
        `~spectok.datasets.observe` at ``redshift`` gives the observed flux.
        The IGM absorption is included.
    labels : dict
        ``alpha_nu`` (continuum slope), ``log_l3000`` (log10 λL_λ at 3000 Å,
        erg/s, the luminosity proxy), ``ebv`` (intrinsic E(B−V), mag),
        ``fwhm_broad`` (km/s), ``line_strength`` (shared EW factor),
        ``ew_<line>`` (rest-frame equivalent widths in Å of Lyα, C IV, Mg II,
        Hβ and Hα against the unreddened continuum), ``feii_uv`` and
        ``r4570`` (Fe II strengths), ``host_fraction`` (host share of the
        light at 5100 Å) and ``forest_transmission`` (mean IGM transmission
        at 1070-1170 Å rest, NaN when not built).

    Raises
    ------
    TypeError
        If ``host_templates`` is one spectrum rather than a list of them.
    ValueError
        If ``redshift`` is negative, ``wavelength_range`` is empty, or no
        host template has an age (see `~spectok.datasets.galaxy_spectrum`).

    Examples
    --------
    >>> from spectok.datasets import quasar_spectrum
    >>> spec, labels = quasar_spectrum(rng=3, redshift=2.0)
    >>> spec.spectral_axis.unit, -1.5 < labels["alpha_nu"] < 0.6
    (Unit("Angstrom"), True)
    """
    return QuasarGenerator(host_templates).spectrum(rng, redshift=redshift,
                                                    wavelength_range=wavelength_range)


class QuasarGenerator:
    """The quasar simulator of `quasar_spectrum`, with its host templates prepared once.

    Parameters
    ----------
    host_templates : sequence of `~specutils.Spectrum`, optional
        SSP templates (or a `~spectok.datasets.SpectrumDataset` of them) for
        the host galaxy (see `~spectok.datasets.GalaxyGenerator`); without
        them no host is added.

    Raises
    ------
    TypeError
        If ``host_templates`` is one spectrum rather than a list of them.
    ValueError
        If no host template has a positive age.

    Examples
    --------
    >>> from spectok.datasets import QuasarGenerator
    >>> generator = QuasarGenerator()
    >>> model, labels = generator.model(rng=3, redshift=2.0)
    >>> model.unit, float(model.wavelength[0]) >= 800.0
    (Unit("erg / (Angstrom s cm2)"), True)
    >>> spectrum, labels = generator.spectrum(rng=3, redshift=2.0)
    >>> spectrum.meta["redshift"]
    2.0
    """

    def __init__(self, host_templates=None):
        if host_templates is not None:   # one Spectrum would be iterated without end
            host_templates = list(check_spectra(host_templates, "host_templates",
                                                "template spectra"))
        self._hosts = GalaxyGenerator(host_templates) if host_templates else None

    def model(self, rng=None, *, redshift=1.0, wavelength_range=None):
        """One quasar as `~spectok.datasets.ModelArrays`, with its labels.

        Parameters and errors as for `quasar_spectrum`.

        Returns
        -------
        model : `~spectok.datasets.ModelArrays`
            The rest-frame spectrum as the arrays `~spectok.datasets.observe`
            takes without converting a `~specutils.Spectrum`.
        labels : dict
            As for `quasar_spectrum`.
        """
        model, _, labels = self._draw(rng, redshift, wavelength_range)
        return model, labels

    def spectrum(self, rng=None, *, redshift=1.0, wavelength_range=None):
        """One quasar as a `~specutils.Spectrum`, with its labels.

        Parameters, returns and errors as for `quasar_spectrum`.
        """
        model, meta, labels = self._draw(rng, redshift, wavelength_range)
        return model.to_spectrum(meta), labels

    def _draw(self, rng, redshift, wavelength_range):
        rng = np.random.default_rng(rng)
        redshift = check_redshift(redshift)
        lo, hi = 800.0, 30000.0
        if wavelength_range is not None:
            wr = as_wavelength_range(wavelength_range, "wavelength_range")
            lo, hi = max(wr[0], 500.0), wr[1]
        if not hi > lo * 1.01:
            raise ValueError(f"empty rest-frame range {wavelength_range}")
        step = 1e-4
        n = int(math.ceil(math.log(hi / lo) / step))
        edges = lo * np.exp(step * np.arange(n + 1))
        grid = np.sqrt(edges[:-1] * edges[1:])

        # Draws, always in the same order so that a seed fixes everything.
        alpha_nu = rng.normal(-0.44, 0.30)
        log_l3000 = rng.uniform(*_LOG_L3000_RANGE)
        ebv = min(rng.exponential(0.04), 0.5)
        dust_temperature = rng.uniform(1200.0, 1400.0)
        dust_ratio = 10.0 ** rng.uniform(0.0, 0.6)  # hot dust / power law at 2.2 µm
        line_strength = 10.0 ** rng.normal(0.0, 0.10)
        ew_scatter = rng.normal(0.0, _EW_SCATTER_DEX, len(QUASAR_LINES))
        fwhm_broad = _FWHM_BROAD_KMS * 10.0 ** rng.normal(0.0, _FWHM_SCATTER_DEX)
        fwhm_narrow = rng.uniform(300.0, 800.0)
        balmer_ratio = rng.uniform(0.05, 0.3)  # Balmer continuum / power law at 3646 Å
        feii_uv = 10.0 ** rng.uniform(0.0, 0.6)  # EW(Fe II UV) / EW(Mg II)
        r4570 = 10.0 ** rng.uniform(-1.0, 0.2)  # EW(Fe II 4434-4684) / EW(Hβ)
        host_fraction = rng.uniform(0.0, 0.6)

        # Continuum, normalised to 1 at 3000 Å.
        power = (grid / 3000.0) ** (-(alpha_nu + 2.0))
        euv = grid < 1000.0
        power[euv] = (1000.0 / 3000.0) ** (-(alpha_nu + 2.0)) * (grid[euv] / 1000.0) ** (1.76 - 2.0)
        hot_dust = _blackbody_lambda(grid, dust_temperature)
        hot_dust *= dust_ratio * (22000.0 / 3000.0) ** (-(alpha_nu + 2.0)) / _blackbody_lambda(
            22000.0, dust_temperature)
        balmer_edge = 3646.0
        balmer = np.where(grid <= balmer_edge,
                          _blackbody_lambda(grid, 15000.0) * -np.expm1(-(grid / balmer_edge) ** 3),
                          0.0)
        balmer_at_edge = _blackbody_lambda(balmer_edge, 15000.0) * -math.expm1(-1.0)
        balmer *= balmer_ratio * (balmer_edge / 3000.0) ** (-(alpha_nu + 2.0)) / balmer_at_edge
        continuum = power + hot_dust + balmer

        # Lines, as equivalent widths on the continuum at their wavelength.
        sigma_broad = fwhm_broad / _C_KMS / _FWHM_PER_SIGMA_ROUNDED
        sigma_narrow = fwhm_narrow / _C_KMS / _FWHM_PER_SIGMA_ROUNDED
        lines = np.zeros_like(grid)
        ews = {}
        for (name, (wave, ew, kind)), scatter in zip(QUASAR_LINES.items(), ew_scatter):
            ew_i = ew * line_strength * 10.0 ** scatter
            if kind == "broad-uv":
                ew_i *= 10.0 ** (_BALDWIN_SLOPE * (log_l3000 - _LOG_L3000_PIVOT))
            ews[name] = ew_i
            if not edges[0] < wave < edges[-1]:
                continue
            sigma = sigma_narrow if kind == "narrow" else sigma_broad
            local = np.interp(wave, grid, continuum)
            add_gaussian_line(lines, edges, wave, sigma, ew_i * local)
        feii = np.zeros_like(grid)
        mg2_local = np.interp(2798.75, grid, continuum)
        feii += feii_uv * ews["Mg II"] * mg2_local * _band(grid, *_FEII_UV, sigma_broad, rng)
        hb_local = np.interp(4862.68, grid, continuum)
        for window in _FEII_OPTICAL:
            feii += r4570 * ews["Hβ"] * hb_local * _band(grid, *window, sigma_broad, rng)

        quasar = (continuum + lines + feii) * 10.0 ** (-0.4 * smc_extinction(grid, ebv))

        # Host galaxy at low redshift, where the templates cover the rest frame.
        host = np.zeros_like(grid)
        if self._hosts is not None and redshift < _HOST_MAX_Z:
            host = _host_light(self._hosts, rng, redshift, edges, grid, quasar, host_fraction)
        if not host.any():
            host_fraction = 0.0

        transmission = igm_transmission(grid, redshift, rng)
        forest = (grid > 1070.0) & (grid < 1170.0)
        forest_transmission = float(transmission[forest].mean()) if forest.any() else np.nan

        # Flux scale: λL_λ(3000 Å) at the luminosity distance, (1 + z) for observe().
        from astropy.cosmology import Planck18

        distance_cm = Planck18.luminosity_distance(max(redshift, 1e-3)).to_value(u.cm)
        l_lambda_3000 = 10.0**log_l3000 / 3000.0
        scale = l_lambda_3000 / (4 * math.pi * distance_cm**2) * (1.0 + redshift)
        flux = (quasar + host) * transmission * scale

        labels = {
            "alpha_nu": float(alpha_nu), "log_l3000": float(log_l3000), "ebv": float(ebv),
            "fwhm_broad": float(fwhm_broad), "line_strength": float(line_strength),
            **{f"ew_{key}": float(ews[name]) for key, name in _EW_LABELS.items()},
            "feii_uv": float(feii_uv), "r4570": float(r4570),
            "host_fraction": float(host_fraction), "forest_transmission": forest_transmission,
        }
        meta = {"medium": "vacuum", "generator": "spectok.datasets.quasar_spectrum",
                "redshift": float(redshift), **labels}
        model = ModelArrays(grid, flux, FLAM, np.ones(grid.size, dtype=bool))
        return model, meta, labels


def _host_light(hosts, rng, redshift, edges, grid, quasar, host_fraction):
    """Host starlight on ``grid`` making up ``host_fraction`` of the light at 5100 Å,
    or zeros when the templates do not cover the whole rest-frame range."""
    try:
        galaxy, _ = hosts.model(rng, redshift=redshift,
                                  wavelength_range=[edges[0], edges[-1]] * u.AA)
    except ValueError:
        return np.zeros_like(grid)
    lam, flux = galaxy.wavelength, galaxy.flux
    # The outer 5 % of the range only pads the instrument's LSF: the edge
    # values are carried there.
    if lam[0] > edges[0] * 1.05 or lam[-1] < edges[-1] / 1.05 or not lam[0] < 5100.0 < lam[-1]:
        return np.zeros_like(grid)
    host = bin_average_linear(lam, flux, edges)
    at_5100 = float(np.interp(5100.0, lam, flux))
    if not at_5100 > 0:
        return np.zeros_like(grid)
    quasar_5100 = float(np.interp(5100.0, grid, quasar))
    return host * (host_fraction / (1.0 - host_fraction) * quasar_5100 / at_5100)


def simulate_quasars(n, instrument, z=(0.1, 4.5), seed=0, snr=(3.0, 50.0), host_templates=None,
                     n_jobs=None):
    """A labelled data set of synthetic quasars observed with an instrument.

    Quasar ``i`` is drawn from its own random stream (``SeedSequence(seed)
    .spawn``), so the first quasars do not change when ``n`` grows.
    Redshifts are uniform in ``z``, S/N log-uniform in ``snr``. The rest
    frame is built by `quasar_spectrum` over the range the instrument sees.

    Parameters
    ----------
    n : int
        Number of quasars.
    instrument : str or `~spectok.datasets.Instrument`
        Instrument or preset name.
    z : float or (float, float)
        Redshift, or range to draw it from uniformly.
    seed : int
        Random seed.
    snr : float or (float, float)
        S/N per pixel at the median flux, or range (log-uniform).
    host_templates : sequence of `~specutils.Spectrum`, optional
        SSP templates for host galaxies at z < 0.8; default
        `~spectok.datasets.load_ssp_templates`. Pass ``[]`` for no hosts.
    n_jobs : int, optional
        Worker processes (joblib's convention: None is one unless a
        ``joblib.parallel_config`` sets it, -1 is all cores); the result does
        not depend on it.

    Returns
    -------
    `~spectok.datasets.SpectrumDataset`
        Observed spectra with labels ``id``, ``z``, ``snr`` and those of
        `quasar_spectrum`.

    Raises
    ------
    TypeError
        If ``host_templates`` is one spectrum rather than a list of them.
    ValueError
        If ``n`` is not an integer ≥ 1, ``z`` or ``snr`` is not a finite
        number or an ordered pair of them (``z`` ≥ 0, ``snr`` > 0), ``seed``
        is not a non-negative integer (or a sequence of them) or None, or
        ``n_jobs`` is not a nonzero integer or None.

    Examples
    --------
    >>> from spectok.datasets import simulate_quasars
    >>> ds = simulate_quasars(3, "sdss", z=(2.0, 3.0), host_templates=[])
    >>> len(ds), bool(((ds.labels["z"] >= 2) & (ds.labels["z"] <= 3)).all())
    (3, True)
    """
    n, inst, (z_lo, z_hi), (snr_lo, snr_hi) = population_arguments(n, instrument, z, snr,
                                                                   n_jobs, seed)
    if host_templates is None:
        from .templates import load_ssp_templates

        host_templates = load_ssp_templates().spectra
    generator = QuasarGenerator(host_templates)

    spectra, rows = observe_population(generator.model, n, inst, seed, (z_lo, z_hi),
                                       (snr_lo, snr_hi), kind="quasar", id_tag="qso",
                                       n_jobs=n_jobs)
    names = list(rows[0])
    table = Table(rows=[[row[k] for k in names] for row in rows], names=names)
    table["ebv"].unit = u.mag
    table["fwhm_broad"].unit = u.km / u.s
    for name in table.colnames:
        if name.startswith("ew_"):
            table[name].unit = u.AA
    return SpectrumDataset(spectra, table, name=f"quasars-{inst.name}",
                           meta={"seed": seed, "instrument": inst.name, "z": (z_lo, z_hi),
                                 "snr": (snr_lo, snr_hi)})


# --------------------------------------------------------------------------
# Real quasars
# --------------------------------------------------------------------------

_GLIKMAN_DIR = "splat/resources/SpectralTemplates/GlikmanQuasars/"
_LINETOOLS_DIR = "linetools/spectra/tests/files/"


def _glikman_spectrum(text, name):
    """One Glikman et al. (2006) file: λ (µm), f_λ, σ; line 1 adds the redshift."""
    from astropy.nddata import StdDevUncertainty
    from specutils import Spectrum

    lines = text.splitlines()
    first = lines[0].split()
    if len(first) < 4:
        raise ValueError(f"{name}: first line has no redshift column")
    redshift = float(first[3])
    rows = np.array([[float(v) for v in line.split()[:3]] for line in lines if line.strip()])
    lam, flux, sigma = rows.T
    good = np.isfinite(flux) & np.isfinite(sigma) & (sigma > 0)
    unit = u.erg / u.s / u.cm**2 / u.AA
    spectrum = Spectrum(spectral_axis=lam * u.um, flux=flux * unit,
                        uncertainty=StdDevUncertainty(np.where(good, sigma, np.inf)),
                        mask=~good, meta={"medium": "vacuum", "source": name})
    return spectrum, redshift


def _linetools_spectra(zf):
    """The optical quasars of the linetools test data, as (id, instrument, Spectrum)."""
    from astropy.io import fits
    from astropy.nddata import InverseVariance, StdDevUncertainty
    from specutils import Spectrum

    def hdus(member):
        return fits.open(io.BytesIO(read_member(zf, _LINETOOLS_DIR + member, decompress=True)))

    def log_grid(header, n):
        step = header.get("CD1_1", header.get("CDELT1"))
        return 10.0 ** (header["CRVAL1"] + step * np.arange(n))

    out = []
    with hdus("SDSSJ220248.31+123656.3.fits") as f:
        flux, ivar = f[0].data.astype(float), f[1].data.astype(float)
        lam = 10.0 ** f[2].data.astype(float)
        unit = 1e-17 * u.erg / u.s / u.cm**2 / u.AA
        out.append(("SDSSJ220248.31+123656.3", "BOSS",
                    Spectrum(spectral_axis=lam * u.AA, flux=flux * unit,
                             uncertainty=InverseVariance(ivar), mask=~(ivar > 0),
                             meta={"medium": "vacuum"})))
    for name, instrument, flux_file, error_file in (
            ("PH957", "Keck/ESI", "PH957_f.fits", "PH957_e.fits"),
            ("UM184", "Magellan/MagE", "UM184_nF.fits", "UM184_nE.fits")):
        with hdus(flux_file) as f, hdus(error_file) as e:
            flux, sigma = f[0].data.astype(float), e[0].data.astype(float)
            lam = log_grid(f[0].header, len(flux))
            good = np.isfinite(flux) & (sigma > 0)
            out.append((name, instrument,
                        Spectrum(spectral_axis=lam * u.AA, flux=flux * u.one,
                                 uncertainty=StdDevUncertainty(np.where(good, sigma, np.inf)),
                                 mask=~good, meta={"medium": "vacuum"})))
    with hdus("XShooter_XQ100.fits.gz") as f:
        row = f[1].data[0]
        lam, flux, sigma = (np.asarray(row[c], dtype=float) for c in ("WAVE", "FLUX", "ERR_FLUX"))
        good = np.isfinite(flux) & (sigma > 0)
        unit = u.erg / u.s / u.cm**2 / u.nm
        out.append((f[0].header.get("OBJECT", "XQ100").strip(), "VLT/X-shooter NIR",
                    Spectrum(spectral_axis=lam * u.nm, flux=flux * unit,
                             uncertainty=StdDevUncertainty(np.where(good, sigma, np.inf)),
                             mask=~good, meta={"medium": "vacuum"})))
    return out


@functools.lru_cache(maxsize=1)
def _quasar_examples():
    spectra, rows = [], []
    with _open_zip("splat") as zf:
        for member in list_members(zf, _GLIKMAN_DIR + "SDSSJ*.txt.gz"):
            name = member.rsplit("/", 1)[1].removesuffix(".txt.gz")
            text = gzip.decompress(zf.read(member)).decode()
            spectrum, redshift = _glikman_spectrum(text, name)
            spectra.append(spectrum)
            rows.append((name, "quasar", redshift, "IRTF/SpeX", "Glikman et al. 2006"))
    with _open_zip("linetools") as zf:
        for name, instrument, spectrum in _linetools_spectra(zf):
            spectra.append(spectrum)
            rows.append((name, "quasar", np.nan, instrument, "linetools test data"))
    labels = Table(rows=rows, names=("id", "class", "z", "instrument", "reference"))
    return tuple(spectra), labels


def load_quasar_examples():
    """Load the real quasar spectra that ship in PyPI packages.

    * 27 near-infrared (0.8-2.4 µm, R ≈ 250) IRTF/SpeX spectra of SDSS
      quasars at 0.12 < z < 0.42 from Glikman et al. (2006, ApJ 640, 579),
      in ``splat``, f_λ with uncertainties. Their redshift is the fourth
      number of each file's first line (undocumented); the tests check it
      against the observed Paβ and Paα peaks.
    * From the ``linetools`` test data: an SDSS/BOSS spectrum of
      SDSS J220248.31+123656.3, Keck/ESI of PHL 957 and Magellan/MagE of
      UM 184 (continuum-normalised or in counts) and the X-shooter NIR arm of
      BR J2349−3712 (XQ-100). The package publishes no redshifts for these,
      so ``z`` is NaN.

    Returns
    -------
    `~spectok.datasets.SpectrumDataset`
        Labels ``id``, ``class`` (``"quasar"``), ``z``, ``instrument`` and
        ``reference``.

    Raises
    ------
    WheelFetchError
        If a wheel is not cached and cannot be fetched.

    Examples
    --------
    >>> from spectok.datasets import load_quasar_examples
    >>> ds = load_quasar_examples()  # doctest: +REMOTE_DATA
    >>> len(ds), int((ds.labels["z"] > 0).sum())  # doctest: +REMOTE_DATA
    (31, 27)
    """
    spectra, labels = _quasar_examples()
    return SpectrumDataset(list(spectra), labels.copy(), name="quasar_examples",
                           meta={"shared_spectra": True})
