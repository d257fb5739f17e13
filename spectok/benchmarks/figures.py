"""The benchmark's figures, drawn from numbers the tasks kept (`BenchmarkReport.figures`).

Each function takes plain arrays and returns a `~matplotlib.figure.Figure`
(not registered with pyplot, so a long benchmark leaks no open figures).
"""

from ..visualization import (plot_confusion_matrix, plot_embedding_map, plot_predicted_vs_true,
                             plot_reconstruction, plot_token_similarity, plot_tokens)

__all__ = ["panel_figure", "embedding_figure", "reconstruction_figure"]


def _figure(n_panels, width=4.2, height=4.0, rows=1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_panels, height * rows), layout="constrained")
    return fig, fig.subplots(rows, n_panels, squeeze=False)


#: Keys of a panel of `panel_figure`: (required, optional), by kind.
_PANEL_KEYS = {"values": ({"title", "label", "truth", "predicted"}, {"interval", "outlier_bound"}),
               "classes": ({"title", "classes", "truth", "predicted"}, set())}


def _check_panel(index, panel):
    """Refuse a panel that is not a dict of the keys of its kind (was a bare KeyError, and a
    misspelt optional key was ignored)."""
    if not isinstance(panel, dict):
        raise TypeError(f"panels[{index}] must be a dict, got {panel!r:.80}")
    required, optional = _PANEL_KEYS["classes" if "classes" in panel else "values"]
    missing = sorted(required - set(panel))
    unknown = sorted(set(panel) - required - optional, key=str)
    problems = ([f"lacks {missing}"] if missing else []) + (
        [f"has unknown keys {unknown}"] if unknown else [])
    if problems:
        raise ValueError(f"panels[{index}] {' and '.join(problems)}; a panel has "
                         f"{sorted(required)} and optionally {sorted(optional)}")


def panel_figure(panels, title):
    """A row of panels: predicted against true values, or confusion matrices.

    Parameters
    ----------
    panels : sequence of dict
        Each has a ``title`` and either ``label`` (the quantity), ``truth``,
        ``predicted`` and optionally ``interval`` ((lower, upper)) and
        ``outlier_bound`` (see `~spectok.visualization.plot_predicted_vs_true`),
        or ``classes`` (display order), ``truth`` and ``predicted`` labels
        (see `~spectok.visualization.plot_confusion_matrix`).
    title : str

    Returns
    -------
    `~matplotlib.figure.Figure`

    Raises
    ------
    TypeError
        If ``panels`` is not a list of dicts.
    ValueError
        If ``panels`` is empty, or a panel lacks a key of its kind or has
        one that is not.

    Examples
    --------
    >>> from spectok.benchmarks.figures import panel_figure
    >>> fig = panel_figure([
    ...     {"title": "redshift", "label": "z", "truth": [0.1, 0.5, 1.0],
    ...      "predicted": [0.12, 0.48, 1.3], "outlier_bound": 0.05},
    ...     {"title": "class", "classes": ["star", "galaxy"], "truth": ["star", "galaxy"],
    ...      "predicted": ["star", "star"]}], "two panels")
    >>> [ax.get_title().splitlines()[0] for ax in fig.axes]
    ['redshift', 'class']
    """
    if not isinstance(panels, (list, tuple)):   # one panel's keys were taken for panels
        raise TypeError(f"panels must be a list of dicts, got {panels!r:.80}")
    if not panels:
        raise ValueError("panels is empty: a figure needs at least one panel")
    for index, panel in enumerate(panels):
        _check_panel(index, panel)
    fig, axes = _figure(len(panels))
    for ax, panel in zip(axes[0], panels):
        if "classes" in panel:
            plot_confusion_matrix(panel["truth"], panel["predicted"], labels=panel["classes"],
                                  ax=ax)
            ax.set_title(f"{panel['title']}\n{ax.get_title()}", fontsize="medium")
        else:
            plot_predicted_vs_true(panel["truth"], panel["predicted"], panel.get("interval"),
                                   ax=ax, label=panel["label"],
                                   outlier_bound=panel.get("outlier_bound"))
            ax.set_title(panel["title"], fontsize="medium")
    fig.suptitle(title)
    return fig


def embedding_figure(embeddings, labels, label, tokens_a, tokens_b, names, title):
    """An embedding map coloured by a label, beside the token similarity of one object's twins.

    Parameters
    ----------
    embeddings : `~numpy.ndarray`, shape (n, d)
    labels : `~numpy.ndarray`, shape (n,)
    label : str
        Name of the label.
    tokens_a, tokens_b : `~spectok.SpectralTokens`
        One object seen through two instruments.
    names : (str, str)
        The two instruments.
    title : str

    Returns
    -------
    `~matplotlib.figure.Figure`
    """
    fig, axes = _figure(2, width=5.0)
    plot_embedding_map(embeddings, labels, ax=axes[0, 0], label=label)
    axes[0, 0].set_title(f"embeddings (PCA), coloured by {label}", fontsize="medium")
    plot_token_similarity(tokens_a, tokens_b, ax=axes[0, 1], labels=names)
    axes[0, 1].set_title(f"one star: {names[0]} vs {names[1]} tokens", fontsize="medium")
    fig.suptitle(title)
    return fig


def reconstruction_figure(examples, model, title):
    """Data, reconstruction and residuals in σ for one spectrum per domain, and its tokens.

    Parameters
    ----------
    examples : sequence of (str, spectrum)
        Domain name and one of its spectra.
    model : `~spectok.model.SpectralTokenizer`
    title : str

    Returns
    -------
    `~matplotlib.figure.Figure`
        One column per domain: the spectrum with its reconstruction and
        masked pixels, the residuals in σ, and the tokens on the patch grid.

    Raises
    ------
    TypeError
        If ``examples`` is not a list.
    ValueError
        If ``examples`` is empty.
    """
    from ..encode import encode

    if not isinstance(examples, (list, tuple)):
        raise TypeError(f"examples must be a list of (domain name, spectrum) pairs, "
                        f"got {examples!r:.80}")
    if not examples:   # was matplotlib's error
        raise ValueError("examples is empty: a figure needs at least one domain")
    fig, axes = _figure(len(examples), width=4.6, height=2.6, rows=3)
    for column, (name, spectrum) in enumerate(examples):
        upper, lower, tokens = axes[:, column]
        plot_reconstruction(spectrum, model, ax=(upper, lower))
        upper.set_title(name, fontsize="medium")
        plot_tokens(encode(spectrum, model=model, progress=False), ax=tokens,
                    colorbar=column == len(examples) - 1)
    fig.suptitle(title)
    return fig
