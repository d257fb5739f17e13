"""Building blocks of the spectok tokenizer.

Everything here works on plain tensors: wavelengths arrive as natural
logarithms of vacuum wavelengths in Ångström (float64, so that the phases of
high-frequency sinusoids stay exact), fluxes as dimensionless numbers.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LogWavelengthFeatures",
    "DistanceBias",
    "Attention",
    "TransformerBlock",
    "CrossAttentionBlock",
    "AttentionPooling",
]


class LogWavelengthFeatures(nn.Module):
    """Sinusoidal features of ln λ.

    Frequencies are log-spaced so that the periods (in ln λ) run from
    ``min_period`` to ``max_period``. Because the features depend on ln λ, a
    redshift shifts every feature by a constant phase, for every instrument.

    Parameters
    ----------
    n_frequencies : int
        Number of frequencies; the output has ``2 * n_frequencies`` features.
    min_period, max_period : float
        Shortest and longest period in ln λ.
    """

    def __init__(self, n_frequencies, min_period, max_period):
        super().__init__()
        periods = torch.logspace(math.log10(min_period), math.log10(max_period),
                                 n_frequencies, dtype=torch.float64)
        self.register_buffer("angular_frequency", 2 * math.pi / periods, persistent=False)
        self.n_features = 2 * n_frequencies

    def forward(self, log_wavelength):
        phase = log_wavelength.double().unsqueeze(-1) * self.angular_frequency
        return torch.cat([phase.sin(), phase.cos()], dim=-1).float()


class DistanceBias(nn.Module):
    """Additive attention bias ``-slope_h * |ln λ_query - ln λ_key|``.

    A learned slope per head (initialised geometrically, as in ALiBi) lets
    some heads look locally and others across the whole spectrum. The bias
    depends only on wavelength *ratios*, so attention patterns are the same
    at any redshift.

    Parameters
    ----------
    n_heads : int
        Number of attention heads.
    min_slope, max_slope : float
        Range of the initial slopes, per unit of ln λ.
    """

    def __init__(self, n_heads, min_slope=1.0, max_slope=1000.0):
        super().__init__()
        init = torch.logspace(math.log10(min_slope), math.log10(max_slope), n_heads)
        self.log_slope = nn.Parameter(init.log())

    def forward(self, query_position, key_position, key_active):
        """Bias of shape ``(batch, heads, n_query, n_key)``; inactive keys get ``-inf``."""
        distance = (query_position.unsqueeze(-1) - key_position.unsqueeze(-2)).abs()
        bias = -self.log_slope.exp()[None, :, None, None] * distance.unsqueeze(1)
        return bias.masked_fill(~key_active[:, None, None, :], float("-inf"))


class Attention(nn.Module):
    """Multi-head attention with an additive bias.

    Uses `~torch.nn.functional.scaled_dot_product_attention` (fused kernels where available).

    Parameters
    ----------
    width : int
        Model width.
    n_heads : int
        Number of heads; must divide ``width``.
    """

    def __init__(self, width, n_heads):
        super().__init__()
        if width % n_heads:
            raise ValueError(f"width {width} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.query = nn.Linear(width, width)
        self.key_value = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def _split(self, x):
        batch, length, width = x.shape
        return x.view(batch, length, self.n_heads, width // self.n_heads).transpose(1, 2)

    def forward(self, x, context, bias):
        q = self._split(self.query(x))
        k, v = (self._split(t) for t in self.key_value(context).chunk(2, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.out(y.transpose(1, 2).reshape(x.shape))


def _mlp(width, ratio):
    return nn.Sequential(nn.Linear(width, ratio * width), nn.GELU(),
                         nn.Linear(ratio * width, width))


class TransformerBlock(nn.Module):
    """Pre-LN self-attention block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, width, n_heads, mlp_ratio=4):
        super().__init__()
        self.norm_attention = nn.LayerNorm(width)
        self.attention = Attention(width, n_heads)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = _mlp(width, mlp_ratio)

    def forward(self, x, bias):
        h = self.norm_attention(x)
        x = x + self.attention(h, h, bias)
        return x + self.mlp(self.norm_mlp(x))


class CrossAttentionBlock(nn.Module):
    """Pre-LN cross-attention block: queries attend to a memory of patch states."""

    def __init__(self, width, n_heads, mlp_ratio=4):
        super().__init__()
        self.norm_query = nn.LayerNorm(width)
        self.norm_memory = nn.LayerNorm(width)
        self.attention = Attention(width, n_heads)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = _mlp(width, mlp_ratio)

    def forward(self, x, memory, bias):
        x = x + self.attention(self.norm_query(x), self.norm_memory(memory), bias)
        return x + self.mlp(self.norm_mlp(x))


class AttentionPooling(nn.Module):
    """Pool a set of patch states into one vector with learned queries (one per head)."""

    def __init__(self, width, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Parameter(torch.zeros(1, 1, width))
        self.attention = Attention(width, n_heads)
        self.norm = nn.LayerNorm(width)

    def forward(self, x, active):
        bias = torch.zeros(x.shape[0], self.n_heads, 1, x.shape[1], device=x.device)
        bias = bias.masked_fill(~active[:, None, None, :], float("-inf"))
        pooled = self.attention(self.query.expand(x.shape[0], -1, -1), x, bias)
        return self.norm(pooled.squeeze(1))
