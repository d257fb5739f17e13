"""pytest setup shared by the tests and the doctests of the package and its documentation.

Tests and documentation pages draw figures with `spectok.visualization`; here they go to a
non-interactive backend and are closed after each page, so that a run of
many pages neither opens windows nor collects figures.
"""

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
