"""Streaming reader (and writer) for Multimodal Universe-style HDF5 shards.

The Multimodal Universe (MMU; The Multimodal Universe Collaboration 2024,
arXiv:2412.02527) stores each survey as HDF5 shards, one row per object,
one top-level dataset per column (``{survey}/healpix={N}/001-of-001.hdf5``
in its build scripts). Spectra are padded 2-D columns::

    spectrum_flux       (n, L) float32  flux density, erg s⁻¹ cm⁻² Å⁻¹ (SDSS and DESI store
                                        it in units of 1e-17 of that: pass ``flux_unit``)
    spectrum_lambda     (n, L) float32  wavelength, Å (vacuum); padding ≤ 0
    spectrum_ivar       (n, L) float32  inverse variance of the flux; 0 = no data
    spectrum_lsf_sigma  (n, L) float32  line-spread-function σ (survey-specific units)
    spectrum_mask       (n, L) bool     True = bad pixel (only some surveys)

beside catalogue columns such as ``object_id``, ``ra``, ``dec``, ``Z``.
Column names are arguments, so a ``spectrum/flux`` group layout works too.

`MMUSpectra` is a `torch.utils.data.IterableDataset` that gives each shard
to exactly one DataLoader worker of one distributed rank and yields
``(Spectrum, catalogue_row_dict)`` per object, reading rows in blocks.
"""

import numbers
import os
from collections.abc import Iterable, Mapping, Set
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.nddata import InverseVariance
from torch.utils.data import IterableDataset

from .._atomic import write_atomically
from .._checks import check_bool, is_integer
from .._preflight import check_writable_directory
from ..adapter import FLAM, canonical_flux, wavelength_grid
from ..adapter.prepare import check_spectra

__all__ = ["MMU_COLUMNS", "MMUSpectra", "read_mmu_shard", "write_mmu_shard"]

#: Default names of the spectral columns, by role.
MMU_COLUMNS = {
    "flux": "spectrum_flux",
    "wavelength": "spectrum_lambda",
    "ivar": "spectrum_ivar",
    "lsf_sigma": "spectrum_lsf_sigma",
    "mask": "spectrum_mask",
}

_BLOCK_ROWS = 256


def _columns(columns):
    names = dict(MMU_COLUMNS)
    if columns is not None:
        if not isinstance(columns, Mapping):  # a string was read as roles 'f', 'l', 'u', 'x'
            raise TypeError(f"columns must be a dict of column names by role, got {columns!r}")
        unknown = set(columns) - set(names)
        if unknown:
            raise ValueError(f"unknown column roles {sorted(unknown)}; roles are {sorted(names)}")
        for role, name in columns.items():
            if not isinstance(name, str):
                raise TypeError(f"columns[{role!r}] must be a column name, got {name!r}")
        names.update(columns)
    return names


def _catalog_columns(catalog_columns):
    """``catalog_columns`` as a list of names, or None; a string is refused (not its letters)."""
    if catalog_columns is None:
        return None
    if isinstance(catalog_columns, (str, bytes)) or not isinstance(catalog_columns, Iterable):
        raise TypeError(f"catalog_columns must be a list of column names, got {catalog_columns!r}")
    catalog_columns = list(catalog_columns)
    for name in catalog_columns:
        if not isinstance(name, str):
            raise TypeError(f"catalog_columns must hold column names (strings), got {name!r}")
    return catalog_columns


def _check_flux_unit(flux_unit):
    """Refuse a number as ``flux_unit``: astropy would take 5 as a bare scale factor."""
    if isinstance(flux_unit, (numbers.Number, np.bool_)):
        raise TypeError(f"flux_unit must be an astropy unit or a unit string, got {flux_unit!r}")


def _check_path(path, argument):
    """Raise TypeError unless ``path`` is a str or path-like (not None, a number or bytes)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{argument} must be a file name or a path, got {path!r}")


def _h5py():
    import h5py

    return h5py


class _Shard:
    """An open MMU shard: validated layout, block reads, errors that name the file."""

    def __init__(self, path, names, flux_unit, catalog_columns):
        self.path = str(path)
        self.names = names
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"{self.path}: is a directory, not an HDF5 shard "
                                    "(MMUSpectra reads the shards in a directory)")
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: no such HDF5 shard")
        try:
            self.file = _h5py().File(self.path, "r")
        except OSError as error:
            raise OSError(f"{self.path}: cannot open as an HDF5 shard ({error})") from error
        try:
            self._validate(flux_unit, catalog_columns)
        except Exception as error:
            self.file.close()
            if isinstance(error, (KeyError, ValueError)) and self.path in str(error):
                raise  # a layout problem, already explained
            if isinstance(error, (KeyError, ValueError, RuntimeError, OSError, TypeError)):
                raise OSError(f"{self.path}: corrupt HDF5 shard ({type(error).__name__}: "
                              f"{error})") from error
            raise

    def _validate(self, flux_unit, catalog_columns):
        f = self.file
        for role in ("flux", "wavelength"):
            if self.names[role] not in f:
                raise KeyError(f"{self.path}: no {role} column {self.names[role]!r}; the file "
                               f"has {sorted(map(str, f.keys()))}")
        flux = f[self.names["flux"]]
        if getattr(flux, "ndim", None) != 2:
            raise ValueError(f"{self.path}: {self.names['flux']!r} must be 2-D (objects, pixels), "
                             f"got shape {getattr(flux, 'shape', None)}")
        self.n_rows, self.n_pix = flux.shape
        self.spectral = {}
        for role, name in self.names.items():
            if name in f:
                column = f[name]
                shape = getattr(column, "shape", None)  # None for a group
                if shape != flux.shape:
                    raise ValueError(f"{self.path}: column {name!r} has shape {shape}, "
                                     f"{self.names['flux']!r} has {flux.shape}")
                if column.dtype.kind not in "biuf":
                    raise ValueError(f"{self.path}: column {name!r} holds {column.dtype}, "
                                     "not numbers")
                self.spectral[role] = name
        if "ivar" not in self.spectral:
            raise KeyError(f"{self.path}: no ivar column {self.names['ivar']!r}")
        if flux_unit is None:
            stored = flux.attrs.get("unit")
            if isinstance(stored, bytes):
                stored = stored.decode()
            flux_unit = stored if stored is not None else FLAM
        try:
            self.flux_unit = u.Unit(flux_unit)
            self.flux_unit ** -2  # noqa: B018 - the inverse variance's unit: not for magnitudes
        except (ValueError, TypeError, u.UnitsError) as error:
            raise ValueError(f"{self.path}: flux unit {flux_unit!r} is not a linear unit "
                             f"({error})") from None

        spectral_names = set(self.names.values())
        catalog = []
        for name, item in f.items():
            if name in spectral_names or not hasattr(item, "shape"):
                continue
            if item.shape and item.shape[0] == self.n_rows:
                catalog.append(name)
        if catalog_columns is not None:
            missing = sorted(set(catalog_columns) - set(catalog))
            if missing:
                raise KeyError(f"{self.path}: no catalogue column(s) {missing}; the file has "
                               f"{sorted(catalog)}")
            catalog = list(catalog_columns)
        self.catalog = catalog

    def close(self):
        self.file.close()

    def read_block(self, start, stop):
        """Arrays of rows [start, stop): spectral dict and catalogue dict."""
        try:
            spectral = {role: self.file[name][start:stop] for role, name in self.spectral.items()}
            catalog = {name: self.file[name][start:stop] for name in self.catalog}
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            raise OSError(f"{self.path}: cannot read rows {start}-{stop} "
                          f"(truncated or corrupt file?): {error}") from error
        return spectral, catalog


def _python_value(value):
    """Catalogue cell → plain Python / numpy value, bytes decoded."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            return np.char.decode(value, "utf-8", errors="replace")
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _row_spectrum(spectral, i, flux_unit, path, row, object_id=None):
    """One object's spectrum from row ``i`` of a block: padding dropped, bad pixels masked."""
    from specutils import Spectrum, SpectrumList

    lam = np.asarray(spectral["wavelength"][i], dtype=float)
    flux = np.asarray(spectral["flux"][i], dtype=float)
    ivar = np.asarray(spectral["ivar"][i], dtype=float)
    keep = np.isfinite(lam) & (lam > 0)  # padding
    if not keep.any():
        raise ValueError(f"{path}: row {row} has no pixel with a positive wavelength")
    mask = ~(ivar > 0) | ~np.isfinite(ivar) | ~np.isfinite(flux)
    if "mask" in spectral:
        mask |= np.asarray(spectral["mask"][i], dtype=bool)
    lam, flux, ivar, mask = lam[keep], flux[keep], ivar[keep], mask[keep]
    ivar = np.where(mask | ~np.isfinite(ivar), 0.0, ivar)
    flux = np.where(np.isfinite(flux), flux, 0.0)
    lsf = None
    if "lsf_sigma" in spectral:
        lsf = np.asarray(spectral["lsf_sigma"][i], dtype=float)[keep]

    # Concatenated arms (e.g. DESI b, r, z) overlap: split where λ steps back.
    breaks = np.flatnonzero(np.diff(lam) <= 0) + 1
    pieces = np.split(np.arange(lam.size), breaks)
    spectra = []
    for j, idx in enumerate(pieces):
        if idx.size < 2 and len(pieces) > 1:
            continue
        meta = {"medium": "vacuum", "source": path, "row": row, "object_id": object_id}
        if lsf is not None:
            # Units are survey-specific (SDSS: pixels, others Å): kept raw.
            meta["mmu_lsf_sigma"] = lsf[idx]
        if len(pieces) > 1:
            meta["arm"] = j
        spectra.append(Spectrum(spectral_axis=lam[idx] * u.AA, flux=flux[idx] * flux_unit,
                                uncertainty=InverseVariance(ivar[idx] * flux_unit**-2),
                                mask=mask[idx], meta=meta))
    return spectra[0] if len(spectra) == 1 else SpectrumList(spectra)


def _iter_shard(path, names, flux_unit, catalog_columns, block_rows=_BLOCK_ROWS):
    shard = _Shard(path, names, flux_unit, catalog_columns)
    try:
        for start in range(0, shard.n_rows, block_rows):
            stop = min(start + block_rows, shard.n_rows)
            spectral, catalog = shard.read_block(start, stop)
            for i in range(stop - start):
                row = {name: _python_value(values[i]) for name, values in catalog.items()}
                yield _row_spectrum(spectral, i, shard.flux_unit, shard.path, start + i,
                                    row.get("object_id")), row
    finally:
        shard.close()


def read_mmu_shard(path, *, columns=None, catalog_columns=None, flux_unit=None):
    """Read every object of one MMU shard into memory.

    Parameters
    ----------
    path : str or path-like
        The HDF5 shard.
    columns : dict, optional
        Spectral column names by role (``flux``, ``wavelength``, ``ivar``,
        ``lsf_sigma``, ``mask``), overriding `MMU_COLUMNS`; e.g.
        ``{"flux": "spectrum/flux"}`` for a group layout.
    catalog_columns : list of str, optional
        Catalogue columns to return; default every other 1-row-per-object
        dataset.
    flux_unit : `~astropy.units.Unit` or str, optional
        Unit of the stored flux; default the flux dataset's ``unit``
        attribute, else erg s⁻¹ cm⁻² Å⁻¹.

    Returns
    -------
    list of tuple
        ``(spectrum, row)`` per object, as `MMUSpectra` yields them.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    OSError
        If the file cannot be opened or read (the message names the file),
        or is a directory.
    KeyError
        If a required column is missing.
    TypeError
        If ``path`` is not a path, ``columns`` not a dict of names,
        ``catalog_columns`` not a list of names, or ``flux_unit`` a number.
    ValueError
        If a column has the wrong shape or type, or the flux unit is not a
        linear unit.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from specutils import Spectrum
    >>> from spectok.datasets import read_mmu_shard, write_mmu_shard
    >>> s = Spectrum(spectral_axis=np.linspace(4000, 5000, 50) * u.AA,
    ...              flux=np.ones(50) * u.Unit("erg/(s cm2 AA)"))
    >>> path = os.path.join(tempfile.mkdtemp(), "shard.hdf5")
    >>> write_mmu_shard(path, [s], {"object_id": ["a"]})
    >>> [(len(spec.flux), row["object_id"]) for spec, row in read_mmu_shard(path)]
    [(50, 'a')]
    """
    _check_path(path, "path")
    _check_flux_unit(flux_unit)
    return list(_iter_shard(os.fspath(path), _columns(columns), flux_unit,
                            _catalog_columns(catalog_columns)))


def _distributed_rank():
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class MMUSpectra(IterableDataset):
    """Stream ``(Spectrum, catalogue row)`` pairs from MMU HDF5 shards.

    Shards are dealt round-robin over all workers of all ranks: with
    ``world_size`` ranks of ``num_workers`` DataLoader workers each, worker
    ``w`` of rank ``r`` reads shards ``i`` with ``i % (world_size *
    num_workers) == r * num_workers + w``. Each shard is therefore read by
    exactly one worker of one rank (give at least that many shards, or some
    workers get none). Rows are read in blocks of ``block_rows``.

    The items are not tensors. specutils spectra cannot be pickled (their
    spectral WCS is a dynamically made class), so they cannot travel from
    DataLoader worker processes to the main one: with ``num_workers > 0``,
    turn them into arrays inside the worker, with ``transform`` (e.g.
    ``spectok.adapter.prepare_spectrum``, which gives a picklable
    `~spectok.adapter.PreparedSpectrum`) or with a ``collate_fn`` that
    batches them (collation runs in the workers).

    Parameters
    ----------
    paths : str, path-like or sequence of them
        Shard files, or directories searched recursively for ``*.hdf5`` /
        ``*.h5`` files (sorted, so every rank sees the same list).
    rank, world_size : int, optional
        Distributed position; default from `torch.distributed` when it is
        initialised, else a single process.
    columns : dict, optional
        Spectral column names by role (see `read_mmu_shard`).
    catalog_columns : list of str, optional
        Catalogue columns to yield; default all.
    flux_unit : `~astropy.units.Unit` or str, optional
        Unit of the stored flux (see `read_mmu_shard`).
    shuffle : bool
        Shuffle the shard order each epoch (the same order on every rank,
        from ``seed`` and the epoch set with `set_epoch`).
    seed : int
        Seed of the shard shuffle.
    block_rows : int
        Rows read from a shard at a time.
    transform : callable, optional
        Called as ``transform(spectrum, row)`` in the worker; its result is
        yielded instead of the pair. Must be picklable (a module-level
        function) if the DataLoader starts workers with ``spawn``.

    Raises
    ------
    FileNotFoundError
        If a path does not exist or no shard is found.
    TypeError
        If ``paths`` are not paths (or are a set, whose order differs
        between processes), ``columns`` is not a dict of names,
        ``catalog_columns`` not a list of names, ``flux_unit`` a number or
        ``transform`` not callable.
    ValueError
        If ``rank`` / ``world_size`` are not integers with
        ``0 <= rank < world_size`` (or only one is given), ``shuffle`` is
        not a bool, ``seed`` not a non-negative integer or ``block_rows``
        not a positive integer.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from specutils import Spectrum
    >>> from spectok.datasets import MMUSpectra, write_mmu_shard
    >>> folder = tempfile.mkdtemp()
    >>> s = Spectrum(spectral_axis=np.linspace(4000, 5000, 50) * u.AA,
    ...              flux=np.ones(50) * u.Unit("erg/(s cm2 AA)"))
    >>> for k in range(2):
    ...     write_mmu_shard(os.path.join(folder, f"{k}.hdf5"), [s, s],
    ...                     {"object_id": [f"{k}-0", f"{k}-1"]})
    >>> [row["object_id"] for _, row in MMUSpectra(folder)]
    ['0-0', '0-1', '1-0', '1-1']
    >>> [row["object_id"] for _, row in MMUSpectra(folder, rank=1, world_size=2)]
    ['1-0', '1-1']
    """

    def __init__(self, paths, *, rank=None, world_size=None, columns=None, catalog_columns=None,
                 flux_unit=None, shuffle=False, seed=0, block_rows=_BLOCK_ROWS, transform=None):
        super().__init__()
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        elif isinstance(paths, (bytes, Mapping, Set)) or not isinstance(paths, Iterable):
            # a set's order differs between processes, so ranks would split different lists
            raise TypeError(f"paths must be a path or a sequence of paths, got {paths!r}")
        paths = list(paths)
        files = []
        for p in paths:
            _check_path(p, "each entry of paths")
            p = Path(p)
            if p.is_dir():
                found = sorted(q for q in p.rglob("*") if q.suffix in (".hdf5", ".h5"))
                files.extend(found)
            elif p.exists():
                files.append(p)
            else:
                raise FileNotFoundError(f"no such shard or directory: {p}")
        if not files:
            raise FileNotFoundError(f"no .hdf5/.h5 shards found in {[str(p) for p in paths]}")
        self.paths = [str(f) for f in files]
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither")
        if rank is not None and not (is_integer(rank) and is_integer(world_size)
                                     and 0 <= rank < world_size):  # 2.7 was 2, True 1, "1" 1
            raise ValueError(f"need integers 0 <= rank < world_size, got rank={rank!r}, "
                             f"world_size={world_size!r}")
        self.rank = None if rank is None else int(rank)
        self.world_size = None if world_size is None else int(world_size)
        self.columns = _columns(columns)
        self.catalog_columns = _catalog_columns(catalog_columns)
        _check_flux_unit(flux_unit)
        self.flux_unit = flux_unit
        check_bool(shuffle, "shuffle")  # "no" would shuffle
        self.shuffle = bool(shuffle)
        if not is_integer(seed) or seed < 0:  # -1 failed in numpy at the first epoch
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        if not is_integer(block_rows) or block_rows < 1:
            raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
        self.block_rows = int(block_rows)
        if transform is not None and not callable(transform):
            raise TypeError("transform must be callable")
        self.transform = transform
        self.epoch = 0

    def set_epoch(self, epoch):
        """Set the epoch that seeds the shard shuffle (call it on every rank).

        Parameters
        ----------
        epoch : int
            The epoch number.

        Returns
        -------
        None

        Raises
        ------
        TypeError
            If ``epoch`` is not an integer (a bool is refused).
        ValueError
            If ``epoch`` is negative.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> import astropy.units as u
        >>> from specutils import Spectrum
        >>> from spectok.datasets import MMUSpectra, write_mmu_shard
        >>> path = os.path.join(tempfile.mkdtemp(), "s.hdf5")
        >>> write_mmu_shard(path, [Spectrum(spectral_axis=[1, 2] * u.AA, flux=[1, 1] * u.Jy)])
        >>> data = MMUSpectra(path, shuffle=True)
        >>> data.set_epoch(3); data.epoch
        3
        """
        if not is_integer(epoch):
            raise TypeError(f"epoch must be an integer, got {epoch!r}")
        if epoch < 0:  # it failed in numpy at the next iteration
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self.epoch = int(epoch)

    def shards_for(self, rank, world_size, worker=0, num_workers=1):
        """The shards one worker of one rank reads, in order.

        Parameters
        ----------
        rank, world_size : int
            Distributed position.
        worker, num_workers : int
            DataLoader worker position within the rank.

        Returns
        -------
        list of str
            Shard paths.

        Raises
        ------
        ValueError
            If a position is not an integer or is out of range.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> import astropy.units as u
        >>> from specutils import Spectrum
        >>> from spectok.datasets import MMUSpectra, write_mmu_shard
        >>> folder = tempfile.mkdtemp()
        >>> for k in range(4):
        ...     write_mmu_shard(os.path.join(folder, f"{k}.hdf5"),
        ...                     [Spectrum(spectral_axis=[1, 2] * u.AA, flux=[1, 1] * u.Jy)])
        >>> [os.path.basename(p) for p in MMUSpectra(folder).shards_for(1, 2, 0, 2)]
        ['2.hdf5']
        """
        position = (rank, world_size, worker, num_workers)
        if not (all(map(is_integer, position))
                and 0 <= rank < world_size and 0 <= worker < num_workers):
            raise ValueError(f"bad position rank={rank!r}/{world_size!r}, "
                             f"worker={worker!r}/{num_workers!r}: need integers with "
                             "0 <= rank < world_size and 0 <= worker < num_workers")
        order = list(self.paths)
        if self.shuffle:
            perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(order))
            order = [order[i] for i in perm]
        total = world_size * num_workers
        slot = rank * num_workers + worker
        return order[slot::total]

    def __iter__(self):
        from torch.utils.data import get_worker_info

        if self.rank is None:
            rank, world_size = _distributed_rank()
        else:
            rank, world_size = self.rank, self.world_size
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        for path in self.shards_for(rank, world_size, worker, num_workers):
            items = _iter_shard(path, self.columns, self.flux_unit, self.catalog_columns,
                                self.block_rows)
            if self.transform is None:
                yield from items
            else:
                for spectrum, row in items:
                    yield self.transform(spectrum, row)


def _inverse_variance(uncertainty):
    """Inverse variance array of an NDUncertainty (0 where it is infinite or undefined)."""
    from astropy.nddata import StdDevUncertainty, VarianceUncertainty

    array = np.asarray(uncertainty.array, dtype=float)
    if isinstance(uncertainty, InverseVariance):
        ivar = array
    elif isinstance(uncertainty, (StdDevUncertainty, VarianceUncertainty)):
        power = 2 if isinstance(uncertainty, StdDevUncertainty) else 1
        with np.errstate(divide="ignore", invalid="ignore"):
            ivar = np.where(array > 0, 1.0 / array**power, 0.0)
    else:
        raise TypeError(f"cannot turn a {type(uncertainty).__name__} into an inverse variance")
    return np.where(np.isfinite(ivar) & (ivar > 0), ivar, 0.0)


def _spectrum_columns(spectrum):
    """(λ Å vacuum, flux, ivar, mask, lsf) arrays for one Spectrum (arms concatenated)."""
    from specutils import SpectrumList

    arms = list(spectrum) if isinstance(spectrum, SpectrumList) else [spectrum]
    out = []
    for s in arms:
        if s.flux.ndim != 1:
            raise ValueError(f"write_mmu_shard takes 1-D spectra, got flux shape {s.flux.shape}")
        _, _, lam = wavelength_grid(s.spectral_axis, s.meta.get("medium", "vacuum"),
                                    label="write_mmu_shard: spectral axis")
        # per-pixel factor to the canonical unit (f_ν → f_λ depends on λ); ivar scales by 1/its²
        factor, unit = canonical_flux(np.ones(lam.size) * s.flux.unit, lam, "write_mmu_shard")
        flux = np.asarray(s.flux.value, dtype=float) * factor
        ivar = np.ones(lam.size)
        if s.uncertainty is not None:
            ivar = _inverse_variance(s.uncertainty) / factor**2
        mask = np.zeros(lam.size, bool) if s.mask is None else np.asarray(s.mask, bool).copy()
        mask |= ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar <= 0)
        lsf = s.meta.get("lsf_sigma", s.meta.get("mmu_lsf_sigma"))
        if isinstance(lsf, u.Quantity):   # a width: 2 GHz is no number of Å
            try:
                lsf = lsf.to_value(u.AA)
            except u.UnitConversionError:
                raise ValueError(f"write_mmu_shard: meta['lsf_sigma'] must be a length (a "
                                 f"line-spread σ), got unit {lsf.unit}") from None
        if lsf is None:
            lsf = np.zeros(lam.size)
        lsf = np.broadcast_to(np.asarray(lsf, dtype=float), lam.shape)
        order = np.argsort(lam) if lam.size > 1 and lam[0] > lam[-1] else slice(None)
        out.append((lam[order], flux[order], ivar[order], mask[order], lsf[order], unit))
    units = {o[5] for o in out}
    if len(units) > 1:
        raise ValueError(f"arms with different flux units {sorted(map(str, units))}")
    cols = [np.concatenate([o[k] for o in out]) for k in range(5)]
    return (*cols, out[0][5])


def write_mmu_shard(path, spectra, catalog=None, *, compression=None):
    """Write spectra and catalogue columns as one MMU-layout HDF5 shard.

    Spectra are padded to the longest one (wavelength 0, ivar 0, mask True,
    flux 0, lsf_sigma 0), converted to vacuum Å and, for flux densities,
    to erg s⁻¹ cm⁻² Å⁻¹ (ivar scaled alike); the flux dataset's ``unit``
    attribute records the unit. Arms of a `~specutils.SpectrumList` are
    concatenated as MMU does for DESI. ``lsf_sigma`` comes from
    ``meta["lsf_sigma"]`` (Å) when present, else 0.

    Parameters
    ----------
    path : str or path-like
        Output file (overwritten).
    spectra : sequence of `~specutils.Spectrum` or `~specutils.SpectrumList`
        One per object.
    catalog : `~astropy.table.Table` or dict of array-like, optional
        Catalogue columns, one row per spectrum (e.g. ``object_id``, ``Z``).
        Strings are stored as UTF-8 bytes.
    compression : str, optional
        h5py compression filter, e.g. ``"gzip"``.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        If ``path`` is not a path, ``spectra`` is not a sequence of spectra
        (one `~specutils.Spectrum` or `~specutils.SpectrumList`, a dict or a
        set is refused), or ``catalog`` is not a table or dict of columns
        named by strings.
    FileNotFoundError, NotADirectoryError, PermissionError
        If the folder ``path`` goes in does not exist or cannot be written.
    IsADirectoryError
        If ``path`` is a directory.
    ValueError
        If there are no spectra, a column's length differs from the number
        of spectra, a column has missing (masked or None) values, a column
        is named like a spectral column, or the flux units of the spectra
        differ (after f_ν and other flux densities are converted to f_λ).
    spectok.adapter.SpectrumInputError
        A spectral axis the adapter refuses (not monotonic, non-finite,
        an unknown ``meta["medium"]``).
    astropy.units.UnitConversionError
        A flux whose unit is not a flux (see `spectok.adapter.canonical_flux`).

    Examples
    --------
    >>> import os, tempfile
    >>> import h5py
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from specutils import Spectrum
    >>> from spectok.datasets import write_mmu_shard
    >>> s = Spectrum(spectral_axis=np.linspace(4000, 5000, 50) * u.AA,
    ...              flux=np.ones(50) * u.Unit("erg/(s cm2 AA)"))
    >>> path = os.path.join(tempfile.mkdtemp(), "shard.hdf5")
    >>> write_mmu_shard(path, [s, s[:20]], {"object_id": [1, 2], "Z": [0.1, 0.2]})
    >>> with h5py.File(path) as f:
    ...     f["spectrum_flux"].shape, sorted(f)[:3]
    ((2, 50), ['Z', 'object_id', 'spectrum_flux'])
    """
    from specutils import Spectrum, SpectrumList

    _check_path(path, "path")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory; give the shard's file name")
    check_writable_directory(Path(os.path.abspath(path)).parent, f"the folder of {path}")
    # one Spectrum (whose iteration never ends) or SpectrumList (one object's arms) is refused
    spectra = list(check_spectra(spectra, "spectra"))
    h5py = _h5py()
    if not spectra:
        raise ValueError("write_mmu_shard needs at least one spectrum")
    for i, spectrum in enumerate(spectra):
        if not isinstance(spectrum, (Spectrum, SpectrumList)):
            raise TypeError(f"spectra[{i}] must be a Spectrum or SpectrumList, got "
                            f"{type(spectrum).__name__}")
    rows = [_spectrum_columns(s) for s in spectra]
    units = {r[5] for r in rows}
    if len(units) > 1:
        raise ValueError(f"spectra have different flux units {sorted(map(str, units))}")
    unit = rows[0][5]
    n, length = len(rows), max(r[0].size for r in rows)

    def padded(k, fill, dtype):
        out = np.full((n, length), fill, dtype=dtype)
        for i, r in enumerate(rows):
            out[i, :r[k].size] = r[k]
        return out

    data = {
        MMU_COLUMNS["wavelength"]: padded(0, 0.0, np.float32),
        MMU_COLUMNS["flux"]: padded(1, 0.0, np.float32),
        MMU_COLUMNS["ivar"]: padded(2, 0.0, np.float32),
        MMU_COLUMNS["mask"]: padded(3, True, bool),
        MMU_COLUMNS["lsf_sigma"]: padded(4, 0.0, np.float32),
    }
    columns = {}
    if catalog is not None:
        if hasattr(catalog, "colnames"):
            names = catalog.colnames
        elif hasattr(catalog, "keys"):
            names = list(catalog.keys())
        else:  # a string was read letter by letter as column names
            raise TypeError(f"catalog must be a Table or a dict of columns, got "
                            f"{type(catalog).__name__}")
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"catalogue column names must be strings, got {name!r}")
            if name in data:
                raise ValueError(f"catalogue column {name!r} clashes with a spectral column")
            values = np.asarray(catalog[name])
            if values.shape[:1] != (n,):
                raise ValueError(f"catalogue column {name!r} has shape {values.shape}; it needs "
                                 f"{n} rows, one per spectrum")
            if np.ma.is_masked(catalog[name]) or (values.dtype.kind == "O"
                                                  and any(v is None for v in values.flat)):
                # a masked value was written as the number under the mask, None as "None"
                raise ValueError(f"catalogue column {name!r} has missing (masked or None) "
                                 "values, which a shard cannot store; fill them first")
            if values.dtype.kind == "U":
                values = np.char.encode(values, "utf-8")
            elif values.dtype.kind == "O":
                values = np.array([str(v).encode("utf-8") for v in values])
            columns[name] = values

    def write(partial):
        with h5py.File(os.fspath(partial), "w") as f:
            for name, values in {**data, **columns}.items():
                f.create_dataset(name, data=values, compression=compression)
            f[MMU_COLUMNS["flux"]].attrs["unit"] = unit.to_string()
            f[MMU_COLUMNS["wavelength"]].attrs["unit"] = "Angstrom"

    # a shard is complete or absent: a reader may be streaming the folder it goes in
    write_atomically(Path(path), write)
