"""Where a model's reconstruction χ² comes from: which pixels and which wavelengths.

Run: python benchmarks/reconstruction_residuals.py [--model NAME_OR_JSON]
     [--source miles|quasars] [--instrument sdss] [--snr 30] [-n 24]

Encodes held-out spectra (MILES test stars of the benchmark split at S/N
``--snr``, or simulated quasars at 0.1 ≤ z ≤ 4.5 with host galaxies and their
own S/N of 3-50) observed through a one-arm instrument, renders them
back on their own pixels with `spectok.decode`, and prints, over those spectra:
the median reduced χ² against the data errors, the same against the data
errors and the model's own scatter added in quadrature, the share of χ² in the
worst 5 % of each spectrum's pixels, and the mean χ² per pixel in ten equal
steps of ln λ across the instrument's range.
"""

import argparse

import astropy.units as u
import numpy as np
import torch

import spectok
from spectok.datasets import (benchmark_split, load_miles, load_ssp_templates, observe,
                              simulate_quasars)


def held_out_spectra(source, instrument, snr, n, seed):
    """``n`` held-out spectra of ``source`` observed through ``instrument``."""
    if source == "quasars":
        return list(simulate_quasars(n, instrument, seed=10_000 + seed,
                                     host_templates=load_ssp_templates()).spectra)
    miles = load_miles()
    _, test = benchmark_split("miles", miles.labels)
    rows = np.random.default_rng(seed).choice(test, size=min(n, len(test)), replace=False)
    return [observe(miles.spectra[i], instrument, snr=snr, rng=[seed, int(i)]) for i in rows]


def residuals(spectrum, model):
    """(ln λ, (data − model)/σ, model scatter / σ) on the valid pixels of one spectrum."""
    if isinstance(spectrum, list):
        raise ValueError("choose a one-arm instrument: this script reads one array per spectrum")
    rendered = spectok.decode(spectok.encode(spectrum, model=model), spectrum.spectral_axis,
                              model=model)
    with np.errstate(divide="ignore"):  # masked pixels have zero inverse variance
        sigma = spectrum.uncertainty.represent_as(
            type(rendered.uncertainty)).quantity.to_value(spectrum.flux.unit)
    valid = ~spectrum.mask & np.isfinite(sigma) & (sigma > 0)
    flux = spectrum.flux.value
    model_flux = rendered.flux.to_value(spectrum.flux.unit)
    scatter = rendered.uncertainty.quantity.to_value(spectrum.flux.unit)
    log_wave = np.log(spectrum.spectral_axis.to_value(u.AA, equivalencies=u.spectral()))
    return (log_wave[valid], (flux - model_flux)[valid] / sigma[valid],
            scatter[valid] / sigma[valid])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="spectok-small")
    parser.add_argument("--source", choices=("miles", "quasars"), default="miles")
    parser.add_argument("--instrument", default="sdss")
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("-n", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = spectok.get_model(args.model, device="cpu")
    spectra = held_out_spectra(args.source, args.instrument, args.snr, args.n, args.seed)
    per_spectrum = [residuals(s, model) for s in spectra]
    chi2 = np.array([np.mean(r ** 2) for _, r, _ in per_spectrum])
    chi2_with_scatter = np.array([np.mean(r ** 2 / (1 + s ** 2)) for _, r, s in per_spectrum])
    worst_share = [np.sort(r ** 2)[-max(1, len(r) // 20):].sum() / np.sum(r ** 2)
                   for _, r, _ in per_spectrum]
    what = {"miles": f"MILES test stars at S/N {args.snr:g}", "quasars": "simulated quasars"}
    print(f"{getattr(model, 'name', args.model)}: {len(spectra)} {what[args.source]} "
          f"seen through {args.instrument}")
    print(f"median reduced χ² against the data errors:            {np.median(chi2):.2f}")
    print(f"median reduced χ² against data errors ⊕ model scatter: "
          f"{np.median(chi2_with_scatter):.2f}")
    print(f"median share of χ² in the worst 5 % of pixels:         {np.median(worst_share):.2f}")

    log_wave = np.concatenate([w for w, _, _ in per_spectrum])
    r2 = np.concatenate([r ** 2 for _, r, _ in per_spectrum])
    edges = np.linspace(log_wave.min(), log_wave.max(), 11)
    step = np.clip(np.digitize(log_wave, edges) - 1, 0, 9)
    print("mean χ² per pixel by wavelength:")
    for k in range(10):
        lo, hi = np.exp(edges[k:k + 2])
        mean = f"{r2[step == k].mean():8.2f}" if np.any(step == k) else "  (no valid pixels)"
        print(f"  {lo:8.0f} – {hi:8.0f} Å  {mean}")


if __name__ == "__main__":
    main()
