"""Property-based tests (hypothesis): what must hold for every spectrum, not just a few.

Random spectra (grids of 32 to 50,000 pixels, linear, logarithmic or
irregular, anywhere from the ultraviolet to the infrared; spectral and flux
units; masks and bad pixels; the three uncertainty kinds) encoded with a
tiny random-weight model:

* the embedding does not depend on the units, the direction of the axis,
  the kind of uncertainty, the brightness, or the other spectra of a batch
  and their order (to float32 rounding);
* it is never NaN, and the only errors are the documented ones.
"""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from specutils import Spectrum

import spectok
from spectok.adapter import FLAM, SpectrumInputError, prepare_spectrum
from spectok.model import CONFIGS, SpectralTokenizer

#: Largest difference between two encodings of one spectrum given two ways: float32
#: rounding of the normalised inputs, through the network (a tiny one here).
TOLERANCE = 2e-5

SPECTRAL_UNITS = [u.AA, u.nm, u.um, u.Hz, u.THz, u.eV, u.cm**-1]
FLUX_UNITS = [FLAM, u.Jy, u.mJy, u.W / u.m**2 / u.um, u.erg / u.s / u.cm**2 / u.Hz,
              u.ph / u.s / u.cm**2 / u.AA]
UNCERTAINTIES = ["stddev", "variance", "ivar"]

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SpectralTokenizer(CONFIGS["tiny"]).eval()


# -- random spectra ------------------------------------------------------------------------

@st.composite
def spectra(draw, min_pixels=32, max_pixels=50_000, bad_pixels=True):
    """``(wavelength [Å], flux [f_λ], sigma [f_λ], mask)`` of a random, valid spectrum."""
    n = draw(st.one_of(st.integers(min_pixels, min(500, max_pixels)),
                       st.integers(min(500, max_pixels), min(5000, max_pixels)),
                       st.integers(min(5000, max_pixels), max_pixels)))
    event(f"pixels: {'up to 500' if n <= 500 else 'up to 5000' if n <= 5000 else 'over 5000'}")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    start = 10 ** draw(st.floats(np.log10(900), np.log10(30_000)))
    step = 10 ** draw(st.floats(-5.5, -2.5))  # relative: R from about 300 to 300,000
    kind = draw(st.sampled_from(["linear", "log", "irregular"]))
    if kind == "linear":
        wave = start * (1 + step * np.arange(n))
    elif kind == "log":
        wave = start * np.exp(step * np.arange(n))
    else:
        wave = start * np.exp(np.cumsum(rng.uniform(0.2, 1.8, n) * step))
    continuum = 1 + 0.5 * np.sin(np.log(wave) * draw(st.floats(1, 200)))
    lines = sum(rng.uniform(-0.5, 2) * np.exp(-0.5 * ((wave - rng.uniform(wave[0], wave[-1]))
                                                      / (rng.uniform(3, 30) * step * wave)) ** 2)
                for _ in range(draw(st.integers(0, 5))))
    flux = np.abs(continuum + lines) + 0.05
    sigma = flux * rng.uniform(0.01, 0.2, n)
    flux = flux + sigma * rng.standard_normal(n)
    mask = np.zeros(n, bool)
    if bad_pixels and draw(st.booleans()):
        mask[rng.random(n) < draw(st.floats(0, 0.3))] = True
        mask[: int(n * draw(st.floats(0, 0.2)))] = True  # a dead stretch at the blue end
    spectrum = wave * u.AA, flux * 1e-17 * FLAM, sigma * 1e-17 * FLAM, mask
    try:  # these spectra must be usable: at least one patch half valid
        prepare_spectrum(given_as(spectrum), patch_size=32)
    except SpectrumInputError:
        assume(False)
    return spectrum


def given_as(spectrum, spectral_unit=u.AA, flux_unit=FLAM, uncertainty="stddev",
             descending=False, masked_value=None):
    """The same spectrum as a `~specutils.Spectrum` in other units and forms."""
    wave, flux, sigma, mask = spectrum
    density = u.spectral_density(wave)
    flux, sigma = flux.to(flux_unit, density), sigma.to(flux_unit, density)
    if masked_value is not None:  # what masked pixels hold must not matter
        flux = np.where(mask, masked_value, flux.value) * flux_unit
    kinds = {"stddev": lambda: StdDevUncertainty(sigma),
             "variance": lambda: VarianceUncertainty(sigma**2),
             "ivar": lambda: InverseVariance(sigma**-2)}
    axis = wave.to(spectral_unit, u.spectral())
    order = slice(None, None, -1) if descending else slice(None)
    error = kinds[uncertainty]()
    return Spectrum(spectral_axis=axis[order], flux=flux[order],
                    uncertainty=type(error)(error.array[order], unit=error.unit),
                    mask=mask[order])


def assert_same(a, b, atol=TOLERANCE):
    assert a.n_patches == b.n_patches
    np.testing.assert_array_equal(a.valid, b.valid)
    np.testing.assert_allclose(a.embedding, b.embedding, rtol=0, atol=atol)
    np.testing.assert_allclose(a.tokens, b.tokens, rtol=0, atol=atol)


# -- invariances ---------------------------------------------------------------------------

@settings(FAST, max_examples=25)
@given(spectra(), st.sampled_from(SPECTRAL_UNITS), st.sampled_from(FLUX_UNITS),
       st.sampled_from(UNCERTAINTIES), st.booleans())
def test_units_direction_and_uncertainty_kind_do_not_matter(model, spectrum, spectral_unit,
                                                            flux_unit, uncertainty, descending):
    reference = spectok.encode(given_as(spectrum), model)
    other = spectok.encode(given_as(spectrum, spectral_unit, flux_unit, uncertainty,
                                    descending), model)
    assert_same(reference, other)
    assert other.flux_unit == flux_unit
    np.testing.assert_allclose(other.scale.to_value(FLAM), reference.scale.to_value(FLAM),
                               rtol=1e-9)


@settings(FAST, max_examples=20)
@given(spectra(max_pixels=20_000), st.integers(-30, 30), st.floats(1, 10))
def test_brightness_changes_only_the_scale(model, spectrum, exponent, mantissa):
    factor = mantissa * 10.0**exponent
    wave, flux, sigma, mask = spectrum
    reference = spectok.encode(given_as(spectrum), model)
    brighter = spectok.encode(given_as((wave, factor * flux, factor * sigma, mask)), model)
    assert_same(reference, brighter)
    np.testing.assert_allclose(brighter.scale / reference.scale, factor, rtol=1e-9)


@settings(FAST, max_examples=20)
@given(spectra(max_pixels=20_000), st.sampled_from([np.nan, np.inf, 0.0, -1e30, 1e30]))
def test_masked_pixels_do_not_matter(model, spectrum, garbage):
    assume(spectrum[3].any())
    assert_same(spectok.encode(given_as(spectrum), model),
                spectok.encode(given_as(spectrum, masked_value=garbage), model))


@settings(FAST, max_examples=15)
@given(st.lists(spectra(max_pixels=10_000), min_size=2, max_size=5), st.integers(1, 5),
       st.randoms(use_true_random=False))
def test_batch_composition_and_order_do_not_matter(model, many, batch_size, random):
    alone = [spectok.encode(given_as(s), model) for s in many]
    order = list(range(len(many)))
    random.shuffle(order)
    batch = spectok.encode([given_as(many[k]) for k in order], model, batch_size=batch_size)
    assert batch.indices.tolist() == list(range(len(many))) and batch.skipped == []
    for position, k in enumerate(order):
        assert_same(batch[position], alone[k])


# -- never NaN, only documented errors -----------------------------------------------------

@st.composite
def damaged(draw):
    """A random spectrum with random damage: some leave it usable, some do not."""
    wave, flux, sigma, mask = draw(spectra(max_pixels=5000, bad_pixels=False))
    wave, flux, sigma = wave.value.copy(), flux.value.copy(), sigma.value.copy()
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for damage in draw(st.lists(st.sampled_from(
            ["nan_flux", "inf_flux", "zero_sigma", "negative_sigma", "mask", "huge", "tiny",
             "zero_flux", "duplicate", "swap", "nan_wave", "negative_wave", "truncate"]),
            max_size=4)):
        n = len(wave)
        if n < 4:
            break
        where = rng.random(n) < draw(st.floats(0, 1))
        if damage == "nan_flux":
            flux[where] = np.nan
        elif damage == "inf_flux":
            flux[where] = np.inf
        elif damage == "zero_sigma":
            sigma[where] = 0
        elif damage == "negative_sigma":
            sigma[where] = -sigma[where]
        elif damage == "mask":
            mask = mask | where
        elif damage == "huge":
            with np.errstate(over="ignore"):
                flux[where] *= 1e250
        elif damage == "tiny":
            flux[where] *= 1e-250
        elif damage == "zero_flux":
            flux[where] = 0
        elif damage == "duplicate":
            wave[n // 2] = wave[n // 2 - 1]
        elif damage == "swap":
            wave[[n // 3, n // 3 + 1]] = wave[[n // 3 + 1, n // 3]]
        elif damage == "nan_wave":
            wave[rng.integers(n)] = np.nan
        elif damage == "negative_wave":
            wave -= wave[n // 2]
        else:
            keep = draw(st.integers(0, n))
            wave, flux, sigma, mask = wave[:keep], flux[:keep], sigma[:keep], mask[:keep]
    kind = draw(st.sampled_from(UNCERTAINTIES))
    with np.errstate(over="ignore"):  # huge errors square to inf: invalid pixels
        uncertainty = {"stddev": lambda: StdDevUncertainty(sigma),
                       "variance": lambda: VarianceUncertainty(sigma**2),
                       "ivar": lambda: InverseVariance(np.divide(
                           1, sigma**2, where=sigma != 0, out=np.zeros_like(sigma)))}[kind]()
    return (wave * u.AA, flux * FLAM, uncertainty), mask


@settings(FAST, max_examples=60)
@given(damaged())
def test_never_nan_and_only_documented_errors(model, case):
    (wave, flux, uncertainty), mask = case
    item = (wave, flux, uncertainty) if not mask.any() else _spectrum_or_none(
        wave, flux, uncertainty, mask)
    assume(item is not None)
    try:
        tokens = spectok.encode(item, model)
    except (SpectrumInputError, u.UnitConversionError) as error:
        assert str(error).startswith("spectrum 0: ")
        return
    assert np.all(np.isfinite(tokens.embedding)) and np.all(np.isfinite(tokens.tokens))
    assert tokens.valid.any()


def _spectrum_or_none(wave, flux, uncertainty, mask):
    try:
        return Spectrum(spectral_axis=wave, flux=flux, uncertainty=uncertainty, mask=mask)
    except ValueError:  # specutils itself refuses an unsorted or non-finite axis
        return None
