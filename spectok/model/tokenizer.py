"""The spectok tokenizer: native-grid patches → transformer → tokens → any grid.

Method, in the order the code follows:

1. **Pixels.** Each pixel carries its normalised flux, the log of its
   normalised error, a validity flag and sinusoidal features of ln λ. Invalid
   pixels contribute zeros.
2. **Patches.** Consecutive pixels (``patch_size`` of them, never straddling
   two arms) are flattened and projected to the model width. A patch's
   position embedding is built from sinusoids of its mean ln λ and from its
   sampling (the mean ln λ step per pixel), so the model knows where it is and
   how finely it is sampled. A patch takes part in attention only when at
   least half of its pixels are valid.
3. **Encoder.** Pre-LN transformer blocks whose attention carries a learned
   bias ``-slope·|Δ ln λ|``: local and global heads, identical at any redshift.
   Beyond ``full_attention_limit`` patches attention becomes local (with
   summaries of the far patches), so that very long spectra cost linearly.
4. **Tokens and embedding.** A linear bottleneck turns each patch state into a
   token; attention pooling over the active patches gives one embedding.
5. **Decoder.** Tokens (plus position) pass through decoder blocks; then any
   requested wavelength, embedded from its ln λ and sampling, attends to them
   and predicts the normalised flux there and a model scatter (log σ).
   Beyond ``full_attention_limit`` patches both attend locally, like the
   encoder: a requested wavelength sees the patches around the one nearest
   to it, and the rest through summaries.
6. **Pixel detail** (``pixel_basis``). Attention mixes whole patches, so the
   readout alone smooths what varies from pixel to pixel within one. Each
   decoded active patch therefore also gives the coefficients of a linear
   B-spline with one node on each of its real pixels; a requested
   wavelength inside an active patch adds the spline's mean over the part
   of the requested pixel (its ln λ step) inside that patch, so that on a
   coarser grid the detail averages out instead of being sampled.
"""

import math
import numbers
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .._checks import check_bool, is_integer
from .layers import (AttentionPooling, CrossAttentionBlock, DistanceBias, LocalLayout,
                     LogWavelengthFeatures, TransformerBlock, _bracketing_patches,
                     key_distance)

__all__ = ["TokenizerConfig", "SpectralTokenizer", "CONFIGS", "patch_geometry",
           "patch_is_active"]

#: Requested wavelengths read out at once under local attention: bounds the
#: memory of `SpectralTokenizer.decode` and does not change its result.
_READOUT_CHUNK = 2048


@dataclass(frozen=True)
class TokenizerConfig:
    """Hyper-parameters of a `SpectralTokenizer`.

    Parameters
    ----------
    patch_size : int
        Pixels per patch.
    width : int
        Transformer width.
    n_heads : int
        Attention heads (divides ``width``).
    encoder_depth, decoder_depth : int
        Number of transformer blocks in the encoder and decoder.
    token_dim : int
        Size of each per-patch token (the bottleneck).
    mlp_ratio : int
        Hidden size of the feed-forward layers, in units of ``width``.
    pixel_frequencies : int
        Sinusoid frequencies per pixel, periods ``pixel_periods`` in ln λ.
    position_frequencies : int
        Sinusoid frequencies of a patch's position, periods ``position_periods``.
    pixel_periods, position_periods : tuple of float
        Shortest and longest period in ln λ.
    full_attention_limit : int
        Longest input, in patches, whose encoder and decoder attend across
        the whole spectrum. Longer inputs (high-resolution échelle spectra)
        use local attention (see `~spectok.model.LocalLayout`): each block
        of ``attention_window`` patches sees the ``2 * attention_window``
        patches around it one by one and the rest of the spectrum through
        summaries, and each wavelength requested from the decoder sees what
        the block of its nearest patch sees, so time and memory grow
        linearly with length as long as the summaries (one per block) are
        fewer than the ``2 * attention_window`` patches seen one by one: up to
        about 2 · attention_window² patches (131 072 patches, 4 million pixels,
        with the defaults); beyond that the cost turns quadratic again, with a
        small factor. Shorter inputs are not affected. Not a
        training hyper-parameter: it can be changed on a trained model.
    attention_window : int
        Patches per local-attention block (even).
    pixel_basis : bool
        Add the per-patch pixel detail to the decoded flux (step 6 of the
        module's method): a requested wavelength inside an active patch (a
        patch of m real pixels spans m of its ln λ steps around its centre)
        gets the mean, over the part of the requested pixel inside that
        patch, of the linear B-spline with one node on each of the patch's
        real pixels, whose values a small network reads from the decoded
        patch. Other wavelengths (in hidden or invalid patches, gaps, or
        beyond the spectrum) get the attention readout alone. Off in models
        trained before it existed.

    Raises
    ------
    ValueError
        A size that is not a positive integer (``full_attention_limit``:
        not a non-negative one), ``n_heads`` that does not
        divide ``width``, periods that are not two finite numbers with
        0 < shortest < longest, ``pixel_basis`` that is not a bool, an odd
        ``attention_window``, or the pixel basis with 1-pixel patches.

    Examples
    --------
    >>> from spectok.model import CONFIGS
    >>> CONFIGS["base"].width, CONFIGS["base"].encoder_depth, CONFIGS["base"].n_heads
    (512, 6, 8)
    >>> TokenizerConfig(width=130)
    Traceback (most recent call last):
    ...
    ValueError: n_heads must divide width, got width=130 and n_heads=4
    """

    patch_size: int = 32
    width: int = 128
    n_heads: int = 4
    encoder_depth: int = 4
    decoder_depth: int = 2
    token_dim: int = 32
    mlp_ratio: int = 4
    pixel_frequencies: int = 8
    position_frequencies: int = 16
    pixel_periods: tuple = (3e-5, 3.0)
    position_periods: tuple = (1e-3, 10.0)
    full_attention_limit: int = 1024
    attention_window: int = 256
    pixel_basis: bool = False

    def __post_init__(self):
        for name in ("patch_size", "width", "n_heads", "encoder_depth", "decoder_depth",
                     "token_dim", "mlp_ratio", "pixel_frequencies", "position_frequencies",
                     "attention_window"):
            value = getattr(self, name)
            if not is_integer(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not is_integer(self.full_attention_limit) or self.full_attention_limit < 0:
            raise ValueError(f"full_attention_limit must be a non-negative integer (0: local "
                             f"attention always), got {self.full_attention_limit!r}")
        if self.width % self.n_heads:
            raise ValueError(f"n_heads must divide width, got width={self.width} and "
                             f"n_heads={self.n_heads}")
        for name in ("pixel_periods", "position_periods"):
            periods = getattr(self, name)
            if not (isinstance(periods, (tuple, list)) and len(periods) == 2
                    and all(isinstance(p, numbers.Real) and not isinstance(p, bool)
                            for p in periods)
                    and 0 < periods[0] < periods[1] < math.inf):
                raise ValueError(f"{name} must be the (shortest, longest) period in ln λ, two "
                                 f"finite numbers with 0 < shortest < longest; got {periods!r}")
        check_bool(self.pixel_basis, "pixel_basis")
        if self.pixel_basis and self.patch_size < 2:
            raise ValueError(f"the pixel basis needs patches of at least 2 pixels, got "
                             f"patch_size={self.patch_size}")
        if self.attention_window < 2 or self.attention_window % 2:
            raise ValueError(f"attention_window must be an even number of patches, got "
                             f"{self.attention_window}")

    def to_dict(self):
        """Return the configuration as a JSON-serialisable dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values):
        """Build a configuration from `to_dict` output; unknown keys are an error.

        Parameters
        ----------
        values : dict
            Field names and values, as `to_dict` (or a saved model's JSON)
            gives them: lists become tuples, and fields left out keep their
            defaults.

        Returns
        -------
        `TokenizerConfig`

        Raises
        ------
        ValueError
            A key that is not a field of this version's configuration, or
            values that the configuration refuses (see `TokenizerConfig`).

        Examples
        --------
        >>> from spectok.model import CONFIGS, TokenizerConfig
        >>> TokenizerConfig.from_dict(CONFIGS["tiny"].to_dict()) == CONFIGS["tiny"]
        True
        >>> TokenizerConfig.from_dict({"width": 64, "pixel_periods": [1e-4, 1.0]}).pixel_periods
        (0.0001, 1.0)
        """
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown tokenizer configuration keys: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


CONFIGS = {
    "tiny": TokenizerConfig(width=32, n_heads=2, encoder_depth=1, decoder_depth=1,
                            token_dim=8, mlp_ratio=2),
    "small": TokenizerConfig(),
    "base": TokenizerConfig(width=512, n_heads=8, encoder_depth=6, decoder_depth=6,
                            token_dim=64),
}


def _patch_mean(values, weight):
    """Weighted mean over the last axis of ``(batch, patches, patch_size)`` arrays."""
    return (values * weight).sum(-1) / weight.sum(-1).clamp(min=1)


def _patches(x, patch_size):
    """Reshape ``(batch, pixels, ...)`` into ``(batch, patches, patch_size, ...)``."""
    batch, n_pixels = x.shape[:2]
    if n_pixels % patch_size:
        raise ValueError(f"{n_pixels} pixels is not a multiple of the patch size {patch_size}")
    return x.reshape(batch, n_pixels // patch_size, patch_size, *x.shape[2:])


def patch_geometry(log_wavelength, valid, observed, spacing, patch_size):
    """Per-patch centre (mean ln λ), log10 sampling and activity.

    Parameters
    ----------
    log_wavelength : `~torch.Tensor`, shape (batch, pixels), float64
        ln of vacuum wavelength in Å.
    valid, observed : `~torch.Tensor` of bool, shape (batch, pixels)
        Usable pixels; real (not padding) pixels.
    spacing : `~torch.Tensor`, shape (batch, pixels)
        ln λ step per pixel.
    patch_size : int
        Pixels per patch.

    Returns
    -------
    centre, log_spacing : `~torch.Tensor`, shape (batch, patches)
    active : `~torch.Tensor` of bool, shape (batch, patches)
        At least half of the patch's real pixels are valid.

    Examples
    --------
    >>> import torch
    >>> from spectok.model import patch_geometry
    >>> valid = torch.tensor([[True] * 4 + [False] * 3 + [True]])
    >>> patch_geometry(torch.zeros(1, 8, dtype=torch.float64), valid,
    ...                torch.ones(1, 8, dtype=torch.bool), torch.ones(1, 8), 4)[2]
    tensor([[ True, False]])
    """
    obs = _patches(observed, patch_size).double()
    centre = _patch_mean(_patches(log_wavelength, patch_size), obs)
    log_spacing = _patch_mean(_patches(spacing, patch_size).double(), obs).clamp(min=1e-12).log10()
    active = patch_is_active(_patches(valid, patch_size).sum(-1), obs.sum(-1))
    return centre, log_spacing.float(), active


def patch_is_active(n_valid, n_real):
    """Whether patches take part in attention: at least half their real pixels valid.

    Parameters
    ----------
    n_valid, n_real : `~torch.Tensor` or `~numpy.ndarray`
        Valid pixels and real (not padding) pixels of each patch.

    Returns
    -------
    `~torch.Tensor` or `~numpy.ndarray` of bool
        Like the inputs.

    Examples
    --------
    >>> import numpy as np
    >>> from spectok.model import patch_is_active
    >>> patch_is_active(np.array([32, 16, 15, 0, 3]), np.array([32, 32, 32, 32, 6]))
    array([ True,  True, False, False,  True])
    """
    return (n_valid > 0) & (2 * n_valid >= n_real)


def _owning_patch(centre, log_spacing, n_pixels, active, log_wavelength):
    """The active patch that each requested wavelength falls inside.

    A patch of ``m`` real pixels spans ``m`` of its ln λ steps around its
    centre. Of the two active patches whose centres bracket a wavelength,
    the one it lies deepest inside (in each patch's own extent) owns it;
    -1 where it lies inside neither. Returns the owner, the offset from its
    centre in its pixels, and its ln λ step.
    """
    candidates = torch.stack(_bracketing_patches(centre, active, log_wavelength), dim=-1)

    def at(values):
        return values.gather(-1, candidates.flatten(1)).view(candidates.shape)

    step = at(torch.pow(10.0, log_spacing.double()))
    offset = (log_wavelength.unsqueeze(-1) - at(centre)) / step
    depth = offset.abs() / (0.5 * at(n_pixels).double())   # ≤ 1 inside the patch
    best = depth.argmin(-1, keepdim=True)
    inside = depth.gather(-1, best).squeeze(-1) <= 1

    def pick(values):
        return values.gather(-1, best).squeeze(-1)

    return torch.where(inside, pick(candidates), -1), pick(offset), pick(step)


def _spline_integral(coefficients, at_nodes, start, n, t):
    """∫ from -½ to ``t`` of each query's patch spline, in node units.

    The spline of a patch of ``n`` real pixels is linear between its nodes
    0 … n-1 (``coefficients``, flattened over patches from ``start``) and
    constant beyond the end nodes out to the patch edges at -½ and n - ½,
    which ``t`` must lie between. ``at_nodes`` holds the integral up to
    each node.
    """
    inner = torch.minimum(t.clamp(min=0), n - 1)
    left = torch.minimum(inner.floor(), n - 2).clamp(min=0)
    fraction = inner - left
    k = start + left.long()
    value = coefficients.gather(1, k)
    following = coefficients.gather(1, (k + 1).clamp(max=coefficients.shape[1] - 1))
    last = start + n.long() - 1
    return (at_nodes.gather(1, k) + value * fraction + 0.5 * (following - value) * fraction**2
            + coefficients.gather(1, start) * t.clamp(max=0)
            + coefficients.gather(1, last) * (t - (n - 1)).clamp(min=0))


def _self_attention(biases, blocks, x, position, active, layout):
    """Transformer blocks over patches: global attention, or local under ``layout``."""
    n = x.shape[1]
    if layout is None:
        distance = key_distance(position, position, active)
    else:
        distance = layout.distance, layout.offset
        x = layout.pad(x)
    # Without autograd one bias buffer serves every layer: fresh allocations of
    # this size cost more in page faults than filling them does.
    bias = None
    for distance_bias, block in zip(biases, blocks):
        bias = distance_bias.from_distance(*distance, out=None if torch.is_grad_enabled() else bias)
        x = block(x, bias, layout)
    return x[:, :n]


class SpectralTokenizer(nn.Module):
    """Transformer that turns a spectrum on its native grid into tokens and back.

    Parameters
    ----------
    config : `TokenizerConfig`
        Hyper-parameters.

    Attributes
    ----------
    name : str
        What the model is called: the shipped name or saved file it was
        loaded from (`~spectok.load_model`), ``"unnamed"`` for a model built
        in memory. Tokens record it, so `~spectok.decode` can find the model
        again.
    metadata : dict
        What the saved model says about itself (``"wavelength_range"``: the
        range it was trained on); empty for a model built in memory.

    Examples
    --------
    >>> import torch
    >>> from spectok.model import CONFIGS, SpectralTokenizer
    >>> model = SpectralTokenizer(CONFIGS["tiny"]).eval()
    >>> n = 64
    >>> log_wave = torch.linspace(8.2, 8.3, n, dtype=torch.float64)[None]
    >>> ones = torch.ones(1, n)
    >>> out = model.encode(log_wave, ones, 0.01 * ones, ones.bool(), ones.bool(),
    ...                    torch.full((1, n), 1.6e-3))
    >>> out["tokens"].shape, out["embedding"].shape
    (torch.Size([1, 2, 8]), torch.Size([1, 32]))
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.name = "unnamed"
        self.metadata = {}
        c = config
        self.pixel_features = LogWavelengthFeatures(c.pixel_frequencies, *c.pixel_periods)
        self.position_features = LogWavelengthFeatures(c.position_frequencies, *c.position_periods)
        pixel_width = 3 + self.pixel_features.n_features
        self.patch_projection = nn.Linear(c.patch_size * pixel_width, c.width)
        self.position_embedding = nn.Sequential(
            nn.Linear(self.position_features.n_features + 1, c.width), nn.GELU(),
            nn.Linear(c.width, c.width))
        self.encoder_bias = nn.ModuleList(DistanceBias(c.n_heads) for _ in range(c.encoder_depth))
        self.encoder = nn.ModuleList(TransformerBlock(c.width, c.n_heads, c.mlp_ratio)
                                     for _ in range(c.encoder_depth))
        self.encoder_norm = nn.LayerNorm(c.width)
        self.to_token = nn.Linear(c.width, c.token_dim)
        self.pooling = AttentionPooling(c.width, c.n_heads)

        self.from_token = nn.Linear(c.token_dim, c.width)
        self.decoder_bias = nn.ModuleList(DistanceBias(c.n_heads) for _ in range(c.decoder_depth))
        self.decoder = nn.ModuleList(TransformerBlock(c.width, c.n_heads, c.mlp_ratio)
                                     for _ in range(c.decoder_depth))
        query_width = self.pixel_features.n_features + self.position_features.n_features + 1
        self.query_embedding = nn.Sequential(nn.Linear(query_width, c.width), nn.GELU(),
                                             nn.Linear(c.width, c.width))
        self.query_bias = DistanceBias(c.n_heads)
        self.readout = CrossAttentionBlock(c.width, c.n_heads, mlp_ratio=2)
        self.readout_norm = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, 2)
        if c.pixel_basis:
            self.pixel_coefficients = nn.Sequential(
                nn.LayerNorm(c.width), nn.Linear(c.width, c.mlp_ratio * c.width), nn.GELU(),
                nn.Linear(c.mlp_ratio * c.width, c.patch_size))
            # zero at first: switched on for trained weights, it changes nothing until trained
            nn.init.zeros_(self.pixel_coefficients[-1].weight)
            nn.init.zeros_(self.pixel_coefficients[-1].bias)

    def encoder_parameters(self):
        """The parameters that tokens and embeddings depend on.

        Those of the encoder, and of the patch position embedding that the
        decoder shares. Freezing them (``trainable = "decoder"`` in
        `~spectok.training.TrainingConfig`) keeps every token and embedding.

        Returns
        -------
        list of `~torch.nn.Parameter`

        Examples
        --------
        >>> from spectok.model import CONFIGS, SpectralTokenizer
        >>> model = SpectralTokenizer(CONFIGS["tiny"])
        >>> encoder = sum(p.numel() for p in model.encoder_parameters())
        >>> 0 < encoder < sum(p.numel() for p in model.parameters())
        True
        """
        modules = (self.patch_projection, self.position_embedding, self.encoder_bias,
                   self.encoder, self.encoder_norm, self.to_token, self.pooling)
        return [parameter for module in modules for parameter in module.parameters()]

    # -- patches -----------------------------------------------------------------

    def _patches(self, x):
        return _patches(x, self.config.patch_size)

    def _position(self, log_wavelength, log_spacing):
        features = torch.cat([self.position_features(log_wavelength),
                              log_spacing.unsqueeze(-1).float()], dim=-1)
        return self.position_embedding(features)

    def patch_geometry(self, log_wavelength, valid, observed, spacing):
        """Per-patch geometry of a batch; see `patch_geometry`."""
        return patch_geometry(log_wavelength, valid, observed, spacing, self.config.patch_size)

    # -- encoder -----------------------------------------------------------------

    def encode(self, log_wavelength, flux, sigma, valid, observed, spacing, hide=None):
        """Encode normalised spectra into tokens and an embedding.

        Parameters
        ----------
        log_wavelength : `~torch.Tensor`, shape (batch, pixels), float64
            ln of vacuum wavelength in Å; the pixel count is a multiple of
            ``patch_size`` and no patch straddles two arms.
        flux, sigma : `~torch.Tensor`, shape (batch, pixels)
            Flux and its 1σ error, both divided by the spectrum's flux scale.
        valid, observed : `~torch.Tensor` of bool, shape (batch, pixels)
            Usable pixels; real (not padding) pixels.
        spacing : `~torch.Tensor`, shape (batch, pixels)
            ln λ step per pixel.
        hide : `~torch.Tensor` of bool, shape (batch, patches), optional
            Patches to hide from the encoder (masked-patch modelling).

        Returns
        -------
        dict
            ``tokens`` (batch, patches, token_dim), ``embedding`` (batch, width),
            ``states`` (batch, patches, width): the encoder's output, from which
            the tokens and the pooled embedding are made,
            ``centre`` and ``log_spacing`` (batch, patches), ``active``
            (batch, patches): patches that took part in attention, and
            ``n_pixels`` (batch, patches): the real pixels of each patch.
        """
        centre, log_spacing, active = self.patch_geometry(log_wavelength, valid, observed, spacing)
        if hide is not None:
            active = active & ~hide
        if not active.any(-1).all():
            raise ValueError("every spectrum needs at least one patch with valid pixels")
        pixels = flux.new_empty(*flux.shape, 3 + self.pixel_features.n_features,
                                dtype=torch.float32)
        pixels[..., 0] = flux
        torch.clamp(sigma.float().clamp(min=1e-6).log10(), -6, 3, out=pixels[..., 1])
        pixels[..., 2] = 1
        pixels[..., 3:] = self.pixel_features(log_wavelength)
        pixels.mul_(valid.unsqueeze(-1))
        x = self.patch_projection(self._patches(pixels).flatten(2))
        x = x + self._position(centre, log_spacing)
        x = self._encoder_blocks(x, (centre - centre[:, :1]).float(), active)
        x = self.encoder_norm(x)
        return {"tokens": self.to_token(x), "embedding": self.pooling(x, active), "states": x,
                "centre": centre, "log_spacing": log_spacing, "active": active,
                "n_pixels": self._patches(observed).sum(-1)}

    def _encoder_blocks(self, x, position, active):
        """The encoder's transformer blocks: global attention, or local beyond the limit."""
        layout = self._layout(position, active)
        return _self_attention(self.encoder_bias, self.encoder, x, position, active, layout)

    def _layout(self, position, active):
        """The `LocalLayout` of patches beyond ``full_attention_limit``, else None (global)."""
        if position.shape[1] <= self.config.full_attention_limit:
            return None
        return LocalLayout(position, active, self.config.attention_window)

    # -- decoder -----------------------------------------------------------------

    def decode(self, tokens, centre, log_spacing, active, log_wavelength, spacing, n_pixels=None,
               return_readout=False):
        """Predict normalised flux at any wavelengths from tokens.

        Parameters
        ----------
        tokens : `~torch.Tensor`, shape (batch, patches, token_dim)
        centre, log_spacing : `~torch.Tensor`, shape (batch, patches)
            Patch geometry, as returned by `encode`.
        active : `~torch.Tensor` of bool, shape (batch, patches)
            Patches the decoder may use.
        log_wavelength : `~torch.Tensor`, shape (batch, queries), float64
            ln of the requested vacuum wavelengths in Å.
        spacing : `~torch.Tensor`, shape (batch, queries)
            ln λ step of the requested grid (its sampling; with the pixel
            basis also the width over which its detail is averaged).
        n_pixels : `~torch.Tensor` of int, shape (batch, patches), optional
            Real (not padding) pixels per patch, as returned by `encode`:
            where the pixel basis puts its nodes. Needed by a model with
            ``config.pixel_basis``, ignored otherwise.
        return_readout : bool
            Also return the attention readout's flux alone, without the
            pixel basis's detail (training uses it to keep the readout a
            predictor by itself: it is all that hidden patches get).

        Returns
        -------
        mean, log_scatter : `~torch.Tensor`, shape (batch, queries)
            Predicted normalised flux and the log of the model's own scatter
            (with the pixel basis the flux is float32 even under autocast, so
            that rounding does not swamp the detail).
        readout : `~torch.Tensor`, shape (batch, queries)
            Only with ``return_readout``: the flux without the basis's detail
            (``mean`` itself for a model without the basis).

        Raises
        ------
        ValueError
            A model with the pixel basis given no ``n_pixels``.

        Notes
        -----
        Beyond ``config.full_attention_limit`` patches the decoder attends
        locally, as the encoder does, so that time and memory grow linearly
        with the numbers of patches and of queries: each query sees the
        window of the active patch nearest to it in ln λ one patch at a time
        and the rest of the spectrum through summaries (see
        `~spectok.model.LocalLayout`). Queries may come in any order.
        """
        if self.config.pixel_basis and n_pixels is None:
            raise ValueError("this model's pixel basis needs n_pixels, the real pixels of each "
                             "patch (encode returns them)")
        memory = self.from_token(tokens) + self._position(centre, log_spacing)
        origin = centre[:, :1]
        relative = (centre - origin).float()
        layout = self._layout(relative, active)
        memory = _self_attention(self.decoder_bias, self.decoder, memory, relative, active, layout)
        query = self.query_embedding(torch.cat([
            self.pixel_features(log_wavelength),
            self.position_features(log_wavelength),
            spacing.double().clamp(min=1e-12).log10().float().unsqueeze(-1),
        ], dim=-1))
        query_position = (log_wavelength - origin).float()
        if layout is None:
            bias = self.query_bias(query_position, relative, active)
            query = self.readout(query, memory, bias)
        else:
            query = self.readout.local(query, memory, query_position, self.query_bias, layout,
                                       _READOUT_CHUNK)
        out = self.head(self.readout_norm(query))
        readout = mean = out[..., 0]
        if self.config.pixel_basis:
            mean = readout.float() + self._pixel_detail(memory, centre, log_spacing, n_pixels,
                                                        active, log_wavelength, spacing).float()
        if return_readout:
            return mean, out[..., 1], readout
        return mean, out[..., 1]

    def _pixel_detail(self, memory, centre, log_spacing, n_pixels, active, log_wavelength,
                      spacing):
        """Each requested pixel's mean of its patch's spline (0 outside active patches)."""
        size = self.config.patch_size
        patch, offset, step = _owning_patch(centre, log_spacing, n_pixels, active,
                                            log_wavelength)
        coefficients = self.pixel_coefficients(memory).double()   # (batch, patches, size)
        trapezoids = 0.5 * (coefficients[..., :-1] + coefficients[..., 1:])
        at_nodes = 0.5 * coefficients[..., :1] + torch.cat(
            [torch.zeros_like(trapezoids[..., :1]), trapezoids.cumsum(-1)], dim=-1)
        owner = patch.clamp(min=0)
        n = n_pixels.gather(-1, owner).double()
        # in the owner's pixels, node k on its real pixel k; the requested pixel is
        # averaged over the part of it inside the owner (the rest is the neighbours')
        node = offset + 0.5 * (n - 1)
        half_width = (0.5 * spacing.double() / step).clamp(min=1e-6)
        lower = torch.maximum(node - half_width, torch.full_like(node, -0.5))
        upper = torch.minimum(node + half_width, n - 0.5)
        flat, at_nodes, start = coefficients.flatten(1), at_nodes.flatten(1), owner * size
        integral = (_spline_integral(flat, at_nodes, start, n, upper)
                    - _spline_integral(flat, at_nodes, start, n, lower))
        return integral / (upper - lower).clamp(min=1e-12) * (patch >= 0)

    def forward(self, log_wavelength, flux, sigma, valid, observed, spacing, hide=None,
                query_log_wavelength=None, query_spacing=None, return_readout=False):
        """Encode, then decode at the input pixels or at ``query_log_wavelength``.

        Returns the dict of `encode` followed by what `decode` returns.
        """
        encoded = self.encode(log_wavelength, flux, sigma, valid, observed, spacing, hide)
        if query_log_wavelength is None:
            query_log_wavelength, query_spacing = log_wavelength, spacing
        return (encoded, *self.decode(encoded["tokens"], encoded["centre"],
                                      encoded["log_spacing"], encoded["active"],
                                      query_log_wavelength, query_spacing,
                                      encoded["n_pixels"], return_readout))
