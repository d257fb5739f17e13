"""Numerical helpers that more than one of spectok's subpackages needs."""

import numpy as np

__all__ = ["safe_median"]


def safe_median(values):
    """`numpy.median` of a non-empty array of finite values, without overflow.

    numpy averages the two middle values as (a + b) / 2, which overflows near
    the largest float; a / 2 + b / 2 is the same number everywhere else.
    """
    n = len(values)
    middle = np.partition(values, [(n - 1) // 2, n // 2])[[(n - 1) // 2, n // 2]]
    return float(middle[0] if n % 2 else middle[0] / 2 + middle[1] / 2)
