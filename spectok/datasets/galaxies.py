"""Synthetic galaxy spectra with known physical labels.

Two generators, both ending in `~spectok.datasets.observe`:

``method="fast"`` (`galaxy_spectrum`, `GalaxyGenerator`)
    A mixture of two or three simple-stellar-population (SSP) template
    spectra of different ages from one library, broadened by a stellar
    velocity dispersion, attenuated with the Calzetti et al. (2000) law, plus
    nebular emission lines whose strengths follow a specific-star-formation
    proxy (Hα equivalent width), the Case B Balmer decrement reddened by the
    same dust, and strong-line metallicity calibrations. No dependency beyond
    numpy/scipy/astropy.
``method="bagpipes"``
    Full stellar-population synthesis with BAGPIPES (Carnall et al. 2018):
    delayed-τ star formation history, metallicity, Calzetti dust, nebular
    emission (CLOUDY grids) and velocity dispersion drawn from broad priors.
    Needs the optional extra: ``pip install "spectok[sim]"``.
"""

import dataclasses
import functools
import math

import astropy.units as u
import numpy as np
from astropy.table import Table
from scipy.ndimage import gaussian_filter1d

from ..adapter.prepare import check_spectra
from ..adapter.units import as_wavelength_range
from .dataset import SpectrumDataset
from ._binning import FWHM_PER_SIGMA, add_gaussian_line, bin_average_linear
from ._checks import check_redshift
from .observing import ModelArrays, _input_arrays
from ._population import observe_population, population_arguments

__all__ = ["EMISSION_LINES", "calzetti_attenuation", "galaxy_spectrum", "GalaxyGenerator",
           "simulate_galaxies"]

_C_KMS = 299792.458

#: Vacuum rest wavelengths (Å) of the nebular lines the fast generator adds
#: (SDSS line list, https://classic.sdss.org/dr6/algorithms/linestable.php).
EMISSION_LINES = {
    "[OII]3726": 3727.092,
    "[OII]3729": 3729.875,
    "Hdelta": 4102.892,
    "Hgamma": 4341.684,
    "Hbeta": 4862.683,
    "[OIII]4959": 4960.295,
    "[OIII]5007": 5008.240,
    "[NII]6548": 6549.86,
    "Halpha": 6564.61,
    "[NII]6584": 6585.27,
    "[SII]6717": 6718.29,
    "[SII]6731": 6732.67,
}

# Case B recombination, T = 1e4 K, n_e = 100 cm^-3 (Osterbrock & Ferland 2006, table 4.4).
_CASE_B_HALPHA_HBETA = 2.86
_CASE_B_HGAMMA_HBETA = 0.468
_CASE_B_HDELTA_HBETA = 0.259
# Fixed doublet ratios from atomic physics (Storey & Zeippen 2000).
_OIII_RATIO = 2.98  # 5007 / 4959
_NII_RATIO = 3.05  # 6584 / 6548
# Calzetti et al. (2000): E(B-V)_stars = 0.44 E(B-V)_gas.
_STARS_TO_GAS = 0.44
_RV_CALZETTI = 4.05
# Solar oxygen abundance (Asplund et al. 2009).
_SOLAR_OH = 8.69


# --------------------------------------------------------------------------
# Dust
# --------------------------------------------------------------------------


def _calzetti_k(lam_um):
    """Calzetti et al. (2000) k(λ) = A_λ / E(B-V)_stars, λ in µm (ndarray)."""
    lam_um = np.asarray(lam_um, dtype=float)

    def blue(x):
        return 2.659 * (-2.156 + 1.509 / x - 0.198 / x**2 + 0.011 / x**3) + _RV_CALZETTI

    def red(x):
        return 2.659 * (-1.857 + 1.040 / x) + _RV_CALZETTI

    k = np.where(lam_um < 0.63, blue(np.clip(lam_um, 0.12, 0.63)), red(np.clip(lam_um, 0.63, None)))
    # Below 0.12 µm the law is not defined: extend it linearly in λ from its
    # slope at 0.12-0.125 µm; above 2.2 µm the red branch is used until it
    # reaches zero.
    slope = (blue(0.12) - blue(0.125)) / (0.12 - 0.125)
    k = np.where(lam_um < 0.12, blue(0.12) + slope * (lam_um - 0.12), k)
    return np.clip(k, 0.0, None)


def calzetti_attenuation(wavelength, av):
    """Attenuation A_λ of the Calzetti et al. (2000) starburst law.

    A_λ = A_V k(λ) / R_V with R_V = 4.05 (their eqs. 3-4, valid 0.12-2.2 µm;
    extended linearly below 0.12 µm and clipped at zero in the infrared).

    Parameters
    ----------
    wavelength : `~astropy.units.Quantity` or array
        Rest-frame wavelength (floats are Å).
    av : float
        Attenuation in V, magnitudes (≥ 0).

    Returns
    -------
    ndarray
        A_λ in magnitudes.

    Raises
    ------
    ValueError
        If ``av`` is negative.

    Examples
    --------
    >>> import astropy.units as u
    >>> from spectok.datasets import calzetti_attenuation
    >>> calzetti_attenuation([4400.0, 5500.0] * u.AA, av=1.0).round(3)
    array([1.249, 0.999])
    """
    if not av >= 0:
        raise ValueError(f"av must be non-negative, got {av}")
    if isinstance(wavelength, u.Quantity):
        lam = wavelength.to_value(u.um, equivalencies=u.spectral())
    else:
        lam = np.asarray(wavelength, dtype=float) * 1e-4
    return av * _calzetti_k(lam) / _RV_CALZETTI


# --------------------------------------------------------------------------
# Template handling
# --------------------------------------------------------------------------


def _template_age(spectrum):
    """SSP age in Gyr from ``meta`` (``age_gyr``, ``age`` or ``log_age`` in log10 yr)."""
    meta = spectrum.meta
    for key in ("age_gyr", "age"):
        value = meta.get(key)
        if value is not None:
            if isinstance(value, u.Quantity):
                return float(value.to_value(u.Gyr))
            return float(value)
    if meta.get("log_age") is not None:
        return 10.0 ** float(meta["log_age"]) / 1e9
    return None


def _template_metallicity(spectrum):
    value = spectrum.meta.get("metallicity")
    return np.nan if value is None else float(value)


class _Template:
    """One SSP spectrum as arrays, with its age (Gyr), metallicity and id."""

    def __init__(self, spectrum, age):
        self.age = age
        self.metallicity = _template_metallicity(spectrum)
        self.id = str(spectrum.meta.get("id", ""))
        lam, flux, unit, good, _ = _input_arrays(spectrum)
        #: Valid pixels' vacuum wavelength (Å) and flux, and the flux unit.
        self.arrays = (lam[good], flux[good], unit)


def _usable_templates(templates):
    """`_Template` objects of the templates with a known age, grouped by ``meta["library"]``.

    Every such template is converted here, so an unusable one fails at once.
    """
    spectra = check_spectra(templates, "templates", "template spectra")   # one would never end
    groups = {}
    for k, s in enumerate(spectra):
        age = _template_age(s)
        if age is None or not age > 0:
            continue
        try:
            template = _Template(s, age)
        except ValueError as error:
            raise ValueError(f"template {k} ({s.meta.get('id', 'no id')}): {error}") from None
        groups.setdefault(str(s.meta.get("library", "")), []).append(template)
    if not groups:
        raise ValueError("no template has a positive age in meta['age_gyr'] (or 'age', "
                         "'log_age'); the fast generator needs SSP spectra with ages")
    return groups


def _age_of_universe(z):
    from astropy.cosmology import Planck18

    return float(Planck18.age(z).to_value(u.Gyr))


def _pick_components(groups, rng, max_age):
    """Choose a library and 2-3 templates of distinct ages (no older than ``max_age``)."""
    names = sorted(groups)
    library = names[rng.integers(len(names))]
    pool = groups[library]
    ages = np.array([template.age for template in pool])
    allowed = ages <= max_age if max_age is not None else np.ones(len(pool), bool)
    distinct = np.unique(ages[allowed])
    if len(distinct) < 2:
        # Everything is older than the Universe at this redshift: use the youngest.
        distinct = np.unique(ages)[:3]
    k = min(int(rng.integers(2, 4)), len(distinct))
    chosen_ages = rng.choice(distinct, size=k, replace=False)
    picks = []
    for age in chosen_ages:
        idx = np.flatnonzero(ages == age)
        picks.append(pool[idx[rng.integers(len(idx))]])
    return library, picks


def _log_grid(lo, hi, step):
    n = int(math.floor(math.log(hi / lo) / step)) + 1
    centres = lo * np.exp(step * np.arange(n))
    edges = lo * np.exp(step * (np.arange(n + 1) - 0.5))
    return centres, edges


# --------------------------------------------------------------------------
# Fast generator
# --------------------------------------------------------------------------


def galaxy_spectrum(templates, rng=None, *, redshift=None, wavelength_range=None):
    """One synthetic rest-frame galaxy spectrum from SSP templates (the fast generator).

    Draws, from broad priors: a template library and 2-3 of its SSPs of
    different ages (none older than the Universe at ``redshift``, Planck18)
    with Dirichlet mass fractions w_i; log stellar mass 9-11.5; stellar A_V
    0-1.5 mag (gas A_V = A_V / 0.44); velocity dispersion σ_v 50-300 km/s;
    gas metallicity [M/H]_stars + N(0, 0.15). The specific star-formation
    proxy is the mass fraction the young (≤ 1 Gyr) components formed per
    unit time, sSFR = Σ_young w_i / age_i, plus a residual rate drawn
    log-uniformly in 10⁻¹²·⁵-10⁻¹⁰·⁵ yr⁻¹. It then builds

    - the stellar continuum Σ_i w_i T_i (templates are taken to be per unit
      stellar mass, as SSP libraries are), broadened by σ_v (on top of the
      templates' own resolution) and attenuated by Calzetti et al. (2000);
    - emission lines (`EMISSION_LINES`) of Gaussian width σ_v: Hα from an
      equivalent width EW(Hα) = 30 Å (sSFR / 10⁻¹⁰ yr⁻¹)^0.8 (at most
      1000 Å) on the unreddened continuum, Hβ, Hγ, Hδ from Case B ratios, [NII] and
      [OIII] from the Pettini & Pagel (2004) N2 and O3N2 calibrations at
      the gas metallicity, [OII] and [SII] with random ratios to Hβ/Hα
      (1-4 and 0.15-0.4) and density-sensitive doublet ratios; all
      reddened with the gas A_V, so the Balmer decrement reflects the dust;
    - scaled by 10^(log M - 10).

    Parameters
    ----------
    templates : sequence of `~specutils.Spectrum` or `~spectok.datasets.SpectrumDataset`
        SSP spectra with ``meta["age_gyr"]`` (or ``"age"`` in Gyr / a time
        Quantity, or ``"log_age"`` in log10 yr), optionally
        ``meta["metallicity"]`` ([M/H]), ``meta["library"]`` (components
        are drawn from one library, since libraries normalise differently)
        and ``meta["medium"]`` (``"air"`` is converted to vacuum).
    rng : int, `numpy.random.Generator` or None
        Seed or generator.
    redshift : float, optional
        Redshift the galaxy will be observed at: only limits template ages.
    wavelength_range : `~astropy.units.Quantity`, optional
        Rest-frame (min, max) to build; default the templates' common range.

    Returns
    -------
    spectrum : `~specutils.Spectrum`
        Rest frame, vacuum wavelengths on a log-λ grid, flux in the
        templates' unit (× stellar mass / 10¹⁰).
    labels : dict
        ``log_mstar``, ``log_sfr``, ``log_ssfr``, ``age_mw`` (mass-weighted
        age, Gyr), ``metallicity`` (mass-weighted [M/H]), ``av``, ``sigma_v``
        (km/s), ``halpha_ew`` (Å), ``balmer_decrement`` (observed Hα/Hβ),
        ``n_components`` and ``library``.

    Raises
    ------
    TypeError
        If ``templates`` is one spectrum rather than a list of them.
    ValueError
        If no template has an age, ``redshift`` is not a finite,
        non-negative number (or None), or the chosen templates do not
        overlap ``wavelength_range``.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from specutils import Spectrum
    >>> from spectok.datasets import galaxy_spectrum
    >>> lam = np.arange(3000.0, 9000.0, 2.0)
    >>> ssp = [Spectrum(spectral_axis=lam * u.AA, flux=(lam / 5000.0) ** p * u.one,
    ...                 meta={"age_gyr": age, "metallicity": 0.0})
    ...        for p, age in [(-2.0, 0.1), (0.0, 1.0), (1.0, 10.0)]]
    >>> spec, labels = galaxy_spectrum(ssp, rng=1)
    >>> sorted(labels)[:4], 50 <= labels["sigma_v"] <= 300
    (['age_mw', 'av', 'balmer_decrement', 'halpha_ew'], True)
    """
    return GalaxyGenerator(templates).spectrum(rng, redshift=redshift,
                                               wavelength_range=wavelength_range)


class GalaxyGenerator:
    """The fast galaxy generator of `galaxy_spectrum`, with its templates prepared once.

    `galaxy_spectrum` groups and checks its templates on every call; a
    generator does it once and converts each template's arrays on first use,
    which is what a stream of many galaxies (a simulated population, a
    training source) wants.

    Parameters
    ----------
    templates : sequence of `~specutils.Spectrum` or `~spectok.datasets.SpectrumDataset`
        SSP spectra with ages, as for `galaxy_spectrum`.

    Raises
    ------
    TypeError
        If ``templates`` is one spectrum rather than a list of them.
    ValueError
        If no template has a positive age.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from specutils import Spectrum
    >>> from spectok.datasets import GalaxyGenerator
    >>> lam = np.arange(3000.0, 9000.0, 2.0)
    >>> ssp = [Spectrum(spectral_axis=lam * u.AA, flux=(lam / 5000.0) ** p * u.one,
    ...                 meta={"age_gyr": age}) for p, age in [(-2.0, 0.1), (1.0, 10.0)]]
    >>> generator = GalaxyGenerator(ssp)
    >>> model, labels = generator.model(rng=1, redshift=0.5)
    >>> model.wavelength.shape == model.flux.shape, labels["n_components"]
    (True, 2)
    >>> spectrum, labels = generator.spectrum(rng=1, redshift=0.5)
    >>> spectrum.meta["generator"]
    'spectok.datasets.galaxy_spectrum'

    """

    def __init__(self, templates):
        self._groups = _usable_templates(templates)

    def model(self, rng=None, *, redshift=None, wavelength_range=None):
        """One galaxy as `~spectok.datasets.ModelArrays`, with its labels.

        Parameters and errors as for `galaxy_spectrum`.

        Returns
        -------
        model : `~spectok.datasets.ModelArrays`
            The rest-frame spectrum as the arrays `~spectok.datasets.observe`
            takes without converting a `~specutils.Spectrum`.
        labels : dict
            As for `galaxy_spectrum`.
        """
        model, _, labels = self._draw(rng, redshift, wavelength_range)
        return model, labels

    def spectrum(self, rng=None, *, redshift=None, wavelength_range=None):
        """One galaxy as a `~specutils.Spectrum`, with its labels.

        Parameters, returns and errors as for `galaxy_spectrum`.
        """
        model, meta, labels = self._draw(rng, redshift, wavelength_range)
        return model.to_spectrum(meta), labels

    def _draw(self, rng, redshift, wavelength_range):
        rng = np.random.default_rng(rng)
        max_age = None if redshift is None else _age_of_universe(check_redshift(redshift))
        library, picks = _pick_components(self._groups, rng, max_age)

        # Physical draws (always in the same order, so a seed fixes everything).
        k = len(picks)
        weights = rng.dirichlet(np.ones(k))
        log_mstar = rng.uniform(9.0, 11.5)
        residual_ssfr = 10.0 ** rng.uniform(-12.5, -10.5)
        av = rng.uniform(0.0, 1.5)
        sigma_v = rng.uniform(50.0, 300.0)
        gas_scatter = rng.normal(0.0, 0.15)
        oii_to_hbeta = 10.0 ** rng.uniform(0.0, 0.6)
        oii_doublet = rng.uniform(1.0, 1.45)  # 3729 / 3726
        sii_to_halpha = rng.uniform(0.15, 0.4)
        sii_doublet = rng.uniform(1.0, 1.4)  # 6717 / 6731

        # Templates on one rest-frame log grid (vacuum Å).
        arrays = [template.arrays[:2] for template in picks]
        units = {template.arrays[2] for template in picks}
        if len(units) > 1:
            raise ValueError(f"templates of library {library!r} have different flux units "
                             f"{sorted(map(str, units))}")
        unit = units.pop()
        lo = max(lam[0] for lam, _ in arrays)
        hi = min(lam[-1] for lam, _ in arrays)
        if wavelength_range is not None:
            wr = as_wavelength_range(wavelength_range, "wavelength_range")
            lo, hi = max(lo, wr[0]), min(hi, wr[1])
        if not hi > lo:
            raise ValueError(f"templates of library {library!r} do not cover the requested rest "
                             f"wavelengths {wavelength_range}")
        step = min(float(np.median(np.diff(np.log(lam)))) for lam, _ in arrays)
        step = min(max(step, 1e-5), sigma_v / _C_KMS / 2)
        step = max(step, math.log(hi / lo) / 400_000)
        grid, edges = _log_grid(lo, hi, step)
        if len(grid) < 10:
            raise ValueError(f"the rest-frame range {lo:.1f}-{hi:.1f} Å is too short")
        resampled = np.array([bin_average_linear(lam, flux, edges) for lam, flux in arrays])
        continuum = weights @ resampled

        ages = np.array([template.age for template in picks])
        metals = np.array([template.metallicity for template in picks])
        age_mw = float(weights @ ages)
        # SFR proxy: the mass the young (≤ 1 Gyr) components formed per unit
        # time, plus a random residual rate.
        young = ages <= 1.0
        ssfr = float(np.sum(weights[young] / (np.maximum(ages[young], 0.01) * 1e9))) + residual_ssfr
        log_ssfr = math.log10(ssfr)
        metallicity = float(weights @ metals) if np.all(np.isfinite(metals)) else np.nan

        # Emission lines, scaled to the unreddened continuum near Hα.
        near = (grid > 6450.0) & (grid < 6680.0)
        cont_ha = float(np.median(continuum[near] if near.sum() >= 3 else continuum))
        halpha_ew = float(np.clip(30.0 * 10.0 ** (0.8 * (log_ssfr + 10.0)), 0.0, 1000.0))
        f_ha = halpha_ew * max(cont_ha, 0.0)
        f_hb = f_ha / _CASE_B_HALPHA_HBETA
        gas_mh = (metallicity if np.isfinite(metallicity) else 0.0) + gas_scatter
        oh = _SOLAR_OH + float(np.clip(gas_mh, -1.5, 0.6))
        n2 = float(np.clip((oh - 8.90) / 0.57, -2.5, -0.3))  # Pettini & Pagel 2004, N2
        o3n2 = (8.73 - oh) / 0.32  # Pettini & Pagel 2004, O3N2
        log_o3_hb = float(np.clip(o3n2 + n2, -1.5, 1.0))
        f_n2 = f_ha * 10.0**n2
        f_o3 = f_hb * 10.0**log_o3_hb
        f_oii = f_hb * oii_to_hbeta
        f_sii = f_ha * sii_to_halpha
        intrinsic = {
            "Halpha": f_ha, "Hbeta": f_hb,
            "Hgamma": f_hb * _CASE_B_HGAMMA_HBETA, "Hdelta": f_hb * _CASE_B_HDELTA_HBETA,
            "[NII]6584": f_n2, "[NII]6548": f_n2 / _NII_RATIO,
            "[OIII]5007": f_o3, "[OIII]4959": f_o3 / _OIII_RATIO,
            "[OII]3729": f_oii * oii_doublet / (1 + oii_doublet),
            "[OII]3726": f_oii / (1 + oii_doublet),
            "[SII]6717": f_sii * sii_doublet / (1 + sii_doublet),
            "[SII]6731": f_sii / (1 + sii_doublet),
        }
        av_gas = av / _STARS_TO_GAS
        line_wave = np.array([EMISSION_LINES[name] for name in intrinsic])
        line_flux = np.array(list(intrinsic.values()))
        line_flux = line_flux * 10.0 ** (-0.4 * calzetti_attenuation(line_wave, av_gas))
        balmer = float(line_flux[0] / line_flux[1]) if line_flux[1] > 0 else np.nan
        sigma_ln = sigma_v / _C_KMS
        lines = np.zeros_like(grid)
        for wave, flux in zip(line_wave, line_flux):
            if edges[0] < wave < edges[-1] and flux > 0:
                add_gaussian_line(lines, edges, wave, sigma_ln, flux)

        stars = gaussian_filter1d(continuum, sigma_ln / step, mode="nearest")
        stars *= 10.0 ** (-0.4 * calzetti_attenuation(grid, av))
        total = (stars + lines) * 10.0 ** (log_mstar - 10.0)

        labels = {
            "log_mstar": float(log_mstar), "log_sfr": float(log_ssfr + log_mstar),
            "log_ssfr": float(log_ssfr), "age_mw": age_mw, "metallicity": metallicity,
            "av": float(av), "sigma_v": float(sigma_v), "halpha_ew": halpha_ew,
            "balmer_decrement": balmer, "n_components": k, "library": library,
        }
        meta = {"medium": "vacuum", "generator": "spectok.datasets.galaxy_spectrum",
                "components": [template.id for template in picks],
                "mass_fractions": weights.tolist(), **labels}
        model = ModelArrays(grid, total, unit, np.ones(grid.size, dtype=bool))
        return model, meta, labels


# --------------------------------------------------------------------------
# BAGPIPES generator
# --------------------------------------------------------------------------


def _import_bagpipes():
    try:
        import contextlib
        import io
        import warnings

        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # Importing bagpipes prints notices and may warn about optional samplers.
            warnings.simplefilter("ignore")
            import bagpipes
    except ImportError as error:
        raise ImportError(
            "method='bagpipes' needs BAGPIPES and its dependencies (spectres, corner); install "
            f'them with: pip install "spectok[sim]"  (import failed: {error})') from error
    return bagpipes


class _BagpipesDraw:
    """Draw and evaluate BAGPIPES models on a fixed observed-frame grid."""

    def __init__(self, bagpipes, instrument):
        self.pipes = bagpipes
        lo, hi = instrument.wavelength_range.to_value(u.AA)
        r_max = max(float(np.max(arm.resolving_power())) for arm in instrument.arms)
        step = 1.0 / (r_max * FWHM_PER_SIGMA * 3.0)
        step = max(step, math.log(hi / lo) / 60_000)
        self.wavs, _ = _log_grid(lo * 0.98, hi * 1.02, step)
        # BAGPIPES builds spectra at R_spec internally (default 1000): raise it
        # towards the instrument's resolution (its BC03/MILES grids stop
        # being any sharper around R ~ 2000-3000).
        self.r_spec = float(np.clip(2.0 * r_max, 1000.0, 5000.0))
        self._galaxy = None

    def model(self, rng, *, redshift, wavelength_range=None):
        """One galaxy at ``redshift`` as rest-frame `ModelArrays` (over the fixed
        grid: ``wavelength_range`` is not used), with its labels."""
        z = redshift
        age_univ = _age_of_universe(z)
        components = {
            "redshift": z,
            "veldisp": rng.uniform(50.0, 300.0),
            "delayed": {
                "age": rng.uniform(0.05, 0.98 * age_univ),
                "tau": 10.0 ** rng.uniform(-1.0, 1.0),
                "massformed": rng.uniform(9.0, 12.0),
                "metallicity": 10.0 ** rng.uniform(-1.0, math.log10(2.5)),
            },
            "dust": {"type": "Calzetti", "Av": rng.uniform(0.0, 1.5)},
            "nebular": {"logU": rng.uniform(-4.0, -2.0)},
        }
        config = self.pipes.config
        saved = config.R_spec
        config.R_spec = self.r_spec
        try:
            if self._galaxy is None:
                self._galaxy = self.pipes.model_galaxy(components, spec_wavs=self.wavs)
            else:
                self._galaxy.update(components)
        finally:
            config.R_spec = saved
        sfh = self._galaxy.sfh
        labels = {
            "log_mstar": float(sfh.stellar_mass),
            "log_sfr": float(np.log10(sfh.sfr)) if sfh.sfr > 0 else -np.inf,
            "log_ssfr": float(np.log10(sfh.sfr) - sfh.stellar_mass) if sfh.sfr > 0 else -np.inf,
            "age_mw": float(sfh.mass_weighted_age),
            "metallicity": float(np.log10(components["delayed"]["metallicity"])),
            "av": float(components["dust"]["Av"]),
            "sigma_v": float(components["veldisp"]),
            "log_u": float(components["nebular"]["logU"]),
        }
        # BAGPIPES works in air wavelengths (BC03/MILES, CLOUDY line list): go
        # back to the rest frame and let observe() convert and redshift.
        flux = self._galaxy.spectrum[:, 1] * (1.0 + z)
        from specutils import Spectrum

        rest = Spectrum(spectral_axis=self.wavs / (1.0 + z) * u.AA,
                        flux=flux * u.erg / (u.s * u.cm**2 * u.AA),
                        meta={"medium": "air", "generator": "bagpipes"})
        return ModelArrays.from_spectrum(rest), labels


# --------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------


def simulate_galaxies(n, instrument, z=(0.0, 1.5), seed=0, snr=(5.0, 50.0), templates=None,
                      method="fast", n_jobs=None):
    """A labelled data set of synthetic galaxies observed with an instrument.

    Galaxy ``i`` is drawn from its own random stream (``SeedSequence(seed)
    .spawn``), so the first galaxies do not change when ``n`` grows.
    Redshifts are uniform in ``z``; S/N log-uniform in ``snr``. Model
    spectra are dimmed by the luminosity distance (Planck18, relative to
    z = 0.1) before `~spectok.datasets.observe` adds the instrument.

    Parameters
    ----------
    n : int
        Number of galaxies.
    instrument : str or `~spectok.datasets.Instrument`
        Instrument or preset name.
    z : float or (float, float)
        Redshift, or range to draw it from uniformly.
    seed : int
        Random seed.
    snr : float or (float, float)
        S/N per pixel at the median flux, or range (log-uniform).
    templates : sequence of `~specutils.Spectrum`, optional
        SSP templates for ``method="fast"`` (see `galaxy_spectrum`);
        default `~spectok.datasets.load_ssp_templates` (downloads the
        ``sdss-mangadap`` wheel once).
    method : {"fast", "bagpipes"}
        Generator (see the module docstring).
    n_jobs : int, optional
        Worker processes for ``method="fast"`` (joblib's convention: None is
        one unless a ``joblib.parallel_config`` sets it, -1 is all cores); the
        result does not depend on it.

    Returns
    -------
    `~spectok.datasets.SpectrumDataset`
        Observed spectra with labels ``id``, ``z``, ``log_mstar``,
        ``log_sfr``, ``log_ssfr``, ``age_mw`` (Gyr), ``metallicity`` ([M/H]),
        ``av`` (mag), ``sigma_v`` (km/s), ``snr`` and generator-specific
        extras (fast: ``halpha_ew``, ``balmer_decrement``, ``n_components``,
        ``library``; bagpipes: ``log_u``).

    Raises
    ------
    TypeError
        If ``templates`` is one spectrum rather than a list of them.
    ValueError
        If ``n`` is not an integer ≥ 1, ``z`` or ``snr`` is not a finite
        number or an ordered pair of them (``z`` ≥ 0, ``snr`` > 0), ``seed``
        is not a non-negative integer (or a sequence of them) or None,
        ``method`` is unknown, a template with an age cannot be converted,
        the templates cannot cover the instrument at a drawn redshift,
        ``n_jobs`` is not a nonzero integer or None, or it asks for several
        processes with ``method="bagpipes"``. Arguments are checked before
        the templates are read.
    ImportError
        For ``method="bagpipes"`` without BAGPIPES installed.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from specutils import Spectrum
    >>> from spectok.datasets import simulate_galaxies
    >>> lam = np.arange(2000.0, 10500.0, 2.0)
    >>> ssp = [Spectrum(spectral_axis=lam * u.AA, flux=(lam / 5000.0) ** p * u.one,
    ...                 meta={"age_gyr": age, "metallicity": 0.0})
    ...        for p, age in [(-2.0, 0.1), (0.0, 1.0), (1.0, 10.0)]]
    >>> ds = simulate_galaxies(3, "lamost", z=(0.0, 0.2), templates=ssp)
    >>> len(ds), bool(((ds.labels["z"] >= 0) & (ds.labels["z"] <= 0.2)).all())
    (3, True)
    """
    from astropy.cosmology import Planck18
    from joblib import effective_n_jobs

    if method not in ("fast", "bagpipes"):
        raise ValueError(f"method must be 'fast' or 'bagpipes', not {method!r}")
    n, inst, (z_lo, z_hi), (snr_lo, snr_hi) = population_arguments(n, instrument, z, snr,
                                                                   n_jobs, seed)
    if method == "fast":
        if templates is None:
            from . import load_ssp_templates

            templates = load_ssp_templates().spectra
        generator = GalaxyGenerator(templates)  # fails early on unusable templates
    elif effective_n_jobs(n_jobs) > 1:
        raise ValueError("method='bagpipes' draws in one process (each worker would load "
                         "BAGPIPES' grids again); leave n_jobs at None or 1")
    else:
        generator = _BagpipesDraw(_import_bagpipes(), inst)
    draw = functools.partial(_dimmed_galaxy, generator=generator,
                             d_ref=float(Planck18.luminosity_distance(0.1).to_value(u.Mpc)))
    spectra, rows = observe_population(draw, n, inst, seed, (z_lo, z_hi), (snr_lo, snr_hi),
                                       kind="galaxy", id_tag="gal", n_jobs=n_jobs)
    names = list(rows[0])
    labels = Table(rows=[[row.get(k) for k in names] for row in rows], names=names)
    for name, unit in (("age_mw", u.Gyr), ("sigma_v", u.km / u.s), ("av", u.mag)):
        labels[name].unit = unit
    return SpectrumDataset(spectra, labels, name=f"galaxies-{inst.name}",
                           meta={"method": method, "seed": seed, "instrument": inst.name,
                                 "z": (z_lo, z_hi), "snr": (snr_lo, snr_hi)})


def _dimmed_galaxy(rng, *, redshift, wavelength_range, generator, d_ref):
    """A rest-frame galaxy from ``generator`` dimmed by its luminosity distance
    relative to ``d_ref`` (Mpc), with its labels."""
    from astropy.cosmology import Planck18

    model, labels = generator.model(rng, redshift=redshift, wavelength_range=wavelength_range)
    distance = float(Planck18.luminosity_distance(max(redshift, 1e-3)).to_value(u.Mpc))
    return dataclasses.replace(model, flux=model.flux * (d_ref / distance) ** 2), labels
