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
    "key_distance",
    "LocalLayout",
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

    Examples
    --------
    Features of three wavelengths (ln λ in float64), and of the same three
    redshifted to z = 0.5: every pair of wavelengths has the same feature
    similarity before and after, as it depends only on their ratio.

    >>> import math
    >>> import torch
    >>> from spectok.model import LogWavelengthFeatures
    >>> features = LogWavelengthFeatures(4, min_period=1e-3, max_period=1.0)
    >>> log_wave = torch.tensor([[4000.0, 4861.0, 6563.0]], dtype=torch.float64).log()
    >>> rest, shifted = features(log_wave), features(log_wave + math.log1p(0.5))
    >>> rest.shape, features.n_features
    (torch.Size([1, 3, 8]), 8)
    >>> bool(torch.allclose(rest[0] @ rest[0].T, shifted[0] @ shifted[0].T, atol=1e-5))
    True
    """

    def __init__(self, n_frequencies, min_period, max_period):
        super().__init__()
        periods = torch.logspace(math.log10(min_period), math.log10(max_period),
                                 n_frequencies, dtype=torch.float64)
        self.register_buffer("angular_frequency", 2 * math.pi / periods, persistent=False)
        self.n_features = 2 * n_frequencies

    def forward(self, log_wavelength):
        phase = log_wavelength.double().unsqueeze(-1) * self.angular_frequency
        # Reduced to [-π, π] in float64, the phase is exact to float32 precision,
        # and float32 sines are several times cheaper than float64 ones.
        phase = (phase - (phase * (0.5 / math.pi)).round() * (2 * math.pi)).float()
        return torch.cat([phase.sin(), phase.cos()], dim=-1)


def key_distance(query_position, key_position, key_active):
    """Distances and key offsets for `DistanceBias`, computed once and shared by every layer.

    Parameters
    ----------
    query_position : `~torch.Tensor`, shape (batch, n_query)
    key_position : `~torch.Tensor`, shape (batch, n_key)
    key_active : `~torch.Tensor` of bool, shape (batch, n_key)

    Returns
    -------
    distance : `~torch.Tensor`, shape (batch, 1, n_query, n_key)
        ``|ln λ_query - ln λ_key|``; the singleton axis broadcasts over heads.
    offset : `~torch.Tensor`, shape (batch, 1, 1, n_key)
        0 for keys that may be attended, ``-inf`` for the others.

    Examples
    --------
    Three patches, the last of them inactive, attending to each other:

    >>> import torch
    >>> from spectok.model import key_distance
    >>> position = torch.tensor([[0.0, 0.01, 0.03]])
    >>> active = torch.tensor([[True, True, False]])
    >>> distance, offset = key_distance(position, position, active)
    >>> distance.shape, offset.shape
    (torch.Size([1, 1, 3, 3]), torch.Size([1, 1, 1, 3]))
    >>> distance[0, 0, 0], offset[0, 0, 0]
    (tensor([0.0000, 0.0100, 0.0300]), tensor([0., 0., -inf]))
    """
    distance = (query_position.unsqueeze(-1) - key_position.unsqueeze(-2)).abs()
    offset = torch.zeros(key_active.shape, dtype=distance.dtype, device=distance.device)
    offset = offset.masked_fill(~key_active, -math.inf)
    return distance.unsqueeze(1), offset[:, None, None, :]


def _windows(x, window, dim):
    """Overlapping windows of ``2 * window`` along ``dim``, one per block of ``window``.

    The sequence is padded with ``window // 2`` zeros at each end, so block
    ``j`` sees its own ``window`` elements and ``window // 2`` on either side.
    A new axis (the block) is inserted at ``dim`` and the window runs along the
    last axis.
    """
    halo = window // 2
    dim = dim % x.dim()
    padding = [0, 0] * (x.dim() - 1 - dim) + [halo, halo]
    return F.pad(x, padding).unfold(dim, 2 * window, window)


class LocalLayout:
    """Where each query may look under local attention, shared by every layer.

    The patches, padded with inactive ones to a whole number of blocks, are
    cut into blocks of ``window``. The queries of a block see every key of
    their window (the block and ``window // 2`` patches on either side) one
    by one, and the rest of the spectrum through one summary key per segment
    of ``window // 2`` patches: the mean key and value of the segment's
    active patches, at their mean position, weighted by their number. Heads
    with steep distance slopes barely reach past the window; the summaries
    keep the shallow (global) heads informed about the whole spectrum, at a
    cost of ``2 * n / window`` extra keys per query. Queries from outside the
    sequence (the decoder's readout pixels) join a block; see `query_chunks`.

    Parameters
    ----------
    position : `~torch.Tensor`, shape (batch, patches)
        Patch positions (relative ln λ).
    active : `~torch.Tensor` of bool, shape (batch, patches)
    window : int
        Patches per block (even).

    Attributes
    ----------
    window : int
    length : int
        Patches after padding to whole blocks (see `pad`).
    distance : `~torch.Tensor`, shape (batch, 1, blocks, window, keys)
        Query-key distances in ln λ: the ``2 * window`` window keys, then the
        ``2 * blocks`` segment summaries.
    offset : `~torch.Tensor`, shape (batch, 1, blocks, 1, keys)
        Added to the bias: 0 for window keys, ln(count) for segment
        summaries, ``-inf`` for keys that may not be attended.
    segment_weight : `~torch.Tensor`, shape (batch, 1, segments, window // 2, 1)
        Weights that average a segment's active patches.

    Examples
    --------
    Six patches in blocks of four are padded to eight (two blocks); each
    query sees the eight keys of its window and four segment summaries:

    >>> import torch
    >>> from spectok.model import DistanceBias, LocalLayout
    >>> position = torch.linspace(0.0, 0.05, 6)[None]
    >>> active = torch.ones(1, 6, dtype=torch.bool)
    >>> layout = LocalLayout(position, active, window=4)
    >>> layout.length, layout.distance.shape
    (8, torch.Size([1, 1, 2, 4, 12]))
    >>> layout.pad(torch.ones(1, 6, 16)).shape
    torch.Size([1, 8, 16])

    The bias of every layer is made from the shared distances and offsets
    (here for two heads), and goes to `TransformerBlock` with the layout:

    >>> DistanceBias(2).from_distance(layout.distance, layout.offset).shape
    torch.Size([1, 2, 2, 4, 12])
    """

    def __init__(self, position, active, window):
        pad = -position.shape[1] % window
        position = F.pad(position, (0, pad), value=float(position[:, -1].max()))
        active = F.pad(active, (0, pad), value=False)
        batch, n = position.shape
        blocks, segment = n // window, window // 2
        self.window, self.length = window, n
        self._position, self._active = position, active
        key = _windows(position.unsqueeze(1), window, -1).squeeze(1)
        key_active = _windows(active.unsqueeze(1), window, -1).squeeze(1)
        # A window without an active key holds only inactive queries: let them
        # see everything so that their (unused) outputs stay finite.
        key_active = key_active | ~key_active.any(-1, keepdim=True)

        weight = active.view(batch, -1, segment).to(position.dtype)
        count = weight.sum(-1)
        self.segment_weight = (weight / count.clamp(min=1).unsqueeze(-1))[:, None, :, :, None]
        centre = (position.view(batch, -1, segment) * self.segment_weight[:, 0, :, :, 0]).sum(-1)
        # Block j's window covers segments 2j - 1 to 2j + 2: those are seen key by key.
        segment_index = torch.arange(2 * blocks, device=position.device)
        first = 2 * torch.arange(blocks, device=position.device) - 1
        in_window = (segment_index >= first[:, None]) & (segment_index <= first[:, None] + 3)
        summary_active = (count > 0).unsqueeze(1) & ~in_window

        self._key_position = torch.cat([key, centre.unsqueeze(1).expand(-1, blocks, -1)], dim=-1)
        query = position.view(batch, blocks, window)
        self.distance = (query.unsqueeze(-1) - self._key_position.unsqueeze(-2)).abs().unsqueeze(1)
        log_count = count.clamp(min=1).log().unsqueeze(1).expand(-1, blocks, -1)
        offset = F.pad(log_count, (2 * window, 0))
        offset = offset.masked_fill(~torch.cat([key_active, summary_active], dim=-1), -math.inf)
        self.offset = offset[:, None, :, None, :]

    def pad(self, x):
        """Pad ``x``, shape (batch, patches, ...), with zeros to ``length`` patches."""
        return F.pad(x, (0, 0) * (x.dim() - 2) + (0, self.length - x.shape[1]))

    def query_chunks(self, query_position, size):
        """Group queries from outside the sequence by the block whose keys they see.

        A query joins the block of the active patch nearest to it in ln λ
        and sees that block's keys (its window one by one, the rest of the
        spectrum through summaries), at distances measured from the query.
        Queries may come in any order; each block's are cut into chunks of
        at most ``size``, which bounds memory without changing the result.

        Parameters
        ----------
        query_position : `~torch.Tensor`, shape (batch, n_query)
            Query positions, relative to the same origin as the patches'.
        size : int
            Most queries per chunk.

        Yields
        ------
        index : `~torch.Tensor` of int64, shape (chunk,)
            The chunk's queries, indexing ``query_position.flatten()``; the
            chunks together hold every query once.
        block : int
            Their block, indexing the flattened (batch, blocks) axes (as in
            `Attention.block_keys_values`).
        distance : `~torch.Tensor`, shape (1, 1, chunk, keys)
        offset : `~torch.Tensor`, shape (1, 1, 1, keys)
            For `DistanceBias.from_distance`.
        """
        batch, blocks = self._key_position.shape[:2]
        rows = torch.arange(batch, device=query_position.device).unsqueeze(1)
        block = (self._nearest_block(query_position) + blocks * rows).flatten()
        order = block.argsort(stable=True)
        position = query_position.flatten()[order]
        key_position = self._key_position.flatten(0, 1)
        offset = self.offset.flatten(0, 2)
        start = 0
        ends = torch.bincount(block, minlength=batch * blocks).cumsum(0).tolist()
        for b, end in enumerate(ends):
            for first in range(start, end, size):
                last = min(first + size, end)
                distance = (position[first:last].unsqueeze(-1) - key_position[b]).abs()
                yield order[first:last], b, distance[None, None], offset[b][None, None]
            start = end

    def _nearest_block(self, query_position):
        """Block of the active patch nearest to each query, shape (batch, n_query)."""
        left, right = _bracketing_patches(self._position, self._active, query_position)
        use_left = ((query_position - self._position.gather(-1, left)).abs()
                    <= (self._position.gather(-1, right) - query_position).abs())
        return torch.where(use_left, left, right) // self.window


def _bracketing_patches(position, active, query):
    """The active patches on either side of each query, by position.

    Returns the indices (into the patch axis) of the nearest active patch at
    or below and of the one above each query, shape of ``query``: a binary
    search over the sorted positions, O(queries · log patches). Beyond the
    outermost active patches both sides fall back on the outermost ones.
    """
    ordered, patch = position.masked_fill(~active, math.inf).sort(-1)
    last = (active.sum(-1, keepdim=True) - 1).clamp(min=0)
    right = torch.minimum(torch.searchsorted(ordered, query.contiguous()), last)
    left = (right - 1).clamp(min=0)
    return patch.gather(-1, left), patch.gather(-1, right)


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

    Examples
    --------
    Two heads, with slopes 1 and 100 per unit of ln λ: from the first patch,
    the second (1 % away in wavelength) costs the steep head 100 times what
    it costs the shallow one, and the inactive third is never attended.

    >>> import torch
    >>> from spectok.model import DistanceBias
    >>> bias = DistanceBias(n_heads=2, min_slope=1.0, max_slope=100.0)
    >>> position = torch.tensor([[0.0, 0.01, 0.03]])
    >>> active = torch.tensor([[True, True, False]])
    >>> with torch.no_grad():
    ...     b = bias(position, position, active)
    >>> b.shape
    torch.Size([1, 2, 3, 3])
    >>> b[0, :, 0]
    tensor([[ 0.0000, -0.0100,    -inf],
            [ 0.0000, -1.0000,    -inf]])
    """

    def __init__(self, n_heads, min_slope=1.0, max_slope=1000.0):
        super().__init__()
        init = torch.logspace(math.log10(min_slope), math.log10(max_slope), n_heads)
        self.log_slope = nn.Parameter(init.log())

    def forward(self, query_position, key_position, key_active):
        """Bias of shape ``(batch, heads, n_query, n_key)``; inactive keys get ``-inf``."""
        return self.from_distance(*key_distance(query_position, key_position, key_active))

    def from_distance(self, distance, offset, out=None):
        """``offset - slope * distance`` in one pass; the singleton axis 1 becomes the heads.

        ``distance`` and ``offset`` come from `key_distance` or `LocalLayout`.
        Masked keys are ``-inf`` in ``offset`` rather than infinitely distant,
        which keeps the gradient with respect to the slopes finite. ``out``
        (without autograd) is a tensor of the result's shape to write into.
        """
        slope = self.log_slope.exp().view(-1, *[1] * (distance.dim() - 2))
        return torch.addcmul(offset, distance, -slope, out=out)


class Attention(nn.Module):
    """Multi-head attention with an additive bias.

    Uses `~torch.nn.functional.scaled_dot_product_attention` (fused kernels where available).

    Parameters
    ----------
    width : int
        Model width.
    n_heads : int
        Number of heads; must divide ``width``.

    Examples
    --------
    Five queries attend to seven keys; the last key is masked with ``-inf``
    in the bias, so changing it changes nothing:

    >>> import math
    >>> import torch
    >>> from spectok.model import Attention
    >>> _ = torch.manual_seed(0)
    >>> attention = Attention(width=16, n_heads=2)
    >>> x, context = torch.randn(1, 5, 16), torch.randn(1, 7, 16)
    >>> bias = torch.zeros(1, 1, 1, 7)
    >>> bias[..., -1] = -math.inf
    >>> y = attention(x, context, bias)
    >>> y.shape
    torch.Size([1, 5, 16])
    >>> context[:, -1] = 100.0
    >>> bool(torch.allclose(attention(x, context, bias), y))
    True
    >>> Attention(width=16, n_heads=3)
    Traceback (most recent call last):
    ...
    ValueError: width 16 is not divisible by n_heads 3
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
        """Attend from ``x`` (batch, n_query, width) to ``context`` (batch, n_key, width).

        ``bias`` broadcasts to (batch, heads, n_query, n_key).
        """
        return self.attend(x, *self.keys_values(context), bias)

    def keys_values(self, context):
        """Per-head keys and values of ``context``, each (batch, heads, n_key, head_width)."""
        return [self._split(t) for t in self.key_value(context).chunk(2, dim=-1)]

    def attend(self, x, key, value, bias):
        """Attend from ``x`` (batch, n_query, width) to per-head ``key`` and ``value``.

        ``bias`` broadcasts to (batch, heads, n_query, n_key).
        """
        q = self._split(self.query(x))
        y = F.scaled_dot_product_attention(q, key, value, attn_mask=bias.to(q.dtype))
        return self.out(y.transpose(1, 2).reshape(x.shape))

    def local(self, x, bias, layout):
        """Self-attention of ``x`` under local attention, at a cost linear in its length.

        Parameters
        ----------
        x : `~torch.Tensor`, shape (batch, n, width)
            ``n`` is ``layout.length``.
        bias : `~torch.Tensor`, shape (batch, heads, blocks, window, keys)
            Bias over the keys of `LocalLayout`: window keys, then segment summaries.
        layout : `LocalLayout`
        """
        batch, n, _ = x.shape
        window = layout.window
        blocks = n // window
        q = self._split(self.query(x))
        heads, head_width = q.shape[1], q.shape[-1]
        q = q.reshape(batch, heads * blocks, window, head_width)
        k, v = (self._local_keys(t, layout).flatten(1, 2) for t in self.keys_values(x))
        bias = bias.to(q.dtype).reshape(batch, heads * blocks, window, -1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out(y.reshape(batch, heads, n, head_width).transpose(1, 2).reshape(x.shape))

    def block_keys_values(self, context, layout):
        """Keys and values of each block of ``layout``, for `LocalLayout.query_chunks`.

        ``context`` has shape (batch, ``layout.length``, width); the keys and
        values have shape (batch * blocks, heads, keys, head_width).
        """
        return [self._local_keys(t, layout).transpose(1, 2).flatten(0, 1)
                for t in self.keys_values(context)]

    @staticmethod
    def _local_keys(x, layout):
        """Window keys then segment summaries of ``x`` (batch, heads, n, head_width).

        The result has shape (batch, heads, blocks, keys, head_width).
        """
        batch, heads, n, head_width = x.shape
        window = _windows(x, layout.window, -2).transpose(-1, -2)
        summary = (x.view(batch, heads, -1, layout.window // 2, head_width)
                   * layout.segment_weight).sum(-2)
        summary = summary.unsqueeze(2).expand(-1, -1, window.shape[2], -1, -1)
        return torch.cat([window, summary], dim=-2)


def _mlp(width, ratio):
    return nn.Sequential(nn.Linear(width, ratio * width), nn.GELU(),
                         nn.Linear(ratio * width, width))


class TransformerBlock(nn.Module):
    """Pre-LN self-attention block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``.

    Parameters
    ----------
    width : int
        Model width.
    n_heads : int
        Number of attention heads; must divide ``width``.
    mlp_ratio : int
        Width of the MLP's hidden layer, in units of ``width``.

    Examples
    --------
    Six patch states through one block, with global attention, then with
    local attention (a `LocalLayout` whose single block holds them all,
    which sees what global attention sees):

    >>> import torch
    >>> from spectok.model import DistanceBias, LocalLayout, TransformerBlock
    >>> _ = torch.manual_seed(0)
    >>> block, distance_bias = TransformerBlock(width=16, n_heads=2), DistanceBias(2)
    >>> position = torch.linspace(0.0, 0.05, 6)[None]
    >>> active = torch.ones(1, 6, dtype=torch.bool)
    >>> x = torch.randn(1, 6, 16)
    >>> y = block(x, distance_bias(position, position, active))
    >>> y.shape
    torch.Size([1, 6, 16])
    >>> layout = LocalLayout(position, active, window=8)
    >>> local = block(layout.pad(x), distance_bias.from_distance(layout.distance, layout.offset),
    ...               layout)
    >>> local.shape, bool(torch.allclose(local[:, :6], y, atol=1e-5))
    (torch.Size([1, 8, 16]), True)
    """

    def __init__(self, width, n_heads, mlp_ratio=4):
        super().__init__()
        self.norm_attention = nn.LayerNorm(width)
        self.attention = Attention(width, n_heads)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = _mlp(width, mlp_ratio)

    def forward(self, x, bias, layout=None):
        """Apply the block; with a `LocalLayout`, attention is local.

        See `spectok.model.Attention.local`.
        """
        h = self.norm_attention(x)
        if layout is None:
            x = x + self.attention(h, h, bias)
        else:
            x = x + self.attention.local(h, bias, layout)
        return x + self.mlp(self.norm_mlp(x))


class CrossAttentionBlock(nn.Module):
    """Pre-LN cross-attention block: queries attend to a memory of patch states.

    Parameters
    ----------
    width : int
        Model width.
    n_heads : int
        Number of attention heads; must divide ``width``.
    mlp_ratio : int
        Width of the MLP's hidden layer, in units of ``width``.

    Examples
    --------
    Ten wavelengths at which to read a spectrum out attend to the states of
    its six patches, biased by their distances in ln λ;
    `CrossAttentionBlock.local` gives the same under local attention, a few
    queries at a time:

    >>> import torch
    >>> from spectok.model import CrossAttentionBlock, DistanceBias, LocalLayout
    >>> _ = torch.manual_seed(0)
    >>> block, distance_bias = CrossAttentionBlock(width=16, n_heads=2), DistanceBias(2)
    >>> position = torch.linspace(0.0, 0.05, 6)[None]
    >>> active = torch.ones(1, 6, dtype=torch.bool)
    >>> memory = torch.randn(1, 6, 16)
    >>> query_position = torch.linspace(0.0, 0.05, 10)[None]
    >>> query = torch.randn(1, 10, 16)
    >>> y = block(query, memory, distance_bias(query_position, position, active))
    >>> y.shape
    torch.Size([1, 10, 16])
    >>> layout = LocalLayout(position, active, window=8)
    >>> local = block.local(query, memory, query_position, distance_bias, layout, size=4)
    >>> bool(torch.allclose(local, y, atol=1e-5))
    True
    """

    def __init__(self, width, n_heads, mlp_ratio=4):
        super().__init__()
        self.norm_query = nn.LayerNorm(width)
        self.norm_memory = nn.LayerNorm(width)
        self.attention = Attention(width, n_heads)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = _mlp(width, mlp_ratio)

    def forward(self, x, memory, bias):
        """Attend from ``x`` (batch, n_query, width) to all of ``memory`` with ``bias``."""
        return self._attend(x, *self.attention.keys_values(self.norm_memory(memory)), bias)

    def local(self, x, memory, query_position, distance_bias, layout, size):
        """Apply the block under local attention, ``size`` queries at a time.

        Each query attends to the keys of one block of ``layout`` (see
        `LocalLayout.query_chunks`), so that time and memory grow linearly
        with the number of queries and of patches.

        Parameters
        ----------
        x : `~torch.Tensor`, shape (batch, n_query, width)
        memory : `~torch.Tensor`, shape (batch, patches, width)
        query_position : `~torch.Tensor`, shape (batch, n_query)
        distance_bias : `DistanceBias`
        layout : `LocalLayout`
            Of the patches of ``memory``.
        size : int
            Most queries attending at once.
        """
        key, value = self.attention.block_keys_values(layout.pad(self.norm_memory(memory)), layout)
        flat = x.flatten(0, 1)
        index, out = [], []
        for chunk, block, distance, offset in layout.query_chunks(query_position, size):
            bias = distance_bias.from_distance(distance, offset)
            out.append(self._attend(flat[chunk][None], key[block][None], value[block][None],
                                    bias)[0])
            index.append(chunk)
        return flat.index_copy(0, torch.cat(index), torch.cat(out)).view_as(x)

    def _attend(self, x, key, value, bias):
        x = x + self.attention.attend(self.norm_query(x), key, value, bias)
        return x + self.mlp(self.norm_mlp(x))


class AttentionPooling(nn.Module):
    """Pool a set of patch states into one vector with learned queries (one per head).

    Parameters
    ----------
    width : int
        Model width.
    n_heads : int
        Number of attention heads; must divide ``width``.

    Examples
    --------
    Two spectra of six patch states, the second with only three active
    patches: each pools to one vector, and inactive patches do not count.

    >>> import torch
    >>> from spectok.model import AttentionPooling
    >>> _ = torch.manual_seed(0)
    >>> pooling = AttentionPooling(width=16, n_heads=2)
    >>> states = torch.randn(2, 6, 16)
    >>> active = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    >>> pooled = pooling(states, active)
    >>> pooled.shape
    torch.Size([2, 16])
    >>> states[1, 3:] = 0.0
    >>> bool(torch.allclose(pooling(states, active), pooled))
    True
    """

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
