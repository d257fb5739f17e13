"""Catalogue encoding to disk: chunks, resume after SIGKILL, checks before any work."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import Table

import spectok
from spectok import adapter, catalogue
from spectok.adapter import SpectrumInputError, SpectrumInputWarning
from spectok.catalogue import encode_catalogue, read_spectrum
from spectok.datasets import SpectrumDataset, example_spectrum_path
from spectok.model import save_model

#: Spectra of the kill-and-resume run, and how many go into one chunk.
N_SPECTRA, CHUNK_SIZE = 24, 3

#: Builds the spectra of the kill-and-resume run (the same in every process).
SPECTRA_CODE = """
import astropy.units as u
import numpy as np

def make_spectra(n):
    spectra = []
    for k in range(n):
        rng = np.random.default_rng(k)
        wave = np.linspace(3800 + 10 * k, 7000 + 30 * k, 300 + 37 * k) * u.AA
        flux = (1 + 0.2 * np.sin(wave.value / (40 + k))) * (1 + k) * u.mJy
        flux = flux * (1 + 0.01 * rng.standard_normal(len(wave)))
        spectra.append((wave, flux, 0.02 * np.abs(flux)))
    return spectra
"""


def make_spectra(n):
    namespace = {}
    exec(SPECTRA_CODE, namespace)
    return namespace["make_spectra"](n)


@pytest.fixture
def model_path(tmp_path, tiny_model):
    return save_model(tiny_model, tmp_path / "tiny")


@pytest.fixture
def one_thread():
    """Encode on one thread, as the subprocesses do (bit-exact comparisons)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _Untouchable(list):
    """A list of sources that fails the test if anything reads its items."""

    def __iter__(self):
        raise AssertionError("a source was read before the output was checked")

    __getitem__ = __iter__


# -- SIGKILL and resume -----------------------------------------------------------------

def _start_run(tmp_path, model_path, output, pause):
    script = tmp_path / "run.py"
    script.write_text(SPECTRA_CODE + textwrap.dedent(f"""
        import time
        import torch
        from spectok.catalogue import encode_catalogue
        from spectok.model import load_model

        torch.set_num_threads(1)

        def paced():
            for spectrum in make_spectra({N_SPECTRA}):
                time.sleep({pause})
                yield spectrum

        encode_catalogue(paced(), {str(output)!r}, load_model({str(model_path)!r}),
                         chunk_size={CHUNK_SIZE})
    """))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)


def _chunks(output):
    return sorted(output.parent.glob(f"{output.name}.parts/chunk-*.h5"))


def test_sigkill_then_resume_writes_exactly_the_uninterrupted_output(tmp_path, model_path,
                                                                     one_thread):
    output = tmp_path / "resumed.h5"
    run = _start_run(tmp_path, model_path, output, pause=0.1)
    deadline = time.monotonic() + 120
    while len(_chunks(output)) < 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.poll() is None, f"the run ended before it was killed: {run.stderr.read()}"
    run.send_signal(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    run.stderr.close()
    done = _chunks(output)
    assert 2 <= len(done) < N_SPECTRA // CHUNK_SIZE and not output.exists()
    # a kill in the middle of writing the next chunk leaves a partial file: it is ignored
    (output.parent / f"{output.name}.parts" / f"chunk-{len(done):06d}.h5.partial").write_bytes(
        b"\x89HDF\r\n half a chunk")

    # resumed here, in another process than the chunks written before the kill
    model = spectok.load_model(model_path)
    resumed = encode_catalogue(iter(make_spectra(N_SPECTRA)), output, model,
                               chunk_size=CHUNK_SIZE, resume=True)
    assert resumed.resumed_chunks == len(done)

    reference = tmp_path / "reference.h5"
    result = encode_catalogue(make_spectra(N_SPECTRA), reference, model, chunk_size=CHUNK_SIZE)
    assert result.n_encoded == N_SPECTRA and result.resumed_chunks == 0
    expected, got = Table.read(reference), Table.read(output)
    assert got.colnames == expected.colnames == ["index", "id", "scale", "unit", "n_patches",
                                                 "embedding"]
    np.testing.assert_array_equal(got["index"], np.arange(N_SPECTRA))
    for name in expected.colnames:
        np.testing.assert_array_equal(got[name], expected[name])
    assert output.read_bytes() == reference.read_bytes()
    assert not (tmp_path / "resumed.h5.parts").exists()


def test_resume_does_not_read_finished_chunks_again(tmp_path, tiny_model, make_pair):
    spectra = [make_pair(100 + 10 * k, seed=k) for k in range(6)]
    output = tmp_path / "out.h5"

    def stop_after(n):
        for k, spectrum in enumerate(spectra):
            if k == n:
                raise KeyboardInterrupt  # an interruption between two chunks
            yield spectrum

    with pytest.raises(KeyboardInterrupt):
        encode_catalogue(stop_after(4), output, tiny_model, chunk_size=2)
    assert len(_chunks(output)) == 2
    prepared = []
    original = adapter.prepare_spectrum

    def spy(item, index, *args):
        if not isinstance(item, adapter.PreparedSpectrum):  # encode() sees prepared ones again
            prepared.append(index)
        return original(item, index, *args)

    with pytest.MonkeyPatch.context() as patch:
        for module in (adapter, adapter.prepare, adapter.batch):  # wherever it is looked up
            patch.setattr(module, "prepare_spectrum", spy)
        result = encode_catalogue(iter(spectra), output, tiny_model, chunk_size=2, resume=True)
    assert prepared == [4, 5] and result.resumed_chunks == 2
    reference = encode_catalogue(spectra, tmp_path / "reference.h5", tiny_model, chunk_size=2)
    assert result.n_encoded == reference.n_encoded == 6
    assert output.read_bytes() == (tmp_path / "reference.h5").read_bytes()


def test_resume_refuses_other_inputs_or_settings(tmp_path, tiny_model, make_pair):
    output = tmp_path / "out.h5"
    spectra = [make_pair(100, seed=k) for k in range(4)]
    with pytest.raises(KeyboardInterrupt):
        encode_catalogue(_interrupted(spectra, 2), output, tiny_model, chunk_size=2)
    with pytest.raises(FileExistsError, match="holds a partial run; pass resume=True"):
        encode_catalogue(spectra, output, tiny_model, chunk_size=2)
    with pytest.raises(ValueError, match="other inputs or settings .*chunk_size: 2 then, 1 now"):
        encode_catalogue(iter(spectra), output, tiny_model, chunk_size=1, resume=True)
    other = spectok.model.SpectralTokenizer(tiny_model.config)
    with pytest.raises(ValueError, match="model"):
        encode_catalogue(iter(spectra), output, other, chunk_size=2, resume=True)
    manifest = output.parent / "out.h5.parts" / "manifest.json"
    manifest.write_text("{")
    with pytest.raises(ValueError, match="unreadable manifest.json"):
        encode_catalogue(iter(spectra), output, tiny_model, chunk_size=2, resume=True)
    # overwrite discards the partial run
    result = encode_catalogue(spectra, output, tiny_model, chunk_size=2, overwrite=True)
    assert result.n_encoded == 4 and result.resumed_chunks == 0


def _interrupted(spectra, n):
    yield from spectra[:n]
    raise KeyboardInterrupt


def test_resumed_file_list_must_match(tmp_path, model_path):
    path = str(example_spectrum_path())
    copy = tmp_path / "copy.fits"
    shutil.copy(path, copy)
    broken = tmp_path / "broken.fits"
    broken.write_bytes(b"SIMPLE  = broken")
    output = tmp_path / "out.fits"
    with pytest.raises(OSError, match="broken.fits"):
        encode_catalogue([path, broken], output, str(model_path), chunk_size=1,
                         file_format="tabular-fits")
    manifest = json.loads((tmp_path / "out.fits.parts" / "manifest.json").read_text())
    assert manifest["n_sources"] == 2 and manifest["files"]
    with pytest.raises(ValueError, match="files"):
        encode_catalogue([path, copy], output, str(model_path), chunk_size=1,
                         file_format="tabular-fits", resume=True)


# -- checks before any work ---------------------------------------------------------------

def test_unwritable_output_directory_is_refused_before_reading(tmp_path, tiny_model):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        try:
            (locked / "probe").touch()
        except PermissionError:
            pass
        else:
            pytest.skip("permission bits do not stop this user (root) from writing")
        with pytest.raises(PermissionError, match=f"output directory {locked} is not writable"):
            encode_catalogue(_Untouchable([1, 2]), locked / "out.h5", tiny_model)
    finally:
        locked.chmod(0o755)


def test_missing_or_file_output_directory_is_refused_before_reading(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="output directory .*missing does not exist"):
        encode_catalogue(_Untouchable([1]), tmp_path / "missing" / "out.h5", tiny_model)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="output directory .*file is not a directory"):
        encode_catalogue(_Untouchable([1]), tmp_path / "file" / "out.h5", tiny_model)


def test_full_disk_is_refused_before_reading(tmp_path, tiny_model, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=10_000))
    with pytest.raises(OSError, match="not enough disk space for the embeddings of 1000 "
                                      "spectra: it needs about .* MB and .* has 0.0 MB free") as e:
        encode_catalogue(_Untouchable([None] * 1000), tmp_path / "out.h5", tiny_model)
    assert e.value.errno == errno.ENOSPC
    assert not (tmp_path / "out.h5.parts").exists()


def test_disk_filling_up_mid_run_says_how_to_resume(tmp_path, tiny_model, make_pair,
                                                    monkeypatch):
    spectra = [make_pair(100, seed=k) for k in range(4)]
    output = tmp_path / "out.h5"
    original, calls = catalogue.write_atomically, []

    def fill_up(path, write):
        calls.append(path)
        if len(calls) == 3:  # the manifest, chunk 0, then chunk 1
            raise OSError(errno.ENOSPC, "No space left on device")
        original(path, write)

    monkeypatch.setattr(catalogue, "write_atomically", fill_up)
    with pytest.raises(OSError, match="writing chunk 1 of .*out.h5 failed .*No space left on "
                                      "device.*run again with resume=True"):
        encode_catalogue(spectra, output, tiny_model, chunk_size=2)
    monkeypatch.undo()
    result = encode_catalogue(spectra, output, tiny_model, chunk_size=2, resume=True)
    assert result.resumed_chunks == 1 and result.n_encoded == 4


def test_existing_output_and_bad_arguments(tmp_path, tiny_model, pair):
    output = tmp_path / "out.h5"
    output.write_text("")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        encode_catalogue([pair], output, tiny_model)
    with pytest.raises(ValueError, match="cannot tell the output format of .*out.txt"):
        encode_catalogue([pair], tmp_path / "out.txt", tiny_model)
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        encode_catalogue([pair], output, tiny_model, chunk_size=0)
    # 2.7 chunks were 2, "2" was 2 and True was 1; NaN and None raised int()'s errors
    for bad in (2.7, "2", True, float("nan"), None):
        with pytest.raises(ValueError, match=r"chunk_size must be at least 1 \(an integer\), "
                                             f"got {bad!r}"):
            encode_catalogue([pair], output, tiny_model, chunk_size=bad, overwrite=True)
    for name in ("resume", "overwrite"):   # resume="no" resumed
        with pytest.raises(ValueError, match=f"{name} must be True or False, got 'no'"):
            encode_catalogue([pair], output, tiny_model, **{name: "no"})
    with pytest.raises(ValueError, match="errors must be one of"):
        encode_catalogue([pair], output, tiny_model, errors="ignore")
    with pytest.raises(SpectrumInputError, match="the list is empty"):
        encode_catalogue([], output, tiny_model)
    # a dict was encoded as its keys (each "not a spectrum", or a file name), and a set in
    # an order that differs between processes, so resume=True could mix two orders
    for unordered in ({"a": pair}, {os.fspath(output)}):
        with pytest.raises(TypeError, match="sources must be a list .* got a (dict|set)"):
            encode_catalogue(unordered, tmp_path / "unordered.h5", tiny_model)


def test_a_dataset_is_encoded_as_its_spectra(tmp_path, tiny_model, make_pair):
    spectra = [make_pair(100 + 20 * k, seed=k) for k in range(3)]
    dataset = SpectrumDataset(spectra, Table({"id": ["a", "b", "c"]}), name="toy")
    # it iterated as (spectrum, labels) pairs, each refused as "not a spectrum"
    result = encode_catalogue(dataset, tmp_path / "dataset.h5", tiny_model)
    np.testing.assert_allclose(Table.read(result.path)["embedding"],
                               spectok.encode(dataset, tiny_model).embedding, rtol=0, atol=1e-6)


# -- content ------------------------------------------------------------------------------

def test_rows_match_encode_and_bad_spectra_are_skipped(tmp_path, tiny_model, make_pair):
    good = [make_pair(100 + 20 * k, seed=k) for k in range(4)]
    wave, flux, sigma = good[0]
    spectra = good[:2] + [(wave, flux * np.nan, sigma)] + good[2:]
    with pytest.raises(SpectrumInputError, match="^spectrum 2: no valid pixels"):
        encode_catalogue(spectra, tmp_path / "raise.h5", tiny_model, chunk_size=2)
    with pytest.warns(SpectrumInputWarning,
                      match="skipped 1 of 5 spectra: spectrum 2: no valid") as caught:
        result = encode_catalogue(spectra, tmp_path / "warn.h5", tiny_model, chunk_size=2,
                                  errors="warn")
    assert [w.filename for w in caught if w.category is SpectrumInputWarning] == [__file__]
    assert result.skipped == [(2, result.skipped[0][1])] and result.n_encoded == 4
    table = Table.read(result.path)
    assert list(table["index"]) == [0, 1, 3, 4] and list(table.meta["skipped"]) == [2]
    expected = spectok.encode(good, tiny_model)
    np.testing.assert_allclose(table["embedding"], expected.embedding, rtol=0, atol=1e-6)
    assert str(table["unit"][0]) == "erg / (Angstrom s cm2)"
    silent = encode_catalogue(spectra, tmp_path / "skip.h5", tiny_model, errors="skip")
    assert silent.skipped == result.skipped


@pytest.mark.parametrize("suffix", [".h5", ".fits"])
def test_aligned_tokens_are_written_beside_the_embedding(tmp_path, tiny_model, make_pair,
                                                         suffix):
    spectra = [make_pair(150, seed=1), make_pair(300, lo=4500, hi=6000, seed=2),
               make_pair(120, lo=4100, hi=4900, seed=3)]
    bins = (np.geomspace(3800, 6200, 9) * u.AA).to(u.um)   # any spectral unit
    result = encode_catalogue(spectra, tmp_path / f"out{suffix}", tiny_model, chunk_size=2,
                              wavelength_bins=bins)
    table = Table.read(result.path)
    expected = spectok.encode(spectra, tiny_model).aligned(bins)
    c = tiny_model.config
    assert table["aligned_tokens"].shape == (3, 8, c.token_dim)
    np.testing.assert_allclose(table["aligned_tokens"], expected.filled(0.0), atol=1e-6)
    np.testing.assert_array_equal(table["aligned_valid"], ~expected.mask.any(axis=2))
    assert not table["aligned_valid"][0, -1] and table["aligned_valid"][1, -1]
    edges = table.meta["BINEDGES" if suffix == ".fits" else "binedges"]
    np.testing.assert_allclose(edges, np.geomspace(3800, 6200, 9))
    # without bins, no such columns; a resumed run must use the same bins
    plain = Table.read(encode_catalogue(spectra, tmp_path / f"plain{suffix}", tiny_model).path)
    assert "aligned_tokens" not in plain.colnames
    output = tmp_path / f"resumed{suffix}"
    with pytest.raises(KeyboardInterrupt):
        encode_catalogue(_interrupted(spectra, 2), output, tiny_model, chunk_size=2,
                         wavelength_bins=bins)
    with pytest.raises(ValueError, match="other inputs or settings .*wavelength_bins"):
        encode_catalogue(spectra, output, tiny_model, chunk_size=2, resume=True)
    with pytest.raises(ValueError, match="strictly ascending or descending"):
        encode_catalogue(spectra, tmp_path / f"bad{suffix}", tiny_model,
                         wavelength_bins=[4000, 5000, 4500] * u.AA)


def test_files_unreadable_ones_skipped_with_their_name(tmp_path, tiny_model):
    path = str(example_spectrum_path())
    broken = tmp_path / "broken.fits"
    broken.write_bytes(b"SIMPLE  =                    T" + b"\0" * 50)
    sources = [path, broken, tmp_path / "missing.fits", path]
    result = encode_catalogue(sources, tmp_path / "out.fits", tiny_model, errors="skip",
                              file_format="tabular-fits")
    assert [index for index, _ in result.skipped] == [1, 2]
    assert "broken.fits: specutils could not read it" in result.skipped[0][1]
    assert "missing.fits: no such file" in result.skipped[1][1]
    table = Table.read(result.path)
    assert list(table["file"]) == [path, path]
    assert list(table["id"]) == ["example_manga_galaxy"] * 2


def test_read_spectrum_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.fits: no such file"):
        read_spectrum(tmp_path / "nothing.fits")
    text = tmp_path / "notes.txt"
    text.write_text("not a spectrum")
    with pytest.raises(OSError, match="notes.txt: specutils could not read it"):
        read_spectrum(text)


def test_one_source_and_notes_reported_once(tmp_path, tiny_model, make_pair):
    wave, flux, _ = make_pair(200)
    single = encode_catalogue((wave, flux, 0.1 * flux), tmp_path / "one.h5", tiny_model)
    assert single.n_encoded == 1
    tiny_model.metadata = {"wavelength_range": [4500.0, 9000.0]}
    spectra = [(wave, flux)] * 5
    with pytest.warns(Warning) as caught:
        result = encode_catalogue(spectra, tmp_path / "out.h5", tiny_model, chunk_size=1)
    assert sorted(type(w.message).__name__ for w in caught) == ["NoUncertaintyWarning",
                                                               "WavelengthRangeWarning"]
    assert "5 of 5 spectra have no uncertainty" in str(caught[0].message) + str(caught[1].message)
    assert result.n_encoded == 5


def test_parquet_without_pyarrow_is_named(tmp_path, tiny_model, pair, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match="needs pyarrow"):
        encode_catalogue([pair], tmp_path / "out.parquet", tiny_model)


def test_units_of_scale_survive(tmp_path, tiny_model, pair):
    wave, flux, sigma = pair
    fnu = (wave, flux.to(u.Jy, u.spectral_density(wave)), sigma.to(u.Jy, u.spectral_density(wave)))
    result = encode_catalogue([pair, fnu], tmp_path / "out.h5", tiny_model)
    table = Table.read(result.path)
    np.testing.assert_allclose(table["scale"][0], table["scale"][1], rtol=1e-10)
