"""The real-spectra loaders, checked against the facts in shared/DATA.md.

Tests marked ``remote_data`` read the published wheels (fetched from PyPI on
first use and cached); run them with ``pytest --remote-data=any``. The
parsers are also tested offline on small synthetic inputs.
"""

import gzip
import io
import zipfile
from contextlib import contextmanager

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import InverseVariance, StdDevUncertainty
from astropy.table import Table
from specutils import Spectrum, SpectrumList

from spectok.datasets import (SpectrumDataset, load_desi_examples, load_manga_examples,
                              load_miles, load_model_atmospheres, load_spex,
                              load_ssp_templates, load_stellar_templates,
                              spectral_type_to_number, train_test_split_by)
from spectok.datasets import miles as miles_module
from spectok.datasets import spex as spex_module
from spectok.datasets import templates as templates_module

FLAM = u.erg / u.s / u.cm ** 2 / u.AA
FLAM17 = u.Unit(1e-17 * FLAM)


# -- offline: parsers --------------------------------------------------------------------

@pytest.mark.parametrize("text, number", [
    ("M0", 0.0), ("M0.0", 0.0), ("L0", 10.0), ("T9.0", 29.0), ("L4.5", 14.5),
    ("L4.0::", 14.0), ("sdM7", 7.0), ("d/sdM6", 6.0), ("esdM4:", 4.0), ("T6 pec", 26.0),
    ("L0 gamma", 10.0), ("K5", -5.0), ("Y1", 31.0),
])
def test_spectral_type_to_number(text, number):
    assert spectral_type_to_number(text) == number


@pytest.mark.parametrize("text", ["galaxy", "", "M:", "M alph", "WD", None])
def test_spectral_type_without_subtype_is_nan(text):
    assert np.isnan(spectral_type_to_number(text))


def test_spectral_type_rejects_non_strings():
    with pytest.raises(TypeError):
        spectral_type_to_number(12)


def test_header_wavelength():
    header = fits.Header({"CRVAL1": 3540.5, "CDELT1": 0.9, "CRPIX1": 1})
    wave = templates_module._header_wavelength(header, 4300)
    assert wave[0] == 3540.5 and np.isclose(wave[-1], 7409.6)
    header = fits.Header({"CTYPE1": "WAVE-LOG", "CRVAL1": 3.5601, "CDELT1": 1e-4,
                          "CD1_1": 1e-4, "CRPIX1": 1})
    wave = templates_module._header_wavelength(header, 4538)
    assert np.isclose(wave[0], 10 ** 3.5601) and np.allclose(np.diff(np.log10(wave)), 1e-4)
    header = fits.Header({"CRVAL1": 100.0, "CDELT1": 1.0, "CRPIX1": 3})
    assert templates_module._header_wavelength(header, 3)[0] == 98.0
    with pytest.raises(ValueError, match="disagree"):
        templates_module._header_wavelength(
            fits.Header({"CRVAL1": 3500.0, "CDELT1": 1.0, "CD1_1": 2.0}), 10)
    with pytest.raises(ValueError, match="CRVAL1"):
        templates_module._header_wavelength(fits.Header({"CDELT1": 1.0}), 10)
    with pytest.raises(ValueError, match="log10 axis expected"):
        templates_module._header_wavelength(
            fits.Header({"CRVAL1": 3500.0, "CDELT1": 1.0}), 10, log10=True)


def test_miles_parameter_files():
    params, repaired = miles_module._parse_params_db(
        "#MILES  Teff  log g   [Fe/H]\n#s????\n  0001  5305   4.49    -0.75\n"
        "  022.  7950   3.95     0.35\n  0407 99999   9999     9999\n")
    assert params["0001"] == (5305.0, 4.49, -0.75)
    assert params["0221"] == (7950.0, 3.95, 0.35) and repaired == ["022. -> 0221"]
    assert all(np.isnan(params["0407"]))
    table = ("Name                  MILES   CaT   SpT            Teff   log g   [Fe/H]  Refs\n"
             "                      s????   \n - - - - - -\n"
             "BD+195116B             0884   685   M6 V            3260   4.96     0.10   333\n"
             "NGC 7789 875(873) Cl   0983   154    HB             4952   2.62    -0.13   1\n")
    names = miles_module._parse_params_txt(table)
    assert names == {"0884": ("BD+195116B", False, "M6 V"),
                     "0983": ("NGC 7789 875(873)", True, "HB")}


def test_model_file_names():
    parse = spex_module._parse_model_name
    p = parse("btsettl08_t1000_g4.00_z-0.50_en0.20_SPEX-PRISM")
    assert (p["model"], p["teff"], p["logg"], p["metallicity"], p["alpha_enhancement"]) == (
        "btsettl08", 1000.0, 4.0, -0.5, 0.2)
    p = parse("burrows06_t1000_g4.50_z-0.00_cldnc_SPEX-PRISM")
    assert (p["cloud"], p["metallicity"], np.isnan(p["fsed"])) == ("nc", 0.0, True)
    p = parse("dback24_t1000_g3.49_z-0.00_f10.00_SPEX-PRISM")
    assert (p["fsed"], p["logg"], p["cloud"]) == (10.0, 3.49, "")
    with pytest.raises(ValueError, match="cannot parse"):
        parse("mystery_model")


def _hdul(data, **cards):
    hdu = fits.PrimaryHDU(np.asarray(data, dtype=np.float32))
    for key, value in cards.items():
        hdu.header[key] = value
    return fits.HDUList([hdu])


def test_spex_array_layouts():
    wave = np.linspace(0.65, 2.55, 50)
    flux = np.ones(50)
    err = np.full(50, 0.1)
    arrays = spex_module._spex_arrays
    w, f, e, flags, notes, _ = arrays(_hdul([wave, flux, err]))
    assert np.allclose(w, wave) and flags is None and notes == []
    w, f, e, flags, notes, _ = arrays(_hdul(np.array([wave, flux, err]).T))
    assert np.allclose(w, wave) and notes == ["stored transposed"]
    w, f, e, flags, notes, _ = arrays(_hdul([wave[::-1], flux, err]))
    assert np.all(np.diff(w) > 0) and "reversed" in notes[0]
    w, f, e, flags, notes, _ = arrays(_hdul([wave, flux]))
    assert e is None
    w, f, e, flags, notes, _ = arrays(_hdul(np.stack([[wave, flux, err]] * 2)))
    assert "aperture 1" in notes[0]
    for bad, reason in [(_hdul(flux), "not rows"),
                        (_hdul([wave * 1e4, flux, err]), "µm range"),
                        (_hdul([wave, flux, err], XUNITS="furlongs"), "wavelength unit"),
                        (_hdul(np.tile(wave, (5, 1))), "5 rows")]:
        with pytest.raises(spex_module._Skip, match=reason):
            arrays(bad)


def _spex_row(data_key, source_key, spex_type="L5.0", quality="OK"):
    return {"DATA_KEY": str(data_key), "SOURCE_KEY": str(source_key),
            "DATA_FILE": f"{data_key}_{source_key}.fits", "RESOLUTION": "120",
            "QUALITY_FLAG": quality, "MEDIAN_SNR": "50", "SPEX_TYPE": spex_type,
            "SPEX_GRAVITY_CLASSIFICATION": "", "PUBLISHED": "Y", "BIBCODE": "x"}


def _csv(rows):
    keys = list(rows[0])
    lines = [",".join(keys)] + [",".join(r[k] for k in keys) for r in rows]
    return ("\ufeff" + "\n".join(lines) + "\n").encode()


def _gz_fits(data, **cards):
    buffer = io.BytesIO()
    _hdul(data, **cards).writeto(buffer)
    return gzip.compress(buffer.getvalue())


def test_spex_bad_files_are_skipped_and_reported(monkeypatch):
    """A fake splat wheel: good, bad, missing and unlisted files."""
    wave = np.linspace(0.65, 2.55, 100)
    good = [wave, np.full(100, 2e-15), np.full(100, 1e-16)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("splat/db/spectral_data.csv", _csv([
            _spex_row(1, 11), _spex_row(2, 11, "T3.0", "POOR"), _spex_row(3, 12, "M7.0"),
            _spex_row(4, 13, "")]))
        zf.writestr("splat/db/source_data.csv", _csv([
            {"SOURCE_KEY": "11", "NAME": "dwarf A", "LIT_TYPE": "L4.5"},
            {"SOURCE_KEY": "12", "NAME": "dwarf B", "LIT_TYPE": "M7"}]))
        folder = spex_module._SPEX_DIR
        zf.writestr(folder + "1_11.fits.gz", _gz_fits(good, YUNITS="W m-2 um-1"))
        zf.writestr(folder + "2_11.fits.gz", _gz_fits(good))  # no unit: normalised
        zf.writestr(folder + "3_12.fits.gz", b"\x1f\x8bnot a gzip stream")
        zf.writestr(folder + "9_99.fits.gz", _gz_fits(good))  # not in the catalogue
    archive = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))

    @contextmanager
    def fake_open_zip(name):
        assert name == "splat"
        yield archive

    monkeypatch.setattr(spex_module, "_open_zip", fake_open_zip)
    spectra, labels, skipped = spex_module._spex_all.__wrapped__()
    assert list(labels["id"]) == ["1", "2"]
    reasons = {s["file"].rsplit("/", 1)[-1]: s["reason"] for s in skipped}
    assert set(reasons) == {"3_12.fits.gz", "4_13.fits.gz", "9_99.fits.gz"}
    assert "unreadable" in reasons["3_12.fits.gz"]
    assert "missing" in reasons["4_13.fits.gz"]
    assert "not listed" in reasons["9_99.fits.gz"]
    first, second = spectra
    assert first.flux.unit == FLAM and np.allclose(first.flux.value, 2e-16)  # W m-2 um-1 / 10
    assert np.allclose(first.uncertainty.array, 1e-17)
    assert second.flux.unit == u.dimensionless_unscaled and np.allclose(second.flux.value, 1)
    assert second.meta["flux_normalised"] and second.meta["flux_scale"] == pytest.approx(2e-15)
    assert list(labels["spt"]) == [15.0, 23.0]
    assert list(labels["spt_lit"]) == [14.5, 14.5]
    assert list(labels["quality_flag"]) == ["OK", "POOR"]


def test_unknown_libraries_are_rejected():
    with pytest.raises(ValueError, match="unknown"):
        load_stellar_templates(["stelib"])
    with pytest.raises(ValueError, match="unknown"):
        load_ssp_templates(["m11_stelib"])
    with pytest.raises(ValueError, match="unknown"):
        load_model_atmospheres(["drift"])
    with pytest.raises(ValueError, match="min_quality"):
        load_spex(min_quality="GOOD")


@pytest.mark.parametrize("loader, names, error, message", [
    # a non-sequence failed as "'int' object is not iterable", bytes were read as numbers,
    # [] failed in the table code (IndexError, unpacking) or gave an empty set of templates,
    # a repeat loaded its spectra twice, a mix of types failed sorting them
    (load_model_atmospheres, 5, TypeError, "models must be a name or a sequence of names"),
    (load_model_atmospheres, b"burrows06", TypeError, "models must be a name or a sequence"),
    (load_model_atmospheres, {"burrows06"}, TypeError, "models must be a name or a sequence"),
    (load_model_atmospheres, ["drift", 5], TypeError, "models must hold names .*got 5"),
    (load_model_atmospheres, [], ValueError, r"models is empty; choose from \['btsettl08'"),
    (load_model_atmospheres, ["burrows06"] * 2, ValueError,
     r"models lists \['burrows06'\] more than once"),
    (load_model_atmospheres, "drift", ValueError, r"models: unknown model sets \['drift'\]"),
    (load_stellar_templates, None, TypeError, "libraries must be a name or a sequence"),
    (load_stellar_templates, [], ValueError, "libraries is empty"),
    (load_stellar_templates, ["mileshc_v2"] * 2, ValueError, "lists .* more than once"),
    (load_ssp_templates, [], ValueError, "libraries is empty"),
    (load_ssp_templates, [["bc03_mpajhu"]], TypeError, "libraries must hold names"),
    (load_ssp_templates, ("bc03_mpajhu", "bc03_mpajhu"), ValueError, "more than once"),
])
def test_library_and_model_selections_are_checked(loader, names, error, message):
    with pytest.raises(error, match=message):
        loader(names)


@pytest.mark.parametrize("kwargs, message", [
    ({"test_size": True}, "test_size must be a float or an int, got True"),  # failed in sklearn
    ({"seed": True}, r"seed must be an integer from 0 to 2\*\*32 - 1, got True"),  # was 1
    ({"seed": None}, "seed must be an integer .*got None"),  # a new split at each call
    ({"seed": 2.7}, "seed must be an integer .*got 2.7"),  # failed in sklearn
    ({"seed": -1}, "seed must be an integer .*got -1"),  # failed in numpy
])
def test_split_refuses_a_bool_size_and_a_seed_that_is_not_an_integer(kwargs, message):
    labels = Table({"id": list("abcd"), "source": [1, 2, 3, 4]})
    with pytest.raises(ValueError, match=message):
        train_test_split_by(labels, "source", **kwargs)


@pytest.mark.parametrize("labels", [None, [1, 2, 3, 4]])
def test_split_labels_must_be_a_table(labels):
    # it said "no column 'source' to split by; available columns: []"
    with pytest.raises(TypeError, match="labels must be a Table or a dict of columns"):
        train_test_split_by(labels, "source")


# -- remote data: the published spectra -------------------------------------------------

@pytest.fixture(scope="module")
def miles():
    return load_miles()


@pytest.fixture(scope="module")
def spex():
    return load_spex()


@pytest.fixture(scope="module")
def stellar_templates():
    return load_stellar_templates()


@pytest.fixture(scope="module")
def ssp():
    return load_ssp_templates()


@pytest.fixture(scope="module")
def models():
    return load_model_atmospheres()


@pytest.fixture(scope="module")
def desi():
    return load_desi_examples()


@pytest.fixture(scope="module")
def manga():
    return load_manga_examples()


def _arms(item):
    return list(item) if isinstance(item, SpectrumList) else [item]


@pytest.mark.remote_data
@pytest.mark.parametrize("name", ["miles", "spex", "stellar_templates", "ssp", "models",
                                  "desi", "manga"])
def test_common_contract(name, request):
    ds = request.getfixturevalue(name)
    assert isinstance(ds, SpectrumDataset)
    assert len(ds.labels) == len(ds.spectra) > 0
    assert ds.labels["id"].dtype.kind == "U"
    assert len(set(ds.labels["id"])) == len(ds)
    for item, label_id in zip(ds.spectra, ds.labels["id"]):
        for spectrum in _arms(item):
            assert isinstance(spectrum, Spectrum)
            assert spectrum.meta["id"] == label_id
            assert spectrum.meta["medium"] in ("air", "vacuum")
            assert isinstance(spectrum.meta["instrument"], str)
            assert spectrum.spectral_axis.unit.physical_type == "length"
            assert np.all(np.diff(spectrum.spectral_axis.value) > 0)
            if spectrum.mask is not None:
                assert spectrum.mask.dtype == bool and spectrum.mask.shape == spectrum.flux.shape


@pytest.mark.remote_data
def test_loaders_return_fresh_containers(miles):
    again = load_miles()
    again.labels["teff"][0] = -1
    again.spectra.pop()
    assert len(load_miles()) == 984 and load_miles().labels["teff"][0] == miles.labels["teff"][0]


@pytest.mark.remote_data
def test_miles(miles):
    assert len(miles) == 984
    assert "m0970" not in miles.labels["id"]  # omitted by the DAP
    labels = miles.labels
    complete = ~(labels["teff"].mask | labels["logg"].mask | labels["feh"].mask)
    # DATA.md counts 944; star m0221 is listed as "022." in MILES_params.db and is
    # repaired here, which makes 945.
    assert complete.sum() == 945 == miles.meta["n_complete_labels"]
    assert miles.meta["repaired"] == ["MILES_params.db id 022. -> 0221"]
    row = labels[list(labels["id"]).index("m0221")]
    assert (row["name"], row["teff"], row["logg"], row["feh"]) == ("HD044691A", 7950, 3.95, 0.35)
    teff = labels["teff"][complete]
    assert 2800 <= teff.min() < 2900 and teff.max() == 36000
    assert 0 <= labels["logg"].min() and labels["logg"].max() <= 5.5
    assert -3 < labels["feh"].min() and labels["feh"].max() < 2
    assert labels["teff"].unit == u.K
    row = labels[list(labels["id"]).index("m0505")]
    assert (row["name"], row["spectral_type"], row["teff"]) == ("BD+012916", "KIIvw", 4238)
    assert labels["cluster_member"].sum() > 0
    for spectrum in miles.spectra:
        assert spectrum.meta["medium"] == "air"
        assert spectrum.flux.unit == u.dimensionless_unscaled
        assert spectrum.uncertainty is None
        wave = spectrum.spectral_axis.to_value(u.AA)
        assert wave.size == 4300 and wave[0] == 3540.5
        assert np.isclose(wave[-1], 7409.6) and np.allclose(np.diff(wave), 0.9)


@pytest.mark.remote_data
def test_spex(spex):
    labels = spex.labels
    assert 3080 <= len(spex) <= 3095
    assert len(spex) == 3089
    assert spex.meta["n_skipped"] == len(spex.meta["skipped"]) == 3
    assert all(s["reason"] for s in spex.meta["skipped"])
    assert (~labels["spex_type"].mask).sum() == 2810
    counts = {c: int((labels["spectral_class"] == c).sum()) for c in "MLT"}
    assert counts["M"] > 1000 and counts["L"] > 1000 and counts["T"] > 200
    spt = labels["spt"].compressed()
    assert spt.min() == 0 and spt.max() == 29
    assert np.any(labels["spt_lit"].compressed() % 1 == 0.5)  # half types kept
    assert set(labels["quality_flag"]) == {"OK", "POOR", "BG"}
    assert len(set(labels["source_key"])) == 2704  # several spectra per source
    units = {s.flux.unit for s in spex.spectra}
    assert units == {FLAM, u.dimensionless_unscaled}
    n_norm = sum(s.meta["flux_normalised"] for s in spex.spectra)
    assert n_norm == sum(s.flux.unit == u.dimensionless_unscaled for s in spex.spectra)
    assert 1000 < n_norm < 1200
    notes = [" ".join(s.meta["notes"]) for s in spex.spectra]
    assert sum("transposed" in n for n in notes) == 55
    assert sum("aperture 1" in n for n in notes) == 5
    no_errors = sum(s.uncertainty is None for s in spex.spectra)
    assert 0 < no_errors < 50
    for spectrum in spex.spectra:
        wave = spectrum.spectral_axis
        assert wave.unit == u.um and 0.6 < wave[0].value and wave[-1].value < 2.6
        assert spectrum.meta["medium"] == "vacuum"
        assert spectrum.uncertainty is None or isinstance(spectrum.uncertainty,
                                                          StdDevUncertainty)
        assert not spectrum.mask.all()
    # SI-unit headers were converted: f_lambda of these dwarfs is ~1e-18..1e-11 erg/s/cm2/Å.
    si = [s for s in spex.spectra if s.meta["flux_unit_header"] in ("Wm-2um-1", "W m-2 um-1")]
    assert len(si) > 300
    medians = [np.nanmedian(s.flux.value) for s in si]
    assert 1e-19 < np.min(medians) and np.max(medians) < 1e-10


@pytest.mark.remote_data
def test_spex_quality_filter(spex):
    ok = load_spex(min_quality="OK")
    assert len(ok) == 2698 and set(ok.labels["quality_flag"]) == {"OK"}
    assert ok.meta["n_excluded_by_quality"] == len(spex) - len(ok)
    poor = load_spex(min_quality="POOR")
    assert set(poor.labels["quality_flag"]) == {"OK", "POOR"}


@pytest.mark.remote_data
def test_stellar_templates(stellar_templates):
    labels = stellar_templates.labels
    counts = {lib: int((labels["library"] == lib).sum())
              for lib in ("mastarhc_v2", "mastarhc", "mileshc_v2", "miles_cluster")}
    assert counts == {"mastarhc_v2": 65, "mastarhc": 46, "mileshc_v2": 63, "miles_cluster": 42}
    assert labels.colnames == ["id", "library", "file"]
    for spectrum, library in zip(stellar_templates.spectra, labels["library"]):
        wave = spectrum.spectral_axis.to_value(u.AA)
        if library.startswith("mastar"):
            assert spectrum.meta["medium"] == "vacuum"
            assert 3620 < wave[0] < 3635 and 10300 < wave[-1] < 10360
            assert np.allclose(np.diff(np.log10(wave)), 1e-4)
            assert isinstance(spectrum.uncertainty, InverseVariance)
            assert spectrum.meta["spectral_resolution"].shape == wave.shape
        else:
            assert spectrum.meta["medium"] == "air"
            assert wave[0] == 3540.5 and np.allclose(np.diff(wave), 0.9)
        if library == "miles_cluster":
            assert spectrum.uncertainty is None


@pytest.mark.remote_data
def test_ssp_templates(ssp):
    labels = ssp.labels
    counts = {lib: int((labels["library"] == lib).sum()) for lib in set(labels["library"])}
    assert counts == {"bc03_mpajhu": 40, "m11_miles": 109, "m11_marcs": 22, "m11_elodie": 116,
                      "miuscat": 200, "mastar_ssp_v1.0": 54, "bpass": 72}
    assert not any("stelib" in i.lower() for i in labels["id"])
    assert labels["age"].count() == len(labels) and labels["metallicity"].count() == len(labels)
    assert labels["age"].min() > 0.002 and labels["age"].max() < 20
    assert -2.3 < labels["metallicity"].min() and labels["metallicity"].max() < 0.45
    marcs = labels[labels["library"] == "m11_marcs"]
    assert marcs["metallicity"].min() == -2.25  # sign from the file name, not the header
    vacuum = {"mastar_ssp_v1.0", "bpass"}
    for spectrum, library in zip(ssp.spectra, labels["library"]):
        assert spectrum.meta["medium"] == ("vacuum" if library in vacuum else "air")
        assert spectrum.flux.unit == u.dimensionless_unscaled
        assert spectrum.meta["flux_note"]


@pytest.mark.remote_data
def test_model_atmospheres(models):
    labels = models.labels
    counts = {m: int((labels["model"] == m).sum()) for m in set(labels["model"])}
    assert counts == {"btsettl08": 485, "burrows06": 252, "dback24": 1440}
    assert labels["teff"].min() >= 500 and labels["teff"].max() <= 3500
    assert 3.0 <= labels["logg"].min() and labels["logg"].max() <= 5.5
    assert set(labels["cloud"].compressed()) == {"f100", "nc"}
    assert labels["fsed"].count() == 1440 and labels["alpha_enhancement"].count() == 485
    for spectrum in models.spectra:
        assert spectrum.spectral_axis.unit == u.um
        assert spectrum.flux.unit == u.erg / u.s / u.cm ** 2 / u.um
        assert 0.6 < spectrum.spectral_axis[0].value < 0.7


@pytest.mark.remote_data
def test_desi_examples(desi):
    assert len(desi) == 2
    z = sorted(desi.labels["z"])
    assert z[0] == pytest.approx(0.0073, abs=1e-4) and z[1] == pytest.approx(0.3687, abs=1e-4)
    assert list(desi.labels["id"]) == [str(t) for t in desi.labels["targetid"]]
    assert set(desi.labels["spectype"]) == {"GALAXY"}
    for obj in desi.spectra:
        assert isinstance(obj, SpectrumList) and [a.meta["arm"] for a in obj] == ["B", "R", "Z"]
        assert obj[0].spectral_axis[0].to_value(u.AA) == 3600
        assert obj[-1].spectral_axis[-1].to_value(u.AA) == pytest.approx(9824)
        for arm in obj:
            assert arm.flux.unit == FLAM17
            assert isinstance(arm.uncertainty, InverseVariance)
            assert arm.uncertainty.unit == FLAM17 ** -2
            assert arm.meta["medium"] == "vacuum" and arm.meta["instrument"] == "DESI"
            assert np.allclose(np.diff(arm.spectral_axis.value), 0.8)
            assert arm.meta["resolution_data"].shape == (11, arm.flux.size)


@pytest.mark.remote_data
def test_manga_examples(manga):
    labels = manga.labels
    assert len(manga) == 8
    assert 0.017 <= labels["z"].min() and labels["z"].max() <= 0.051
    assert len(set(labels["plateifu"])) == 7
    assert list(labels["usable"]).count(False) == 1
    for spectrum in manga.spectra:
        wave = spectrum.spectral_axis.to_value(u.AA)
        assert wave[0] == pytest.approx(3621.6, abs=0.1)
        assert wave[-1] == pytest.approx(10353.8, abs=0.1)
        assert np.allclose(np.diff(np.log10(wave)), 1e-4)
        assert spectrum.flux.unit == FLAM17
        assert isinstance(spectrum.uncertainty, InverseVariance)
        assert spectrum.meta["medium"] == "vacuum"
        # invalid pixels are exactly the masked ones
        ivar = spectrum.uncertainty.array
        assert np.all(spectrum.mask[ivar <= 0])


def _four_spectra():
    spectra = [Spectrum(spectral_axis=np.linspace(4000, 5000, 10) * u.AA,
                        flux=np.full(10, float(i)) * u.Jy) for i in range(4)]
    return SpectrumDataset(spectra, Table({"id": list("abcd"), "z": [0.1, 0.9, 0.2, 0.8]}),
                           name="demo")


def test_a_dataset_is_indexed_as_numpy_indexes():
    ds = _four_spectra()
    # before: a list of bools picked spectra[True] and spectra[False] (b, a, a, b), and a
    # numpy mask raised "list indices must be integers or slices, not numpy.bool"
    for mask in ([True, False, False, True], np.array([True, False, False, True])):
        sub = ds[mask]
        assert list(sub.labels["id"]) == ["a", "d"]
        assert [s.flux.value[0] for s in sub.spectra] == [0.0, 3.0]
    assert list(ds[ds.labels["z"] > 0.5].labels["id"]) == ["b", "d"]
    assert list(ds[[3, 0]].labels["id"]) == ["d", "a"] and len(ds[[]]) == 0
    assert list(ds[1:3].labels["id"]) == ["b", "c"] and ds[-1][1]["id"] == "d"
    with pytest.raises(IndexError, match="demo: index 5 is out of range for 4 spectra"):
        ds[5]
    with pytest.raises(TypeError, match="not by a bool"):
        ds[True]
    with pytest.raises(IndexError, match="demo: boolean index did not match"):
        ds[[True, False]]
    # before: AttributeError "'dict' object has no attribute 'colnames'"
    with pytest.raises(TypeError, match=r"demo: labels must be an astropy Table .* got a dict"):
        SpectrumDataset(ds.spectra, {"id": list("abcd")}, name="demo")
    # before: "object of type 'Spectrum' has no len()", and a (wave, flux) pair was two spectra
    for single in (ds.spectra[0], (np.arange(3.0) * u.AA, np.ones(3) * u.Jy)):
        with pytest.raises(TypeError, match="demo: spectra must be a list of spectra, got one"):
            SpectrumDataset(single, ds.labels[:1], name="demo")
