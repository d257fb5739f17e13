"""Encoding a catalogue to disk: in chunks, resumable after a kill, checked before it starts.

`encode_catalogue` reads spectra (files, or objects already in memory) a
chunk at a time, encodes each chunk with `spectok.encode`, and writes it to
its own file in a directory beside the output, ``OUTPUT.parts/``. A chunk
file is written under a temporary name and renamed when complete, so a
process killed at any moment leaves only whole chunks behind; a run started
again with ``resume=True`` checks that it was asked for the same thing
(inputs, model, settings), skips the chunks already written without reading
their inputs, and encodes the rest. When every chunk is there the output
table is written (again atomically) from the chunks, and the directory is
removed. A resumed run therefore writes exactly the file an uninterrupted
run writes.

Before any spectrum is read, the output directory must exist and be
writable, and its file system must have room for the result.
"""

import hashlib
import itertools
import json
import math
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table
from tqdm.auto import tqdm

from ._atomic import write_atomically
from ._checks import check_bool, is_integer
from ._fits_check import check_fits_header
from ._preflight import check_free_space, check_writable_directory
from .adapter import (NoUncertaintyWarning, SpectrumInputError, WavelengthRangeWarning,
                      check_wavelength_range, is_single_spectrum, log_bin_edges,
                      prepare_spectra, warn_skipped)
from .adapter.errors import _check_error_mode
from .adapter.prepare import check_spectra
from ._device import resolve_device
from .encode import encode, get_model

__all__ = ["encode_catalogue", "read_spectrum", "CatalogueResult", "OUTPUT_FORMATS"]

#: Output formats by file suffix.
OUTPUT_FORMATS = {".fits": "fits", ".fit": "fits", ".h5": "hdf5", ".hdf5": "hdf5",
                  ".parquet": "parquet"}

_MANIFEST = "manifest.json"
_MANIFEST_FORMAT = "spectok-catalogue-parts"
_MANIFEST_VERSION = 1
#: Bytes per output row besides the embedding (index, id, scale, unit, file), an upper bound.
_ROW_OVERHEAD = 512
_ALIGNED_COLUMNS = ("aligned_tokens", "aligned_valid")


@dataclass
class CatalogueResult:
    """What `encode_catalogue` wrote.

    Attributes
    ----------
    path : `~pathlib.Path`
        The output table.
    n_encoded : int
        Rows written (one per encoded spectrum).
    skipped : list of (int, str)
        Input position and error message of each spectrum that was not
        encoded (with ``errors="warn"`` or ``"skip"``).
    resumed_chunks : int
        Chunks found complete on disk and not encoded again.

    Examples
    --------
    Three inputs, the second a file that is not there: with
    ``errors="skip"`` the other two are encoded and the missing one is
    listed by its position.

    >>> import pathlib, tempfile
    >>> import astropy.units as u, numpy as np
    >>> from spectok.catalogue import encode_catalogue
    >>> wave = np.linspace(4000, 7000, 1000) * u.AA
    >>> spectrum = (wave, np.ones(1000) * u.Jy, np.full(1000, 0.05) * u.Jy)
    >>> directory = pathlib.Path(tempfile.mkdtemp())
    >>> result = encode_catalogue([spectrum, directory / "missing.fits", spectrum],
    ...                           directory / "embeddings.fits", errors="skip")
    >>> result.path.name, result.n_encoded, result.resumed_chunks
    ('embeddings.fits', 2, 0)
    >>> result.skipped  # doctest: +ELLIPSIS
    [(1, '...missing.fits: no such file')]
    """

    path: Path
    n_encoded: int
    skipped: list = field(default_factory=list)
    resumed_chunks: int = 0


def read_spectrum(path, file_format=None):
    """Read a spectrum file with specutils, naming the file when that fails.

    Parameters
    ----------
    path : str or path-like
        Any file a specutils reader can read (``format="spex-prism"`` too).
    file_format : str, optional
        The specutils reader to use (e.g. ``"tabular-fits"``); by default
        specutils identifies it.

    Returns
    -------
    `~specutils.Spectrum` or `~specutils.SpectrumList`
        A list only when the file holds several arms. Its ``meta["id"]`` is
        the file name without suffix unless the file gives one.

    Raises
    ------
    OSError
        The file is missing, or no reader could read it (corrupted,
        truncated, or not a spectrum); the message names the file and
        includes what the readers warned about.

    Warns
    -----
    Warning
        What the readers warned about a file they did read, with the file's
        name. (Readers' warnings are collected while they run, so that a
        filter turning warnings into errors cannot interrupt a reader in the
        middle and leave the file open.)

    Examples
    --------
    >>> from spectok.catalogue import read_spectrum
    >>> from spectok.datasets import example_spectrum_path
    >>> read_spectrum(example_spectrum_path(), "tabular-fits").meta["id"]
    'example_manga_galaxy'
    """
    from specutils import Spectrum, SpectrumList

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    check_fits_header(path)  # a corrupt header could make astropy loop for hours
    kwargs = {"format": file_format} if file_format else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            spectrum = Spectrum.read(path, **kwargs)
        except Exception as error:  # noqa: BLE001 - readers raise anything; try the list reader
            first = f"{type(error).__name__}: {_first_line(error)}"
            try:
                spectrum = SpectrumList.read(path, **kwargs)
            except Exception:  # noqa: BLE001
                spectrum = None
    notes = list(dict.fromkeys(f"{w.category.__name__}: {_first_line(w.message)}"
                               for w in caught))
    if spectrum is None or (isinstance(spectrum, SpectrumList) and not len(spectrum)):
        warned = f"; the reader warned: {'; '.join(notes[:3])}" if notes else ""
        raise OSError(f"{path}: specutils could not read it ({first}){warned}; give a format "
                      "(file_format=..., spectok encode --format) to choose a reader")
    for w in dict((str(w.message), w) for w in caught).values():
        warnings.warn(f"{path}: {w.message}", w.category, stacklevel=2)
    if isinstance(spectrum, SpectrumList) and len(spectrum) == 1:
        spectrum = spectrum[0]
    target = spectrum[0] if isinstance(spectrum, SpectrumList) else spectrum
    target.meta.setdefault("id", path.stem)
    return spectrum


def _first_line(message, limit=200):
    """The first line of a (possibly very long) message, cut at ``limit`` characters."""
    line = (str(message).strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[:limit] + "…"


def _is_path(source):
    return isinstance(source, (str, os.PathLike))


def _model_digest(net):
    """sha256 of a model's parameters and configuration: which model made a chunk."""
    digest = hashlib.sha256(json.dumps(net.config.to_dict(), sort_keys=True).encode())
    for key, tensor in net.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _paths_digest(sources):
    """sha256 of the file names among a list of sources (None when there are none)."""
    paths = [os.fspath(s) for s in sources if _is_path(s)]
    return hashlib.sha256("\n".join(paths).encode()).hexdigest() if paths else None


class _Parts:
    """The chunk files of one run, in ``OUTPUT.parts/``, and its manifest."""

    def __init__(self, output):
        self.directory = output.with_name(output.name + ".parts")

    def chunk_path(self, k):
        return self.directory / f"chunk-{k:06d}.h5"

    def complete_chunks(self):
        """Number of chunks 0, 1, … complete on disk (stray partial files are removed)."""
        for stray in self.directory.glob("*.partial"):
            stray.unlink()
        k = 0
        while self.chunk_path(k).exists():
            k += 1
        return k

    def start(self, manifest, resume, overwrite):
        """Create the directory, or check that the run found there is this one; chunks done."""
        if self.directory.exists():
            if overwrite and not resume:
                shutil.rmtree(self.directory)
            elif not resume:
                raise FileExistsError(
                    f"{self.directory} holds a partial run; pass resume=True (--resume) to "
                    "continue it, or overwrite=True (--overwrite) to start again")
            else:
                self._check_manifest(manifest)
                return self.complete_chunks()
        self.directory.mkdir()
        write_atomically(self.directory / _MANIFEST,
                          lambda path: path.write_text(json.dumps(manifest, indent=2) + "\n"))
        return 0

    def _check_manifest(self, manifest):
        path = self.directory / _MANIFEST
        try:
            found = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot resume from {self.directory}: unreadable {_MANIFEST} "
                             f"({error}); pass overwrite=True to start again") from None
        different = [key for key in manifest if found.get(key) != manifest[key]]
        if different:
            details = "; ".join(f"{key}: {found.get(key)!r} then, {manifest[key]!r} now"
                                for key in different)
            raise ValueError(f"cannot resume from {self.directory}: that run was started with "
                             f"other inputs or settings ({details}); use the same ones, or pass "
                             "overwrite=True to start again")

    def write_chunk(self, k, rows, skipped, notes):
        def write(path):
            import h5py

            strings = h5py.string_dtype()
            with h5py.File(path, "w") as f:
                f["index"] = np.asarray(rows["index"], np.int64)
                f.create_dataset("id", data=np.asarray(rows["id"], object), dtype=strings)
                f["scale"] = np.asarray(rows["scale"], np.float64)
                f.create_dataset("unit", data=np.asarray(rows["unit"], object), dtype=strings)
                f["n_patches"] = np.asarray(rows["n_patches"], np.int64)
                f["embedding"] = rows["embedding"]
                for name in _ALIGNED_COLUMNS:
                    if name in rows:
                        f[name] = rows[name]
                f.create_dataset("file", data=np.asarray(rows["file"], object), dtype=strings)
                f["skipped_index"] = np.asarray([i for i, _ in skipped], np.int64)
                f.create_dataset("skipped_message", data=np.asarray(
                    [m for _, m in skipped], object), dtype=strings)
                f.attrs["no_uncertainty"] = notes["no_uncertainty"]
                f.create_dataset("outside_range", data=np.asarray(notes["outside_range"],
                                                                  object), dtype=strings)
        write_atomically(self.chunk_path(k), write)

    def read_chunks(self, n_chunks):
        import h5py

        for k in range(n_chunks):
            with h5py.File(self.chunk_path(k), "r") as f:
                yield {name: f[name][()] for name in f}, int(f.attrs["no_uncertainty"])


def _encode_chunk(sources, start, net, options):
    """Read, prepare and encode one chunk; (rows, skipped, notes)."""
    def read(source):
        return read_spectrum(source, options["file_format"]) if _is_path(source) else source

    pairs, skipped = prepare_spectra(sources, options["medium"], net.config.patch_size,
                                     skip=options["errors"] != "raise", start=start,
                                     read=read)
    indices = [index for index, _ in pairs]
    prepared = [spectrum for _, spectrum in pairs]
    width = net.config.width
    rows = {"index": indices, "id": [], "scale": [], "unit": [], "n_patches": [],
            "embedding": np.empty((0, width), np.float32),
            "file": [os.fspath(sources[index - start]) if _is_path(sources[index - start])
                     else "" for index in indices]}
    bins = options["wavelength_bins"]
    if bins is not None:
        rows["aligned_tokens"] = np.empty((0, len(bins) - 1, net.config.token_dim), np.float32)
        rows["aligned_valid"] = np.empty((0, len(bins) - 1), bool)
    notes = {"no_uncertainty": sum(not p.has_uncertainty for p in prepared),
             "outside_range": []}
    if prepared:
        with warnings.catch_warnings():
            # noted per chunk and reported once for the whole run
            warnings.simplefilter("ignore", NoUncertaintyWarning)
            warnings.simplefilter("ignore", WavelengthRangeWarning)
            notes["outside_range"] = check_wavelength_range(
                prepared, net.metadata.get("wavelength_range"))
            batch = encode(prepared, net, batch_size=options["batch_size"],
                           device=options["device"], progress=False)
        table = batch.to_table()
        rows.update({name: list(table[name]) for name in ("id", "scale", "unit", "n_patches")})
        rows["embedding"] = np.asarray(table["embedding"], np.float32)
        if bins is not None:
            aligned = batch.aligned(bins)
            rows["aligned_tokens"] = aligned.filled(0.0).astype(np.float32)
            rows["aligned_valid"] = ~np.ma.getmaskarray(aligned).any(axis=2)
    return rows, skipped, notes


def _output_format(output):
    fmt = OUTPUT_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the output format of {output}; use one of "
                         f"{', '.join(sorted(OUTPUT_FORMATS))}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError(f"writing {output} needs pyarrow (pip install pyarrow)") from None
    return fmt


def _write_table(table, output, fmt):
    def write(path):
        if fmt == "hdf5":
            table.write(path, format="hdf5", path="embeddings", serialize_meta=True)
        else:
            table.write(path, format=fmt)
    write_atomically(output, write)


def _assemble(parts, n_chunks, width, model_name, bins_aa):
    """The output table from the chunk files; (table, skipped, no_uncertainty, outside_range)."""
    names = ("index", "id", "scale", "unit", "n_patches", "embedding", "file")
    columns = {name: [] for name in names + (_ALIGNED_COLUMNS if bins_aa is not None else ())}
    skipped, outside, no_uncertainty = [], [], 0
    for chunk, missing in parts.read_chunks(n_chunks):
        for name in columns:
            values = chunk[name]
            columns[name].append(values if values.dtype != object
                                 else np.array([v.decode() for v in values], str))
        skipped += [(int(i), m.decode()) for i, m in zip(chunk["skipped_index"],
                                                          chunk["skipped_message"])]
        outside += [label.decode() for label in chunk["outside_range"]]
        no_uncertainty += missing
    data = {name: np.concatenate(values) if values else np.empty(0)
            for name, values in columns.items()}
    data["embedding"] = data["embedding"].reshape(-1, width).astype(np.float32)
    for name in ("id", "unit", "file"):
        data[name] = data[name].astype(str)
    if not any(data["file"]):
        del data["file"]
    meta = {"model": model_name, "skipped": [i for i, _ in skipped]}
    if bins_aa is not None:
        meta["binedges"] = bins_aa   # 8 characters: a plain FITS keyword
    table = Table(data, meta=meta)
    return table, skipped, no_uncertainty, outside


def _warn_summary(n_sources, skipped, no_uncertainty, outside, errors):
    if errors == "warn":
        warn_skipped(skipped, n_sources, stacklevel=3)
    if no_uncertainty:
        warnings.warn(f"{no_uncertainty} of {n_sources} spectra have no uncertainty; a constant "
                      "noise level per arm was estimated from the flux (DER_SNR)",
                      NoUncertaintyWarning, stacklevel=3)
    if outside:
        warnings.warn(f"{len(outside)} of {n_sources} spectra reach outside the wavelength "
                      f"range the model was trained on ({', '.join(outside[:3])}"
                      f"{', …' if len(outside) > 3 else ''}); their embeddings are "
                      "extrapolations", WavelengthRangeWarning, stacklevel=3)


def encode_catalogue(sources, output, model=None, *, chunk_size=1024, batch_size=None,
                     device=None, medium=None, errors="raise", file_format=None, resume=False,
                     overwrite=False, progress=None, wavelength_bins=None):
    """Encode many spectra to an embedding table on disk, in chunks that survive a kill.

    Each chunk of ``chunk_size`` inputs is read, encoded and written to its
    own file in ``OUTPUT.parts/`` (atomically: a kill leaves whole chunks
    only). Run the same call again with ``resume=True`` after a crash or a
    kill, and it continues with the first chunk that is missing: nothing is
    encoded twice and nothing is lost. At the end the table is written to
    ``output`` (atomically) and ``OUTPUT.parts/`` is removed; a resumed run
    writes exactly the file an uninterrupted one writes (on the same
    machine, with the same settings).

    Parameters
    ----------
    sources : iterable
        File names (read with `~spectok.catalogue.read_spectrum`) and/or spectrum-like objects
        (anything `spectok.encode` takes), in a list or any iterable (an
        iterable must give the same items in the same order when resumed;
        a dict or a set is refused); one file name or spectrum; or a
        `~spectok.datasets.SpectrumDataset` (its spectra).
    output : str or path-like
        The table to write: ``.h5``/``.hdf5`` (astropy's HDF5 table layout,
        at path ``embeddings``), ``.fits`` or ``.parquet`` (needs pyarrow).
        One row per encoded spectrum, in input order, with the columns of
        `spectok.TokenBatch.to_table` (``index`` is the input position) and
        ``file`` when the sources include file names; ``meta["skipped"]``
        lists the positions of spectra that were not encoded.
    model : `~spectok.model.SpectralTokenizer` or str, optional
        The model or a shipped model name (default ``spectok.conf.default_model``).
    chunk_size : int
        Inputs per chunk: what a kill can cost, and what is held in memory.
    batch_size, device, medium
        As for `spectok.encode`.
    errors : {"raise", "warn", "skip"}
        What to do with an input that cannot be read or encoded: stop with
        its error, or leave it out (with one warning at the end, or
        silently). Skipped inputs are listed in the result.
    file_format : str, optional
        specutils reader for the files (default: identified by specutils).
    resume : bool
        Continue the partial run in ``OUTPUT.parts/``; it must have been
        started with the same inputs, model and settings. Without a
        partial run, start one.
    overwrite : bool
        Replace an existing output, and (unless ``resume``) discard a
        partial run.
    progress : bool, optional
        Show a progress bar over chunks; `None` shows one for more than 10 chunks.
    wavelength_bins : `~astropy.units.Quantity`, optional
        Bin edges (vacuum, any spectral unit, strictly monotonic): also write
        each spectrum's tokens aligned on these bins
        (`spectok.SpectralTokens.aligned`) as ``aligned_tokens``, shape
        (n_bins, token_dim), zero where ``aligned_valid`` (shape (n_bins,))
        is false; the edges in vacuum Å, ascending, go to
        ``meta["binedges"]`` (``BINEDGES`` in a FITS header).

    Returns
    -------
    `~spectok.catalogue.CatalogueResult`

    Raises
    ------
    FileNotFoundError, NotADirectoryError, PermissionError
        The output directory is missing or cannot be written (checked
        before any spectrum is read).
    OSError
        Not enough free disk space for the output (``errno.ENOSPC``, checked
        before any spectrum is read when the number of sources is known), or
        a file that cannot be read (with ``errors="raise"``).
    FileExistsError
        The output exists (without ``overwrite``), or a partial run exists
        (without ``resume`` or ``overwrite``).
    TypeError
        ``sources`` is a dict or a set (no order to resume by), bytes, or
        something that cannot be iterated.
    ValueError
        The partial run was started with other inputs or settings, or a
        bad argument.
    spectok.adapter.SpectrumInputError, astropy.units.UnitConversionError
        A spectrum that cannot be used (with ``errors="raise"``), an empty
        list of sources, or ``wavelength_bins`` that are not bin edges.

    Warns
    -----
    spectok.adapter.SpectrumInputWarning
        Some inputs were skipped (``errors="warn"``): one warning for the run.
    spectok.adapter.NoUncertaintyWarning, spectok.adapter.WavelengthRangeWarning
        As in `spectok.encode`, once for the run.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import astropy.units as u, numpy as np
    >>> from astropy.table import Table
    >>> from spectok.catalogue import encode_catalogue
    >>> wave = np.linspace(4000, 7000, 1000) * u.AA
    >>> fluxes = [(1 + 0.1 * k * np.sin(wave.value / 100)) * u.Jy for k in range(5)]
    >>> spectra = [(wave, flux, 0.05 * flux) for flux in fluxes]
    >>> output = pathlib.Path(tempfile.mkdtemp()) / "embeddings.h5"
    >>> result = encode_catalogue(spectra, output, chunk_size=2)
    >>> result.n_encoded, Table.read(output)["embedding"].shape
    (5, (5, 128))
    """
    _check_error_mode(errors)
    if not is_integer(chunk_size) or chunk_size < 1:   # 2.7 was taken as 2, "10" as 10
        raise ValueError(f"chunk_size must be at least 1 (an integer), got {chunk_size!r}")
    chunk_size = int(chunk_size)
    check_bool(resume, "resume")
    check_bool(overwrite, "overwrite")
    if _is_path(sources) or is_single_spectrum(sources):
        sources = [sources]
    # a dataset iterates as (spectrum, labels) pairs, a dict as its keys, a set in no order
    sources = check_spectra(sources, "sources", "file names or spectra")
    if hasattr(sources, "__len__") and len(sources) == 0:
        raise SpectrumInputError("no spectra given: the list is empty")
    output = Path(output)
    fmt = _output_format(output)
    check_writable_directory(output.parent, "output directory")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass overwrite=True (--overwrite) to replace it")
    bins_aa = None
    if wavelength_bins is not None:
        bins_aa = np.exp(log_bin_edges(wavelength_bins)).tolist()
    net = get_model(model, device)
    n_sources = len(sources) if hasattr(sources, "__len__") else None
    width = net.config.width
    n_bins = 0 if bins_aa is None else len(bins_aa) - 1
    row_bytes = 4 * width + n_bins * (4 * net.config.token_dim + 1) + _ROW_OVERHEAD
    if n_sources is not None:
        # the chunk files, then the table written from them
        check_free_space(output.parent, 2 * n_sources * row_bytes + 2**20,
                         f"the embeddings of {n_sources} spectra")
    manifest = {"format": _MANIFEST_FORMAT, "format_version": _MANIFEST_VERSION,
                "n_sources": n_sources, "model": _model_digest(net),
                "files": None if n_sources is None else _paths_digest(sources),
                "chunk_size": chunk_size, "batch_size": batch_size, "medium": medium,
                "errors": errors, "file_format": file_format,
                "device": resolve_device(device).type, "wavelength_bins": bins_aa}
    parts = _Parts(output)
    done = parts.start(manifest, resume, overwrite)

    options = {"file_format": file_format, "medium": medium, "errors": errors,
               "batch_size": batch_size, "device": device,
               "wavelength_bins": None if bins_aa is None else bins_aa * u.AA}
    iterator = iter(sources)
    n_seen = sum(1 for _ in itertools.islice(iterator, done * chunk_size))
    total = None if n_sources is None else math.ceil(n_sources / chunk_size)
    show = (total or 0) > 10 if progress is None else progress
    bar = tqdm(total=total, initial=done, unit="chunk", desc="spectok.encode_catalogue",
               disable=not show)
    k = done
    while True:
        chunk = list(itertools.islice(iterator, chunk_size))
        if not chunk:
            break
        rows, skipped, notes = _encode_chunk(chunk, n_seen, net, options)
        try:
            parts.write_chunk(k, rows, skipped, notes)
        except OSError as error:
            raise OSError(error.errno, f"writing chunk {k} of {output} failed ({error}); free "
                          "some space or fix the problem, then run again with resume=True",
                          os.fspath(parts.directory)) from error
        n_seen += len(chunk)
        k += 1
        bar.update(1)
    bar.close()

    table, skipped, no_uncertainty, outside = _assemble(parts, k, width,
                                                        net.name, bins_aa)
    _write_table(table, output, fmt)
    shutil.rmtree(parts.directory)
    _warn_summary(n_seen, skipped, no_uncertainty, outside, errors)
    return CatalogueResult(path=output, n_encoded=len(table), skipped=skipped,
                           resumed_chunks=done)
