"""How the time and memory of `spectok.decode` grow with the length of a spectrum.

Run: python benchmarks/decode_scaling.py [--threads N] [--repeats N]

For each length (10,000 to 200,000 pixels, log-uniform from 3,700 to 10,000 Å)
it encodes a synthetic spectrum with many narrow lines with the shipped model,
then times `spectok.decode` on the spectrum's own grid (one query per pixel;
best of ``--repeats`` calls), and records the peak resident memory one call
adds, in a fresh process (Linux with glibc: there allocations above 128 KiB
are mapped and unmapped one by one, so that resident memory follows the live
tensors, and VmHWM is reset through /proc/self/clear_refs before the call).
It prints a table and the log-log slopes of time and memory against length.
Beyond the model's ``full_attention_limit`` patches (32,768 pixels for the
shipped model) the decoder attends locally, so both slopes should be near 1.
"""

import argparse
import ctypes
import multiprocessing
import platform
import time
from concurrent.futures import ProcessPoolExecutor

import astropy.units as u
import numpy as np
import torch

import spectok

LENGTHS = (10_000, 20_000, 50_000, 100_000, 200_000)
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def spectrum(n, seed=0):
    """``(wavelength, flux, sigma)`` of ``n`` pixels: a sloped continuum and 300 lines."""
    rng = np.random.default_rng(seed)
    wave = np.geomspace(3700.0, 10000.0, n)
    flux = 1 + 0.3 * np.sin(wave / 700)
    for centre, depth in zip(rng.uniform(3700, 10000, 300), rng.uniform(0, 0.5, 300)):
        flux -= depth * np.exp(-0.5 * ((wave - centre) / (centre / 20000)) ** 2)
    flux += 0.01 * rng.standard_normal(n)
    return wave * u.AA, flux * u.Jy, np.full(n, 0.01) * u.Jy


def _memory_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


def best_time(model, tokens, wave, repeats):
    """Best wall time (s) of `spectok.decode` on ``wave`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        spectok.decode(tokens, wave, model=model, device="cpu")
        times.append(time.perf_counter() - start)
    return min(times)


def peak_memory(n, threads):
    """Resident memory (MiB) that `spectok.decode` of ``n`` pixels adds at its peak.

    Meant for a fresh process: allocations above 128 KiB are mapped and unmapped
    one by one there, so that resident memory follows the live tensors.
    """
    torch.set_num_threads(threads)
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    model = spectok.get_model(device="cpu")
    wave, flux, sigma = spectrum(n)
    tokens = spectok.encode((wave, flux, sigma), model=model, device="cpu")
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current resident size
    before = _memory_kib("VmRSS:")
    spectok.decode(tokens, wave, model=model, device="cpu")
    return (_memory_kib("VmHWM:") - before) / 1024


def slope(x, y):
    """Least-squares slope of log y against log x."""
    return np.polyfit(np.log(x), np.log(y), 1)[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = spectok.get_model(device="cpu")
    limit = model.config.full_attention_limit
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} torch threads, "
          f"torch {torch.__version__}")
    print(f"model {model.name}: full_attention_limit {limit} patches, "
          f"attention_window {model.config.attention_window}")
    cases = []
    for n in LENGTHS:
        wave, flux, sigma = spectrum(n)
        cases.append((wave, spectok.encode((wave, flux, sigma), model=model, device="cpu")))
    seconds = [best_time(model, tokens, wave, args.repeats) for wave, tokens in cases]
    with ProcessPoolExecutor(1, multiprocessing.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        mebibytes = list(pool.map(peak_memory, LENGTHS, [args.threads] * len(LENGTHS)))

    print(f"{'pixels':>8} {'patches':>8} {'attention':>9} {'time [s]':>9} {'peak [MiB]':>11}")
    for n, (_, tokens), t, m in zip(LENGTHS, cases, seconds, mebibytes):
        print(f"{n:>8} {tokens.n_patches:>8} "
              f"{'global' if tokens.n_patches <= limit else 'local':>9} {t:>9.2f} {m:>11.0f}")
    n, seconds, mebibytes = np.array([LENGTHS, seconds, mebibytes])
    local = np.array([tokens.n_patches > limit for _, tokens in cases])
    print(f"log-log slope, {n[0]:,.0f}-{n[-1]:,.0f} pixels: time {slope(n, seconds):.2f}, "
          f"memory {slope(n, mebibytes):.2f}")
    print(f"log-log slope, local range {n[local][0]:,.0f}-{n[-1]:,.0f} pixels: "
          f"time {slope(n[local], seconds[local]):.2f}, "
          f"memory {slope(n[local], mebibytes[local]):.2f}")


if __name__ == "__main__":
    main()
