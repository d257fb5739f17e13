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
from spectok.benchmarks import diagonal_ranks, format_report, matched_chi2, twin_ranks
from spectok.benchmarks.tasks import STAR_INSTRUMENTS, BenchmarkContext

_PAIRS = [(a, b) for i, a in enumerate(STAR_INSTRUMENTS) for b in STAR_INSTRUMENTS[i + 1:]]


def star_ranks(ctx, n_candidates):
    """{(a, b): {method: ranks of the test stars' twins}} and the numbers of queries."""
    data = ctx.data
    n_test = len(data.star_rows("test"))
    train, _ = data.miles_split(complete=False)
    pca_rows = data.star_rows("train")
    others = np.setdiff1d(train, pca_rows)
    if not n_test <= n_candidates <= n_test + len(others):
        raise ValueError(f"--candidates must be from the {n_test} MILES test stars to "
                         f"{n_test + len(others)}, got {n_candidates}")
    extra_rows = data.subset(others, n_candidates - n_test, salt=23)
    queries = {inst: data.star_views("test", inst) for inst in STAR_INSTRUMENTS}
    candidates = {inst: queries[inst] + data.observe_stars(extra_rows, inst)
                  for inst in STAR_INSTRUMENTS}
    pca_train = [s for inst in STAR_INSTRUMENTS for s in data.star_views("train", inst)]
    features = ctx.features("stars_optical", pca_train,
                            *(candidates[inst] for inst in STAR_INSTRUMENTS), need_train=False)
    ranks = {}
    for a, b in _PAIRS:
        i, j = STAR_INSTRUMENTS.index(a), STAR_INSTRUMENTS.index(b)
        ranks[a, b] = {name: twin_ranks(x[i][:n_test], x[j])
                       for name, (_, x) in features.items()}
        chi2 = matched_chi2(queries[a], candidates[b], b)
        ranks[a, b]["matched_chi2"] = diagonal_ranks(-chi2)
    return ranks, n_test


def galaxy_ranks(ctx, n_candidates):
    """{method: ranks of each SDSS-like galaxy's DESI-like twin}."""
    data = ctx.data
    data.sizes = {**data.sizes, "galaxy_test": n_candidates}
    sdss, desi = (data.galaxies("test", inst).spectra for inst in ("sdss", "desi"))
    features = ctx.features("galaxies", data.galaxy_pca_train(), sdss, desi, need_train=False)
    ranks = {name: twin_ranks(*x) for name, (_, x) in features.items()}
    # as in the benchmark: the sharper DESI view re-observed as SDSS, ranked down a column
    ranks["matched_chi2"] = diagonal_ranks(-matched_chi2(desi, sdss, "sdss").T)
    return ranks


def add_ranks(report, what, ranks, n_candidates):
    """Median rank and top-1 rate of each method, as ``spectok bench`` reports them."""
    n = len(next(iter(ranks.values())))
    report.add("cross_instrument", f"{what}, {n_candidates} candidates: median twin rank",
               {m: float(np.median(r)) for m, r in ranks.items()}, better="lower", n=n)
    report.add("cross_instrument", f"{what}, {n_candidates} candidates: top-1 rate",
               {m: float(np.mean(r == 1)) for m, r in ranks.items()}, better="higher", n=n)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="spectok-small",
                        help="shipped model name or saved model .json (default spectok-small)")
    parser.add_argument("--candidates", type=int, default=500,
                        help="candidates per query (default 500)")
    parser.add_argument("-o", "--output", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    start = time.time()
    model = spectok.load_model(args.model)
    ctx = BenchmarkContext(model, quick=False, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoUncertaintyWarning)
        try:
            stars, n_test = star_ranks(ctx, args.candidates)
        except ValueError as error:
            parser.error(str(error))
        galaxies = galaxy_ranks(ctx, args.candidates)
    report = ctx.report
    for (a, b), ranks in stars.items():
        add_ranks(report, f"MILES stars {a}↔{b}", ranks, args.candidates)
    add_ranks(report, "galaxies sdss↔desi", galaxies, args.candidates)
    report.meta["notes"] = [
        f"`python benchmarks/twin_ranks_500.py --candidates {args.candidates}`: n counts the "
        f"queries. Each of the {n_test} MILES test stars is ranked against its twin and "
        f"{args.candidates - 1} others seen through the other instrument: the other test "
        f"stars and {args.candidates - n_test} stars of the training split (none of those "
        f"flux + PCA fits its components to). Each of "
        f"{args.candidates} held-out simulated galaxies seen as SDSS-like is ranked against "
        f"the {args.candidates} seen as DESI-like."]
    report.meta["seconds"] = {"twin ranks": time.time() - start}
    text = format_report(report)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
