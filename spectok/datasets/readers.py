"""specutils readers for formats specutils does not have.

specutils 2 already reads SDSS, DESI, APOGEE, GALAH and MaNGA files. It has no
reader for the SpeX Prism Library's FITS files (IRTF/SpeX prism mode,
0.65–2.55 µm), which this module registers as ``format="spex-prism"``.
"""

import io
from contextlib import ExitStack
from os import PathLike
from pathlib import Path

from astropy.io import fits
from specutils import Spectrum
from specutils.io.registers import data_loader

from .._fits_check import check_fits_header
from .fetch import _quiet_fits_headers
from .spex import _Skip, _spex_spectrum

__all__ = ["read_spex_prism"]


def _identify_spex_prism(origin, *args, **kwargs):
    """True for FITS files whose header names the SpeX instrument in prism (LowRes) mode."""
    try:
        with fits.open(args[0], memmap=False) as hdul, _quiet_fits_headers():
            header = hdul[0].header
            instrument = f"{header.get('INSTRUME', '')} {header.get('INSTR', '')}".lower()
            return "spex" in instrument and "lowres" in str(header.get("GRAT", "")).lower()
    except Exception:  # noqa: BLE001 - an identifier must not raise: a corrupt file is not ours
        return False


@data_loader("spex-prism", identifier=_identify_spex_prism, dtype=Spectrum,
             extensions=["fits", "fits.gz"], priority=5)
def read_spex_prism(file_obj, **kwargs):
    """Read a SpeX Prism Library FITS file into a `~specutils.Spectrum`.

    The primary array holds rows of wavelength (µm), flux and, in most files,
    its error (some files store the array transposed, some add a row of
    pixel flags). Flux given in ``W m-2 um-1`` or ``erg s-1 cm-2 A-1`` comes
    back in erg s⁻¹ cm⁻² Å⁻¹; files without a flux unit are divided by their
    median over 1.2–1.3 µm and come back dimensionless. What was done is
    listed in ``meta["notes"]``.

    Parameters
    ----------
    file_obj : str, `~pathlib.Path` or file-like
        The FITS file (gzip-compressed or not).

    Returns
    -------
    `~specutils.Spectrum`

    Raises
    ------
    TypeError
        ``file_obj`` is neither a path nor a file object.
    ValueError
        The file is not a SpeX prism spectrum, or is corrupt (the message
        says why).
    OSError
        The file cannot be opened as FITS (missing, truncated, not FITS, or
        a header claiming more axes than the FITS standard allows).

    Examples
    --------
    >>> from specutils import Spectrum
    >>> import spectok.datasets  # registers the reader
    >>> from spectok.datasets.fetch import read_member
    >>> import pathlib, tempfile
    >>> member = "splat/resources/Spectra/Public/SPEX-PRISM/10001_10443.fits.gz"
    >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +REMOTE_DATA
    ...     path = pathlib.Path(tmp) / "10001_10443.fits.gz"
    ...     _ = path.write_bytes(read_member("splat", member))
    ...     spectrum = Spectrum.read(path, format="spex-prism")
    ...     print(spectrum.spectral_axis.unit, spectrum.meta["instrument"])
    um IRTF/SpeX prism
    """
    is_path = isinstance(file_obj, (str, PathLike))
    if not (is_path or hasattr(file_obj, "read")):
        raise TypeError(f"file_obj must be a path or a file object, got {file_obj!r}")
    name = Path(file_obj if is_path else str(getattr(file_obj, "name", "file object"))).name
    stem = name.split(".")[0]
    if not is_path and not getattr(file_obj, "seekable", lambda: False)():
        file_obj = io.BytesIO(file_obj.read())   # the header is looked at, then read again
    check_fits_header(file_obj, None if is_path else name)  # astropy could loop for hours
    try:
        with ExitStack() as opened:
            if is_path:  # opened here so that it is closed even when astropy fails half-way
                file_obj = opened.enter_context(open(file_obj, "rb"))
            hdul = opened.enter_context(fits.open(file_obj, memmap=False))
            return _spex_spectrum(hdul, name, {"id": stem, "resolution": None})
    except _Skip as reason:
        raise ValueError(f"{name}: not a readable SpeX prism spectrum: {reason}") from None
    except FileNotFoundError:
        raise
    except OSError as error:
        raise OSError(f"{name}: cannot be read as FITS ({error})") from None
    except Exception as error:  # noqa: BLE001 - astropy raises many kinds on a corrupt header
        raise ValueError(f"{name}: not a readable SpeX prism spectrum: corrupt FITS file "
                         f"({type(error).__name__}: {error})") from None
