"""pytest setup shared by the tests and the doctests of the package and its documentation.

Tests and documentation pages draw figures with `spectok.visualization`; here they go to a
non-interactive backend and are closed after each page, so that a run of
many pages neither opens windows nor collects figures. Examples write files
where a user would, under `tempfile.mkdtemp`; here that is each test's own
``tmp_path``, which pytest removes after a few runs.
"""

import tempfile

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(autouse=True)
def _temporary_files_under_tmp_path(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
