"""How precisely classical regressions on the flux itself recover MILES labels.

Run: python benchmarks/stellar_label_ceiling.py [--components 30]

The stellar-parameter task of ``spectok bench`` asks for σ_MAD of log Teff,
log g and [Fe/H] on the MILES test stars. This script puts numbers beside
those targets that no embedding is involved in: the benchmark's own split
(709 training stars, 236 test stars, labels complete), each star's
published MILES spectrum (noiseless, 2.5 Å FWHM) resampled onto a log-λ
grid and normalised by its median, the log of that flux reduced to its
leading principal components (fitted on the training stars), and then, for
each parameter separately, a Gaussian-process regression (RBF kernel plus
white noise, its hyperparameters fitted by marginal likelihood on the
training stars) and an RBF support-vector regression (C, γ and ε chosen by
3-fold cross-validation on the training stars). It prints the σ_MAD of the
test residuals of each, in dex.

It then bounds how precise the catalogue labels themselves are, with no
regression at all: each labelled MILES star is paired with the star whose
log flux is closest to its own (root-mean-square difference over the grid),
and for the closest 10, 25 and 50 % of those pairs it prints the normalised
median absolute label difference (about 0, which is what two stars with one
spectrum should differ by), divided by √2. If two such stars carried
independent label errors of σ, that would be σ; real differences between
the two stars only add to it, so each row is an upper bound on the label
noise of stars like those (errors the two share, from one source or
calibration, would escape it), and so on the floor below which no
predictor's σ_MAD on their labels can be expected to go.
"""

import argparse
import warnings

import numpy as np

from spectok.adapter import prepare_spectrum
from spectok.benchmarks import log_grid, nmad, resample_to_grid
from spectok.benchmarks.context import _Data

_GRID = (3600.0, 7350.0, 1e-4)   # inside every MILES star's vacuum coverage


def log_flux(spectra):
    """Log of the median-normalised flux on `_GRID`, one row per spectrum.

    13 of the 984 MILES stars have a few pixels at or below zero (noise in
    the blue of cool stars); their flux is floored at 10⁻³ of the median
    before the log.
    """
    grid = log_grid(*_GRID)
    rows = [resample_to_grid(prepare_spectrum(s, i), grid) for i, s in enumerate(spectra)]
    flux = np.array(rows)
    if not np.all(np.isfinite(flux)):
        raise ValueError("a MILES spectrum does not cover the grid")
    flux = flux / np.median(flux, axis=1, keepdims=True)
    return np.log(np.maximum(flux, 1e-3))


def regressors():
    """The two per-parameter regressions, unfitted, by name."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVR

    return {
        "Gaussian process": GaussianProcessRegressor(
            ConstantKernel() * RBF(10.0) + WhiteKernel(0.1), normalize_y=True,
            n_restarts_optimizer=2, random_state=0),
        "support vectors": GridSearchCV(
            SVR(), {"C": [1.0, 10.0, 100.0], "gamma": [0.003, 0.01, 0.03],
                    "epsilon": [0.01, 0.1]}, cv=3),
    }


def spectral_twin_spread(x, y, fractions=(0.1, 0.25, 0.5)):
    """Label spread of stars paired with their nearest neighbour in ``x``.

    Parameters
    ----------
    x : `~numpy.ndarray`, shape (n_stars, n_features)
        One row per star (here the log flux on a common grid).
    y : `~numpy.ndarray`, shape (n_stars, n_labels)
        The stars' labels.
    fractions : sequence of float
        Keep the pairs whose distance is within this quantile of all
        nearest-neighbour distances.

    Returns
    -------
    list of (float, float, int, `~numpy.ndarray`)
        Per fraction: the fraction, the largest distance kept (rms over the
        features), the number of distinct pairs, and 1.4826 × the median
        absolute label difference over √2, one value per label.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> y = np.array([[1.0], [1.2], [3.0], [3.6]])
    >>> [(f, round(d, 3), n, np.round(s, 3)) for f, d, n, s in spectral_twin_spread(x, y, [1.0])]
    [(1.0, 0.1, 2, array([0.419]))]
    """
    squares = (x ** 2).sum(1)
    distance = np.sqrt(np.clip(squares[:, None] + squares[None, :] - 2 * x @ x.T, 0, None)
                       / x.shape[1])
    np.fill_diagonal(distance, np.inf)
    nearest = distance.argmin(1)
    closest = distance[np.arange(len(x)), nearest]
    rows = []
    for fraction in fractions:
        limit = np.quantile(closest, fraction)
        kept = np.flatnonzero(closest <= limit)
        pairs = np.array(sorted({tuple(sorted(p)) for p in zip(kept, nearest[kept])}))
        # the sign of a difference only says which star of the pair came first
        difference = np.abs(y[pairs[:, 0]] - y[pairs[:, 1]])
        spread = 1.4826 * np.median(difference, axis=0) / np.sqrt(2)
        rows.append((fraction, float(limit), len(pairs), spread))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=30,
                        help="principal components of the log flux (default 30)")
    args = parser.parse_args(argv)
    if args.components < 1:
        parser.error(f"--components must be at least 1, got {args.components}")
    from sklearn.base import clone
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    data = _Data(quick=False, seed=0)   # the benchmark's own split and label completeness
    train, test = data.miles_split()
    miles = data.miles()
    labels = miles.labels
    targets = {"log10 Teff": np.log10(np.asarray(labels["teff"], float)),
               "log g": np.asarray(labels["logg"], float),
               "[Fe/H]": np.asarray(labels["feh"], float)}
    x_train = log_flux([miles.spectra[i] for i in train])
    x_test = log_flux([miles.spectra[i] for i in test])
    pca = PCA(args.components, random_state=0).fit(x_train)
    scaler = StandardScaler().fit(pca.transform(x_train))
    a, b = scaler.transform(pca.transform(x_train)), scaler.transform(pca.transform(x_test))
    print(f"MILES benchmark split: {len(train)} training, {len(test)} test stars; "
          f"{args.components} principal components of the log flux")
    print(f"{'σ_MAD (dex)':<20}" + "".join(f"{name:>12}" for name in targets))
    for name, regressor in regressors().items():
        row = []
        for y in targets.values():
            mean, scale = y[train].mean(), y[train].std()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # GP optimiser's bound warnings
                fitted = clone(regressor).fit(a, (y[train] - mean) / scale)
            row.append(nmad(fitted.predict(b) * scale + mean - y[test]))
        print(f"{name:<20}" + "".join(f"{value:>12.4f}" for value in row))

    labelled = np.sort(np.concatenate([train, test]))
    x_all = log_flux([miles.spectra[i] for i in labelled])
    y_all = np.column_stack([y[labelled] for y in targets.values()])
    print(f"\nLabel spread of spectral twins among the {len(labelled)} labelled stars "
          "(1.4826 × median |label difference| / √2, dex)")
    print(f"{'closest pairs':<20}{'rms ≤':>8}{'pairs':>7}" + "".join(f"{n:>12}" for n in targets))
    for fraction, limit, n_pairs, spread in spectral_twin_spread(x_all, y_all):
        print(f"{fraction:<20.0%}{limit:>8.4f}{n_pairs:>7d}"
              + "".join(f"{value:>12.4f}" for value in spread))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
