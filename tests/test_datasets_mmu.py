"""Tests of spectok.datasets.mmu: MMU-layout HDF5 shards, written and streamed back."""

from collections import Counter

import astropy.units as u
import h5py
import numpy as np
import pytest
from astropy.nddata import InverseVariance, StdDevUncertainty
from astropy.table import Table
from specutils import Spectrum, SpectrumList
from torch.utils.data import DataLoader

import spectok.datasets.mmu as mmu
from spectok.adapter import FLAM, SpectrumInputError, wavelength_grid
from spectok.datasets import MMUSpectra, read_mmu_shard, write_mmu_shard



def _identity(item):
    return item


def _to_arrays(spectrum, row):
    """Spectra cannot be pickled: workers hand back plain arrays."""
    return {"flux": spectrum.flux.value, "wavelength": spectrum.spectral_axis.value,
            "mask": spectrum.mask, **row}


def make_spectrum(rng, n, start=3600.0):
    lam = start * 10 ** (1e-4 * np.arange(n))
    flux = rng.normal(1.0, 0.1, n)
    ivar = rng.uniform(50, 100, n)
    ivar[rng.integers(0, n, 3)] = 0.0  # no data
    mask = np.zeros(n, bool)
    mask[rng.integers(0, n, 2)] = True  # flagged
    return Spectrum(spectral_axis=lam * u.AA, flux=flux * FLAM,
                    uncertainty=InverseVariance(ivar * FLAM**-2), mask=mask,
                    meta={"lsf_sigma": np.full(n, 0.9) * u.AA})


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Three shards of 3, 4 and 5 objects with spectra of different lengths."""
    folder = tmp_path_factory.mktemp("mmu")
    rng = np.random.default_rng(0)
    truth = {}
    paths = []
    for k, n_obj in enumerate((3, 4, 5)):
        spectra, ids, zs = [], [], []
        for j in range(n_obj):
            s = make_spectrum(rng, int(rng.integers(40, 80)))
            oid = f"obj-{k}-{j}"
            spectra.append(s)
            ids.append(oid)
            zs.append(rng.uniform(0, 1))
            truth[oid] = (s, zs[-1])
        catalog = Table({"object_id": ids, "Z": zs, "flag": np.arange(n_obj) % 2 == 0,
                         "mag": rng.normal(20, 1, (n_obj, 3))})
        path = folder / f"healpix={k}" / "001-of-001.hdf5"
        path.parent.mkdir()
        write_mmu_shard(path, spectra, catalog)
        paths.append(path)
    return folder, paths, truth


def test_layout_is_the_mmu_one(shards):
    _, paths, _ = shards
    with h5py.File(paths[2], "r") as f:
        for name in ("spectrum_flux", "spectrum_lambda", "spectrum_ivar", "spectrum_lsf_sigma",
                     "spectrum_mask", "object_id", "Z", "flag", "mag"):
            assert name in f
        assert f["spectrum_flux"].ndim == 2 and f["spectrum_flux"].shape[0] == 5
        assert f["spectrum_flux"].shape == f["spectrum_lambda"].shape
        lam = f["spectrum_lambda"][:]
        assert np.any(lam == 0)  # padded rows
        assert np.all(f["spectrum_mask"][:][lam == 0])
        assert np.all(f["spectrum_ivar"][:][lam == 0] == 0)
        assert u.Unit(f["spectrum_flux"].attrs["unit"]) == FLAM


def test_round_trip_values(shards):
    _, paths, truth = shards
    items = read_mmu_shard(paths[1])
    assert len(items) == 4
    for spectrum, row in items:
        original, z = truth[row["object_id"]]
        assert isinstance(row["object_id"], str)
        assert row["Z"] == pytest.approx(z, rel=1e-12)
        assert isinstance(row["flag"], bool)
        assert row["mag"].shape == (3,)
        n = original.flux.size
        assert spectrum.flux.size == n  # padding dropped
        assert spectrum.flux.unit == FLAM
        np.testing.assert_allclose(spectrum.spectral_axis.value, original.spectral_axis.value,
                                   rtol=1e-6)  # float32 storage
        np.testing.assert_allclose(spectrum.flux.value, original.flux.value, rtol=1e-6)
        ivar0 = original.uncertainty.array
        expected_mask = original.mask | (ivar0 <= 0)
        np.testing.assert_array_equal(spectrum.mask, expected_mask)
        assert isinstance(spectrum.uncertainty, InverseVariance)
        np.testing.assert_allclose(spectrum.uncertainty.array[~expected_mask],
                                   ivar0[~expected_mask], rtol=1e-6)
        assert np.all(spectrum.uncertainty.array[expected_mask] == 0)
        np.testing.assert_allclose(spectrum.meta["mmu_lsf_sigma"], 0.9, rtol=1e-6)
        assert spectrum.meta["object_id"] == row["object_id"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_each_object_read_exactly_once_over_ranks_and_workers(shards, num_workers):
    folder, _, truth = shards
    seen = Counter()
    for rank in range(2):
        data = MMUSpectra(folder, rank=rank, world_size=2, transform=_to_arrays)
        loader = DataLoader(data, batch_size=None, num_workers=num_workers,
                            collate_fn=_identity, multiprocessing_context="fork"
                            if num_workers else None, timeout=60 if num_workers else 0)
        for item in loader:
            seen[item["object_id"]] += 1
            original, _ = truth[item["object_id"]]
            np.testing.assert_allclose(item["flux"], original.flux.value, rtol=1e-6)
    assert set(seen) == set(truth)
    assert all(count == 1 for count in seen.values())


def test_shard_assignment_is_a_partition(shards):
    folder, paths, _ = shards
    data = MMUSpectra(folder, shuffle=True, seed=3)
    for epoch in range(3):
        data.set_epoch(epoch)
        slots = [data.shards_for(r, 2, w, 2) for r in range(2) for w in range(2)]
        flat = [p for slot in slots for p in slot]
        assert sorted(flat) == sorted(str(p) for p in paths)
    with pytest.raises(ValueError, match="bad position"):
        data.shards_for(2, 2)


def test_rank_comes_from_torch_distributed(shards, monkeypatch):
    folder, paths, _ = shards
    monkeypatch.setattr(mmu, "_distributed_rank", lambda: (1, 3))
    ids = [row["object_id"] for _, row in MMUSpectra(folder)]
    assert ids == [f"obj-1-{j}" for j in range(4)]


def test_invalid_pixels_are_masked(tmp_path):
    path = tmp_path / "bad.hdf5"
    lam = np.array([[4000.0, 4001.0, 4002.0, 4003.0, 0.0, 0.0]])
    with h5py.File(path, "w") as f:
        f["spectrum_lambda"] = lam
        f["spectrum_flux"] = np.array([[1.0, np.nan, 1.0, 1.0, 0.0, 0.0]])
        f["spectrum_ivar"] = np.array([[1.0, 1.0, 0.0, -1.0, 0.0, 0.0]])
        f["object_id"] = np.array([7])
    (spectrum, row), = read_mmu_shard(path, flux_unit="1e-17 erg / (s cm2 Angstrom)")
    assert row == {"object_id": 7}
    assert spectrum.flux.size == 4
    np.testing.assert_array_equal(spectrum.mask, [False, True, True, True])
    assert np.all(np.isfinite(spectrum.flux.value))
    assert spectrum.flux.unit == u.Unit("1e-17 erg / (s cm2 Angstrom)")
    assert "mmu_lsf_sigma" not in spectrum.meta


def test_concatenated_arms_become_a_spectrumlist(tmp_path):
    b = np.arange(3600.0, 5800.8, 0.8)
    r = np.arange(5760.0, 7620.8, 0.8)
    lam = np.concatenate([b, r])[None]
    path = tmp_path / "desi.hdf5"
    with h5py.File(path, "w") as f:
        f["spectrum_lambda"] = lam
        f["spectrum_flux"] = np.ones_like(lam)
        f["spectrum_ivar"] = np.ones_like(lam)
    (spectrum, _), = read_mmu_shard(path)
    assert isinstance(spectrum, SpectrumList) and len(spectrum) == 2
    assert spectrum[0].flux.size == b.size and spectrum[1].flux.size == r.size


def test_group_layout_with_configurable_names(tmp_path):
    path = tmp_path / "grouped.hdf5"
    with h5py.File(path, "w") as f:
        g = f.create_group("spectrum")
        g["flux"] = np.ones((2, 5))
        g["lambda"] = np.tile(np.arange(5000.0, 5005.0), (2, 1))
        g["ivar"] = np.ones((2, 5))
        g["mask"] = np.zeros((2, 5), bool)
        f["object_id"] = np.array([b"a", b"b"])
    columns = {"flux": "spectrum/flux", "wavelength": "spectrum/lambda",
               "ivar": "spectrum/ivar", "mask": "spectrum/mask"}
    ids = [row["object_id"] for _, row in MMUSpectra(path, columns=columns)]
    assert ids == ["a", "b"]
    with pytest.raises(ValueError, match="unknown column roles"):
        MMUSpectra(path, columns={"fluxx": "x"})


def test_fnu_and_stddev_are_converted_on_write(tmp_path):
    lam = np.linspace(4000.0, 5000.0, 20) * u.AA
    fnu = np.full(20, 3.0) * u.mJy
    s = Spectrum(spectral_axis=lam, flux=fnu, uncertainty=StdDevUncertainty(np.full(20, 0.3)))
    path = tmp_path / "fnu.hdf5"
    write_mmu_shard(path, [s])
    (back, _), = read_mmu_shard(path)
    expected = fnu.to(FLAM, equivalencies=u.spectral_density(lam))
    np.testing.assert_allclose(back.flux.to_value(FLAM), expected.value, rtol=1e-6)
    snr = back.flux.value * np.sqrt(back.uncertainty.array)
    np.testing.assert_allclose(snr, 10.0, rtol=1e-5)


def test_truncated_file_error_names_the_file(shards, tmp_path):
    _, paths, _ = shards
    data = paths[0].read_bytes()
    broken = tmp_path / "broken.hdf5"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="broken.hdf5"):
        list(MMUSpectra(broken))
    with pytest.raises(OSError, match="broken.hdf5"):
        read_mmu_shard(broken)


def test_missing_columns_and_paths(tmp_path):
    path = tmp_path / "nolambda.hdf5"
    with h5py.File(path, "w") as f:
        f["spectrum_flux"] = np.ones((1, 3))
        f["spectrum_ivar"] = np.ones((1, 3))
    with pytest.raises(KeyError, match="nolambda.hdf5.*spectrum_lambda"):
        read_mmu_shard(path)
    with pytest.raises(FileNotFoundError, match="no such shard"):
        MMUSpectra(tmp_path / "missing.hdf5")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no .hdf5"):
        MMUSpectra(empty)
    with pytest.raises(ValueError, match="both rank and world_size"):
        MMUSpectra(path, rank=0)


def test_catalog_columns_selection_and_write_errors(shards, tmp_path):
    _, paths, _ = shards
    (spectrum, row), *_ = read_mmu_shard(paths[0], catalog_columns=["Z"])
    assert list(row) == ["Z"]
    with pytest.raises(KeyError, match="redshift"):
        read_mmu_shard(paths[0], catalog_columns=["redshift"])
    s = Spectrum(spectral_axis=[1.0, 2.0] * u.AA, flux=[1.0, 1.0] * FLAM)
    with pytest.raises(ValueError, match="rows"):
        write_mmu_shard(tmp_path / "x.hdf5", [s, s], {"object_id": [1]})
    with pytest.raises(ValueError, match="clashes"):
        write_mmu_shard(tmp_path / "x.hdf5", [s], {"spectrum_flux": [1]})
    with pytest.raises(ValueError, match="at least one"):
        write_mmu_shard(tmp_path / "x.hdf5", [])


@pytest.mark.parametrize("flux, meta, error, message", [
    ([1.0, 1.0] * u.m, {}, u.UnitConversionError, r"write_mmu_shard: flux unit m .*not a flux"),
    ([1.0, 1.0] * FLAM, {"medium": "AIR"}, SpectrumInputError, "medium must be"),
])
def test_write_refuses_what_is_not_a_flux_or_a_known_medium(tmp_path, flux, meta, error,
                                                            message):
    s = Spectrum(spectral_axis=[4000.0, 4001.0] * u.AA, flux=flux, meta=meta)
    with pytest.raises(error, match=message):
        write_mmu_shard(tmp_path / "x.hdf5", [s])
    assert not (tmp_path / "x.hdf5").exists()


def test_air_wavelengths_are_stored_in_vacuum(tmp_path):
    air = np.linspace(6000.0, 6100.0, 20) * u.AA
    s = Spectrum(spectral_axis=air, flux=np.ones(20) * FLAM, meta={"medium": "air"})
    write_mmu_shard(tmp_path / "air.hdf5", [s])
    (back, _), = read_mmu_shard(tmp_path / "air.hdf5")
    np.testing.assert_allclose(back.spectral_axis.to_value(u.AA),
                               wavelength_grid(air, "air")[2], rtol=1e-7)  # stored as float32
    assert back.meta["medium"] == "vacuum"


@pytest.mark.parametrize("kwargs, error, message", [
    ({"rank": 2.7, "world_size": 3}, ValueError, r"need integers 0 <= rank < world_size.*2\.7"),
    ({"rank": True, "world_size": 2}, ValueError, "need integers.*rank=True"),
    ({"rank": "1", "world_size": 2}, ValueError, "need integers.*rank='1'"),
    ({"shuffle": "no"}, ValueError, "shuffle must be True or False, got 'no'"),
    ({"seed": 2.7}, ValueError, "seed must be a non-negative integer, got 2.7"),
    ({"seed": -1}, ValueError, "seed must be a non-negative integer, got -1"),
    ({"seed": True}, ValueError, "seed must be a non-negative integer, got True"),
    ({"block_rows": 2.7}, ValueError, "block_rows must be a positive integer, got 2.7"),
    ({"block_rows": True}, ValueError, "block_rows must be a positive integer, got True"),
    ({"block_rows": None}, ValueError, "block_rows must be a positive integer, got None"),
    ({"columns": "flux"}, TypeError, "columns must be a dict of column names by role"),
    ({"columns": {"flux": 5}}, TypeError, r"columns\['flux'\] must be a column name, got 5"),
    ({"catalog_columns": "Z"}, TypeError, "catalog_columns must be a list of column names"),
    ({"catalog_columns": [5]}, TypeError, "catalog_columns must hold column names"),
    ({"flux_unit": 5}, TypeError, "flux_unit must be an astropy unit or a unit string, got 5"),
])
def test_stream_arguments_are_checked_when_made(shards, kwargs, error, message):
    # 2.7 was truncated, True taken as 1, "no" as true, a string read letter by letter,
    # flux_unit=5 taken as a bare scale factor, seed=-1 failed in numpy at the first epoch
    folder, _, _ = shards
    with pytest.raises(error, match=message):
        MMUSpectra(folder, **kwargs)


@pytest.mark.parametrize("paths", [None, 5, b"shard.hdf5", [None]])
def test_stream_paths_must_be_paths(paths):
    with pytest.raises(TypeError, match="paths"):
        MMUSpectra(paths)


def test_stream_paths_must_have_an_order(shards):
    # a set's order follows string hashing, which differs between processes, so two ranks
    # could take different shard lists and read a shard twice or never
    _, paths, _ = shards
    with pytest.raises(TypeError, match="paths must be a path or a sequence of paths"):
        MMUSpectra(set(paths))
    assert MMUSpectra(tuple(paths)).paths == [str(p) for p in paths]


def test_epoch_and_position_must_be_integers_in_range(shards):
    folder, _, _ = shards
    data = MMUSpectra(folder, shuffle=True)
    with pytest.raises(TypeError, match="epoch must be an integer, got True"):
        data.set_epoch(True)
    with pytest.raises(ValueError, match="epoch must be non-negative, got -1"):
        data.set_epoch(-1)  # it failed in numpy at the next iteration
    assert data.epoch == 0
    for position in [(0.5, 2), ("0", 2), (True, 2), (0, 2.0), (0, 2, True, 2), (None, 2)]:
        with pytest.raises(ValueError, match="bad position .*need integers"):
            data.shards_for(*position)


def test_read_names_a_missing_file_a_directory_and_bad_arguments(shards, tmp_path):
    _, paths, _ = shards
    with pytest.raises(FileNotFoundError, match="missing.hdf5: no such HDF5 shard"):
        read_mmu_shard(tmp_path / "missing.hdf5")
    with pytest.raises(IsADirectoryError, match="is a directory, not an HDF5 shard"):
        read_mmu_shard(tmp_path)
    with pytest.raises(TypeError, match="path must be a file name or a path, got None"):
        read_mmu_shard(None)
    with pytest.raises(TypeError, match="catalog_columns must be a list of column names"):
        read_mmu_shard(paths[0], catalog_columns="object_id")
    with pytest.raises(TypeError, match="columns must be a dict"):
        read_mmu_shard(paths[0], columns=["flux"])
    with pytest.raises(TypeError, match="flux_unit must be an astropy unit"):
        read_mmu_shard(paths[0], flux_unit=1e-17)


def test_write_refuses_what_it_cannot_store(tmp_path):
    from astropy.table import MaskedColumn

    s = Spectrum(spectral_axis=[1.0, 2.0] * u.AA, flux=[1.0, 1.0] * FLAM)
    path = tmp_path / "x.hdf5"
    cases = [
        # iterating one Spectrum never ends: this filled memory
        ({"spectra": s}, TypeError, "spectra must be a list of spectra, got one Spectrum"),
        # the arms of one object were written as three objects
        ({"spectra": SpectrumList([s, s])}, TypeError, "got one SpectrumList: put it in a list"),
        ({"spectra": [s, 5]}, TypeError, r"spectra\[1\] must be a Spectrum or SpectrumList"),
        # a width in GHz was converted as a wavelength and written as 1.5e9 Å
        ({"spectra": [Spectrum(spectral_axis=[1.0, 2.0] * u.AA, flux=[1.0, 1.0] * FLAM,
                               meta={"lsf_sigma": 2 * u.GHz})]},
         ValueError, r"meta\['lsf_sigma'\] must be a length"),
        ({"spectra": [s], "catalog": "abc"}, TypeError, "catalog must be a Table or a dict"),
        ({"spectra": [s], "catalog": {5: [1]}}, TypeError, "column names must be strings, got 5"),
        ({"spectra": [s], "catalog": {"a": 5}}, ValueError, r"'a' has shape \(\); it needs 1 rows"),
        ({"spectra": [s], "catalog": {"a": [None]}}, ValueError, "'a' has missing"),
        ({"spectra": [s, s], "catalog": Table({"z": MaskedColumn([0.1, 0.2], mask=[0, 1])})},
         ValueError, "'z' has missing"),  # the masked 0.2 was written as a value
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            write_mmu_shard(path, **kwargs)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        write_mmu_shard(tmp_path, [s])
    with pytest.raises(FileNotFoundError, match="the folder .*no does not exist"):
        write_mmu_shard(tmp_path / "no" / "x.hdf5", [s])
    with pytest.raises(TypeError, match="path must be a file name or a path, got None"):
        write_mmu_shard(None, [s])
    assert list(tmp_path.iterdir()) == []
