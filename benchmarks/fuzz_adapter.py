"""Fuzz the adapter, `spectok.encode`, the file readers and `spectok.datasets.observe` (a long run).

Run: nice -n 10 python benchmarks/fuzz_adapter.py --minutes 10 --report fuzz-report.json

Targets, visited in turn until the time is up (each visit runs
``--examples`` hypothesis examples with fresh random seeds):

* ``spectrum``: random spectrum-like input (tuples, Spectrum, SpectrumList
  of 1-3 arms, bin edges) with random grids (sorted, unsorted, duplicated,
  descending, NaN, negative, tiny steps, huge or tiny values), spectral and
  flux units (sensible and not), dtypes, masks and uncertainty kinds, given
  to `~spectok.adapter.prepare_spectrum` and to `spectok.encode` with a
  tiny random-weight model;
* ``batch``: lists of 1-6 such inputs through ``encode(errors="skip")``;
* ``fits``: mutated FITS files (bit flips, overwritten or inserted bytes,
  truncation, edited header cards) made from the shipped MaNGA spectrum and
  from real SpeX prism files, read with `spectok.catalogue.read_spectrum`
  (auto-identified and with ``tabular-fits``) and with the ``spex-prism``
  reader, then encoded;
* ``mmu``: mutated MMU HDF5 shards (byte mutations and shards written with
  random shapes, dtypes, values and unit attributes) read with
  `spectok.datasets.read_mmu_shard`, then encoded;
* ``observe``: the instrument simulator `spectok.datasets.observe` on
  random spectrum-like input (the ``spectrum`` target's, and inputs on
  2500-26000 Å grids in wavelength, frequency, energy and wavenumber units,
  as tuples of two or three items with ``Masked`` values, Spectrum with
  masks, ``meta["medium"]``, ``meta["lsf_sigma"]`` or
  ``meta["spectral_resolution"]``, and SpectrumLists of 1-3 arms in
  different units), through a random preset of `spectok.datasets.INSTRUMENTS`
  (or an unknown name), with random ``snr`` and ``redshift`` (sensible,
  zero, negative, -1, NaN, infinite, huge, strings), ``rng`` (seeds,
  generators and things that are not), ``noise`` and ``input_resolution``
  ("auto", None, resolving powers, arrays of the right and the wrong
  length, σ Quantities in wavelength and other units, NaN and negative
  values, strings). A result must have, on every arm, finite ascending
  wavelengths, finite flux and finite positive inverse variance on unmasked
  pixels, flux and inverse variance 0 on masked ones, and without noise a
  flux within the range of the input's valid flux (redshifted; to 10 % of
  its largest absolute value, as an LSF whose width changes with
  wavelength conserves flux, not flatness; not checked when the input
  gives its own resolution, whose jumps make larger ripples).

Every call must return a finite result or raise one of the errors its
documentation names (for ``observe``: the types in its Raises section; the
report counts them by type and by the module that raised them, so that
errors raised by numpy or astropy rather than by spectok's own checks can
be read); anything else (another exception, a RuntimeWarning
from unguarded arithmetic, a NaN, an error that does not name the file) is
a failure. Files are read in a child process, so that a reader that hangs
on a corrupt file (inside libhdf5, say) is killed after a minute and
recorded, with the file kept in ``--keep``, instead of stopping the run.
The report lists, per target, the examples run, how they ended, each
failure with the smallest input hypothesis found, and each hang.
"""

import argparse
import contextlib
import gzip
import json
import os
import shutil
import signal
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import astropy.units as u
import h5py
import numpy as np
import torch
from astropy.nddata import (InverseVariance, StdDevUncertainty, UnknownUncertainty,
                            VarianceUncertainty)
from astropy.utils.masked import Masked
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from specutils import Spectrum, SpectrumList

import spectok
from spectok.adapter import FLAM, SpectrumInputError, prepare_spectrum
from spectok.catalogue import read_spectrum
from spectok.datasets import (INSTRUMENTS, ModelArrays, example_spectrum_path, get_instrument,
                              observe, read_mmu_shard, write_mmu_shard)
from spectok.model import CONFIGS, SpectralTokenizer

#: What the adapter and encode may raise (UnitConversionError is a UnitsError).
ADAPTER_ERRORS = (SpectrumInputError, u.UnitsError)
#: The documented errors of each file reader.
READ_SPECTRUM_ERRORS = (OSError,)
SPEX_READER_ERRORS = (ValueError, OSError)
MMU_READER_ERRORS = (OSError, KeyError, ValueError)
#: The errors `spectok.datasets.observe` documents (SpectrumInputError is a ValueError,
#: UnitConversionError a UnitsError).
OBSERVE_ERRORS = (ValueError, TypeError, SpectrumInputError, u.UnitConversionError)

SPECTRAL_UNITS = [u.AA, u.nm, u.um, u.m, u.Hz, u.GHz, u.THz, u.eV, u.keV, u.cm**-1,
                  u.pix, u.s, u.K, u.dimensionless_unscaled]
FLUX_UNITS = [FLAM, u.Jy, u.mJy, u.W / u.m**2 / u.um, u.erg / u.s / u.cm**2 / u.Hz,
              u.ph / u.s / u.cm**2 / u.AA, u.ct, u.ct / u.s, u.electron, u.adu,
              u.dimensionless_unscaled, FLAM / u.sr, u.MJy / u.sr, u.K, u.m, u.ABmag]
SPEX_MEMBERS = ["splat/resources/Spectra/Public/SPEX-PRISM/10001_10443.fits.gz",
                "splat/resources/Spectra/Public/SPEX-PRISM/10002_10782.fits.gz",
                "splat/resources/Spectra/Public/SPEX-PRISM/10003_10830.fits.gz"]

#: Seconds a file may take to be read before the read is counted as a hang.
HANG_SECONDS = 60
COUNTS = {}
FAILURES = []
HANGS = []
HANG_DIR = None
MODEL = None
WORKDIR = None


class Failure(AssertionError):
    """A call ended in a way its documentation does not allow."""


def _count(target, outcome):
    COUNTS.setdefault(target, Counter())[outcome] += 1


@contextlib.contextmanager
def _strict():
    """Inside the code under test: numpy's and astropy's RuntimeWarnings are failures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)
        yield


# -- random spectra ------------------------------------------------------------------------

@st.composite
def values(draw, n, positive=False):
    """n floats: smooth, constant, extreme or special, with special values sprinkled in."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["smooth", "noise", "constant", "extreme", "tiny", "integers",
                                 "zeros", "special"]))
    if kind == "smooth":
        x = 1 + 0.5 * np.sin(np.linspace(0, rng.uniform(1, 100), n))
    elif kind == "noise":
        x = rng.normal(rng.uniform(-2, 5), rng.uniform(0.01, 3), n)
    elif kind == "constant":
        x = np.full(n, draw(st.floats(allow_nan=True, allow_infinity=True)))
    elif kind == "extreme":
        x = rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-320, 308, n)
    elif kind == "tiny":
        x = rng.uniform(0, 1, n) * 10.0 ** draw(st.integers(-320, -280))
    elif kind == "integers":
        x = rng.integers(-5, 1000, n).astype(float)
    elif kind == "zeros":
        x = np.zeros(n)
    else:
        x = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324], n)
    with np.errstate(over="ignore"):  # overflowing to inf is one more special value
        x = x * 10.0 ** draw(st.integers(-30, 30))
    if n and draw(st.booleans()):
        x[rng.integers(0, n, draw(st.integers(0, 10)))] = draw(st.sampled_from(
            [np.nan, np.inf, -np.inf, 0.0, 1e300, -1e300, 1e-310]))
    if positive:
        x = np.abs(x)
    dtype = draw(st.sampled_from([np.float64, np.float64, np.float32, np.float16, np.int32]))
    with np.errstate(all="ignore"):
        return x.astype(dtype) if dtype is not np.int32 else np.nan_to_num(x).clip(
            -2e9, 2e9).astype(dtype)


@st.composite
def grid(draw, n):
    """n spectral-axis values: ascending, descending, log, unsorted, duplicated, broken."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    start = 10.0 ** draw(st.floats(-4, 9))
    kind = draw(st.sampled_from(["linear", "log", "descending", "irregular", "unsorted",
                                 "duplicate", "nan", "negative", "tiny_steps", "random"]))
    if kind in ("linear", "descending", "duplicate", "nan", "negative"):
        x = start * (1 + np.arange(n) * 10.0 ** draw(st.floats(-9, 0)))
    elif kind == "log":
        x = start * np.exp(np.arange(n) * 10.0 ** draw(st.floats(-8, -1)))
    elif kind == "irregular":
        x = start * (1 + np.cumsum(rng.uniform(1e-6, 1e-2, n)))
    elif kind == "unsorted":
        x = start * (1 + rng.permutation(n) * 1e-3)
    elif kind == "tiny_steps":
        x = start * (1 + np.arange(n) * 1e-15)
    else:
        x = rng.normal(0, start, n)
    if kind == "descending":
        x = x[::-1]
    if kind == "duplicate" and n > 2:
        x[n // 2] = x[n // 2 - 1]
    if kind == "nan" and n:
        x[rng.integers(n)] = np.nan
    if kind == "negative" and n:
        x = x - np.median(x)
    return x


@st.composite
def uncertainty(draw, n, flux_unit):
    kind = draw(st.sampled_from(["none", "stddev", "variance", "ivar", "quantity", "unknown",
                                 "array", "stddev_unit", "wrong_length"]))
    if kind == "none":
        return None
    m = n - 1 if kind == "wrong_length" and n else n
    a = draw(values(m, positive=draw(st.booleans())))
    if kind in ("stddev", "wrong_length"):
        return StdDevUncertainty(a)
    if kind == "variance":
        return VarianceUncertainty(a)
    if kind == "ivar":
        return InverseVariance(a)
    if kind == "quantity":
        return a * flux_unit if not isinstance(flux_unit, u.MagUnit) else a * u.mag
    if kind == "unknown":
        return UnknownUncertainty(a)
    if kind == "stddev_unit":
        return StdDevUncertainty(a * draw(st.sampled_from(FLUX_UNITS[:12])))
    return a


@st.composite
def arm(draw, container):
    n = draw(st.one_of(st.integers(0, 40), st.integers(40, 600), st.integers(600, 5000)))
    wave_unit = draw(st.sampled_from(SPECTRAL_UNITS))
    flux_unit = draw(st.sampled_from(FLUX_UNITS))
    wave = draw(grid(n + 1 if draw(st.integers(0, 9)) == 0 else n))  # sometimes bin edges
    flux = draw(values(n))
    error = draw(uncertainty(n, flux_unit))
    if isinstance(flux_unit, u.MagUnit):
        flux_q = u.Magnitude(np.asarray(flux, float), flux_unit)
    else:
        flux_q = flux * flux_unit
    if container == "tuple":
        bare = draw(st.integers(0, 19))
        w = wave if bare == 0 else wave * wave_unit
        f = np.asarray(flux) if bare == 1 else flux_q
        return (w, f) if error is None else (w, f, error)
    mask = draw(st.sampled_from([None, "random", "all", "none"]))
    if mask == "random":
        mask = np.random.default_rng(n).random(n) < draw(st.floats(0, 1))
    elif mask == "all":
        mask = np.ones(n, bool)
    elif mask == "none":
        mask = np.zeros(n, bool)
    if isinstance(error, u.Quantity) or (error is not None and not hasattr(error, "array")):
        error = StdDevUncertainty(np.asarray(error))
    meta = {"id": draw(st.text(max_size=8))} if draw(st.booleans()) else {}
    if draw(st.integers(0, 9)) == 0:
        meta["medium"] = draw(st.sampled_from(["air", "vacuum", "water"]))
    return Spectrum(spectral_axis=wave * wave_unit, flux=flux_q, uncertainty=error, mask=mask,
                    meta=meta)


@st.composite
def spectrum_like(draw):
    container = draw(st.sampled_from(["tuple", "tuple", "spectrum", "list"]))
    try:
        if container == "list":
            return SpectrumList([draw(arm("spectrum")) for _ in range(draw(st.integers(0, 3)))])
        return draw(arm(container))
    except Exception:  # noqa: BLE001 - specutils refused to build the input: not our code
        reject()


# -- targets -------------------------------------------------------------------------------

def _check_prepared(p):
    for wave, flux, sigma, valid in zip(p.wavelength, p.flux, p.sigma, p.valid):
        if not (np.all(np.isfinite(wave)) and np.all(np.diff(wave) > 0) and np.all(wave > 0)):
            raise Failure("prepared wavelengths not finite, positive and ascending")
        if not (np.all(np.isfinite(flux[valid])) and np.all(np.isfinite(sigma[valid]))
                and np.all(sigma[valid] > 0)):
            raise Failure("valid pixel with non-finite flux or non-positive error")
    if not (np.isfinite(p.scale) and p.scale > 0):
        raise Failure(f"flux scale {p.scale}")


def _check_tokens(tokens):
    if not (np.all(np.isfinite(tokens.embedding)) and np.all(np.isfinite(tokens.tokens))):
        raise Failure("non-finite embedding or tokens")


def _encode_one(item, medium, target):
    with _strict():
        try:
            prepared = prepare_spectrum(item, 0, medium, 32)
        except ADAPTER_ERRORS:
            _count(target, "refused (documented error)")
            return
        _check_prepared(prepared)
        try:
            tokens = spectok.encode(item, MODEL, medium=medium)
        except ADAPTER_ERRORS as error:
            raise Failure(f"prepare_spectrum accepted it but encode refused it: {error}") from None
        _check_tokens(tokens)
        _count(target, "encoded")


def fuzz_spectrum(item, medium):
    _encode_one(item, medium, "spectrum")


def fuzz_batch(items, batch_size):
    with _strict():
        result = spectok.encode(items, MODEL, errors="skip", batch_size=batch_size)
    skipped = [index for index, _ in result.skipped]
    if sorted(list(result.indices) + skipped) != list(range(len(items))):
        raise Failure(f"indices {list(result.indices)} and skipped {skipped} do not partition "
                      f"the {len(items)} inputs")
    for tokens in result:
        _check_tokens(tokens)
    _count("batch", f"{len(result)} of {len(items)} encoded")


# -- files ---------------------------------------------------------------------------------

def _fits_bases():
    bases = [("manga", example_spectrum_path().read_bytes(), "tabular-fits")]
    try:
        from spectok.datasets.fetch import read_member

        bases += [(f"spex{k}", gzip.decompress(read_member("splat", member)), "spex-prism")
                  for k, member in enumerate(SPEX_MEMBERS)]
    except Exception as error:  # noqa: BLE001 - no cached splat wheel: fuzz MaNGA only
        print(f"SpeX files unavailable ({error}); fuzzing the MaNGA file only")
    return bases


@st.composite
def mutated(draw, data):
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "card",
                                   "naxis", "zeros"]))
        n = len(data)
        if n == 0:
            break
        at = draw(st.integers(0, n - 1))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=64))
            data[at:at + len(chunk)] = chunk
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 4000))]
        elif op == "truncate":
            del data[at:]
        elif op == "zeros":
            data[at:at + draw(st.integers(1, 3000))] = b"\0" * min(3000, n - at)
        else:  # edit the value of a header card (structure-aware)
            header_cards = [k for k in range(0, min(n, 2880 * 4), 80)
                            if data[k + 8:k + 10] == b"= "]
            if not header_cards:
                continue
            card = draw(st.sampled_from(header_cards))
            if op == "naxis":
                value = str(draw(st.integers(-10, 10**12))).rjust(20).encode()
            else:
                value = draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                     max_size=20)).rjust(20).encode()
            data[card + 10:card + 30] = value
    return bytes(data)


FITS_BASES = []


@st.composite
def fits_case(draw):
    name, data, reader = draw(st.sampled_from(FITS_BASES))
    return name, draw(mutated(data)), reader


def _guarded(target, check, path):
    """Run ``check()`` (which returns [(target, outcome)]) in a child process with a time limit.

    A corrupt file can make a C library (libhdf5) or astropy loop for a very long
    time; in a child such a hang is recorded (with the file) instead of stopping
    the whole run. A `Failure` in the child is raised again here.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the check, send back what happened
        os.close(read_end)
        try:
            message = {"outcomes": check()}
        except Failure as failure:
            message = {"failure": str(failure)}
        except BaseException as error:  # noqa: BLE001 - reported to the parent as a failure
            message = {"failure": f"{type(error).__name__}: {error}"}
        os.write(write_end, json.dumps(message).encode())
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + HANG_SECONDS
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.005)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        kept = HANG_DIR / f"hang-{len(HANGS)}-{path.name}"
        shutil.copy(path, kept)
        HANGS.append({"target": target, "file": str(kept), "seconds": HANG_SECONDS})
        _count(target, f"killed after {HANG_SECONDS} s (hang; file kept)")
        return
    with os.fdopen(read_end, "rb") as pipe:
        message = json.loads(pipe.read() or b'{"failure": "child died without a word"}')
    if "failure" in message:
        raise Failure(message["failure"])
    for name, outcome in message["outcomes"]:
        _count(name, outcome)


def _encode_read(spectrum, target):
    try:
        with _strict():
            tokens = spectok.encode(spectrum, MODEL)
    except ADAPTER_ERRORS:
        return [(target, "read, then refused by the adapter")]
    _check_tokens(tokens)
    return [(target, "read and encoded")]


def _check_fits(path, reader, named_format):
    outcomes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # what the readers say about broken headers
            spectrum = read_spectrum(path, reader if named_format else None)
    except READ_SPECTRUM_ERRORS:
        outcomes.append(("fits", "refused by read_spectrum (OSError)"))
    else:
        outcomes += _encode_read(spectrum, "fits")
    if reader == "spex-prism":  # the registered reader itself, without read_spectrum's net
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                Spectrum.read(path, format="spex-prism")
            except SPEX_READER_ERRORS as error:
                if path.name not in str(error):
                    raise Failure(f"spex-prism error does not name the file: {error!r}") from None
                outcomes.append(("spex-prism reader", "refused (documented error)"))
            else:
                outcomes.append(("spex-prism reader", "read"))
    return outcomes


def fuzz_fits(case, named_format):
    name, data, reader = case
    path = WORKDIR / f"{name}.fits"
    path.write_bytes(data)
    _guarded("fits", lambda: _check_fits(path, reader, named_format), path)


def _shard_bytes(rng):
    spectra = []
    for _ in range(int(rng.integers(1, 4))):
        n = int(rng.integers(2, 300))
        wave = np.sort(rng.uniform(3000, 10000, n))
        spectra.append(Spectrum(spectral_axis=wave * u.AA, flux=rng.normal(1, 0.1, n) * FLAM,
                                uncertainty=InverseVariance(rng.uniform(0, 100, n) * FLAM**-2)))
    path = WORKDIR / "base.hdf5"
    write_mmu_shard(path, spectra, {"object_id": [f"o{k}" for k in range(len(spectra))]})
    return path.read_bytes()


@st.composite
def shard_file(draw):
    """Either a valid shard with mutated bytes, or a shard written with random contents."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        return "bytes", draw(mutated(_shard_bytes(rng)))
    rows, length = draw(st.integers(0, 4)), draw(st.integers(0, 50))
    columns = {}
    for name in ("spectrum_flux", "spectrum_lambda", "spectrum_ivar", "spectrum_mask",
                 "spectrum_lsf_sigma", "object_id"):
        if draw(st.integers(0, 7)) == 0:
            continue  # missing column
        shape = draw(st.sampled_from([(rows, length), (rows,), (rows, length, 2),
                                      (max(rows - 1, 0), length), ()]))
        dtype = draw(st.sampled_from(["f4", "f8", "i4", "bool", "S5"]))
        values_ = rng.normal(5000, 3000, shape) if name == "spectrum_lambda" \
            else draw(values(int(np.prod(shape)))).reshape(shape)
        with np.errstate(all="ignore"):
            columns[name] = np.asarray(values_).astype(dtype)
    unit = draw(st.sampled_from([None, "erg/(s cm2 Angstrom)", "Jy", "1e-17 erg/(s cm2 AA)",
                                 "banana", "K", "", "mag(AB)"]))
    return "columns", (columns, unit)


def fuzz_mmu(case):
    kind, content = case
    path = WORKDIR / "shard.hdf5"
    if kind == "bytes":
        path.write_bytes(content)
    else:
        columns, unit = content
        with h5py.File(path, "w") as f:
            for name, array in columns.items():
                f[name] = array
            if unit is not None and "spectrum_flux" in f:
                f["spectrum_flux"].attrs["unit"] = unit
    _guarded("mmu", lambda: _check_shard(path), path)


def _check_shard(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            rows = read_mmu_shard(path)
        except MMU_READER_ERRORS as error:
            if str(path) not in str(error):
                raise Failure(f"read_mmu_shard error does not name the file: {error!r}") from None
            return [("mmu", f"refused ({type(error).__name__} naming the file)")]
    if not rows:
        return [("mmu", "read, no rows")]
    with _strict():
        result = spectok.encode([spectrum for spectrum, _ in rows], MODEL, errors="skip")
    for tokens in result:
        _check_tokens(tokens)
    return [("mmu", f"read; {len(result)} of {len(rows)} encoded")]


# -- the instrument simulator --------------------------------------------------------------

#: Spectral units for the grids that overlap the presets (3000-25000 Å converted to them).
OBSERVE_SPECTRAL_UNITS = [u.AA, u.AA, u.nm, u.um, u.m, u.Hz, u.THz, u.eV, u.cm**-1]
#: Mostly flux densities, so that most draws get past the unit check.
OBSERVE_FLUX_UNITS = [FLAM, FLAM, 1e-17 * FLAM, u.Jy, u.mJy, u.W / u.m**2 / u.um,
                      u.ph / u.s / u.cm**2 / u.AA, u.ct, u.dimensionless_unscaled, FLAM / u.sr,
                      u.m, u.ABmag]


@st.composite
def observable_grid(draw, n):
    """n wavelengths (Å) inside 2500-26000 Å: linear, log, irregular, with a gap, or broken."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lo, hi = sorted(draw(st.lists(st.floats(2500.0, 26000.0), min_size=2, max_size=2)))
    hi = max(hi, lo * (1 + 1e-7))
    kind = draw(st.sampled_from(["linear", "linear", "linear", "log", "log", "irregular", "gap",
                                 "descending", "duplicate", "unsorted", "nan"]))
    if kind == "log":
        x = np.geomspace(lo, hi, n)
    elif kind == "irregular":
        x = lo + (hi - lo) * np.sort(rng.uniform(0, 1, n))
    elif kind == "gap":
        cut = n // 2
        x = np.concatenate([np.linspace(lo, lo + 0.3 * (hi - lo), cut),
                            np.linspace(lo + 0.7 * (hi - lo), hi, n - cut)])
    else:
        x = np.linspace(lo, hi, n)
    if kind == "descending":
        x = x[::-1]
    elif kind == "duplicate" and n > 2:
        x[n // 2] = x[n // 2 - 1]
    elif kind == "unsorted":
        x = rng.permutation(x)
    elif kind == "nan" and n:
        x[rng.integers(n)] = np.nan
    return x


@st.composite
def observable_flux(draw, wave):
    """A model-like flux (continuum and lines at a random level) or `values`' anything."""
    if draw(st.booleans()):
        return draw(values(wave.size))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    with np.errstate(all="ignore"):
        x = 1 + 0.3 * np.sin(np.nan_to_num(wave) / rng.uniform(10, 1000))
        for centre in rng.uniform(2500, 26000, draw(st.integers(0, 20))):
            x += rng.normal(0, 3) * np.exp(-0.5 * ((wave - centre) / rng.uniform(0.05, 30)) ** 2)
    return x * 10.0 ** draw(st.sampled_from([-17, -17, -15, 0, 3, -200, -300, 150, 250, 300]))


def _resolution_meta(draw, n):
    kind = draw(st.sampled_from(["none", "none", "sigma", "sigma_array", "sigma_km_s", "plain",
                                 "R", "R_array", "R_bad"]))
    if kind == "sigma":
        return {"lsf_sigma": draw(st.sampled_from([0.5, 0.0, 3.0, 1e-300, 1e300])) * u.AA}
    if kind == "sigma_array":
        return {"lsf_sigma": np.full(n, 0.7) * u.AA}
    if kind == "sigma_km_s":
        return {"lsf_sigma": 30.0 * u.km / u.s}
    if kind == "plain":
        return {"lsf_sigma": np.full(n, 0.7)}
    if kind == "R":
        return {"spectral_resolution": draw(st.sampled_from([2000.0, 1e5, 50.0]))}
    if kind == "R_array":
        return {"spectral_resolution": np.full(n, 3000.0)}
    if kind == "R_bad":
        return {"spectral_resolution": draw(st.sampled_from(
            [np.full(max(n - 1, 0), 3000.0), np.full(n, -1.0), np.full(n, np.nan), "high"]))}
    return {}


@st.composite
def observable_arm(draw, container):
    """A spectrum-like input that overlaps the presets, in random units and containers."""
    n = draw(st.one_of(st.integers(0, 40), st.integers(40, 2000), st.integers(2000, 20000)))
    wave = draw(observable_grid(n)) * u.AA
    unit = draw(st.sampled_from(OBSERVE_SPECTRAL_UNITS))
    with np.errstate(all="ignore"):
        wave = wave.to(unit, equivalencies=u.spectral())
    flux_unit = draw(st.sampled_from(OBSERVE_FLUX_UNITS))
    with np.errstate(all="ignore"):
        raw = np.asarray(draw(observable_flux(wave.to_value(u.AA, u.spectral()))), float)
    if isinstance(flux_unit, u.MagUnit):
        flux = u.Magnitude(raw, flux_unit)
    else:
        flux = raw * flux_unit
    mask = draw(st.sampled_from([None, "random", "all", "none"]))
    if mask is not None:
        mask = {"random": np.random.default_rng(n).random(n) < draw(st.floats(0, 1)),
                "all": np.ones(n, bool), "none": np.zeros(n, bool)}[mask]
    if container == "tuple":
        if mask is not None and draw(st.booleans()):
            flux = Masked(flux, mask=mask)
        if draw(st.integers(0, 9)) == 0:
            wave = Masked(wave, mask=np.arange(n) == draw(st.integers(-1, max(n - 1, 0))))
        if draw(st.integers(0, 5)) == 0:
            return wave, flux, 0.1 * abs(flux) if draw(st.booleans()) else \
                StdDevUncertainty(np.full(n, 0.1))
        return wave, flux
    meta = _resolution_meta(draw, n)
    if draw(st.integers(0, 4)) == 0:
        meta["medium"] = draw(st.sampled_from(["air", "vacuum", "AIR", None]))
    return Spectrum(spectral_axis=wave, flux=flux, mask=mask, meta=meta,
                    uncertainty=StdDevUncertainty(np.full(n, 0.1)) if draw(st.booleans())
                    else None)


@st.composite
def observable(draw):
    container = draw(st.sampled_from(["tuple", "tuple", "spectrum", "spectrum", "list"]))
    try:
        if container == "list":
            return SpectrumList([draw(observable_arm("spectrum"))
                                 for _ in range(draw(st.integers(1, 3)))])
        return draw(observable_arm(container))
    except Exception:  # noqa: BLE001 - specutils or astropy refused to build the input
        reject()


def _n_pixels(item):
    if isinstance(item, SpectrumList):
        return np.size(item[0].data) if len(item) else 0
    if isinstance(item, Spectrum):
        return np.size(item.data)
    return np.size(item[1]) if isinstance(item, tuple) and len(item) > 1 else 0


@st.composite
def input_resolution(draw, n):
    kind = draw(st.sampled_from(["auto"] * 6 + [None, None, "number", "array", "wrong_length",
                                               "quantity", "quantity_array", "string", "other"]))
    number = st.sampled_from([2000.0, 50.0, 1e5, 0.0, -100.0, np.nan, np.inf, 1e-300, 5e-324,
                              1e300, 1, True])
    if kind == "auto":
        return "auto"
    if kind is None:
        return None
    if kind == "number":
        return draw(number)
    if kind == "array":
        r = np.full(n, 2000.0)
        if n and draw(st.booleans()):
            r[draw(st.integers(0, n - 1))] = draw(number)
        return r if draw(st.integers(0, 4)) else r.tolist()
    if kind == "wrong_length":
        return draw(st.sampled_from([np.full(max(n - 1, 0), 2000.0), np.full(n + 1, 2000.0),
                                     np.full((2, n), 2000.0), np.array([]), [2000.0, 3000.0]]))
    if kind in ("quantity", "quantity_array"):
        unit = draw(st.sampled_from([u.AA, u.AA, u.nm, u.um, u.km / u.s, u.Hz, u.eV,
                                     u.dimensionless_unscaled, u.pix, u.s]))
        value = draw(st.sampled_from([0.5, 0.0, 2.0, -1.0, np.nan, 1e-300, 1e300, np.inf]))
        if kind == "quantity":
            return value * unit
        length = draw(st.sampled_from([n, n, max(n - 1, 0), n + 3]))
        return np.full(length, value) * unit
    if kind == "string":
        return draw(st.sampled_from(["high", "2000", "", "AUTO", "auto ", "none"]))
    return draw(st.sampled_from([{}, [None], object(), (1, 2, 3), b"auto"]))


#: Generators are made per call: a drawn one would be advanced by the calls before.
RNG_FACTORIES = {"generator": lambda: np.random.default_rng(1),
                 "bitgenerator": lambda: np.random.PCG64(2),
                 "randomstate": lambda: np.random.RandomState(3),
                 "seedsequence": lambda: np.random.SeedSequence(4)}


@st.composite
def observe_case(draw):
    """A spectrum and the arguments of `observe`: (spectrum, instrument, kwargs)."""
    item = draw(spectrum_like() if draw(st.integers(0, 3)) == 0 else observable())

    def sometimes(sensible, anything):  # the sensible choice three times in four
        return draw(sensible if draw(st.integers(0, 3)) else anything)

    presets = st.sampled_from(sorted(INSTRUMENTS))
    instrument = sometimes(presets, st.one_of(presets, st.sampled_from(
        ["SDSS", " desi ", "nope", "", "gaia", None, 7, INSTRUMENTS["galah"]])))
    kwargs = {
        "snr": sometimes(st.floats(1e-2, 1e4), st.sampled_from(
            [20.0, 5, 100.0, 1e-3, 0, -1, -20.0, np.nan, np.inf, -np.inf, 1e300, 1e-300, 5e-324,
             1e10, "20", "high", None, np.float32(3), True])),
        "redshift": sometimes(st.one_of(st.just(0.0), st.floats(-0.99, 20.0)), st.sampled_from(
            [0.0, 0.1, 1.0, 3.0, 10.0, 1e3, 1e6, 1e300, -0.5, -0.9, -0.999999, -1 + 1e-15,
             -1.0, -1.5, -2.0, np.nan, np.inf, -np.inf, "0.1", "z", None, np.float32(0.2),
             1e-300])),
        "rng": sometimes(st.sampled_from([None, 0, 42, "generator"]), st.sampled_from(
            [None, 0, 2**63, -1, 1.5, "seed", [1, 2, 3], *RNG_FACTORIES])),
        "noise": draw(st.booleans()),
        "input_resolution": draw(input_resolution(_n_pixels(item))),
    }
    return item, instrument, kwargs


def _make_rng(rng):
    return RNG_FACTORIES[rng]() if isinstance(rng, str) and rng in RNG_FACTORIES else rng


def _valid_flux_range(item, resolution):
    """Smallest and largest valid input flux, in observe's unit (None if it cannot tell).

    None too when the input has its own resolution: where that jumps (arms of different
    resolution, an odd R in a per-pixel array) the kernel width jumps, and a kernel
    normalised per source pixel makes even a flat spectrum ripple (by ±13 % for arms of
    σ 0.5 and 1.5 Å through SDSS): flux is conserved, flatness is not.
    """
    try:
        model = ModelArrays.from_spectrum(item, resolution)
    except Exception:  # noqa: BLE001 - only a bound for the check; observe succeeded
        return None
    if model.sigma is not None:
        return None
    flux = model.flux[model.good]
    return float(flux.min()), float(flux.max())


def _check_observed(result, inst, kwargs, bounds):
    spectra = [result] if isinstance(result, Spectrum) else list(result)
    if len(spectra) != len(inst.arms):
        raise Failure(f"{len(spectra)} spectra for {len(inst.arms)} arms")
    if all(s.mask.all() for s in spectra):
        raise Failure("every pixel of every arm is masked (observe should have refused it)")
    if bounds is not None and not kwargs["noise"]:
        with np.errstate(all="ignore"):
            z = 1.0 + float(kwargs["redshift"])
            lo, hi = bounds[0] / z, bounds[1] / z
        # Not exact: the LSF is normalised per source pixel (flux is conserved), so where
        # its width changes (the Gaia XP preset) a flat input rises or falls by a few %.
        slack = 0.1 * max(abs(lo), abs(hi))
    for s in spectra:
        wave = s.spectral_axis.to_value(u.AA)
        if not (np.all(np.isfinite(wave)) and np.all(np.diff(wave) > 0)):
            raise Failure(f"arm {s.meta.get('arm')}: wavelengths not finite and ascending")
        if not isinstance(s.uncertainty, InverseVariance):
            raise Failure(f"uncertainty is {type(s.uncertainty).__name__}")
        flux, ivar, mask = s.flux.value, s.uncertainty.array, np.asarray(s.mask, bool)
        good = ~mask
        if not np.all(np.isfinite(flux[good])):
            raise Failure(f"arm {s.meta['arm']}: {np.sum(~np.isfinite(flux[good]))} unmasked "
                          "pixels with non-finite flux")
        if not (np.all(np.isfinite(ivar[good])) and np.all(ivar[good] > 0)):
            raise Failure(f"arm {s.meta['arm']}: unmasked pixels with inverse variance "
                          f"{np.unique(ivar[good][~(np.isfinite(ivar[good]) & (ivar[good] > 0))])}")
        if np.any(ivar[mask] != 0) or np.any(flux[mask] != 0):
            raise Failure(f"arm {s.meta['arm']}: masked pixels with flux or inverse variance "
                          "other than 0")
        if not 0 <= s.meta["resolution_limited"] <= 1:
            raise Failure(f"resolution_limited = {s.meta['resolution_limited']}")
        if bounds is not None and not kwargs["noise"] and good.any():
            if np.any(flux[good] < lo - slack) or np.any(flux[good] > hi + slack):
                raise Failure(f"arm {s.meta['arm']}: noiseless flux {flux[good].min():.6g} to "
                              f"{flux[good].max():.6g} outside the input's valid range "
                              f"{lo:.6g} to {hi:.6g} (redshifted)")


def _raised_in(error):
    """The package whose code raised ``error`` (spectok, numpy, astropy, ...)."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    for package in ("spectok", "numpy", "astropy", "specutils"):
        if f"/{package}/" in frame.filename:
            return package
    return Path(frame.filename).name


def fuzz_observe(case):
    item, instrument, kwargs = case
    kwargs = dict(kwargs, rng=_make_rng(kwargs["rng"]))
    with _strict():
        try:
            result = observe(item, instrument, **kwargs)
        except OBSERVE_ERRORS as error:
            _count("observe", f"refused ({type(error).__name__} from {_raised_in(error)})")
            return
        bounds = _valid_flux_range(item, kwargs["input_resolution"])
    _check_observed(result, get_instrument(instrument), kwargs, bounds)
    _count("observe", "observed")


#: Each target: the check and the strategies of its arguments.
TARGETS = {
    "spectrum": (fuzz_spectrum, (spectrum_like(), st.sampled_from([None, None, "vacuum", "air"]))),
    "batch": (fuzz_batch, (st.lists(spectrum_like(), min_size=1, max_size=6), st.integers(1, 4))),
    "fits": (fuzz_fits, (fits_case(), st.booleans())),
    "mmu": (fuzz_mmu, (shard_file(),)),
    "observe": (fuzz_observe, (observe_case(),)),
}


def _run(name, examples):
    check, strategies = TARGETS[name]
    test = settings(deadline=None, database=None, max_examples=examples,
                    suppress_health_check=list(HealthCheck))(given(*strategies)(check))
    try:
        test()
    except Exception as error:  # noqa: BLE001 - a failure: record it, keep fuzzing the others
        found = list(getattr(error, "exceptions", None) or [error])  # an ExceptionGroup: each
        for failure in found:
            where = traceback.extract_tb(failure.__traceback__)[-3:]
            FAILURES.append({
                "target": name, "error": f"{type(failure).__name__}: {failure}"[:2000],
                "where": [f"{frame.filename}:{frame.lineno} {frame.line}" for frame in where],
                "example": "\n".join(getattr(failure, "__notes__", []))[:3000]})
            print(f"FAILURE in {name}: {type(failure).__name__}: {str(failure)[:300]}",
                  flush=True)


def main():
    global MODEL, WORKDIR, HANG_DIR
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--examples", type=int, default=100,
                        help="hypothesis examples per visit of a target")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--report", help="write the counts and failures here (JSON)")
    parser.add_argument("--keep", default="fuzz-hangs",
                        help="directory for the files that made a reader hang")
    args = parser.parse_args()
    HANG_DIR = Path(args.keep)
    HANG_DIR.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    MODEL = SpectralTokenizer(CONFIGS["tiny"]).eval()
    MODEL.metadata = {"wavelength_range": [3000.0, 30000.0]}
    FITS_BASES.extend(_fits_bases())
    started = time.monotonic()
    visits = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        WORKDIR = Path(tmp)
        while time.monotonic() - started < 60 * args.minutes:
            for name in args.targets:
                _run(name, args.examples)
                visits[name] += 1
                elapsed = time.monotonic() - started
                print(f"{elapsed / 60:6.1f} min  {name:9s} examples so far: "
                      f"{sum(COUNTS.get(name, Counter()).values())}", flush=True)
                if elapsed >= 60 * args.minutes:
                    break
    elapsed = time.monotonic() - started
    report = {
        "command": "python benchmarks/fuzz_adapter.py " + " ".join(
            f"--{k} {' '.join(v) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if v is not None),
        "minutes": round(elapsed / 60, 2),
        "spectok": spectok.__version__, "torch": torch.__version__,
        "examples": {name: sum(c.values()) for name, c in COUNTS.items()},
        "outcomes": {name: dict(c) for name, c in COUNTS.items()},
        "visits": dict(visits),
        "failures": FAILURES,
        "hangs": HANGS,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        Path(args.report).write_text(text + "\n")
    return 1 if FAILURES or HANGS else 0


if __name__ == "__main__":
    raise SystemExit(main())
