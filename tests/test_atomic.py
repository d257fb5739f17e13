"""Files are written aside, flushed to disk, then renamed: complete or absent."""

import os

import astropy.units as u
import numpy as np
import pytest
from specutils import Spectrum

from spectok._atomic import write_atomically
from spectok.adapter import FLAM
from spectok.datasets import write_mmu_shard
from spectok.model import save_model
from spectok.probes import RedshiftProbe, save_probe


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "data.txt"
    write_atomically(path, lambda partial: partial.write_text("old"))

    def fail(partial):
        partial.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, fail)
    assert path.read_text() == "old"
    write_atomically(path, lambda partial: partial.write_text("new"))   # the stray is replaced
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["data.txt"]


def _writers(tiny_model, tmp_path):
    X, z = np.random.default_rng(0).normal(size=(20, 3)), np.linspace(0.1, 1.0, 20)
    spectrum = Spectrum(spectral_axis=np.linspace(4000.0, 5000.0, 10) * u.AA,
                        flux=np.ones(10) * FLAM)
    return {
        "model": (lambda: save_model(tiny_model, tmp_path / "mine"),
                  ["mine.safetensors", "mine.json"]),
        "probe": (lambda: save_probe(RedshiftProbe().fit(X, z), tmp_path / "probe.safetensors"),
                  ["probe.safetensors"]),
        "shard": (lambda: write_mmu_shard(tmp_path / "shard.hdf5", [spectrum]),
                  ["shard.hdf5"]),
    }


@pytest.mark.parametrize("writer", ["model", "probe", "shard"])
def test_writers_flush_then_rename(tiny_model, tmp_path, monkeypatch, writer):
    write, names = _writers(tiny_model, tmp_path)[writer]
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda src, dst: (
        events.append((os.path.basename(src), os.path.basename(dst))), real_replace(src, dst))[1])
    write()
    assert events == [event for name in names for event in ("fsync", (name + ".partial", name))]
