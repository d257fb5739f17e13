"""Numerical kernels of the instrument simulator: flux-conserving binning and line spreading.

Plain arrays (wavelengths in Å, or ln λ where said), no units. The simulator
(`spectok.datasets.observing`) and the galaxy and quasar models
(`spectok.datasets.galaxies`, `spectok.datasets.quasars`) build on them.
"""

import math

import numpy as np
from scipy.special import erf

#: FWHM of a Gaussian in units of its σ, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def linear_moments(x, y, t, outside):
    """Zeroth and first moments of the piecewise-linear interpolant of (x, y).

    Returns ``(∫_{x[0]}^{t} f, ∫_{x[0]}^{t} (s - x[0]) f(s) ds)`` for each
    ``t`` (vectorised, no loop over pixels). ``outside="zero"`` treats the
    function as 0 beyond ``x``; ``"edge"`` extends it with its end values.
    """
    x0 = x[0]
    xs = x - x0
    dx = np.diff(xs)
    slope = np.diff(y) / dx

    def segment(k, h):
        m0 = y[k] * h + 0.5 * slope[k] * h * h
        m1 = xs[k] * m0 + 0.5 * y[k] * h * h + slope[k] * h**3 / 3.0
        return m0, m1

    last = np.arange(len(dx))
    seg0, seg1 = segment(last, dx)
    cum0 = np.concatenate([[0.0], np.cumsum(seg0)])
    cum1 = np.concatenate([[0.0], np.cumsum(seg1)])
    ts = np.asarray(t, dtype=float) - x0
    tc = np.clip(ts, 0.0, xs[-1])
    k = np.clip(np.searchsorted(xs, tc, side="right") - 1, 0, len(dx) - 1)
    part0, part1 = segment(k, tc - xs[k])
    m0 = cum0[k] + part0
    m1 = cum1[k] + part1
    if outside == "edge":
        below, above = ts < 0.0, ts > xs[-1]
        m0 = m0 + np.where(below, ts * y[0], 0.0)
        m1 = m1 + np.where(below, 0.5 * ts * ts * y[0], 0.0)
        m0 = m0 + np.where(above, (ts - xs[-1]) * y[-1], 0.0)
        m1 = m1 + np.where(above, 0.5 * (ts * ts - xs[-1] ** 2) * y[-1], 0.0)
    return m0, m1


def bin_average_linear(x, y, edges, outside="edge"):
    """Average of the piecewise-linear interpolant of (x, y) over each bin of ``edges``."""
    m0, _ = linear_moments(x, y, edges, outside)
    return np.diff(m0) / np.diff(edges)


def hat_average(x, y, nodes, outside="edge"):
    """Weighted averages of the interpolant of (x, y) under the hat functions of ``nodes``.

    The hat (linear B-spline) of node k rises from node k-1 to k and falls
    to node k+1. Hats add up to one and reproduce linear functions, so the
    result conserves both the integral and the first moment (line
    positions) of the input exactly: ``Σ_k v_k w_k = ∫ f`` with
    ``w_k = (nodes[k+1] - nodes[k-1]) / 2``, whatever the input sampling.
    """
    step0, step1 = nodes[1] - nodes[0], nodes[-1] - nodes[-2]
    ext = np.concatenate([[nodes[0] - step0], nodes, [nodes[-1] + step1]])
    m0, m1 = linear_moments(x, y, ext, outside)
    shift = ext - x[0]
    d0, d1, width = np.diff(m0), np.diff(m1), np.diff(ext)
    # ∫ over [a, b] of f (s - a) / (b - a)  and of f (b - s) / (b - a)
    rising = (d1 - shift[:-1] * d0) / width
    falling = d0 - rising
    weight = 0.5 * (ext[2:] - ext[:-2])
    return (rising[:-1] + falling[1:]) / weight


def add_gaussian_line(profile, edges, centre, sigma_ln, amount):
    """Add ``amount`` × a unit-area Gaussian in ln λ, averaged over the bins of
    ``edges`` (per Å), to ``profile`` in place.

    Only bins within ±10 σ are computed: beyond ~8.3 σ the error function is
    exactly ±1 in double precision, so the rest would add exact zeros.
    """
    reach = 10.0 * sigma_ln
    first = max(int(np.searchsorted(edges, centre * math.exp(-reach))) - 1, 0)
    stop = min(int(np.searchsorted(edges, centre * math.exp(reach))) + 1, len(edges))
    if stop - first < 2:
        return
    window = edges[first:stop]
    cdf = 0.5 * (1.0 + erf((np.log(window) - math.log(centre)) / (math.sqrt(2.0) * sigma_ln)))
    profile[first:stop - 1] += amount * np.diff(cdf) / np.diff(window)


def gaussian_spread(values, sigma_pix, half_width):
    """Spread each bin of ``values`` (1-D) with a Gaussian of its own σ (in bins).

    Each source bin's kernel is normalised to one, so the sum of ``values``
    is conserved up to what leaves the ends of the array.
    """
    n = values.size
    inv2 = np.full(n, np.inf)  # σ ≈ 0: the kernel is a delta
    wide = sigma_pix > 1e-3
    inv2[wide] = 0.5 / sigma_pix[wide] ** 2
    base = np.exp(-inv2)
    base_squared = base * base

    def weights():
        """exp(-j² a) for j = 1 … half_width, by the recurrence w_j = w_{j-1} e^{-(2j-1) a}:
        two in-place products per offset instead of an exponential. Each yield is the
        same array, updated: use it before the next."""
        w, step = base.copy(), base.copy()
        for _ in range(half_width):
            yield w
            step *= base_squared
            w *= step

    norm = np.ones(n)
    for weight in weights():
        norm += 2.0 * weight
    scaled = values / norm
    out = scaled.copy()
    sw = np.empty_like(scaled)
    for j, weight in enumerate(weights(), start=1):
        np.multiply(scaled, weight, out=sw)
        out[j:] += sw[:n - j]
        out[:n - j] += sw[j:]
    return out


def spread_sparse(values, sigma_pix, half_width):
    """`gaussian_spread` of an array that is mostly zero, computed around its nonzero runs.

    Each run gets a window of ``half_width`` bins either side; the kernel is
    normalised per source bin, so the result is the full spread's. When the
    windows would cover more than a quarter of the array, it is spread whole.
    """
    n = values.size
    out = np.zeros(n)
    nonzero = np.flatnonzero(values)
    if nonzero.size == 0:
        return out
    breaks = np.flatnonzero(np.diff(nonzero) > 2 * half_width + 1)
    starts = nonzero[np.concatenate([[0], breaks + 1])]
    stops = nonzero[np.concatenate([breaks, [nonzero.size - 1]])] + 1
    if np.sum(stops - starts + 2 * half_width) > n / 4:
        return gaussian_spread(values, sigma_pix, half_width)
    for start, stop in zip(starts, stops):
        lo, hi = max(start - half_width, 0), min(stop + half_width, n)
        out[lo:hi] += gaussian_spread(values[lo:hi], sigma_pix[lo:hi], half_width)
    return out


def enclosing(x, lo, hi):
    """The slice of ascending ``x`` from its last point ≤ ``lo`` to its first ≥ ``hi``
    (or its ends), at least two points long."""
    start = max(int(np.searchsorted(x, lo, side="right")) - 1, 0)
    stop = min(int(np.searchsorted(x, hi, side="left")) + 1, len(x))
    start = min(start, len(x) - 2)
    return slice(start, max(stop, start + 2))
