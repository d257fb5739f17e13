"""The network itself: shapes, patch activity, hiding, padding, gradients, config."""

import copy
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from spectok.model import (CONFIGS, Attention, DistanceBias, LogWavelengthFeatures,
                           SpectralTokenizer, TokenizerConfig)

P = CONFIGS["tiny"].patch_size


def _inputs(batch=2, n_pixels=3 * P, seed=0):
    """Model inputs for ``batch`` fully valid spectra of ``n_pixels`` each."""
    generator = torch.Generator().manual_seed(seed)
    start = 8.2 + 0.05 * torch.arange(batch, dtype=torch.float64)[:, None]
    log_wave = start + 1e-4 * torch.arange(n_pixels, dtype=torch.float64)
    flux = 1 + 0.1 * torch.randn(batch, n_pixels, generator=generator)
    sigma = torch.full((batch, n_pixels), 0.02)
    valid = torch.ones(batch, n_pixels, dtype=torch.bool)
    spacing = torch.full((batch, n_pixels), 1e-4)
    return [log_wave, flux, sigma, valid, valid.clone(), spacing]


def test_encode_shapes(tiny_model):
    c = tiny_model.config
    encoded = tiny_model.encode(*_inputs(2, 3 * P))
    assert encoded["tokens"].shape == (2, 3, c.token_dim)
    assert encoded["embedding"].shape == (2, c.width)
    assert encoded["centre"].shape == (2, 3) and encoded["centre"].dtype == torch.float64
    assert encoded["log_spacing"].shape == (2, 3)
    assert encoded["active"].shape == (2, 3) and encoded["active"].dtype == torch.bool
    assert encoded["active"].all()
    assert torch.isfinite(encoded["tokens"]).all() and torch.isfinite(encoded["embedding"]).all()
    log_wave = _inputs(2, 3 * P)[0]
    torch.testing.assert_close(encoded["centre"], log_wave.reshape(2, 3, P).mean(-1))
    torch.testing.assert_close(encoded["log_spacing"], torch.full((2, 3), -4.0))


def test_forward_shapes(tiny_model):
    inputs = _inputs(2, 2 * P)
    encoded, mean, log_scatter = tiny_model(*inputs)
    assert mean.shape == log_scatter.shape == (2, 2 * P)
    query = inputs[0][:, :17] + 1e-5
    _, mean, log_scatter = tiny_model(*inputs, query_log_wavelength=query,
                                      query_spacing=torch.full((2, 17), 1e-4))
    assert mean.shape == log_scatter.shape == (2, 17)
    assert torch.isfinite(mean).all() and torch.isfinite(log_scatter).all()


def test_pixels_must_fill_whole_patches(tiny_model):
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        tiny_model.encode(*_inputs(1, P + 3))


@pytest.mark.parametrize("n_valid, active", [(P // 2 - 1, False), (P // 2, True), (0, False),
                                             (P, True)])
def test_patch_needs_half_its_pixels(tiny_model, n_valid, active):
    inputs = _inputs(1, 2 * P)
    inputs[3][0, :P] = torch.arange(P) < n_valid
    assert tiny_model.encode(*inputs)["active"][0].tolist() == [active, True]


@pytest.mark.parametrize("n_valid, active", [(3, False), (4, True)])
def test_partial_patch_counts_real_pixels_only(tiny_model, n_valid, active):
    """The last patch of a 40-pixel spectrum has 8 real pixels: 4 valid is half."""
    inputs = _inputs(1, 2 * P)
    inputs[4][0, 40:] = False               # observed
    inputs[3][0, 40:] = False               # valid
    inputs[3][0, P:40] = torch.arange(8) < n_valid
    assert tiny_model.encode(*inputs)["active"][0].tolist() == [True, active]


def test_inactive_patch_does_not_influence_others(tiny_model):
    inputs = _inputs(1, 3 * P)
    inputs[3][0, P:2 * P - 5] = False       # patch 1: 5 of 32 pixels valid, so inactive
    before = tiny_model.encode(*inputs)
    assert before["active"][0].tolist() == [True, False, True]
    inputs[1][0, 2 * P - 5:2 * P] += 10.0   # change its few valid pixels
    after = tiny_model.encode(*inputs)
    torch.testing.assert_close(after["tokens"][:, [0, 2]], before["tokens"][:, [0, 2]])
    torch.testing.assert_close(after["embedding"], before["embedding"])
    assert not torch.allclose(after["tokens"][:, 1], before["tokens"][:, 1])


def test_invalid_pixel_values_are_ignored(tiny_model):
    inputs = _inputs(1, 2 * P)
    inputs[3][0, 5:9] = False
    before = tiny_model.encode(*inputs)
    inputs[1][0, 5:9] = 1e6
    inputs[2][0, 5:9] = 0.0
    after = tiny_model.encode(*inputs)
    assert torch.equal(after["tokens"], before["tokens"])
    assert torch.equal(after["embedding"], before["embedding"])


def test_hide_removes_patches_from_attention(tiny_model):
    inputs = _inputs(2, 4 * P)
    plain = tiny_model.encode(*inputs)
    hide = torch.zeros(2, 4, dtype=torch.bool)
    hide[0, 1] = True
    hidden = tiny_model.encode(*inputs, hide=hide)
    assert hidden["active"].tolist() == [[True, False, True, True], [True] * 4]
    for key in ("tokens", "embedding"):
        assert torch.isfinite(hidden[key]).all()
    # the other patches of spectrum 0 no longer see patch 1
    assert not torch.allclose(hidden["tokens"][0, [0, 2, 3]], plain["tokens"][0, [0, 2, 3]],
                              atol=1e-6)
    assert not torch.allclose(hidden["embedding"][0], plain["embedding"][0], atol=1e-6)
    # spectrum 1 is untouched
    torch.testing.assert_close(hidden["tokens"][1], plain["tokens"][1])
    torch.testing.assert_close(hidden["embedding"][1], plain["embedding"][1])
    # and the decoder runs on what is left
    _, mean, log_scatter = tiny_model(*inputs, hide=hide)
    assert torch.isfinite(mean).all() and torch.isfinite(log_scatter).all()


def test_hiding_everything_is_an_error(tiny_model):
    with pytest.raises(ValueError, match="at least one patch with valid pixels"):
        tiny_model.encode(*_inputs(1, 2 * P), hide=torch.ones(1, 2, dtype=torch.bool))


def _padded_beside_a_neighbour(n_pixels, n_padding, n_neighbour):
    """A batch of two: a spectrum of ``n_pixels`` followed by ``n_padding`` pixels of padding
    (junk flux, neither valid nor observed), and another of ``n_neighbour`` pixels."""
    padded = []
    for k, x in enumerate(_inputs(1, n_pixels)):
        extra = x[:, -1:].expand(1, n_padding).clone()
        if k in (3, 4):                     # valid, observed: padding is neither
            extra[:] = False
        if k == 1:
            extra[:] = 123.0                # junk flux in the padding
        padded.append(torch.cat([x, extra], dim=1))
    return [torch.cat([a, b]) for a, b in zip(padded, _inputs(1, n_neighbour, seed=3))]


def test_rows_are_independent_and_padding_is_inert(tiny_model):
    """A spectrum's result does not depend on its neighbours or on its padding."""
    alone = tiny_model.encode(*_inputs(1, 2 * P))
    together = tiny_model.encode(*_padded_beside_a_neighbour(2 * P, 2 * P, 4 * P))
    torch.testing.assert_close(together["tokens"][0, :2], alone["tokens"][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(together["embedding"][0], alone["embedding"][0], atol=1e-5, rtol=0)
    assert together["active"][0].tolist() == [True, True, False, False]


def test_gradients_flow():
    torch.manual_seed(0)
    model = SpectralTokenizer(CONFIGS["tiny"]).train()
    inputs = _inputs(2, 3 * P)
    inputs[4][1, 2 * P + 7:] = False        # spectrum 1 is shorter: padding in its last patch
    inputs[3][1, 2 * P + 7:] = False
    inputs[3][0, 10:20] = False             # and some bad pixels
    hide = torch.zeros(2, 3, dtype=torch.bool)
    hide[0, 2] = True
    encoded, mean, log_scatter = model(*inputs, hide=hide)
    flux, sigma, valid = inputs[1], inputs[2], inputs[3]
    variance = sigma**2 + (2 * log_scatter).exp()
    nll = ((flux - mean) ** 2 / variance + variance.log()) * valid
    loss = nll.sum() / valid.sum() + 1e-3 * encoded["embedding"].pow(2).mean()
    assert torch.isfinite(loss)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert any(parameter.grad.abs().sum() > 0 for parameter in model.parameters())
    assert model.patch_projection.weight.grad.abs().sum() > 0


# -- the pixel basis -----------------------------------------------------------------------


def _with_pixel_basis(model, node_values=None):
    """``model`` with the pixel basis added; every patch's coefficients are ``node_values``."""
    other = SpectralTokenizer(dataclasses.replace(model.config, pixel_basis=True)).eval()
    missing = other.load_state_dict(model.state_dict(), strict=False).missing_keys
    assert missing and all(key.startswith("pixel_coefficients.") for key in missing)
    if node_values is not None:
        with torch.no_grad():
            other.pixel_coefficients[-1].bias.copy_(node_values)
    return other


def test_pixel_basis_starts_at_zero(tiny_model):
    """Switched on for trained weights, the basis changes nothing until it is trained."""
    inputs = _inputs(2, 3 * P)
    query = inputs[0][:, 5:40] + 3e-5
    spacing = torch.full((2, 35), 1e-4)
    for kwargs in ({}, {"query_log_wavelength": query, "query_spacing": spacing}):
        _, mean, log_scatter = tiny_model(*inputs, **kwargs)
        _, mean_basis, log_scatter_basis = _with_pixel_basis(tiny_model)(*inputs, **kwargs)
        torch.testing.assert_close(mean_basis, mean, atol=0, rtol=0)
        torch.testing.assert_close(log_scatter_basis, log_scatter, atol=0, rtol=0)


def _spline_mean(nodes, node_from, node_to):
    """Mean of the linear spline through ``nodes`` (constant beyond its ends, out to the patch
    edges at -½ and n - ½) over the part of an interval, in node units, inside those edges."""
    n = len(nodes)
    t = np.linspace(max(node_from, -0.5), min(node_to, n - 0.5), 20001)
    return float(np.mean(np.interp(t, np.arange(n), np.asarray(nodes, dtype=float))))


def _reference_detail(coefficients, encoded, log_wavelength, spacing):
    """The pixel detail by brute force: the active patch a wavelength lies deepest inside (in
    its own pixels) owns it; the requested pixel's mean of its spline over the part inside."""
    detail = np.zeros(log_wavelength.shape)
    for row in range(log_wavelength.shape[0]):
        centre = encoded["centre"][row].numpy()
        step = 10.0 ** encoded["log_spacing"][row].double().numpy()
        n = encoded["n_pixels"][row].numpy()
        active = encoded["active"][row].numpy()
        for q, (wave, width) in enumerate(zip(log_wavelength[row].numpy(),
                                              spacing[row].double().numpy())):
            depth = np.where(active, np.abs(wave - centre) / step / (0.5 * np.maximum(n, 1)),
                             np.inf)
            p = int(np.argmin(depth))
            if depth[p] <= 1:
                node = (wave - centre[p]) / step[p] + 0.5 * (n[p] - 1)
                half = 0.5 * width / step[p]
                detail[row, q] = _spline_mean(coefficients[row, p, :n[p]], node - half,
                                              node + half)
    return torch.as_tensor(detail, dtype=torch.float32)


def _arms_with_a_partial_patch_a_gap_and_a_linear_grid():
    """Row 0: 40 log-uniform pixels (a full patch and one of 8) and, after a gap, 50 pixels
    uniform in λ (the last patch has 18); patch 1 of row 1 is hidden, patch 2 invalid."""
    inputs = _inputs(2, 4 * P)
    log_wave, valid, observed, spacing = inputs[0], inputs[3], inputs[4], inputs[5]
    arm_a = 8.2 + 1e-4 * torch.arange(40, dtype=torch.float64)
    arm_b = torch.log(4500.0 + 0.5 * torch.arange(50, dtype=torch.float64))
    for start, arm in ((0, arm_a), (2 * P, arm_b)):
        log_wave[0, start:start + len(arm)] = arm
        log_wave[0, start + len(arm):start + 2 * P] = arm[-1]
        observed[0, start + len(arm):start + 2 * P] = False
        steps = torch.diff(arm)
        spacing[0, start:start + len(arm)] = torch.cat([steps[:1], steps]).float()
    valid[0] &= observed[0]
    valid[1, 2 * P:3 * P] = False
    hide = torch.zeros(2, 4, dtype=torch.bool)
    hide[1, 1] = True
    return inputs, hide


def test_pixel_basis_is_each_patch_spline_averaged_over_each_requested_pixel(tiny_model):
    """Against a brute-force version, per patch and per row: real pixels (node k on pixel k,
    also in partial patches and on a grid uniform in λ), wavelengths just past an arm, in the
    gap between arms, in hidden and invalid patches, and pixels wide enough to straddle."""
    basis = _with_pixel_basis(tiny_model)
    with torch.no_grad():
        basis.pixel_coefficients[-1].weight.normal_(0, 3.0, generator=torch.Generator()
                                                   .manual_seed(5))
    captured = []
    basis.pixel_coefficients.register_forward_hook(lambda m, i, out: captured.append(out))
    inputs, hide = _arms_with_a_partial_patch_a_gap_and_a_linear_grid()
    log_wave, spacing = inputs[0], inputs[5]
    real = inputs[4][0]
    extra = torch.tensor([8.2 + 40.5e-4, 8.2 + 43e-4, 8.2 + 47e-4, 8.25,     # past arm A, gap
                          8.2 + 31.5e-4, 8.2 + 15.5e-4, math.log(4500.0 + 0.5 * 31.5)],
                         dtype=torch.float64)
    query = torch.stack([torch.cat([log_wave[0, real], extra]),
                         torch.cat([log_wave[1, :90], extra - 8.2 + log_wave[1, 0]])])
    query_spacing = torch.full_like(query, 1e-4, dtype=torch.float32)
    query_spacing[0, :90] = spacing[0, real]
    query_spacing[:, -3:] = torch.tensor([4e-4, 6e-4, 5e-4])                  # wide pixels
    _, with_basis, _ = basis(*inputs, hide=hide, query_log_wavelength=query,
                             query_spacing=query_spacing)
    _, without, _ = tiny_model(*inputs, hide=hide, query_log_wavelength=query,
                               query_spacing=query_spacing)
    encoded = basis.encode(*inputs, hide=hide)
    assert encoded["n_pixels"].tolist() == [[32, 8, 32, 18], [32, 32, 32, 32]]
    coefficients = captured[0].detach().double().numpy()
    expected = _reference_detail(coefficients, encoded, query, query_spacing)
    torch.testing.assert_close(with_basis - without, expected, atol=2e-3, rtol=1e-4)
    detail = with_basis - without
    assert (detail[0, 40:90] != 0).all()                  # arm B, uniform in λ: all owned
    assert (detail[0, 90:94] == 0).all()                  # past arm A and in the gap
    assert (detail[1, P:2 * P] == 0).all() and (detail[1, 2 * P:90] == 0).all()


def test_return_readout_gives_the_flux_without_the_pixel_detail(tiny_model):
    basis = _with_pixel_basis(tiny_model, node_values=torch.linspace(-1, 1, P))
    inputs = _inputs(2, 3 * P)
    _, mean, log_scatter, readout = basis(*inputs, return_readout=True)
    _, without, without_scatter = tiny_model(*inputs)
    torch.testing.assert_close(readout, without)
    torch.testing.assert_close(log_scatter, without_scatter)
    assert (mean - readout).abs().max() > 0.1
    # without the basis the readout is the flux itself
    _, mean, _, readout = tiny_model(*inputs, return_readout=True)
    torch.testing.assert_close(readout, mean, atol=0, rtol=0)


def test_pixel_basis_in_overlapping_arms_uses_a_patch_that_holds_the_wavelength(tiny_model):
    basis = _with_pixel_basis(tiny_model)
    with torch.no_grad():
        basis.pixel_coefficients[-1].weight.normal_(0, 3.0, generator=torch.Generator()
                                                   .manual_seed(6))
    captured = []
    basis.pixel_coefficients.register_forward_hook(lambda m, i, out: captured.append(out))
    inputs = _inputs(1, 4 * P)
    inputs[0][0, 2 * P:] = 8.2 + 40e-4 + 1.5e-4 * torch.arange(2 * P, dtype=torch.float64)
    inputs[5][0, 2 * P:] = 1.5e-4
    query = 8.2 + torch.linspace(42e-4, 62e-4, 9, dtype=torch.float64)[None]
    query_spacing = torch.full_like(query, 1e-4, dtype=torch.float32)
    _, with_basis, _ = basis(*inputs, query_log_wavelength=query, query_spacing=query_spacing)
    _, without, _ = tiny_model(*inputs, query_log_wavelength=query, query_spacing=query_spacing)
    encoded = basis.encode(*inputs)
    coefficients = captured[0][0].detach().double().numpy()
    for q, detail in zip(query[0].numpy(), (with_basis - without)[0].tolist()):
        holders = []
        for p in range(4):
            step = 10.0 ** float(encoded["log_spacing"][0, p])
            node = (q - float(encoded["centre"][0, p])) / step + 0.5 * (P - 1)
            if -0.5 <= node <= P - 0.5:
                holders.append(_spline_mean(coefficients[p], node - 0.5e-4 / step,
                                            node + 0.5e-4 / step))
        assert len(holders) == 2
        assert min(abs(detail - h) for h in holders) < 2e-3


def test_pixel_basis_keeps_rows_independent_and_padding_inert(tiny_model):
    nodes = torch.randn(P, generator=torch.Generator().manual_seed(2))
    basis = _with_pixel_basis(tiny_model, nodes)
    _, alone, _ = basis(*_inputs(1, 2 * P))
    _, together, _ = basis(*_padded_beside_a_neighbour(2 * P, 2 * P, 4 * P))
    torch.testing.assert_close(together[0, :2 * P], alone[0], atol=1e-5, rtol=0)


def test_pixel_basis_under_local_attention(tiny_model):
    """Beyond the attention limit the detail is the same spline (exact with one window)."""
    basis = _with_pixel_basis(tiny_model, torch.linspace(-1, 1, P))
    inputs = _inputs(2, 6 * P)
    inputs[3][0, P:2 * P] = False
    _, full, _ = basis(*inputs)
    _, local, _ = _with_attention(basis, limit=0, window=8)(*inputs)
    torch.testing.assert_close(local, full, atol=1e-5, rtol=0)


def test_pixel_basis_needs_the_pixels_per_patch_and_patches_of_two(tiny_model):
    basis = _with_pixel_basis(tiny_model)
    inputs = _inputs(1, 2 * P)
    encoded = basis.encode(*inputs)
    with pytest.raises(ValueError, match="pixel basis needs n_pixels"):
        basis.decode(encoded["tokens"], encoded["centre"], encoded["log_spacing"],
                     encoded["active"], inputs[0], inputs[5])
    with pytest.raises(ValueError, match="patches of at least 2 pixels, got patch_size=1"):
        TokenizerConfig(patch_size=1, pixel_basis=True)


def test_encoder_parameters_are_all_that_tokens_depend_on(tiny_model):
    """Changing every other parameter leaves tokens and embeddings; each of these matters."""
    model = _with_pixel_basis(tiny_model)
    inputs = _inputs(2, 3 * P)
    before = model.encode(*inputs)
    encoder = {id(p) for p in model.encoder_parameters()}
    with torch.no_grad():
        for parameter in model.parameters():
            if id(parameter) not in encoder:
                parameter.add_(1.0)
    after = model.encode(*inputs)
    for key in ("tokens", "embedding"):
        torch.testing.assert_close(after[key], before[key], atol=0, rtol=0)
    for parameter in model.encoder_parameters():
        with torch.no_grad():
            parameter.add_(0.5)
            changed = model.encode(*inputs)
            parameter.sub_(0.5)
        assert not (torch.equal(changed["tokens"], before["tokens"])
                    and torch.equal(changed["embedding"], before["embedding"]))


# -- attention: global below the limit, local beyond it ----------------------------------


def _with_attention(model, limit, window):
    """A copy of ``model`` attending locally beyond ``limit`` patches, in blocks of ``window``."""
    other = copy.deepcopy(model)
    other.config = dataclasses.replace(model.config, full_attention_limit=limit,
                                       attention_window=window)
    return other


def _reference_encoder_blocks(model, x, position, active):
    """The encoder blocks written out with an explicit softmax and a masked bias per layer."""
    for distance_bias, block in zip(model.encoder_bias, model.encoder):
        distance = (position[:, None, :, None] - position[:, None, None, :]).abs()
        bias = -distance_bias.log_slope.exp()[None, :, None, None] * distance
        bias = bias.masked_fill(~active[:, None, None, :], -math.inf)
        h = block.norm_attention(x)
        attention = block.attention
        q = attention._split(attention.query(h))
        k, v = (attention._split(t) for t in attention.key_value(h).chunk(2, dim=-1))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias, dim=-1)
        x = x + attention.out((weights @ v).transpose(1, 2).reshape(x.shape))
        x = x + block.mlp(block.norm_mlp(x))
    return x


def test_global_attention_matches_explicit_softmax(tiny_model):
    """Below the limit the encoder is exactly dense attention with the distance bias."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 12, tiny_model.config.width, generator=generator)
    position = torch.cumsum(torch.rand(2, 12, generator=generator) * 0.01, dim=1)
    active = torch.rand(2, 12, generator=generator) > 0.3
    active[:, 0] = True
    with torch.no_grad():
        torch.testing.assert_close(tiny_model._encoder_blocks(x, position, active),
                                   _reference_encoder_blocks(tiny_model, x, position, active),
                                   atol=1e-5, rtol=0)


def test_local_attention_is_exact_when_one_window_holds_the_spectrum(tiny_model):
    inputs = _inputs(2, 6 * P)
    inputs[3][0, P:2 * P] = False
    full = tiny_model.encode(*inputs)
    local = _with_attention(tiny_model, limit=0, window=8).encode(*inputs)
    for key in ("tokens", "embedding"):
        torch.testing.assert_close(local[key], full[key], atol=1e-5, rtol=0)


def test_local_attention_is_close_to_global():
    """64 patches in blocks of 8: each query sees 16 patches and 16 segment summaries.

    Observed with this seed (untrained ``small`` model): 1.0 % relative L2 error on the
    embedding and 1.2 % on the tokens. The shipped model, whose shallowest heads look
    across the whole spectrum, differs by 6-10 % on 40,000-65,536-pixel spectra
    (cosine similarity above 0.995; see benchmarks/RESULTS.md).
    """
    torch.manual_seed(0)
    model = SpectralTokenizer(CONFIGS["small"]).eval()
    inputs = _inputs(1, 64 * P)
    full = model.encode(*inputs)
    local = _with_attention(model, limit=0, window=8).encode(*inputs)
    for key in ("embedding", "tokens"):
        error = (local[key] - full[key]).norm() / full[key].norm()
        assert error < 0.03, (key, float(error))


def test_local_attention_rows_are_independent_and_padding_is_inert(tiny_model):
    local = _with_attention(tiny_model, limit=4, window=4)
    alone = local.encode(*_inputs(1, 10 * P))
    together = local.encode(*_padded_beside_a_neighbour(10 * P, 7 * P, 17 * P))
    torch.testing.assert_close(together["tokens"][0, :10], alone["tokens"][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(together["embedding"][0], alone["embedding"][0], atol=1e-5,
                               rtol=0)


def test_local_attention_is_finite_with_dead_windows_and_trains():
    """A whole block of inactive patches gives finite outputs, and every gradient is finite."""
    torch.manual_seed(0)
    model = _with_attention(SpectralTokenizer(CONFIGS["tiny"]), limit=4, window=4).train()
    inputs = _inputs(2, 20 * P)
    inputs[3][0, 4 * P:12 * P] = False      # patches 4-11: two whole blocks without a valid pixel
    encoded, mean, _ = model(*inputs, query_log_wavelength=inputs[0][:, ::97],
                             query_spacing=inputs[5][:, ::97])
    assert encoded["active"][0, 4:12].logical_not().all()
    assert torch.isfinite(encoded["tokens"]).all() and torch.isfinite(mean).all()
    (mean.pow(2).mean() + encoded["embedding"].pow(2).mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all(), name
    assert model.encoder_bias[0].log_slope.grad.abs().sum() > 0


# -- building blocks -------------------------------------------------------------------


def test_wavelength_features():
    features = LogWavelengthFeatures(4, 1e-3, 1.0)
    log_wave = torch.linspace(8.0, 9.0, 11, dtype=torch.float64)[None]
    out = features(log_wave)
    assert out.shape == (1, 11, 8) and out.dtype == torch.float32
    assert out.abs().max() <= 1.0
    torch.testing.assert_close(out[..., :4] ** 2 + out[..., 4:] ** 2, torch.ones(1, 11, 4))
    # the longest period is 1 in ln λ
    torch.testing.assert_close(features(log_wave + 1.0), out, atol=1e-5, rtol=0)


def test_distance_bias_depends_on_differences_only():
    bias = DistanceBias(4)
    position = torch.tensor([[0.0, 0.1, 0.5]])
    active = torch.tensor([[True, True, False]])
    out = bias(position, position, active)
    assert out.shape == (1, 4, 3, 3)
    torch.testing.assert_close(bias(position + 0.7, position + 0.7, active), out)
    assert torch.isinf(out[..., 2]).all() and torch.isfinite(out[..., :2]).all()
    assert (out[..., 0, 0] == 0).all()


def test_attention_width_must_divide():
    with pytest.raises(ValueError, match="not divisible by n_heads"):
        Attention(30, 4)


def test_config_round_trip():
    for config in CONFIGS.values():
        values = json.loads(json.dumps(config.to_dict()))
        assert TokenizerConfig.from_dict(values) == config
    # descriptions written before the attention fields existed still load
    old = {k: v for k, v in CONFIGS["small"].to_dict().items()
           if k not in ("full_attention_limit", "attention_window")}
    assert TokenizerConfig.from_dict(old) == CONFIGS["small"]
    with pytest.raises(ValueError, match="attention_window must be an even"):
        TokenizerConfig(attention_window=7)


@pytest.mark.parametrize("fields, message", [
    # before: width=-1 raised torch's "Trying to create tensor with negative dimension" when
    # the model was built, width=0, patch_size=0 and token_dim=0 built a model that failed
    # on its first spectrum, and pixel_periods=(0.0, 1.0) raised "math domain error"
    ({"width": -1}, "width must be a positive integer, got -1"),
    ({"width": 0}, "width must be a positive integer, got 0"),
    ({"patch_size": "32"}, "patch_size must be a positive integer, got '32'"),
    ({"token_dim": 0}, "token_dim must be a positive integer, got 0"),
    ({"encoder_depth": True}, "encoder_depth must be a positive integer, got True"),
    ({"width": 64.0}, "width must be a positive integer, got 64.0"),
    ({"width": 130, "n_heads": 4}, "n_heads must divide width, got width=130 and n_heads=4"),
    ({"pixel_periods": (0.0, 1.0)}, r"pixel_periods must be the \(shortest, longest\) period"),
    ({"position_periods": (10.0, 1e-3)}, "position_periods must be .* got \\(10.0, 0.001\\)"),
    ({"pixel_periods": 3}, "pixel_periods must be .* got 3"),
    ({"pixel_basis": 1}, "pixel_basis must be True or False, got 1"),
    ({"full_attention_limit": -1}, "full_attention_limit must be a non-negative integer"),
])
def test_a_configuration_that_cannot_make_a_model_is_refused_by_field(fields, message):
    with pytest.raises(ValueError, match=message):
        TokenizerConfig(**fields)
    with pytest.raises(ValueError, match=message):
        TokenizerConfig.from_dict({**CONFIGS["tiny"].to_dict(), **fields})
    TokenizerConfig(width=np.int64(64), pixel_periods=[np.float32(1e-4), 3])
    assert CONFIGS["base"].width == 512 and CONFIGS["base"].n_heads == 8
    with pytest.raises(ValueError, match=r"unknown tokenizer configuration keys: \['depth'\]"):
        TokenizerConfig.from_dict({"depth": 3})


def test_tiny_model_is_tiny(tiny_model):
    n_parameters = sum(p.numel() for p in tiny_model.parameters())
    assert n_parameters < 200_000
    assert not tiny_model.training
    assert math.isclose(tiny_model.pixel_features.n_features, 2 * CONFIGS["tiny"].pixel_frequencies)
