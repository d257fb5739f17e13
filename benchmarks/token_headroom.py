"""How much of a spectrum the tokens hold, whatever the decoder makes of them.

Run: python benchmarks/token_headroom.py [--model NAME_OR_JSON] [--instrument sdss]
     [--snr 30] [--train 300] [--test 60] [--threads 2]

Observes MILES stars of the benchmark's training split (``--train``) and
test split (``--test``) through a one-arm instrument, encodes them, and fits
a small network (scikit-learn's ``MLPRegressor``, two hidden layers of 512)
from each patch's token and its two neighbours' to the patch's normalised
pixels, on the training stars. It prints, on the test stars, the reduced χ²
against the data errors (summed over all pixels of all stars, each patch of
full pixels) of that network and of the model's own decoder on the same
pixels. A network far below the decoder means the tokens hold detail that
the decoder loses. About two minutes on two cores.
"""

import argparse
import time

import numpy as np
import torch
from sklearn.neural_network import MLPRegressor

import spectok
from spectok.adapter import prepare_spectrum, to_batch
from spectok.datasets import benchmark_split, load_miles, observe


def stars(rows, instrument, snr, seed):
    miles = load_miles()
    return [observe(miles.spectra[i], instrument, snr=snr, rng=[seed, int(i)]) for i in rows]


def patch_table(spectra, model, batch_size=16):
    """Per active full patch: its token and its neighbours', flux, σ, validity, decoder flux."""
    size = model.config.patch_size
    prepared = [prepare_spectrum(s, i, None, size) for i, s in enumerate(spectra)]
    columns = [[] for _ in range(5)]
    for start in range(0, len(prepared), batch_size):
        batch = to_batch(prepared[start:start + batch_size], size, warn_missing_uncertainty=False)
        with torch.inference_mode():
            encoded, mean, _ = model(*batch.model_inputs())
        tokens = encoded["tokens"].float().numpy()
        rows, n_patches, _ = tokens.shape
        padded = np.pad(tokens, ((0, 0), (1, 1), (0, 0)))
        features = np.concatenate([padded[:, 1:-1], padded[:, :-2], padded[:, 2:]], axis=2)
        keep = (encoded["active"] & (encoded["n_pixels"] == size)).numpy()
        for column, values in zip(columns, (features, batch.flux, batch.sigma, batch.valid,
                                            mean.float())):
            values = np.asarray(values).reshape(rows, n_patches, -1)
            column.append(values[keep])
    return [np.concatenate(column) for column in columns]


def reduced_chi2(predicted, flux, sigma, valid):
    return float(np.sum(((flux - predicted) / sigma) ** 2 * valid) / np.sum(valid))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="spectok-small")
    parser.add_argument("--instrument", default="sdss")
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--test", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = spectok.load_model(args.model)
    train_rows, test_rows = benchmark_split("miles", load_miles().labels)
    rng = np.random.default_rng(args.seed)
    train_rows = rng.choice(train_rows, min(args.train, len(train_rows)), replace=False)
    test_rows = rng.choice(test_rows, min(args.test, len(test_rows)), replace=False)
    started = time.perf_counter()
    x_train, y_train = patch_table(stars(train_rows, args.instrument, args.snr, 1), model)[:2]
    x_test, flux, sigma, valid, decoded = patch_table(
        stars(test_rows, args.instrument, args.snr, 2), model)
    network = MLPRegressor(hidden_layer_sizes=(512, 512), max_iter=60, early_stopping=True,
                           random_state=args.seed).fit(x_train, y_train)
    print(f"{args.model}, MILES stars seen as {args.instrument} at S/N {args.snr:g}: "
          f"{len(train_rows)} training, {len(test_rows)} test stars "
          f"({len(x_train)} and {len(x_test)} full patches), {time.perf_counter() - started:.0f} s")
    print(f"reduced chi2 of the test stars' pixels, model's decoder:          "
          f"{reduced_chi2(decoded, flux, sigma, valid):.2f}")
    print(f"reduced chi2 of the test stars' pixels, network on frozen tokens: "
          f"{reduced_chi2(network.predict(x_test), flux, sigma, valid):.2f}")


if __name__ == "__main__":
    main()
