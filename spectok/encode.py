"""`encode` and `decode`: spectra to tokens and back, batched by length."""

import functools
import warnings

import astropy.units as u
import numpy as np
import torch
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum
from tqdm.auto import tqdm

from . import conf
from ._checks import is_integer
from ._device import autocast, resolve_device
from .adapter import (NoUncertaintyWarning, WavelengthRangeWarning, check_wavelength_range,
                      flux_in_unit, iter_spectra, prepare_spectra, to_batch, warn_skipped,
                      wavelength_grid)
from .adapter.errors import _check_error_mode
from .adapter.prepare import _check_length
from .model import SpectralTokenizer, WeightsError, load_model
from .tokens import SpectralTokens, TokenBatch

__all__ = ["encode", "decode", "get_model", "resolve_device"]

#: Wavelengths `decode` reads out at once.
_DECODE_CHUNK = 65_536

# Padded pixel slots per forward pass. On a CPU, passes of about a thousand
# patches keep the activations in cache and run 1.5x faster than
# larger ones; a GPU wants as much work per launch as fits.
_BATCH_PIXELS = {"cpu": 1 << 15, "cuda": 1 << 22}


@functools.lru_cache(maxsize=4)
def _cached_model(name, device):
    return load_model(name, device=device)


def get_model(model=None, device=None):
    """The model to use: a `~spectok.model.SpectralTokenizer`, a shipped name, or the default.

    Parameters
    ----------
    model : `~spectok.model.SpectralTokenizer`, str or None
        `None` means ``conf.default_model``. Named models are loaded once per
        process and device.
    device : str or `torch.device`, optional

    Returns
    -------
    `~spectok.model.SpectralTokenizer`

    Examples
    --------
    >>> from spectok.encode import get_model
    >>> get_model().name
    'spectok-small'
    """
    device = resolve_device(device)
    if isinstance(model, SpectralTokenizer):
        parameter = next(model.parameters(), None)
        if parameter is not None and parameter.device == device:
            return model
        return model.to(device)
    return _cached_model(str(conf.default_model if model is None else model), device)


def _plan_batches(lengths, batch_size, max_pixels, local_above):
    """Group spectra (indices into ``lengths``, pixel slots each) into forward passes.

    Spectra are taken in order of length so that batches carry little
    padding. A batch holds at most ``batch_size`` spectra and, unless it is a
    single spectrum, at most ``max_pixels`` padded pixel slots. Spectra longer
    than ``local_above`` slots (encoded with local attention) never share a
    batch with shorter ones, whose encoding would otherwise change with the
    company they keep.
    """
    batches, current = [], []
    for k in np.argsort(lengths, kind="stable"):
        width = lengths[k]
        if current and (len(current) == batch_size or width * (len(current) + 1) > max_pixels
                        or (width > local_above) != (lengths[current[0]] > local_above)):
            batches.append(current)
            current = []
        current.append(int(k))
    return batches + [current] if current else batches


def _patch_edges(wavelength, patch_size):
    """First and last wavelength of the real pixels of each patch, arm by arm (ascending arms)."""
    edges = []
    for wave in wavelength:
        first = np.arange(0, len(wave), patch_size)
        edges.append(np.stack([wave[first],
                               wave[np.minimum(first + patch_size, len(wave)) - 1]], axis=1))
    return np.concatenate(edges)


def _unpack(prepared, encoded, model_name, patch_size):
    """Split batched model output into `SpectralTokens`, dropping padding patches."""
    tokens = encoded["tokens"].float().cpu().numpy()
    embedding = encoded["embedding"].float().cpu().numpy()
    centre = encoded["centre"].cpu().numpy()
    log_spacing = encoded["log_spacing"].float().cpu().numpy()
    n_pixels = encoded["n_pixels"].cpu().numpy()
    active = encoded["active"].cpu().numpy()
    results = []
    for row, p in enumerate(prepared):
        n = p.n_slots(patch_size) // patch_size
        results.append(SpectralTokens(
            tokens=tokens[row, :n], embedding=embedding[row],
            patch_edges=u.Quantity(_patch_edges(p.wavelength, patch_size), u.AA, copy=False),
            valid=active[row, :n],
            scale=p.scale * p.unit, flux_unit=p.input_unit,
            patch_log_wavelength=centre[row, :n], patch_log_spacing=log_spacing[row, :n],
            patch_n_pixels=n_pixels[row, :n], id=p.id, model=model_name))
    return results


def encode(spectra, model=None, *, batch_size=None, device=None, medium=None, progress=None,
           errors="raise"):
    """Encode spectra on their native grids into tokens and embeddings.

    Parameters
    ----------
    spectra : spectrum-like or list of spectrum-like
        A `~specutils.Spectrum`, a `~specutils.SpectrumList` (the arms of one
        object), a ``(wavelength, flux[, uncertainty])`` tuple of Quantities,
        a list of these, or a `~spectok.datasets.SpectrumDataset`. Any
        spectral unit, any flux density unit.
    model : `~spectok.model.SpectralTokenizer` or str, optional
        The model or a shipped model name (default ``conf.default_model``).
    batch_size : int, optional
        Most spectra per forward pass (default ``conf.batch_size``). Spectra
        are sorted by length first so that batches carry little padding, and
        a pass holds at most 32,768 padded pixels on a CPU (about 4 million on
        a GPU), so longer spectra go fewer at a time. Results do not depend
        on how spectra are batched.
    device : {"auto", "cpu", "cuda", ...}, optional
        Where to run (default ``conf.device``). On a GPU the model runs under
        bf16 autocast.
    medium : {None, "air", "vacuum"}, optional
        Medium of the wavelengths; `None` reads each spectrum's
        ``meta['medium']`` (default vacuum).
    progress : bool, optional
        Show a progress bar; `None` shows one when there are more than 10 batches.
    errors : {"raise", "warn", "skip"}
        What to do with a spectrum that cannot be used: raise its error, or
        leave it out (with one warning, or silently) and list it in
        `TokenBatch.skipped`. A single spectrum (not in a list) always
        raises: there would be nothing to return.

    Returns
    -------
    `~spectok.SpectralTokens` or `~spectok.TokenBatch`
        One result for one spectrum, a batch (in input order) for a list.

    Raises
    ------
    spectok.adapter.SpectrumInputError, astropy.units.UnitConversionError
        A spectrum that cannot be used (with ``errors="raise"``); the message
        names the spectrum and the problem.

    Warns
    -----
    spectok.adapter.WavelengthRangeWarning
        Some spectra reach outside the wavelength range the model was
        trained on (``model.metadata["wavelength_range"]``, when the model
        records it).

    Notes
    -----
    Spectra longer than the model's ``full_attention_limit`` patches
    (32,768 pixels for the shipped models) are encoded with local attention
    (see `~spectok.model.TokenizerConfig`), so that time and memory grow
    linearly with length; shorter spectra see the whole spectrum at once.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> import spectok
    >>> wave = np.linspace(4000, 7000, 3000) * u.AA
    >>> flux = (1 + 0.1 * np.sin(wave.value / 50)) * u.Jy
    >>> tokens = spectok.encode((wave, flux, 0.01 * flux))
    >>> tokens.embedding.shape, tokens.n_patches
    ((128,), 94)
    """
    _check_error_mode(errors)
    items, single = iter_spectra(spectra)
    device = resolve_device(device)
    net = get_model(model, device)
    patch_size = net.config.patch_size
    batch_size = conf.batch_size if batch_size is None else batch_size
    if not is_integer(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)

    prepared, skipped = prepare_spectra(items, medium, patch_size,
                                        skip=not single and errors != "raise")
    if errors == "warn":
        warn_skipped(skipped, len(items))
    missing = sum(not p.has_uncertainty for _, p in prepared)
    if missing:
        warnings.warn(f"{missing} of {len(items)} spectra have no uncertainty; using a constant "
                      "noise level per arm estimated from the flux (DER_SNR)",
                      NoUncertaintyWarning, stacklevel=2)
    check_wavelength_range([p for _, p in prepared],
                           net.metadata.get("wavelength_range"), stacklevel=2)
    chunks = _plan_batches(np.array([p.n_slots(patch_size) for _, p in prepared], dtype=int),
                           batch_size, _BATCH_PIXELS.get(device.type, _BATCH_PIXELS["cuda"]),
                           net.config.full_attention_limit * patch_size)
    show = len(chunks) > 10 if progress is None else progress
    results = [None] * len(prepared)
    name = net.name
    with torch.inference_mode(), autocast(device):
        for chunk in tqdm(chunks, disable=not show, desc="spectok.encode", unit="batch"):
            group = [prepared[k][1] for k in chunk]
            batch = to_batch(group, patch_size, warn_missing_uncertainty=False).to(device)
            encoded = net.encode(*batch.model_inputs())
            for k, result in zip(chunk, _unpack(group, encoded, name, patch_size)):
                results[k] = result
    if single:
        return results[0]
    return TokenBatch(results, np.array([index for index, _ in prepared], dtype=int), skipped,
                      widths=(net.config.width, net.config.token_dim))


def decode(tokens, wavelength, model=None, *, medium="vacuum", device=None):
    """Render a spectrum from its tokens on any wavelength grid.

    Parameters
    ----------
    tokens : `~spectok.SpectralTokens`
        The output of `encode` for one spectrum.
    wavelength : `~astropy.units.Quantity`
        The grid to render on, in any spectral unit (strictly monotonic). It
        may cover gaps and masked regions of the input (inpainting) or be
        another instrument's grid.
    model : `~spectok.model.SpectralTokenizer` or str, optional
        Must be the model that made ``tokens`` (default: the one named in them).
    medium : {"vacuum", "air"}
        Medium of ``wavelength``.
    device : str, optional
        Where to run.

    Returns
    -------
    `~specutils.Spectrum`
        Flux in the unit of the encoded spectrum (scale restored), with the
        model's own scatter as a `~astropy.nddata.StdDevUncertainty`; its
        ``mask`` is true at wavelengths beyond the ends of the encoded
        spectrum, where the flux is extrapolated.

    Warns
    -----
    spectok.adapter.WavelengthRangeWarning
        Some wavelengths lie beyond the ends of the encoded spectrum.

    Raises
    ------
    TypeError
        ``tokens`` is not one spectrum's `~spectok.SpectralTokens`.
    ValueError
        ``model`` is not the model that made the tokens, or it is not given
        and the model named in the tokens cannot be loaded (a model built in
        memory is ``"unnamed"``).
    spectok.adapter.SpectrumInputError, astropy.units.UnitConversionError
        A ``wavelength`` grid that is not a strictly monotonic spectral axis
        of 2 to ``spectok.conf.max_pixels`` values, or an unknown ``medium``.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> import spectok
    >>> wave = np.linspace(4000, 7000, 3000) * u.AA
    >>> flux = np.full(3000, 2.0) * u.mJy
    >>> tokens = spectok.encode((wave, flux, 0.01 * flux))
    >>> rendered = spectok.decode(tokens, np.linspace(450, 650, 500) * u.nm)
    >>> rendered.flux.unit, rendered.flux.shape
    (Unit("mJy"), (500,))
    """
    if not isinstance(tokens, SpectralTokens):
        hint = (" (one spectrum's tokens: for the spectra of a TokenBatch, decode each, "
                "[spectok.decode(t, wavelength) for t in batch])"
                if isinstance(tokens, TokenBatch) else "")
        raise TypeError(f"decode takes the SpectralTokens of one spectrum, got "
                        f"{type(tokens).__name__}{hint}")
    device = resolve_device(device)
    if model is None:
        try:
            net = get_model(tokens.model, device)
        except WeightsError as error:
            raise ValueError(f"the model that made these tokens, {tokens.model!r}, cannot be "
                             f"loaded by its name ({error}; a model built in memory is "
                             "'unnamed'): pass it, decode(tokens, wavelength, model=...)") from None
    else:
        net = get_model(model, device)
        if net.name != tokens.model:
            raise ValueError(f"these tokens were made by model {tokens.model!r}, not "
                             f"{net.name!r}")
    _check_length(int(np.size(wavelength)), "requested wavelength grid")
    log_wave, spacing, wave_aa = wavelength_grid(wavelength, medium)
    # arms are ordered by where they start, and one may end inside another
    lo, hi = tokens.patch_edges.min().to_value(u.AA), tokens.patch_edges.max().to_value(u.AA)
    beyond = (wave_aa < lo) | (wave_aa > hi)
    if beyond.any():
        warnings.warn(f"{beyond.sum()} of {beyond.size} wavelengths lie beyond the encoded "
                      f"spectrum ({lo:.1f}-{hi:.1f} Å, vacuum): the flux there is extrapolated, "
                      "and masked in the result", WavelengthRangeWarning, stacklevel=2)

    def tensor(x, dtype=torch.float32):
        return torch.as_tensor(np.asarray(x)[None], dtype=dtype, device=device)

    patches = (tensor(tokens.tokens), tensor(tokens.patch_log_wavelength, torch.float64),
               tensor(tokens.patch_log_spacing), tensor(tokens.valid, torch.bool))
    means, scatters = [], []
    with torch.inference_mode():
        # Wavelengths are decoded independently of one another; in chunks, the memory of a
        # long grid stays that of one chunk (about 0.5 GB), not 8 kB per wavelength.
        for start in range(0, len(log_wave), _DECODE_CHUNK):
            part = slice(start, start + _DECODE_CHUNK)
            mean, log_scatter = net.decode(*patches, tensor(log_wave[part], torch.float64),
                                           tensor(spacing[part]),
                                           tensor(tokens.patch_n_pixels, torch.long))
            means.append(mean[0].cpu().numpy())
            scatters.append(log_scatter[0].exp().cpu().numpy())
    scale = tokens.scale.value
    flux = flux_in_unit(np.concatenate(means) * scale, tokens.scale.unit, tokens.flux_unit,
                        wave_aa)
    scatter = flux_in_unit(np.concatenate(scatters) * scale, tokens.scale.unit,
                           tokens.flux_unit, wave_aa)
    return Spectrum(spectral_axis=wavelength, flux=flux, uncertainty=StdDevUncertainty(scatter),
                    mask=beyond, meta={"medium": medium, "decoded_by": net.name})
