"""The ``spectok`` command line: info, encode (FITS, HDF5, Parquet) and train."""

import numpy as np
import pytest
from astropy.table import Table

from spectok.cli import main
from spectok.datasets import example_spectrum_path
from spectok.model import CONFIGS, save_model


@pytest.fixture
def tiny_model_path(tmp_path, tiny_model):
    return save_model(tiny_model, tmp_path / "tiny")


def test_info_lists_version_models_and_device(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("spectok ")
    assert "spectok-small" in out
    assert "device cpu" in out or "device cuda" in out


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


def test_encode_refuses_unknown_output_format(tmp_path, tiny_model_path):
    with pytest.raises(SystemExit, match="output format"):
        main(["encode", str(example_spectrum_path()), "-o", str(tmp_path / "out.txt"),
              "--model", str(tiny_model_path)])


def test_encode_refuses_missing_output_directory(tmp_path, tiny_model_path):
    with pytest.raises(SystemExit, match="does not exist"):
        main(["encode", str(example_spectrum_path()), "-o", str(tmp_path / "no" / "out.fits"),
              "--model", str(tiny_model_path)])


def test_encode_reports_unreadable_file(tmp_path, tiny_model_path):
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"not a fits file")
    with pytest.raises(OSError, match="broken.fits"):
        main(["encode", str(bad), "-o", str(tmp_path / "out.fits"),
              "--model", str(tiny_model_path)])


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
    with pytest.raises(ValueError, match="unknown-source"):
        main(["train", str(config), "--no-progress"])
