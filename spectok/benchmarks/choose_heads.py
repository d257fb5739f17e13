"""Measure every probe head on a model's features, to choose the probes' defaults.

Run ``python -m spectok.benchmarks.choose_heads [--quick] [--model NAME]``
after training a model: it fits each probe with each head (``ridge``,
``knn``, ``mlp``, ``kernel``) on the benchmark's training sides, with the
features the benchmark gives them (pooled embedding and tokens aligned on the task's
wavelength bins), and prints test-side errors. The defaults in
`spectok.probes` are the heads that won on the shipped model.
"""

import argparse
import time
import warnings

import numpy as np
from astropy.table import Table

from .._checks import check_names
from ..probes import HEADS, RedshiftProbe, SpectralClassProbe, StellarParameterProbe
from .context import (GALAXY_INSTRUMENTS, _check_run_arguments, _Data,
                      _spectra_and_z, grid_token_bins)
from .features import EmbeddingMethod
from .metrics import nmad

__all__ = ["compare_heads", "COMPARISONS"]


#: What `compare_heads` measures, by name.
COMPARISONS = ("stellar", "spex", "redshift")


def compare_heads(model=None, quick=False, seed=0, heads=HEADS, comparisons=COMPARISONS):
    """Test-side errors of each probe with each head, on one model's benchmark features.

    Parameters
    ----------
    model : `~spectok.model.SpectralTokenizer` or str, optional
        Default: the shipped model.
    quick : bool
        Small subsets (as `run_benchmark` ``quick``).
    seed : int
    heads : sequence of str
        Heads to compare.
    comparisons : sequence of str
        Which of `COMPARISONS` to run: ``"stellar"`` (Teff, log g, [Fe/H]
        of MILES stars), ``"spex"`` (M/L/T classes and subtypes of SpeX
        spectra), ``"redshift"`` (simulated galaxies).

    Returns
    -------
    `~astropy.table.Table`
        Columns ``probe``, ``metric``, ``better``, then one column per head,
        and ``best`` (the winning head).

    Raises
    ------
    TypeError
        ``heads`` or ``comparisons`` is one string rather than a list.
    ValueError
        An unknown, repeated or empty list of heads or comparisons, or
        ``quick`` / ``seed`` as for `run_benchmark` (all checked before any
        work).

    Examples
    --------
    >>> from spectok.benchmarks import compare_heads
    >>> table = compare_heads(quick=True, heads=["ridge", "knn"],
    ...                       comparisons=["stellar"])  # doctest: +REMOTE_DATA
    >>> "best" in table.colnames  # doctest: +REMOTE_DATA
    True
    """
    from ..adapter import NoUncertaintyWarning
    from ..encode import get_model

    comparisons = list(check_names(comparisons, COMPARISONS, "comparisons", "comparisons",
                                   single=False))
    heads = list(check_names(heads, HEADS, "heads", "benchmark heads", single=False))
    _check_run_arguments(quick, seed)
    net = get_model(model, "cpu")
    cache = {}

    def method(grid_name):
        return EmbeddingMethod(net, "spectok", grid_token_bins(grid_name), cache=cache)

    data = _Data(quick, seed)
    rows = []

    def run(probe_name, make, x_train, y_train, x_test, score, metrics,
            predict=lambda probe, x: probe.predict(x)):
        per_head = {}
        for head in heads:
            start = time.perf_counter()
            probe = make(head).fit(x_train, y_train)
            values = score(predict(probe, x_test))
            per_head[head] = dict(zip(metrics, values))
            per_head[head]["fit seconds"] = time.perf_counter() - start
        for metric, better in list(metrics.items()) + [("fit seconds", "lower")]:
            values = [per_head[h][metric] for h in heads]
            best = heads[int(np.argmax(values) if better == "higher" else np.argmin(values))]
            rows.append([probe_name, metric, better] + values + [best])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoUncertaintyWarning)
        if "stellar" in comparisons:
            _stellar(data, method("miles"), run, seed)
        if "spex" in comparisons:
            _spex(data, method("spex"), run, seed)
        if "redshift" in comparisons:
            _redshift(data, method("galaxies"), run, seed)

    table = Table(rows=rows, names=["probe", "metric", "better"] + heads + ["best"])
    table.meta.update({"model": net.name, "quick": quick, "seed": seed})
    return table


def _stellar(data, method, run, seed):
    train, test = data.miles_split()
    train = data.subset(train, data.sizes["miles_train"], 1)
    test = data.subset(test, data.sizes["miles_test"], 2)
    miles = data.miles()
    y = np.column_stack([np.asarray(miles.labels[c].filled(np.nan), dtype=float)
                         for c in ("teff", "logg", "feh")])
    x = method.transform([miles.spectra[i] for i in np.concatenate([train, test])])
    x_train, x_test = x[:len(train)], x[len(train):]
    metrics = {"Teff RMSE (K)": "lower", "log g RMSE": "lower", "[Fe/H] RMSE": "lower"}
    run("StellarParameterProbe (MILES)",
        lambda h: StellarParameterProbe(head=h, random_state=seed), x_train, y[train],
        x_test, lambda p: np.sqrt(np.mean((p - y[test]) ** 2, axis=0)), metrics)


def _spex(data, method, run, seed):
    train, test = data.spex_split()
    spex = data.spex()
    classes = np.asarray(spex.labels["spectral_class"].filled(""))
    spt = np.asarray(spex.labels["spt"].filled(np.nan), dtype=float)
    x = method.transform([spex.spectra[i] for i in np.concatenate([train, test])])
    x_train, x_test = x[:len(train)], x[len(train):]
    run("SpectralClassProbe (SpeX M/L/T)",
        lambda h: SpectralClassProbe(head=h, random_state=seed), x_train, classes[train],
        x_test, lambda p: [np.mean(p == classes[test])], {"accuracy": "higher"})
    # the benchmark's subtypes: each source's median type from a classifier over them
    run("SpectralClassProbe (SpeX subtype, median type)",
        lambda h: SpectralClassProbe(head=h, calibration_fraction=0, random_state=seed),
        x_train, spt[train], x_test,
        lambda p: [np.mean(np.abs(p - spt[test])), np.mean(np.abs(p - spt[test]) <= 1)],
        {"subtype MAE": "lower", "within ±1 subtype": "higher"},
        predict=lambda probe, x: probe.predict_quantile(x))


def _redshift(data, method, run, seed):
    train_spectra, z_train = _spectra_and_z(data.galaxies("train", i)
                                            for i in GALAXY_INSTRUMENTS)
    test_spectra, z_test = _spectra_and_z(data.galaxies("test", i)
                                          for i in GALAXY_INSTRUMENTS)
    x_train, x_test = method.transform(train_spectra), method.transform(test_spectra)
    run("RedshiftProbe (simulated galaxies)",
        lambda h: RedshiftProbe(head=h, random_state=seed), x_train, z_train, x_test,
        lambda p: [nmad((p - z_test) / (1 + z_test)),
                   np.mean(np.abs(p - z_test) / (1 + z_test) > 0.15)],
        {"σ_NMAD Δz/(1+z)": "lower", "outlier rate": "lower"})


def main(argv=None):
    """Command line: print `compare_heads` as a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="shipped model name or path of a model .json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    table = compare_heads(args.model, quick=args.quick, seed=args.seed)
    for name in HEADS:
        table[name].info.format = ".4g"
    table.pprint_all()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
