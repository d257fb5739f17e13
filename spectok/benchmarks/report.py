"""The benchmark's result: a table of metrics per task, spectok beside its baselines."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from .._checks import as_number, is_integer

__all__ = ["BenchmarkReport", "format_report", "METHODS"]

#: Report columns, in order: the model under test, the two baselines, the
#: classical template fit (redshift tasks only, `TemplateRedshiftFit`) and the
#: classical χ² at matched resolution (cross-instrument twins only, `matched_chi2`).
METHODS = ("spectok", "untrained", "flux_pca", "template_fit", "matched_chi2")

_METHOD_TITLES = {"spectok": "spectok", "untrained": "untrained (random weights)",
                  "flux_pca": "flux + PCA", "template_fit": "template fit",
                  "matched_chi2": "matched χ²"}

_COLUMNS = ("task", "metric", "unit", "better", "n") + METHODS


def _empty_table():
    table = Table(names=_COLUMNS, dtype=(str, str, str, str, int) + (float,) * len(METHODS))
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

    Raises
    ------
    TypeError
        If ``table`` is not a `~astropy.table.Table`, or ``meta`` or
        ``figures`` not a dict.
    ValueError
        If ``table`` lacks a column of the report.

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

    def __post_init__(self):
        if not isinstance(self.table, Table):
            raise TypeError(f"table must be an astropy Table, got {type(self.table).__name__}")
        missing = [name for name in _COLUMNS if name not in self.table.colnames]
        if missing:   # was a KeyError when printed
            raise ValueError(f"table lacks the report columns {missing}")
        for name in ("meta", "figures"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{name} must be a dict, got {getattr(self, name)!r:.80}")

    def add(self, task, metric, values, unit="", better="lower", n=0):
        """Append one metric; ``values`` maps method name to number (missing → NaN).

        Raises
        ------
        TypeError
            If ``task``, ``metric``, ``unit`` or ``better`` is not a str, or
            ``values`` is not a dict.
        ValueError
            If ``values`` names a method not in `METHODS` or holds something
            other than a number, ``better`` is none of ``"lower"``,
            ``"higher"`` and ``"≈"`` followed by a number, or ``n`` is not a
            non-negative integer.
        """
        for name, text in (("task", task), ("metric", metric), ("unit", unit),
                           ("better", better)):
            if not isinstance(text, str):
                raise TypeError(f"{name} must be a str, got {text!r}")
        if better not in ("lower", "higher") and _target(better) is None:
            # '≈x' was taken, and format_report failed on it
            raise ValueError(f"better must be 'lower', 'higher' or '≈' and a finite number "
                             f"(such as '≈0.68'), got {better!r}")
        if not is_integer(n) or n < 0:   # 2.7 was 2, True 1 and -1 kept
            raise ValueError(f"n must be a non-negative integer (the samples), got {n!r}")
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a dict of method name to number, got {values!r:.80}")
        unknown = [m for m in values if m not in METHODS]
        if unknown:   # its number was dropped
            raise ValueError(f"values names unknown methods {unknown}; the report's methods are "
                             f"{list(METHODS)}")
        self.table.add_row([task, metric, unit, better, int(n)] + [
            as_number(values[m], f"values[{m!r}] must be a number (NaN for none), got "
                                 f"{values[m]!r:.80}") if m in values else np.nan
            for m in METHODS])

    def add_figure(self, name, draw):
        """Keep a figure: ``draw()`` returns a `~matplotlib.figure.Figure`.

        Raises
        ------
        TypeError
            If ``name`` is not a str or ``draw`` cannot be called.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        if not callable(draw):   # was kept, to fail in save_figures
            raise TypeError(f"draw must be a function that returns a Figure, got {draw!r:.80}")
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

        Raises
        ------
        ValueError
            If ``dpi`` is not a positive number.
        TypeError
            If a figure's function returns something other than a Figure.

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
        from matplotlib.figure import Figure

        message = f"dpi must be a positive number, got {dpi!r}"
        if not 0 < as_number(dpi, message) < np.inf:
            raise ValueError(message)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, draw in self.figures.items():
            path = directory / f"{name}.{format}"
            figure = draw()
            if not isinstance(figure, Figure):
                raise TypeError(f"figure {name!r}: its function returned {figure!r:.80}, not a "
                                "matplotlib Figure")
            figure.savefig(path, dpi=dpi)
            paths.append(path)
        return paths

    def rows(self, task):
        """The rows of one task, as a `~astropy.table.Table`.

        Raises
        ------
        KeyError
            No such task in the report.
        """
        match = self.table["task"] == task
        if not match.any():   # was an empty table
            raise KeyError(f"no task {task!r} in the report; it has "
                           f"{list(dict.fromkeys(self.table['task'].tolist()))}")
        return self.table[match]

    def value(self, task, metric, method="spectok"):
        """One number of the report.

        Raises
        ------
        KeyError
            No such task and metric.
        ValueError
            If ``method`` is not one of `METHODS`.
        """
        if method not in METHODS:   # was a bare KeyError
            raise ValueError(f"unknown method {method!r}; the report's methods are "
                             f"{list(METHODS)}")
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


def _target(better):
    """The number x of a ``better`` of ``"≈x"``, or None where it is not one (finite)."""
    try:
        target = float(better[1:]) if better.startswith("≈") else np.nan
    except ValueError:
        return None
    return target if np.isfinite(target) else None


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
    elif _target(better) is not None:
        score = np.abs(values - _target(better))
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

    Raises
    ------
    TypeError
        If ``report`` is not a `BenchmarkReport`.
    ValueError
        If ``report.meta["notes"]`` is a str rather than a list of paragraphs.

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
    if not isinstance(report, BenchmarkReport):
        raise TypeError(f"report must be a BenchmarkReport, got {type(report).__name__}")
    meta = report.meta
    notes = meta.get("notes", ())
    if isinstance(notes, str):   # was printed letter by letter
        raise ValueError(f"meta['notes'] must be a list of paragraphs, got a str: {notes!r:.80}")
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
    for note in notes:
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
