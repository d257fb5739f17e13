"""Smoke tests of the measurement scripts in ``benchmarks/``.

The scripts are run by hand, for minutes; these tests call their pieces on
small inputs, so that a change of the package they use shows here first.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from spectok.benchmarks.tasks import _Data

SCRIPTS = Path(__file__).resolve().parents[1] / "benchmarks"


def script(name):
    """Import ``benchmarks/<name>.py`` as a module (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(f"_benchmark_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.remote_data
def test_training_throughput_takes_optimiser_steps():
    result = script("performance").training_throughput(1, torch.device("cpu"))
    assert result["steps"] == 1
    assert result["seconds_per_step"] > 0 and result["spectra_per_second"] > 0


@pytest.mark.remote_data
def test_twin_ranks_500_draws_candidates_apart_from_the_other_stars():
    data = _Data(quick=True, seed=0)
    twins = script("twin_ranks_500")
    test, pca_stars = set(data.star_rows("test")), set(data.star_rows("train"))
    rows = twins.extra_star_rows(data, len(test) + 7)
    assert len(set(rows)) == 7 and not set(rows) & (test | pca_stars)
    with pytest.raises(ValueError, match="--candidates must be from the"):
        twins.extra_star_rows(data, len(test) - 1)


@pytest.mark.remote_data
def test_reconstruction_residuals_of_a_star():
    import spectok

    residuals = script("reconstruction_residuals")
    star = residuals.held_out_spectra("miles", "sdss", 30.0, 1, seed=0)[0]
    log_wave, residual, scatter, model = residuals.residuals(star, spectok.load_model())
    assert len(log_wave) == len(residual) == len(scatter) == len(model) > 1000
    assert np.all(np.isfinite(residual)) and np.all(scatter > 0)
    scale, chi2 = residuals.best_scale(residual, model)
    assert 0.9 < scale < 1.1 and chi2 <= np.mean(residual ** 2)
