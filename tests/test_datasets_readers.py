"""The specutils reader registered for SpeX prism files."""

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from specutils import Spectrum

import spectok
from spectok.datasets.fetch import read_member

MEMBER = "splat/resources/Spectra/Public/SPEX-PRISM/10001_10443.fits.gz"


@pytest.mark.remote_data
def test_spex_prism_file_reads_and_matches_the_loader(tmp_path, tiny_model):
    path = tmp_path / "10001_10443.fits.gz"
    path.write_bytes(read_member("splat", MEMBER))
    spectrum = Spectrum.read(path, format="spex-prism")
    assert spectrum.spectral_axis.unit == u.um
    assert 0.6 < spectrum.spectral_axis[0].value < spectrum.spectral_axis[-1].value < 2.7
    assert spectrum.flux.unit.is_equivalent(u.erg / u.s / u.cm**2 / u.AA)
    loaded = spectok.datasets.load_spex()
    index = list(loaded.labels["id"]).index("10001")
    np.testing.assert_allclose(spectrum.flux.value, loaded.spectra[index].flux.value)
    assert np.isfinite(spectok.encode(spectrum, model=tiny_model).embedding).all()
    # the header names SpeX in prism (LowRes) mode, so specutils identifies the format itself
    assert Spectrum.read(path).meta["instrument"] == "IRTF/SpeX prism"


def test_a_file_that_is_not_a_spex_spectrum_is_refused_with_its_name(tmp_path):
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((5, 5, 5, 5))).writeto(path)
    with pytest.raises(ValueError, match="image.fits: not a readable SpeX prism spectrum"):
        Spectrum.read(path, format="spex-prism")
