"""Fetching data wheels: caching, checksums, failure messages, reading members.

Everything but the one ``remote_data`` test runs offline: the pip call is
replaced by a tiny runner that writes a fake wheel.
"""

import gzip
import hashlib
import importlib.util
import io
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from spectok.datasets import (DATA_WHEELS, WheelFetchError, fetch_wheel, list_members,
                              open_fits_member, read_member, wheel_cache_dir)
from spectok.datasets import fetch as fetch_module


def _fits_bytes(values):
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.asarray(values, dtype=np.float32)).writeto(buffer)
    return buffer.getvalue()


def _fake_wheel_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("fakepkg/__init__.py", "")
        zf.writestr("fakepkg/data/a.fits", _fits_bytes([1, 2, 3]))
        zf.writestr("fakepkg/data/b.fits.gz", gzip.compress(_fits_bytes([4, 5])))
        zf.writestr("fakepkg/data/sub/c.txt", "hello")
        zf.writestr("fakepkg/data/sub/", "")  # a directory entry
    return buffer.getvalue()


FAKE = _fake_wheel_bytes()
FAKE_SHA = hashlib.sha256(FAKE).hexdigest()


class FakePip:
    """Stands in for ``_run_pip``: records commands and writes the fake wheel."""

    def __init__(self, payload=FAKE, returncode=0, stderr=""):
        self.payload, self.returncode, self.stderr = payload, returncode, stderr
        self.commands = []

    def __call__(self, command):
        self.commands.append(command)
        if self.returncode == 0:
            name, version = command[command.index("--only-binary=:all:") + 1].split("==")
            dest = Path(command[command.index("-d") + 1])
            (dest / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(
                self.payload)
        return subprocess.CompletedProcess(command, self.returncode, "", self.stderr)


def _forbid_download(command):
    raise AssertionError(f"unexpected download: {command}")


def test_registry_is_pinned():
    assert {k: v["version"] for k, v in DATA_WHEELS.items()} == {
        "sdss-mangadap": "4.5.0", "splat": "1.14", "fastspecfit": "3.6.1", "linetools": "0.3.2"}
    for entry in DATA_WHEELS.values():
        assert len(entry["sha256"]) == 64
        int(entry["sha256"], 16)


def test_wheel_cache_dir_is_in_astropy_cache():
    from astropy.config.paths import get_cache_dir

    path = wheel_cache_dir()
    assert path.is_dir()
    assert path == Path(get_cache_dir()) / "spectok" / "wheels"


def test_download_then_cache(tmp_path, monkeypatch):
    pip = FakePip()
    monkeypatch.setattr(fetch_module, "_run_pip", pip)
    path = fetch_wheel("fake-pkg", "1.0", FAKE_SHA, cache_dir=tmp_path)
    assert path == tmp_path / "fake_pkg-1.0-py3-none-any.whl"
    assert path.read_bytes() == FAKE
    command = pip.commands[0]
    assert command[1:] == ["-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                           "fake-pkg==1.0", "-d", command[-1]]
    assert Path(command[-1]).parent == tmp_path  # downloaded next to the cache, then moved
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # temp folder removed

    monkeypatch.setattr(fetch_module, "_run_pip", _forbid_download)
    assert fetch_wheel("fake-pkg", "1.0", FAKE_SHA, cache_dir=tmp_path) == path


def test_corrupted_cache_is_fetched_again(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_module, "_run_pip", FakePip())
    path = fetch_wheel("fake-pkg", "1.0", FAKE_SHA, cache_dir=tmp_path)
    path.write_bytes(FAKE[:100])  # truncated download
    pip = FakePip()
    monkeypatch.setattr(fetch_module, "_run_pip", pip)
    again = fetch_wheel("fake-pkg", "1.0", FAKE_SHA, cache_dir=tmp_path)
    assert len(pip.commands) == 1
    assert again.read_bytes() == FAKE


def test_corrupted_cache_while_offline_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_module, "_run_pip", FakePip())
    path = fetch_wheel("fake-pkg", "1.0", FAKE_SHA, cache_dir=tmp_path)
    path.write_bytes(b"garbage")
    monkeypatch.setattr(fetch_module, "_run_pip", FakePip(returncode=1, stderr="offline"))
    with pytest.raises(WheelFetchError, match="does not match the expected sha256"):
        fetch_wheel("fake-pkg", "1.0", FAKE_SHA, cache_dir=tmp_path)


def test_download_failure_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_module, "_run_pip",
                        FakePip(returncode=1, stderr="ERROR: No matching distribution"))
    with pytest.raises(WheelFetchError) as info:
        fetch_wheel("fake-pkg", "1.0", FAKE_SHA, cache_dir=tmp_path)
    assert isinstance(info.value, OSError)
    message = str(info.value)
    assert "No matching distribution" in message
    assert (f"python -m pip download --no-deps --only-binary=:all: fake-pkg==1.0 -d {tmp_path}"
            in message)
    assert FAKE_SHA in message
    assert not list(tmp_path.glob("*.whl"))


def test_missing_pip_is_a_fetch_error(tmp_path, monkeypatch):
    def no_pip(command):
        raise FileNotFoundError("no python here")

    monkeypatch.setattr(fetch_module, "_run_pip", no_pip)
    with pytest.raises(WheelFetchError, match="pip download"):
        fetch_wheel("fake-pkg", "1.0", FAKE_SHA, cache_dir=tmp_path)


def test_checksum_mismatch_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_module, "_run_pip", FakePip())
    with pytest.raises(WheelFetchError, match="expected 0000"):
        fetch_wheel("fake-pkg", "1.0", "0" * 64, cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.whl"))


def test_registered_defaults_and_unregistered_needs_version(tmp_path, monkeypatch):
    pip = FakePip(returncode=1, stderr="offline")
    monkeypatch.setattr(fetch_module, "_run_pip", pip)
    with pytest.raises(WheelFetchError, match=DATA_WHEELS["splat"]["sha256"]):
        fetch_wheel("splat", cache_dir=tmp_path)
    assert "splat==1.14" in pip.commands[0]
    with pytest.raises(ValueError, match="give a version"):
        fetch_wheel("not-a-data-wheel", cache_dir=tmp_path)


def test_import_does_not_download(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("subprocess called at import")

    monkeypatch.setattr(subprocess, "run", boom)
    monkeypatch.setattr(subprocess, "Popen", boom)
    # Execute a fresh copy of the module (not the one other tests use).
    spec = importlib.util.spec_from_file_location("_fetch_copy", fetch_module.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.DATA_WHEELS == DATA_WHEELS


@pytest.fixture
def fake_wheel(tmp_path):
    path = tmp_path / "fakepkg-1.0-py3-none-any.whl"
    path.write_bytes(FAKE)
    return path


def test_list_members_glob(fake_wheel):
    assert list_members(fake_wheel, "fakepkg/data/*.fits*") == [
        "fakepkg/data/a.fits", "fakepkg/data/b.fits.gz"]
    assert list_members(fake_wheel, "fakepkg/**/*.txt") == ["fakepkg/data/sub/c.txt"]
    assert list_members(fake_wheel, "fakepkg/data/[ab].fits") == ["fakepkg/data/a.fits"]
    assert len(list_members(fake_wheel)) == 4  # directory entries left out


def test_read_member_and_fits(fake_wheel):
    assert read_member(fake_wheel, "fakepkg/data/sub/c.txt") == b"hello"
    raw = read_member(fake_wheel, "fakepkg/data/b.fits.gz")
    assert raw[:2] == b"\x1f\x8b"
    assert read_member(fake_wheel, "fakepkg/data/b.fits.gz", decompress=True)[:6] == b"SIMPLE"
    with open_fits_member(fake_wheel, "fakepkg/data/a.fits") as hdul:
        np.testing.assert_array_equal(hdul[0].data, [1, 2, 3])
    with open_fits_member(fake_wheel, "fakepkg/data/b.fits.gz") as hdul:
        np.testing.assert_array_equal(hdul[0].data, [4, 5])
    with pytest.raises(KeyError):
        read_member(fake_wheel, "fakepkg/missing.fits")


def test_open_zipfile_is_left_open(fake_wheel):
    with zipfile.ZipFile(fake_wheel) as zf:
        assert read_member(zf, "fakepkg/data/sub/c.txt") == b"hello"
        assert list_members(zf, "fakepkg/*.py") == ["fakepkg/__init__.py"]
        assert zf.fp is not None


def test_registered_name_is_fetched(fake_wheel, monkeypatch):
    calls = []

    def fake_fetch(name, version=None, sha256=None, *, cache_dir=None):
        calls.append(name)
        return fake_wheel

    monkeypatch.setattr(fetch_module, "fetch_wheel", fake_fetch)
    assert read_member("splat", "fakepkg/data/sub/c.txt") == b"hello"
    assert calls == ["splat"]


@pytest.mark.remote_data
def test_real_download_from_pypi(tmp_path, monkeypatch):
    path = fetch_wheel("fastspecfit", cache_dir=tmp_path)
    assert path.name == "fastspecfit-3.6.1-py3-none-any.whl"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == DATA_WHEELS["fastspecfit"]["sha256"]
    monkeypatch.setattr(fetch_module, "_run_pip", _forbid_download)
    assert fetch_wheel("fastspecfit", cache_dir=tmp_path) == path
    assert len(list_members(path, "fastspecfit/test/data/coadd-*.fits")) == 2


@pytest.mark.parametrize("kwargs, error, message", [
    # 1.14 missed the cached splat-1.14 wheel and, not being the pinned "1.14", dropped the
    # checksum; a sha256 that can never match made a good cached wheel look corrupt
    ({"name": "splat", "version": 1.14}, TypeError, "version must be a string .*got 1.14"),
    ({"name": ["splat"]}, TypeError, r"name must be a distribution name .*\['splat'\]"),
    ({"name": "splat", "sha256": "abc"}, ValueError, "sha256 must be 64 hexadecimal digits"),
    ({"name": "splat", "sha256": 5}, ValueError, "sha256 must be 64 hexadecimal digits"),
])
def test_fetch_arguments_are_checked_before_any_download(tmp_path, monkeypatch, kwargs, error,
                                                         message):
    monkeypatch.setattr(fetch_module, "_run_pip", _forbid_download)
    with pytest.raises(error, match=message):
        fetch_wheel(**kwargs, cache_dir=tmp_path)


def test_a_bad_wheel_argument_is_named(fake_wheel, tmp_path):
    with pytest.raises(FileNotFoundError, match="'spla' is neither a registered data wheel"):
        read_member("spla", "x")
    with pytest.raises(TypeError, match="wheel must be a registered name .*got None"):
        read_member(None, "x")
    text = tmp_path / "notes.txt"
    text.write_text("not a zip")
    with pytest.raises(OSError, match="notes.txt: cannot be read as a wheel"):
        list_members(text)  # zipfile said 'File is not a zip file', naming no file
    with pytest.raises(TypeError, match="pattern must be a glob string"):
        list_members(fake_wheel, None)
    with pytest.raises(ValueError, match="decompress must be True or False, got 'no'"):
        read_member(fake_wheel, "fakepkg/data/b.fits.gz", decompress="no")


def test_a_corrupt_member_is_named(tmp_path):
    path = tmp_path / "broken-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/cut.fits.gz", gzip.compress(_fits_bytes([1, 2]))[:40])
        zf.writestr("pkg/text.fits", "not FITS")
    with pytest.raises(OSError, match="pkg/cut.fits.gz: corrupt gzip data"):
        read_member(path, "pkg/cut.fits.gz", decompress=True)  # an EOFError from gzip
    with pytest.raises(OSError, match="pkg/text.fits: cannot be read as FITS"):
        open_fits_member(path, "pkg/text.fits")
