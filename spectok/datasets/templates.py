"""Stellar and stellar-population template libraries shipped with the MaNGA DAP.

The ``sdss-mangadap`` wheel carries, beside the MILES stars (`load_miles`),
averaged stellar spectra (MaStar and MILES hierarchical-cluster templates)
and simple-stellar-population (SSP) model libraries. Each file is a 1-D
FITS image whose wavelength axis is described by ``CRVAL1``/``CDELT1``/
``CRPIX1``; the DAP's own configuration (``mangadap/config/spectral_templates/
*.ini``) says whether the axis is in log10(Å) and whether wavelengths are in
vacuum or air, which is what the tables below encode.
"""

import functools
import re

import numpy as np

from .._checks import check_names
from .dataset import SpectrumDataset
from .fetch import (DATA_WHEELS, _open_zip, _quiet_fits_headers, _read_fits_bytes, list_members,
                    read_member)

__all__ = ["load_stellar_templates", "load_ssp_templates"]

_ROOT = "mangadap/data/spectral_templates/"

# Library -> (file glob, in vacuum?, log10 axis?), from the DAP .ini files.
_STELLAR_LIBRARIES = {
    "mastarhc_v2": ("MaStarHC_*.fits.gz", True, True),
    "mastarhc": ("MaStarHC_*.fits", True, True),
    "mileshc_v2": ("MILESHC_*.fits", False, False),
    "miles_cluster": ("MILES_cluster_group_*.fits", False, False),
}

# The M11-STELIB libraries (m11_stelib, m11_stelib_zsol) are built from the
# STELIB stars, which are reserved for independent evaluation: left out.
_SSP_LIBRARIES = {
    "bc03_mpajhu": ("BC03_z*_a*.fits", False, False),
    "m11_miles": ("M11_MILES_*.fits", False, False),
    "m11_marcs": ("M11_MARCS_*_s.fits", False, False),  # *_s: resampled to 1 Å (README)
    "m11_elodie": ("M11_ELODIE_*.fits", False, False),
    "miuscat": ("Iun*.fits", False, False),
    "mastar_ssp_v1.0": ("MaStar-SSP-*.fits.gz", True, True),
    "bpass": ("bin-imf*.fits", True, False),  # vacuum per the DAP .ini ("assuming", README)
}

# What the stored numbers are, per SSP library (kept unscaled, see load_ssp_templates).
_SSP_FLUX_NOTES = {
    "bc03_mpajhu": "BC03 SSP luminosity density per unit stellar mass (L_sun/Å/M_sun)",
    "m11_miles": "M11 SSP luminosity density per unit stellar mass (erg/s/Å/M_sun)",
    "m11_marcs": "M11 SSP luminosity density per unit stellar mass (erg/s/Å/M_sun)",
    "m11_elodie": "M11 SSP luminosity density per unit stellar mass (erg/s/Å/M_sun)",
    "miuscat": "MIUSCAT SSP luminosity density per unit stellar mass (L_sun/Å/M_sun)",
    "mastar_ssp_v1.0": "MaStar SSP spectra, normalised as distributed",
    "bpass": "BPASS v2.2.1 binary-population luminosity density (L_sun/Å per 1e6 M_sun)",
}

_INSTRUMENTS = {
    "mastarhc_v2": "SDSS-IV MaStar (BOSS spectrographs), cluster average",
    "mastarhc": "SDSS-IV MaStar (BOSS spectrographs), cluster average",
    "mileshc_v2": "MILES (INT/IDS), cluster average",
    "miles_cluster": "MILES (INT/IDS), cluster average",
}

_Z_SUN = 0.02  # solar metallicity assumed by BC03, M11 and BPASS

def _header_wavelength(header, npix, log10=None, what="spectrum"):
    """Pixel-centre wavelengths from CRVAL1/CDELT1 (or CD1_1)/CRPIX1.

    ``log10`` true means the axis is log10(Å) (the DAP convention for
    ``CTYPE1 = 'WAVE-LOG'``); `None` guesses it from ``CTYPE1`` and the
    size of ``CRVAL1``. Returns wavelengths in Å as a float64 array.
    """
    try:
        crval = float(header["CRVAL1"])
    except KeyError:
        raise ValueError(
            f"{what}: header has no CRVAL1, cannot build the wavelength axis") from None
    cdelt = header.get("CDELT1", header.get("CD1_1"))
    if cdelt is None:
        raise ValueError(f"{what}: header has neither CDELT1 nor CD1_1")
    cdelt = float(cdelt)
    if "CD1_1" in header and not np.isclose(float(header["CD1_1"]), cdelt, rtol=1e-9, atol=0):
        raise ValueError(f"{what}: CDELT1={cdelt} and CD1_1={header['CD1_1']} disagree")
    crpix = float(header.get("CRPIX1", 1.0))
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    if log10 is None:
        log10 = ctype.endswith("LOG") or crval < 10
    if ctype and ctype not in ("WAVE", "WAVE-LOG", "LINEAR", "AWAV", "LAMBDA"):
        raise ValueError(f"{what}: unexpected CTYPE1={ctype!r}")
    if log10 and crval > 10:
        raise ValueError(f"{what}: log10 axis expected but CRVAL1={crval}")
    if not log10 and crval < 100:
        raise ValueError(f"{what}: linear Å axis expected but CRVAL1={crval}")
    coord = crval + (np.arange(npix, dtype=float) + 1.0 - crpix) * cdelt
    return 10.0 ** coord if log10 else coord


def _template_spectrum(hdul, member, library, vacuum, log10, spectrum_id, flux_unit, *,
                       mask_nonpositive=False, extra_meta=None):
    """One spectrum from a DAP template file: primary flux, optional IVAR and SRES."""
    import astropy.units as u
    from astropy.nddata import InverseVariance
    from specutils import Spectrum

    with _quiet_fits_headers():
        header = hdul[0].header
        flux = np.asarray(hdul[0].data, dtype=float)
        if flux.ndim != 1:
            raise ValueError(f"{member}: expected a 1-D spectrum, got shape {flux.shape}")
        wave = _header_wavelength(header, flux.size, log10=log10, what=member)
        names = [h.name for h in hdul]
        ivar = None
        if "IVAR" in names and hdul["IVAR"].data is not None:
            ivar = np.asarray(hdul["IVAR"].data, dtype=float)
        sres = None
        if "SRES" in names and hdul["SRES"].data is not None:
            sres = np.asarray(hdul["SRES"].data, dtype=float)
    mask = ~np.isfinite(flux)
    if mask_nonpositive:
        mask |= flux <= 0
    uncertainty = None
    if ivar is not None:
        if ivar.shape != flux.shape:
            raise ValueError(f"{member}: IVAR shape {ivar.shape} != flux shape {flux.shape}")
        mask |= ~np.isfinite(ivar) | (ivar <= 0)
        uncertainty = InverseVariance(np.where(np.isfinite(ivar), ivar, 0.0) * flux_unit ** -2)
    meta = {"id": spectrum_id, "medium": "vacuum" if vacuum else "air",
            "instrument": _INSTRUMENTS.get(library, f"SSP model ({library})"),
            "library": library, "source": member}
    if sres is not None:
        meta["spectral_resolution"] = sres
    if extra_meta:
        meta.update(extra_meta)
    return Spectrum(flux=flux * flux_unit, spectral_axis=wave * u.AA, uncertainty=uncertainty,
                    mask=mask if mask.any() or ivar is not None else None, meta=meta)


def _load_library_files(libraries, names, kind):
    """Read every file of the chosen libraries; return spectra, per-file info, meta."""
    import astropy.units as u

    spectra, rows = [], []
    with _open_zip("sdss-mangadap") as zf:
        for library in names:
            pattern, vacuum, log10 = libraries[library]
            members = list_members(zf, _ROOT + library + "/" + pattern)
            if not members:
                raise OSError(f"no {pattern} files under {_ROOT}{library} in the wheel")
            for member in members:
                stem = member.rsplit("/", 1)[-1].split(".fits")[0]
                with _read_fits_bytes(read_member(zf, member, decompress=True)) as hdul:
                    spectrum = _template_spectrum(
                        hdul, member, library, vacuum, log10, f"{library}/{stem}",
                        u.dimensionless_unscaled, mask_nonpositive=(kind == "SSP"),
                        extra_meta={"flux_note": _SSP_FLUX_NOTES[library]}
                        if kind == "SSP" else None)
                    with _quiet_fits_headers():
                        header = hdul[0].header.copy()
                spectra.append(spectrum)
                rows.append((library, stem, header))
    return spectra, rows


@functools.lru_cache(maxsize=None)
def _stellar_templates(libraries):
    from astropy.table import Table

    spectra, rows = _load_library_files(_STELLAR_LIBRARIES, libraries, "stellar template")
    labels = Table({
        "id": [s.meta["id"] for s in spectra],
        "library": [r[0] for r in rows],
        "file": [r[1] for r in rows],
    })
    return tuple(spectra), labels


def load_stellar_templates(libraries=("mastarhc_v2", "mastarhc", "mileshc_v2", "miles_cluster")):
    """Load the averaged stellar templates of the MaNGA DAP (unlabelled).

    These are hierarchical-cluster averages of real stars: MaStar ones
    (``mastarhc_v2``, ``mastarhc``; log-λ sampling of 1e-4 dex over
    3630–10320 Å, vacuum wavelengths, with inverse variance and a
    per-pixel spectral resolution ``meta["spectral_resolution"]``) and
    MILES ones (``mileshc_v2`` with inverse variance, ``miles_cluster``
    without; 3540.5–7409.6 Å in steps of 0.9 Å, air wavelengths). The
    wavelength axis is built from each file's header; flux is normalised
    (dimensionless).

    Parsed data are cached in memory for the process: the returned list
    and table are fresh copies, the `~specutils.Spectrum` objects are
    shared between calls (copy one before changing it in place).

    Parameters
    ----------
    libraries : str or sequence of str, optional
        Which libraries to load, each once, from ``"mastarhc_v2"``,
        ``"mastarhc"``, ``"mileshc_v2"``, ``"miles_cluster"``. Default: all four.

    Returns
    -------
    dataset : `~spectok.datasets.SpectrumDataset`
        One `~specutils.Spectrum` per template (``meta`` has ``id``,
        ``medium``, ``instrument`` (the library) and ``source``); labels
        are ``id``, ``library`` and ``file``.

    Raises
    ------
    TypeError
        If ``libraries`` is not a name or a sequence of names (bytes, a set
        or a mapping is refused too).
    ValueError
        If ``libraries`` is empty, names an unknown library or one twice.
    WheelFetchError
        If the ``sdss-mangadap`` wheel is not cached and cannot be fetched.

    Examples
    --------
    >>> from spectok.datasets import load_stellar_templates
    >>> ds = load_stellar_templates(["mileshc_v2"])  # doctest: +REMOTE_DATA
    >>> len(ds), ds.spectra[0].meta["medium"]  # doctest: +REMOTE_DATA
    (63, 'air')
    """
    libraries = check_names(libraries, _STELLAR_LIBRARIES, "libraries",
                            "stellar template libraries")
    spectra, labels = _stellar_templates(libraries)
    return SpectrumDataset(list(spectra), labels.copy(), name="stellar_templates",
                           meta={"distribution": "sdss-mangadap",
                                 "version": DATA_WHEELS["sdss-mangadap"]["version"],
                                 "libraries": list(libraries),
                                 "shared_spectra": True})


_NUMBER = r"([-+]?\d+(?:\.\d*)?)"


def _ssp_parameters(library, stem, header):
    """(age in Gyr, [M/H] = log10 Z/Z_sun, Z mass fraction or nan, IMF) for an SSP file."""
    def num(pattern):
        match = re.search(pattern, stem)
        return float(match.group(1)) if match else np.nan

    z_frac = np.nan
    imf = ""
    if library == "bc03_mpajhu":
        age, z_frac = num(r"_a" + _NUMBER), num(r"_z" + _NUMBER)
        age = float(header.get("AGE", age))
        z_frac = float(header.get("Z", z_frac))
    elif library == "m11_marcs":
        # The header stores [Z/H] under an illegal keyword and without its sign;
        # the file name has it right: z_-2.2500 is [Z/H] = -2.25.
        age, mh = num(r"_age_" + _NUMBER), num(r"_z_" + _NUMBER)
        imf = "salpeter"
        return age, mh, np.nan, imf
    elif library.startswith("m11_"):
        age, z_frac = num(r"_age_" + _NUMBER), num(r"_z_" + _NUMBER)
        imf = str(header.get("IMF", "")).strip().lower()
    elif library == "miuscat":
        match = re.match(r"Iun(\d+\.\d+)Z([mp])(\d+\.\d+)T(\d+\.\d+)", stem)
        if not match:
            return np.nan, np.nan, np.nan, ""
        mh = float(match.group(3)) * (-1 if match.group(2) == "m" else 1)
        return float(match.group(4)), mh, np.nan, f"unimodal {match.group(1)}"
    elif library == "mastar_ssp_v1.0":
        age, mh = num(r"-A" + _NUMBER), num(r"-Z" + _NUMBER)
        return age, mh, np.nan, "salpeter"
    elif library == "bpass":
        match = re.match(r"bin-(imf\w+?)-z(\d+)-T" + _NUMBER, stem)
        if not match:
            return np.nan, np.nan, np.nan, ""
        z_frac = float("0." + match.group(2))
        age = 10.0 ** float(match.group(3))
        imf = match.group(1)
    else:  # pragma: no cover - guarded by _SSP_LIBRARIES
        raise ValueError(library)
    mh = np.log10(z_frac / _Z_SUN) if z_frac > 0 else np.nan
    return age, mh, z_frac, imf


@functools.lru_cache(maxsize=None)
def _ssp_templates(libraries):
    from astropy.table import MaskedColumn, Table

    spectra, rows = _load_library_files(_SSP_LIBRARIES, libraries, "SSP")
    params = [_ssp_parameters(lib, stem, header) for lib, stem, header in rows]
    age, mh, z_frac, imf = (np.array(col) for col in zip(*params))
    labels = Table({
        "id": [s.meta["id"] for s in spectra],
        "library": [r[0] for r in rows],
        "file": [r[1] for r in rows],
        "age": MaskedColumn(age, mask=~np.isfinite(age), unit="Gyr",
                            description="SSP age"),
        "metallicity": MaskedColumn(np.round(mh, 4), mask=~np.isfinite(mh),
                                    description="log10(Z/Z_sun) ([M/H]); Z_sun=0.02 where "
                                                "converted from a mass fraction"),
        "z_mass_fraction": MaskedColumn(z_frac, mask=~np.isfinite(z_frac),
                                        description="metal mass fraction Z where the library "
                                                    "gives one"),
        "imf": MaskedColumn([str(i) for i in imf], mask=[not i for i in imf]),
    })
    for spectrum, row in zip(spectra, labels):
        spectrum.meta["age_gyr"] = None if np.ma.is_masked(row["age"]) else float(row["age"])
        spectrum.meta["metallicity"] = (None if np.ma.is_masked(row["metallicity"])
                                        else float(row["metallicity"]))
    return tuple(spectra), labels


def load_ssp_templates(libraries=tuple(_SSP_LIBRARIES)):
    """Load the simple-stellar-population model spectra of the MaNGA DAP.

    Libraries (wavelengths in Å from each file's header; medium from the
    DAP configuration):

    ========================  =====  ==============================
    library                   files  sampling, medium
    ========================  =====  ==============================
    ``bc03_mpajhu``              40  1 Å, 3326–9294 Å, air
    ``m11_miles``               109  0.9 Å, 3500–7429 Å, air
    ``m11_marcs`` (``*_s``)      22  1 Å, 3000–11999 Å, air
    ``m11_elodie``              116  0.2 Å, 3900–6800 Å, air
    ``miuscat``                 200  0.9 Å, 3465–9469 Å, air
    ``mastar_ssp_v1.0``          54  1e-4 dex, 3622–10351 Å, vacuum
    ``bpass``                    72  1 Å, 3601–10399 Å, vacuum
    ========================  =====  ==============================

    The M11 libraries built on STELIB are not offered: STELIB is
    reserved for independent evaluation. Fluxes are kept as stored (so the
    relative normalisation between ages, i.e. the mass-to-light ratio, is
    preserved) but typed dimensionless: they are luminosity densities per
    unit mass in library-specific units (described in each spectrum's
    ``meta["flux_note"]``), not flux densities. Pixels with non-positive
    model flux (padding) are masked.

    Parsed data are cached in memory for the process: the returned list
    and table are fresh copies, the `~specutils.Spectrum` objects are
    shared between calls.

    Parameters
    ----------
    libraries : str or sequence of str, optional
        Libraries to load, each once (see the table). Default: all of them.

    Returns
    -------
    dataset : `~spectok.datasets.SpectrumDataset`
        Labels ``id``, ``library``, ``file``, ``age`` (Gyr),
        ``metallicity`` (log10 Z/Z_sun, with Z_sun = 0.02 where the library
        gives a mass fraction), ``z_mass_fraction`` and ``imf``, masked
        where the library does not say.

    Raises
    ------
    TypeError
        If ``libraries`` is not a name or a sequence of names (bytes, a set
        or a mapping is refused too).
    ValueError
        If ``libraries`` is empty, names an unknown library or one twice.
    WheelFetchError
        If the ``sdss-mangadap`` wheel is not cached and cannot be fetched.

    Examples
    --------
    >>> from spectok.datasets import load_ssp_templates
    >>> ds = load_ssp_templates(["bc03_mpajhu"])  # doctest: +REMOTE_DATA
    >>> len(ds), float(ds.labels["age"].max())  # doctest: +REMOTE_DATA
    (40, 10.0)
    """
    libraries = check_names(libraries, _SSP_LIBRARIES, "libraries", "SSP libraries")
    spectra, labels = _ssp_templates(libraries)
    return SpectrumDataset(list(spectra), labels.copy(), name="ssp_templates",
                           meta={"distribution": "sdss-mangadap",
                                 "version": DATA_WHEELS["sdss-mangadap"]["version"],
                                 "libraries": list(libraries),
                                 "excluded": ["m11_stelib", "m11_stelib_zsol"],
                                 "shared_spectra": True})
