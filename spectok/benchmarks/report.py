"""The benchmark's result: a table of metrics per task, spectok beside its baselines."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

__all__ = ["BenchmarkReport", "format_report", "METHODS"]

#: Report columns, in order: the model under test, the two baselines, the
#: classical template fit (redshift tasks only, `TemplateRedshiftFit`) and the
#: classical χ² at matched resolution (cross-instrument twins only, `matched_chi2`).
METHODS = ("spectok", "untrained", "flux_pca", "template_fit", "matched_chi2")

_METHOD_TITLES = {"spectok": "spectok", "untrained": "untrained (random weights)",
                  "flux_pca": "flux + PCA", "template_fit": "template fit",
                  "matched_chi2": "matched χ²"}


def _empty_table():
    table = Table(names=("task", "metric", "unit", "better", "n") + METHODS,
                  dtype=(str, str, str, str, int) + (float,) * len(METHODS))
    table["better"].description = ("how to read the metric: 'lower', 'higher', or "
                                   "'≈x' for closest to x")
    return table


@dataclass
class BenchmarkReport:
    """Metrics of one benchmark run.

    Attributes
    ----------
    table : `~astropy.table.Table`
        One row per metric: ``task``, ``metric``, ``unit``, ``better``
        (``"lower"``, ``"higher"`` or ``"≈0.68"``-style targets), ``n``
        (test samples) and one float column per method (`METHODS`).
    meta : dict
        Model name, seed, quick flag, tasks, seconds per task and notes
        (paragraphs printed under the table).
    figures : dict
        Figure name → a function of no arguments that draws it and returns a
        `~matplotlib.figure.Figure` (drawn only when asked, by
        `save_figures`).

    Examples
    --------
    Each task adds its metrics, one number per method; a method without a
    number for a metric gets NaN (printed as –):

    >>> from spectok.benchmarks import BenchmarkReport
    >>> report = BenchmarkReport(meta={"model": "demo", "seed": 0, "quick": True})
    >>> report.add("stellar_parameters", "Teff RMSE",
    ...            {"spectok": 80.0, "untrained": 300.0, "flux_pca": 150.0}, unit="K", n=200)
    >>> report.add("galaxy_redshifts", "NMAD",
    ...            {"spectok": 0.004, "flux_pca": 0.01, "template_fit": 0.002}, n=60)
    >>> report.value("stellar_parameters", "Teff RMSE", "flux_pca")
    150.0
    >>> report.value("galaxy_redshifts", "NMAD", "untrained")
    nan
    >>> report.table["task"].tolist(), len(report.rows("galaxy_redshifts"))
    (['stellar_parameters', 'galaxy_redshifts'], 1)

    Printed, it is a markdown table (`format_report`), the best of each row
    in bold:

    >>> print(str(report).splitlines()[-1])
    | galaxy_redshifts | NMAD |  | lower | 60 | 0.004 | – | 0.010 | **0.002** |
    """

    table: Table = field(default_factory=_empty_table)
    meta: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)

    def add(self, task, metric, values, unit="", better="lower", n=0):
        """Append one metric; ``values`` maps method name to number (missing → NaN)."""
        self.table.add_row([task, metric, unit, better, int(n)]
                           + [float(values.get(m, np.nan)) for m in METHODS])

    def add_figure(self, name, draw):
        """Keep a figure: ``draw()`` returns a `~matplotlib.figure.Figure`."""
        self.figures[name] = draw

    def save_figures(self, directory, format="png", dpi=110):
        """Draw every figure and write it to ``directory/NAME.FORMAT``.

        Parameters
        ----------
        directory : str or `~pathlib.Path`
            Created if missing.
        format : str
            Any format matplotlib writes (png, pdf, svg…).
        dpi : int

        Returns
        -------
        list of `~pathlib.Path`
            The files written, in the order the tasks made the figures.

        Examples
        --------
        >>> import tempfile
        >>> from functools import partial
        >>> from spectok.benchmarks import BenchmarkReport
        >>> from spectok.benchmarks.figures import panel_figure
        >>> report = BenchmarkReport()
        >>> report.add_figure("z", partial(panel_figure, [{"title": "demo", "label": "z",
        ...     "truth": [0.1, 0.5, 1.0], "predicted": [0.12, 0.48, 1.1]}], "a demo"))
        >>> [path.name for path in report.save_figures(tempfile.mkdtemp())]
        ['z.png']
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, draw in self.figures.items():
            path = directory / f"{name}.{format}"
            draw().savefig(path, dpi=dpi)
            paths.append(path)
        return paths

    def rows(self, task):
        """The rows of one task, as a `~astropy.table.Table`."""
        return self.table[self.table["task"] == task]

    def value(self, task, metric, method="spectok"):
        """One number of the report.

        Raises
        ------
        KeyError
            No such task and metric.
        """
        match = (self.table["task"] == task) & (self.table["metric"] == metric)
        if not match.any():
            raise KeyError(f"no metric {metric!r} for task {task!r}")
        return float(self.table[method][match][0])

    def to_markdown(self):
        """The report as a markdown table (see `format_report`)."""
        return format_report(self)

    def __str__(self):
        return self.to_markdown()


def _format_value(value):
    if not np.isfinite(value):
        return "–" if np.isnan(value) else ("∞" if value > 0 else "-∞")
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01 or value == 0:
        return f"{value:.3f}" if magnitude < 1 else f"{value:.2f}"
    return f"{value:.2g}"


def _best(row, methods):
    values = np.array([row[m] for m in methods], dtype=float)
    finite = np.isfinite(values)
    if finite.sum() < 2:
        return None
    better = row["better"]
    if better == "lower":
        score = values
    elif better == "higher":
        score = -values
    elif better.startswith("≈"):
        score = np.abs(values - float(better[1:]))
    else:
        return None
    score = np.where(finite, score, np.inf)
    return int(np.argmin(score)) if np.sum(score == score.min()) == 1 else None


def format_report(report):
    """A markdown table of a benchmark report, best value per row in bold.

    Columns of methods with no number in the report are left out.

    Parameters
    ----------
    report : `BenchmarkReport`

    Returns
    -------
    str

    Examples
    --------
    >>> from spectok.benchmarks import BenchmarkReport, format_report
    >>> report = BenchmarkReport(meta={"model": "demo", "seed": 0, "quick": True})
    >>> report.add("stellar_parameters", "Teff RMSE", {"spectok": 80.0, "untrained": 300.0,
    ...            "flux_pca": 150.0}, unit="K", n=200)
    >>> print(format_report(report))  # doctest: +NORMALIZE_WHITESPACE
    spectok benchmark: model demo, seed 0, quick
    <BLANKLINE>
    | task | metric | unit | better | n | spectok | untrained (random weights) | flux + PCA |
    |---|---|---|---|---:|---:|---:|---:|
    | stellar_parameters | Teff RMSE | K | lower | 200 | **80.0** | 300 | 150 |
    """
    meta = report.meta
    mode = "quick" if meta.get("quick") else "full"
    lines = [f"spectok benchmark: model {meta.get('model', '?')}, seed {meta.get('seed', '?')}, "
             f"{mode}", ""]
    # a method with no number in this run (the template fit without redshift tasks) is left out
    methods = [m for m in METHODS if np.isfinite(report.table[m]).any()] or list(METHODS)
    header = ["task", "metric", "unit", "better", "n"] + [_METHOD_TITLES[m] for m in methods]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---|---|---|---|---:|" + "---:|" * len(methods))
    for row in report.table:
        best = _best(row, methods)
        cells = [_format_value(row[m]) for m in methods]
        if best is not None:
            cells[best] = f"**{cells[best]}**"
        lines.append("| " + " | ".join([row["task"], row["metric"], row["unit"], row["better"],
                                         str(row["n"])] + cells) + " |")
    for note in meta.get("notes", ()):
        lines += ["", note]
    heads = meta.get("heads")
    if heads:
        chosen = "; ".join(f"{probe}: " + ", ".join(f"{_METHOD_TITLES[m]} {h}"
                                                    for m, h in by_method.items())
                           for probe, by_method in heads.items())
        lines += ["", f"Heads chosen by cross-validation on the training set: {chosen}."]
    timings = meta.get("seconds")
    if timings:
        total = sum(timings.values())
        lines += ["", "Seconds per task: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
                  + f" (total {total:.0f})."]
    return "\n".join(lines)
