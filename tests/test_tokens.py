"""Result objects: `SpectralTokens` and `TokenBatch`."""

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import StdDevUncertainty
from astropy.table import Table
from specutils import Spectrum, SpectrumList

import spectok
from spectok.adapter import FLAM
from spectok.tokens import SpectralTokens, TokenBatch


@pytest.fixture
def tokens(tiny_model, spectrum):
    return spectok.encode(spectrum, model=tiny_model)


def test_spectral_tokens_fields(tokens, tiny_model):
    c = tiny_model.config
    assert isinstance(tokens, SpectralTokens)
    assert tokens.n_patches == 5   # ceil(150 / 32)
    assert tokens.tokens.shape == (5, c.token_dim)
    assert tokens.embedding.shape == (c.width,)
    assert tokens.valid.shape == (tokens.n_patches,) and tokens.valid.dtype == bool
    assert tokens.valid.all()
    assert tokens.patch_log_wavelength.shape == tokens.patch_log_spacing.shape == (5,)
    assert tokens.scale.unit == FLAM and tokens.scale.value > 0
    assert tokens.flux_unit == FLAM
    assert tokens.id == "synthetic-0"
    assert tokens.model == "unnamed"


@pytest.mark.parametrize("unit, descending", [(u.AA, False), (u.nm, True), (u.Hz, False),
                                              (u.um, False)])
def test_patch_edges_cover_input_in_angstrom(tiny_model, pair, unit, descending):
    wave, flux, sigma = pair
    given = wave.to(unit, u.spectral())
    if descending:
        given, flux, sigma = given[::-1], flux[::-1], sigma[::-1]
    result = spectok.encode((given, flux, sigma), model=tiny_model)
    edges = result.patch_edges
    assert edges.unit == u.AA and edges.shape == (result.n_patches, 2)
    assert edges[0, 0].value == pytest.approx(wave[0].value, rel=1e-12)
    assert edges[-1, 1].value == pytest.approx(wave[-1].value, rel=1e-12)
    assert (edges[:, 0] < edges[:, 1]).all()
    assert (edges[1:, 0] > edges[:-1, 1]).all()
    # each patch spans exactly its 32 pixels (the last one the 22 left)
    np.testing.assert_allclose(edges[:, 0].value, wave.value[::32], rtol=1e-12)
    np.testing.assert_allclose(edges[:-1, 1].value, wave.value[31::32], rtol=1e-12)
    np.testing.assert_allclose(result.patch_log_wavelength,
                               [np.log(wave.value[k:k + 32]).mean() for k in range(0, 150, 32)],
                               rtol=1e-12)


def test_valid_marks_bad_patches(tiny_model, pair):
    wave, flux, sigma = pair
    mask = np.zeros(len(wave), bool)
    mask[32:60] = True      # patch 1 keeps 4 of 32 pixels
    s = Spectrum(spectral_axis=wave, flux=flux, uncertainty=StdDevUncertainty(sigma), mask=mask)
    result = spectok.encode(s, model=tiny_model)
    assert result.valid.tolist() == [True, False, True, True, True]


def test_arm_patch_edges(tiny_model, make_pair):
    blue, red = make_pair(70, 3600, 5900, seed=1), make_pair(45, 5800, 10000, seed=2)
    arms = SpectrumList([Spectrum(spectral_axis=w, flux=f, uncertainty=StdDevUncertainty(s))
                         for w, f, s in (red, blue)])
    result = spectok.encode(arms, model=tiny_model)
    assert result.n_patches == 3 + 2
    edges = result.patch_edges.to_value(u.AA)
    assert edges[2, 1] == pytest.approx(5900) and edges[3, 0] == pytest.approx(5800)
    assert edges[0, 0] == pytest.approx(3600) and edges[-1, 1] == pytest.approx(10000)


def test_to_table(tokens, tiny_model):
    table = tokens.to_table()
    assert isinstance(table, Table)
    assert table.colnames == ["patch", "wavelength_min", "wavelength_max", "valid", "token"]
    assert len(table) == tokens.n_patches
    assert table["wavelength_min"].unit == u.AA
    np.testing.assert_array_equal(table["patch"], np.arange(tokens.n_patches))
    np.testing.assert_array_equal(table["token"], tokens.tokens)
    assert table["token"].shape == (tokens.n_patches, tiny_model.config.token_dim)
    np.testing.assert_array_equal(table["wavelength_max"], tokens.patch_edges[:, 1].value)
    assert table.meta["id"] == "synthetic-0" and table.meta["model"] == "unnamed"
    assert "erg" in table.meta["scale"]


def test_repr(tokens):
    text = repr(tokens)
    assert text.startswith("<SpectralTokens 5 tokens × 8 (5 valid), embedding 32")
    assert "4000.0 Angstrom – 5000.0 Angstrom" in text


def test_token_batch(tiny_model, pair, make_pair, spectrum):
    wave, flux, sigma = pair
    inputs = [spectrum, make_pair(400, seed=3), (wave, flux * np.nan, sigma), pair]
    batch = spectok.encode(inputs, model=tiny_model, errors="skip")
    assert isinstance(batch, TokenBatch)
    assert len(batch) == 3
    assert batch.embedding.shape == (3, tiny_model.config.width)
    assert [t.shape for t in batch.tokens] == [(5, 8), (13, 8), (5, 8)]
    assert batch.ids == ["synthetic-0", None, None]
    assert [item.id for item in batch] == batch.ids
    assert batch[2] is batch.items[2] and batch[-1] is batch.items[-1]
    assert batch[1:] == batch.items[1:]
    with pytest.raises(IndexError, match="index 3 is out of range for a batch of 3 encoded "
                                         "spectra .*`indices` gives each one's position"):
        batch[3]
    with pytest.raises(TypeError, match="not by a bool"):
        batch[True]
    np.testing.assert_array_equal(batch.indices, [0, 1, 3])
    assert repr(batch) == "<TokenBatch 3 spectra, 1 skipped>"

    table = batch.to_table()
    assert table.colnames == ["index", "id", "scale", "unit", "n_patches", "embedding"]
    assert len(table) == 3
    np.testing.assert_array_equal(table["index"], [0, 1, 3])
    assert list(table["id"]) == ["synthetic-0", "", ""]
    assert list(table["n_patches"]) == [5, 13, 5]
    assert table["embedding"].shape == (3, tiny_model.config.width)
    np.testing.assert_array_equal(table["embedding"], batch.embedding)
    assert all(unit == FLAM.to_string() for unit in table["unit"])
    assert table.meta["skipped"] == [2]
    assert table.meta["model"] == "unnamed"


def test_empty_token_batch():
    batch = TokenBatch([], np.array([], dtype=int), [(0, "spectrum 0: no valid pixels")])
    assert len(batch) == 0
    assert batch.embedding.shape == (0, 0)
    assert batch.tokens == [] and batch.ids == []
    table = batch.to_table()
    assert len(table) == 0 and table.meta["skipped"] == [0]
    assert repr(batch) == "<TokenBatch 0 spectra, 1 skipped>"


# -- tokens aligned on wavelength bins -------------------------------------------------------

def _patch_log_extent(tokens):
    """ln λ span of each patch, half a pixel beyond its first and last pixel."""
    half = 0.5 * 10.0 ** tokens.patch_log_spacing
    edges = np.log(tokens.patch_edges.to_value(u.AA))
    return edges[:, 0] - half, edges[:, 1] + half


def test_aligned_tokens_are_overlap_weighted_means(tokens):
    lo, hi = _patch_log_extent(tokens)
    # one bin over everything: the mean of the tokens weighted by each patch's ln λ span
    whole = tokens.aligned(np.exp([lo[0] - 0.1, hi[-1] + 0.1]) * u.AA)
    assert whole.shape == (1, tokens.tokens.shape[1]) and not whole.mask.any()
    np.testing.assert_allclose(whole[0], np.average(tokens.tokens, axis=0, weights=hi - lo),
                               rtol=1e-6)
    # a bin inside one patch is that patch's token; the bin beyond the spectrum is masked
    inside = np.exp([lo[2] + 0.2 * (hi[2] - lo[2]), lo[2] + 0.4 * (hi[2] - lo[2]),
                     hi[-1] + 0.01, hi[-1] + 0.02]) * u.AA
    grid = tokens.aligned(inside)
    np.testing.assert_allclose(grid[0], tokens.tokens[2], rtol=1e-6)
    assert not grid.mask[:2].any() and grid.mask[2].all()


def test_aligned_tokens_skip_patches_left_out_of_attention(tiny_model, pair):
    wave, flux, sigma = pair
    mask = np.zeros(len(wave), bool)
    mask[40:80] = True   # patch 1 (pixels 32-63) is mostly masked
    tokens = spectok.encode(Spectrum(spectral_axis=wave, flux=flux, mask=mask,
                                     uncertainty=StdDevUncertainty(sigma)), model=tiny_model)
    assert not tokens.valid[1]
    lo, hi = _patch_log_extent(tokens)
    grid = tokens.aligned(np.exp([lo[1] + 0.3 * (hi[1] - lo[1]), lo[1] + 0.6 * (hi[1] - lo[1]),
                                  hi[-1]]) * u.AA)
    assert grid.mask[0].all()   # only the invalid patch was there
    assert not grid.mask[1].any()


@pytest.mark.parametrize("unit", [u.nm, u.um, u.THz])
def test_aligned_tokens_take_any_spectral_unit_and_order(tokens, unit):
    edges = np.geomspace(3900, 5100, 7) * u.AA
    expected = tokens.aligned(edges)
    for given in (edges.to(unit, u.spectral()), edges[::-1].to(unit, u.spectral())):
        got = tokens.aligned(given)
        np.testing.assert_allclose(got.filled(0), expected.filled(0), rtol=1e-9)
        assert np.array_equal(got.mask, expected.mask)


def test_aligned_tokens_in_air_are_shifted_to_vacuum(tokens):
    edges = np.geomspace(4000, 5000, 11) * u.AA
    air = tokens.aligned(edges, medium="air")
    vacuum = tokens.aligned(edges * (1 + 2.8e-4))   # n - 1 of air in the optical
    np.testing.assert_allclose(air.filled(0), vacuum.filled(0), atol=2e-3)


@pytest.mark.parametrize("edges, error, match", [
    (np.array([4000.0, 5000.0]), u.UnitConversionError, "no unit"),
    ([4000.0] * u.AA, ValueError, "wavelength bin edges: needs at least 2"),
    ([4000.0, 4500.0, 4200.0] * u.AA, ValueError, "strictly ascending or descending"),
    ([4000.0, 5000.0] * u.s, u.UnitConversionError, "not a wavelength"),
    ([4000.0, np.nan] * u.AA, ValueError, "non-finite"),
])
def test_aligned_tokens_reject_bad_bin_edges(tokens, edges, error, match):
    with pytest.raises(error, match=match):
        tokens.aligned(edges)


def test_token_batch_aligned_stacks_each_spectrum(tiny_model, make_pair):
    batch = spectok.encode([make_pair(n=150, seed=1), make_pair(n=300, lo=4500, hi=6000)],
                           model=tiny_model)
    edges = np.geomspace(3800, 6200, 9) * u.AA
    grid = batch.aligned(edges)
    assert grid.shape == (2, 8, tiny_model.config.token_dim)
    for row, item in zip(grid, batch):
        np.testing.assert_array_equal(row.filled(0), item.aligned(edges).filled(0))
    assert grid.mask[0, -1].all() and not grid.mask[1, -1].any()   # 5000-6000 Å: second only
    assert TokenBatch([], np.array([], int)).aligned(edges).shape[:2] == (0, 8)


def test_a_batch_is_made_of_tokens_with_one_index_each(tiny_model, make_pair):
    tokens = spectok.encode(make_pair(), tiny_model)
    # a spectrum, or tokens not in a list, made a batch that failed on first use
    for items in (make_pair(), tokens, (tokens,)):
        with pytest.raises(TypeError, match="items must be a list of SpectralTokens"):
            TokenBatch(items, [0])
    with pytest.raises(ValueError, match="indices must be 1 integers, one per item"):
        TokenBatch([tokens], [0, 1])
    with pytest.raises(ValueError, match="indices must be 1 integers"):
        TokenBatch([tokens], [0.5])
    assert TokenBatch([tokens], [3]).indices.tolist() == [3]
