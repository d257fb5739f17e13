"""Tests of spectok.datasets.galaxies (fast generator; BAGPIPES only if installed)."""

import sys

import astropy.units as u
import numpy as np
import pytest
from scipy.optimize import curve_fit
from scipy.special import erf
from specutils import Spectrum, SpectrumList
from specutils.utils.wcs_utils import vac_to_air

from spectok.datasets import (EMISSION_LINES, INSTRUMENTS, GalaxyGenerator, SpectrumDataset,
                              calzetti_attenuation, galaxy_spectrum, observe, simulate_galaxies)

AGES = (0.01, 0.05, 1.0, 5.0, 12.0)  # Gyr
METALS = (-0.4, -0.2, 0.0, 0.1, 0.2)


def _blackbody_ssp(lam, age, metallicity, library="toy"):
    """A tiny SSP-like template: a blackbody of an age-dependent temperature, per unit mass
    (older = redder and fainter), with a few stellar absorption lines away from the
    nebular lines."""
    temperature = 12000.0 / (1 + np.log10(1 + 10 * age))
    x = 1.4388e8 / (lam * temperature)  # hc / (λ k T), λ in Å
    flux = lam**-5 / np.expm1(x)
    flux = flux / flux[np.argmin(np.abs(lam - 5500))] / (1 + age)
    for centre, depth in ((3934.8, 0.5), (5176.0, 0.3), (5895.9, 0.3), (8544.4, 0.2)):
        flux *= 1 - depth * (1 + age) / 13 * np.exp(-0.5 * ((lam - centre) / 3.0) ** 2)
    return Spectrum(spectral_axis=lam * u.AA, flux=flux * u.one,
                    meta={"age_gyr": age, "metallicity": metallicity, "library": library,
                          "medium": "vacuum", "id": f"{library}-{age}"})


@pytest.fixture(scope="module")
def templates():
    lam = np.arange(2500.0, 11000.0, 1.0)
    return [_blackbody_ssp(lam, a, m) for a, m in zip(AGES, METALS)]


@pytest.fixture(scope="module")
def young_templates():
    """Only young templates: the sSFR proxy (and so every emission line) is strong."""
    lam = np.arange(2500.0, 11000.0, 1.0)
    return [_blackbody_ssp(lam, a, 0.0) for a in (0.005, 0.01, 0.02)]


def test_emission_line_wavelengths_are_vacuum():
    air = {"Halpha": 6562.80, "Hbeta": 4861.33, "Hgamma": 4340.47, "Hdelta": 4101.74,
           "[OII]3726": 3726.03, "[OII]3729": 3728.82, "[OIII]4959": 4958.91,
           "[OIII]5007": 5006.84, "[NII]6548": 6548.05, "[NII]6584": 6583.45,
           "[SII]6717": 6716.44, "[SII]6731": 6730.82}
    assert set(air) == set(EMISSION_LINES)
    for name, wave in EMISSION_LINES.items():
        converted = vac_to_air(wave * u.AA, method="Morton2000").value
        assert converted == pytest.approx(air[name], abs=0.02)


def test_calzetti_law():
    assert calzetti_attenuation(5500.0, 1.0) == pytest.approx(1.0, abs=2e-3)
    lam = np.linspace(1000.0, 30000.0, 300)
    a = calzetti_attenuation(lam, 0.7)
    assert np.all(np.diff(a) <= 0) and np.all(a >= 0)
    assert calzetti_attenuation(1 * u.um, 2.0) == pytest.approx(calzetti_attenuation(1e4, 2.0))
    # eq. 4 of Calzetti et al. 2000 at 0.8 µm: k = 2.659 (-1.857 + 1.040/0.8) + 4.05
    assert calzetti_attenuation(8000.0, 4.05) == pytest.approx(2.659 * (-1.857 + 1.3) + 4.05)
    with pytest.raises(ValueError, match="non-negative"):
        calzetti_attenuation(5000.0, -0.1)


def _fit_line(spectrum, centre, half_width):
    """Gaussian + linear continuum fitted to the pixel averages near ``centre``."""
    wave = spectrum.spectral_axis.to_value(u.AA)
    sel = (np.abs(wave - centre) < half_width) & ~spectrum.mask
    edges = np.sqrt(wave[1:] * wave[:-1])
    lo = np.concatenate([[wave[0] ** 2 / edges[0]], edges])[sel]
    hi = np.concatenate([edges, [wave[-1] ** 2 / edges[-1]]])[sel]
    y = spectrum.flux.value[sel]
    scale = np.max(np.abs(y))

    def model(_, area, mu, sigma, c0, c1):
        cdf_hi = 0.5 * (1 + erf((hi - mu) / (np.sqrt(2) * sigma)))
        cdf_lo = 0.5 * (1 + erf((lo - mu) / (np.sqrt(2) * sigma)))
        return area * (cdf_hi - cdf_lo) / (hi - lo) + c0 + c1 * (0.5 * (lo + hi) - centre)

    guess = [scale * 5, centre, 3.0, np.median(y), 0.0]
    params, _ = curve_fit(model, np.zeros(y.size), y, p0=guess, maxfev=20000)
    return params


@pytest.mark.parametrize("z", [0.0, 0.1, 0.45])
def test_emission_lines_land_at_rest_wavelength_times_one_plus_z(young_templates, z):
    model, labels = galaxy_spectrum(young_templates, rng=3, redshift=z)
    assert labels["halpha_ew"] > 100
    observed = observe(model, "sdss", redshift=z, noise=False)
    for name in ("Hbeta", "[OIII]5007"):
        rest = EMISSION_LINES[name]
        area, centre, sigma, _, _ = _fit_line(observed, rest * (1 + z), 40.0)
        assert centre == pytest.approx(rest * (1 + z), abs=0.05), name
        assert area > 0
    # The line width is the velocity dispersion (in the observed frame) and the LSF.
    arm = INSTRUMENTS["sdss"].arms[0]
    lam_obs = EMISSION_LINES["Hbeta"] * (1 + z)
    expected = np.hypot(lam_obs * labels["sigma_v"] / 299792.458,
                        float(arm.lsf_sigma_at(lam_obs).value))
    _, _, sigma, _, _ = _fit_line(observed, lam_obs, 40.0)
    assert sigma == pytest.approx(expected, rel=0.02)


def test_balmer_decrement_follows_the_dust(young_templates):
    for seed in range(5):
        _, labels = galaxy_spectrum(young_templates, rng=seed)
        av_gas = labels["av"] / 0.44
        expected = 2.86 * 10 ** (-0.4 * (calzetti_attenuation(EMISSION_LINES["Halpha"], av_gas)
                                         - calzetti_attenuation(EMISSION_LINES["Hbeta"], av_gas)))
        assert labels["balmer_decrement"] == pytest.approx(expected, rel=1e-9)
        assert labels["balmer_decrement"] >= 2.86


def test_simulated_labels_are_in_range(templates):
    ds = simulate_galaxies(12, "desi", z=(0.05, 0.6), seed=1, snr=(5, 50), templates=templates)
    assert isinstance(ds, SpectrumDataset) and len(ds) == 12
    lab = ds.labels
    for name in ("id", "z", "log_mstar", "log_sfr", "age_mw", "metallicity", "av", "sigma_v",
                 "snr"):
        assert name in lab.colnames
    assert len(set(lab["id"])) == 12
    assert np.all((lab["z"] >= 0.05) & (lab["z"] <= 0.6))
    assert np.all((lab["log_mstar"] >= 9) & (lab["log_mstar"] <= 11.5))
    assert np.all((lab["av"] >= 0) & (lab["av"] <= 1.5))
    assert np.all((lab["sigma_v"] >= 50) & (lab["sigma_v"] <= 300))
    assert np.all((lab["snr"] >= 5) & (lab["snr"] <= 50))
    assert np.all((lab["age_mw"] >= min(AGES)) & (lab["age_mw"] <= max(AGES)))
    assert np.all((lab["metallicity"] >= min(METALS)) & (lab["metallicity"] <= max(METALS)))
    assert np.all(np.isin(lab["n_components"], [2, 3]))
    np.testing.assert_allclose(lab["log_sfr"] - lab["log_mstar"], lab["log_ssfr"])
    assert np.all(lab["log_ssfr"] >= -12.5)
    from astropy.cosmology import Planck18
    # No galaxy is older than the Universe at its redshift (mass-weighted age bound).
    assert np.all(lab["age_mw"] <= Planck18.age(lab["z"]).to_value(u.Gyr))
    for spectrum, row in ds:
        assert isinstance(spectrum, SpectrumList) and len(spectrum) == 3
        assert spectrum[0].meta["instrument"] == "desi"
        assert spectrum[0].meta["redshift"] == pytest.approx(row["z"])
        assert not spectrum[1].mask.all()


def test_simulation_is_deterministic_given_seed(templates):
    a = simulate_galaxies(3, "sdss", seed=5, z=(0, 0.3), templates=templates)
    b = simulate_galaxies(3, "sdss", seed=5, z=(0, 0.3), templates=templates)
    c = simulate_galaxies(3, "sdss", seed=6, z=(0, 0.3), templates=templates)
    shorter = simulate_galaxies(2, "sdss", seed=5, z=(0, 0.3), templates=templates)
    for x, y in zip(a.spectra, b.spectra):
        np.testing.assert_array_equal(x.flux.value, y.flux.value)
    assert list(a.labels["z"]) == list(b.labels["z"])
    assert list(a.labels["z"]) != list(c.labels["z"])
    # Galaxy i has its own random stream: it does not depend on n.
    np.testing.assert_array_equal(a.spectra[1].flux.value, shorter.spectra[1].flux.value)


def test_worker_processes_draw_the_same_galaxies(templates):
    # Each galaxy has its own stream, so splitting them between processes changes nothing;
    # the templates travel to the workers as arrays.
    serial = simulate_galaxies(3, "desi", seed=5, z=(0, 0.3), templates=templates)
    parallel = simulate_galaxies(3, "desi", seed=5, z=(0, 0.3), templates=templates, n_jobs=2)
    for x, y in zip(serial.spectra, parallel.spectra):
        for arm_x, arm_y in zip(x, y):
            np.testing.assert_array_equal(arm_x.flux.value, arm_y.flux.value)
            np.testing.assert_array_equal(arm_x.uncertainty.array, arm_y.uncertainty.array)
            np.testing.assert_array_equal(arm_x.mask, arm_y.mask)
            assert arm_x.meta["arm"] == arm_y.meta["arm"]
    assert list(serial.labels["id"]) == list(parallel.labels["id"])
    np.testing.assert_array_equal(serial.labels["log_mstar"], parallel.labels["log_mstar"])


def test_generator_draws_what_galaxy_spectrum_draws(templates):
    generator = GalaxyGenerator(templates)
    spectrum, labels = galaxy_spectrum(templates, rng=7, redshift=0.4)
    model, model_labels = generator.model(rng=7, redshift=0.4)
    assert model_labels == labels
    np.testing.assert_array_equal(model.wavelength, spectrum.spectral_axis.to_value(u.AA))
    np.testing.assert_array_equal(model.flux, spectrum.flux.value)
    assert model.unit == spectrum.flux.unit and model.good.all()
    again, _ = generator.spectrum(rng=7, redshift=0.4)
    np.testing.assert_array_equal(again.flux, spectrum.flux)
    assert again.meta == spectrum.meta


def test_flux_scales_with_stellar_mass(templates):
    spec, labels = galaxy_spectrum(templates, rng=11)
    assert spec.meta["medium"] == "vacuum"
    weights = np.array(spec.meta["mass_fractions"])
    assert weights.sum() == pytest.approx(1.0)
    # Continuum far from lines, before dust: mixture × 10^(logM - 10); here check the
    # order of magnitude follows the mass (the templates are ~1 at 5500 Å per unit mass).
    median = np.median(spec.flux.value)
    assert 10 ** (labels["log_mstar"] - 10) / 100 < median < 10 ** (labels["log_mstar"] - 10) * 10


def test_fixed_redshift_and_snr(templates):
    ds = simulate_galaxies(2, "lamost", z=0.2, snr=30.0, templates=templates)
    assert np.all(ds.labels["z"] == 0.2) and np.all(ds.labels["snr"] == 30.0)


def test_bad_arguments(templates):
    with pytest.raises(ValueError, match="method"):
        simulate_galaxies(1, "sdss", templates=templates, method="magic")
    with pytest.raises(ValueError, match="at least 1"):
        simulate_galaxies(0, "sdss", templates=templates)
    with pytest.raises(ValueError, match="unknown instrument"):
        simulate_galaxies(1, "hubble", templates=templates)
    with pytest.raises(ValueError, match="range"):
        simulate_galaxies(1, "sdss", z=(1.0, 0.5), templates=templates)
    for z, message in [("0.5", "a non-negative number, got '0.5'"),
                       (-2.0, "finite and non-negative, got -2.0"),
                       (np.nan, "finite and non-negative, got nan")]:
        with pytest.raises(ValueError, match=f"redshift must be {message}"):
            galaxy_spectrum(templates, rng=0, redshift=z)
    ageless = [Spectrum(spectral_axis=t.spectral_axis, flux=t.flux) for t in templates]
    with pytest.raises(ValueError, match="age"):
        simulate_galaxies(1, "sdss", templates=ageless)
    # Templates that stop at 11000 Å (rest) cannot reach APOGEE at z ≥ 0.
    short = [_blackbody_ssp(np.arange(3000.0, 9000.0, 1.0), a, 0.0) for a in (0.1, 1.0)]
    with pytest.raises(ValueError, match="galaxy 0 .* 'apogee'"):
        simulate_galaxies(1, "apogee", z=(0.0, 0.1), templates=short)
    with pytest.raises(ValueError, match="galaxy [01] .* 'apogee'"):  # raised in a worker
        simulate_galaxies(2, "apogee", z=(0.0, 0.1), templates=short, n_jobs=2)
    broken = [*templates, Spectrum(spectral_axis=templates[0].spectral_axis,
                                   flux=np.full(templates[0].flux.size, np.nan) * u.one,
                                   meta={"age_gyr": 20.0, "id": "empty"})]
    with pytest.raises(ValueError, match=r"template 5 \(empty\): .* fewer than 2 valid pixels"):
        simulate_galaxies(1, "sdss", templates=broken)
    with pytest.raises(ValueError, match="n_jobs must be a nonzero integer"):
        simulate_galaxies(1, "sdss", templates=templates, n_jobs=1.5)
    with pytest.raises(ValueError, match="one process"):
        simulate_galaxies(2, "sdss", method="bagpipes", n_jobs=2)
    # One library in two flux units cannot be mixed.
    mixed = [_blackbody_ssp(np.arange(3000.0, 9000.0, 1.0), a, 0.0) for a in (0.1, 1.0)]
    mixed[1] = Spectrum(spectral_axis=mixed[1].spectral_axis, flux=mixed[1].flux.value * u.Jy,
                        meta=mixed[1].meta)
    with pytest.raises(ValueError, match="different flux units"):
        galaxy_spectrum(mixed, rng=0)


def test_bagpipes_missing_gives_install_hint(monkeypatch, templates):
    monkeypatch.setitem(sys.modules, "bagpipes", None)  # makes "import bagpipes" fail
    with pytest.raises(ImportError, match=r'pip install "spectok\[sim\]"'):
        simulate_galaxies(1, "sdss", method="bagpipes")


def test_bagpipes_path():
    pytest.importorskip("bagpipes")
    ds = simulate_galaxies(2, "sdss", z=(0.1, 0.3), seed=0, method="bagpipes")
    assert len(ds) == 2
    lab = ds.labels
    assert np.all((lab["sigma_v"] >= 50) & (lab["sigma_v"] <= 300))
    assert np.all(lab["age_mw"] > 0)
    assert np.all(np.isfinite(lab["log_mstar"]))
    for spectrum, row in ds:
        assert spectrum.meta["redshift"] == pytest.approx(row["z"])
        assert np.isfinite(spectrum.flux.value).all() and not spectrum.mask.all()


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 2.7}, "n must be an integer number of objects, at least 1, got float 2.7"),
    ({"n": 3.0}, "n must be an integer number of objects, at least 1, got float 3.0"),
    ({"n": "5"}, "n must be an integer number of objects, at least 1, got str '5'"),
    ({"n": None}, "n must be an integer number of objects, at least 1, got NoneType None"),
    ({"z": (0.0, np.inf)}, r"z must be finite, got \(0.0, inf\)"),
    ({"z": np.nan}, "z must be finite, got nan"),
    ({"z": "0.5"}, r"z must be a number or a \(low, high\) pair of numbers, got '0.5'"),
    ({"z": (0.1, 0.2, 0.3)}, r"z must be a number or a .* got \(0.1, 0.2, 0.3\)"),
    ({"z": None}, "z must be a number or a .* got None"),
    ({"snr": np.inf}, "snr must be finite, got inf"),
    ({"snr": (5,)}, r"snr must be a number or a \(low, high\) pair of numbers, got \(5,\)"),
    ({"snr": True}, "snr must be a number .* got True"),
    ({"seed": -1}, r"seed must be a non-negative integer \(or a sequence of them\) or None, "
                   "got -1"),
    ({"seed": 1.5}, "seed must be .* got 1.5"),
    ({"seed": "x"}, "seed must be .* got 'x'"),
    ({"seed": True}, "seed must be .* got True"),
    ({"seed": [1, -2]}, r"seed must be .* got \[1, -2\]"),
])
def test_population_arguments_of_the_wrong_kind_are_named(templates, kwargs, message):
    # before: n=2.7 gave 2 galaxies and n='5' five; z=(0, inf) and z=nan were drawn from
    # (numpy's OverflowError 'high - low range exceeds valid bounds'), z='0.5' was 0.5,
    # z=(0.1, 0.2, 0.3) and snr=(5,) raised 'too many/not enough values to unpack',
    # z=None "'NoneType' object is not iterable", snr=True was 1; seed=-1 raised numpy's
    # 'expected non-negative integer', seed=1.5 'SeedSequence expects int or sequence of ints'
    arguments = {"n": 1, "instrument": "sdss", "templates": templates, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate_galaxies(**arguments)
    if "seed" in kwargs:  # refused before the templates are read (they load from PyPI)
        with pytest.raises(ValueError, match=message):
            simulate_galaxies(1, "sdss", templates="not templates", seed=kwargs["seed"])


def test_population_counts_and_seeds_numpy_can_index_are_taken(templates):
    one = simulate_galaxies(np.int64(2), "sdss", seed=[3, 7], templates=templates)
    other = simulate_galaxies(np.array(2), "sdss", seed=[3, 7], templates=templates)
    np.testing.assert_array_equal(one.labels["z"], other.labels["z"])


def test_one_template_instead_of_a_list_is_refused():
    # list() of one Spectrum never ends: without an age in its meta, GalaxyGenerator (and so
    # simulate_galaxies and QuasarGenerator's hosts) looped over empty spectra for ever; a
    # SpectrumList, one object's arms, was taken for several templates
    wave = np.linspace(3000, 7000, 50) * u.AA
    one = Spectrum(spectral_axis=wave, flux=np.ones(50) * u.Jy, meta={"age_gyr": 1.0})
    for single in (SpectrumList([one, one]), (wave, np.ones(50) * u.Jy)):
        with pytest.raises(TypeError, match="templates must be a list of template spectra, "
                                            "got one"):
            GalaxyGenerator(single)
