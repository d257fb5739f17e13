"""The decoder: global attention up to ``full_attention_limit`` patches, local beyond it."""

import copy
import dataclasses

import pytest
import torch

import spectok.model.tokenizer as tokenizer_module
from spectok.model import CONFIGS, LocalLayout, SpectralTokenizer

P = CONFIGS["tiny"].patch_size


def _with_attention(model, limit, window):
    """A copy of ``model`` attending locally beyond ``limit`` patches, in blocks of ``window``."""
    other = copy.deepcopy(model)
    other.config = dataclasses.replace(model.config, full_attention_limit=limit,
                                       attention_window=window)
    return other


def _decoder_inputs(model, batch, patches, seed=0):
    """Encoded patches of ``batch`` spectra (with some inactive patches) and their pixel grids.

    Returns the positional arguments of `SpectralTokenizer.decode` before the queries, and
    the pixels' ln λ and spacing.
    """
    generator = torch.Generator().manual_seed(seed)
    n = patches * P
    start = 8.2 + 0.05 * torch.arange(batch, dtype=torch.float64)[:, None]
    log_wave = start + 1e-4 * torch.arange(n, dtype=torch.float64)
    flux = 1 + 0.1 * torch.randn(batch, n, generator=generator)
    valid = torch.ones(batch, n, dtype=torch.bool)
    valid[0, 3 * P:5 * P] = False
    valid[-1, n // 2:n // 2 + 9 * P] = False
    spacing = torch.full((batch, n), 1e-4)
    with torch.no_grad():
        encoded = model.encode(log_wave, flux, torch.full_like(flux, 0.02), valid,
                               torch.ones_like(valid), spacing)
    patches = [encoded[k] for k in ("tokens", "centre", "log_spacing", "active")]
    return patches, log_wave, spacing


def _global_decode(model, tokens, centre, log_spacing, active, log_wavelength, spacing):
    """`SpectralTokenizer.decode` as written before local attention: all patches, all queries."""
    memory = model.from_token(tokens) + model._position(centre, log_spacing)
    origin = centre[:, :1]
    relative = (centre - origin).float()
    for bias, block in zip(model.decoder_bias, model.decoder):
        memory = block(memory, bias(relative, relative, active))
    query = model.query_embedding(torch.cat([
        model.pixel_features(log_wavelength),
        model.position_features(log_wavelength),
        spacing.double().clamp(min=1e-12).log10().float().unsqueeze(-1),
    ], dim=-1))
    bias = model.query_bias((log_wavelength - origin).float(), relative, active)
    out = model.head(model.readout_norm(model.readout(query, memory, bias)))
    return out[..., 0], out[..., 1]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return SpectralTokenizer(CONFIGS["tiny"]).eval()


def test_below_the_limit_decode_is_unchanged(model):
    patches, log_wave, spacing = _decoder_inputs(model, 2, 40)
    query = log_wave[:, ::3].flip(-1), spacing[:, ::3]
    with torch.no_grad():
        new, old = model.decode(*patches, *query), _global_decode(model, *patches, *query)
    assert all(torch.equal(a, b) for a, b in zip(new, old))


def test_local_decode_is_exact_when_one_window_holds_the_spectrum(model):
    patches, log_wave, spacing = _decoder_inputs(model, 2, 6)
    # queries beyond both ends, in the gap of spectrum 0 and between pixels
    query = (torch.linspace(8.19, 8.27, 300, dtype=torch.float64).expand(2, -1),
             torch.full((2, 300), 1e-4))
    local = _with_attention(model, limit=0, window=8)
    with torch.no_grad():
        for new, old in zip(local.decode(*patches, *query), model.decode(*patches, *query)):
            torch.testing.assert_close(new, old, atol=1e-5, rtol=0)


def test_local_decode_is_close_to_global():
    """40 patches in blocks of 8: each pixel sees 16 patches and 10 segment summaries.

    The shallowest heads (initial slope 1 per unit of ln λ, as in the shipped model) look
    across the whole spectrum, and beyond the window they see segment summaries. Observed
    with this seed: 1.1 % relative L2 difference on the mean.
    """
    torch.manual_seed(0)
    model = SpectralTokenizer(CONFIGS["tiny"]).eval()
    patches, log_wave, spacing = _decoder_inputs(model, 1, 40)
    local = _with_attention(model, limit=8, window=8)
    with torch.no_grad():
        new, _ = local.decode(*patches, log_wave, spacing)
        old, _ = model.decode(*patches, log_wave, spacing)
    assert (new - old).norm() / old.norm() < 0.03


def test_local_decode_shapes_order_chunks_and_rows(model, monkeypatch):
    local = _with_attention(model, limit=4, window=4)
    patches, log_wave, spacing = _decoder_inputs(model, 2, 30)
    n = log_wave.shape[1]
    # training-style queries: a sorted subset padded with the first pixel
    index = torch.cat([torch.arange(0, n, 7), torch.zeros(50, dtype=torch.long)]).expand(2, -1)
    query = log_wave.gather(1, index), spacing.gather(1, index)
    with torch.no_grad():
        mean, log_scatter = local.decode(*patches, *query)
        assert mean.shape == log_scatter.shape == index.shape
        assert torch.isfinite(mean).all() and torch.isfinite(log_scatter).all()

        permutation = torch.randperm(index.shape[1], generator=torch.Generator().manual_seed(1))
        shuffled, _ = local.decode(*patches, *(q[:, permutation] for q in query))
        torch.testing.assert_close(shuffled, mean[:, permutation], atol=1e-6, rtol=0)

        monkeypatch.setattr(tokenizer_module, "_READOUT_CHUNK", 5)
        chunked, _ = local.decode(*patches, *query)
        torch.testing.assert_close(chunked, mean, atol=1e-6, rtol=0)

        alone, _ = local.decode(*(p[1:] for p in patches), *(q[1:] for q in query))
        torch.testing.assert_close(alone, mean[1:], atol=1e-6, rtol=0)


def test_local_decode_trains(model):
    local = _with_attention(model, limit=4, window=4).train()
    patches, log_wave, spacing = _decoder_inputs(local, 2, 20)
    tokens = patches[0].clone().requires_grad_()
    mean, log_scatter = local.decode(tokens, *patches[1:], log_wave[:, ::5], spacing[:, ::5])
    (mean.pow(2).mean() + log_scatter.exp().mean()).backward()
    decoder = [local.from_token, local.decoder_bias, local.decoder, local.query_embedding,
               local.query_bias, local.readout, local.head]
    for part in decoder:
        for name, parameter in part.named_parameters():
            assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name
    assert torch.isfinite(tokens.grad).all()


def test_local_decode_attends_to_windows_only(model, monkeypatch):
    """Every attention call of the decoder sees at most a window and its summaries."""
    window, patches_per_spectrum, chunk = 4, 64, 256
    local = _with_attention(model, limit=8, window=window)
    patches, log_wave, spacing = _decoder_inputs(model, 1, patches_per_spectrum)
    calls = []
    attend = torch.nn.functional.scaled_dot_product_attention

    def recording(q, k, v, attn_mask):
        calls.append((q.shape, k.shape[-2], attn_mask.shape))
        return attend(q, k, v, attn_mask=attn_mask)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    monkeypatch.setattr(tokenizer_module, "_READOUT_CHUNK", chunk)
    with torch.no_grad():
        local.decode(*patches, log_wave, spacing)
    keys = 2 * window + 2 * patches_per_spectrum // window
    assert len(calls) > model.config.decoder_depth
    for query_shape, n_key, mask_shape in calls:
        assert n_key <= keys and mask_shape[-1] == n_key
        assert mask_shape[-2] == query_shape[-2] <= chunk
    # the readout (one head axis, not heads × blocks): each pixel attends once
    readout = [shape[-2] for shape, _, _ in calls if shape[1] == model.config.n_heads]
    assert sum(readout) == log_wave.shape[1]


def test_queries_join_the_block_of_their_nearest_active_patch():
    """Arms that overlap in ln λ, a gap, and queries in any order."""
    generator = torch.Generator().manual_seed(0)
    position = torch.cat([torch.arange(20.0), torch.arange(12.0, 30.0)])[None]
    active = torch.rand(1, 38, generator=generator) > 0.2
    active[0, 5:15] = False
    layout = LocalLayout(position, active, window=4)
    query = torch.rand(1, 200, generator=generator) * 34 - 2
    distance = (query[0, :, None] - position[0]).abs().masked_fill(~active[0], float("inf"))
    seen = torch.zeros(200, dtype=torch.bool)
    for index, block, query_distance, offset in layout.query_chunks(query, size=7):
        assert len(index) <= 7 and not seen[index].any()
        seen[index] = True
        nearest = distance[index].min(-1).values
        ties = distance[index] == nearest[:, None]
        assert (ties[:, block * 4:(block + 1) * 4]).any(-1).all()
        assert query_distance.shape == (1, 1, len(index), offset.shape[-1])
    assert seen.all()
