"""What the benchmark compares: spectok embeddings and two honest baselines.

Each method turns spectra into features for the probes and reconstructs
spectra for the χ² task:

* `EmbeddingMethod` — a spectok model's pooled embedding and its tokens
  aligned on the task's wavelength bins, and its decoder (used for the model
  under test and for the *untrained* baseline: the same architecture with
  random, seeded weights, which tells what pretraining buys);
* `FluxPCAMethod` — the classic approach: flux divided by its median,
  resampled onto a fixed log-λ grid per task, and the leading principal
  components of the training spectra; missing pixels are handled by a
  least-squares fit of the components to the pixels that are there ("gappy"
  PCA, Connolly & Szalay 1999), which also reconstructs spectra.
"""

import warnings

import astropy.units as u
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..adapter.prepare import check_spectra

__all__ = ["EmbeddingMethod", "FluxPCAMethod", "log_grid", "token_bins", "resample_to_grid",
           "choose_hidden_patches"]

#: Width in ln λ of the bins on which the benchmark aligns tokens (about 5 % in
#: wavelength: 15 bins over the MILES range, 27 over SpeX's).
TOKEN_BIN_WIDTH = 0.05


def log_grid(lo, hi, step=1e-4):
    """A log10-uniform wavelength grid in Å (``step`` in dex, SDSS uses 1e-4).

    Parameters
    ----------
    lo, hi : float
        First wavelength of the grid and the largest it may reach, in Å.
    step : float
        Spacing in dex (log10 of the ratio of neighbouring wavelengths).

    Returns
    -------
    `~numpy.ndarray`
        Wavelengths in Å (plain floats, not a Quantity), from ``lo`` up to
        ``hi``.

    Examples
    --------
    >>> from spectok.benchmarks import log_grid
    >>> grid = log_grid(4000.0, 4100.0, 1e-3)
    >>> len(grid), float(grid[0])
    (11, 4000.0)
    """
    n = int(np.floor(np.log10(hi / lo) / step)) + 1
    return lo * 10.0 ** (step * np.arange(n))


def token_bins(lo, hi, width=TOKEN_BIN_WIDTH):
    """Edges of equal bins in ln λ that cover ``lo`` to ``hi``, about ``width`` wide.

    Parameters
    ----------
    lo, hi : float or `~astropy.units.Quantity`
        Ends of the range: Å, or any spectral Quantity.
    width : float
        Bin width in ln λ.

    Returns
    -------
    `~astropy.units.Quantity`
        Ascending edges in Å.

    Examples
    --------
    >>> import astropy.units as u
    >>> from spectok.benchmarks import token_bins
    >>> edges = token_bins(3700.0, 9000.0)
    >>> len(edges) - 1, edges[0], edges[-1]
    (18, <Quantity 3700. Angstrom>, <Quantity 9000. Angstrom>)
    >>> len(token_bins(1 * u.um, 2 * u.um)) - 1
    14
    """
    lo, hi = sorted((v if isinstance(v, u.Quantity) else v * u.AA).to_value(u.AA, u.spectral())
                    for v in (lo, hi))
    n_bins = max(1, int(round(np.log(hi / lo) / width)))
    return np.geomspace(lo, hi, n_bins + 1) * u.AA


def _prepare(spectra, patch_size=None):
    from ..adapter import prepare_spectrum

    return [prepare_spectrum(s, i, None, patch_size)
            for i, s in enumerate(check_spectra(spectra, "spectra"))]


def _flat(prepared, hidden=None):
    """Concatenated (wavelength Å, flux / scale, valid, sigma / scale), sorted by wavelength."""
    wave = np.concatenate(prepared.wavelength)
    flux = np.concatenate(prepared.flux) / prepared.scale
    sigma = np.concatenate(prepared.sigma) / prepared.scale
    valid = np.concatenate(prepared.valid)
    if hidden is not None:
        valid = valid & ~np.concatenate(hidden)
    order = np.argsort(wave, kind="stable")
    return wave[order], flux[order], valid[order], sigma[order], order


def resample_to_grid(prepared, grid, hidden=None, return_sigma=False):
    """Normalised flux of one prepared spectrum, linearly interpolated onto ``grid``.

    Grid points outside the valid pixels, or in a gap between valid pixels
    wider than three native pixels, are NaN.

    Parameters
    ----------
    prepared : `~spectok.adapter.PreparedSpectrum`
    grid : `~numpy.ndarray`
        Vacuum wavelengths in Å, ascending.
    hidden : list of `~numpy.ndarray` of bool, optional
        Per arm, pixels to treat as missing.
    return_sigma : bool
        Also return the normalised 1σ error, its variance interpolated
        linearly like the flux (the error of one native pixel there).

    Returns
    -------
    flux : `~numpy.ndarray`, shape (len(grid),)
    sigma : `~numpy.ndarray`, shape (len(grid),)
        Only with ``return_sigma``; NaN where ``flux`` is.

    Examples
    --------
    >>> import astropy.units as u
    >>> import numpy as np
    >>> from spectok.adapter import prepare_spectrum
    >>> from spectok.benchmarks import resample_to_grid
    >>> wave = np.linspace(4000, 5000, 101) * u.AA
    >>> flam = u.erg / u.s / u.cm**2 / u.AA
    >>> prepared = prepare_spectrum((wave, np.full(101, 2.0) * flam, np.full(101, 0.2) * flam))
    >>> flux, sigma = resample_to_grid(prepared, np.array([3990.0, 4505.0]), return_sigma=True)
    >>> flux, sigma
    (array([nan,  1.]), array([nan, 0.1]))
    """
    wave, flux, valid, sigma, _ = _flat(prepared, hidden)
    w, f, s = wave[valid], flux[valid], sigma[valid]
    out = np.full(len(grid), np.nan)
    out_sigma = np.full(len(grid), np.nan)
    if len(w) < 2:
        return (out, out_sigma) if return_sigma else out
    keep = np.concatenate([[True], np.diff(w) > 0])
    w, f, s = w[keep], f[keep], s[keep]
    log_w = np.log(w)
    typical = np.median(np.diff(np.log(wave[np.concatenate([[True], np.diff(wave) > 0])])))
    idx = np.searchsorted(w, grid)
    inside = (idx > 0) & (idx < len(w))
    gap = np.full(len(grid), np.inf)
    gap[inside] = log_w[idx[inside]] - log_w[idx[inside] - 1]
    exact = np.zeros(len(grid), bool)
    exact[idx < len(w)] = w[idx[idx < len(w)]] == grid[idx < len(w)]
    covered = (inside & (gap <= 3.0 * typical + 1e-12)) | exact
    out[covered] = np.interp(grid[covered], w, f)
    if not return_sigma:
        return out
    out_sigma[covered] = np.sqrt(np.interp(grid[covered], w, s ** 2))
    return out, out_sigma


def choose_hidden_patches(prepared, fraction=0.1, patch_size=32, seed=0):
    """Pick a fraction of each spectrum's usable patches to hide (inpainting test).

    Patches are laid out as the model lays them out: blocks of
    ``patch_size`` pixels per arm; a patch is usable when at least half its
    pixels are valid. Each spectrum with two or more usable patches gets
    ``max(1, round(fraction · n_usable))`` hidden, always leaving one visible.

    Parameters
    ----------
    prepared : list of `~spectok.adapter.PreparedSpectrum`
    fraction : float
    patch_size : int
    seed : int

    Returns
    -------
    patches : list of `~numpy.ndarray` of int
        Indices of the hidden patches (in the model's patch numbering).
    pixels : list of list of `~numpy.ndarray` of bool
        Per spectrum, per arm: the pixels in hidden patches.

    Examples
    --------
    Two spectra of ten patches of 32 pixels, the second without flux in its
    first 100 pixels: 30 % of the usable patches are hidden, never one of
    the second spectrum's first three (unusable) patches.

    >>> import astropy.units as u
    >>> import numpy as np
    >>> from spectok.adapter import prepare_spectrum
    >>> from spectok.benchmarks import choose_hidden_patches
    >>> wave = np.geomspace(4000, 7000, 320) * u.AA
    >>> flux = np.ones(320) * u.Jy
    >>> gappy = flux.copy()
    >>> gappy[:100] = np.nan
    >>> prepared = [prepare_spectrum((wave, f, 0.01 * flux)) for f in (flux, gappy)]
    >>> patches, pixels = choose_hidden_patches(prepared, fraction=0.3, seed=0)
    >>> patches
    [array([5, 6, 9]), array([3, 9])]
    >>> [int(arms[0].sum()) for arms in pixels]  # hidden pixels of each spectrum's one arm
    [96, 64]
    """
    rng = np.random.default_rng(seed)
    patches, pixels = [], []
    for p in prepared:
        usable, offset, blocks = [], 0, []
        for valid in p.valid:
            starts = np.arange(0, len(valid), patch_size)
            n_valid = np.add.reduceat(valid.astype(int), starts)
            n_real = np.minimum(patch_size, len(valid) - starts)
            active = (n_valid > 0) & (2 * n_valid >= n_real)
            usable.extend(offset + np.flatnonzero(active))
            blocks.append((offset, len(valid)))
            offset += len(starts)
        usable = np.array(usable, dtype=int)
        k = max(1, int(round(fraction * len(usable)))) if len(usable) >= 2 else 0
        k = min(k, len(usable) - 1) if len(usable) else 0
        chosen = np.sort(rng.choice(usable, size=k, replace=False)) if k else np.empty(0, int)
        patches.append(chosen)
        masks = []
        for start, n in blocks:
            local = chosen[(chosen >= start) & (chosen < start + -(-n // patch_size))] - start
            mask = np.zeros(n, bool)
            for j in local:
                mask[j * patch_size:(j + 1) * patch_size] = True
            masks.append(mask)
        pixels.append(masks)
    return patches, pixels


def _reduced_chi2(residual_sq, mask):
    n = mask.sum()
    return float(residual_sq[mask].mean()) if n else np.nan


class EmbeddingMethod:
    """Features and reconstructions from a spectok model.

    Parameters
    ----------
    model : `~spectok.model.SpectralTokenizer`
    name : str
        Column name in the report.
    bin_edges : `~astropy.units.Quantity`, optional
        Wavelength bins on which tokens are aligned and appended to the
        pooled embedding (`~spectok.SpectralTokens.aligned`); `None` gives
        the pooled embedding alone.
    batch_size : int
        Spectra per forward pass.
    cache : dict, optional
        Shared store of tokens by spectrum (see `transform`).

    Examples
    --------
    Features of the shipped example spectrum from the shipped model: its
    pooled embedding (128 numbers) then its tokens aligned on 18 bins
    (32 numbers each). Reconstructed by the model, the patches withheld
    from the encoder fit the data worse than the whole spectrum does:

    >>> from spectok.adapter import prepare_spectrum
    >>> from spectok.benchmarks import EmbeddingMethod, choose_hidden_patches, token_bins
    >>> from spectok.datasets import example_spectrum
    >>> from spectok.model import load_model
    >>> spectrum = example_spectrum()
    >>> method = EmbeddingMethod(load_model("spectok-small"), "spectok",
    ...                          bin_edges=token_bins(3700.0, 9000.0))
    >>> method.fit([spectrum]).transform([spectrum]).shape
    (1, 704)
    >>> len(method.cache)  # encoded once, whatever task asks again
    1
    >>> prepared = [prepare_spectrum(spectrum)]
    >>> hidden, _ = choose_hidden_patches(prepared, fraction=0.1, seed=0)
    >>> chi2_all, chi2_hidden = method.reconstruction_chi2(prepared, hidden)
    >>> bool(chi2_hidden[0] > chi2_all[0])
    True
    """

    kind = "embedding"

    def __init__(self, model, name, bin_edges=None, batch_size=32, cache=None):
        self.model = model
        self.name = name
        self.bin_edges = bin_edges
        self.batch_size = batch_size
        self.cache = {} if cache is None else cache

    def fit(self, spectra):
        """Nothing to learn: the model is frozen. Returns self."""
        return self

    def transform(self, spectra):
        """Pooled embeddings and aligned tokens (`~spectok.probes.token_features`), float64.

        Tokens are cached per spectrum object (which the cache keeps alive,
        so its ``id`` cannot be reused), so a spectrum used by several tasks
        is encoded once.

        Raises
        ------
        TypeError
            ``spectra`` is one spectrum rather than a list of them (or a
            string, a dict or a set).
        """
        from ..adapter import NoUncertaintyWarning
        from ..encode import encode
        from ..probes import token_features
        from ..tokens import TokenBatch

        spectra = list(check_spectra(spectra, "spectra"))
        missing = list({id(s): s for s in spectra if id(s) not in self.cache}.values())
        if missing:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NoUncertaintyWarning)  # MILES has no errors
                result = encode(missing, model=self.model, batch_size=self.batch_size,
                                device="cpu", progress=False)
            for spectrum, tokens in zip(missing, result):
                self.cache[id(spectrum)] = (spectrum, tokens)
        if not spectra:
            n_bins = 0 if self.bin_edges is None else len(self.bin_edges) - 1
            config = self.model.config
            return np.empty((0, config.width + n_bins * config.token_dim))
        tokens = TokenBatch([self.cache[id(s)][1] for s in spectra], np.arange(len(spectra)))
        return token_features(tokens, self.bin_edges).astype(np.float64)

    def reconstruction_chi2(self, prepared, hidden_patches):
        """Median-ready reduced χ² per spectrum: all pixels, and hidden-patch pixels.

        Parameters
        ----------
        prepared : list of `~spectok.adapter.PreparedSpectrum`
        hidden_patches : list of `~numpy.ndarray` of int
            From `choose_hidden_patches`.

        Returns
        -------
        chi2_all, chi2_hidden : `~numpy.ndarray`
            Reduced χ² of the reconstruction against the data errors, over
            all valid pixels (nothing hidden) and over the valid pixels of
            hidden patches (those patches withheld from the encoder).
        """
        from ..adapter import to_batch

        net = self.model
        size = net.config.patch_size
        order = sorted(range(len(prepared)), key=lambda k: prepared[k].n_slots(size))
        chi2_all = np.full(len(prepared), np.nan)
        chi2_hidden = np.full(len(prepared), np.nan)
        net.eval()
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            batch = to_batch([prepared[k] for k in chunk], size, warn_missing_uncertainty=False)
            inputs = batch.model_inputs()
            hide = torch.zeros(len(chunk), batch.flux.shape[1] // size, dtype=torch.bool)
            for row, k in enumerate(chunk):
                hide[row, torch.as_tensor(hidden_patches[k], dtype=torch.long)] = True
            with torch.inference_mode():
                _, mean_all, _ = net(*inputs)
                _, mean_hid, _ = net(*inputs, hide=hide)
            valid = batch.valid.numpy()
            flux, sigma = batch.flux.numpy(), batch.sigma.numpy()
            hidden_pixels = hide.repeat_interleave(size, dim=1).numpy()
            r_all = ((flux - mean_all.float().numpy()) / sigma) ** 2
            r_hid = ((flux - mean_hid.float().numpy()) / sigma) ** 2
            for row, k in enumerate(chunk):
                chi2_all[k] = _reduced_chi2(r_all[row], valid[row])
                chi2_hidden[k] = _reduced_chi2(r_hid[row], valid[row] & hidden_pixels[row])
        return chi2_all, chi2_hidden


class FluxPCAMethod:
    """The classic baseline: resampled normalised flux and its principal components.

    Parameters
    ----------
    grid : `~numpy.ndarray`
        Vacuum wavelengths in Å (fixed per task).
    n_components : int
        Components kept (at most the number of training spectra minus one).
    name : str
        Column name in the report.

    Notes
    -----
    Coefficients are the posterior mean of probabilistic PCA given the
    pixels that are there: ``(BᵀB + s² Λ⁻¹) c = Bᵀ(x - μ)`` over the seen
    pixels, with Λ the component variances and s² the per-pixel variance
    left over by the kept components. With every pixel present this is the
    usual projection, slightly shrunk.

    Examples
    --------
    Forty spectra with an absorption line of random depth and width, on the
    grid of the method: the components are fitted on 30 of them and
    reconstruct the other 10 to about the noise (reduced χ² near 1), also
    where 20 % of the patches are withheld:

    >>> import astropy.units as u
    >>> import numpy as np
    >>> from spectok.adapter import prepare_spectrum
    >>> from spectok.benchmarks import FluxPCAMethod, choose_hidden_patches, log_grid
    >>> rng = np.random.default_rng(0)
    >>> grid = log_grid(4000.0, 7000.0, 4e-4)
    >>> spectra = []
    >>> for _ in range(40):
    ...     depth, width = rng.uniform(0.2, 0.6), rng.uniform(5, 15)
    ...     flux = (1 - depth * np.exp(-0.5 * ((grid - 5500) / width) ** 2)
    ...             + rng.normal(0, 0.01, len(grid)))
    ...     spectra.append((grid * u.AA, flux * u.Jy, np.full(len(grid), 0.01) * u.Jy))
    >>> pca = FluxPCAMethod(grid, n_components=4).fit(spectra[:30])
    >>> pca.transform(spectra[30:]).shape
    (10, 4)
    >>> test = [prepare_spectrum(s) for s in spectra[30:]]
    >>> _, hidden_pixels = choose_hidden_patches(test, fraction=0.2, seed=0)
    >>> chi2_all, chi2_hidden = pca.reconstruction_chi2(test, hidden_pixels)
    >>> round(float(np.median(chi2_all)), 2), round(float(np.median(chi2_hidden)), 2)
    (1.1, 1.25)
    """

    kind = "flux_pca"

    def __init__(self, grid, n_components=64, name="flux_pca"):
        self.grid = np.asarray(grid, dtype=float)
        self.n_components = n_components
        self.name = name

    def _matrix(self, prepared, hidden=None):
        return np.stack([resample_to_grid(p, self.grid, None if hidden is None else hidden[i])
                         for i, p in enumerate(prepared)])

    def fit(self, spectra):
        """Fit the mean spectrum and components on training spectra. Returns self.

        Raises
        ------
        TypeError
            ``spectra`` is one spectrum rather than a list of them (or a
            string, a dict or a set).
        ValueError
            ``spectra`` is empty.
        """
        from sklearn.decomposition import PCA

        prepared = _prepare(spectra)
        if not prepared:   # numpy's "need at least one array to stack"
            raise ValueError("spectra is empty: the components need training spectra")
        matrix = self._matrix(prepared)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            fill = np.nanmean(matrix, axis=0)
        fill = np.where(np.isfinite(fill), fill, 1.0)
        matrix = np.where(np.isnan(matrix), fill, matrix)
        k = max(1, min(self.n_components, len(matrix) - 1, matrix.shape[1]))
        # One large SVD (thousands of spectra by thousands of pixels): worth as many
        # BLAS threads as torch has, where `benchmark_threads` keeps one for small products.
        with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
            self.pca_ = PCA(n_components=k, svd_solver="full").fit(matrix)
        self.fill_ = fill
        return self

    def _coefficients(self, matrix):
        mean, components = self.pca_.mean_, self.pca_.components_
        noise = max(float(self.pca_.noise_variance_), 1e-12)
        penalty = noise / np.maximum(self.pca_.explained_variance_, 1e-30)
        gram = components @ components.T
        out = np.zeros((len(matrix), len(components)))
        for i, row in enumerate(matrix):
            seen = np.isfinite(row)
            if not seen.any():
                continue
            if seen.mean() > 0.5:  # cheaper to remove the unseen pixels from the full Gram matrix
                unseen = components[:, ~seen]
                lhs = gram - unseen @ unseen.T
            else:
                basis = components[:, seen]
                lhs = basis @ basis.T
            rhs = components[:, seen] @ (row[seen] - mean[seen])
            out[i] = np.linalg.solve(lhs + np.diag(penalty), rhs)
        return out

    def transform(self, spectra):
        """Gappy-PCA coefficients, shape (n, n_components).

        Raises
        ------
        TypeError
            As for `fit`.
        """
        return self._coefficients(self._matrix(_prepare(spectra)))

    def reconstruction_chi2(self, prepared, hidden_pixels):
        """Reduced χ² of the PCA reconstruction: all pixels, and hidden pixels.

        The PCA counterpart of `EmbeddingMethod.reconstruction_chi2`, which
        hides patches from the encoder; here the hidden pixels are left out
        of the fit of the components instead. The reconstruction on the grid
        is interpolated back to the native pixels; only pixels inside the
        grid's wavelength range count.

        Parameters
        ----------
        prepared : list of `~spectok.adapter.PreparedSpectrum`
        hidden_pixels : list of list of `~numpy.ndarray` of bool
            Per spectrum, per arm, the pixels to hide: the second output of
            `choose_hidden_patches` (`EmbeddingMethod` takes the first, the
            patch indices).

        Returns
        -------
        chi2_all, chi2_hidden : `~numpy.ndarray`
            Per spectrum, the reduced χ² over all valid pixels inside the
            grid (nothing hidden) and over the hidden ones.
        """
        chi2_all = np.full(len(prepared), np.nan)
        chi2_hidden = np.full(len(prepared), np.nan)
        for hide, target in ((None, chi2_all), (hidden_pixels, chi2_hidden)):
            matrix = self._matrix(prepared, hide)
            model = self.pca_.mean_ + self._coefficients(matrix) @ self.pca_.components_
            for i, p in enumerate(prepared):
                wave, flux, valid, sigma, order = _flat(p)
                rec = np.interp(wave, self.grid, model[i])
                use = valid & (wave >= self.grid[0]) & (wave <= self.grid[-1])
                if hide is not None:
                    use &= np.concatenate(hide[i])[order]
                target[i] = (float(np.mean(((flux[use] - rec[use]) / sigma[use]) ** 2))
                             if use.any() else np.nan)
        return chi2_all, chi2_hidden
