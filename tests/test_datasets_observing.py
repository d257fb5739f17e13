"""Tests of spectok.datasets.observing: LSF convolution, rebinning, coverage, noise."""

import dataclasses

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import InverseVariance, StdDevUncertainty
from scipy.optimize import curve_fit
from scipy.special import erf
from specutils import Spectrum, SpectrumList

from astropy.utils.masked import Masked

from spectok.adapter import SpectrumInputError
from spectok.datasets import (INSTRUMENTS, Arm, Instrument, ModelArrays, NoiseModel,
                              get_instrument, observe, observe_arrays)

FLAM = u.erg / (u.s * u.cm**2 * u.AA)


def line_spectrum(centre, width, area=1.0, continuum=1.0, half_range=None, n=8001,
                  medium="vacuum"):
    """A flat continuum plus one Gaussian emission line, finely sampled."""
    half_range = 60 * width if half_range is None else half_range
    lam = np.linspace(centre - half_range, centre + half_range, n)
    profile = np.exp(-0.5 * ((lam - centre) / width) ** 2) / (np.sqrt(2 * np.pi) * width)
    flux = continuum + area * profile
    return Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM, meta={"medium": medium})


def fit_line(observed, arm, guess_centre, guess_width):
    """Fit pixel-integrated Gaussian + constant to the unmasked pixels of one arm.

    Returns (area, centre, sigma, continuum).
    """
    good = ~observed.mask
    edges = arm.bin_edges.to_value(u.AA)
    lo, hi = edges[:-1][good], edges[1:][good]
    y = observed.flux.value[good]

    def model(_, area, centre, sigma, cont):
        cdf_hi = 0.5 * (1 + erf((hi - centre) / (np.sqrt(2) * sigma)))
        cdf_lo = 0.5 * (1 + erf((lo - centre) / (np.sqrt(2) * sigma)))
        return area * (cdf_hi - cdf_lo) / (hi - lo) + cont

    params, _ = curve_fit(model, np.zeros(y.size), y, p0=[1.0, guess_centre, guess_width, 1.0])
    return params


def arm_of(observed, name):
    if isinstance(observed, Spectrum):
        return observed
    return next(s for s in observed if s.meta["arm"] == name)


# ---------------------------------------------------------------------------
# LSF convolution: analytic Gaussian case
# ---------------------------------------------------------------------------


def test_narrow_line_becomes_quadrature_width_with_same_flux():
    inst = get_instrument("sdss")
    arm = inst.arms[0]
    centre, s0, area = 5000.0, 0.5, 2.0
    sigma_lsf = float(arm.lsf_sigma_at(centre).value)
    obs = observe(line_spectrum(centre, s0, area=area), inst, noise=False)
    fitted_area, fitted_centre, fitted_sigma, cont = fit_line(obs, arm, centre, 1.0)
    expected = np.hypot(s0, sigma_lsf)
    assert fitted_sigma == pytest.approx(expected, rel=2e-3)
    assert fitted_area == pytest.approx(area, rel=1e-3)
    assert fitted_centre == pytest.approx(centre, abs=0.01)
    assert cont == pytest.approx(1.0, rel=1e-4)
    # The degradation is real: the line got broader by the LSF.
    assert fitted_sigma > 2 * s0


def test_unresolved_line_takes_lsf_width():
    arm = INSTRUMENTS["lamost"].arms[0]
    centre = 6000.0
    sigma_lsf = float(arm.lsf_sigma_at(centre).value)
    spec = line_spectrum(centre, 0.01, half_range=40 * sigma_lsf, n=40001)
    obs = observe(spec, "lamost", noise=False)
    _, fitted_centre, fitted_sigma, _ = fit_line(obs, arm, centre, sigma_lsf)
    assert fitted_sigma == pytest.approx(sigma_lsf, rel=3e-3)
    assert fitted_centre == pytest.approx(centre, abs=0.01 * sigma_lsf)


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_resolution_degrades_as_specified_per_preset(name):
    inst = INSTRUMENTS[name]
    for arm in inst.arms:
        # Gaia XP: stay clear of the BP/RP switch, where R changes within a line width.
        centre = 4500.0 if name == "gaia_xp" else 0.5 * (arm.start + arm.stop) * 1.0003
        sigma_lsf = float(arm.lsf_sigma_at(centre).value)
        s0 = sigma_lsf / 3
        spec = line_spectrum(centre, s0, half_range=30 * sigma_lsf, n=6001)
        obs = arm_of(observe(spec, inst, noise=False), arm.name)
        # Where R changes fast (Gaia XP) a flat input does not stay exactly flat
        # (the LSF is per source wavelength): fit the line on top of that response.
        flat = arm_of(observe(line_spectrum(centre, s0, area=0.0, half_range=30 * sigma_lsf,
                                            n=6001), inst, noise=False), arm.name)
        obs = Spectrum(spectral_axis=obs.spectral_axis, flux=obs.flux - flat.flux + 1 * FLAM,
                       mask=obs.mask)
        area, fitted_centre, fitted_sigma, _ = fit_line(obs, arm, centre, sigma_lsf)
        assert fitted_sigma == pytest.approx(np.hypot(s0, sigma_lsf), rel=5e-3), arm.name
        assert area == pytest.approx(1.0, rel=5e-3), arm.name
        assert fitted_centre == pytest.approx(centre, abs=0.02 * sigma_lsf), arm.name
        resolving = centre / (2.3548 * sigma_lsf)
        assert resolving == pytest.approx(float(arm.resolving_power(centre)), rel=1e-3)


def test_input_resolution_is_removed_in_quadrature():
    arm = INSTRUMENTS["sdss"].arms[0]
    centre = 5500.0
    sigma_lsf = float(arm.lsf_sigma_at(centre).value)
    s_in = 0.6 * sigma_lsf
    spec = line_spectrum(centre, s_in)
    obs = observe(spec, "sdss", noise=False, input_resolution=s_in * u.AA)
    _, _, fitted_sigma, _ = fit_line(obs, arm, centre, sigma_lsf)
    assert fitted_sigma == pytest.approx(sigma_lsf, rel=3e-3)
    assert obs.meta["resolution_limited"] == 0.0
    # The same information in meta, as observe() writes it, is used by default.
    spec.meta["lsf_sigma"] = np.full(spec.flux.size, s_in) * u.AA
    auto = observe(spec, "sdss", noise=False)
    np.testing.assert_allclose(auto.flux.value, obs.flux.value, rtol=1e-12)
    # An input coarser than the instrument keeps its own resolution, and says so.
    coarse = observe(spec, "sdss", noise=False, input_resolution=2 * sigma_lsf * u.AA)
    assert coarse.meta["resolution_limited"] > 0.0


def test_spectral_resolution_meta_is_read_as_resolving_power():
    spec = line_spectrum(5500.0, 0.3)
    spec.meta["spectral_resolution"] = np.full(spec.flux.size, 1e6)
    sharp = observe(spec, "sdss", noise=False)
    plain = observe(spec, "sdss", noise=False, input_resolution=None)
    np.testing.assert_allclose(sharp.flux.value, plain.flux.value, rtol=1e-4)


# ---------------------------------------------------------------------------
# Flux conservation, coverage, units
# ---------------------------------------------------------------------------


def smooth_spectrum(lo=3000.0, hi=12000.0, step=0.05):
    lam = np.arange(lo, hi, step)
    flux = 1e-16 * (lam / 5000.0) ** -1.5 * (1 + 0.3 * np.sin(lam / 300.0))
    return lam, flux


@pytest.mark.parametrize("name", ["sdss", "desi", "galah"])
def test_flux_conserved_on_smooth_spectrum(name):
    lam, flux = smooth_spectrum()
    inst = INSTRUMENTS[name]
    obs = observe(Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM), inst, noise=False)
    for arm, s in zip(inst.arms, [obs] if isinstance(obs, Spectrum) else obs):
        edges = arm.bin_edges.to_value(u.AA)
        assert not s.mask.any()
        total = np.sum(s.flux.value * np.diff(edges))
        inside = (lam >= edges[0]) & (lam <= edges[-1])
        f, w = flux[inside], lam[inside]
        expected = np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(w))  # trapezoid rule
        assert total == pytest.approx(expected, rel=1e-3)


def test_constant_model_much_wider_than_the_arms_stays_constant():
    # The model spans 3000-11000 Å; GALAH's arms are ~200 Å wide. Only the input
    # under an arm may enter its sums (cumulative integrals over the whole model
    # lose ~1e-7 of a narrow arm's flux to rounding).
    lam = np.linspace(3000.0, 11000.0, 400_000)
    obs = observe(Spectrum(spectral_axis=lam * u.AA, flux=np.full(lam.size, 1e-13) * FLAM),
                  "galah", noise=False)
    for arm in obs:
        np.testing.assert_allclose(arm.flux.value, 1e-13, rtol=1e-8)


def test_redshift_moves_line_and_keeps_line_flux():
    arm = INSTRUMENTS["desi"].arms[2]
    rest, z = 6564.61, 0.3
    obs = arm_of(observe(line_spectrum(rest, 1.0, area=3.0), "desi", redshift=z, noise=False),
                 "z")
    area, centre, sigma, cont = fit_line(obs, arm, rest * (1 + z), 2.0)
    assert centre == pytest.approx(rest * (1 + z), abs=0.02)
    assert area == pytest.approx(3.0, rel=1e-3)  # f_λ/(1+z) over a (1+z) wider line
    assert cont == pytest.approx(1.0 / (1 + z), rel=1e-4)
    sigma_lsf = float(arm.lsf_sigma_at(rest * (1 + z)).value)
    assert sigma == pytest.approx(np.hypot(1.0 * (1 + z), sigma_lsf), rel=3e-3)
    assert obs.meta["redshift"] == z


def test_air_wavelengths_are_converted_to_vacuum():
    arm = INSTRUMENTS["sdss"].arms[0]
    air = line_spectrum(6562.80, 0.3, medium="air")  # Hα in air
    obs = observe(air, "sdss", noise=False)
    _, centre, _, _ = fit_line(obs, arm, 6564.6, 1.5)
    assert centre == pytest.approx(6564.61, abs=0.03)
    assert obs.meta["medium"] == "vacuum"


def test_units_nm_frequency_and_fnu_are_handled():
    lam, flux = smooth_spectrum(3000.0, 12000.0, 0.5)
    reference = observe(Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM), "lamost",
                        noise=False)
    in_nm = Spectrum(spectral_axis=(lam / 10) * u.nm, flux=flux * FLAM)
    np.testing.assert_allclose(observe(in_nm, "lamost", noise=False).flux.value,
                               reference.flux.value, rtol=1e-7)
    fnu = (flux * FLAM).to(u.Jy, equivalencies=u.spectral_density(lam * u.AA))
    freq = (lam * u.AA).to(u.Hz, equivalencies=u.spectral())
    in_hz = Spectrum(spectral_axis=freq[::-1], flux=fnu[::-1])
    out = observe(in_hz, "lamost", noise=False)
    assert out.flux.unit == FLAM
    np.testing.assert_allclose(out.flux.value, reference.flux.value, rtol=1e-6)
    # another f_λ unit (SpeX's) is a scale away
    in_si = Spectrum(spectral_axis=lam * u.AA, flux=(flux * FLAM).to(u.W / u.m**2 / u.um))
    out = observe(in_si, "lamost", noise=False)
    assert out.flux.unit == FLAM
    np.testing.assert_allclose(out.flux.value, reference.flux.value, rtol=1e-7)
    # Normalised (dimensionless) flux keeps its unit.
    norm = observe(Spectrum(spectral_axis=lam * u.AA, flux=np.ones(lam.size) * u.one),
                   "lamost", noise=False)
    assert norm.flux.unit == u.one
    np.testing.assert_allclose(norm.flux.value, 1.0, rtol=1e-9)


def test_a_flux_unit_that_is_not_a_flux_is_refused():
    lam, flux = smooth_spectrum(4000.0, 6000.0, 0.5)
    with pytest.raises(u.UnitConversionError, match=r"observe\(\): flux unit m .*not a flux"):
        observe(Spectrum(spectral_axis=lam * u.AA, flux=flux * u.m), "sdss", noise=False)
    with pytest.raises(u.UnitConversionError, match=r"observe\(\): flux is in magnitudes"):
        observe((lam * u.AA, np.full(lam.size, 15.0) * u.ABmag), "sdss", noise=False)


@pytest.mark.parametrize("wave, meta, message", [
    (np.linspace(4000.0, 6000.0, 100), {"medium": "AIR"}, "medium must be"),
    (np.linspace(1500.0, 3000.0, 100), {"medium": "air"}, "air wavelengths below 2000"),
])
def test_a_spectral_axis_the_adapter_refuses_is_refused(wave, meta, message):
    spectrum = Spectrum(spectral_axis=wave * u.AA, flux=np.ones(wave.size) * FLAM, meta=meta)
    with pytest.raises(SpectrumInputError, match=message):
        observe(spectrum, "sdss", noise=False)


def test_masked_values_of_a_tuples_flux_are_not_used():
    lam, flux = smooth_spectrum(4000.0, 6000.0, 0.5)
    spiked = flux.copy()
    bad = np.zeros(lam.size, bool)
    bad[lam.size // 2:] = True
    spiked[bad] = 1e6 * flux.max()
    masked = observe((lam * u.AA, Masked(spiked * FLAM, mask=bad)), "sdss", noise=False)
    clean = observe(Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM, mask=bad), "sdss",
                    noise=False)
    np.testing.assert_array_equal(masked.mask, clean.mask)
    np.testing.assert_allclose(masked.flux.value, clean.flux.value, rtol=1e-12)
    assert masked.mask.any() and not masked.mask.all()
    with pytest.raises(SpectrumInputError, match=r"observe\(\): the spectral axis has 1 masked"):
        observe((Masked(lam * u.AA, mask=np.arange(lam.size) == 3), flux * FLAM), "sdss")


def test_a_resolution_that_is_not_a_number_is_refused():
    lam, flux = smooth_spectrum(4000.0, 6000.0, 0.5)
    with pytest.raises(TypeError, match="input_resolution: give a resolving power .*'high'"):
        observe((lam * u.AA, flux * FLAM), "sdss", noise=False, input_resolution="high")


def test_tuple_and_spectrumlist_inputs():
    lam, flux = smooth_spectrum(3000.0, 12000.0, 0.5)
    reference = observe(Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM), "sdss",
                        noise=False)
    from_tuple = observe((lam * u.AA, flux * FLAM), "sdss", noise=False)
    np.testing.assert_allclose(from_tuple.flux.value, reference.flux.value)
    half = lam.size // 2
    arms = SpectrumList([Spectrum(spectral_axis=lam[:half] * u.AA, flux=flux[:half] * FLAM),
                         Spectrum(spectral_axis=lam[half:] * u.AA, flux=flux[half:] * FLAM)])
    np.testing.assert_allclose(observe(arms, "sdss", noise=False).flux.value,
                               reference.flux.value, rtol=1e-12)
    converted = ModelArrays.from_spectrum((lam * u.AA, flux * FLAM))
    from_arrays = observe(converted, "sdss", noise=False)
    np.testing.assert_array_equal(from_arrays.flux.value, reference.flux.value)
    assert from_arrays.flux.unit == FLAM
    with pytest.raises(ValueError, match="sigma"):
        observe(converted, "sdss", input_resolution=2000.0)


def test_pixels_outside_coverage_are_masked_not_extrapolated():
    lam = np.arange(4000.0, 6000.0, 0.1)
    spec = Spectrum(spectral_axis=lam * u.AA, flux=np.ones(lam.size) * FLAM)
    obs = observe(spec, "sdss", snr=10, rng=0)
    wave = obs.spectral_axis.to_value(u.AA)
    inside = (wave > 4010) & (wave < 5990)
    outside = (wave < 4000) | (wave > 6000)
    assert not obs.mask[inside].any()
    assert obs.mask[outside].all()
    assert np.all(obs.flux.value[obs.mask] == 0)
    assert np.all(obs.uncertainty.array[obs.mask] == 0)
    assert np.all(obs.uncertainty.array[~obs.mask] > 0)
    # Multi-arm: an arm the spectrum does not reach is entirely masked.
    desi = observe(spec, "desi", snr=10, rng=0)
    assert desi[2].mask.all() and not desi[0].mask.all()


def test_gaps_between_merged_arms_are_masked():
    blue = np.arange(4000.0, 5000.0, 0.5)
    red = np.arange(5500.0, 7000.0, 0.5)
    arms = SpectrumList([Spectrum(spectral_axis=w * u.AA, flux=np.ones(w.size) * FLAM)
                         for w in (blue, red)])
    obs = observe(arms, "sdss", noise=False)
    wave = obs.spectral_axis.to_value(u.AA)
    assert obs.mask[(wave > 5001) & (wave < 5499)].all()
    assert not obs.mask[(wave > 4010) & (wave < 4990)].any()
    assert not obs.mask[(wave > 5510) & (wave < 6990)].any()


def test_masked_input_pixels_mask_what_they_touch():
    lam = np.arange(4000.0, 7000.0, 0.5)
    mask = (lam > 5000) & (lam < 5010)
    flux = np.ones(lam.size)
    flux[mask] = np.nan
    spec = Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM, mask=mask)
    obs = observe(spec, "sdss", noise=False)
    wave = obs.spectral_axis.to_value(u.AA)
    assert obs.mask[(wave > 5001) & (wave < 5009)].all()
    assert not obs.mask[(wave > 5100) & (wave < 6900)].any()
    assert np.all(np.isfinite(obs.flux.value))


# ---------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------


def test_noise_matches_inverse_variance():
    lam, flux = smooth_spectrum(3000.0, 10500.0, 0.5)
    spec = Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM)
    clean = observe(spec, "desi", snr=15, noise=False)
    chi2, dof = 0.0, 0
    for seed in range(6):
        noisy = observe(spec, "desi", snr=15, rng=seed)
        for a, b in zip(noisy, clean):
            assert isinstance(a.uncertainty, InverseVariance)
            np.testing.assert_array_equal(a.uncertainty.array, b.uncertainty.array)
            chi2 += np.sum((a.flux.value - b.flux.value) ** 2 * a.uncertainty.array)
            dof += int(np.sum(a.uncertainty.array > 0))
    assert dof > 40_000
    assert chi2 / dof == pytest.approx(1.0, abs=0.03)


def test_snr_is_met_at_the_reference_flux():
    lam = np.arange(3000.0, 11000.0, 1.0)
    spec = Spectrum(spectral_axis=lam * u.AA, flux=np.ones(lam.size) * FLAM)
    for snr in (5.0, 50.0):
        obs = observe(spec, "sdss", snr=snr, noise=False)
        achieved = obs.flux.value * np.sqrt(obs.uncertainty.array)
        # (flat to 3e-4: the BOSS LSF changes at the dichroic, and the LSF
        # belongs to the source wavelength)
        np.testing.assert_allclose(achieved, snr, rtol=1e-3)
        assert obs.meta["snr"] == snr


def test_rng_seed_and_generator_are_reproducible():
    lam, flux = smooth_spectrum(3000.0, 11000.0, 1.0)
    spec = Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM)
    a = observe(spec, "sdss", rng=7)
    b = observe(spec, "sdss", rng=np.random.default_rng(7))
    c = observe(spec, "sdss", rng=8)
    np.testing.assert_array_equal(a.flux.value, b.flux.value)
    assert not np.array_equal(a.flux.value, c.flux.value)


# ---------------------------------------------------------------------------
# Errors and custom instruments
# ---------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    lam, flux = smooth_spectrum(3000.0, 11000.0, 1.0)
    spec = Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM)
    with pytest.raises(ValueError, match="unknown instrument 'nope'; valid names"):
        observe(spec, "nope")
    with pytest.raises(ValueError, match="does not cover any pixel of 'apogee'"):
        observe(spec, "apogee")
    with pytest.raises(ValueError, match="snr must be positive"):
        observe(spec, "sdss", snr=-5)
    with pytest.raises(ValueError, match="snr must be positive"):
        observe(spec, "sdss", snr=0)
    with pytest.raises(ValueError, match="snr must be a positive number"):
        observe(spec, "sdss", snr="high")
    with pytest.raises(ValueError, match="redshift"):
        observe(spec, "sdss", redshift=-1.0)
    with pytest.raises(ValueError, match="1-D"):
        observe(Spectrum(spectral_axis=lam * u.AA, flux=np.ones((2, lam.size)) * FLAM), "sdss")
    with pytest.raises(u.UnitConversionError, match="not a wavelength"):
        observe((lam * u.s, flux * FLAM), "sdss")
    with pytest.raises(TypeError, match="specutils.Spectrum"):
        observe(np.ones(10), "sdss")
    nan = Spectrum(spectral_axis=lam * u.AA, flux=np.full(lam.size, np.nan) * FLAM)
    with pytest.raises(ValueError, match="fewer than 2 valid pixels"):
        observe(nan, "sdss")


def test_custom_instrument_with_lsf_sigma_and_replace():
    arm = Arm("toy", 4000.0, 6000.0, 0.5, lsf_sigma=2.0)
    inst = Instrument("toy", [arm], NoiseModel(floor_fraction=1.0))
    spec = line_spectrum(5000.0, 0.2, half_range=200.0)
    obs = observe(spec, inst, noise=False)
    _, _, sigma, _ = fit_line(obs, arm, 5000.0, 2.0)
    assert sigma == pytest.approx(np.hypot(0.2, 2.0), rel=3e-3)
    assert obs.meta["instrument"] == "toy"
    np.testing.assert_allclose(obs.meta["lsf_sigma"].to_value(u.AA), 2.0)
    # Presets are frozen; variants are made with dataclasses.replace.
    wide = dataclasses.replace(INSTRUMENTS["spex_prism"].arms[0], resolution=75.0)
    assert float(wide.resolving_power(15000.0)) == 75.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        INSTRUMENTS["sdss"].name = "other"


def test_stddev_uncertainty_of_input_is_ignored_but_mask_used():
    lam = np.arange(4000.0, 7000.0, 0.5)
    spec = Spectrum(spectral_axis=lam * u.AA, flux=np.ones(lam.size) * FLAM,
                    uncertainty=StdDevUncertainty(np.full(lam.size, 0.1) * FLAM))
    obs = observe(spec, "sdss", snr=20, noise=False)
    good = ~obs.mask
    np.testing.assert_allclose(obs.flux.value[good] * np.sqrt(obs.uncertainty.array[good]), 20.0,
                               rtol=1e-3)


# ---------------------------------------------------------------------------
# Bad input found by fuzzing (benchmarks/fuzz_adapter.py --targets observe);
# floating-point warnings are errors in the test run, so these also check
# that no numpy warning escapes.
# ---------------------------------------------------------------------------


def test_a_resolving_power_per_pixel_as_an_array_is_used():
    # an ndarray was compared with "auto" and raised numpy's "truth value of an array"
    lam, flux = smooth_spectrum(4000.0, 8000.0, 0.5)
    spec = (lam * u.AA, flux * FLAM)
    scalar = observe(spec, "lamost", noise=False, input_resolution=5000.0)
    for per_pixel in (np.full(lam.size, 5000.0), [5000.0] * lam.size):
        observed = observe(spec, "lamost", noise=False, input_resolution=per_pixel)
        np.testing.assert_array_equal(observed.flux.value, scalar.flux.value)
    with pytest.raises(ValueError, match=r"input_resolution: give a scalar or one value per "
                                         r"pixel \(8000\)"):
        observe(spec, "lamost", input_resolution=np.array([]))


def test_a_line_spread_sigma_must_be_a_wavelength():
    # u.spectral() turned 1 GHz into the wavelength of 1 GHz (30 cm) and used it as σ
    lam, flux = smooth_spectrum(4000.0, 8000.0, 0.5)
    spec = Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM)
    for sigma in (1 * u.GHz, 30 * u.km / u.s, 2 * u.one, 1 * u.pix):
        with pytest.raises(u.UnitConversionError,
                           match="input_resolution: a line-spread σ must be a wavelength"):
            observe(spec, "sdss", input_resolution=sigma)
    # meta["lsf_sigma"] that is not a wavelength Quantity was silently ignored
    spec.meta["lsf_sigma"] = 30 * u.km / u.s
    with pytest.raises(u.UnitConversionError, match=r"meta\['lsf_sigma'\]: a line-spread σ"):
        observe(spec, "sdss")
    spec.meta["lsf_sigma"] = np.full(lam.size, 0.7)
    with pytest.raises(TypeError, match=r"meta\['lsf_sigma'\]: give the line-spread σ as a "
                                        r"wavelength Quantity .*not ndarray"):
        observe(spec, "sdss")


def test_extreme_input_resolutions_give_a_result_or_a_named_error():
    lam, flux = smooth_spectrum(4000.0, 8000.0, 0.5)
    spec = (lam * u.AA, flux * FLAM)
    with pytest.raises(ValueError, match=r"input_resolution: resolving power 4\.94066e-324 is "
                                         r"too small: σ = λ / \(2\.3548 R\) overflows"):
        observe(spec, "sdss", input_resolution=5e-324)
    for coarse in (1e-300, 1e300 * u.AA, 1e200 * u.AA):  # σ² overflowed
        observed = observe(spec, "sdss", noise=False, input_resolution=coarse, redshift=0.5)
        good = ~observed.mask
        assert good.any() and np.all(np.isfinite(observed.flux.value[good]))
        assert observed.meta["resolution_limited"] == pytest.approx(good.mean())


@pytest.mark.parametrize("level, snr", [(1e-17, 1e300), (1e-17, 1e-300), (1e-17, 5e-324),
                                        (1e200, 20.0), (1e-200, 20.0)])
def test_noise_beyond_float64_is_refused(level, snr):
    # an OverflowError from (ref / snr) ** 2, or an infinite inverse variance
    lam = np.arange(3000.0, 11000.0, 1.0)
    spec = Spectrum(spectral_axis=lam * u.AA, flux=np.full(lam.size, level) * FLAM)
    with pytest.raises(ValueError, match=r"snr=.* at the reference flux .* gives a noise σ of "
                                         r".*beyond float64's range"):
        observe(spec, "sdss", snr=snr)


def test_a_flux_too_large_for_the_arithmetic_is_refused():
    lam = np.arange(3000.0, 11000.0, 1.0)
    spec = Spectrum(spectral_axis=lam * u.AA, flux=np.full(lam.size, 1e307) * FLAM)
    with pytest.raises(ValueError, match=r"arm 'boss' of 'sdss': the simulated flux is not "
                                         r"finite on \d+ pixels: the input's flux \(up to 1e\+307"):
        observe(spec, "sdss", snr=1e300, noise=False)


def test_reference_flux_and_noise_near_the_float_limit():
    model = NoiseModel()
    assert model.reference_flux(np.array([1.7e308, 1.7e308])) == 1.7e308  # no overflow
    assert model.reference_flux(np.array([1.0, 3.0])) == 2.0
    with pytest.raises(ValueError, match="beyond float64's range"):
        model.sigma(np.ones(3), snr=1e-300, reference_flux=1.0)
    sigma = NoiseModel(floor_fraction=0.0).sigma(np.array([0.0, 1.0, 1e300]), snr=1.0,
                                                 reference_flux=1e-10)
    assert sigma[2] == np.inf and np.all(sigma[:2] > 0)


def test_a_redshift_or_rng_that_is_not_one_is_named():
    lam, flux = smooth_spectrum(4000.0, 8000.0, 0.5)
    spec = (lam * u.AA, flux * FLAM)
    for z in (None, "z", "0.1", True, [0.1, 0.2]):
        with pytest.raises(ValueError, match="redshift must be a number > -1, got"):
            observe(spec, "sdss", redshift=z)
    for snr in ("10", np.True_):
        with pytest.raises(ValueError, match="snr must be a positive number, got"):
            observe(spec, "sdss", snr=snr)
    blue = observe(spec, "sdss", redshift=np.float32(-0.1), rng=1)
    assert blue.meta["redshift"] == pytest.approx(-0.1)
    with pytest.raises(ValueError, match=r"at z=1e\+305 reaches beyond the largest float64 "
                                         r"wavelength .*does not cover any pixel of 'sdss'"):
        observe(spec, "sdss", redshift=1e305)
    with pytest.raises(ValueError, match=r"observed frame 4e\+303-8e\+303 Å at z=1e\+300\) "
                                         r"does not cover"):
        observe(spec, "sdss", redshift=1e300)
    with pytest.raises(TypeError, match=r"rng must be None, a non-negative integer seed \(or a "
                                        r"sequence of them\) or a numpy.random.Generator, "
                                        r"not 1\.5"):
        observe(spec, "sdss", rng=1.5)
    with pytest.raises(ValueError, match="rng must be None, .*not -1"):
        observe(spec, "sdss", rng=-1)
    observe(spec, "sdss", rng=[3, 7])  # a sequence of seeds, as the tutorials use


def test_a_tuple_of_three_and_a_spectrum_in_magnitudes_are_named():
    lam, flux = smooth_spectrum(4000.0, 8000.0, 0.5)
    with pytest.raises(TypeError, match=r"observe\(\) takes a \(wavelength, flux\) pair, not a "
                                        r"tuple of 3 items; it draws its own noise"):
        observe((lam * u.AA, flux * FLAM, 0.1 * flux * FLAM), "sdss")
    magnitudes = Spectrum(spectral_axis=lam * u.AA, flux=u.Magnitude(np.full(lam.size, 15.0),
                                                                     u.ABmag))
    with pytest.raises(u.UnitConversionError, match=r"observe\(\): flux is in magnitudes"):
        observe(magnitudes, "sdss")


def test_a_flux_without_a_unit_is_refused_as_the_adapter_refuses_it():
    lam, flux = smooth_spectrum(4000.0, 8000.0, 0.5)
    with pytest.raises(u.UnitConversionError, match=r"observe\(\): the flux has no unit"):
        observe((lam * u.AA, flux), "sdss")
    normalised = observe((lam * u.AA, flux / flux.mean() * u.one), "sdss", rng=1)
    assert normalised.flux.unit == u.one


def test_a_zero_frequency_or_an_overflowing_flux_conversion_gives_no_warning():
    # eV → Å divided by zero inside astropy (a RuntimeWarning) before the axis was refused
    energy = np.linspace(-0.03, 0.03, 19) * u.eV
    with pytest.raises(SpectrumInputError, match=r"observe\(\): spectral axis: the spectral "
                                                 r"axis has 1 non-finite values"):
        observe((energy, np.ones(energy.size) * FLAM), "sdss")
    # f_ν → f_λ overflowed (a RuntimeWarning); such pixels are not used, like non-finite ones
    lam = np.arange(3000.0, 11000.0, 1.0)
    fnu = np.full(lam.size, 1e-27)
    fnu[4000:4010] = 1e300
    fnu_unit = u.erg / (u.s * u.cm**2 * u.Hz)
    observed = observe((lam * u.AA, fnu * fnu_unit), "sdss", noise=False)
    clean = observe(Spectrum(spectral_axis=lam * u.AA, flux=np.full(lam.size, 1e-27) * fnu_unit,
                             mask=np.arange(lam.size) // 10 == 400), "sdss", noise=False)
    np.testing.assert_array_equal(observed.mask, clean.mask)
    assert observed.mask.any() and not observed.mask.all()
    with pytest.raises(ValueError, match="fewer than 2 valid pixels"):
        observe((lam * u.AA, np.full(lam.size, 1e300) * fnu_unit), "sdss")


def test_overlapping_arms_keep_the_valid_pixel_of_a_duplicated_wavelength():
    # the first of two pixels at one wavelength was kept even when it was the masked one: the
    # valid pixels were lost and observe() failed with an IndexError
    lam = np.arange(4000.0, 8000.0, 0.5)
    flux = np.ones(lam.size) * FLAM
    masked = Spectrum(spectral_axis=lam * u.AA, flux=flux, mask=np.ones(lam.size, bool))
    valid = Spectrum(spectral_axis=lam * u.AA, flux=flux)
    reference = observe(valid, "sdss", noise=False)
    for arms in ([masked, valid], [valid, masked]):
        merged = observe(SpectrumList(arms), "sdss", noise=False)
        np.testing.assert_array_equal(merged.mask, reference.mask)
        np.testing.assert_array_equal(merged.flux.value, reference.flux.value)
    one = Spectrum(spectral_axis=[5000.0, 5001.0] * u.AA, flux=[1.0, 1.0] * FLAM,
                   mask=[False, True])
    with pytest.raises(ValueError, match="fewer than 2 valid pixels at distinct wavelengths"):
        observe(SpectrumList([one, one]), "sdss")


@pytest.mark.parametrize("change, message", [
    ({"flux": [1.0, np.nan, 1.0]}, "flux must be finite"),
    ({"wavelength": [4000.0, 4000.0, 4002.0]}, "strictly increasing"),
    ({"wavelength": [4000.0, np.nan, 4002.0]}, "strictly increasing"),
    ({"sigma": [0.5, np.nan, 0.5]}, "sigma must be finite and non-negative"),
    ({"good": [True, True]}, r"good has shape \(2,\), wavelength \(3,\)"),
    ({"wavelength": [4000.0]}, "at least 2 values"),
])
def test_model_arrays_hold_no_nan_or_unsorted_wavelengths(change, message):
    # observe_arrays quiets floating-point warnings: a NaN must not enter it unseen
    arrays = {"wavelength": [4000.0, 4001.0, 4002.0], "flux": [1.0, 1.0, 1.0],
              "unit": u.one, "good": [True, True, True], "sigma": None}
    arrays.update(change)
    arrays = {k: np.array(v) if isinstance(v, list) else v for k, v in arrays.items()}
    with pytest.raises(ValueError, match=f"ModelArrays: .*{message}"):
        ModelArrays(**arrays)


def test_an_inverse_variance_beyond_float64_is_refused():
    lam = np.linspace(3000.0, 11000.0, 20_000)
    faint = ModelArrays(lam, np.full(lam.size, 1e-155), u.one, np.ones(lam.size, bool))
    with pytest.raises(ValueError, match="arm 'boss' of 'sdss': the noise at snr=1 .* inverse "
                                         "variance beyond float64's range"):
        observe_arrays(faint, "sdss", snr=1.0, rng=1)
