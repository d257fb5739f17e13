"""The unit-aware adapter: recognition, units, validity, errors, padding layout."""

import warnings

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import (InverseVariance, StdDevUncertainty, UnknownUncertainty,
                            VarianceUncertainty)
from astropy.utils.masked import Masked
from specutils import Spectrum, SpectrumList

from spectok import adapter
from spectok.adapter import (ERROR_MODES, FLAM, NoUncertaintyWarning, PreparedSpectrum,
                             SpectrumInputError, SpectrumInputWarning, canonical_flux,
                             flux_in_unit, is_single_spectrum, iter_spectra, log_bin_edges,
                             prepare_spectra, prepare_spectrum, to_batch, warn_skipped,
                             wavelength_grid)
from spectok.adapter.errors import _check_error_mode

# -- recognising inputs ---------------------------------------------------------------


def test_iter_spectra_single(pair, spectrum):
    wave, flux, sigma = pair
    for single in (spectrum, SpectrumList([spectrum]), (wave, flux), (wave, flux, sigma),
                   (wave, flux, StdDevUncertainty(sigma))):
        items, is_single = iter_spectra(single)
        assert is_single is True
        assert len(items) == 1 and items[0] is single


def test_iter_spectra_many(pair, spectrum):
    wave, flux, sigma = pair
    for many, n in (([spectrum, spectrum], 2), ([pair], 1), ((pair, pair), 2),
                    ((spectrum, spectrum), 2), ((spectrum, spectrum, spectrum), 3),
                    ([spectrum, SpectrumList([spectrum]), pair], 3)):
        items, is_single = iter_spectra(many)
        assert is_single is False
        assert len(items) == n


def test_iter_spectra_rejects_empty_and_junk():
    with pytest.raises(SpectrumInputError, match="no spectra given: the list is empty"):
        iter_spectra([])
    with pytest.raises(SpectrumInputError, match="cannot read a spectrum from str"):
        iter_spectra("spectrum.fits")
    with pytest.raises(SpectrumInputError, match="cannot read a spectrum from dict"):
        iter_spectra({"flux": 1})


# -- units ------------------------------------------------------------------------------


def test_prepare_returns_vacuum_angstrom_ascending(pair):
    wave, flux, sigma = pair
    p = prepare_spectrum((wave.to(u.um)[::-1], flux[::-1], sigma[::-1]))
    assert isinstance(p, PreparedSpectrum)
    np.testing.assert_allclose(p.wavelength[0], wave.value, rtol=1e-12)
    np.testing.assert_allclose(p.flux[0], flux.value, rtol=1e-12)
    np.testing.assert_allclose(p.sigma[0], sigma.value, rtol=1e-12)
    assert p.has_uncertainty and p.valid[0].all()


def test_masked_values_of_a_tuple_are_invalid_pixels(pair):
    wave, flux, sigma = pair
    flux_mask = np.zeros(len(wave), bool)
    flux_mask[10:20] = True
    sigma_mask = np.zeros(len(wave), bool)
    sigma_mask[30] = True
    p = prepare_spectrum((wave, Masked(flux, mask=flux_mask), Masked(sigma, mask=sigma_mask)))
    np.testing.assert_array_equal(p.valid[0], ~(flux_mask | sigma_mask))
    # the masked values themselves are not used: the same as if they were NaN
    with_nan = flux.copy()
    with_nan[flux_mask] = np.nan
    np.testing.assert_array_equal(p.valid[0][:30], prepare_spectrum((wave, with_nan, sigma))
                                  .valid[0][:30])
    with pytest.raises(SpectrumInputError, match="spectral axis has 1 masked values"):
        prepare_spectrum((Masked(wave, mask=np.arange(len(wave)) == 3), flux, sigma))
    with pytest.raises(SpectrumInputError, match="uncertainty has 3 values but flux has 150"):
        prepare_spectrum((wave, flux, Masked(sigma[:3], mask=np.zeros(3, bool))))


@pytest.mark.parametrize("unit, canonical", [
    (FLAM, FLAM),
    (u.Jy, FLAM),
    (u.W / u.m**2 / u.Hz, FLAM),
    (u.ph / u.s / u.cm**2 / u.AA, FLAM),
    (u.MJy / u.sr, FLAM / u.sr),
    (u.ct, u.ct),
    (u.electron / u.s, u.electron / u.s),
    (u.dimensionless_unscaled, u.dimensionless_unscaled),
])
def test_canonical_units(unit, canonical):
    wave = np.linspace(5000, 6000, 40) * u.AA
    p = prepare_spectrum((wave, np.linspace(1, 2, 40) * unit))
    assert p.unit == canonical
    assert p.input_unit == unit


def test_flux_converted_with_spectral_density(pair):
    wave, flux, sigma = pair
    fnu = flux.to(u.mJy, u.spectral_density(wave))
    p = prepare_spectrum((wave, fnu, sigma.to(u.mJy, u.spectral_density(wave))))
    assert p.unit == FLAM and p.input_unit == u.mJy
    np.testing.assert_allclose(p.flux[0], flux.value, rtol=1e-10)
    np.testing.assert_allclose(p.sigma[0], sigma.value, rtol=1e-10)
    assert p.scale == pytest.approx(np.median(np.abs(flux.value)), rel=1e-10)


def test_bin_edges_become_centres(pair):
    wave, flux, sigma = pair
    step = wave[1] - wave[0]
    edges = np.concatenate([wave - step / 2, wave[-1:] + step / 2])
    p = prepare_spectrum((edges, flux, sigma))
    np.testing.assert_allclose(p.wavelength[0], wave.value, rtol=1e-12)
    assert len(p.flux[0]) == len(flux)


@pytest.mark.parametrize("air, vacuum", [(6562.80, 6564.61),   # Hα
                                         (4861.33, 4862.68),   # Hβ
                                         (5006.84, 5008.24)])  # [O III]
def test_air_to_vacuum_matches_published_lines(air, vacuum):
    """IAU standard (Morton 2000); vacuum values from the SDSS line list."""
    wave = np.array([air, air + 1.0]) * u.AA
    flux = np.ones(2) * u.Jy
    p = prepare_spectrum((wave, flux, 0.1 * flux), medium="air")
    assert p.wavelength[0][0] == pytest.approx(vacuum, abs=0.02)
    s = Spectrum(spectral_axis=wave, flux=flux, uncertainty=StdDevUncertainty(0.1 * flux),
                 meta={"medium": "air"})
    assert prepare_spectrum(s).wavelength[0][0] == pytest.approx(vacuum, abs=0.02)
    # vacuum is the default, and an explicit medium overrides meta
    assert prepare_spectrum((wave, flux, 0.1 * flux)).wavelength[0][0] == air
    assert prepare_spectrum(s, medium="vacuum").wavelength[0][0] == air


def test_air_conversion_in_other_units():
    wave = (np.array([6562.80, 6563.80]) * u.AA).to(u.nm)
    flux = np.ones(2) * u.Jy
    p = prepare_spectrum((wave[::-1], flux, 0.1 * flux), medium="air")
    assert p.wavelength[0][0] == pytest.approx(6564.61, abs=0.02)


def test_invalid_medium():
    wave = np.linspace(4000, 5000, 10) * u.AA
    flux = np.ones(10) * u.Jy
    with pytest.raises(SpectrumInputError, match="spectrum 3: medium must be 'air' or 'vacuum'"):
        prepare_spectrum((wave, flux, flux), index=3, medium="water")


# -- validity ---------------------------------------------------------------------------


def test_invalid_pixels_flagged(pair):
    wave, flux, sigma = pair
    flux = flux.copy()
    flux[5] = np.nan
    flux[6] = np.inf
    ivar = 1 / sigma.value**2
    ivar[10] = 0
    ivar[11] = np.inf
    ivar[12] = -1
    ivar[13] = np.nan
    mask = np.zeros(len(wave), bool)
    mask[20:25] = True
    s = Spectrum(spectral_axis=wave, flux=flux, mask=mask,
                 uncertainty=InverseVariance(ivar * sigma.unit**-2))
    p = prepare_spectrum(s)
    expected = np.ones(len(wave), bool)
    expected[[5, 6, 10, 11, 12, 13]] = False
    expected[20:25] = False
    np.testing.assert_array_equal(p.valid[0], expected)

    batch = to_batch([s])
    for tensor in (batch.flux, batch.sigma, batch.log_wavelength, batch.spacing):
        assert torch.isfinite(tensor).all()
    assert (batch.sigma > 0).all()
    np.testing.assert_array_equal(batch.valid[0, :len(wave)].numpy(), expected)
    assert (batch.flux[0, :len(wave)][~torch.from_numpy(expected)] == 0).all()


def test_uncertainty_kinds_agree(pair):
    wave, flux, sigma = pair
    kinds = [
        (wave, flux, sigma),
        (wave, flux, StdDevUncertainty(sigma)),
        (wave, flux, StdDevUncertainty(sigma.to(1e-17 * FLAM))),
        Spectrum(spectral_axis=wave, flux=flux, uncertainty=StdDevUncertainty(sigma.value)),
        Spectrum(spectral_axis=wave, flux=flux, uncertainty=VarianceUncertainty(sigma.value**2)),
        Spectrum(spectral_axis=wave, flux=flux, uncertainty=InverseVariance(sigma.value**-2)),
        (wave, flux, InverseVariance(sigma**-2)),
    ]
    batches = [to_batch([k]) for k in kinds]
    for batch in batches[1:]:
        torch.testing.assert_close(batch.sigma, batches[0].sigma, rtol=1e-6, atol=0)
        torch.testing.assert_close(batch.flux, batches[0].flux, rtol=0, atol=0)
        assert torch.equal(batch.valid, batches[0].valid)


def test_no_uncertainty_gets_constant_noise_and_one_warning(pair):
    wave, flux, _ = pair
    p = prepare_spectrum((wave, flux))
    assert not p.has_uncertainty
    assert np.all(p.sigma[0] == p.sigma[0][0]) and p.sigma[0][0] > 0
    assert p.valid[0].all()
    with pytest.warns(NoUncertaintyWarning, match="2 of 3 spectra have no uncertainty") as record:
        to_batch([(wave, flux), pair, (wave, flux)])
    assert len([w for w in record if issubclass(w.category, NoUncertaintyWarning)]) == 1
    to_batch([(wave, flux)], warn_missing_uncertainty=False)   # silent (warnings are errors)


def test_scale_is_kept_and_normalised_input_unchanged(pair):
    wave, flux, sigma = pair
    factor = 7.3e4
    a = to_batch([pair])
    b = to_batch([(wave, factor * flux, factor * sigma)])
    assert b.scale.item() == pytest.approx(factor * a.scale.item(), rel=1e-12)
    assert a.scale.item() == pytest.approx(np.median(np.abs(flux.value)), rel=1e-12)
    torch.testing.assert_close(b.flux, a.flux, rtol=1e-6, atol=0)
    torch.testing.assert_close(b.sigma, a.sigma, rtol=1e-6, atol=0)
    assert torch.equal(b.log_wavelength, a.log_wavelength)
    assert torch.equal(b.valid, a.valid)
    # a different shape is a different normalised input (the check above can fail)
    c = to_batch([(wave, flux * np.linspace(1, 2, len(wave)), sigma)])
    assert not torch.allclose(c.flux, a.flux, rtol=1e-3)


# -- errors ----------------------------------------------------------------------------

def _bad_inputs():
    n = 60
    wave = np.linspace(4000, 5000, n) * u.AA
    flux = np.linspace(1, 2, n) * 1e-17 * FLAM
    sigma = 0.05 * flux
    nan_wave = wave.copy()
    nan_wave[7] = np.nan
    dup_wave = wave.copy()
    dup_wave[8] = dup_wave[7]
    unsorted_wave = wave.copy()
    unsorted_wave[[7, 8]] = unsorted_wave[[8, 7]]
    scattered = np.full(n, np.nan)
    scattered[::4] = 1.0
    zero_ivar = Spectrum(spectral_axis=wave, flux=flux,
                         uncertainty=InverseVariance(np.zeros(n) * FLAM**-2))
    return [
        ("all NaN", (wave, flux * np.nan, sigma), SpectrumInputError, "no valid pixels"),
        ("all masked", Spectrum(spectral_axis=wave, flux=flux, mask=np.ones(n, bool),
                                uncertainty=StdDevUncertainty(sigma)),
         SpectrumInputError, f"no valid pixels .*{n} masked"),
        ("all ivar 0", zero_ivar, SpectrumInputError, "no valid pixels"),
        ("all zero", (wave, 0 * flux, sigma), SpectrumInputError, "flux is zero"),
        ("scattered valid", (wave, scattered * FLAM, 0.1 * np.ones(n) * FLAM),
         SpectrumInputError, "no usable patch"),
        ("lengths", (wave[:-5], flux, sigma), SpectrumInputError,
         f"{n - 5} wavelengths but {n} flux values"),
        ("pixel axis", (np.arange(n) * u.pix, flux, sigma), u.UnitConversionError,
         "spectral axis unit pix is not a wavelength"),
        ("time axis", (np.arange(1, n + 1) * u.s, flux, sigma), u.UnitConversionError,
         "spectral axis unit s is not a wavelength"),
        ("pixel Spectrum", Spectrum(spectral_axis=np.arange(n) * u.pix, flux=flux),
         u.UnitConversionError, "spectral axis unit pix"),
        ("length flux", (wave, np.ones(n) * u.m), u.UnitConversionError,
         r"flux unit m \(length\) is not a flux"),
        ("temperature flux", (wave, np.ones(n) * u.K), u.UnitConversionError,
         r"flux unit K \(temperature\) is not a flux"),
        ("magnitudes", (wave, u.Magnitude(np.full(n, 20.0), u.ABmag)), u.UnitConversionError,
         "flux is in magnitudes"),
        ("unitless wavelength", (wave.value, flux, sigma), u.UnitConversionError,
         "spectral axis has no unit"),
        ("unitless flux", (wave, flux.value), u.UnitConversionError, "flux has no unit"),
        ("non-finite wavelength", (nan_wave, flux, sigma), SpectrumInputError,
         "spectral axis has 1 non-finite"),
        ("negative wavelength", (wave - 4500 * u.AA, flux, sigma), SpectrumInputError,
         "non-positive wavelengths"),
        ("duplicated wavelength", (dup_wave, flux, sigma), SpectrumInputError,
         "1 duplicated wavelengths"),
        ("unsorted wavelength", (unsorted_wave, flux, sigma), SpectrumInputError,
         "not sorted"),
        ("2-D Spectrum", Spectrum(spectral_axis=wave, flux=np.ones((3, n)) * u.Jy),
         SpectrumInputError, r"flux has shape \(3, 60\); spectok takes 1-D spectra.*pass a list"),
        ("2-D tuple", (wave, np.ones((3, n)) * u.Jy), SpectrumInputError,
         r"flux has shape \(3, 60\); spectok takes 1-D spectra.*pass a list"),
        ("empty SpectrumList", SpectrumList(), SpectrumInputError, "the SpectrumList is empty"),
        ("1 pixel", (wave[:1], flux[:1], sigma[:1]), SpectrumInputError,
         "needs at least 2 pixels, got 1"),
        ("uncertainty length", (wave, flux, sigma[:-1]), SpectrumInputError,
         f"uncertainty has {n - 1} values but flux has {n}"),
        ("uncertainty type", (wave, flux, UnknownUncertainty(np.ones(n))), SpectrumInputError,
         "uncertainty of type UnknownUncertainty is not supported"),
        ("bare array uncertainty", (wave, flux, np.ones(n)), SpectrumInputError,
         "uncertainty of type ndarray is not supported"),
        ("uncertainty unit", (wave, flux, np.ones(n) * u.K), u.UnitConversionError,
         "uncertainty unit K does not match flux unit"),
    ]


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize("name, bad, error, message", BAD_INPUTS,
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_names_spectrum_and_problem(pair, name, bad, error, message):
    with pytest.raises(error, match=f"^spectrum 2: .*{message}"):
        to_batch([pair, pair, bad], patch_size=32)


def test_bad_input_label_includes_id(pair):
    wave, flux, sigma = pair
    bad = Spectrum(spectral_axis=wave, flux=flux * np.nan, meta={"id": "NGC 1"})
    with pytest.raises(SpectrumInputError, match=r"^spectrum 1 \(id 'NGC 1'\): no valid pixels"):
        to_batch([pair, bad])


def test_bad_arm_is_named(pair):
    wave, flux, sigma = pair
    good = Spectrum(spectral_axis=wave, flux=flux, uncertainty=StdDevUncertainty(sigma))
    bad = Spectrum(spectral_axis=(np.arange(len(wave)) + 1) * u.pix, flux=flux)
    with pytest.raises(u.UnitConversionError, match="^spectrum 0 arm 1: spectral axis unit pix"):
        to_batch([SpectrumList([good, bad])])


def test_empty_list_to_batch():
    with pytest.raises(SpectrumInputError, match="the list is empty"):
        to_batch([])


def test_scattered_pixels_only_refused_with_patch_size():
    wave = np.linspace(4000, 5000, 64) * u.AA
    flux = np.full(64, np.nan)
    flux[::4] = 1.0
    p = prepare_spectrum((wave, flux * u.Jy, np.ones(64) * 0.1 * u.Jy))
    assert p.valid[0].sum() == 16
    with pytest.raises(SpectrumInputError, match="no patch of 32 pixels"):
        prepare_spectrum((wave, flux * u.Jy, np.ones(64) * 0.1 * u.Jy), patch_size=32)
    # one valid pixel of two is half: usable with patches of 2
    prepare_spectrum((wave, flux * u.Jy, np.ones(64) * 0.1 * u.Jy), patch_size=2)


# -- padding layout ---------------------------------------------------------------------


def test_to_batch_layout(make_pair):
    long, short = make_pair(100, seed=1), make_pair(40, 4500, 4800, seed=2)
    batch = to_batch([long, short], patch_size=32)
    assert len(batch) == 2
    assert batch.lengths.tolist() == [128, 64]
    assert batch.flux.shape == batch.sigma.shape == batch.valid.shape == (2, 128)
    assert batch.log_wavelength.dtype == torch.float64
    assert batch.flux.dtype == torch.float32
    assert batch.observed.sum(1).tolist() == [100, 40]
    assert batch.observed[1, :40].all() and not batch.observed[1, 40:].any()
    assert not batch.valid[1, 40:].any()
    assert (batch.flux[1, 40:] == 0).all() and (batch.sigma[1, 40:] == 1).all()
    np.testing.assert_allclose(batch.log_wavelength[1, :40].exp().numpy(), short[0].value,
                               rtol=1e-12)
    assert (batch.log_wavelength[1, 40:] == batch.log_wavelength[1, 39]).all()
    assert (batch.spacing[:, :] > 0).all()
    assert [p.label for p in batch.spectra] == ["spectrum 0", "spectrum 1"]
    inputs = batch.model_inputs()
    assert len(inputs) == 6 and inputs[0] is batch.log_wavelength
    moved = batch.to("cpu")
    assert torch.equal(moved.flux, batch.flux) and moved.spectra is batch.spectra


def _arms():
    blue_wave = np.linspace(3600, 5900, 70) * u.AA
    red_wave = np.linspace(5800, 10000, 45) * u.AA
    blue = Spectrum(spectral_axis=blue_wave, flux=np.linspace(1, 2, 70) * u.mJy,
                    uncertainty=StdDevUncertainty(np.full(70, 0.05)))
    red = Spectrum(spectral_axis=red_wave.to(u.nm), flux=np.linspace(2, 1, 45) * u.mJy,
                   uncertainty=StdDevUncertainty(np.full(45, 0.05)))
    return blue, red


def test_arms_keep_their_pixels_and_start_new_patches():
    blue, red = _arms()
    batch = to_batch([SpectrumList([blue, red])], patch_size=32)
    # 70 → 3 patches (96 slots), 45 → 2 patches (64 slots); nothing resampled
    assert batch.lengths.tolist() == [160]
    observed = batch.observed[0].numpy()
    assert observed.sum() == 115
    np.testing.assert_array_equal(observed[:96], np.arange(96) < 70)
    np.testing.assert_array_equal(observed[96:], np.arange(64) < 45)
    wave = batch.log_wavelength[0].exp().numpy()
    np.testing.assert_allclose(wave[:70], blue.spectral_axis.to_value(u.AA), rtol=1e-12)
    np.testing.assert_allclose(wave[96:141], red.spectral_axis.to_value(u.AA), rtol=1e-12)
    # each patch lies within one arm
    patches = wave.reshape(-1, 32)
    assert patches[2].max() <= 5900 + 1e-6 and patches[3].min() >= 5800 - 1e-6
    p = batch.spectra[0]
    assert len(p.wavelength) == 2 and [len(w) for w in p.wavelength] == [70, 45]
    assert p.input_unit == u.mJy


def test_arm_order_does_not_matter():
    blue, red = _arms()
    a = to_batch([SpectrumList([blue, red])])
    b = to_batch([SpectrumList([red, blue])])
    for name in ("log_wavelength", "flux", "sigma", "spacing", "valid", "observed", "scale"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_arms_in_different_units():
    blue, red = _arms()
    red_flam = Spectrum(spectral_axis=red.spectral_axis,
                        flux=red.flux.to(FLAM, u.spectral_density(red.spectral_axis)),
                        uncertainty=StdDevUncertainty(
                            (red.uncertainty.array * u.mJy).to(
                                FLAM, u.spectral_density(red.spectral_axis))))
    a = to_batch([SpectrumList([blue, red])])
    b = to_batch([SpectrumList([blue, red_flam])])
    torch.testing.assert_close(a.flux, b.flux, rtol=1e-6, atol=0)
    torch.testing.assert_close(a.sigma, b.sigma, rtol=1e-6, atol=0)


def test_arms_with_incompatible_units(pair):
    blue, red = _arms()
    counts = Spectrum(spectral_axis=red.spectral_axis, flux=np.ones(45) * u.ct)
    with pytest.raises(u.UnitConversionError, match="^spectrum 0: arms have incompatible flux"):
        to_batch([SpectrumList([blue, counts])])


# -- the way back -----------------------------------------------------------------------


def test_wavelength_grid():
    log_wave, spacing, wave = wavelength_grid([2.0, 1.5, 1.0] * u.um)
    np.testing.assert_allclose(wave, [20000, 15000, 10000])
    np.testing.assert_allclose(log_wave, np.log(wave))
    assert (spacing > 0).all()
    _, _, air = wavelength_grid([656.280, 656.380] * u.nm, medium="air")
    assert air[0] == pytest.approx(6564.61, abs=0.02)
    with pytest.raises(SpectrumInputError, match="at least 2 wavelengths"):
        wavelength_grid([5000.0] * u.AA)
    with pytest.raises(SpectrumInputError, match="strictly ascending or descending"):
        wavelength_grid([5000.0, 5100, 5050] * u.AA)
    with pytest.raises(u.UnitConversionError, match="no unit"):
        wavelength_grid(np.array([5000.0, 5100]))
    with pytest.raises(SpectrumInputError, match="medium must be"):
        wavelength_grid([5000.0, 5100] * u.AA, medium="glass")


def test_flux_in_unit_round_trip():
    wave = np.array([4000.0, 5000.0, 6000.0])
    jy = np.array([1.0, 2.0, 3.0]) * u.Jy
    flam = jy.to_value(FLAM, u.spectral_density(wave * u.AA))
    back = flux_in_unit(flam, FLAM, u.Jy, wave)
    assert back.unit == u.Jy
    np.testing.assert_allclose(back.value, jy.value, rtol=1e-12)


@pytest.mark.parametrize("unit, canonical", [
    (u.Jy, FLAM), (u.W / u.m**2 / u.um, FLAM), (u.MJy / u.sr, FLAM / u.sr),
    (u.electron / u.s, u.electron / u.s), (u.percent, u.dimensionless_unscaled)])
def test_canonical_flux_inverts_flux_in_unit(unit, canonical):
    wave = np.array([4000.0, 5000.0, 6000.0])
    flux = np.array([1.0, 2.0, 3.0]) * unit
    values, got = canonical_flux(flux, wave)
    assert got == canonical
    np.testing.assert_allclose(flux_in_unit(values, got, unit, wave).value, flux.value,
                               rtol=1e-12)


@pytest.mark.parametrize("flux, message", [
    (np.ones(3), "no unit"), (np.ones(3) * u.m, "not a flux"), (np.ones(3) * u.ABmag,
                                                                 "magnitudes")])
def test_canonical_flux_refuses_what_is_not_a_flux(flux, message):
    with pytest.raises(u.UnitConversionError, match=f"my spectrum: .*{message}"):
        canonical_flux(flux, np.array([4000.0, 5000.0, 6000.0]), "my spectrum")
    with pytest.raises(TypeError, match="would drop the mask of a Masked flux"):
        canonical_flux(Masked(np.ones(3) * u.Jy, mask=[0, 1, 0]), np.ones(3))


def test_air_wavelengths_below_2000_angstrom_are_refused(make_pair):
    wave, flux, sigma = make_pair(lo=1500, hi=2500)
    with pytest.raises(SpectrumInputError, match="spectrum 0: air wavelengths below 2000"):
        prepare_spectrum((wave, flux, sigma), index=0, medium="air")


def test_prepare_spectra_raises_or_skips_by_position(make_pair):
    good, empty = make_pair(), make_pair()
    empty = (empty[0], np.full(len(empty[1]), np.nan) * empty[1].unit, empty[2])
    with pytest.raises(SpectrumInputError, match="spectrum 11: no valid pixels"):
        prepare_spectra([good, empty], start=10)
    prepared, skipped = prepare_spectra([good, empty, good], start=10, skip=True)
    assert [index for index, _ in prepared] == [10, 12]
    assert [index for index, _ in skipped] == [11] and "no valid pixels" in skipped[0][1]


def test_prepare_spectra_counts_a_failed_read_as_unusable(make_pair):
    def read(name):
        if name == "missing.fits":
            raise FileNotFoundError("missing.fits: no such file")
        return make_pair()

    prepared, skipped = prepare_spectra(["a.fits", "missing.fits"], read=read, skip=True)
    assert [index for index, _ in prepared] == [0]
    assert skipped == [(1, "missing.fits: no such file")]
    with pytest.raises(FileNotFoundError, match="missing.fits"):
        prepare_spectra(["missing.fits"], read=read)


def test_prepare_spectra_skips_no_oserror_of_its_own(make_pair, monkeypatch):
    # only read() failing makes an item unusable; an OSError while preparing is not skipped
    def failing(*args):
        raise PermissionError("no access")

    # (in the submodule where prepare_spectra looks it up)
    monkeypatch.setattr(adapter.prepare, "prepare_spectrum", failing)
    with pytest.raises(PermissionError, match="no access"):
        prepare_spectra([make_pair()], skip=True)


@pytest.mark.parametrize("errors", ["ignore", None, ["skip"]])
def test_check_error_mode_refuses_other_modes(errors):
    for mode in ERROR_MODES:
        _check_error_mode(mode)
    with pytest.raises(ValueError, match="errors must be one of"):
        _check_error_mode(errors)


def test_warn_skipped_quotes_three_reasons():
    with pytest.warns(SpectrumInputWarning, match=r"skipped 4 of 9 spectra: a; b; c; …$"):
        warn_skipped([(k, reason) for k, reason in enumerate("abcd")], 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_skipped([], 9)


def test_is_single_spectrum(make_pair):
    pair = make_pair()
    spectrum = Spectrum(spectral_axis=pair[0], flux=pair[1])
    assert is_single_spectrum(pair) and is_single_spectrum(spectrum)
    assert is_single_spectrum(SpectrumList([spectrum, spectrum]))
    assert is_single_spectrum(prepare_spectrum(pair))
    assert not is_single_spectrum([pair, pair]) and not is_single_spectrum("spectrum.fits")


def test_log_bin_edges_any_unit_and_medium():
    np.testing.assert_allclose(np.exp(log_bin_edges([700.0, 500.0] * u.nm)), [5000.0, 7000.0])
    air = np.exp(log_bin_edges([5000.0, 7000.0] * u.AA, "air"))
    assert np.all(air > [5000.0, 7000.0])  # vacuum wavelengths are longer
    with pytest.raises(SpectrumInputError, match="wavelength bin edges: needs at least 2"):
        log_bin_edges([5000.0] * u.AA)
    with pytest.raises(u.UnitConversionError):
        log_bin_edges([1.0, 2.0] * u.Jy)


# -- the model's wavelength range -----------------------------------------------------


@pytest.fixture
def blue_spectrum():
    wave = np.linspace(3000, 4000, 100) * u.AA
    return prepare_spectrum((wave, np.ones(100) * u.Jy, np.full(100, 0.1) * u.Jy))


@pytest.mark.parametrize("wavelength_range", [
    (3500.0, 10000.0), [3500, 10000], [0.35, 1.0] * u.um, [3500 * u.AA, 1 * u.um],
    # in frequency either order: ascending, and a wavelength range converted to Hz
    [(1 * u.um).to(u.Hz, u.spectral()), (3500 * u.AA).to(u.Hz, u.spectral())],
    ([3500, 10000] * u.AA).to(u.Hz, u.spectral()),
])
def test_fraction_outside_takes_quantities_and_angstrom(blue_spectrum, wavelength_range):
    assert adapter.fraction_outside(blue_spectrum, wavelength_range) == pytest.approx(0.5)
    with pytest.warns(adapter.WavelengthRangeWarning, match="3500–10000 Å"):
        assert adapter.check_wavelength_range([blue_spectrum], wavelength_range) == ["spectrum"]


@pytest.mark.parametrize("wavelength_range, error, match", [
    ((10000.0, 3500.0), ValueError, "shortest first"),
    ((3500.0,), ValueError, "two positive"),
    ("ab", ValueError, "two positive"),
    ((np.nan, 4000.0), ValueError, "two positive"),
    (("3500", 9000), ValueError, "two positive"),
    ([3500 * u.AA, 3], ValueError, "two positive"),
    ([1, 2] * u.kg, ValueError, "two positive"),
    ([1.0, 0.35] * u.um, ValueError, "got <Quantity"),   # was sorted and taken
    ([-1, 1] * u.um, ValueError, "two positive"),
])
def test_fraction_outside_refuses_a_range_that_is_not_two_wavelengths(
        blue_spectrum, wavelength_range, error, match):
    with pytest.raises(error, match=match):
        adapter.fraction_outside(blue_spectrum, wavelength_range)
    with pytest.raises(error, match=match):
        adapter.check_wavelength_range([blue_spectrum], wavelength_range)


def test_one_spectrum_where_a_list_is_expected_is_refused(spectrum, pair):
    # it was taken pixel by pixel ("spectrum 0: a spectrum needs at least 2 pixels"), and
    # with skip=True each pixel was skipped in turn, without end
    with pytest.raises(TypeError, match="items must be a list of spectra, got one Spectrum"):
        prepare_spectra(spectrum)
    with pytest.raises(TypeError, match="spectra must be a list of spectra, got one tuple"):
        to_batch(pair)
    with pytest.raises(TypeError, match="got one PreparedSpectrum: put it in a list"):
        to_batch(prepare_spectrum(pair))
