"""pytest setup for the doctests in the documentation (``pytest docs``).

The pages draw figures with `spectok.visualization`; here they go to a
non-interactive backend and are closed after each page, so that a run of
many pages neither opens windows nor collects figures.
"""

import matplotlib
import pytest

matplotlib.use("Agg")

# Known issue: plot_spectrum converts an InverseVariance with zeros (the
# usual mark of a dead pixel, as in SDSS, DESI and spectok.datasets.observe)
# to a standard deviation with astropy, which warns about the division by
# zero. The plot is right; the warning would fail the doctests, which turn
# warnings into errors. Remove this filter when plot_spectrum silences it.
_KNOWN_WARNINGS = ["ignore:divide by zero encountered in divide:RuntimeWarning"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "docs" in item.path.parts:
            for spec in _KNOWN_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
