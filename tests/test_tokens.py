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
    assert batch[2] is batch.items[2]
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
