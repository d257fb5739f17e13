"""Latency of `spectok.encode` on one SDSS-length spectrum with the shipped model.

Run: python benchmarks/encode_latency.py [--threads N] [--repeats N]

Prints the median and 90th percentile wall time of a full call (adapter, model
and result objects) for a 4,600-pixel SDSS-like spectrum observed from a
MILES star, after warm-up, on the CPU.
"""

import argparse
import platform
import time

import numpy as np
import torch

import spectok
from spectok.datasets import load_miles, observe


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    star = load_miles().spectra[0]
    spectrum = observe(star, "sdss", snr=30, rng=0)
    model = spectok.get_model(device="cpu")
    for _ in range(5):
        spectok.encode(spectrum, model=model, device="cpu")
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        spectok.encode(spectrum, model=model, device="cpu")
        times.append(time.perf_counter() - start)
    times = np.array(times) * 1e3
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} torch threads, "
          f"torch {torch.__version__}")
    print(f"model {model.name}, spectrum of {len(spectrum.flux)} pixels")
    print(f"encode latency: median {np.median(times):.1f} ms, "
          f"p90 {np.percentile(times, 90):.1f} ms over {args.repeats} calls")


if __name__ == "__main__":
    main()
