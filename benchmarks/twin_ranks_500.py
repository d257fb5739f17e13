"""Rank of an object's twin among 500 candidates seen through another instrument.

Run: python benchmarks/twin_ranks_500.py [--model NAME_OR_JSON] [--candidates 500]
     [-o benchmarks/twin-ranks-500.md]

``spectok bench`` ranks each MILES test star's twin among the other test
stars (246) and each simulated galaxy's among 60. This script ranks them
among ``--candidates`` (500 by default), with the benchmark's features and
views:

* **MILES stars.** The queries are the benchmark's MILES test stars, each
  seen as SDSS-like, LAMOST-like and Gaia XP-like at S/N 30 (the views of
  ``spectok bench``). The candidates for a query are those stars seen
  through the other instrument and, to make up the number, MILES stars of
  the benchmark's training split (a seeded draw, leaving out the stars
  flux + PCA fits its components to) seen the same way. Those extra
  candidates are stars that pretraining saw (through its own random
  instruments and noise); no query is.
* **Simulated galaxies.** ``--candidates`` held-out galaxies (the
  benchmark's test seed), each seen as SDSS-like and as DESI-like; every
  galaxy is a query.

Each method is the benchmark's: the model's pooled embedding with its tokens
aligned on 5 % wavelength bins, the same with random weights, and flux +
PCA (its components fitted on the stars and galaxies ``spectok bench`` fits
them to, none of them a candidate), compared by cosine similarity; and the
classical matched χ² (`spectok.benchmarks.matched_chi2`). It prints the
median rank and the top-1 rate of each as a benchmark report, and writes it
as Markdown with ``-o``.
"""

import argparse
import time
import warnings

import numpy as np

import spectok
from spectok.adapter import NoUncertaintyWarning
from spectok.benchmarks import BenchmarkContext, format_report
from spectok.benchmarks.tasks import add_twin_ranks, galaxy_twin_ranks, star_twin_ranks


def extra_star_rows(data, n_candidates):
    """Rows of MILES training stars that make the test stars up to ``n_candidates``."""
    n_test = len(data.star_rows("test"))
    train, _ = data.miles_split(complete=False)
    others = np.setdiff1d(train, data.star_rows("train"))   # not flux + PCA's stars
    if not n_test <= n_candidates <= n_test + len(others):
        raise ValueError(f"--candidates must be from the {n_test} MILES test stars to "
                         f"{n_test + len(others)}, got {n_candidates}")
    return data.subset(others, n_candidates - n_test, salt=23)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="spectok-small",
                        help="shipped model name or saved model .json (default spectok-small)")
    parser.add_argument("--candidates", type=int, default=500,
                        help="candidates per query (default 500)")
    parser.add_argument("-o", "--output", help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    start = time.time()
    ctx = BenchmarkContext(spectok.load_model(args.model), quick=False, seed=0)
    try:
        extra_rows = extra_star_rows(ctx.data, args.candidates)
    except ValueError as error:
        parser.error(str(error))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoUncertaintyWarning)
        stars, _ = star_twin_ranks(ctx, extra_rows)
        galaxies = galaxy_twin_ranks(ctx, args.candidates)
    for (a, b), ranks in stars.items():
        add_twin_ranks(ctx.report, f"MILES stars {a}↔{b}, {args.candidates} candidates", ranks)
    add_twin_ranks(ctx.report, f"galaxies sdss↔desi, {args.candidates} candidates", galaxies)
    n_test = len(ctx.data.star_rows("test"))
    ctx.report.meta["notes"] = [
        f"`python benchmarks/twin_ranks_500.py --candidates {args.candidates}`: n counts the "
        f"queries. Each of the {n_test} MILES test stars is ranked against its twin and "
        f"{args.candidates - 1} others seen through the other instrument: the other test "
        f"stars and {len(extra_rows)} stars of the training split (none of those flux + PCA "
        f"fits its components to). Each of {args.candidates} held-out simulated galaxies "
        f"seen as SDSS-like is ranked against the {args.candidates} seen as DESI-like."]
    ctx.report.meta["seconds"] = {"twin ranks": time.time() - start}
    text = format_report(ctx.report)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
