"""Tests of the classical redshift baseline, `spectok.benchmarks.TemplateRedshiftFit`."""

import astropy.units as u
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum

from spectok.benchmarks import NoRedshiftWarning, TemplateRedshiftFit

_LINES = np.array([3727.0, 4862.7, 5008.2, 6564.6, 6718.3])


def _rest_model(rng):
    """A rest-frame 'galaxy': sloped continuum, a 4000 Å break and emission lines."""
    wave = np.geomspace(1500.0, 12000.0, 12000)
    flux = (wave / 5000.0) ** rng.uniform(-1.5, 0.5) * np.where(wave < 4000, 0.6, 1.0)
    for line in _LINES:
        flux += rng.uniform(0.5, 3.0) * np.exp(-0.5 * ((wave - line) / 3.0) ** 2)
    return Spectrum(spectral_axis=wave * u.AA, flux=flux * u.one)


def _observed(model, z, rng, snr=20.0, wavelength=(3600.0, 9800.0), step=1e-4):
    wave = 10 ** np.arange(np.log10(wavelength[0]), np.log10(wavelength[1]), step)  # off-grid
    flux = np.interp(wave / (1 + z), model.spectral_axis.value, model.flux.value)
    sigma = np.full(wave.size, np.median(flux) / snr)
    return Spectrum(spectral_axis=wave * u.AA, flux=(flux + rng.normal(0, sigma)) * u.one,
                    uncertainty=StdDevUncertainty(sigma))


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    return TemplateRedshiftFit(z_range=(0.0, 1.0)).fit([_rest_model(rng) for _ in range(30)])


def test_recovers_redshifts(fitted):
    rng = np.random.default_rng(1)
    truth = np.array([0.0, 0.05, 0.31, 0.62, 0.97])
    spectra = [_observed(_rest_model(rng), z, rng, snr=200) for z in truth]
    predicted = fitted.predict(spectra)
    # 3600 Å is 0.63 fit pixels off the fit's grid: no bias from the resampling
    assert np.all(np.abs(predicted - truth) / (1 + truth) < 1.5e-5)
    # a linear-in-λ grid (DESI-like, 0.8 Å) and a coarse one (R ≈ 1000) work too
    wave = np.arange(3600.0, 9800.0, 0.8)
    model = _rest_model(rng)
    for grid in (wave, wave[::8]):
        flux = np.interp(grid / 1.42, model.spectral_axis.value, model.flux.value)
        spectrum = Spectrum(spectral_axis=grid * u.AA, flux=flux * u.one,
                            uncertainty=StdDevUncertainty(np.full(grid.size, 0.01)))
        assert abs(fitted.predict([spectrum])[0] - 0.42) / 1.42 < 5e-5
    assert fitted.seconds_per_spectrum_ > 0
    assert fitted.templates_.shape[0] == 5
    assert fitted.coverage_.all()  # the models reach the whole rest-frame grid


def test_chi2_matches_direct_least_squares(fitted):
    """The FFT correlations give the χ² of a direct least-squares fit at a trial z."""
    rng = np.random.default_rng(2)
    spectrum = _observed(_rest_model(rng), 0.4, rng)
    z, chi2 = fitted.chi2(spectrum)
    flux, weight = fitted._resample(spectrum, 0)
    x_obs = fitted.rest_log_wavelength_[0] + fitted.shift_range_[1] * fitted.log_step + (
        fitted.log_step * np.arange(fitted.n_observed_))
    for k in (0, 1234, len(z) - 2):
        rest = x_obs - np.log10(1 + z[k])
        design = np.vstack([np.interp(rest, fitted.rest_log_wavelength_, t, left=0, right=0)
                            for t in fitted.templates_] + list(fitted._polynomials)).T
        sqrt_w = np.sqrt(weight)
        amplitudes, *_ = np.linalg.lstsq(design * sqrt_w[:, None], flux * sqrt_w, rcond=None)
        direct = np.sum(weight * (flux - design @ amplitudes) ** 2)
        assert chi2[k] == pytest.approx(direct, rel=1e-6, abs=1e-6)
    assert np.argmin(chi2) == np.argmin(np.abs(z - 0.4))


def test_min_coverage_excludes_redshifts_the_templates_do_not_reach():
    rng = np.random.default_rng(3)
    models = [_rest_model(rng)[3000 * u.AA:12000 * u.AA] for _ in range(10)]
    fit = TemplateRedshiftFit(z_range=(0.0, 1.0), min_coverage=0.9).fit(models)
    z, chi2 = fit.chi2(_observed(_rest_model(rng), 0.1, rng))
    # above z ≈ 0.33 the templates' blue end (3000 Å) is beyond 3600 Å: more than 10 % unreached
    assert np.all(np.isinf(chi2[z > 0.35])) and np.all(np.isfinite(chi2[z < 0.1]))
    assert not fit.coverage_.all()


def test_bad_arguments(fitted):
    rng = np.random.default_rng(4)
    models = [_rest_model(rng) for _ in range(6)]
    with pytest.raises(ValueError, match="z_range"):
        TemplateRedshiftFit(z_range=(1.0, 0.5)).fit(models)
    with pytest.raises(ValueError, match="wavelength_range"):
        TemplateRedshiftFit(wavelength_range=(9000, 4000) * u.AA).fit(models)
    with pytest.raises(ValueError, match="min_coverage"):
        TemplateRedshiftFit(min_coverage=2).fit(models)
    with pytest.raises(ValueError, match="at least n_templates=8"):
        TemplateRedshiftFit(n_templates=8).fit(models)
    with pytest.raises(ValueError, match="holds no trial redshift"):
        TemplateRedshiftFit(z_range=(0.1001, 0.1002)).fit(models)
    with pytest.raises(ValueError, match="does not overlap"):
        TemplateRedshiftFit(z_range=(0.0, 0.5)).fit([m[11000 * u.AA:] for m in models])
    with pytest.raises(NotFittedError):
        TemplateRedshiftFit().predict(models[:1])
    blue = _observed(models[0], 0.0, rng, wavelength=(1000.0, 2000.0))
    with pytest.raises(ValueError, match="no usable pixels inside"):
        fitted.predict([blue])


def test_no_allowed_redshift_gives_nan_with_a_warning():
    rng = np.random.default_rng(5)
    models = [_rest_model(rng)[5000 * u.AA:12000 * u.AA] for _ in range(6)]
    fit = TemplateRedshiftFit(z_range=(0.0, 0.5), min_coverage=0.95).fit(models)
    # the templates begin at 5000 Å: at most ~60 % of a 3600-9800 Å spectrum at any z ≤ 0.5
    with pytest.warns(NoRedshiftWarning, match="spectrum 0: .* redshift is NaN"):
        assert np.isnan(fit.predict([_observed(_rest_model(rng), 0.1, rng)])[0])


def test_parabola_refinement_skips_excluded_neighbours(fitted, monkeypatch):
    chi2 = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0, np.inf, np.inf])
    z = np.linspace(0.0, 0.07, 8)
    monkeypatch.setattr(fitted, "chi2", lambda spectrum, index=0: (z, chi2))
    assert fitted.predict([None])[0] == pytest.approx(z[5])


@pytest.mark.parametrize("parameters, message", [
    # each was taken, or failed deep inside numpy, astropy or the fit
    ({"n_templates": 2.7}, "n_templates must be a positive integer, got 2.7"),  # a slice's error
    ({"n_templates": True}, "n_templates must be a positive integer, got True"),  # 1 template
    ({"n_templates": "3"}, "n_templates must be a positive integer, got '3'"),
    ({"poly_degree": 1.5}, "poly_degree must be a non-negative integer, got 1.5"),
    ({"poly_degree": True}, "poly_degree must be a non-negative integer, got True"),  # degree 1
    ({"log_step": np.inf}, "log_step must be a positive, finite number"),  # NaN to integer
    ({"log_step": True}, "log_step must be a positive, finite number"),  # 1 dex
    ({"log_step": "1e-4"}, "log_step must be a positive, finite number"),
    ({"min_coverage": True}, r"min_coverage must be in \[0, 1\], got True"),
    ({"min_coverage": "0.9"}, r"min_coverage must be in \[0, 1\], got '0.9'"),
    ({"z_range": "05"}, r"z_range must be \(low, high\) .* got '05'"),  # read as (0, 5)
    ({"z_range": (False, 0.5)}, r"z_range must be \(low, high\)"),
    ({"z_range": (0.0, np.inf)}, r"z_range must be \(low, high\)"),  # OverflowError
    ({"z_range": 0.5}, r"z_range must be \(low, high\)"),  # 'float' object is not iterable
    ({"wavelength_range": (True, 10500.0)}, "wavelength_range must be two positive"),  # 1 Å
    ({"wavelength_range": 3500 * u.AA}, "wavelength_range must be two positive"),
    ({"wavelength_range": (3500.0, np.inf) * u.AA}, "wavelength_range must be two positive"),
])
def test_bad_parameters_are_named(parameters, message):
    models = [_rest_model(np.random.default_rng(6))]   # the parameters are checked first
    with pytest.raises(ValueError, match=message):
        TemplateRedshiftFit(**{"n_templates": 1, **parameters}).fit(models)


def test_wavelength_range_in_any_spectral_unit():
    models = [_rest_model(np.random.default_rng(7))]
    with pytest.raises(ValueError, match="wavelength_range must be two positive, finite"):
        TemplateRedshiftFit(wavelength_range=(3500.0, 10500.0) * u.s, n_templates=1).fit(models)
    # mixed pairs (a number is Å), as before the ranges were read in one place
    for mixed in [(3500.0, 1.05 * u.um), (0.35 * u.um, 10500.0)]:
        np.testing.assert_allclose(TemplateRedshiftFit(wavelength_range=mixed)._check_parameters()[1:],
                                   TemplateRedshiftFit()._check_parameters()[1:], rtol=1e-12)
    with pytest.raises(ValueError, match="wavelength_range must be two positive"):
        TemplateRedshiftFit(wavelength_range={3500.0, 10500.0}).fit(models)   # no order
    in_hz = (3500.0, 10500.0) * u.AA
    fit = TemplateRedshiftFit(wavelength_range=in_hz.to(u.Hz, u.spectral()), n_templates=1)
    assert fit.fit(models).n_observed_ == TemplateRedshiftFit(n_templates=1).fit(models).n_observed_


def test_one_spectrum_instead_of_a_list_is_refused(fitted):
    from specutils import SpectrumList

    rng = np.random.default_rng(8)
    models = [_rest_model(rng) for _ in range(2)]
    # the two were taken as two rest-frame models; list() of one Spectrum never ends
    with pytest.raises(TypeError, match="rest_spectra must be a list of spectra, got one "
                                        "SpectrumList: put it in a list"):
        TemplateRedshiftFit(n_templates=1).fit(SpectrumList(models))
    spectrum = _observed(models[0], 0.1, rng)
    pair = (spectrum.spectral_axis, spectrum.flux, spectrum.uncertainty.quantity)
    with pytest.raises(TypeError, match="spectra must be a list of spectra, got one tuple"):
        fitted.predict(pair)   # each item was read as a spectrum
    with pytest.raises(TypeError, match=r"spectra must be a list .* of spectra, got a str"):
        fitted.predict("abc")
    with pytest.raises(ValueError, match="spectra is empty"):   # was an empty array
        fitted.predict([])
