"""The MILES stellar library (Sánchez-Blázquez et al. 2006), as shipped with the MaNGA DAP.

984 real stars observed with the INT, 3540.5–7409.6 Å on a linear 0.9 Å
grid at 2.5 Å FWHM, air wavelengths, flux normalised (no uncertainties). The
DAP copy omits star m0970 (short wavelength range, red-end artefact; see
the library README). Atmospheric parameters come from ``MILES_params.db``
(99999/9999 mark missing values) and star names and spectral types from
the full ``paramsMILES_v9.1.txt`` table.
"""

import functools
import re

import numpy as np

from ._binning import FWHM_PER_SIGMA
from .dataset import SpectrumDataset
from .fetch import (DATA_WHEELS, _open_zip, _quiet_fits_headers, _read_fits_bytes, list_members,
                    read_member)
from .templates import _header_wavelength

__all__ = ["load_miles"]

_DIR = "mangadap/data/spectral_templates/miles/"
_FILE_RE = re.compile(r"MILES_res2\.50_star_m(\d{4})V\.fits$")


def _parse_params_db(text):
    """MILES_params.db -> {miles id (4 digits): (teff, logg, feh)} with NaN for missing.

    Also returns the ids that had to be repaired: the file lists star 0221
    as ``022.``, a typo (the only unmatched line; its name, HD044691A, and
    parameters agree with paramsMILES_v9.1.txt).
    """
    params, repaired = {}, []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4:
            raise ValueError(f"MILES_params.db: cannot parse line {line!r}")
        mid = fields[0]
        if mid == "022.":
            mid = "0221"
            repaired.append("022. -> 0221")
        teff, logg, feh = (float(x) for x in fields[1:])
        params[mid] = (np.nan if teff >= 99999 else teff,
                       np.nan if logg >= 9999 else logg,
                       np.nan if feh >= 9999 else feh)
    return params, repaired


def _parse_params_txt(text):
    """paramsMILES_v9.1.txt (fixed-width) -> {miles id: (name, cluster flag, spectral type)}.

    Columns are located from the header line, so padding changes do not
    break the parse; the star name may contain blanks and ends with
    ``Cl`` for cluster members.
    """
    lines = text.splitlines()
    header = lines[0]
    start = {key: header.index(key) for key in ("MILES", "CaT", "SpT", "Teff")}
    out = {}
    for line in lines[1:]:
        chunk = line[start["MILES"]:start["MILES"] + 5].strip()
        if not re.fullmatch(r"\d{3}[\d.]", chunk):
            continue  # the unit and ruler lines
        name = line[:start["MILES"]].rstrip()
        cluster = name.endswith(" Cl")
        if cluster:
            name = name[:-3].rstrip()
        # SpT starts at the SpT column but may be indented; Teff is right-aligned
        # to end one column before Teff's header label ends.
        spt = line[start["SpT"] - 1:start["Teff"] - 3].strip()
        out["0221" if chunk == "022." else chunk] = (name, cluster, spt)
    return out


@functools.lru_cache(maxsize=1)
def _miles():
    import astropy.units as u
    from astropy.table import MaskedColumn, Table
    from specutils import Spectrum

    spectra, ids = [], []
    with _open_zip("sdss-mangadap") as zf:
        params, repaired = _parse_params_db(read_member(zf, _DIR + "MILES_params.db").decode())
        names = _parse_params_txt(read_member(zf, _DIR + "paramsMILES_v9.1.txt")
                                  .decode("latin-1"))
        members = [m for m in list_members(zf, _DIR + "MILES_res2.50_star_m*V.fits")
                   if _FILE_RE.search(m)]
        for member in members:
            mid = _FILE_RE.search(member).group(1)
            with _read_fits_bytes(read_member(zf, member)) as hdul, _quiet_fits_headers():
                header = hdul[0].header
                flux = np.asarray(hdul[0].data, dtype=float)
                wave = _header_wavelength(header, flux.size, log10=False, what=member)
                bunit = str(header.get("BUNIT", "")).strip()
                fwhm = float(header.get("FWHM", 2.5))
            if bunit:
                raise ValueError(f"{member}: unexpected BUNIT={bunit!r}; MILES flux is "
                                 "expected to be normalised")
            mask = ~np.isfinite(flux)
            spectra.append(Spectrum(
                flux=flux * u.dimensionless_unscaled, spectral_axis=wave * u.AA,
                mask=mask if mask.any() else None,
                meta={"id": f"m{mid}", "medium": "air", "instrument": "MILES (INT/IDS)",
                      "fwhm_angstrom": fwhm, "source": member,
                      # Gaussian σ of the library's own resolution, which observe()
                      # removes in quadrature from an instrument's LSF.
                      "lsf_sigma": fwhm / FWHM_PER_SIGMA * u.AA}))
            ids.append(mid)

    missing = [m for m in ids if m not in params]
    if missing:
        raise ValueError(f"MILES stars without a row in MILES_params.db: {missing}")
    teff, logg, feh = (np.array([params[m][i] for m in ids]) for i in range(3))
    name = [names.get(m, ("", False, ""))[0] for m in ids]
    spt = [names.get(m, ("", False, ""))[2] for m in ids]
    cluster = np.array([names.get(m, ("", False, ""))[1] for m in ids])
    labels = Table({
        "id": [f"m{m}" for m in ids],
        "miles_id": np.array([int(m) for m in ids]),
        "name": MaskedColumn(name, mask=[not n for n in name]),
        "spectral_type": MaskedColumn(spt, mask=[not s for s in spt]),
        "cluster_member": cluster,
        "teff": MaskedColumn(teff, mask=np.isnan(teff), unit="K",
                             description="effective temperature"),
        "logg": MaskedColumn(logg, mask=np.isnan(logg),
                             description="log10 surface gravity (cgs)"),
        "feh": MaskedColumn(feh, mask=np.isnan(feh), description="[Fe/H] (dex)"),
    })
    meta = {"distribution": "sdss-mangadap", "version": DATA_WHEELS["sdss-mangadap"]["version"],
            "omitted": ["m0970 (moved to omit/ by the DAP: short range, red-end artefact)"],
            "repaired": [f"MILES_params.db id {r}" for r in repaired],
            "n_complete_labels": int(np.sum(np.isfinite(teff) & np.isfinite(logg)
                                            & np.isfinite(feh)))}
    return tuple(spectra), labels, meta


def load_miles():
    """Load the 984 MILES stars with Teff, log g and [Fe/H].

    Wavelengths are in air, Å, built from each file's header (linear:
    ``CRVAL1 = 3540.5``, ``CDELT1 = 0.9``, ``CRPIX1 = 1``, 4300 pixels).
    Flux is normalised (dimensionless); MILES has no uncertainties, so
    spectra carry none (and no mask, since every pixel is finite).

    Labels: ``id`` (``"m0001"`` …), ``miles_id`` (int), ``name`` and
    ``spectral_type`` (from ``paramsMILES_v9.1.txt``), ``cluster_member``,
    and ``teff`` (K), ``logg`` (dex) and ``feh`` (dex) as masked columns:
    MILES marks missing values with 99999/9999. 945 stars have all three
    (944 plus m0221, whose id is misprinted ``022.`` in ``MILES_params.db``
    and is repaired here, as recorded in ``meta["repaired"]``).

    Parsed data are cached in memory for the process: the returned list
    and table are fresh copies, the `~specutils.Spectrum` objects are
    shared between calls (copy one before changing it in place).

    Returns
    -------
    dataset : `~spectok.datasets.SpectrumDataset`
        984 spectra (``meta`` has ``id``, ``medium="air"``, ``instrument``,
        ``fwhm_angstrom`` and ``source``) and their labels.

    Raises
    ------
    WheelFetchError
        If the ``sdss-mangadap`` wheel is not cached and cannot be fetched.
    ValueError
        If the files do not look as expected (no wavelength keywords,
        a flux unit, a star without parameters).

    Examples
    --------
    >>> from spectok.datasets import load_miles
    >>> ds = load_miles()  # doctest: +REMOTE_DATA
    >>> len(ds), ds.spectra[0].meta["medium"]  # doctest: +REMOTE_DATA
    (984, 'air')
    >>> int((~ds.labels["teff"].mask).sum())  # doctest: +REMOTE_DATA
    981
    """
    spectra, labels, meta = _miles()
    meta = {**meta, "shared_spectra": True}
    return SpectrumDataset(list(spectra), labels.copy(), name="miles", meta=meta)
