"""The SpeX Prism Library and model atmospheres on its grid, from the ``splat`` wheel.

The SpeX Prism Library (Burgasser 2014) holds ~3090 low-resolution
(R≈75–250) near-infrared spectra, 0.64–2.56 µm, mostly of M, L and T dwarfs,
taken with the IRTF SpeX prism and reduced with Spextool. ``splat`` ships
them as gzipped FITS images whose rows are wavelength (µm), flux and
(usually) error, sometimes a fourth row of Spextool pixel flags; a few are
stored transposed or as a 3-D stack of apertures. Spectral types, quality
flags and source identifiers come from ``splat/db/spectral_data.csv``
joined to ``splat/db/source_data.csv`` on ``SOURCE_KEY``. Several spectra
share a source: split train/test by ``source_key``
(`~spectok.datasets.train_test_split_by`).
"""

import csv
import functools
import gzip
import io
import re

import numpy as np

from .._checks import check_names
from .dataset import SpectrumDataset
from .fetch import (DATA_WHEELS, _open_zip, _quiet_fits_headers, _read_fits_bytes, list_members,
                    read_member)

__all__ = ["load_spex", "load_model_atmospheres", "spectral_type_to_number"]

_SPEX_DIR = "splat/resources/Spectra/Public/SPEX-PRISM/"
_MODEL_DIR = "splat/resources/SpectralModels/"
_QUALITY_ORDER = ("OK", "POOR", "BG")

_CLASS_OFFSET = {"O": -60, "B": -50, "A": -40, "F": -30, "G": -20, "K": -10,
                 "M": 0, "L": 10, "T": 20, "Y": 30}
_TYPE_RE = re.compile(
    r"^\s*(?P<prefix>(?:[a-z]+/)?[a-z]*)\s*(?P<cls>[OBAFGKMLTY])\s*(?P<num>\d+(?:\.\d+)?)?")

_MEDIUM_NOTE = ("Spextool calibrates SpeX wavelengths in vacuum; at R~75-250 the air/vacuum "
                "difference (<0.15 pixel) is immaterial")


def spectral_type_to_number(spectral_type):
    """Convert a spectral type string to a number: M0 = 0, L0 = 10, T0 = 20.

    Half types are kept (``"L4.5"`` → 14.5); prefixes such as ``sd``,
    ``d/sd`` or ``esd`` and suffixes (``":"``, ``"pec"``, ``"beta"``,
    luminosity classes) are ignored. Earlier classes continue downwards
    (K0 = -10, G0 = -20, …) and Y0 = 30.

    Parameters
    ----------
    spectral_type : str or None
        A type such as ``"M8.0"``, ``"L4.5:"``, ``"sdM7"`` or ``"T6 pec"``.

    Returns
    -------
    number : float
        The numeric type, or NaN when the string has no class letter
        followed by a subtype number (e.g. ``"galaxy"``, ``"M:"``, ``""``).

    Raises
    ------
    TypeError
        If ``spectral_type`` is neither a string nor None.

    Examples
    --------
    >>> from spectok.datasets import spectral_type_to_number
    >>> spectral_type_to_number("M0"), spectral_type_to_number("L4.5")
    (0.0, 14.5)
    >>> spectral_type_to_number("T9.0"), spectral_type_to_number("sdM7")
    (29.0, 7.0)
    >>> spectral_type_to_number("galaxy")
    nan
    """
    cls, number, _, _ = _parse_type(spectral_type)
    return number


def _parse_type(spectral_type):
    """(class letter or '', numeric type or nan, prefix, uncertain ':') for a type string."""
    if spectral_type is None or np.ma.is_masked(spectral_type):
        return "", np.nan, "", False
    if not isinstance(spectral_type, (str, np.str_)):
        raise TypeError(f"spectral type must be a string, got {type(spectral_type).__name__}")
    match = _TYPE_RE.match(spectral_type)
    if not match:
        return "", np.nan, "", False
    cls, num = match.group("cls"), match.group("num")
    number = _CLASS_OFFSET[cls] + float(num) if num is not None else np.nan
    return cls, float(number), match.group("prefix"), ":" in spectral_type


def _read_csv(zf, member):
    text = read_member(zf, member).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


class _Skip(Exception):
    """A file that cannot be turned into a spectrum; the message is the reason."""


_FLUX_UNITS = {  # YUNITS with blanks removed, lower case -> astropy unit string
    "ergss-1cm-2a-1": "erg s-1 cm-2 Angstrom-1",
    "ergs-1cm-2a-1": "erg s-1 cm-2 Angstrom-1",
    "wm-2um-1": "W m-2 um-1",
}
_WAVE_UNITS = {"": "um", "um": "um", "micron": "um", "microns": "um"}


@functools.lru_cache(maxsize=None)
def _flux_conversion(unit_string):
    """(factor, unit): multiply flux in ``unit_string`` by factor to get erg/s/cm2/Å."""
    import astropy.units as u

    target = u.Unit("erg s-1 cm-2 Angstrom-1")
    return u.Unit(unit_string).to(target), target


def _spex_arrays(hdul):
    """(wave µm, flux, error or None, flags or None, notes, header units) from a SpeX file."""
    try:
        with _quiet_fits_headers():
            header = hdul[0].header
            data = hdul[0].data
            xunits = header.get("XUNITS")
            yunits = header.get("YUNITS")
        data = None if data is None else np.asarray(data, dtype=float)
    except Exception as error:  # noqa: BLE001 - astropy raises many kinds on a corrupt file
        raise _Skip(f"corrupt FITS file ({type(error).__name__}: {error})") from None
    if data is None:
        raise _Skip("primary HDU has no data")
    notes = []
    if data.ndim == 3:
        notes.append(f"3-D array {data.shape}: aperture 1 (plane 0) used, as splat does")
        data = data[0]
    if data.ndim != 2 or min(data.shape) < 2:
        raise _Skip(f"data shape {data.shape} is not rows of wavelength/flux[/error]")
    if data.shape[0] > data.shape[1]:
        notes.append("stored transposed")
        data = data.T
    if data.shape[0] > 4:
        raise _Skip(f"{data.shape[0]} rows; expected 2 to 4 (wave, flux, error, flags)")
    wave, flux = data[0], data[1]
    error = data[2] if data.shape[0] >= 3 else None
    flags = data[3] if data.shape[0] >= 4 else None
    xkey = str(xunits or "").strip().lower()
    if xkey not in _WAVE_UNITS:
        raise _Skip(f"unknown wavelength unit XUNITS={xunits!r}")
    if not np.all(np.isfinite(wave)):
        raise _Skip("non-finite wavelengths")
    step = np.diff(wave)
    if np.all(step < 0):
        notes.append("wavelengths descending: reversed")
        order = slice(None, None, -1)
        wave, flux = wave[order], flux[order]
        error = error[order] if error is not None else None
        flags = flags[order] if flags is not None else None
    elif not np.all(step > 0):
        raise _Skip("wavelengths not strictly monotonic")
    if wave[0] < 0.3 or wave[-1] > 6.0:
        raise _Skip(f"wavelengths {wave[0]:.3g}-{wave[-1]:.3g} not in the SpeX µm range")
    return wave, flux, error, flags, notes, (xunits, yunits)


def _spex_spectrum(hdul, member, row):
    """Build the Spectrum for one SpeX file, with units resolved as documented."""
    import astropy.units as u
    from astropy.nddata import StdDevUncertainty
    from specutils import Spectrum

    wave, flux, error, flags, notes, (xunits, yunits) = _spex_arrays(hdul)
    mask = ~np.isfinite(flux)
    if error is not None:
        good_error = np.isfinite(error) & (error > 0)
        if not good_error.any():
            notes.append("error row has no positive finite value: dropped")
            error = None
        else:
            mask |= ~good_error
    if flags is not None:
        mask |= flags != 0
    if mask.all():
        raise _Skip("no valid pixels")

    ykey = re.sub(r"\s+", "", str(yunits or "")).lower()
    meta = {"flux_unit_header": None if yunits is None else str(yunits).strip()}
    if ykey in _FLUX_UNITS:
        factor, unit = _flux_conversion(_FLUX_UNITS[ykey])
        flux = flux * factor
        error = error * factor if error is not None else None
        meta["flux_normalised"] = False
    elif ykey == "":
        window = (wave > 1.2) & (wave < 1.3) & ~mask
        values = flux[window] if window.any() else flux[~mask]
        scale = float(np.median(values))
        if not np.isfinite(scale) or scale <= 0:
            raise _Skip("flux unit unknown and no positive median to normalise by")
        flux, unit = flux / scale, u.dimensionless_unscaled
        error = error / scale if error is not None else None
        meta["flux_normalised"] = True
        meta["flux_scale"] = scale
        notes.append("no flux unit in header: flux divided by its median over 1.2-1.3 µm")
    else:
        raise _Skip(f"unknown flux unit YUNITS={yunits!r}")

    meta.update({
        "id": row["id"], "medium": "vacuum", "medium_note": _MEDIUM_NOTE,
        "instrument": "IRTF/SpeX prism", "source": member,
        "resolution": row["resolution"], "notes": notes,
        "has_uncertainty": error is not None,
    })
    return Spectrum(flux=flux * unit, spectral_axis=wave * u.um,
                    uncertainty=StdDevUncertainty(error) if error is not None else None,
                    mask=mask, meta=meta)


def _spex_label_rows(spectral, sources):
    """One label dict per row of spectral_data.csv, joined to source_data.csv."""
    by_source = {r["SOURCE_KEY"]: r for r in sources}
    rows = []
    for r in spectral:
        src = by_source.get(r["SOURCE_KEY"], {})
        spex_type = r["SPEX_TYPE"].strip()
        cls, number, prefix, uncertain = _parse_type(spex_type)
        lit_type = src.get("LIT_TYPE", "").strip()
        rows.append({
            "id": r["DATA_KEY"],
            "data_key": int(r["DATA_KEY"]),
            "source_key": int(r["SOURCE_KEY"]),
            "data_file": r["DATA_FILE"],
            "name": src.get("NAME", "").strip(),
            "designation": src.get("DESIGNATION", "").strip(),
            "spex_type": spex_type,
            "spt": number,
            "spectral_class": cls if cls in ("M", "L", "T") else "",
            "type_uncertain": uncertain,
            "type_prefix": prefix,
            "lit_type": lit_type,
            "spt_lit": spectral_type_to_number(lit_type),
            "opt_type": src.get("OPT_TYPE", "").strip(),
            "nir_type": src.get("NIR_TYPE", "").strip(),
            "object_type": src.get("OBJECT_TYPE", "").strip(),
            "gravity_class": r["SPEX_GRAVITY_CLASSIFICATION"].strip(),
            "gravity_class_nir": src.get("GRAVITY_CLASS_NIR", "").strip(),
            "gravity_class_optical": src.get("GRAVITY_CLASS_OPTICAL", "").strip(),
            "metallicity_class": src.get("METALLICITY_CLASS", "").strip(),
            "luminosity_class": src.get("LUMINOSITY_CLASS", "").strip(),
            "binary": src.get("BINARY", "").strip() == "Y",
            "cluster": src.get("CLUSTER", "").strip(),
            "quality_flag": r["QUALITY_FLAG"].strip(),
            "median_snr": float(r["MEDIAN_SNR"]) if r["MEDIAN_SNR"].strip() else np.nan,
            "resolution": float(r["RESOLUTION"]) if r["RESOLUTION"].strip() else np.nan,
            "published": r["PUBLISHED"].strip() == "Y",
            "bibcode": r["BIBCODE"].strip(),
            "in_source_table": bool(src),
        })
    return rows


_SPEX_DESCRIPTIONS = {
    "id": "DATA_KEY as a string",
    "source_key": "splat SOURCE_KEY: the astronomical source (group key for splits)",
    "spex_type": "SpeX spectral type (SPEX_TYPE), masked where none",
    "spt": "numeric SpeX type: M0=0, L0=10, T0=20 (half types kept)",
    "spectral_class": "M, L or T from the SpeX type; masked for other or no types",
    "type_uncertain": "SpeX type carries ':' (uncertain)",
    "type_prefix": "metallicity prefix of the SpeX type (sd, d/sd, ...)",
    "spt_lit": "numeric literature type (LIT_TYPE), same scale as spt",
    "gravity_class": "SpeX gravity classification (FLD-G, INT-G, VL-G)",
    "quality_flag": "splat QUALITY_FLAG: OK, POOR or BG",
    "in_source_table": "SOURCE_KEY found in source_data.csv",
}


def _labels_table(rows):
    from astropy.table import MaskedColumn, Table

    table = Table(rows=[[r[k] for k in rows[0]] for r in rows], names=list(rows[0]))
    for name in table.colnames:
        col = table[name]
        if col.dtype.kind in "U" and name != "id":
            table[name] = MaskedColumn(col, mask=(col == ""))
        elif col.dtype.kind == "f":
            table[name] = MaskedColumn(col, mask=np.isnan(col))
        if name in _SPEX_DESCRIPTIONS:
            table[name].description = _SPEX_DESCRIPTIONS[name]
    return table


@functools.lru_cache(maxsize=1)
def _spex_all():
    with _open_zip("splat") as zf:
        spectral = _read_csv(zf, "splat/db/spectral_data.csv")
        sources = _read_csv(zf, "splat/db/source_data.csv")
        rows = _spex_label_rows(spectral, sources)
        listed = {r["data_file"] + ".gz" for r in rows}
        present = {m[len(_SPEX_DIR):] for m in list_members(zf, _SPEX_DIR + "*.fits.gz")}
        skipped = [{"file": _SPEX_DIR + name, "reason": "not listed in splat/db/spectral_data.csv"}
                   for name in sorted(present - listed)]
        spectra, kept = [], []
        for row in rows:
            member = _SPEX_DIR + row["data_file"] + ".gz"
            if row["data_file"] + ".gz" not in present:
                skipped.append({"file": member, "reason": "listed but missing from the wheel"})
                continue
            try:
                raw = gzip.decompress(zf.read(member))
                with _read_fits_bytes(raw) as hdul:
                    spectrum = _spex_spectrum(hdul, member, row)
            except _Skip as exc:
                skipped.append({"file": member, "reason": str(exc)})
                continue
            except (OSError, ValueError, EOFError, gzip.BadGzipFile) as exc:
                skipped.append({"file": member, "reason": f"unreadable: {exc}"})
                continue
            spectra.append(spectrum)
            kept.append(row)
    labels = _labels_table(kept)
    return tuple(spectra), labels, tuple(skipped)


def load_spex(min_quality=None):
    """Load the SpeX Prism Library spectra with spectral types.

    Every file listed in ``splat/db/spectral_data.csv`` is read from the
    ``splat`` wheel. Each becomes a `~specutils.Spectrum` with wavelengths
    in µm (vacuum), a `~astropy.nddata.StdDevUncertainty` where the file has
    an error row, and a mask of non-finite flux, non-positive or non-finite
    errors and non-zero Spextool flags (fourth row, where present).

    Flux units: files whose header says ``ergs s-1 cm-2 A-1`` or
    ``W m-2 um-1`` are returned in erg s⁻¹ cm⁻² Å⁻¹ (the two were checked
    against each other on sources observed in both: ratio ≈ 10, as the
    units imply). Files with no unit (about a third: some normalised, some
    absolute) are divided by their median flux over 1.2–1.3 µm and returned
    dimensionless; ``meta["flux_normalised"]``, ``meta["flux_scale"]`` and
    ``meta["flux_unit_header"]`` record what was done, and
    ``meta["notes"]`` any reshaping (transposed storage, 3-D aperture
    stacks, descending wavelengths).

    Files that cannot be used (and the three files in the folder that the
    catalogue does not list, one a duplicate named ``... copy.fits.gz``)
    are not loaded; each is recorded with its reason in
    ``dataset.meta["skipped"]``.

    Parsed data are cached in memory for the process: the returned list
    and table are fresh copies, the `~specutils.Spectrum` objects are
    shared between calls (copy one before changing it in place).

    Parameters
    ----------
    min_quality : {None, "OK", "POOR", "BG"}, optional
        Keep spectra whose splat ``QUALITY_FLAG`` is at least this good,
        in the order OK > POOR > BG. `None` (default) keeps all.

    Returns
    -------
    dataset : `~spectok.datasets.SpectrumDataset`
        Labels: ``id`` (``DATA_KEY`` as a string), ``data_key``,
        ``source_key`` (use it to split), ``data_file``, ``name``,
        ``designation``, ``spex_type``, ``spt`` (numeric: M0 = 0, L0 = 10,
        T0 = 20), ``spectral_class`` (M, L or T; masked otherwise),
        ``type_uncertain``, ``type_prefix``, ``lit_type``, ``spt_lit``,
        ``opt_type``, ``nir_type``, ``object_type``, ``gravity_class``,
        ``gravity_class_nir``, ``gravity_class_optical``,
        ``metallicity_class``, ``luminosity_class``, ``binary``,
        ``cluster``, ``quality_flag``, ``median_snr``, ``resolution``,
        ``published``, ``bibcode``, ``in_source_table``. Text columns are
        masked where empty.

    Raises
    ------
    ValueError
        If ``min_quality`` is not one of the flags.
    WheelFetchError
        If the ``splat`` wheel is not cached and cannot be fetched.

    Examples
    --------
    >>> from spectok.datasets import load_spex
    >>> ds = load_spex()  # doctest: +REMOTE_DATA
    >>> sorted(set(ds.labels["spectral_class"].compressed().tolist()))  # doctest: +REMOTE_DATA
    ['L', 'M', 'T']
    >>> ds.spectra[0].spectral_axis.unit  # doctest: +REMOTE_DATA
    Unit("um")
    """
    if min_quality is not None and min_quality not in _QUALITY_ORDER:
        raise ValueError(f"min_quality must be None or one of {_QUALITY_ORDER}, "
                         f"got {min_quality!r}")
    spectra, labels, skipped = _spex_all()
    meta = {"distribution": "splat", "version": DATA_WHEELS["splat"]["version"],
            "skipped": [dict(s) for s in skipped], "n_skipped": len(skipped),
            "min_quality": min_quality, "shared_spectra": True}
    if min_quality is None:
        return SpectrumDataset(list(spectra), labels.copy(), name="spex", meta=meta)
    allowed = _QUALITY_ORDER[:_QUALITY_ORDER.index(min_quality) + 1]
    keep = np.isin(labels["quality_flag"].filled(""), allowed)
    meta["n_excluded_by_quality"] = int((~keep).sum())
    return SpectrumDataset([s for s, k in zip(spectra, keep) if k], labels[keep].copy(),
                           name="spex", meta=meta)


# -- model atmospheres ------------------------------------------------------------------

_MODEL_SETS = {
    "btsettl08": "BT-Settl 2008 (Allard et al. 2012)",
    "burrows06": "Burrows et al. (2006)",
    "dback24": "Sonora Diamondback (Morley et al. 2024)",
}
_MODEL_RE = re.compile(
    r"^(?P<model>[a-z0-9]+)_t(?P<teff>[\d.]+)_g(?P<logg>[-\d.]+)_z(?P<z>[-+]?[\d.]+)"
    r"(?:_en(?P<en>[-+]?[\d.]+))?(?:_cld(?P<cld>\w+?))?(?:_f(?P<fsed>[\d.]+))?_SPEX-PRISM$")


def _parse_model_name(stem):
    match = _MODEL_RE.match(stem)
    if not match:
        raise ValueError(f"cannot parse model parameters from {stem!r}")
    g = match.groupdict()
    return {"model": g["model"], "teff": float(g["teff"]), "logg": float(g["logg"]),
            "metallicity": float(g["z"]) + 0.0,  # -0.00 -> 0.0
            "alpha_enhancement": float(g["en"]) + 0.0 if g["en"] is not None else np.nan,
            "cloud": g["cld"] or "",
            "fsed": float(g["fsed"]) if g["fsed"] is not None else np.nan}


def _read_model_text(raw, member):
    """Two whitespace-separated columns, with an optional header line."""
    text = gzip.decompress(raw).decode("ascii")
    first, _, rest = text.partition("\n")
    try:
        [float(x) for x in first.split()]
    except ValueError:
        text = rest
    values = np.array(text.split(), dtype=float)
    if values.size % 2:
        raise ValueError(f"{member}: expected two columns")
    return values.reshape(-1, 2).T


@functools.lru_cache(maxsize=None)
def _model_atmospheres(models):
    import astropy.units as u
    from astropy.table import MaskedColumn, Table
    from specutils import Spectrum

    unit = u.erg / u.s / u.cm ** 2 / u.um
    spectra, rows = [], []
    with _open_zip("splat") as zf:
        for model in models:
            members = list_members(zf, f"{_MODEL_DIR}{model}/SPEX-PRISM/*_SPEX-PRISM.txt.gz")
            if not members:
                raise OSError(f"no model files for {model} in the splat wheel")
            for member in members:
                stem = member.rsplit("/", 1)[-1][:-len(".txt.gz")]
                params = _parse_model_name(stem)
                wave, flux = _read_model_text(zf.read(member), member)
                mask = ~np.isfinite(flux) | (flux <= 0)
                spectra.append(Spectrum(
                    flux=flux * unit, spectral_axis=wave * u.um,
                    mask=mask if mask.any() else None,
                    meta={"id": stem[:-len("_SPEX-PRISM")], "medium": "vacuum",
                          "instrument": "IRTF/SpeX prism (model on its grid)",
                          "model": _MODEL_SETS[model], "source": member,
                          "flux_note": "surface flux density as distributed by splat"}))
                rows.append({"id": stem[:-len("_SPEX-PRISM")], **params})
    labels = Table(rows=[[r[k] for k in rows[0]] for r in rows], names=list(rows[0]))
    labels["teff"].unit = u.K
    for name in ("alpha_enhancement", "fsed"):
        labels[name] = MaskedColumn(labels[name], mask=np.isnan(labels[name]))
    labels["cloud"] = MaskedColumn(labels["cloud"], mask=labels["cloud"] == "")
    labels["metallicity"].description = "[M/H] (dex)"
    labels["logg"].description = "log10 surface gravity (cgs)"
    return tuple(spectra), labels


def load_model_atmospheres(models=tuple(_MODEL_SETS)):
    """Load the brown-dwarf model atmospheres that splat resamples to the SpeX prism grid.

    Model sets: ``btsettl08`` (BT-Settl, 485 spectra), ``burrows06``
    (Burrows et al. 2006, 252) and ``dback24`` (Sonora Diamondback, 1440).
    Each file holds wavelength (µm) and surface flux density, returned in
    erg s⁻¹ cm⁻² µm⁻¹ (splat's unit for its models). Parameters are parsed
    from the file names, e.g. ``btsettl08_t1000_g4.00_z-0.50_en0.20``,
    ``burrows06_t1000_g4.50_z-0.00_cldnc``, ``dback24_t1000_g3.49_z-0.00_f2.00``.
    Wavelengths follow the SpeX grid (vacuum). Non-positive fluxes are masked.

    Parsed data are cached in memory for the process: the returned list
    and table are fresh copies, the `~specutils.Spectrum` objects are
    shared between calls.

    Parameters
    ----------
    models : str or sequence of str, optional
        Model sets to load, each once. Default: all three.

    Returns
    -------
    dataset : `~spectok.datasets.SpectrumDataset`
        Labels ``id``, ``model``, ``teff`` (K), ``logg``, ``metallicity``
        ([M/H]), ``alpha_enhancement`` (BT-Settl ``en``), ``cloud``
        (Burrows: ``f100`` or ``nc``) and ``fsed`` (Diamondback), masked
        where a model set has no such parameter.

    Raises
    ------
    TypeError
        If ``models`` is not a name or a sequence of names (bytes, a set or
        a mapping is refused too).
    ValueError
        If ``models`` is empty, names an unknown model set or one twice, or a
        file name cannot be parsed.
    WheelFetchError
        If the ``splat`` wheel is not cached and cannot be fetched.

    Examples
    --------
    >>> from spectok.datasets import load_model_atmospheres
    >>> ds = load_model_atmospheres(["burrows06"])  # doctest: +REMOTE_DATA
    >>> len(ds), sorted(set(ds.labels["cloud"].tolist()))  # doctest: +REMOTE_DATA
    (252, ['f100', 'nc'])
    """
    models = check_names(models, _MODEL_SETS, "models", "model sets")
    spectra, labels = _model_atmospheres(models)
    return SpectrumDataset(list(spectra), labels.copy(), name="model_atmospheres",
                           meta={"distribution": "splat",
                                 "version": DATA_WHEELS["splat"]["version"],
                                 "models": list(models), "shared_spectra": True})
