"""Encode throughput of the peer spectrum encoders, for `performance.py`.

Run it in an environment of its own: the peers are not spectok dependencies
and this script does not import spectok. Set one up with::

    python -m venv peers-venv
    peers-venv/bin/pip install torch==2.13.0 numpy
    peers-venv/bin/pip install --no-deps polymathic-aion spender
    peers-venv/bin/pip install jaxtyping einops huggingface_hub scipy gputil humanize psutil

then ``python benchmarks/performance.py --peers-python peers-venv/bin/python``
calls ``peers-venv/bin/python benchmarks/peers.py --json`` and puts the
results beside spectok's.

Each peer is built at its published configuration with random weights
(weights do not change the speed) and timed on ready-made tensors, without
reading or unit handling:

* **spender** (Melchior et al. 2023): ``spender.SpectrumEncoder`` with the
  10 latents of the SDSS model, on the 3,921-pixel SDSS grid of ``spender.data.sdss``.
* **AION-1 spectrum codec** (Parker et al. 2025, ``polymathic-aion``):
  ``SpectrumCodec`` with the published ConvNeXt encoder (depths 3-3-9-3,
  widths 96-192-384-768), lookup-free quantiser (10 bits, 1,024 codes) and
  latent grid of 8,704 pixels; ``codec.encode`` of 4,600-pixel SDSS-like spectra.
* **AstroCLIP SpecFormer** (Parker et al. 2024): re-created below from the
  published source and ``configs/specformer.yaml`` (6 blocks, width 768,
  6 heads, 20-pixel slices overlapping by 10 over 7,781 pixels, so 778
  tokens); the forward pass of 7,781-pixel spectra.
"""

import argparse
import importlib.util
import json
import math
import sys
import time
import types

import torch
import torch.nn.functional as F
from torch import nn


class _SpecFormerBlock(nn.Module):
    """AstroCLIP's pre-LN transformer block: LN, self-attention, LN, 4x GELU MLP (biases)."""

    def __init__(self, width, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.layernorm1 = nn.LayerNorm(width)
        self.attention = nn.Linear(width, 3 * width)
        self.projection = nn.Linear(width, width)
        self.layernorm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, x):
        batch, length, width = x.shape
        q, k, v = (t.view(batch, length, self.n_heads, -1).transpose(1, 2)
                   for t in self.attention(self.layernorm1(x)).split(width, dim=2))
        y = F.scaled_dot_product_attention(q, k, v)
        x = x + self.projection(y.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.layernorm2(x))


class SpecFormer(nn.Module):
    """AstroCLIP's spectrum encoder at its published configuration.

    Parameters follow ``configs/specformer.yaml`` of PolymathicAI/AstroCLIP:
    ``input_dim=22`` (20-pixel slices plus 2 padding columns), ``embed_dim=768``,
    ``num_layers=6``, ``num_heads=6``, ``max_len=800``, no dropout.
    """

    def __init__(self, input_dim=22, width=768, n_layers=6, n_heads=6, max_len=800,
                 section=20, overlap=10):
        super().__init__()
        self.section, self.step = section, section - overlap
        self.data_embed = nn.Linear(input_dim, width)
        self.position_embed = nn.Embedding(max_len, width)
        self.blocks = nn.ModuleList(_SpecFormerBlock(width, n_heads) for _ in range(n_layers))
        self.final_layernorm = nn.LayerNorm(width)
        self.head = nn.Linear(width, input_dim)

    def preprocess(self, spectrum):
        """Standardise, cut into overlapping slices, and put mean and spread in token 0."""
        std = spectrum.std(1, keepdim=True).clip(0.2)
        mean = spectrum.mean(1, keepdim=True)
        x = ((spectrum - mean) / std).unfold(1, self.section, self.step)
        x = F.pad(x, (2, 0, 1, 0))
        x[:, 0, 0] = (mean.squeeze(1) - 2) / 2
        x[:, 0, 1] = (std.squeeze(1) - 2) / 8
        return x

    def forward(self, spectrum):
        x = self.preprocess(spectrum)
        position = torch.arange(x.shape[1], device=x.device)
        x = self.data_embed(x) + self.position_embed(position)
        for block in self.blocks:
            x = block(x)
        x = self.final_layernorm(x)
        return {"reconstructions": self.head(x), "embedding": x}


def _import_without_package_init(package, module):
    """Import ``package.module`` without running ``package/__init__.py``.

    spender's ``__init__`` imports its normalising flows (``nflows``), which
    its encoder does not use.
    """
    spec = importlib.util.find_spec(package)
    if package not in sys.modules:
        stub = types.ModuleType(package)
        stub.__path__ = list(spec.submodule_search_locations)
        sys.modules[package] = stub
    return importlib.import_module(f"{package}.{module}")


def spender_encoder(device="cpu"):
    """``(name, encode, make_batch, pixels)`` for spender's SDSS encoder."""
    model = _import_without_package_init("spender", "model")
    encoder = model.SpectrumEncoder(None, 10).eval().to(device)
    pixels = len(torch.arange(3.578, 3.97, 0.0001))   # spender.data.sdss.SDSS._wave_obs

    def make_batch(n):
        return (1 + 0.1 * torch.randn(n, pixels, device=device),)
    return "spender encoder (SDSS)", encoder, make_batch, pixels


def aion_codec(device="cpu"):
    """``(name, encode, make_batch, pixels)`` for the AION-1 spectrum codec."""
    from aion.codecs.spectrum import SpectrumCodec
    from aion.modalities import Spectrum
    codec = SpectrumCodec(encoder_depths=(3, 3, 9, 3), encoder_dims=(96, 192, 384, 768),
                          latent_channels=768, embedding_dim=10, dim=10,
                          codebook_size=1024).eval().to(device)
    pixels = 4600
    wavelength = torch.logspace(math.log10(3600), math.log10(10400), pixels, device=device)

    def make_batch(n):
        return (Spectrum(flux=1 + 0.1 * torch.randn(n, pixels, device=device),
                         ivar=torch.full((n, pixels), 100.0, device=device),
                         mask=torch.zeros(n, pixels, dtype=torch.bool, device=device),
                         wavelength=wavelength.repeat(n, 1)),)
    return "AION-1 spectrum codec", codec.encode, make_batch, pixels


def specformer(device="cpu"):
    """``(name, encode, make_batch, pixels)`` for AstroCLIP's SpecFormer."""
    model = SpecFormer().eval().to(device)
    pixels = 7781

    def make_batch(n):
        return (1 + 0.1 * torch.randn(n, pixels, device=device),)
    return "AstroCLIP SpecFormer", model, make_batch, pixels


PEERS = {"spender": spender_encoder, "aion": aion_codec, "specformer": specformer}


def synchronize(device):
    """Wait for the work queued on ``device`` (a no-op on the CPU), so that wall clocks see it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def throughput(encode, make_batch, batch_size, min_repeats, max_seconds, max_repeats=20,
               device="cpu"):
    """Spectra per second of ``encode``, by wall clock and by CPU time of this process.

    Medians over timed calls after an untimed one: at least ``min_repeats``,
    more (up to ``max_repeats``) while less than ``max_seconds`` have passed.
    On a shared machine the CPU-time rate leaves out the time the process
    waited for a core. On a GPU each call is timed to the end of its queued
    work.
    """
    inputs = make_batch(batch_size)
    wall, cpu = [], []
    with torch.inference_mode():
        encode(*inputs)
        synchronize(device)
        started = time.perf_counter()
        while len(wall) < min_repeats or (len(wall) < max_repeats
                                          and time.perf_counter() - started < max_seconds):
            start, start_cpu = time.perf_counter(), time.process_time()
            encode(*inputs)
            synchronize(device)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return {"batch_size": batch_size, "repeats": len(wall),
            "spectra_per_second": batch_size / sorted(wall)[len(wall) // 2],
            "spectra_per_cpu_second": batch_size / sorted(cpu)[len(cpu) // 2]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="time budget per measurement beyond its first timed call")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda'")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    for key in args.peers:
        name, encode, make_batch, pixels = PEERS[key](args.device)
        for batch_size in args.batch_sizes:
            row = throughput(encode, make_batch, batch_size, min_repeats=1 if batch_size > 1
                             else 3, max_seconds=args.seconds, device=args.device)
            row.update(peer=key, name=name, pixels=pixels)
            results.append(row)
            if not args.json:
                print(f"{name:28s} batch {batch_size:4d}: "
                      f"{row['spectra_per_second']:8.2f} spectra/s ({row['repeats']} calls)")
    if args.json:
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                          "results": results}))


if __name__ == "__main__":
    main()
