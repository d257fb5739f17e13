"""Where a model's reconstruction χ² comes from: which pixels and which wavelengths.

Run: python benchmarks/reconstruction_residuals.py [--model NAME_OR_JSON]
     [--source miles|quasars|spex] [--instrument sdss] [--snr 30] [-n 24]

Encodes held-out spectra (MILES test stars of the benchmark split at S/N
``--snr``, or simulated quasars at 0.1 ≤ z ≤ 4.5 with host galaxies and their
own S/N of 3-50, both observed through a one-arm instrument; or the SpeX
test sources of the benchmark split as published, with their own errors; a
drawn spectrum without errors is left out, and said so),
renders them back on their own pixels with `spectok.decode`, and prints, over
those spectra:
the median reduced χ² against the data errors, the same against the data
errors and the model's own scatter added in quadrature, the share of χ² in the
worst 5 % of each spectrum's pixels, the flux scale that best fits the
reconstruction to the data (1: no overall bias) and the χ² it leaves, the
median and mean χ² per pixel by the pixel's S/N, and the mean χ² per pixel in
ten equal steps of ln λ across the spectra's range.
For quasars it also gives the mean residual and χ² per pixel in three
rest-frame regions: the Lyα forest (< 1216 Å), the broad UV lines (1216-2000
Å) and redder; the median χ² of the quasars with the forest in view and of
those without; and the median χ² of every quasar over its pixels redward of
Lyα alone.
"""

import argparse

import astropy.units as u
import numpy as np
import torch

import spectok
from spectok.datasets import (benchmark_split, load_miles, load_spex, load_ssp_templates,
                              observe, simulate_quasars)


def held_out_spectra(source, instrument, snr, n, seed):
    """``n`` held-out spectra of ``source`` observed through ``instrument``."""
    if source == "quasars":
        return list(simulate_quasars(n, instrument, seed=10_000 + seed,
                                     host_templates=load_ssp_templates()).spectra)
    if source == "spex":
        spex = load_spex()
        _, test = benchmark_split("spex", spex.labels)
        rows = np.random.default_rng(seed).choice(test, size=min(n, len(test)), replace=False)
        chosen = [spex.spectra[i] for i in rows]
        with_errors = [s for s in chosen if s.uncertainty is not None]   # χ² needs them
        if len(with_errors) < len(chosen):
            print(f"{len(chosen) - len(with_errors)} of the {len(chosen)} SpeX spectra drawn "
                  "have no errors and are left out")
        return with_errors
    miles = load_miles()
    _, test = benchmark_split("miles", miles.labels)
    rows = np.random.default_rng(seed).choice(test, size=min(n, len(test)), replace=False)
    return [observe(miles.spectra[i], instrument, snr=snr, rng=[seed, int(i)]) for i in rows]


def residuals(spectrum, model):
    """(ln λ, (data − model)/σ, model scatter / σ, model/σ) on the valid pixels of one spectrum."""
    if isinstance(spectrum, list):
        raise ValueError("choose a one-arm instrument: this script reads one array per spectrum")
    rendered = spectok.decode(spectok.encode(spectrum, model=model), spectrum.spectral_axis,
                              model=model)
    with np.errstate(divide="ignore"):  # masked pixels have zero inverse variance
        sigma = spectrum.uncertainty.represent_as(
            type(rendered.uncertainty)).quantity.to_value(spectrum.flux.unit)
    valid = np.isfinite(sigma) & (sigma > 0)
    if spectrum.mask is not None:
        valid &= ~spectrum.mask
    flux = spectrum.flux.value
    model_flux = rendered.flux.to_value(spectrum.flux.unit)
    scatter = rendered.uncertainty.quantity.to_value(spectrum.flux.unit)
    log_wave = np.log(spectrum.spectral_axis.to_value(u.AA, equivalencies=u.spectral()))
    return (log_wave[valid], (flux - model_flux)[valid] / sigma[valid],
            scatter[valid] / sigma[valid], model_flux[valid] / sigma[valid])


def best_scale(residual, model):
    """The flux scale a minimising Σ (data − a·model)²/σ², and the reduced χ² left with it."""
    data = residual + model
    scale = np.sum(data * model) / np.sum(model * model)
    return scale, np.mean((data - scale * model) ** 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="spectok-small")
    parser.add_argument("--source", choices=("miles", "quasars", "spex"), default="miles")
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
    chi2 = np.array([np.mean(r ** 2) for _, r, _, _ in per_spectrum])
    chi2_with_scatter = np.array([np.mean(r ** 2 / (1 + s ** 2)) for _, r, s, _ in per_spectrum])
    worst_share = [np.sort(r ** 2)[-max(1, len(r) // 20):].sum() / np.sum(r ** 2)
                   for _, r, _, _ in per_spectrum]
    scales, chi2_scaled = np.transpose([best_scale(r, m) for _, r, _, m in per_spectrum])
    what = {"miles": f"MILES test stars at S/N {args.snr:g} seen through {args.instrument}",
            "quasars": f"simulated quasars seen through {args.instrument}",
            "spex": "SpeX test sources as published"}
    print(f"{model.name}: {len(spectra)} {what[args.source]}")
    print(f"median reduced χ² against the data errors:            {np.median(chi2):.2f}")
    print(f"median reduced χ² against data errors ⊕ model scatter: "
          f"{np.median(chi2_with_scatter):.2f}")
    print(f"median share of χ² in the worst 5 % of pixels:         {np.median(worst_share):.2f}")
    print(f"best-fit flux scale, median (16-84 %):                 {np.median(scales):.4f} "
          f"({np.percentile(scales, 16):.4f}-{np.percentile(scales, 84):.4f})")
    print(f"median reduced χ² with that scale:                     {np.median(chi2_scaled):.2f}")
    if args.source == "quasars":
        print("rest frame: median over spectra of the mean residual (σ) and of χ² per pixel:")
        regions = (("Lyα forest, < 1216 Å", 0, 1216), ("broad UV lines, 1216-2000 Å", 1216, 2000),
                   ("redder, ≥ 2000 Å", 2000, np.inf))
        for name, lo, hi in regions:
            stats = []
            for spectrum, (w, r, _, _) in zip(spectra, per_spectrum):
                rest = np.exp(w) / (1 + spectrum.meta["redshift"])
                inside = (rest >= lo) & (rest < hi)
                if inside.sum() >= 50:
                    stats.append((r[inside].mean(), np.mean(r[inside] ** 2)))
            if stats:
                mean, chi2_region = np.median(stats, axis=0)
                print(f"  {name:28s} {len(stats):3d} spectra  {mean:+.2f}  {chi2_region:6.2f}")
        forest = [np.exp(w) / (1 + s.meta["redshift"]) < 1216
                  for s, (w, _, _, _) in zip(spectra, per_spectrum)]
        in_view = np.array([f.sum() >= 50 for f in forest])
        print("median reduced χ² of the quasars with the Lyα forest in view (≥ 50 pixels) and "
              "without:")
        for label, chosen in (("forest in view", in_view), ("no forest", ~in_view)):
            if chosen.any():
                print(f"  {label:28s} {chosen.sum():3d} spectra  {np.median(chi2[chosen]):6.2f}")
        redward = [np.mean(r[~f] ** 2) for f, (_, r, _, _) in zip(forest, per_spectrum)
                   if (~f).any()]
        print(f"median reduced χ² of every quasar redward of Lyα alone: {np.median(redward):.2f}")

    log_wave = np.concatenate([w for w, _, _, _ in per_spectrum])
    r2 = np.concatenate([r ** 2 for _, r, _, _ in per_spectrum])
    snr = np.concatenate([r + m for _, r, _, m in per_spectrum])   # data / σ
    print("χ² per pixel by the pixel's S/N:            share   median     mean")
    for lo, hi in ((-np.inf, 10), (10, 30), (30, 100), (100, np.inf)):
        inside = (snr >= lo) & (snr < hi)
        if np.any(inside):
            print(f"  S/N {lo:>4g} to {hi:<4g}                          {inside.mean():5.2f} "
                  f"{np.median(r2[inside]):8.2f} {r2[inside].mean():8.2f}")
    edges = np.linspace(log_wave.min(), log_wave.max(), 11)
    step = np.clip(np.digitize(log_wave, edges) - 1, 0, 9)
    print("mean χ² per pixel by wavelength:")
    for k in range(10):
        lo, hi = np.exp(edges[k:k + 2])
        mean = f"{r2[step == k].mean():8.2f}" if np.any(step == k) else "  (no valid pixels)"
        print(f"  {lo:8.0f} – {hi:8.0f} Å  {mean}")


if __name__ == "__main__":
    main()
