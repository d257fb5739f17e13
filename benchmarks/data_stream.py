"""How fast the pretraining data stream makes batches, per source and for the mixture.

Run (about 5 minutes on one core for the shipped configuration)::

    OMP_NUM_THREADS=1 python benchmarks/data_stream.py spectok/data/spectok-small.toml

Training on the CPU here is limited by the optimiser step only while one
DataLoader worker makes batches faster than the model consumes them; this
script says whether it does. For each source of the configuration it times
``--batches`` batches of that source alone (views simulated through the
source's instruments, at the configuration's batch size), then the same
number of batches of the weighted mixture, and prints a Markdown table of
seconds per batch and pairs of views per second per worker. Building the
sources (loading MILES, SpeX and the templates) is not timed.
"""

import argparse
import dataclasses
import time

import numpy as np
import torch


def seconds_per_batch(config, source_configs, batches, patch_size):
    """Median seconds to make one batch of ``source_configs`` (built first, untimed)."""
    from spectok.training import TrainingStream, build_sources

    config = dataclasses.replace(config, sources=tuple(source_configs))
    stream = TrainingStream(build_sources(config.sources), config, patch_size)
    times = []
    for step in range(batches):
        start = time.perf_counter()
        stream.batch(step)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    from spectok.training import load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="training configuration (TOML)")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per row")
    parser.add_argument("--patch-size", type=int, default=32,
                        help="patch size of the model trained (spectok-small: 32)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = load_config(args.config)

    rows = [(source.name, f"{source.weight:g}", ", ".join(source.instruments),
             seconds_per_batch(config, [source], args.batches, args.patch_size))
            for source in config.sources]
    rows.append(("mixture", "", "", seconds_per_batch(config, config.sources, args.batches,
                                                      args.patch_size)))
    print(f"Data stream of `{args.config}`: batch {config.batch_size} pairs of views, median "
          f"of {args.batches} batches, one process, one thread.\n")
    print("| source | weight | instruments | s/batch | pairs/s per worker |")
    print("|---|---:|---|---:|---:|")
    for name, weight, instruments, seconds in rows:
        print(f"| {name} | {weight} | {instruments} | {seconds:.3f} | "
              f"{config.batch_size / seconds:.1f} |")


if __name__ == "__main__":
    main()
