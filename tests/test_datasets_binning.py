"""Tests of spectok.datasets._binning: the simulator's numerical kernels."""

import numpy as np
import pytest
from scipy.special import erf

from spectok.datasets._binning import add_gaussian_line, enclosing


@pytest.mark.parametrize("centre", [4000.0, 4000.5, 4500.0, 4999.0, 5000.0, 3990.0, 5010.0])
def test_windowed_gaussian_line_equals_the_full_computation(centre):
    edges = 4000.0 * np.exp(1e-4 * np.arange(2232))  # 4000-5000 Å
    sigma_ln = 300.0 / 299792.458
    window = np.zeros(edges.size - 1)
    add_gaussian_line(window, edges, centre, sigma_ln, 2.5)
    cdf = 0.5 * (1 + erf((np.log(edges) - np.log(centre)) / (np.sqrt(2) * sigma_ln)))
    np.testing.assert_array_equal(window, 2.5 * np.diff(cdf) / np.diff(edges))


def test_enclosing_slice_reaches_past_both_bounds():
    x = np.arange(10.0)
    assert enclosing(x, 2.5, 6.5) == slice(2, 8)
    assert enclosing(x, 3.0, 6.0) == slice(3, 7)
    assert enclosing(x, -5.0, 50.0) == slice(0, 10)
    assert enclosing(x, 20.0, 30.0) == slice(8, 10)  # still two points to interpolate
    assert enclosing(np.array([1.0, 2.0]), 1.5, 1.5) == slice(0, 2)
