"""Shared fixtures: a tiny seeded model and small synthetic spectra.

Nothing here loads the shipped weights, so the tests do not depend on them
(they will be replaced by trained ones) and run in seconds on a CPU.
"""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum

from spectok.adapter import FLAM
from spectok.model import CONFIGS, SpectralTokenizer

#: Largest difference allowed between two encodings that must be the same.
TOLERANCE = 1e-5


def synthetic_flux(wave_aa, seed=0):
    """A galaxy-like f_λ: sloped continuum, absorption lines and a little noise."""
    wave_aa = np.asarray(wave_aa, dtype=float)
    rng = np.random.default_rng(seed)
    continuum = 1.0 + 0.4 * (wave_aa - 4000.0) / 4000.0
    lines = sum(depth * np.exp(-0.5 * ((wave_aa - centre) / width) ** 2)
                for centre, width, depth in ((4101.7, 8, 0.3), (4340.5, 8, 0.35),
                                             (4861.3, 9, 0.4), (5175.0, 12, 0.25),
                                             (5892.0, 6, 0.3), (6564.6, 10, 0.5)))
    flux = continuum - lines + 0.01 * rng.standard_normal(wave_aa.shape)
    return 3e-17 * flux


def _make_pair(n=150, lo=4000.0, hi=5000.0, seed=0, relative_error=0.02):
    """``(wavelength [Å], flux [f_λ], sigma [f_λ])`` Quantities of a synthetic spectrum."""
    wave = np.linspace(lo, hi, n) * u.AA
    flux = synthetic_flux(wave.value, seed) * FLAM
    return wave, flux, relative_error * np.abs(flux) + 1e-19 * FLAM


@pytest.fixture
def tiny_model():
    """A freshly initialised, seeded ``tiny`` `SpectralTokenizer`, in eval mode."""
    torch.manual_seed(0)
    return SpectralTokenizer(CONFIGS["tiny"]).eval()


@pytest.fixture
def make_pair():
    """Factory ``make_pair(n=150, lo=4000, hi=5000, seed=0, relative_error=0.02)`` of
    ``(wavelength [Å], flux [f_λ], sigma [f_λ])`` tuples."""
    return _make_pair


@pytest.fixture
def pair():
    """A 150-pixel ``(wavelength, flux, sigma)`` tuple from 4000 to 5000 Å."""
    return _make_pair()


@pytest.fixture
def spectrum():
    """The same spectrum as `pair`, as a `~specutils.Spectrum` with an id."""
    wave, flux, sigma = _make_pair()
    return Spectrum(spectral_axis=wave, flux=flux, uncertainty=StdDevUncertainty(sigma),
                    meta={"id": "synthetic-0"})


@pytest.fixture
def assert_same_encoding():
    """Check that two `SpectralTokens` carry the same tokens, embedding and patch layout."""
    def check(a, b, atol=TOLERANCE):
        assert a.tokens.shape == b.tokens.shape
        np.testing.assert_array_equal(a.valid, b.valid)
        np.testing.assert_allclose(a.tokens, b.tokens, rtol=0, atol=atol)
        np.testing.assert_allclose(a.embedding, b.embedding, rtol=0, atol=atol)
    return check
