"""Plots for every stage: spectra, tokens, reconstructions, probe results, training.

Every function draws on the `~matplotlib.axes.Axes` it is given (``ax``), or
on a new figure when none is, and returns what it drew on, so plots can be
composed and restyled with matplotlib's object-oriented API::

    fig, (left, right) = plt.subplots(1, 2)
    plot_spectrum(spectrum, ax=left)
    plot_tokens(spectok.encode(spectrum), ax=right)

Spectra can be a `~specutils.Spectrum`, a `~specutils.SpectrumList` (arms
drawn one after the other) or a ``(wavelength, flux[, uncertainty])``
tuple of Quantities; they are drawn in their own units.
"""

from pathlib import Path

import astropy.units as u
import numpy as np

from ._checks import as_number

__all__ = ["plot_spectrum", "plot_tokens", "plot_reconstruction", "plot_predicted_vs_true",
           "plot_confusion_matrix", "plot_token_similarity", "plot_embedding_map",
           "plot_training_log"]

_TRAINING_COLUMNS = ("loss", "reconstruction", "consistency", "anchor", "val_loss",
                     "val_reconstruction", "val_consistency", "val_anchor")


# -- helpers ------------------------------------------------------------------------------

def _new_axes(nrows=1, **kwargs):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, 1, **kwargs)
    return axes


def _check_ax(ax):
    """Refuse an ``ax`` that is neither None nor a matplotlib Axes, naming what it is."""
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (or None for a new figure), got a "
                        f"{type(ax).__name__}: {ax!r:.60}")


def _unit_label(name, unit):
    text = unit.to_string() if unit not in (None, u.dimensionless_unscaled) else ""
    return f"{name} [{text}]" if text else name


def _arms(spectrum):
    """Per arm: (wavelength Quantity, flux Quantity, 1σ array or None, mask array, medium)."""
    from astropy.nddata import StdDevUncertainty
    from specutils import Spectrum, SpectrumList

    if isinstance(spectrum, tuple):
        if len(spectrum) not in (2, 3):
            raise TypeError(f"cannot plot a tuple of {len(spectrum)}: give (wavelength, flux) "
                            "or (wavelength, flux, uncertainty)")
        wave, flux = spectrum[0], spectrum[1]
        sigma = spectrum[2] if len(spectrum) > 2 else None
        wave = np.atleast_1d(u.Quantity(wave))
        flux = np.atleast_1d(u.Quantity(flux))
        if (wave.unit != u.dimensionless_unscaled
                and not wave.unit.is_equivalent(u.AA, equivalencies=u.spectral())):
            raise u.UnitConversionError(f"the wavelength must be a spectral axis (a length, "
                                        f"frequency, energy or wavenumber), got {wave.unit}")
        if wave.shape[0] == flux.shape[0] + 1:  # bin edges
            wave = 0.5 * (wave[1:] + wave[:-1])
        if wave.shape != flux.shape:
            raise ValueError(f"wavelength and flux differ in shape: {wave.shape} and "
                             f"{flux.shape}")
        if sigma is not None:
            sigma = (u.Quantity(sigma).to_value(flux.unit) if hasattr(sigma, "unit")
                     else np.asarray(sigma, dtype=float))
            if sigma.shape != flux.shape:
                raise ValueError(f"the uncertainty must have the shape of the flux, "
                                 f"{flux.shape}; got {sigma.shape}")
        mask = ~np.isfinite(flux.value)
        return [(wave, flux, sigma, mask, "vacuum")]
    if isinstance(spectrum, SpectrumList):
        if not len(spectrum):
            raise ValueError("cannot plot an empty SpectrumList: it has no arms")
        arms = [arm for item in spectrum for arm in _arms(item)]
        unit = arms[0][0].unit
        return [(w.to(unit, u.spectral()), f, s, m, medium) for w, f, s, m, medium in arms]
    if isinstance(spectrum, Spectrum):
        sigma = None
        if spectrum.uncertainty is not None:
            with np.errstate(divide="ignore"):  # zero inverse variance: a dead pixel, σ = inf
                std = spectrum.uncertainty.represent_as(StdDevUncertainty)
            sigma = u.Quantity(std.array, std.unit).to_value(spectrum.flux.unit) \
                if std.unit is not None else np.asarray(std.array, dtype=float)
        mask = (np.zeros(spectrum.flux.shape, bool) if spectrum.mask is None
                else np.asarray(spectrum.mask, bool))
        mask = mask | ~np.isfinite(spectrum.flux.value)
        if sigma is not None:
            mask = mask | ~np.isfinite(sigma) | (sigma <= 0)
        return [(spectrum.spectral_axis.quantity if hasattr(spectrum.spectral_axis, "quantity")
                 else u.Quantity(spectrum.spectral_axis), spectrum.flux, sigma, mask,
                 spectrum.meta.get("medium", "vacuum"))]
    raise TypeError(f"cannot plot a {type(spectrum).__name__}: give a Spectrum, a "
                    "SpectrumList or a (wavelength, flux[, uncertainty]) tuple")


def _check_tokens(tokens):
    """Refuse anything but the `~spectok.SpectralTokens` of one spectrum, naming what it is."""
    from .tokens import SpectralTokens, TokenBatch

    if isinstance(tokens, SpectralTokens):
        return
    hint = (": a TokenBatch holds one per spectrum, plot one of them (e.g. batch[0])"
            if isinstance(tokens, TokenBatch) else "")
    raise TypeError(f"cannot plot a {type(tokens).__name__} as tokens: give the SpectralTokens "
                    f"of one spectrum (from spectok.encode){hint}")


def _check_paired(y_true, y_pred):
    """Refuse ``y_true`` and ``y_pred`` unless both are 1-D and of one length."""
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if np.ndim(values) != 1:
            raise ValueError(f"{name} must be 1-D (one value per object), got shape "
                             f"{np.shape(values)}: plot one target at a time (e.g. y[:, 0])")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred differ in length: {len(y_true)} and {len(y_pred)}")


def _runs(mask):
    """(start, stop) index pairs of the runs of True in ``mask``."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(int)))
    return list(zip(edges[::2], edges[1::2]))


def _shade_masked(ax, wave, mask, **kwargs):
    if not np.any(mask):
        return
    half = np.gradient(wave) / 2 if len(wave) > 1 else np.array([0.0])
    style = {"color": "0.85", "alpha": 0.7, "lw": 0, "zorder": 0}
    style.update(kwargs)
    label = style.pop("label", "masked")
    for start, stop in _runs(mask):
        ax.axvspan(wave[start] - half[start], wave[stop - 1] + half[stop - 1], label=label,
                   **style)
        label = None


def _render(spectrum, model):
    """Encode ``spectrum`` and decode it on each arm's own grid."""
    from .encode import decode, encode, get_model

    net = get_model(model)
    tokens = encode(spectrum, model=net)
    return tokens, [decode(tokens, wave, model=net, medium=medium)
                    for wave, *_, medium in _arms(spectrum)]


# -- spectra ------------------------------------------------------------------------------

def plot_spectrum(spectrum, ax=None, *, reconstruction=None, model=None, show_uncertainty=True,
                  show_mask=True, label=None, color=None, **kwargs):
    """Plot a spectrum, its uncertainty, its masked pixels and optionally a reconstruction.

    Parameters
    ----------
    spectrum : `~specutils.Spectrum`, `~specutils.SpectrumList` or tuple
        The spectrum (arms of a SpectrumList are drawn in turn).
    ax : `~matplotlib.axes.Axes`, optional
        Where to draw (default: a new figure).
    reconstruction : `~specutils.Spectrum`, list of Spectrum, or True, optional
        A spectrum to overlay (e.g. from `spectok.decode`), one per arm, or
        `True` to encode ``spectrum`` with ``model`` and decode it on its
        own grid.
    model : `~spectok.model.SpectralTokenizer` or str, optional
        The model for ``reconstruction=True`` (default: the shipped one).
    show_uncertainty : bool
        Shade ±1σ around the flux.
    show_mask : bool
        Shade masked (unusable) pixels in grey; they are not drawn in the line.
    label : str, optional
        Legend label of the flux (default ``meta["id"]`` or "data").
    color : color, optional
    **kwargs
        Passed to `~matplotlib.axes.Axes.plot` for the flux line.

    Returns
    -------
    `~matplotlib.axes.Axes`

    Raises
    ------
    TypeError
        ``spectrum`` is not a spectrum, or ``ax`` is not an Axes.
    ValueError
        A tuple whose wavelength, flux and uncertainty differ in shape, or
        an empty SpectrumList.
    astropy.units.UnitConversionError
        A tuple whose wavelength has a unit that is not spectral.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import spectok
    >>> from spectok.visualization import plot_spectrum
    >>> ax = plot_spectrum(spectok.datasets.example_spectrum())
    >>> ax.get_xlabel()
    'wavelength [Angstrom]'
    """
    _check_ax(ax)
    arms = _arms(spectrum)
    ax = _new_axes() if ax is None else ax
    meta = getattr(spectrum, "meta", None) or {}
    label = label if label is not None else str(meta.get("id", "data"))
    line = None
    for k, (wave, flux, sigma, mask, _) in enumerate(arms):
        w = wave.value
        f = np.where(mask, np.nan, flux.value)
        style = {"lw": 0.8, "color": color if color is not None else
                 (line.get_color() if line is not None else None)}
        style.update(kwargs)
        (line,) = ax.plot(w, f, label=label if k == 0 else None, **style)
        if show_uncertainty and sigma is not None:
            s = np.where(mask, np.nan, sigma)
            ax.fill_between(w, f - s, f + s, color=line.get_color(), alpha=0.25, lw=0,
                            label="±1σ" if k == 0 else None)
        if show_mask:
            _shade_masked(ax, w, mask, label="masked" if k == 0 else None)
    if reconstruction is not None and reconstruction is not False:
        if reconstruction is True:
            _, reconstruction = _render(spectrum, model)
        parts = (list(reconstruction) if isinstance(reconstruction, (list, tuple))
                 else _iter_spectra(reconstruction))
        for k, part in enumerate(parts):
            for wave, flux, *_ in _arms(part):
                ax.plot(wave.to_value(arms[0][0].unit, u.spectral()),
                        flux.to_value(arms[0][1].unit, u.spectral_density(wave)),
                        lw=0.8, color="C3", label="reconstruction" if k == 0 else None)
    ax.set_xlabel(_unit_label("wavelength", arms[0][0].unit))
    ax.set_ylabel(_unit_label("flux", arms[0][1].unit))
    ax.legend(loc="best", fontsize="small")
    return ax


def _iter_spectra(spectrum):
    from specutils import SpectrumList

    return list(spectrum) if isinstance(spectrum, SpectrumList) else [spectrum]


def plot_reconstruction(spectrum, model=None, *, ax=None, show_mask=True):
    """Compare a spectrum with its spectok reconstruction: data, model, residuals / σ.

    The spectrum is encoded and decoded (`spectok.encode`, `spectok.decode`)
    on its own pixels; the lower panel shows (data - model) / σ with σ the
    data errors, and the reduced χ² over the usable pixels.

    Parameters
    ----------
    spectrum : `~specutils.Spectrum`, `~specutils.SpectrumList` or tuple
    model : `~spectok.model.SpectralTokenizer` or str, optional
        Default: the shipped model.
    ax : sequence of two `~matplotlib.axes.Axes`, optional
        Upper (spectra) and lower (residuals) panels; default: a new figure.
    show_mask : bool
        Shade masked pixels.

    Returns
    -------
    (upper, lower) : tuple of `~matplotlib.axes.Axes`

    Raises
    ------
    TypeError
        ``spectrum`` is not a spectrum, or ``ax`` holds something other than
        Axes.
    ValueError
        If ``ax`` is not two Axes, a tuple's wavelength, flux and
        uncertainty differ in shape, or ``spectrum`` is an empty
        SpectrumList.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import spectok
    >>> from spectok.visualization import plot_reconstruction
    >>> upper, lower = plot_reconstruction(spectok.datasets.example_spectrum())
    >>> lower.get_ylabel()
    '(data − model) / σ'
    """
    if ax is not None:
        from matplotlib.axes import Axes

        panels = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if not all(isinstance(panel, Axes) for panel in panels):
            raise TypeError(f"ax must be two matplotlib Axes, the spectra panel and the "
                            f"residual panel (or None for a new figure); got {ax!r:.80}")
        if len(panels) != 2:
            raise ValueError(f"ax must be two Axes, the spectra panel and the residual panel; "
                             f"got {len(panels)}")
    arms = _arms(spectrum)
    if ax is None:
        upper, lower = _new_axes(2, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    else:
        upper, lower = panels
    _, rendered = _render(spectrum, model)
    plot_spectrum(spectrum, ax=upper, reconstruction=rendered, show_mask=show_mask)
    chi2, n = 0.0, 0
    for (wave, flux, sigma, mask, _), model_spectrum in zip(arms, rendered):
        model_flux = model_spectrum.flux.to_value(flux.unit, u.spectral_density(wave))
        if sigma is None:
            sigma = np.full(flux.shape, np.nanstd(flux.value - model_flux))
        good = ~mask & np.isfinite(model_flux)
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = np.where(good, (flux.value - model_flux) / sigma, np.nan)
        lower.plot(wave.value, pull, lw=0.6, color="0.3")
        if show_mask:
            _shade_masked(lower, wave.value, mask, label=None)
        chi2 += float(np.nansum(pull ** 2))
        n += int(np.sum(np.isfinite(pull)))
    for level in (-1, 1):
        lower.axhline(level, color="C0", lw=0.6, ls=":")
    lower.axhline(0, color="C0", lw=0.6)
    lower.set_ylabel("(data − model) / σ")
    lower.set_xlabel(upper.get_xlabel())
    upper.set_xlabel("")
    if n:
        lower.text(0.01, 0.95, f"χ²_ν = {chi2 / n:.2f} over {n} pixels", transform=lower.transAxes,
                   va="top", fontsize="small")
    return upper, lower


# -- tokens ------------------------------------------------------------------------------

def plot_tokens(tokens, ax=None, *, spectrum=None, cmap="RdBu_r", show_edges=True,
                colorbar=True):
    """Heatmap of a spectrum's tokens along wavelength, one column per patch.

    Parameters
    ----------
    tokens : `~spectok.SpectralTokens`
        The output of `spectok.encode` for one spectrum.
    ax : `~matplotlib.axes.Axes`, optional
    spectrum : spectrum-like, optional
        Overlaid (on a twin y axis) to show which features each patch covers.
    cmap : str or `~matplotlib.colors.Colormap`
        Diverging map, centred on 0.
    show_edges : bool
        Draw the patch edges as thin vertical lines.
    colorbar : bool
        Add a colour bar.

    Returns
    -------
    `~matplotlib.axes.Axes`
        The heatmap's Axes. Patches left out of attention (fewer than half
        their pixels usable) are hatched grey.

    Raises
    ------
    TypeError
        ``tokens`` is not a `~spectok.SpectralTokens` (e.g. a whole
        `~spectok.TokenBatch`, or a spectrum not yet encoded), or ``ax`` is
        not an Axes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import spectok
    >>> from spectok.visualization import plot_tokens
    >>> spectrum = spectok.datasets.example_spectrum()
    >>> ax = plot_tokens(spectok.encode(spectrum), spectrum=spectrum)
    >>> ax.get_ylabel()
    'token dimension'
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import Normalize

    _check_tokens(tokens)
    _check_ax(ax)
    ax = _new_axes() if ax is None else ax
    edges = tokens.patch_edges.to_value(u.AA)
    values = np.asarray(tokens.tokens, dtype=float)
    n_patches, dim = values.shape
    vmax = float(np.nanpercentile(np.abs(values), 99)) or 1.0
    verts, colours = [], []
    for k in range(n_patches):
        lo, hi = edges[k]
        if hi <= lo:
            hi = lo + 1e-6 * lo
        for j in range(dim):
            verts.append([(lo, j), (hi, j), (hi, j + 1), (lo, j + 1)])
            colours.append(values[k, j])
    collection = PolyCollection(verts, array=np.array(colours), cmap=cmap,
                                norm=Normalize(-vmax, vmax), edgecolors="none")
    ax.add_collection(collection)
    for k in np.flatnonzero(~np.asarray(tokens.valid, bool)):
        ax.axvspan(edges[k, 0], edges[k, 1], facecolor="0.8", hatch="///", edgecolor="0.5",
                   lw=0, zorder=2)
    if show_edges:
        ax.vlines(np.unique(edges[:, 0]), 0, dim, colors="0.2", lw=0.3, alpha=0.4, zorder=3)
    ax.set_xlim(np.nanmin(edges), np.nanmax(edges))
    ax.set_ylim(0, dim)
    ax.set_xlabel("vacuum wavelength [Angstrom]")
    ax.set_ylabel("token dimension")
    ax.set_title(f"{n_patches} tokens ({int(np.sum(tokens.valid))} in attention), "
                 f"model {tokens.model}", fontsize="small")
    if colorbar:
        ax.figure.colorbar(collection, ax=ax, label="token value",
                           pad=0.12 if spectrum is not None else 0.02)
    if spectrum is not None:
        from .adapter import prepare_spectrum

        prepared = prepare_spectrum(spectrum)  # vacuum Å, like the patch edges
        twin = ax.twinx()
        for wave, flux, valid in zip(prepared.wavelength, prepared.flux, prepared.valid):
            twin.plot(wave, np.where(valid, flux / prepared.scale, np.nan), color="k", lw=0.6)
        twin.set_ylabel("flux / median flux")
    return ax


def _cosine(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"cannot compare vectors of {a.shape[-1]} and {b.shape[-1]} dimensions "
                         f"(shapes {a.shape} and {b.shape}): were they made by different models?")
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-30)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-30)
    return a @ b.T


def _cell_edges(centres):
    centres = np.asarray(centres, dtype=float)
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def plot_token_similarity(a, b, ax=None, *, labels=("view a", "view b"), cmap="viridis",
                          colorbar=True):
    """Cosine similarity between two views (e.g. two instruments) of the same objects.

    Two `~spectok.SpectralTokens` (one object seen twice) give the
    token-by-token similarity on wavelength axes: patches that cover the same
    rest wavelengths should be alike, so a consistent model shows a bright
    diagonal even when the two grids differ. Two `~spectok.TokenBatch`
    objects (or embedding arrays) of the same objects in the same order
    give the object-by-object similarity of their embeddings: the diagonal
    holds the twins.

    Parameters
    ----------
    a, b : `~spectok.SpectralTokens`, `~spectok.TokenBatch` or array of shape (n, d)
    ax : `~matplotlib.axes.Axes`, optional
    labels : (str, str)
        Names of the two views (e.g. instrument names).
    cmap : str or `~matplotlib.colors.Colormap`
    colorbar : bool

    Returns
    -------
    `~matplotlib.axes.Axes`

    Raises
    ------
    TypeError
        If ``a`` and ``b`` are not both tokens of one spectrum or both
        batches/arrays, or ``ax`` is not an Axes.
    ValueError
        If the tokens or embeddings of ``a`` and ``b`` differ in width
        (different models), either has no embeddings, or ``labels`` is not
        two names.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from spectok.visualization import plot_token_similarity
    >>> e = np.random.default_rng(0).normal(size=(5, 8))
    >>> ax = plot_token_similarity(e, e + 0.1, labels=("SDSS", "DESI"))
    >>> ax.get_xlabel()
    'DESI object'
    """
    from .tokens import SpectralTokens

    _check_ax(ax)
    if isinstance(labels, str) or np.ndim(labels) != 1 or len(labels) != 2:
        raise ValueError(f"labels must be two names, one per view; got {labels!r}")
    if isinstance(a, SpectralTokens) and isinstance(b, SpectralTokens):
        ax = _new_axes() if ax is None else ax
        centre_a = _token_centres(a)
        centre_b = _token_centres(b)
        order_a, order_b = np.argsort(centre_a), np.argsort(centre_b)
        similarity = _cosine(a.tokens[order_a], b.tokens[order_b])
        mesh = ax.pcolormesh(_cell_edges(centre_b[order_b]), _cell_edges(centre_a[order_a]),
                             similarity, cmap=cmap, vmin=-1, vmax=1, shading="flat")
        ax.set_xlabel(f"{labels[1]} patch wavelength [Angstrom]")
        ax.set_ylabel(f"{labels[0]} patch wavelength [Angstrom]")
        overall = float(_cosine(a.embedding[None], b.embedding[None])[0, 0])
        ax.set_title(f"token cosine similarity; embeddings: {overall:.3f}", fontsize="small")
    elif not isinstance(a, SpectralTokens) and not isinstance(b, SpectralTokens):
        ea = a.embedding if hasattr(a, "embedding") else np.asarray(a)
        eb = b.embedding if hasattr(b, "embedding") else np.asarray(b)
        if ea.ndim != 2 or eb.ndim != 2:
            raise TypeError("give two TokenBatch objects or two (n, d) embedding arrays; got a "
                            f"{type(a).__name__} and a {type(b).__name__} of shapes {ea.shape} "
                            f"and {eb.shape}")
        if not len(ea) or not len(eb):
            raise ValueError(f"nothing to compare: a has {len(ea)} embeddings and b "
                             f"{len(eb)}")
        ax = _new_axes() if ax is None else ax
        similarity = _cosine(ea, eb)
        mesh = ax.imshow(similarity, cmap=cmap, vmin=-1, vmax=1, origin="upper",
                         interpolation="nearest", aspect="auto")
        ax.set_xlabel(f"{labels[1]} object")
        ax.set_ylabel(f"{labels[0]} object")
        n = min(similarity.shape)
        top1 = float(np.mean(np.argmax(similarity[:n], axis=1) == np.arange(n)))
        ax.set_title(f"embedding cosine similarity; twin is nearest for {top1:.0%}",
                     fontsize="small")
    else:
        raise TypeError("a and b must both be SpectralTokens (one object) or both batches "
                        f"or embedding arrays (many objects); got a {type(a).__name__} and a "
                        f"{type(b).__name__}")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label="cosine similarity")
    return ax


def _token_centres(tokens):
    """Mean wavelength (Å, vacuum) of each patch of a `~spectok.SpectralTokens`."""
    return tokens.patch_edges.to_value(u.AA).mean(axis=1)


# -- probes --------------------------------------------------------------------------------

def plot_predicted_vs_true(y_true, y_pred, interval=None, ax=None, *, label=None,
                           show_metrics=True, outlier_bound=None, **kwargs):
    """Predicted against true values, with the 1:1 line and optional intervals.

    Parameters
    ----------
    y_true, y_pred : array-like or `~astropy.units.Quantity`, shape (n,)
        One target: the values of several (shape (n, k)) are refused, not
        pooled; plot each column in turn.
    interval : (lower, upper), optional
        Prediction interval bounds (e.g. from ``probe.predict_interval``),
        drawn as error bars; their coverage is reported.
    ax : `~matplotlib.axes.Axes`, optional
    label : str, optional
        Name of the quantity, for the axis labels (e.g. ``"Teff"``).
    show_metrics : bool
        Write RMSE, σ_MAD (normalised median absolute deviation) of the
        residuals, median offset, n (and the interval coverage, and the
        outlier fraction) on the plot.
    outlier_bound : float, optional
        The redshift convention: predictions with abs(Δ) / (1 + true) above
        this are outliers; the bounds are drawn as dotted lines and the
        σ_MAD, median offset and outlier fraction are of Δ / (1 + true).
    **kwargs
        Passed to `~matplotlib.axes.Axes.errorbar` (marker style, colour…).

    Returns
    -------
    `~matplotlib.axes.Axes`

    Raises
    ------
    TypeError
        ``ax`` is not an Axes.
    ValueError
        If ``y_true`` or ``y_pred`` is not 1-D or empty, they differ in
        length, ``interval`` is not a (lower, upper) pair of their shape with
        lower ≤ upper, or ``outlier_bound`` is not a positive number.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from spectok.visualization import plot_predicted_vs_true
    >>> truth = np.linspace(0, 1, 20)
    >>> ax = plot_predicted_vs_true(truth, truth + 0.05, interval=(truth - 0.1, truth + 0.1),
    ...                             label="z")
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('true z', 'predicted z')
    """
    unit = getattr(y_true, "unit", None)

    def values(x):
        if isinstance(x, u.Quantity):
            return x.to_value(unit) if unit is not None else x.value
        return np.asarray(x, dtype=float)

    _check_ax(ax)
    truth, pred = values(y_true), values(y_pred)
    _check_paired(truth, pred)
    if not len(truth):
        raise ValueError("y_true and y_pred are empty: nothing to plot")
    if outlier_bound is not None:
        outlier_bound = as_number(outlier_bound, f"outlier_bound must be a positive number, "
                                                 f"got {outlier_bound!r}")
        if not outlier_bound > 0:
            raise ValueError(f"outlier_bound must be positive, got {outlier_bound!r}")
    style = {"fmt": "o", "ms": 3, "alpha": 0.7, "elinewidth": 0.6, "capsize": 0}
    style.update(kwargs)
    yerr = None
    if interval is not None:
        if isinstance(interval, str) or len(interval) != 2:
            raise ValueError(f"interval must be a (lower, upper) pair of bounds, got "
                             f"{interval!r:.80}")
        lower, upper = values(interval[0]), values(interval[1])
        if lower.shape != truth.shape or upper.shape != truth.shape:
            raise ValueError(f"the interval bounds must have the shape of y_true, {truth.shape}; "
                             f"got {lower.shape} and {upper.shape}")
        if np.any(lower > upper):
            raise ValueError(f"the interval's lower bound is above its upper bound for "
                             f"{int(np.sum(lower > upper))} of {len(lower)} values: give "
                             "(lower, upper)")
        yerr = np.vstack([np.clip(pred - lower, 0, None), np.clip(upper - pred, 0, None)])
    ax = _new_axes() if ax is None else ax
    ax.errorbar(truth, pred, yerr=yerr, **style)
    finite = np.isfinite(truth) & np.isfinite(pred)
    lo = np.nanmin(np.concatenate([truth[finite], pred[finite]])) if finite.any() else 0
    hi = np.nanmax(np.concatenate([truth[finite], pred[finite]])) if finite.any() else 1
    ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--", zorder=0)
    if outlier_bound is not None:
        line = np.array([lo, hi])
        for sign in (-1, 1):
            ax.plot(line, line + sign * outlier_bound * (1 + line), color="0.4", lw=0.8, ls=":",
                    zorder=0)
    name = label or "value"
    ax.set_xlabel(_unit_label(f"true {name}", unit))
    ax.set_ylabel(_unit_label(f"predicted {name}", unit))
    if show_metrics and finite.any():
        from .benchmarks import nmad

        err = pred[finite] - truth[finite]
        scaled = err if outlier_bound is None else err / (1 + truth[finite])
        of = "" if outlier_bound is None else " of Δ/(1+true)"
        text = (f"RMSE {np.sqrt(np.mean(err ** 2)):.3g}\nσ_MAD {nmad(scaled):.3g}{of}\n"
                f"median offset {np.median(scaled):.3g}{of}\nn = {finite.sum()}")
        if interval is not None:
            covered = (truth >= lower) & (truth <= upper)
            text += f"\ninterval coverage {np.mean(covered[finite]):.0%}"
        if outlier_bound is not None:
            text += f"\noutliers {np.mean(np.abs(scaled) > outlier_bound):.1%}"
        ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize="small")
    return ax


def plot_embedding_map(embeddings, labels=None, ax=None, *, method="pca", label=None,
                       cmap="viridis", random_state=0, **kwargs):
    """A two-dimensional map of embeddings (PCA or t-SNE), coloured by a label.

    Parameters
    ----------
    embeddings : `~spectok.TokenBatch` or array-like, shape (n, d)
        Embeddings, e.g. ``spectok.encode(spectra)`` or its ``.embedding``.
    labels : array-like, shape (n,), optional
        Numbers (drawn with a colour map and a colour bar; objects whose
        label is NaN, such as stars without a measured value, in grey) or
        categories (one colour and legend entry each).
    ax : `~matplotlib.axes.Axes`, optional
    method : {"pca", "tsne"}
        The projection: the two leading principal components, or
        scikit-learn's t-SNE (perplexity at most (n - 1) / 3).
    label : str, optional
        Name of the label, for the colour bar.
    cmap : str or `~matplotlib.colors.Colormap`
        Colour map of numeric labels.
    random_state : int
        Seed of t-SNE.
    **kwargs
        Passed to `~matplotlib.axes.Axes.scatter`.

    Returns
    -------
    `~matplotlib.axes.Axes`

    Raises
    ------
    TypeError
        ``embeddings`` is not a batch or an array of numbers (a
        `~spectok.SpectralTokens` holds the embedding of one spectrum only),
        or ``ax`` is not an Axes.
    ValueError
        If ``method`` is unknown, there are fewer than 3 embeddings, or
        ``labels`` is not 1-D or has another length.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from spectok.visualization import plot_embedding_map
    >>> rng = np.random.default_rng(0)
    >>> x = np.vstack([rng.normal(0, 1, (20, 8)), rng.normal(3, 1, (20, 8))])
    >>> ax = plot_embedding_map(x, ["star"] * 20 + ["galaxy"] * 20)
    >>> ax.get_xlabel(), len(ax.get_legend().get_texts())
    ('PC 1', 2)
    """
    from .tokens import SpectralTokens

    _check_ax(ax)
    if isinstance(embeddings, SpectralTokens):
        raise TypeError("a SpectralTokens holds the embedding of one spectrum: give a TokenBatch "
                        "(spectok.encode of several spectra) or an (n, d) array")
    try:
        x = np.asarray(getattr(embeddings, "embedding", embeddings), dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"cannot map embeddings from a {type(embeddings).__name__}: give a "
                        "TokenBatch or an (n, d) array of numbers") from None
    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"need an (n, d) array of at least 3 embeddings, got shape {x.shape}")
    if labels is not None and np.ndim(labels) != 1:
        raise ValueError(f"labels must be 1-D (one per embedding), got shape {np.shape(labels)}: "
                         "colour by one label at a time")
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"{len(labels)} labels for {len(x)} embeddings")
    if method == "pca":
        from sklearn.decomposition import PCA
        xy = PCA(n_components=2).fit_transform(x)
        axis_names = ("PC 1", "PC 2")
    else:
        from sklearn.manifold import TSNE
        xy = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3),
                  random_state=random_state).fit_transform(x)
        axis_names = ("t-SNE 1", "t-SNE 2")
    ax = _new_axes() if ax is None else ax
    style = {"s": 12, "alpha": 0.8}
    style.update(kwargs)
    values = None if labels is None else np.asarray(labels)
    if values is None:
        ax.scatter(*xy.T, **style)
    elif np.issubdtype(values.dtype, np.number):
        import matplotlib

        unlabelled_grey = matplotlib.colormaps.get_cmap(cmap).with_extremes(bad="0.6")
        points = ax.scatter(*xy.T, c=values.astype(float), cmap=unlabelled_grey,
                            plotnonfinite=True, **style)
        ax.figure.colorbar(points, ax=ax, label=label or "")
    else:
        for category in dict.fromkeys(values.tolist()):
            chosen = values == category
            ax.scatter(*xy[chosen].T, label=str(category), **style)
        ax.legend(fontsize="small", title=label)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    return ax


def plot_confusion_matrix(y_true, y_pred, labels=None, ax=None, *, normalize="true",
                          cmap="Blues", colorbar=False):
    """Confusion matrix of a classifier, annotated with fractions and counts.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n,)
    labels : sequence, optional
        Classes, in display order (default: all that occur, sorted).
    ax : `~matplotlib.axes.Axes`, optional
    normalize : {"true", "pred", None}
        Colour by fraction of each true class (rows), of each predicted class
        (columns), or by counts.
    cmap : str or `~matplotlib.colors.Colormap`
    colorbar : bool

    Returns
    -------
    `~matplotlib.axes.Axes`

    Raises
    ------
    TypeError
        ``ax`` is not an Axes.
    ValueError
        If ``y_true`` or ``y_pred`` is not 1-D, they differ in length, or
        ``normalize`` is unknown.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from spectok.visualization import plot_confusion_matrix
    >>> ax = plot_confusion_matrix(["M", "L", "T", "L"], ["M", "L", "L", "L"],
    ...                            labels=["M", "L", "T"])
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['M', 'L', 'T']
    """
    from sklearn.metrics import confusion_matrix

    _check_ax(ax)
    if normalize not in ("true", "pred", None):
        raise ValueError(f"normalize must be 'true', 'pred' or None, got {normalize!r}")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_paired(y_true, y_pred)
    ax = _new_axes() if ax is None else ax
    if labels is None:
        labels = np.unique(np.concatenate([y_true, y_pred]))
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    if normalize == "true":
        shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    elif normalize == "pred":
        shown = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)
    else:
        shown = counts.astype(float)
    image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=1 if normalize else None,
                      interpolation="nearest")
    top = shown.max() if shown.size else 1
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            text = f"{shown[i, j]:.2f}\n({counts[i, j]})" if normalize else f"{counts[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="white" if shown[i, j] > 0.6 * top else "black")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, [str(x) for x in labels])
    ax.set_yticks(ticks, [str(x) for x in labels])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"accuracy {accuracy:.1%} (n = {counts.sum()})", fontsize="small")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="fraction" if normalize else "count")
    return ax


# -- training ------------------------------------------------------------------------------

def _read_log(log):
    from astropy.table import Table

    if isinstance(log, (str, Path)):
        path = Path(log)
        if path.is_dir():
            path = path / "log.csv"
        return Table.read(path, format="ascii.csv")
    if not hasattr(log, "colnames") and not hasattr(log, "columns"):
        raise TypeError(f"cannot read a training log from a {type(log).__name__}: give the path "
                        "of log.csv (or of its run directory), an astropy Table or a pandas "
                        "DataFrame")
    return log


def plot_training_log(log, ax=None, *, columns=None, logy="auto"):
    """Loss curves from the CSV log that `spectok.training.train` writes.

    Parameters
    ----------
    log : str, `~pathlib.Path` or table
        Path of ``log.csv`` (or of the run directory holding it), or an
        `~astropy.table.Table` / `pandas.DataFrame` with a ``step`` column.
    ax : `~matplotlib.axes.Axes`, optional
    columns : sequence of str, optional
        Columns to draw (default: those present among ``loss``,
        ``reconstruction``, ``consistency``, ``anchor`` and their ``val_``
        versions).
        Validation columns are drawn with markers where they have values.
    logy : bool or "auto"
        Logarithmic y axis; ``"auto"`` uses one when every value drawn is positive.

    Returns
    -------
    `~matplotlib.axes.Axes`

    Raises
    ------
    TypeError
        ``log`` is not a path or a table, ``columns`` is a string rather
        than a list of names, or ``ax`` is not an Axes.
    ValueError
        ``logy`` is not True, False or ``"auto"``.
    KeyError
        The log has no ``step`` column or lacks a requested column.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from astropy.table import Table
    >>> from spectok.visualization import plot_training_log
    >>> log = Table({"step": [20, 40, 60], "loss": [3.0, 2.0, 1.5], "val_loss": [2.5, 1.9, 1.6]})
    >>> ax = plot_training_log(log)
    >>> [line.get_label() for line in ax.get_lines()]
    ['loss', 'val_loss']
    """
    _check_ax(ax)
    if isinstance(columns, str):
        raise TypeError(f"columns must be a list of column names, got the string {columns!r} "
                        f"(for one column: [{columns!r}])")
    if not (isinstance(logy, (bool, np.bool_)) or (isinstance(logy, str) and logy == "auto")):
        raise ValueError(f"logy must be True, False or 'auto', got {logy!r}")
    table = _read_log(log)
    ax = _new_axes() if ax is None else ax
    names = list(getattr(table, "colnames", None) or list(table.columns))
    if "step" not in names:
        raise KeyError(f"the training log has no 'step' column (columns: {names})")
    if columns is None:
        columns = [c for c in _TRAINING_COLUMNS if c in names]
    missing = [c for c in columns if c not in names]
    if missing:
        raise KeyError(f"columns {missing} are not in the training log (columns: {names})")
    step = np.asarray(table["step"], dtype=float)
    drawn = []
    for k, name in enumerate(columns):
        column = table[name]
        values = np.ma.filled(np.ma.masked_invalid(np.ma.asarray(column, dtype=float)), np.nan)
        have = np.isfinite(values)
        if not have.any():
            continue
        base = name[4:] if name.startswith("val_") else name
        colour = f"C{_TRAINING_COLUMNS.index(base) if base in _TRAINING_COLUMNS else k}"
        if name.startswith("val_"):
            ax.plot(step[have], values[have], "o--", color=colour, ms=4, lw=0.8, label=name)
        else:
            ax.plot(step[have], values[have], "-", color=colour, lw=1.0, label=name)
        drawn.append(values[have])
    auto = isinstance(logy, str)
    if drawn and ((not auto and logy) or (auto and all(np.all(v > 0) for v in drawn))):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if drawn:
        ax.legend(loc="best", fontsize="small")
    return ax
