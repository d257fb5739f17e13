"""The classical baseline for cross-instrument twins: χ² at matched resolution.

Without any learned representation, whether two observations through
different instruments show the same object is asked by forward modelling:
observe one of them again through the other's instrument (its line-spread
function and pixels, `~spectok.datasets.observe`) and compute the χ² of the
other against it, with a free flux scale. The twin of an observation is the
candidate with the lowest reduced χ². This is how spectra from different
surveys are cross-matched when positions cannot be used, and it sets the
reference the embeddings are read against: it keeps every resolution
element that both instruments see.
"""

import numpy as np

__all__ = ["matched_chi2"]


def _flat(observed):
    """Flux, inverse variance and validity of a spectrum or of all arms of a list, joined."""
    from specutils import SpectrumList

    arms = observed if isinstance(observed, SpectrumList) else [observed]
    flux = np.concatenate([np.asarray(arm.flux.value, dtype=float) for arm in arms])
    ivar = np.concatenate([np.asarray(arm.uncertainty.array, dtype=float) for arm in arms])
    mask = np.concatenate([np.asarray(arm.mask, dtype=bool) for arm in arms])
    valid = ~mask & (ivar > 0) & np.isfinite(flux)
    return np.where(valid, flux, 0.0), np.where(valid, ivar, 0.0), valid


def matched_chi2(views_a, views_b, instrument_b):
    """Reduced χ² of every view in ``views_b`` against every view in ``views_a``
    observed again through ``instrument_b``.

    Each view of ``a`` is convolved to the resolution of ``instrument_b`` and
    binned onto its pixels without added noise; each view of ``b`` is then
    compared with it on the pixels both have, with the flux scale that
    minimises χ² (so calibration and distance do not matter). Only the
    errors of ``b`` enter χ²: choose ``b`` as the instrument of lower
    resolution, where the re-observed ``a`` is nearly noiseless.

    Parameters
    ----------
    views_a : sequence of `~specutils.Spectrum` or `~specutils.SpectrumList`
        Observations through one instrument, as `~spectok.datasets.observe`
        returns them (``meta["lsf_sigma"]`` tells their resolution).
    views_b : sequence of `~specutils.Spectrum` or `~specutils.SpectrumList`
        Observations through ``instrument_b``, all on its pixels.
    instrument_b : str or `~spectok.datasets.Instrument`

    Returns
    -------
    `~numpy.ndarray`, shape (len(views_a), len(views_b))
        χ² per pixel used; ``inf`` where a pair shares no pixel.

    Raises
    ------
    ValueError
        If the views of ``b`` are not all on one grid of ``instrument_b``'s
        size.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from specutils import Spectrum
    >>> from spectok.datasets import observe
    >>> from spectok.benchmarks import matched_chi2
    >>> lam = np.linspace(3500.0, 7500.0, 20_000) * u.AA
    >>> flam = u.Unit("erg/(s cm2 AA)")
    >>> stars = [Spectrum(spectral_axis=lam, flux=(1 + 0.3 * np.sin(lam.value / p)) * flam)
    ...          for p in (90.0, 140.0, 200.0)]
    >>> sdss = [observe(s, "sdss", snr=30, rng=i) for i, s in enumerate(stars)]
    >>> xp = [observe(s, "gaia_xp", snr=30, rng=10 + i) for i, s in enumerate(stars)]
    >>> chi2 = matched_chi2(sdss, xp, "gaia_xp")
    >>> chi2.shape, np.argmin(chi2, axis=1).tolist()
    ((3, 3), [0, 1, 2])
    """
    from ..datasets import observe

    data = [_flat(view) for view in views_b]
    if len({len(flux) for flux, _, _ in data}) > 1:
        raise ValueError(f"the views of b are not all on one grid of {instrument_b!r}")
    flux_b, ivar_b, _ = (np.stack(column) for column in zip(*data))
    models = [_flat(observe(view, instrument_b, noise=False)) for view in views_a]
    if models and models[0][0].shape != flux_b.shape[1:]:
        raise ValueError(f"the views of b are not on the pixels of {instrument_b!r}")
    flux_a = np.stack([flux for flux, _, _ in models])
    valid_a = np.stack([valid for _, _, valid in models]).astype(float)
    # For the pair (i, j) the best scale is s = Σ w a b / Σ w a² and the minimum
    # χ² is Σ w b² - (Σ w a b)² / Σ w a², with w = ivar_b[j] on pixels valid in a[i].
    sum_ab = flux_a @ (ivar_b * flux_b).T
    sum_aa = (flux_a ** 2) @ ivar_b.T
    sum_bb = valid_a @ (ivar_b * flux_b ** 2).T
    n_pixels = valid_a @ (ivar_b > 0).T
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = (sum_bb - np.where(sum_aa > 0, sum_ab ** 2 / sum_aa, 0.0)) / n_pixels
    return np.where(n_pixels > 0, np.maximum(chi2, 0.0), np.inf)
