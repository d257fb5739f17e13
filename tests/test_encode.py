"""`spectok.encode` / `spectok.decode`: invariances, batching, errors, the way back."""

import copy
import dataclasses
import sys
import warnings

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
from specutils import Spectrum, SpectrumList

import spectok
from spectok.adapter import (FLAM, NoUncertaintyWarning, SpectrumInputError,
                             SpectrumInputWarning)
from spectok.encode import _plan_batches, get_model, resolve_device
from spectok.tokens import SpectralTokens, TokenBatch

SPECTRAL_UNITS = [u.AA, u.nm, u.um, u.Hz, u.eV, u.cm**-1]
FLUX_UNITS = [FLAM, u.W / u.m**2 / u.um, u.Jy, u.mJy, u.erg / u.s / u.cm**2 / u.Hz,
              u.ph / u.s / u.cm**2 / u.AA, u.ph / u.s / u.m**2 / u.Hz]


def _in_units(pair, spectral_unit=u.AA, flux_unit=FLAM, descending=False):
    wave, flux, sigma = pair
    density = u.spectral_density(wave)
    out = (wave.to(spectral_unit, u.spectral()), flux.to(flux_unit, density),
           sigma.to(flux_unit, density))
    return tuple(x[::-1] for x in out) if descending else out


# -- invariances ------------------------------------------------------------------------


def test_encodings_differ_between_spectra(tiny_model, make_pair):
    """Guard for the invariance tests below: the tiny model does tell spectra apart."""
    a = spectok.encode(make_pair(), model=tiny_model)
    b = spectok.encode(make_pair(lo=4300, hi=5300), model=tiny_model)
    c = spectok.encode(make_pair(seed=5, relative_error=0.2), model=tiny_model)
    assert np.abs(a.embedding - b.embedding).max() > 1e-3
    assert np.abs(a.tokens - b.tokens).max() > 1e-3
    assert np.abs(a.embedding - c.embedding).max() > 1e-3


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("spectral_unit", SPECTRAL_UNITS, ids=str)
def test_spectral_unit_and_order_invariance(tiny_model, pair, assert_same_encoding,
                                            spectral_unit, descending):
    reference = spectok.encode(pair, model=tiny_model)
    other = spectok.encode(_in_units(pair, spectral_unit, descending=descending),
                           model=tiny_model)
    assert_same_encoding(other, reference)
    assert other.scale.unit == FLAM
    assert other.scale.value == pytest.approx(reference.scale.value, rel=1e-10)


@pytest.mark.parametrize("flux_unit", FLUX_UNITS, ids=str)
def test_flux_unit_invariance(tiny_model, pair, assert_same_encoding, flux_unit):
    reference = spectok.encode(pair, model=tiny_model)
    other = spectok.encode(_in_units(pair, u.Hz, flux_unit), model=tiny_model)
    assert_same_encoding(other, reference)
    assert other.flux_unit == flux_unit
    assert other.scale.to_value(FLAM) == pytest.approx(reference.scale.value, rel=1e-10)


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("spectral_unit", [u.AA, u.nm, u.um], ids=str)
def test_bin_edges_invariance(tiny_model, pair, assert_same_encoding, spectral_unit, descending):
    wave, flux, sigma = _in_units(pair, spectral_unit)
    step = wave[1] - wave[0]
    edges = np.concatenate([wave - step / 2, wave[-1:] + step / 2])
    if descending:
        edges, flux, sigma = edges[::-1], flux[::-1], sigma[::-1]
    assert len(edges) == len(flux) + 1
    reference = spectok.encode(pair, model=tiny_model)
    assert_same_encoding(spectok.encode((edges, flux, sigma), model=tiny_model), reference)


def test_spectrum_object_matches_tuple(tiny_model, pair, spectrum, assert_same_encoding):
    assert_same_encoding(spectok.encode(spectrum, model=tiny_model),
                         spectok.encode(pair, model=tiny_model))


@pytest.mark.parametrize("unit", [FLAM, u.ct], ids=str)
@pytest.mark.parametrize("factor", [1e-3, 7.3, 2.5e6])
def test_flux_scale_changes_only_the_scale(tiny_model, pair, assert_same_encoding, factor, unit):
    wave, flux, sigma = pair
    if unit == u.ct:   # numbers of order 1, kept in their own unit
        flux, sigma = flux.value * 3e16 * u.ct, sigma.value * 3e16 * u.ct
    reference = spectok.encode((wave, flux, sigma), model=tiny_model)
    scaled = spectok.encode((wave, factor * flux, factor * sigma), model=tiny_model)
    assert_same_encoding(scaled, reference)
    assert scaled.scale.unit == unit
    assert scaled.scale.value == pytest.approx(factor * reference.scale.value, rel=1e-10)


def test_uncertainty_kinds_give_same_result(tiny_model, pair, assert_same_encoding):
    wave, flux, sigma = pair
    reference = spectok.encode(pair, model=tiny_model)
    for uncertainty in (StdDevUncertainty(sigma.value), VarianceUncertainty(sigma.value**2),
                        InverseVariance(sigma.value**-2)):
        s = Spectrum(spectral_axis=wave, flux=flux, uncertainty=uncertainty)
        assert_same_encoding(spectok.encode(s, model=tiny_model), reference)


# -- batching ---------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [64, 2, 1])
def test_batch_invariance(tiny_model, make_pair, pair, spectrum, assert_same_encoding,
                          batch_size):
    alone = spectok.encode(pair, model=tiny_model)
    longer, shorter = make_pair(1000, 3000, 9000, seed=1), make_pair(40, 5000, 5400, seed=2)
    batch = spectok.encode([longer, pair, shorter, spectrum], model=tiny_model,
                           batch_size=batch_size)
    assert isinstance(batch, TokenBatch) and len(batch) == 4
    assert_same_encoding(batch[1], alone)
    assert_same_encoding(batch[3], alone)
    assert_same_encoding(batch[0], spectok.encode(longer, model=tiny_model))
    assert_same_encoding(batch[2], spectok.encode(shorter, model=tiny_model))
    np.testing.assert_array_equal(batch.indices, [0, 1, 2, 3])


def test_other_spectra_do_not_leak(tiny_model, make_pair, pair, assert_same_encoding):
    """Changing every other spectrum of the batch (and so the padding) changes nothing here."""
    first = spectok.encode([make_pair(1000, 3000, 9000, seed=1), pair,
                            make_pair(40, 5000, 5400, seed=2)], model=tiny_model)
    second = spectok.encode([make_pair(700, 3500, 9500, seed=3), pair,
                             make_pair(400, 4000, 6000, seed=4, relative_error=0.3),
                             make_pair(2000, 3000, 10000, seed=5)], model=tiny_model)
    assert_same_encoding(first[1], second[1])
    # while the neighbours themselves did change (so this check could fail)
    assert np.abs(first[0].embedding - second[0].embedding).max() > 1e-3


def test_arms_in_a_batch(tiny_model, make_pair, assert_same_encoding):
    blue, red = make_pair(300, 3600, 5900, seed=1), make_pair(200, 5800, 9000, seed=2)
    arms = [Spectrum(spectral_axis=w, flux=f, uncertainty=StdDevUncertainty(s))
            for w, f, s in (blue, red)]
    forward = spectok.encode(SpectrumList(arms), model=tiny_model)
    backward = spectok.encode(SpectrumList(arms[::-1]), model=tiny_model)
    assert_same_encoding(forward, backward)
    assert forward.n_patches == 10 + 7   # ceil(300/32) + ceil(200/32): no patch spans two arms
    batch = spectok.encode([make_pair(2000, 3000, 10000), SpectrumList(arms[::-1])],
                           model=tiny_model)
    assert_same_encoding(batch[1], forward)


def test_batches_by_pixels_and_never_across_the_attention_limit():
    lengths = np.array([64, 6400, 64, 3200, 96, 3200])
    # sorted by length; at most 3 spectra or 6,400 padded pixels; 3200 < limit < 6400
    batches = _plan_batches(lengths, 3, 6400, 4000)
    assert batches == [[0, 2, 4], [3, 5], [1]]
    assert _plan_batches(lengths, 10, 10**6, 4000) == [[0, 2, 4, 3, 5], [1]]
    assert _plan_batches(np.array([10**6]), 64, 100, 4000) == [[0]]


def test_long_spectra_use_local_attention_whatever_their_company(tiny_model, make_pair,
                                                                 assert_same_encoding):
    """A spectrum beyond the full-attention limit encodes alone or with any others alike,
    and the short ones beside it keep their global attention."""
    model = copy.deepcopy(tiny_model)
    model.config = dataclasses.replace(model.config, full_attention_limit=8, attention_window=4)
    long_one, longer = make_pair(600, 3000, 9000, seed=1), make_pair(900, 3000, 9000, seed=3)
    short = make_pair(200, 4000, 5000, seed=2)
    batch = spectok.encode([long_one, short, longer], model=model, batch_size=64)
    assert_same_encoding(batch[0], spectok.encode(long_one, model=model))
    assert_same_encoding(batch[1], spectok.encode(short, model=tiny_model))
    assert_same_encoding(batch[2], spectok.encode(longer, model=model))


def test_very_long_spectrum(tiny_model):
    """200,000 pixels (an échelle spectrum) encode with finite tokens and embedding."""
    n = 200_000
    wave = np.geomspace(3700, 9500, n) * u.AA
    flux = (1 + 0.2 * np.sin(wave.value / 7)) * 1e-17 * FLAM
    tokens = spectok.encode((wave, flux, 0.02 * flux), model=tiny_model)
    assert tokens.n_patches == n // tiny_model.config.patch_size
    assert np.isfinite(tokens.tokens).all() and np.isfinite(tokens.embedding).all()
    assert tokens.valid.all()


# -- no NaN out ------------------------------------------------------------------------


def test_bad_pixels_never_give_nan(tiny_model, make_pair):
    wave, flux, sigma = make_pair(300)
    flux = flux.copy()
    flux[10:20] = np.nan
    flux[21] = np.inf
    ivar = sigma.value**-2
    ivar[100:110] = np.inf
    ivar[200:240] = 0
    ivar[250] = np.nan
    mask = np.zeros(300, bool)
    mask[50:60] = True
    mask[256:288] = True   # one whole patch masked
    s = Spectrum(spectral_axis=wave, flux=flux, mask=mask,
                 uncertainty=InverseVariance(ivar * FLAM**-2))
    result = spectok.encode(s, model=tiny_model)
    assert np.isfinite(result.tokens).all() and np.isfinite(result.embedding).all()
    assert not result.valid[8] and result.valid[0]
    clean = spectok.encode(make_pair(300), model=tiny_model)
    assert np.abs(result.embedding - clean.embedding).max() > 0   # the bad pixels were dropped
    batch = spectok.encode([s, make_pair(), s], model=tiny_model)
    assert np.isfinite(batch.embedding).all()


def test_masked_pixel_values_are_ignored(tiny_model, make_pair, assert_same_encoding):
    wave, flux, sigma = make_pair(200)
    mask = np.zeros(200, bool)
    mask[40:70] = True
    other = flux.copy()
    other[40:70] = 1e3 * FLAM
    a = spectok.encode(Spectrum(spectral_axis=wave, flux=flux, mask=mask,
                                uncertainty=StdDevUncertainty(sigma)), model=tiny_model)
    b = spectok.encode(Spectrum(spectral_axis=wave, flux=other, mask=mask,
                                uncertainty=StdDevUncertainty(sigma)), model=tiny_model)
    assert_same_encoding(a, b)


# -- warnings and errors ---------------------------------------------------------------


def test_no_uncertainty_warns_once_per_call(tiny_model, pair):
    wave, flux, _ = pair
    with pytest.warns(NoUncertaintyWarning, match="1 of 1 spectra have no uncertainty") as record:
        result = spectok.encode((wave, flux), model=tiny_model)
    assert sum(issubclass(w.category, NoUncertaintyWarning) for w in record) == 1
    assert np.isfinite(result.embedding).all()
    with pytest.warns(NoUncertaintyWarning, match="3 of 4 spectra have no uncertainty") as record:
        spectok.encode([(wave, flux), pair, (wave[:40], flux[:40]), (wave, 2 * flux)],
                       model=tiny_model, batch_size=1)
    assert sum(issubclass(w.category, NoUncertaintyWarning) for w in record) == 1


def test_with_uncertainty_no_warning(tiny_model, pair):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spectok.encode([pair, pair], model=tiny_model)


def _bad(pair):
    wave, flux, sigma = pair
    return (wave, flux * np.nan, sigma)


def test_errors_raise(tiny_model, pair):
    with pytest.raises(SpectrumInputError, match="^spectrum 1: no valid pixels"):
        spectok.encode([pair, _bad(pair), pair], model=tiny_model)
    with pytest.raises(SpectrumInputError, match="^spectrum 1: no valid pixels"):
        spectok.encode([pair, _bad(pair), pair], model=tiny_model, errors="raise")


def test_errors_skip(tiny_model, pair, make_pair, assert_same_encoding):
    other = make_pair(80, seed=3)
    batch = spectok.encode([pair, _bad(pair), other], model=tiny_model, errors="skip")
    assert len(batch) == 2
    np.testing.assert_array_equal(batch.indices, [0, 2])
    assert [index for index, _ in batch.skipped] == [1]
    assert batch.skipped[0][1].startswith("spectrum 1: no valid pixels")
    assert_same_encoding(batch[0], spectok.encode(pair, model=tiny_model))
    assert_same_encoding(batch[1], spectok.encode(other, model=tiny_model))


def test_errors_warn(tiny_model, pair):
    wave, flux, sigma = pair
    bad_unit = (np.arange(len(wave)) * u.pix, flux, sigma)
    with pytest.warns(SpectrumInputWarning, match="skipped 2 of 4 spectra: spectrum 0: .*"
                      "spectrum 2: spectral axis unit pix") as caught:
        batch = spectok.encode([_bad(pair), pair, bad_unit, pair], model=tiny_model,
                               errors="warn")
    # the warning points at the caller's line
    assert [w.filename for w in caught if w.category is SpectrumInputWarning] == [__file__]
    np.testing.assert_array_equal(batch.indices, [1, 3])
    assert [index for index, _ in batch.skipped] == [0, 2]
    assert "spectral axis unit pix" in batch.skipped[1][1]


def test_errors_skip_scattered_pixels(tiny_model, pair):
    """A spectrum whose valid pixels fill no patch is skipped by name, not a batch-wide crash."""
    wave = np.linspace(4000, 5000, 64) * u.AA
    flux = np.full(64, np.nan)
    flux[::4] = 1.0
    scattered = (wave, flux * u.Jy, np.full(64, 0.1) * u.Jy)
    batch = spectok.encode([pair, scattered], model=tiny_model, errors="skip")
    np.testing.assert_array_equal(batch.indices, [0])
    assert "spectrum 1: no usable patch" in batch.skipped[0][1]
    with pytest.raises(SpectrumInputError, match="^spectrum 0: no usable patch"):
        spectok.encode(scattered, model=tiny_model)


def test_errors_all_skipped(tiny_model, pair):
    batch = spectok.encode([_bad(pair), _bad(pair)], model=tiny_model, errors="skip")
    assert len(batch) == 0 and batch.indices.shape == (0,)
    assert [index for index, _ in batch.skipped] == [0, 1]


def test_single_spectrum_always_raises(tiny_model, pair):
    with pytest.raises(SpectrumInputError, match="^spectrum 0: no valid pixels"):
        spectok.encode(_bad(pair), model=tiny_model, errors="skip")


def test_bad_arguments(tiny_model, pair):
    with pytest.raises(ValueError, match="errors must be one of"):
        spectok.encode(pair, model=tiny_model, errors="ignore")
    for batch_size in (-1, 0, 1.5, "4", True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            spectok.encode(pair, model=tiny_model, batch_size=batch_size)
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' .* got 'gpu'"):
        spectok.encode(pair, model=tiny_model, device="gpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    # before, without a GPU: torch's AssertionError "Torch not compiled with CUDA enabled"
    with pytest.raises(ValueError, match=rf"device 'cuda:{count}': torch sees {count} CUDA GPU"):
        spectok.encode(pair, model=tiny_model, device=f"cuda:{count}")
    with pytest.raises(SpectrumInputError, match="the list is empty"):
        spectok.encode([], model=tiny_model)
    with pytest.raises(SpectrumInputError, match="^spectrum 0: the SpectrumList is empty"):
        spectok.encode(SpectrumList(), model=tiny_model)


def test_medium_air(tiny_model, pair):
    wave, flux, sigma = pair
    air = spectok.encode(pair, model=tiny_model, medium="air")
    vacuum = spectok.encode(pair, model=tiny_model)
    assert air.patch_edges[0, 0].to_value(u.AA) == pytest.approx(
        wave[0].to_value(u.AA) + 1.12, abs=0.02)
    assert vacuum.patch_edges[0, 0] == wave[0]
    meta = Spectrum(spectral_axis=wave, flux=flux, uncertainty=StdDevUncertainty(sigma),
                    meta={"medium": "air"})
    np.testing.assert_allclose(spectok.encode(meta, model=tiny_model).embedding, air.embedding,
                               rtol=0, atol=1e-5)


# -- decode -----------------------------------------------------------------------------


def test_decode_returns_input_unit_on_requested_grid(tiny_model, pair):
    mjy = _in_units(pair, u.nm, u.mJy)
    tokens = spectok.encode(mjy, model=tiny_model)
    grid = np.linspace(420, 480, 57) * u.nm
    rendered = spectok.decode(tokens, grid, model=tiny_model)
    assert isinstance(rendered, Spectrum)
    assert rendered.flux.unit == u.mJy
    assert rendered.flux.shape == (57,)
    np.testing.assert_allclose(rendered.spectral_axis.to_value(u.nm), grid.value)
    assert isinstance(rendered.uncertainty, StdDevUncertainty)
    assert np.isfinite(rendered.flux.value).all()
    assert (rendered.uncertainty.array > 0).all()

    micron = spectok.decode(tokens, grid.to(u.um), model=tiny_model)
    assert micron.flux.unit == u.mJy
    np.testing.assert_allclose(micron.flux.value, rendered.flux.value, rtol=1e-5)


def test_a_dataset_encodes_as_its_list_of_spectra(tiny_model, spectrum):
    from astropy.table import Table

    from spectok.datasets import SpectrumDataset

    dataset = SpectrumDataset([spectrum, spectrum], Table({"id": ["a", "b"]}), name="two")
    batch = spectok.encode(dataset, model=tiny_model)
    assert len(batch) == 2
    np.testing.assert_array_equal(batch.embedding,
                                  spectok.encode([spectrum, spectrum], model=tiny_model).embedding)


def test_decode_finds_the_model_that_made_the_tokens_or_asks_for_it(tiny_model, pair):
    tokens = spectok.encode(pair, model=tiny_model)
    assert tokens.model == tiny_model.name == "unnamed"   # built in memory
    grid = np.linspace(4200, 4800, 50) * u.AA
    with pytest.raises(ValueError, match=r"'unnamed', cannot be loaded by its name .*"
                                         r"decode\(tokens, wavelength, model=\.\.\.\)"):
        spectok.decode(tokens, grid)
    assert spectok.decode(tokens, grid, model=tiny_model).meta["decoded_by"] == "unnamed"
    with pytest.raises(ValueError, match="made by model 'unnamed', not 'spectok-small'"):
        spectok.decode(tokens, grid, model="spectok-small")
    shipped = spectok.encode(pair)
    assert spectok.decode(shipped, grid).meta["decoded_by"] == shipped.model == "spectok-small"


def test_decode_beyond_the_encoded_spectrum_warns_and_masks(tiny_model, pair, make_pair):
    from spectok.adapter import WavelengthRangeWarning

    tokens = spectok.encode(pair, model=tiny_model)   # 4000-5000 Å
    grid = np.linspace(3800, 5200, 141) * u.AA
    with pytest.warns(WavelengthRangeWarning, match=r"40 of 141 wavelengths lie beyond"):
        rendered = spectok.decode(tokens, grid, model=tiny_model)
    np.testing.assert_array_equal(rendered.mask, (grid.value < 3995) | (grid.value > 5005))
    assert not spectok.decode(tokens, grid[40:100], model=tiny_model).mask.any()
    # an arm that ends inside another: the spectrum reaches as far as the longer one
    wave, flux, sigma = pair
    inner_wave, inner_flux, inner_sigma = make_pair(64, 4400, 4600)
    inner = Spectrum(spectral_axis=inner_wave, flux=inner_flux,
                     uncertainty=StdDevUncertainty(inner_sigma))
    outer = Spectrum(spectral_axis=wave, flux=flux, uncertainty=StdDevUncertainty(sigma))
    both = spectok.encode(SpectrumList([outer, inner]), model=tiny_model)
    assert not spectok.decode(both, grid[40:100], model=tiny_model).mask.any()


def test_decode_scale_and_unit_restored(tiny_model, pair):
    wave, flux, sigma = pair
    grid = np.linspace(4100, 4900, 40) * u.AA
    flam = spectok.decode(spectok.encode(pair, model=tiny_model), grid, model=tiny_model)
    assert flam.flux.unit == FLAM
    jy = spectok.decode(spectok.encode(_in_units(pair, flux_unit=u.Jy), model=tiny_model), grid,
                        model=tiny_model)
    assert jy.flux.unit == u.Jy
    np.testing.assert_allclose(jy.flux.to_value(FLAM, u.spectral_density(grid)), flam.flux.value,
                               rtol=1e-5)
    bright = spectok.decode(spectok.encode((wave, 1e4 * flux, 1e4 * sigma), model=tiny_model),
                            grid, model=tiny_model)
    np.testing.assert_allclose(bright.flux.value, 1e4 * flam.flux.value, rtol=1e-5)


def test_decode_descending_grid(tiny_model, pair):
    tokens = spectok.encode(pair, model=tiny_model)
    grid = np.linspace(410, 490, 33) * u.nm
    up = spectok.decode(tokens, grid, model=tiny_model)
    down = spectok.decode(tokens, grid[::-1], model=tiny_model)
    np.testing.assert_allclose(down.flux.value, up.flux.value[::-1], rtol=1e-5)
    np.testing.assert_allclose(down.spectral_axis.value, grid.value[::-1])


def test_decode_reads_a_long_grid_out_in_chunks_with_the_same_result(tiny_model, pair,
                                                                     monkeypatch):
    tokens = spectok.encode(pair, model=tiny_model)
    grid = np.linspace(4000, 5000, 1001) * u.AA
    whole = spectok.decode(tokens, grid, model=tiny_model)
    monkeypatch.setattr(sys.modules["spectok.encode"], "_DECODE_CHUNK", 128)  # 8 chunks
    chunked = spectok.decode(tokens, grid, model=tiny_model)
    np.testing.assert_allclose(chunked.flux.value, whole.flux.value, rtol=1e-6)
    np.testing.assert_allclose(chunked.uncertainty.array, whole.uncertainty.array, rtol=1e-6)


def test_decode_bad_grid(tiny_model, pair):
    tokens = spectok.encode(pair, model=tiny_model)
    with pytest.raises(SpectrumInputError, match="at least 2 wavelengths"):
        spectok.decode(tokens, [450.0] * u.nm, model=tiny_model)
    with pytest.raises(SpectrumInputError, match="strictly ascending or descending"):
        spectok.decode(tokens, [450.0, 460, 455, 470] * u.nm, model=tiny_model)
    with pytest.raises(SpectrumInputError, match="strictly ascending or descending"):
        spectok.decode(tokens, [450.0, 450, 460] * u.nm, model=tiny_model)
    with pytest.raises(u.UnitConversionError, match="not a wavelength"):
        spectok.decode(tokens, [1.0, 2.0] * u.s, model=tiny_model)


def test_decode_refuses_a_grid_longer_than_max_pixels(tiny_model, pair):
    # before: no limit: a grid of 10**8 wavelengths was allocated until the process was killed
    tokens = spectok.encode(pair, model=tiny_model)
    with spectok.conf.set_temp("max_pixels", 50):
        spectok.decode(tokens, np.linspace(450, 460, 50) * u.nm, model=tiny_model)
        with pytest.raises(SpectrumInputError, match=r"requested wavelength grid: 51 pixels is "
                                                     r"more than the limit of 50 pixels"):
            spectok.decode(tokens, np.linspace(450, 460, 51) * u.nm, model=tiny_model)


@pytest.mark.parametrize("falsy", [0, False, ""])
def test_a_falsy_model_is_not_taken_for_the_default(falsy):
    # before: get_model(0), get_model(False) and get_model("") gave the default model
    with pytest.raises(spectok.model.WeightsError, match="unknown model '0'|unknown model "
                                                         "'False'|no model named"):
        get_model(falsy, "cpu")


def test_decode_takes_one_spectrums_tokens(tiny_model, pair):
    batch = spectok.encode([pair, pair], model=tiny_model)
    with pytest.raises(TypeError, match="got TokenBatch .*for t in batch"):
        spectok.decode(batch, [450.0, 460.0] * u.nm)
    with pytest.raises(TypeError, match="SpectralTokens of one spectrum, got ndarray"):
        spectok.decode(batch.embedding, [450.0, 460.0] * u.nm)


def test_decode_refuses_another_model(tiny_model, pair):
    tiny_model.name = "mine"
    tokens = spectok.encode(pair, model=tiny_model)
    assert tokens.model == "mine"
    other = spectok.model.SpectralTokenizer(spectok.model.CONFIGS["tiny"]).eval()
    other.name = "theirs"
    with pytest.raises(ValueError, match="made by model 'mine', not 'theirs'"):
        spectok.decode(tokens, [450.0, 460.0] * u.nm, model=other)


# -- devices and the default model (smoke tests; never assert on shipped numbers) --------


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")


def test_default_model_smoke(pair):
    model = get_model()
    assert model.name == spectok.conf.default_model
    assert get_model() is model   # loaded once
    tokens = spectok.encode(pair, device="cpu")
    assert isinstance(tokens, SpectralTokens)
    assert tokens.model == model.name
    assert tokens.embedding.shape == (model.config.width,)
    assert tokens.tokens.shape == (-(-150 // model.config.patch_size), model.config.token_dim)
    assert np.isfinite(tokens.embedding).all()
    rendered = spectok.decode(tokens, np.linspace(410, 490, 20) * u.nm, device="cpu")
    assert rendered.flux.unit == FLAM and np.isfinite(rendered.flux.value).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_encoding_agrees_with_cpu(make_pair):
    # on a GPU the model runs under bfloat16 autocast: embeddings agree to a cosine of 0.995;
    # the 40,000-pixel spectrum takes the local-attention path (beyond 1,024 patches)
    spectra = [make_pair(n=4000, lo=3800, hi=9200, seed=k) for k in range(8)]
    spectra.append(make_pair(n=40_000, lo=3800, hi=9200, seed=8))
    cpu = spectok.encode(spectra, device="cpu")
    gpu = spectok.encode(spectra, device="cuda")
    assert gpu[-1].n_patches > get_model().config.full_attention_limit
    a, b = cpu.embedding, gpu.embedding
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.995
