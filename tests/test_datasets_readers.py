"""The specutils reader registered for SpeX prism files."""

import io

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from specutils import Spectrum

import spectok
from spectok.datasets.fetch import read_member
from spectok.datasets.readers import read_spex_prism

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


def _spex_fits_bytes():
    wave = np.linspace(0.7, 2.5, 40)
    hdu = fits.PrimaryHDU(np.array([wave, np.ones(40), np.full(40, 0.1)]))
    hdu.header["XUNITS"] = "um"
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()


def test_a_file_object_without_a_name_is_read():
    # Path(BytesIO) failed: "expected str, bytes or os.PathLike object, not BytesIO"
    spectrum = read_spex_prism(io.BytesIO(_spex_fits_bytes()))
    assert spectrum.spectral_axis.unit == u.um and len(spectrum.flux) == 40


@pytest.mark.parametrize("file_obj", [None, 5, b"spectrum.fits"])
def test_what_is_neither_a_path_nor_a_file_is_refused(file_obj):
    with pytest.raises(TypeError, match="file_obj must be a path or a file object"):
        read_spex_prism(file_obj)


@pytest.mark.parametrize("compress", [False, True])
def test_a_file_object_is_checked_before_astropy_reads_it(compress):
    import gzip

    # a header claiming 10¹¹ axes sends astropy into an hours-long loop; file objects went to
    # astropy unchecked
    data = bytearray(_spex_fits_bytes())
    card = data.index(b"NAXIS   =")
    data[card:card + 80] = b"NAXIS   = 99999999999".ljust(80)
    data = gzip.compress(bytes(data)) if compress else bytes(data)
    buffer = io.BytesIO(data)
    buffer.seek(0)
    with pytest.raises(OSError, match="claims NAXIS = 99999999999"):
        read_spex_prism(buffer)
    assert len(read_spex_prism(io.BytesIO(_spex_fits_bytes())).flux) == 40


def test_a_stream_that_cannot_seek_is_read_and_checked():
    class Stream:   # read() only, as a pipe or a socket gives
        name = "piped.fits"

        def __init__(self, data):
            self._buffer = io.BytesIO(data)

        def read(self, *size):
            return self._buffer.read(*size)

    assert len(read_spex_prism(Stream(_spex_fits_bytes())).flux) == 40
    data = bytearray(_spex_fits_bytes())
    card = data.index(b"NAXIS   =")
    data[card:card + 80] = b"NAXIS   = 99999999999".ljust(80)
    with pytest.raises(OSError, match="piped.fits: HDU 0 claims NAXIS"):
        read_spex_prism(Stream(bytes(data)))
