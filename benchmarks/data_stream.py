"""How fast the pretraining data stream makes batches, per source and for the mixture.

Run (about 5 minutes on one core for the shipped configuration)::

    OMP_NUM_THREADS=1 python benchmarks/data_stream.py spectok/data/spectok-small.toml

Training on the CPU here is limited by the optimiser step only while one
DataLoader worker makes batches faster than the model consumes them; this
script says whether it does. For each source of the configuration it times
``--batches`` batches of that source alone (views simulated through the
source's instruments, at the configuration's batch size), then the same
number of batches of the weighted mixture, and prints a Markdown table of
the mean seconds per batch and pairs of views per second per worker.
Building the sources (loading MILES, SpeX and the templates) and one
warm-up batch per row are not timed.
"""

import argparse
import time

import torch


def seconds_per_batch(config, sources, batches):
    """Mean seconds to make one batch from ``sources``, after one untimed batch."""
    from spectok.training import TrainingStream

    stream = TrainingStream(sources, config, config.tokenizer_config().patch_size)
    stream.batch(batches)  # warm-up: caches of the objects drawn
    start = time.perf_counter()
    for step in range(batches):
        stream.batch(step)
    return (time.perf_counter() - start) / batches


def main(argv=None):
    from spectok.training import build_sources, load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="training configuration (TOML)")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per row")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = load_config(args.config)
    sources = build_sources(config.sources)

    rows = [(source.name, f"{source.weight:g}", ", ".join(source.instruments),
             seconds_per_batch(config, [source], args.batches)) for source in sources]
    rows.append(("mixture", "", "", seconds_per_batch(config, sources, args.batches)))
    print(f"Data stream of `{args.config}`: batch {config.batch_size} pairs of views, mean "
          f"of {args.batches} batches, one process, one thread.\n")
    print("| source | weight | instruments | s/batch | pairs/s per worker |")
    print("|---|---:|---|---:|---:|")
    for name, weight, instruments, seconds in rows:
        print(f"| {name} | {weight} | {instruments} | {seconds:.3f} | "
              f"{config.batch_size / seconds:.1f} |")


if __name__ == "__main__":
    main()
