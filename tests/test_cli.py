"""The ``spectok`` command line: info, encode (FITS, HDF5, Parquet) and train."""

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.table import Table

from spectok.adapter import SpectrumInputWarning
from spectok.cli import main
from spectok.datasets import example_spectrum_path
from spectok.model import CONFIGS, SpectralTokenizer, save_model


@pytest.fixture
def tiny_model_path(tmp_path, tiny_model):
    return save_model(tiny_model, tmp_path / "tiny")


def test_info_lists_version_models_and_device(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("spectok ")
    assert "spectok-small" in out
    assert "device cpu" in out or "device cuda" in out


def test_info_says_which_models_have_the_pixel_basis(monkeypatch, capsys):
    import spectok.model
    models = {"plain": SpectralTokenizer(CONFIGS["tiny"]),
              "detailed": SpectralTokenizer(dataclasses.replace(CONFIGS["tiny"], pixel_basis=True))}
    monkeypatch.setattr(spectok.model, "available_models", lambda: list(models))
    monkeypatch.setattr(spectok.model, "load_model", models.__getitem__)
    assert main(["info"]) == 0
    lines = {line.split(":")[0].strip(): line for line in capsys.readouterr().out.splitlines()}
    assert lines["detailed"].endswith(", pixel basis")
    assert not lines["plain"].endswith("pixel basis")


@pytest.mark.parametrize("suffix", [".fits", ".h5", ".parquet"])
def test_encode_writes_embeddings_with_ids(tmp_path, tiny_model_path, suffix, capsys):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    output = tmp_path / f"embeddings{suffix}"
    path = str(example_spectrum_path())
    assert main(["encode", path, path, "-o", str(output), "--model", str(tiny_model_path),
                 "--format", "tabular-fits"]) == 0
    if suffix == ".parquet":  # astropy's parquet reader needs pandas; pyarrow is enough
        import pyarrow.parquet
        columns = pyarrow.parquet.read_table(output).to_pydict()
        ids, embedding = columns["id"], np.array(columns["embedding"])
    else:
        table = Table.read(output)
        ids, embedding = list(table["id"]), np.asarray(table["embedding"])
    assert ids == ["example_manga_galaxy"] * 2
    assert embedding.shape == (2, CONFIGS["tiny"].width)
    assert np.all(np.isfinite(embedding))
    assert "wrote 2 embeddings" in capsys.readouterr().out


def test_encode_writes_aligned_tokens(tmp_path, tiny_model_path):
    output = tmp_path / "embeddings.h5"
    path = str(example_spectrum_path())
    assert main(["encode", path, "-o", str(output), "--model", str(tiny_model_path),
                 "--format", "tabular-fits", "--wavelength-bins", "3700", "9000", "18"]) == 0
    table = Table.read(output)
    assert table["aligned_tokens"].shape == (1, 18, CONFIGS["tiny"].token_dim)
    assert table["aligned_valid"].all()   # the MaNGA spectrum covers 3600-10300 Å
    np.testing.assert_allclose(table.meta["binedges"], np.geomspace(3700, 9000, 19))
    for bad, message in ((["3700", "9000", "2.5"], "whole number of bins"),
                         (["9000", "3700", "4"], "LO HI must be two positive"),
                         (["3700", "inf", "4"], "LO HI must be two positive")):   # inf bins
        with pytest.raises(SystemExit, match=message):
            main(["encode", path, "-o", str(tmp_path / "bad.h5"), "--model",
                  str(tiny_model_path), "--wavelength-bins", *bad])


def test_encode_refuses_unknown_output_format(tmp_path, tiny_model_path):
    with pytest.raises(SystemExit, match="output format"):
        main(["encode", str(example_spectrum_path()), "-o", str(tmp_path / "out.txt"),
              "--model", str(tiny_model_path)])


def test_encode_refuses_missing_output_directory(tmp_path, tiny_model_path):
    with pytest.raises(SystemExit, match="does not exist"):
        main(["encode", str(example_spectrum_path()), "-o", str(tmp_path / "no" / "out.fits"),
              "--model", str(tiny_model_path)])


def test_encode_reports_unreadable_file(tmp_path, tiny_model_path, capsys):
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"not a fits file")
    good = str(example_spectrum_path())
    output = tmp_path / "out.fits"
    with pytest.raises(SystemExit, match="spectok encode: .*broken.fits: specutils could not"):
        main(["encode", good, str(bad), "-o", str(output), "--model", str(tiny_model_path),
              "--errors", "raise", "--format", "tabular-fits"])
    # the default leaves the file out, says so, and keeps the others
    with pytest.warns(SpectrumInputWarning, match="skipped 1 of 2 spectra: .*broken.fits"):
        assert main(["encode", good, str(bad), "-o", str(output), "--model",
                     str(tiny_model_path), "--format", "tabular-fits", "--overwrite"]) == 0
    assert "wrote 1 embeddings" in capsys.readouterr().out
    table = Table.read(output)
    assert list(table["index"]) == [0] and table.meta["SKIPPED"] == 1
    # nothing encoded at all is a failure a script can see
    with pytest.warns(SpectrumInputWarning, match="skipped 1 of 1 spectra"):
        assert main(["encode", str(bad), "-o", str(output), "--model", str(tiny_model_path),
                     "--format", "tabular-fits", "--overwrite"]) == 1
    captured = capsys.readouterr()
    assert "wrote 0 embeddings" in captured.out
    assert "no spectrum could be encoded" in captured.err


def test_encode_stops_on_a_broken_file_and_resumes_after_it_is_fixed(tmp_path, tiny_model_path,
                                                                     capsys):
    good = str(example_spectrum_path())
    later = tmp_path / "later.fits"
    later.write_bytes(b"\0" * 100)  # not yet a spectrum
    output = tmp_path / "out.h5"
    arguments = ["encode", good, good, str(later), "-o", str(output), "--model",
                 str(tiny_model_path), "--format", "tabular-fits", "--chunk-size", "1",
                 "--errors", "raise"]
    with pytest.raises(SystemExit, match="later.fits"):
        main(arguments)
    assert not output.exists() and len(list(Path(f"{output}.parts").glob("chunk-*"))) == 2
    shutil.copy(good, later)
    with pytest.raises(SystemExit, match="holds a partial run; pass .*--resume"):
        main(arguments)
    assert main(arguments + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "wrote 3 embeddings" in out and "resumed: 2 chunks were already done" in out
    resumed = output.read_bytes()
    assert main(arguments + ["--overwrite"]) == 0
    assert output.read_bytes() == resumed


@pytest.mark.remote_data
def test_validate_scores_models_on_a_configs_batches(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text("""
batch_size = 2
validation_batches = 1
[[sources]]
name = "stellar_templates"
instruments = ["sdss"]
""")
    assert main(["validate", str(config), "spectok-small", "spectok-small"]) == 0
    out = capsys.readouterr().out
    assert "1 batches of 2 pairs" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("spectok-small")]
    assert len(rows) == 2 and rows[0] == rows[1]
    assert all(np.isfinite(float(value)) for value in rows[0][1:])
    # an anchored configuration adds the anchor, 0 for the model it anchors to
    anchored = tmp_path / "anchored.toml"
    anchored.write_text("""
init_weights = "spectok-small"
trainable = "pooling"
anchor_weight = 1.0
reconstruction_weight = 0.0
""" + config.read_text())
    assert main(["validate", str(anchored), "spectok-small"]) == 0
    out = capsys.readouterr().out
    header = next(line.split() for line in out.splitlines() if line.strip().startswith("model"))
    assert header == ["model", "loss", "reconstruction", "consistency", "anchor"]
    row = next(line.split() for line in out.splitlines() if line.startswith("spectok-small"))
    assert float(row[4]) == 0.0 and float(row[1]) == float(row[3])


def test_train_runs_a_config_file(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(f"""
model = "tiny"
name = "cli-model"
output_dir = "{tmp_path / 'run'}"
steps = 2
batch_size = 2
warmup_steps = 1
max_query_pixels = 32
validation_batches = 1
validate_every = 2
checkpoint_every = 1
[[sources]]
name = "unknown-source"
""")
    with pytest.raises(SystemExit, match="spectok train: .*unknown-source"):
        main(["train", str(config), "--no-progress", "--device", "cpu", "--num-workers", "0"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_train_and_validate_refuse_what_would_stop_them_in_one_line(tmp_path):
    # before: Python tracebacks (torch's "Torch not compiled with CUDA enabled", the
    # FileNotFoundError of train and the WeightsError of a model that is not there)
    config = tmp_path / "run.toml"
    config.write_text(f'model = "tiny"\noutput_dir = "{tmp_path / "run"}"\n'
                      '[[sources]]\nname = "miles"\n')
    for device, named in (("gpu", "device must be .* got 'gpu'"),
                          ("cuda", r"device 'cuda': torch sees 0 CUDA GPU\(s\)")):
        with pytest.raises(SystemExit, match=f"spectok train: {named}"):
            main(["train", str(config), "--device", device])
    with pytest.raises(SystemExit, match="spectok train: --resume, but there is no checkpoint "
                                         "to resume from in"):
        main(["train", str(config), "--resume", "--device", "cpu"])
    with pytest.raises(SystemExit, match="spectok validate: .*no-such-model"):
        main(["validate", str(config), "spectok-small", "no-such-model"])


@pytest.mark.parametrize("command", ["train", "validate"])
def test_a_config_that_cannot_be_read_ends_with_one_line(tmp_path, command):
    models = ["spectok-small"] if command == "validate" else []
    with pytest.raises(SystemExit, match=f"spectok {command}: .*missing.toml"):
        main([command, str(tmp_path / "missing.toml"), *models])
    bad = tmp_path / "bad.toml"
    for text, named in (('stepz = 3', "stepz"), ('steps = "ten"', "steps must be an integer"),
                        ('[[sources]]\nname = "miles"\nweight = "heavy"',
                         "weight must be a number")):
        bad.write_text(f'model = "tiny"\n{text}\n')
        with pytest.raises(SystemExit, match=f"spectok {command}: .*{named}"):
            main([command, str(bad), *models])


@pytest.mark.parametrize("bins", ["nan", "inf", "10001", "1e12"])
def test_encode_refuses_a_number_of_bins_that_is_not_finite_or_too_large(tmp_path, bins):
    # before: nan printed 'spectok encode: cannot convert float NaN to integer', inf raised
    # OverflowError and 1e12 numpy's _ArrayMemoryError (7.28 TiB), both as tracebacks
    with pytest.raises(SystemExit, match=r"--wavelength-bins needs a whole number of bins from "
                                         r"1 to 10000 \(finer bins repeat the tokens"):
        main(["encode", str(example_spectrum_path()), "-o", str(tmp_path / "out.h5"),
              "--wavelength-bins", "3700", "9000", bins])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("arguments, message", [
    (["--tasks", ""], "--tasks is empty"),
    (["--tasks", "redshift,spectral_types", "redshift"],
     r"--tasks lists \['redshift'\] more than once"),
    (["--threads", "0"], "--threads must be at least 1, got 0"),
    (["--threads", "-1"], "--threads must be at least 1, got -1"),
    (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
    (["--model", "no-such-model"], "spectok bench: unknown model 'no-such-model'"),
    (["-o", "{tmp_path}"], "is a directory; give the path of the report file"),
    (["-o", "{tmp_path}/no/report.md"], "output directory .*no does not exist"),
])
def test_bench_refuses_bad_arguments_before_running(tmp_path, monkeypatch, arguments, message):
    # before: --tasks '' ran no task and exited 0; --threads 0 or -1 raised torch's
    # RuntimeError 'set_num_threads expects a positive integer' and --model no-such-model a
    # WeightsError, as tracebacks; --seed -1 and -o DIRECTORY failed only after the run
    import spectok.benchmarks

    def no_run(**kwargs):
        raise AssertionError("the benchmark must not start")

    monkeypatch.setattr(spectok.benchmarks, "run_benchmark", no_run)
    arguments = [a.format(tmp_path=tmp_path) for a in arguments]
    with pytest.raises(SystemExit, match=message):
        main(["bench", "--quick", *arguments])
