"""The bad-input matrix: every defect of the user guide's tables, with its documented behaviour.

The tables in ``docs/user_guide/bad_spectra.csv`` and ``bad_files.csv`` are
what the documentation shows: for each defect, what spectok does, the
exception or warning, and part of its message. This module reads them and
checks every row against the code, so the two cannot drift apart: each
defect has a builder here, and a row without one (or a builder without a
row) fails.
"""

import ast
import csv
import importlib
import json
import pickle
import re
import shutil
import warnings
from pathlib import Path

import astropy.units as u
import h5py
import numpy as np
import pytest
import sklearn
from astropy.nddata import (InverseVariance, StdDevUncertainty, UnknownUncertainty,
                            VarianceUncertainty)
from safetensors.numpy import save_file
from specutils import Spectrum, SpectrumList

import spectok
from spectok.adapter import FLAM, SpectrumInputWarning, prepare_spectrum
from spectok.catalogue import read_spectrum
from spectok.datasets import example_spectrum_path, read_mmu_shard, write_mmu_shard
from spectok.model import save_model
from spectok.probes import RedshiftProbe, load_probe

DOCS = Path(__file__).parents[1] / "docs" / "user_guide"
N = 100
#: The model's (pretend) training range in these tests: the spectra below lie inside it.
TRAINED_RANGE = [4500.0, 9000.0]


def _table(name):
    with open(DOCS / name, newline="") as f:
        return {row["Defect"]: row for row in csv.DictReader(f)}


def _literal(cell):
    return cell.strip().removeprefix("``").removesuffix("``")


def _documented_class(cell):
    """The class named in a table cell: `~spectok.adapter.X`, `OSError` or ``module.X``."""
    name = cell.strip().strip("`").lstrip("~")
    if "." not in name:
        return __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__,
                                                                                  name)
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


# -- spectra ------------------------------------------------------------------------------

def _arrays(lo=5000.0, hi=6000.0, n=N):
    wave = np.linspace(lo, hi, n) * u.AA
    flux = (1 + 0.3 * np.sin(wave.value / 30)) * 1e-17 * FLAM
    return wave, flux, 0.05 * flux


def _spectrum(**kwargs):
    wave, flux, sigma = _arrays()
    arguments = {"spectral_axis": wave, "flux": flux, "uncertainty": StdDevUncertainty(sigma)}
    arguments.update(kwargs)
    return Spectrum(**arguments)


def _with(wave=None, flux=None, sigma=None):
    base = _arrays()
    return tuple(base[k] if new is None else new for k, new in enumerate((wave, flux, sigma)))


def _edit(array, index, value):
    array = array.copy()
    array[index] = value
    return array


def _scattered():
    flux = np.full(N, np.nan)
    flux[::4] = 1.0
    return _with(flux=flux * FLAM, sigma=np.full(N, 0.1) * FLAM)


def _mixed_arms():
    wave, flux, sigma = _arrays()
    red = Spectrum(spectral_axis=wave + 2000 * u.AA, flux=np.ones(N) * u.ct,
                   uncertainty=StdDevUncertainty(np.ones(N) * u.ct))
    return SpectrumList([_spectrum(), red])


def _too_long():
    n = int(spectok.conf.max_pixels) + 1
    wave = np.linspace(5000, 6000, n) * u.AA
    return wave, np.ones(n) * FLAM, np.ones(n) * FLAM


SPECTRA = {
    "All-NaN flux": lambda: _with(flux=_arrays()[1] * np.nan),
    "Infinite flux everywhere": lambda: _with(flux=_arrays()[1] * np.inf),
    "Some NaN or infinite flux values": lambda: _with(
        flux=_edit(_edit(_arrays()[1], 10, np.nan), 20, np.inf)),
    "Every pixel masked": lambda: _spectrum(mask=np.ones(N, bool)),
    "Inverse variance zero everywhere": lambda: _spectrum(
        uncertainty=InverseVariance(np.zeros(N) * FLAM**-2)),
    "Inverse variance negative everywhere": lambda: _spectrum(
        uncertainty=InverseVariance(-np.ones(N) * FLAM**-2)),
    "Variance negative everywhere": lambda: _spectrum(
        uncertainty=VarianceUncertainty(-np.ones(N) * FLAM**2)),
    "Standard deviation zero everywhere": lambda: _with(sigma=np.zeros(N) * FLAM),
    "Inverse variance of the wrong length": lambda: _with(
        sigma=InverseVariance(np.ones(N - 1) * FLAM**-2)),
    "Wavelengths of the wrong length": lambda: _with(wave=_arrays()[0][:95]),
    "Unsorted wavelengths": lambda: _with(wave=_edit(_arrays()[0], [7, 8],
                                                     _arrays()[0][[8, 7]])),
    "Duplicated wavelengths": lambda: _with(wave=_edit(_arrays()[0], 8, _arrays()[0][7])),
    "Descending wavelengths (or ascending frequency)": lambda: tuple(
        x[::-1] for x in _arrays()),
    "NaN in the spectral axis": lambda: _with(wave=_edit(_arrays()[0], 7, np.nan)),
    "Spectral axis reaching zero frequency": lambda: _with(
        wave=np.linspace(0, 1e15, N)[::-1] * u.Hz),
    "Zero or negative wavelengths": lambda: _with(wave=_arrays()[0] - 5500 * u.AA),
    "Wavelength in pixels": lambda: _with(wave=np.arange(N) * u.pix),
    "Wavelength without a unit (a bare array)": lambda: _with(wave=_arrays()[0].value),
    "Dimensionless wavelength": lambda: _with(
        wave=_arrays()[0].value * u.dimensionless_unscaled),
    "Flux without a unit (a bare array)": lambda: _arrays()[:1] + (_arrays()[1].value,),
    "Flux in magnitudes": lambda: (_arrays()[0], u.Magnitude(np.full(N, 20.0), u.ABmag)),
    "Flux in a unit that is not a flux (K)": lambda: (_arrays()[0], np.ones(N) * u.K),
    "Uncertainty in a unit that does not match the flux": lambda: _with(
        sigma=np.ones(N) * u.K),
    "Unsupported uncertainty class": lambda: _with(sigma=UnknownUncertainty(np.ones(N))),
    "A 2-D image passed as a spectrum": lambda: Spectrum(
        spectral_axis=_arrays()[0], flux=np.ones((5, N)) * FLAM),
    "A spectrum of one pixel": lambda: tuple(x[:1] for x in _arrays()),
    "Shorter than one patch (10 pixels)": lambda: tuple(x[:10] for x in _arrays()),
    "Valid pixels too scattered to fill half a patch": _scattered,
    "Zero flux everywhere": lambda: _with(flux=0 * _arrays()[1]),
    "One flux value 10¹² times the others (corrupted pixel)": lambda: _with(
        flux=_edit(_arrays()[1], 50, 1e-5 * FLAM)),
    "Fluxes near the smallest floating-point numbers (10⁻³⁰⁰)": lambda: tuple(
        x.value * 1e-283 * x.unit if k else x for k, x in enumerate(_arrays())),
    "Fluxes near the largest floating-point numbers (10³⁰⁰)": lambda: tuple(
        x.value * 1e150 * 1e167 * x.unit if k else x for k, x in enumerate(_arrays())),
    "Wavelengths outside the model's trained range": lambda: _arrays(3000, 4000),
    "No uncertainty": lambda: _arrays()[:2],
    "Spectra in different units in one list": lambda: (
        _arrays()[0].to(u.THz, u.spectral()),
        _arrays()[1].to(u.mJy, u.spectral_density(_arrays()[0])),
        _arrays()[2].to(u.mJy, u.spectral_density(_arrays()[0]))),
    "Air wavelengths below 2000 Å": lambda: _spectrum(
        spectral_axis=np.linspace(1500, 2500, N) * u.AA, meta={"medium": "air"}),
    "Arms of one object with incompatible flux units": _mixed_arms,
    "An empty SpectrumList": SpectrumList,
    "A file name instead of a spectrum": lambda: "spectrum.fits",
    "A tuple of four arrays": lambda: _arrays() + (np.ones(N),),
    "More pixels than ``spectok.conf.max_pixels``": _too_long,
}

#: For rows that are encoded: what the result must equal (the same spectrum, cleanly given).
SAME_AS = {
    "Descending wavelengths (or ascending frequency)": lambda: _arrays(),
    "Spectra in different units in one list": lambda: _arrays(),
    "Fluxes near the smallest floating-point numbers (10⁻³⁰⁰)": lambda: _arrays(),
    "Fluxes near the largest floating-point numbers (10³⁰⁰)": lambda: _arrays(),
    "One flux value 10¹² times the others (corrupted pixel)": lambda: _spectrum(
        mask=np.arange(N) == 50),
    "Some NaN or infinite flux values": lambda: _spectrum(mask=np.isin(np.arange(N), [10, 20])),
}

SPECTRUM_ROWS = _table("bad_spectra.csv")
NOT_SPECTRA = {"A file name instead of a spectrum", "A tuple of four arrays"}


def test_every_documented_defect_is_tested_and_every_test_is_documented():
    assert list(SPECTRA) == list(SPECTRUM_ROWS)
    assert list(FILES) == list(FILE_ROWS)
    assert len(SPECTRA) + len(FILES) >= 25


@pytest.fixture
def model(tiny_model):
    tiny_model.metadata = {"wavelength_range": TRAINED_RANGE}
    return tiny_model


def _expect(row):
    """(kind, class, message) of a table row: kind is 'error', 'warning' or 'encoded'."""
    if not row["Raises or warns"]:
        return "encoded", None, None
    cls = _documented_class(row["Raises or warns"])
    return ("warning" if issubclass(cls, Warning) else "error"), cls, _literal(
        row["Message contains"])


@pytest.mark.parametrize("name", list(SPECTRUM_ROWS))
def test_defect_alone(name, model, assert_same_encoding):
    kind, cls, message = _expect(SPECTRUM_ROWS[name])
    bad = SPECTRA[name]()
    if kind == "error":
        # what is not a spectrum at all is the argument, not spectrum 0 of it
        prefix = "" if name in NOT_SPECTRA else "spectrum 0: .*"
        with pytest.raises(cls, match=f"^{prefix}{re.escape(message)}"):
            spectok.encode(bad, model)
        return
    if kind == "warning":
        with pytest.warns(cls, match=re.escape(message)):
            tokens = spectok.encode(bad, model)
    else:
        tokens = spectok.encode(bad, model)  # and no warning: they are errors in the tests
    assert np.all(np.isfinite(tokens.embedding)) and np.all(np.isfinite(tokens.tokens))
    if name in SAME_AS:
        assert_same_encoding(tokens, spectok.encode(SAME_AS[name](), model))


@pytest.mark.parametrize("errors", ["raise", "warn", "skip"])
@pytest.mark.parametrize("name", list(SPECTRUM_ROWS))
def test_defect_in_a_batch_loses_nothing_else(name, errors, model, assert_same_encoding):
    """One bad spectrum between two good ones: the good ones are encoded as alone."""
    kind, cls, message = _expect(SPECTRUM_ROWS[name])
    good = [_arrays(5200, 6800, 300), _spectrum(meta={"id": "good"})]
    batch = [good[0], SPECTRA[name](), good[1]]
    if kind == "error" and errors == "raise":
        with pytest.raises(cls, match=f"^spectrum 1: .*{re.escape(message)}"):
            spectok.encode(batch, model, errors=errors)
        return
    if kind == "error" and errors == "warn":
        with pytest.warns(SpectrumInputWarning, match=f"skipped 1 of 3 spectra: spectrum 1: "
                                                      f".*{re.escape(message)}"):
            result = spectok.encode(batch, model, errors=errors)
    elif kind == "warning":
        with pytest.warns(cls, match=re.escape(message)):
            result = spectok.encode(batch, model, errors=errors)
    else:
        result = spectok.encode(batch, model, errors=errors)
    if kind == "error":
        assert result.indices.tolist() == [0, 2] and len(result.skipped) == 1
        index, text = result.skipped[0]
        assert index == 1 and text.startswith("spectrum 1: ") and message in text
    else:
        assert result.indices.tolist() == [0, 1, 2] and result.skipped == []
    for item, spectrum in zip([result[0], result[-1]], good):
        assert_same_encoding(item, spectok.encode(spectrum, model))


def test_an_empty_list_is_refused(model):
    with pytest.raises(spectok.adapter.SpectrumInputError, match="no spectra given"):
        spectok.encode([], model)


def test_length_limit_is_checked_before_any_conversion(model):
    """Too long and in a wrong unit: the length is what is reported (nothing was converted)."""
    wave, flux, _ = _arrays()
    with spectok.conf.set_temp("max_pixels", 50):
        with pytest.raises(spectok.adapter.SpectrumInputError,
                           match=r"^spectrum 0: 100 pixels is more than the limit of 50 pixels "
                                 r"per spectrum \(spectok.conf.max_pixels\)"):
            spectok.encode((np.arange(N) * u.pix, flux), model)
        arms = SpectrumList([_spectrum(), _spectrum(spectral_axis=wave + 2000 * u.AA)])
        with pytest.raises(spectok.adapter.SpectrumInputError,
                           match="200 pixels is more than the limit"):
            prepare_spectrum(arms)
        spectok.encode(tuple(x[:50] for x in _arrays()), model)


def test_default_length_limit_allows_the_longest_survey_spectra():
    assert int(spectok.conf.max_pixels) >= 200_000


# -- files ----------------------------------------------------------------------------------

def _fits_copy(tmp_path, edit):
    data = bytearray(example_spectrum_path().read_bytes())
    path = tmp_path / "spectrum.fits"
    path.write_bytes(edit(data))
    return path


def _corrupted(data):
    data[80:2880] = bytes((37 * k) % 256 for k in range(2800))  # all but the first card
    return bytes(data)


def _not_spex(tmp_path):
    path = tmp_path / "image.fits"
    from astropy.io import fits
    fits.PrimaryHDU(np.zeros((5, 5, 5, 5))).writeto(path)
    return lambda: read_spectrum(path, "spex-prism")


def _spex_like(tmp_path, edit=lambda data: data):
    """A FITS file laid out as the SpeX Prism Library's, after ``edit`` of its bytes."""
    from astropy.io import fits

    wave = np.linspace(0.7, 2.5, 200)
    hdu = fits.PrimaryHDU(np.vstack([wave, np.ones(200), np.full(200, 0.1)]))
    hdu.header.update({"INSTRUME": "SpeX", "GRAT": "LowRes15", "XUNITS": "um",
                       "YUNITS": "ergs s-1 cm-2 A-1"})
    path = tmp_path / "spex.fits"
    hdu.writeto(path)
    path.write_bytes(edit(bytearray(path.read_bytes())))
    return path


def _card(keyword, value):
    """An edit that gives the header card of ``keyword`` another keyword or value."""
    def edit(data):
        start = data.index(keyword.ljust(8).encode())
        if value is None:  # rename the keyword away
            data[start:start + 8] = b"MISSING "
        else:
            data[start + 10:start + 30] = value.rjust(20).encode()
        return bytes(data)
    return edit


def _read_spex(path):
    from specutils import Spectrum

    return lambda: Spectrum.read(path, format="spex-prism")


def _shard(tmp_path):
    path = tmp_path / "shard.hdf5"
    write_mmu_shard(path, [_spectrum()] * 3, {"object_id": ["a", "b", "c"]})
    return path


def _truncated_shard(tmp_path):
    path = _shard(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    return lambda: read_mmu_shard(path)


def _shard_with_unit(tmp_path, unit):
    path = _shard(tmp_path)
    with h5py.File(path, "a") as f:
        f["spectrum_flux"].attrs["unit"] = unit
    return lambda: read_mmu_shard(path)


def _shard_without_wavelength(tmp_path):
    path = _shard(tmp_path)
    with h5py.File(path, "a") as f:
        del f["spectrum_lambda"]
    return lambda: read_mmu_shard(path)


class _Evil:
    """Unpickling this runs code: it writes a file (the tests check that it never appears)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


def _weights(tmp_path, edit):
    description = save_model(spectok.model.SpectralTokenizer(spectok.model.CONFIGS["tiny"]),
                             tmp_path / "model")
    edit(description, description.with_suffix(".safetensors"), tmp_path / "code-ran")
    return lambda: spectok.load_model(description)


def _flip_a_bit(description, tensors, marker):
    data = bytearray(tensors.read_bytes())
    data[len(data) // 2] ^= 1
    tensors.write_bytes(bytes(data))


def _pickle_as_weights(description, tensors, marker):
    tensors.write_bytes(pickle.dumps(_Evil(marker)))


def _pickle_with_its_hash(description, tensors, marker):
    import hashlib

    _pickle_as_weights(description, tensors, marker)
    content = json.loads(description.read_text())
    content["sha256"] = hashlib.sha256(tensors.read_bytes()).hexdigest()
    description.write_text(json.dumps(content))


def _probe_file(tmp_path, tree_edit):
    path = tmp_path / "probe.safetensors"
    X = np.random.default_rng(0).normal(size=(30, 3))
    RedshiftProbe(head="ridge").fit(X, np.abs(X[:, 0])).save(path)
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        metadata, arrays = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    tree = json.loads(metadata["probe"])
    tree_edit(tree)
    save_file(arrays, str(path), metadata={**metadata, "probe": json.dumps(tree),
                                           "versions": json.dumps({
                                               "sklearn": sklearn.__version__})})
    return lambda: load_probe(path)


def _untrusted_type(tree):
    tree["class"] = "os.system"


def _private_attribute(tree):
    tree["state"]["v"]["__class__"] = {"t": "py", "v": "x"}


def _pickled_probe(tmp_path):
    path = tmp_path / "probe.safetensors"
    path.write_bytes(pickle.dumps(_Evil(tmp_path / "code-ran")))
    return lambda: load_probe(path)


FILES = {
    "Corrupted FITS file": lambda tmp: lambda: read_spectrum(_fits_copy(tmp, _corrupted)),
    "Truncated FITS file": lambda tmp: lambda: read_spectrum(_fits_copy(
        tmp, lambda data: bytes(data[:len(data) // 3]))),
    "Missing file": lambda tmp: lambda: read_spectrum(tmp / "missing.fits"),
    "Not a SpeX file read as ``spex-prism``": _not_spex,
    "A FITS header claiming 10¹¹ axes": lambda tmp: lambda: read_spectrum(
        _spex_like(tmp, _card("NAXIS", "99999999999"))),
    "A FITS table header claiming 10¹⁰ columns": lambda tmp: lambda: read_spectrum(
        _fits_copy(tmp, _card("TFIELDS", "12689923599"))),
    "A FITS header without BITPIX read as ``spex-prism``": lambda tmp: _read_spex(
        _spex_like(tmp, _card("BITPIX", None))),
    "Truncated HDF5 shard": _truncated_shard,
    "HDF5 shard without a wavelength column": _shard_without_wavelength,
    "HDF5 shard whose flux unit is not a unit": lambda tmp: _shard_with_unit(tmp, "banana"),
    "HDF5 shard whose flux unit is a magnitude": lambda tmp: _shard_with_unit(tmp, "mag(AB)"),
    "Tampered weights file": lambda tmp: _weights(tmp, _flip_a_bit),
    "A pickle given as model weights": lambda tmp: _weights(tmp, _pickle_as_weights),
    "A pickle given as weights, with its hash written into the description": lambda tmp: _weights(
        tmp, _pickle_with_its_hash),
    "A pickle given as a probe file": _pickled_probe,
    "Probe file naming a type that is not trusted": lambda tmp: _probe_file(tmp, _untrusted_type),
    "Probe file setting a private attribute": lambda tmp: _probe_file(tmp, _private_attribute),
}

FILE_ROWS = _table("bad_files.csv")


@pytest.mark.parametrize("name", list(FILE_ROWS))
def test_bad_file(name, tmp_path):
    row = FILE_ROWS[name]
    read = FILES[name](tmp_path)
    with pytest.raises(_documented_class(row["Raises"]),
                       match=re.escape(_literal(row["Message contains"]))) as caught:
        read()
    if "safetensors" not in row["Raises"]:  # safetensors' own error does not name the file
        names = [str(tmp_path)] + [path.name for path in tmp_path.rglob("*")]
        assert any(name in str(caught.value) for name in names), caught.value
    assert not (tmp_path / "code-ran").exists()


def test_a_spex_like_file_reads(tmp_path):
    """The base of the corrupted SpeX files above is itself readable."""
    assert _read_spex(_spex_like(tmp_path))().flux.unit == FLAM


@pytest.mark.parametrize("value", ["'abc'", "abc", "", "-1", "1e30", "T", "99999999999"])
def test_any_header_value_of_a_spex_file_gives_a_documented_error(tmp_path, value):
    """Found by fuzzing: astropy raised KeyError and TypeError through the reader."""
    path = _spex_like(tmp_path)
    base = path.read_bytes()
    for start in range(0, 2880, 80):
        if base[start + 8:start + 10] != b"= ":
            continue
        data = bytearray(base)
        data[start + 10:start + 30] = value.rjust(20).encode()
        path.write_bytes(bytes(data))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # astropy's remarks on the broken header
                _read_spex(path)()
        except (ValueError, OSError) as error:
            assert "spex.fits" in str(error)


@pytest.mark.parametrize("column", ["spectrum_flux", "spectrum_ivar"])
@pytest.mark.parametrize("kind", ["scalar", "group", "one value per row", "text"])
def test_shard_columns_of_the_wrong_kind_are_named(tmp_path, column, kind):
    """Found by fuzzing: such columns gave IndexError or AttributeError from inside the reader."""
    path = _shard(tmp_path)
    with h5py.File(path, "a") as f:
        shape = f[column].shape
        del f[column]
        if kind == "scalar":
            f[column] = 1.0
        elif kind == "group":
            f.create_group(column)
        elif kind == "one value per row":
            f[column] = np.ones(shape[0])
        else:
            f[column] = np.full(shape, b"1.0")
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: .*'{column}'"):
        read_mmu_shard(path)


# -- long runs: checked before any work -----------------------------------------------------

def test_training_refuses_a_full_disk_before_any_work(tmp_path, monkeypatch):
    from spectok.training import load_config, train

    config = tmp_path / "run.toml"
    config.write_text(f"""
model = "tiny"
output_dir = "{tmp_path / 'run'}"
steps = 2
[[sources]]
name = "a-source-that-would-fail-later"
""")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    with pytest.raises(OSError, match="not enough disk space for checkpoints and the trained "
                                      "model: it needs about .* MB"):
        train(load_config(config), progress=False)


# -- untrusted files: nothing in spectok unpickles -----------------------------------------

def _calls(tree, names):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and f"{owner.id}.{node.func.attr}" in names:
                yield node


def test_nothing_in_spectok_unpickles():
    """torch.load only with weights_only=True; no pickle, joblib or np.load(allow_pickle=True)."""
    sources = sorted((Path(spectok.__file__).parent).rglob("*.py"))
    loads = []
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        for call in _calls(tree, {"torch.load", "serialization.load"}):
            keywords = {k.arg: k.value for k in call.keywords}
            safe = keywords.get("weights_only")
            assert isinstance(safe, ast.Constant) and safe.value is True, \
                f"{path}:{call.lineno}: torch.load without weights_only=True"
            loads.append(path.name)
        assert not list(_calls(tree, {"pickle.load", "pickle.loads", "joblib.load",
                                      "dill.load", "cloudpickle.load"})), path
        for call in _calls(tree, {"np.load", "numpy.load"}):
            pickles = {k.arg: k.value for k in call.keywords}.get("allow_pickle")
            assert not (isinstance(pickles, ast.Constant) and pickles.value), \
                f"{path}:{call.lineno}: np.load with allow_pickle=True"
    # training checkpoints (resuming, exporting); nothing else loads with torch
    assert loads == ["checkpoints.py", "checkpoints.py"]
