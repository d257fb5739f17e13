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

from ..adapter.prepare import check_spectra

__all__ = ["matched_chi2"]


def _pixels(spectrum, index, need_errors=False):
    """Wavelength, flux, inverse variance and validity of a spectrum, all arms joined."""
    from ..adapter import prepare_spectrum
    from .features import _flat

    prepared = prepare_spectrum(spectrum, index)
    if need_errors and not prepared.has_uncertainty:
        raise ValueError(f"{prepared.label} has no uncertainty, which its χ² needs")
    wavelength, flux, valid, sigma, _ = _flat(prepared)
    valid = valid & (sigma > 0)
    ivar = np.where(valid, 1.0 / np.where(valid, sigma, 1.0) ** 2, 0.0)
    return wavelength, np.where(valid, flux, 0.0), ivar, valid


def matched_chi2(views_a, views_b, instrument_b):
    """Reduced χ² of every view of ``b`` against every view of ``a`` re-observed as ``b``.

    Each view of ``a`` is convolved to the resolution of ``instrument_b`` and
    binned onto its pixels without added noise; each view of ``b`` is then
    compared with it on the pixels both have, with the non-negative flux
    scale that minimises χ² (so calibration and distance do not matter).
    Only the errors of ``b`` enter χ²: where ``b`` has the lower resolution
    (Gaia XP against SDSS), the re-observed ``a`` is nearly noiseless; where
    the two are alike (LAMOST against SDSS), every χ² is larger by a similar
    factor, which leaves the ranking of candidates about as it is.

    Parameters
    ----------
    views_a : sequence of `~specutils.Spectrum` or `~specutils.SpectrumList`
        Observations through one instrument, as `~spectok.datasets.observe`
        returns them (``meta["lsf_sigma"]`` tells their resolution).
    views_b : sequence of `~specutils.Spectrum` or `~specutils.SpectrumList`
        Observations through ``instrument_b``, all on its pixels.
    instrument_b : str or `~spectok.datasets.Instrument`
        The instrument of ``views_b``, through which the views of ``a`` are
        observed again.

    Returns
    -------
    `~numpy.ndarray`, shape (len(views_a), len(views_b))
        χ² per pixel used; ``inf`` where a pair shares no pixel.

    Raises
    ------
    TypeError
        If ``views_a`` or ``views_b`` is one spectrum rather than a list, or
        a string, a dict or a set.
    ValueError
        If either list is empty, a view of ``b`` has no uncertainty, or the
        views of ``b`` are not all on the pixels of ``instrument_b``.

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

    # one Spectrum was 'has no len()', a SpectrumList's arms were taken for views
    views_a, views_b = (list(check_spectra(views, name))
                        for views, name in ((views_a, "views_a"), (views_b, "views_b")))
    if len(views_a) == 0 or len(views_b) == 0:
        raise ValueError("matched_chi2 needs at least one view of a and one of b")
    data = [_pixels(view, j, need_errors=True) for j, view in enumerate(views_b)]
    grid = data[0][0]
    if any(len(w) != len(grid) or not np.allclose(w, grid) for w, _, _, _ in data):
        raise ValueError(f"the views of b are not all on one grid of {instrument_b!r}")
    models = [_pixels(observe(view, instrument_b, noise=False), i)
              for i, view in enumerate(views_a)]
    if len(models[0][0]) != len(grid) or not np.allclose(models[0][0], grid):
        raise ValueError(f"the views of b are not on the pixels of {instrument_b!r}")
    _, flux_b, ivar_b, _ = (np.stack(column) for column in zip(*data))
    flux_a = np.stack([flux for _, flux, _, _ in models])
    valid_a = np.stack([valid for _, _, _, valid in models]).astype(float)
    # For the pair (i, j) the best scale is s = Σ w a b / Σ w a² and the minimum
    # χ² is Σ w b² - (Σ w a b)² / Σ w a², with w = ivar_b[j] on pixels valid in a[i];
    # a negative s (a candidate shaped like the model upside down) becomes 0.
    sum_ab = np.maximum(flux_a @ (ivar_b * flux_b).T, 0.0)
    sum_aa = (flux_a ** 2) @ ivar_b.T
    sum_bb = valid_a @ (ivar_b * flux_b ** 2).T
    n_pixels = valid_a @ (ivar_b > 0).T
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = (sum_bb - np.where(sum_aa > 0, sum_ab ** 2 / sum_aa, 0.0)) / n_pixels
    return np.where(n_pixels > 0, np.maximum(chi2, 0.0), np.inf)
