"""Tests of spectok.datasets.instruments: arms, presets, noise model, validation."""

import astropy.units as u
import numpy as np
import pytest

from spectok.datasets import INSTRUMENTS, Arm, Instrument, NoiseModel, get_instrument


# ---------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------


def test_get_instrument_unknown_lists_valid_names():
    with pytest.raises(ValueError, match="unknown instrument 'hubble'.*apogee.*desi.*sdss"):
        get_instrument("hubble")
    assert get_instrument("SDSS") is INSTRUMENTS["sdss"]
    assert get_instrument(INSTRUMENTS["desi"]) is INSTRUMENTS["desi"]


@pytest.mark.parametrize("name, n_arms, lo, hi, r_lo, r_hi, n_pix", [
    ("sdss", 1, 3600, 10400, 1500, 2700, (4550, 4650)),
    ("desi", 3, 3600, 9824, 2000, 5500, (7958, 7958)),
    ("lamost", 1, 3700, 9000, 1800, 1800, (3800, 3900)),
    ("gaia_xp", 1, 3360, 10200, 30, 100, (343, 343)),
    ("apogee", 3, 15140, 16960, 22500, 22500, (7000, 8575)),
    ("galah", 4, 4713, 7887, 28000, 28000, (16300, 16400)),
    ("spex_prism", 1, 6500, 25500, 75, 250, (555, 565)),
])
def test_presets_match_published_numbers(name, n_arms, lo, hi, r_lo, r_hi, n_pix):
    inst = INSTRUMENTS[name]
    assert len(inst.arms) == n_arms
    wmin, wmax = inst.wavelength_range.to_value(u.AA)
    assert wmin == pytest.approx(lo, rel=2e-3) and wmax == pytest.approx(hi, rel=2e-3)
    resolving = np.concatenate([arm.resolving_power() for arm in inst.arms])
    assert resolving.min() >= r_lo * 0.999 and resolving.max() <= r_hi * 1.001
    assert n_pix[0] <= inst.n_pixels <= n_pix[1]
    assert inst.reference  # every preset cites its numbers
    for arm in inst.arms:
        lam = arm.wavelength.to_value(u.AA)
        assert np.all(np.diff(lam) > 0)
        step = np.diff(np.log10(lam)) if arm.sampling == "log" else np.diff(lam)
        np.testing.assert_allclose(step, arm.step, rtol=1e-6)


def test_apogee_chips_have_gaps_on_the_apstar_grid():
    arms = INSTRUMENTS["apogee"].arms
    for left, right in zip(arms[:-1], arms[1:]):
        assert right.wavelength[0] - left.wavelength[-1] > 30 * u.AA
    for arm in arms:
        k = (np.log10(arm.wavelength.to_value(u.AA)) - 4.179) / 6e-6
        np.testing.assert_allclose(k, np.round(k), atol=1e-4)


def test_sdss_grid_is_on_the_sdss_loglam_grid():
    lam = INSTRUMENTS["sdss"].arms[0].wavelength.to_value(u.AA)
    k = np.log10(lam) / 1e-4
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)


# ---------------------------------------------------------------------------
# Noise model
# ---------------------------------------------------------------------------


def test_noise_model_floor_and_shot_terms():
    model = NoiseModel(floor_fraction=0.25)
    sigma = model.sigma(np.array([0.0, 1.0, 4.0]), snr=10.0, reference_flux=1.0)
    np.testing.assert_allclose(sigma**2, 0.01 * np.array([0.25, 1.0, 3.25]))
    with pytest.raises(ValueError, match="floor_fraction"):
        NoiseModel(floor_fraction=1.5)
    with pytest.raises(ValueError, match="no non-zero flux"):
        model.reference_flux(np.zeros(5))
    ref = NoiseModel(reference_wavelength=5000.0)
    assert ref.reference_flux(np.array([1.0, 9.0]), np.array([5000.0, 8000.0])) == 1.0


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def test_arm_and_instrument_validation():
    with pytest.raises(ValueError, match="exactly one of resolution and lsf_sigma"):
        Arm("x", 4000.0, 5000.0, 1.0)
    with pytest.raises(ValueError, match="exactly one"):
        Arm("x", 4000.0, 5000.0, 1.0, resolution=1000.0, lsf_sigma=1.0)
    with pytest.raises(ValueError, match="sampling"):
        Arm("x", 4000.0, 5000.0, 1.0, sampling="cubic", resolution=1000.0)
    with pytest.raises(ValueError, match="start < stop"):
        Arm("x", 5000.0, 4000.0, 1.0, resolution=1000.0)
    with pytest.raises(ValueError, match="table wavelengths must increase"):
        Arm("x", 4000.0, 5000.0, 1.0, resolution=[(5000.0, 1.0), (4000.0, 2.0)])
    with pytest.raises(ValueError, match="unique"):
        arm = Arm("x", 4000.0, 5000.0, 1.0, resolution=1000.0)
        Instrument("twins", [arm, arm])
    bad = Arm("x", 4000.0, 5000.0, 1.0, resolution=lambda lam: -np.ones_like(lam))
    with pytest.raises(ValueError, match="LSF must be positive"):
        bad.lsf_sigma_at(4500.0)


def test_arm_takes_quantities_and_stores_angstrom():
    arm = Arm("nir", 1.0 * u.um, 1.1 * u.um, 5 * u.AA, lsf_sigma=0.2 * u.nm)
    plain = Arm("nir", 10000.0, 11000.0, 5.0, lsf_sigma=2.0)
    assert (arm.start, arm.stop, arm.step, arm.lsf_sigma) == pytest.approx(
        (plain.start, plain.stop, plain.step, plain.lsf_sigma), rel=1e-15)
    assert arm.wavelength.unit == u.AA
    np.testing.assert_allclose(arm.wavelength, plain.wavelength, rtol=1e-15)
    assert Arm("f", 3.1e14 * u.Hz, 3e14 * u.Hz, 10.0, resolution=100.0).start == pytest.approx(
        (3.1e14 * u.Hz).to_value(u.AA, equivalencies=u.spectral()))
    log = Arm("log", 4000.0, 5000.0, 1e-4 * u.dex, "log", resolution=2000 * u.one)
    assert log == Arm("log", 4000.0, 5000.0, 1e-4, "log", resolution=2000.0)
    assert NoiseModel(reference_wavelength=0.55 * u.um).reference_wavelength == \
        pytest.approx(5500.0)
    assert NoiseModel(floor_fraction=30 * u.percent).floor_fraction == pytest.approx(0.3)
    # a resolution table's wavelengths as Quantities (astropy's TypeError before)
    table = Arm("t", 4000.0, 5000.0, 1.0, resolution=[(400 * u.nm, 1000), (0.5 * u.um, 2000)])
    assert table.resolving_power(4500.0) == pytest.approx(1500.0)
    # a 0-d array is a constant; a table as one dimensionless array, λ in Å, as before
    assert Arm("t", 4000.0, 5000.0, 1.0, resolution=np.array(2000.0)).resolution == 2000.0
    as_quantity = Arm("t", 4000.0, 5000.0, 1.0,
                      resolution=np.array([[4000.0, 1000.0], [5000.0, 2000.0]]) * u.one)
    assert as_quantity.resolving_power(4500.0) == pytest.approx(1500.0)


@pytest.mark.parametrize("arguments, keywords, match", [
    (("x", "4000", 5000.0, 1.0), {}, "start must be a number"),   # a numpy ufunc TypeError
    (("x", True, 5000.0, 1.0), {}, "start must be a number"),     # was taken as 1 Å
    (("x", 4000 * u.kg, 5000.0, 1.0), {}, "start must be in Å or another spectral unit"),
    (("x", 4000.0, 5000.0, 1.0 * u.s), {}, "step must be in Å or another length unit"),
    (("x", 4000.0, 5000.0, 1.0 * u.AA, "log"), {}, "log arm.*must be dimensionless"),
    (("x", [4000.0] * u.AA, 5000.0, 1.0), {}, "start must be one value"),
    (("x", 4000.0, 5000.0, 1.0), {"resolution": "2000"}, "resolution must be a number"),
    (("x", 4000.0, 5000.0, 1.0), {"resolution": -5.0}, "resolution must be positive"),
    (("x", 4000.0, 5000.0, 1.0), {"lsf_sigma": 0 * u.AA}, "lsf_sigma must be positive"),
    # a table with a non-positive R failed only when first used; a flat list is not a table
    (("x", 4000.0, 5000.0, 1.0), {"resolution": [(4000, -1), (5000, 100)]},
     "resolution table R must be positive"),
    (("x", 4000.0, 5000.0, 1.0), {"resolution": [4000, 1000]}, "sequence of .wavelength, R"),
    (("x", 4000.0, 5000.0, 1.0), {"resolution": [(4000 * u.s, 1000)]},
     "resolution table wavelength must be in Å or another spectral unit"),
])
def test_arm_refuses_values_of_the_wrong_kind(arguments, keywords, match):
    keywords = keywords or {"resolution": 1000.0}
    with pytest.raises(ValueError, match=match):
        Arm(*arguments, **keywords)


def test_an_instrument_takes_a_list_of_arms_and_a_noise_model():
    arm = Arm("b", 4000.0, 5000.0, 1.0, resolution=1000.0)
    with pytest.raises(TypeError, match="arms must be a list of Arm; put a single arm in a list"):
        Instrument("one", arm)   # "'Arm' object is not iterable"
    with pytest.raises(TypeError, match="noise must be a NoiseModel, got 0.3"):
        Instrument("one", [arm], 0.3)   # an AttributeError inside observe


def test_arm_with_a_wavelength_quantity_used_to_mix_units():
    # 0.4 um, 0.5 um with a step of 1 Å gave wavelengths labelled "Angstrom um"
    assert Arm("b", 0.4 * u.um, 0.5 * u.um, 1 * u.AA, resolution=1000.0).n_pixels == 1001


@pytest.mark.parametrize("keywords, match", [
    ({"floor_fraction": "0.5"}, "floor_fraction must be a number, got '0.5'"),
    ({"floor_fraction": True}, "floor_fraction must be a number, got True"),
    ({"floor_fraction": 1.5}, r"floor_fraction must be in \[0, 1\], got 1.5"),
    ({"reference_wavelength": "5000"}, "reference_wavelength must be a number"),
    ({"reference_wavelength": 5 * u.kg}, "reference_wavelength must be in Å"),
    ({"reference_wavelength": np.nan}, "reference_wavelength must be positive and finite"),
])
def test_noise_model_refuses_values_of_the_wrong_kind(keywords, match):
    with pytest.raises(ValueError, match=match):
        NoiseModel(**keywords)


@pytest.mark.parametrize("reference", [0.0, -1.0, np.nan, np.inf])
def test_noise_needs_a_positive_finite_reference_flux(reference):
    with pytest.raises(ValueError, match="reference_flux must be positive and finite"):
        NoiseModel(floor_fraction=0.5).sigma(np.ones(3), snr=10.0, reference_flux=reference)


def test_reference_flux_refuses_a_flux_that_is_not_finite():
    with pytest.raises(ValueError, match="the noiseless flux is not finite"):
        NoiseModel().reference_flux(np.array([1.0, 1.0, np.inf]))


def test_reference_flux_median_does_not_overflow_near_the_float_limit():
    flux = np.array([1e308, 1.5e308])  # numpy's (a + b) / 2 overflows
    assert NoiseModel().reference_flux(flux) == 1.25e308
