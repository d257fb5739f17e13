"""Smoke tests of the measurement scripts in ``benchmarks/``.

The scripts are run by hand, for minutes; these tests call their pieces on
small inputs, so that a change of the package they use shows here first.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from spectok.benchmarks.context import _Data

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


@pytest.mark.remote_data
def test_data_stream_times_a_batch():
    from spectok.training import SourceConfig, TrainingConfig, build_sources

    config = TrainingConfig(model="tiny", batch_size=2,
                            sources=(SourceConfig("stellar_templates", instruments=("sdss",)),))
    seconds = script("data_stream").seconds_per_batch(config, build_sources(config.sources), 1)
    assert 0 < seconds < 60


def test_decode_scaling_times_a_decode():
    import spectok

    scaling = script("decode_scaling")
    model = spectok.load_model()
    wave, flux, sigma = scaling.spectrum(2000)
    tokens = spectok.encode((wave, flux, sigma), model=model, device="cpu")
    assert 0 < scaling.best_time(model, tokens, wave, 1) < 60


@pytest.mark.remote_data
def test_token_headroom_tables_the_full_patches():
    import spectok

    headroom = script("token_headroom")
    model = spectok.load_model()
    features, flux, sigma, valid, decoded = headroom.patch_table(
        headroom.stars([0, 1], "sdss", 30.0, seed=0), model)
    size, width = model.config.patch_size, 3 * model.config.token_dim
    assert features.shape[1] == width and len(features) > 100
    assert flux.shape == sigma.shape == valid.shape == decoded.shape == (len(features), size)
    assert np.isfinite(headroom.reduced_chi2(decoded, flux, sigma, valid))


@pytest.mark.remote_data
def test_encode_latency_prints_its_median(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["encode_latency.py", "--threads", "1", "--repeats", "2"])
    threads = torch.get_num_threads()
    try:
        script("encode_latency").main()
    finally:
        torch.set_num_threads(threads)   # the script sets the process's threads
    assert "encode latency: median" in capsys.readouterr().out
