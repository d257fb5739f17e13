"""A handful of real survey spectra shipped as test data: DESI and MaNGA.

* DESI: two coadded targets from the ``fastspecfit`` wheel, each with its
  three spectrograph arms (B, R, Z; 3600–9824 Å at 0.8 Å), inverse
  variance, pixel mask and resolution matrix, and the redrock redshift.
* MaNGA: eight spaxel spectra from seven galaxies in the ``sdss-mangadap``
  wheel (log-λ, 1e-4 dex, 3622–10354 Å) with inverse variance, the DRP
  pixel mask, per-pixel spectral resolution and the NSA redshift.

Both surveys calibrate wavelengths in vacuum.
"""

import functools

import numpy as np

from .dataset import SpectrumDataset
from .fetch import (DATA_WHEELS, _open_zip, _quiet_fits_headers, _read_fits_bytes, list_members,
                    read_member)

__all__ = ["load_desi_examples", "load_manga_examples"]

_DESI_DIR = "fastspecfit/test/data/"
_MANGA_FILE = "mangadap/data/tests/MaNGA_test_spectra.fits.gz"

# Spaxels picked by mangadap/data/tests/compile_test_spectra, in file order:
# (plate-ifu, x, y). The eighth entry of its coordinate list is unused.
_MANGA_SPAXELS = [
    ("8131-6102", 27, 27), ("8131-3702", 22, 22), ("8258-6102", 27, 27),
    ("8329-1901", 19, 14), ("8138-12704", 37, 37), ("7815-6101", 37, 46),
    ("7815-6101", 37, 37), ("9494-3703", 26, 26),
]


def _flux_unit(header, what):
    """The flux unit from BUNIT, which must be 1e-17 erg/s/cm2/Å for these files."""
    import astropy.units as u

    expected = 1e-17 * u.erg / u.s / u.cm ** 2 / u.AA
    bunit = str(header.get("BUNIT", "")).strip()
    try:
        unit = u.Unit(bunit)
    except ValueError as exc:
        raise ValueError(f"{what}: cannot parse BUNIT={bunit!r}") from exc
    if unit != u.Unit(expected):
        raise ValueError(f"{what}: BUNIT={bunit!r}, expected 1e-17 erg/(s cm2 Angstrom)")
    return u.Unit(expected)


@functools.lru_cache(maxsize=1)
def _desi():
    import astropy.units as u
    from astropy.nddata import InverseVariance
    from astropy.table import Table
    from specutils import Spectrum, SpectrumList

    spectra, rows = [], []
    with _open_zip("fastspecfit") as zf:
        coadds = list_members(zf, _DESI_DIR + "coadd-*.fits")
        for coadd in coadds:
            tag = coadd.rsplit("/", 1)[-1][len("coadd-"):-len(".fits")]
            redrock = f"{_DESI_DIR}redrock-{tag}.fits"
            with _read_fits_bytes(read_member(zf, redrock)) as hdul:
                zcat = Table(hdul["REDSHIFTS"].data)
            with _read_fits_bytes(read_member(zf, coadd)) as hdul, _quiet_fits_headers():
                fibermap = Table(hdul["FIBERMAP"].data)
                primary = hdul[0].header
                arms_data = {}
                for arm in "BRZ":
                    arms_data[arm] = {
                        "wave": np.asarray(hdul[f"{arm}_WAVELENGTH"].data, dtype=float),
                        "wave_unit": str(hdul[f"{arm}_WAVELENGTH"].header.get("BUNIT", "")),
                        "flux": np.asarray(hdul[f"{arm}_FLUX"].data, dtype=float),
                        "ivar": np.asarray(hdul[f"{arm}_IVAR"].data, dtype=float),
                        "mask": np.asarray(hdul[f"{arm}_MASK"].data),
                        "resolution": np.asarray(hdul[f"{arm}_RESOLUTION"].data, dtype=float),
                        "unit": _flux_unit(hdul[f"{arm}_FLUX"].header, f"{coadd}[{arm}_FLUX]"),
                    }
            for i, targetid in enumerate(fibermap["TARGETID"]):
                match = np.flatnonzero(zcat["TARGETID"] == targetid)
                if match.size != 1:
                    raise ValueError(f"{redrock}: {match.size} redshifts for TARGETID {targetid}")
                z = zcat[match[0]]
                arms = SpectrumList()
                for arm, d in arms_data.items():
                    if d["wave_unit"].strip() not in ("Angstrom", "Angstroms", "AA"):
                        raise ValueError(f"{coadd}: {arm}_WAVELENGTH unit {d['wave_unit']!r}")
                    ivar = d["ivar"][i]
                    mask = (d["mask"][i] != 0) | ~np.isfinite(d["flux"][i]) | ~(ivar > 0)
                    arms.append(Spectrum(
                        flux=d["flux"][i] * d["unit"], spectral_axis=d["wave"] * u.AA,
                        uncertainty=InverseVariance(np.where(np.isfinite(ivar), ivar, 0.0)
                                                    * d["unit"] ** -2),
                        mask=mask,
                        meta={"id": str(targetid), "medium": "vacuum",
                              "instrument": "DESI", "arm": arm, "source": coadd,
                              "resolution_data": d["resolution"][i]}))
                spectra.append(arms)
                rows.append({"id": str(targetid), "targetid": int(targetid),
                             "z": float(z["Z"]), "zerr": float(z["ZERR"]),
                             "zwarn": int(z["ZWARN"]),
                             "spectype": str(z["SPECTYPE"]).strip(),
                             "subtype": str(z["SUBTYPE"]).strip(),
                             "deltachi2": float(z["DELTACHI2"]),
                             "survey": str(primary.get("SURVEY", "")).strip(),
                             "program": str(primary.get("PROGRAM", "")).strip(),
                             "file": coadd.rsplit("/", 1)[-1]})
    labels = Table(rows=[[r[k] for k in rows[0]] for r in rows], names=list(rows[0]))
    labels["z"].description = "redrock redshift"
    return tuple(spectra), labels


def load_desi_examples():
    """Load the two DESI coadded spectra shipped with fastspecfit.

    Each object is a `~specutils.SpectrumList` of its three arms (B, R, Z),
    each a `~specutils.Spectrum` in 1e-17 erg s⁻¹ cm⁻² Å⁻¹ on vacuum
    wavelengths in Å, with `~astropy.nddata.InverseVariance` and a mask
    (pipeline mask bits set, zero inverse variance or non-finite flux).
    The resolution matrix of each arm is kept in ``meta["resolution_data"]``
    (the DESI ``*_RESOLUTION`` diagonals, shape (11, npix)).

    The spectra are cached in memory for the process and shared between
    calls; the returned list and table are fresh copies.

    Returns
    -------
    dataset : `~spectok.datasets.SpectrumDataset`
        Labels ``id`` (TARGETID as a string), ``targetid``, ``z``, ``zerr``,
        ``zwarn``, ``spectype``, ``subtype``, ``deltachi2`` (redrock),
        ``survey``, ``program`` and ``file``.

    Raises
    ------
    WheelFetchError
        If the ``fastspecfit`` wheel is not cached and cannot be fetched.
    ValueError
        If a file's units or redshift table are not as expected.

    Examples
    --------
    >>> from spectok.datasets import load_desi_examples
    >>> ds = load_desi_examples()  # doctest: +REMOTE_DATA
    >>> [round(float(z), 4) for z in ds.labels["z"]]  # doctest: +REMOTE_DATA
    [0.3687, 0.0073]
    >>> [arm.meta["arm"] for arm in ds.spectra[0]]  # doctest: +REMOTE_DATA
    ['B', 'R', 'Z']
    """
    spectra, labels = _desi()
    return SpectrumDataset(list(spectra), labels.copy(), name="desi_examples",
                           meta={"distribution": "fastspecfit",
                                 "version": DATA_WHEELS["fastspecfit"]["version"],
                                 "shared_spectra": True})


@functools.lru_cache(maxsize=1)
def _manga():
    import astropy.units as u
    from astropy.nddata import InverseVariance
    from astropy.table import Table
    from specutils import Spectrum

    with _read_fits_bytes(read_member("sdss-mangadap", _MANGA_FILE, decompress=True)) as hdul:
        with _quiet_fits_headers():
            drpver = str(hdul[0].header.get("DRPVER", "")).strip()
        wave = np.asarray(hdul["WAVE"].data, dtype=float)
        flux = np.asarray(hdul["FLUX"].data, dtype=float)
        ivar = np.asarray(hdul["IVAR"].data, dtype=float)
        mask = np.asarray(hdul["MASK"].data)
        sres = np.asarray(hdul["SRES"].data, dtype=float)
        redshift = np.asarray(hdul["Z"].data, dtype=float)
    if flux.shape != (len(_MANGA_SPAXELS), wave.size) or redshift.size != len(_MANGA_SPAXELS):
        raise ValueError(f"{_MANGA_FILE}: unexpected shapes flux {flux.shape}, "
                         f"z {redshift.shape}")
    unit = u.Unit(1e-17 * u.erg / u.s / u.cm ** 2 / u.AA)
    spectra, rows = [], []
    for i, (plateifu, x, y) in enumerate(_MANGA_SPAXELS):
        sid = f"{plateifu}-{x}-{y}"
        bad = (mask[i] != 0) | ~np.isfinite(flux[i]) | ~(ivar[i] > 0)
        spectra.append(Spectrum(
            flux=flux[i] * unit, spectral_axis=wave * u.AA,
            uncertainty=InverseVariance(np.where(np.isfinite(ivar[i]), ivar[i], 0.0)
                                        * unit ** -2),
            mask=bad,
            meta={"id": sid, "medium": "vacuum", "instrument": "SDSS-IV MaNGA",
                  "source": _MANGA_FILE, "drpver": drpver, "spectral_resolution": sres[i],
                  "flux_note": "per spaxel"}))
        rows.append({"id": sid, "plateifu": plateifu, "x": x, "y": y,
                     "z": float(redshift[i]), "n_valid": int((~bad).sum()),
                     "usable": bool((~bad).any())})
    labels = Table(rows=[[r[k] for k in rows[0]] for r in rows], names=list(rows[0]))
    labels["z"].description = "NSA redshift of the galaxy"
    labels["usable"].description = "False if every pixel is masked (DRP DONOTUSE)"
    return tuple(spectra), labels, drpver


def load_manga_examples():
    """Load the eight MaNGA test spectra shipped with the MaNGA DAP.

    Eight spaxels from seven galaxies (two spaxels of 7815-6101; split by
    ``plateifu`` to keep a galaxy on one side). Each `~specutils.Spectrum`
    is in 1e-17 erg s⁻¹ cm⁻² Å⁻¹ per spaxel on vacuum wavelengths in Å
    (3621.6–10353.8 Å, 1e-4 dex steps), with
    `~astropy.nddata.InverseVariance`, a mask (any DRP mask bit, zero
    inverse variance, non-finite flux) and the per-pixel spectral resolution
    in ``meta["spectral_resolution"]``. Spaxel 7815-6101 (37, 46) is flagged
    DONOTUSE at every pixel: it is kept (``usable`` is False) so the set
    matches the file, but it has no valid pixel.

    The spectra are cached in memory for the process and shared between
    calls; the returned list and table are fresh copies.

    Returns
    -------
    dataset : `~spectok.datasets.SpectrumDataset`
        Labels ``id`` (``"plateifu-x-y"``), ``plateifu``, ``x``, ``y``,
        ``z`` (NSA redshift, 0.017–0.050), ``n_valid`` and ``usable``.

    Raises
    ------
    WheelFetchError
        If the ``sdss-mangadap`` wheel is not cached and cannot be fetched.
    ValueError
        If the file does not have the expected eight spectra.

    Examples
    --------
    >>> from spectok.datasets import load_manga_examples
    >>> ds = load_manga_examples()  # doctest: +REMOTE_DATA
    >>> len(ds), int(ds.labels["usable"].sum())  # doctest: +REMOTE_DATA
    (8, 7)
    """
    spectra, labels, drpver = _manga()
    return SpectrumDataset(list(spectra), labels.copy(), name="manga_examples",
                           meta={"distribution": "sdss-mangadap",
                                 "version": DATA_WHEELS["sdss-mangadap"]["version"],
                                 "drpver": drpver, "shared_spectra": True})
