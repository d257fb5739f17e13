"""Pretraining: objectives, the deterministic stream, resume after SIGKILL, DDP equivalence."""

import copy
import dataclasses
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum

import spectok
from spectok import encode
from spectok.adapter import SpectrumInputError, prepare_spectrum
from spectok.cli import main
from spectok.datasets import observe
from spectok.model import SpectralTokenizer, load_model, save_model
from spectok.training import (CHECKPOINT_NAME, Source, SourceConfig, TrainingConfig,
                              TrainingObjective, TrainingStream, anchor_loss, build_sources,
                              chi2_and_scatter_nll, consistency_loss, export_checkpoint,
                              gaussian_nll, hide_patches, load_config, reduced_chi2, train,
                              validation_loss)
from spectok.training import data, loop
from spectok.training.data import check_source_configs
from spectok.training.loop import _LOG_FIELDS, _distributed_setup, _rewind_log

SOURCE_CODE = textwrap.dedent("""
    import astropy.units as u
    import numpy as np
    from astropy.nddata import StdDevUncertainty
    from specutils import Spectrum
    from spectok.training import Source

    def draw(rng, redshift):
        n = int(rng.integers(150, 300))
        start = rng.uniform(4000, 5000)
        wave = start * np.exp(np.arange(n) * 2e-4)
        flux = 1 + 0.3 * np.sin(wave / rng.uniform(20, 60)) - 0.5 * np.exp(
            -0.5 * ((wave - wave[n // 2]) / 3) ** 2)
        flux = flux + rng.normal(0, 0.02, n)
        return Spectrum(spectral_axis=wave * u.AA, flux=flux * u.Jy,
                        uncertainty=StdDevUncertainty(np.full(n, 0.02) * u.Jy))

    SOURCES = [Source("toy", draw, instruments=("native",))]
""")
namespace = {}
exec(SOURCE_CODE, namespace)
TOY_SOURCES = namespace["SOURCES"]


def tiny_config(tmp_path, **changes):
    values = dict(model="tiny", output_dir=str(tmp_path), steps=6, batch_size=4, warmup_steps=2,
                  max_query_pixels=64, log_every=1, validate_every=3, checkpoint_every=1,
                  validation_batches=1, learning_rate=1e-3, name="toy-model")
    values.update(changes)
    return TrainingConfig(**values)


def parameters(model):
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def assert_same_parameters(a, b, atol=1e-6):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=1e-5, msg=key)


# -- objectives ---------------------------------------------------------------------

def test_gaussian_nll_is_chi2_without_model_scatter():
    flux = torch.ones(2, 5)
    sigma = torch.full((2, 5), 0.5)
    mean = flux + 0.5
    nll = gaussian_nll(mean, torch.full((2, 5), -40.0), flux, sigma, torch.ones(2, 5, dtype=bool))
    assert float(nll) == pytest.approx(1.0)


def test_gaussian_nll_ignores_invalid_pixels():
    flux, sigma = torch.ones(1, 4), torch.ones(1, 4)
    mean = torch.tensor([[1.0, 1.0, 100.0, 1.0]])
    valid = torch.tensor([[True, True, False, True]])
    assert float(gaussian_nll(mean, torch.full((1, 4), -40.0), flux, sigma, valid)) == 0


def test_model_scatter_absorbs_large_residuals():
    flux, sigma, valid = torch.zeros(1, 3), torch.full((1, 3), 0.1), torch.ones(1, 3, dtype=bool)
    mean = torch.ones(1, 3)
    without = gaussian_nll(mean, torch.full((1, 3), -40.0), flux, sigma, valid)
    with_scatter = gaussian_nll(mean, torch.zeros(1, 3), flux, sigma, valid)
    assert with_scatter < without


def test_chi2_loss_trains_the_mean_on_chi2_and_the_scatter_on_the_likelihood():
    generator = torch.Generator().manual_seed(0)
    flux = torch.randn(2, 6, generator=generator)
    sigma = torch.full((2, 6), 0.2)
    valid = torch.ones(2, 6, dtype=torch.bool)
    valid[1, 4:] = False
    mean = torch.zeros(2, 6, requires_grad=True)
    log_scatter = torch.full((2, 6), -1.0, requires_grad=True)
    chi2_and_scatter_nll(mean, log_scatter, flux, sigma, valid).backward()
    # the mean's gradient is that of the reduced χ², whatever the predicted scatter
    reference_mean = torch.zeros(2, 6, requires_grad=True)
    reduced_chi2(reference_mean, flux, sigma, valid).mean().backward()
    torch.testing.assert_close(mean.grad, reference_mean.grad)
    # the scatter's gradient is that of the Gaussian likelihood
    reference_scatter = torch.full((2, 6), -1.0, requires_grad=True)
    gaussian_nll(torch.zeros(2, 6), reference_scatter, flux, sigma, valid).backward()
    torch.testing.assert_close(log_scatter.grad, reference_scatter.grad)


def test_unknown_reconstruction_loss_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown reconstruction_loss 'l1'.*'chi2'"):
        tiny_config(tmp_path, reconstruction_loss="l1")


def test_training_with_the_chi2_loss_lowers_the_reconstruction_chi2(tmp_path):
    config = tiny_config(tmp_path, steps=30, validate_every=30, reconstruction_loss="chi2")
    train(config, progress=False, sources=TOY_SOURCES, device="cpu")
    log = np.genfromtxt(tmp_path / "log.csv", delimiter=",", names=True)
    assert log["reconstruction"][-5:].mean() < log["reconstruction"][:5].mean()
    loaded = load_model(tmp_path / "toy-model.json")
    assert loaded.metadata["training"]["reconstruction_loss"] == "chi2"


def test_hide_patches_keeps_one_visible_patch_and_hides_the_fraction():
    active = torch.ones(200, 50, dtype=torch.bool)
    active[:, 40:] = False
    hide = hide_patches(active, 0.5, torch.Generator().manual_seed(0))
    assert not (hide & ~active).any()
    assert ((~hide) & active).any(-1).all()
    assert 0.45 < hide[:, :40].float().mean() < 0.55
    with pytest.raises(ValueError, match="fraction"):
        hide_patches(active, 1.0)


def test_consistency_loss_prefers_matched_pairs():
    torch.manual_seed(0)
    a = torch.randn(16, 8)
    matched = consistency_loss(a, a + 0.01 * torch.randn(16, 8))
    assert matched < consistency_loss(a, a[torch.randperm(16)])


# -- configuration --------------------------------------------------------------------

def test_load_config_reads_sources_and_rejects_unknown_keys(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('steps = 7\nbatch_size = 8\n[model]\npreset = "tiny"\nwidth = 64\n'
                    '[[sources]]\nname = "miles"\nweight = 2\ninstruments = ["sdss"]\n'
                    'snr = [5, 50]\n')
    config = load_config(path)
    assert config.steps == 7
    assert config.sources == (SourceConfig("miles", 2, ("sdss",), (5, 50)),)
    assert config.tokenizer_config().width == 64
    path.write_text("stepz = 3\n")
    with pytest.raises(ValueError, match="stepz"):
        load_config(path)
    path.write_text('[[sources]]\nname = "miles"\ncolour = "red"\n')
    with pytest.raises(ValueError, match="colour"):
        load_config(path)


def test_negative_num_workers_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="num_workers must be 0 .* got -1"):
        tiny_config(tmp_path, num_workers=-1)


@pytest.mark.parametrize("option, value, message", [
    ("steps", "ten", "steps must be an integer, got 'ten'"),
    ("steps", 10.0, "steps must be an integer, got 10.0"),
    ("learning_rate", "fast", "learning_rate must be a number"),
    ("learning_rate", True, "learning_rate must be a number, got True"),
    ("name", 3, "name must be a string"),
])
def test_options_of_the_wrong_type_are_refused_by_name(tmp_path, option, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(tmp_path, **{option: value})
    tiny_config(tmp_path, output_dir=tmp_path / "a path", learning_rate=1)  # these are fine


@pytest.mark.parametrize("option, value, message", [
    # each was accepted and trained on silently (a negative clip reverses the gradient), or
    # failed later inside numpy or torch (seed -1, max_query_pixels -1, hide_fraction 1)
    ("learning_rate", 0.0, "learning_rate must be a positive number, got 0.0"),
    ("learning_rate", float("nan"), "learning_rate must be a positive number, got nan"),
    ("temperature", -0.1, "temperature must be a positive number, got -0.1"),
    ("grad_clip", -1.0, r"grad_clip must be a positive number \(inf: no clipping\), got -1.0"),
    ("grad_clip", float("nan"), "grad_clip must be a positive number"),
    ("weight_decay", -0.01, "weight_decay must be a number, 0 or more, got -0.01"),
    ("noise_floor", float("inf"), "noise_floor must be a number, 0 or more, got inf"),
    ("reconstruction_weight", -1.0, "reconstruction_weight must be a number, 0 or more"),
    ("consistency_weight", float("nan"), "consistency_weight must be a number, 0 or more"),
    ("min_learning_ratio", 2.0, "min_learning_ratio must be between 0 and 1, got 2.0"),
    ("hide_fraction", 1.0, r"hide_fraction must be in \[0, 1\) .*got 1.0"),
    ("warmup_steps", -5, "warmup_steps must be 0 or more, got -5"),
    ("seed", -1, "seed must be 0 or more .*got -1"),
    ("max_query_pixels", 0, "max_query_pixels must be 1 or more, got 0"),
    ("max_view_pixels", -3, "max_view_pixels must be 1 or more, got -3"),
    ("anchor_weight", float("inf"), "anchor_weight must be 0 or more, got inf"),
    ("hold_weight", float("inf"), "hold_weight must be positive, got inf"),
    ("name", "", "name must not be empty"),   # the model went to OUTPUT_DIR.json, outside it
    ("output_dir", "", "output_dir must not be empty"),   # the run went to the working dir
    ("model", 3, r"model must be a preset name .* got 3"),   # 'int' object is not iterable
    ("model", {"preset": "huge"}, "unknown model preset 'huge'"),   # KeyError in train
    ("model", {"preset": "tiny", "widht": 64}, "unknown tokenizer configuration keys"),
    ("sources", "miles", "sources must be a list of SourceConfig"),   # AttributeError
    ("sources", ({"name": "miles"},), "sources must be a list of SourceConfig"),
])
def test_settings_out_of_range_are_refused_when_the_configuration_is_made(tmp_path, option,
                                                                           value, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(tmp_path, **{option: value})


def test_a_run_without_a_loss_term_is_refused(tmp_path):
    with pytest.raises(ValueError, match="reconstruction_weight and consistency_weight are both"):
        tiny_config(tmp_path, reconstruction_weight=0.0, consistency_weight=0.0)
    # the edges of the ranges, and what the shipped configurations set, stay fine
    tiny_config(tmp_path, grad_clip=float("inf"), hide_fraction=0.0, min_learning_ratio=1.0,
                warmup_steps=0, reconstruction_weight=0.0, seed=0, max_query_pixels=1)


def test_the_consistency_term_needs_two_pairs_a_batch(tmp_path):
    # one pair has no other to be told from: its InfoNCE term was 0, and trained nothing
    with pytest.raises(ValueError, match="needs batch_size 2 or more, got 1"):
        tiny_config(tmp_path, batch_size=1)
    tiny_config(tmp_path, batch_size=1, consistency_weight=0.0)
    tiny_config(tmp_path, batch_size=2)


@pytest.mark.parametrize("text, message", [
    ("steps = \n", "r.toml is not a valid TOML file: Invalid value"),   # the file was unnamed
    ('[sources]\nname = "miles"\n', r"sources must be a list of source tables \(\[\[sources"),
    ('sources = ["miles"]\n', "each source must be a table .* got 'miles'"),   # letter by letter
    ("[[sources]]\nweight = 2\n", "a source has no name"),   # SourceConfig.__init__ TypeError
])
def test_a_toml_file_that_does_not_hold_a_configuration_is_refused_by_name(tmp_path, text,
                                                                           message):
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_config(path)


@pytest.mark.parametrize("weight, message", [("heavy", "^source '.*': weight must be a number"),
                                             (0.0, "weight must be a positive number"),
                                             (float("nan"), "weight must be a positive number")])
def test_a_source_weight_must_be_a_positive_number(weight, message):
    with pytest.raises(ValueError, match=message):
        SourceConfig("miles", weight=weight)
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TOY_SOURCES[0], weight=weight)


def test_a_source_name_must_be_a_string():
    with pytest.raises(ValueError, match="a source's name must be a string, got 5"):
        SourceConfig(5)


@pytest.mark.parametrize("option, value, message", [
    ("snr", (10, "100"), r"snr must be a \(low, high\) pair of numbers, got \(10, '100'\)"),
    ("snr", 10.0, r"snr must be a \(low, high\) pair of numbers, got 10.0"),
    ("snr", (100.0, 10.0), r"snr must be positive with low <= high, got \(100.0, 10.0\)"),
    ("snr", (0.0, 10.0), "snr must be positive"),
    ("redshift", (0.5, 0.1), "redshift must be > -1 with low <= high"),
    ("redshift", (-1.0, 0.0), "redshift must be > -1"),
    ("redshift", (0.0, float("nan")), "redshift must be > -1 with low <= high, got"),
    ("instruments", "sdss", "instruments must be a non-empty list of instrument names, got 'sdss'"),
    ("instruments", (), "instruments must be a non-empty list"),
    # a set's order varies between processes: one seed drew other instruments in each
    ("instruments", {"sdss", "lamost"}, "instruments must be a non-empty list of instrument"),
    ("instruments", ("sdss", "hubble"), "unknown instrument 'hubble'; valid names"),
])
def test_a_source_range_or_instrument_list_that_cannot_be_drawn_from_is_refused(option, value,
                                                                                 message):
    with pytest.raises(ValueError, match=f"source 'miles': {message}"):
        SourceConfig("miles", **{option: value})
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TOY_SOURCES[0], **{option: value})
    SourceConfig("miles", snr=[5, 5.0], redshift=(0.0, 1.5), instruments=["native", "SDSS"])


def test_unknown_source_name_is_an_error(tmp_path):
    config = tiny_config(tmp_path, sources=(SourceConfig("nonexistent"),))
    with pytest.raises(ValueError, match="nonexistent"):
        train(config, progress=False)
    with pytest.raises(ValueError, match="'galaxies' is simulated and has no 'native' view"):
        check_source_configs([SourceConfig("galaxies", instruments=("sdss", "native"))])
    # the galaxy and quasar simulators refuse z < 0: found here, not deep in the stream
    with pytest.raises(ValueError, match=r"'quasars' is simulated at redshifts z >= 0, got "
                                         r"redshift = \(-0.01, 0.1\)"):
        check_source_configs([SourceConfig("quasars", redshift=(-0.01, 0.1))])
    check_source_configs([SourceConfig("miles", redshift=(-0.001, 0.001))])  # a star may approach


# -- the data stream ---------------------------------------------------------------------

def test_stream_is_deterministic_and_split_across_ranks(tmp_path):
    config = tiny_config(tmp_path)
    whole = TrainingStream(TOY_SOURCES, config, 32).batch(3)
    again = TrainingStream(TOY_SOURCES, config, 32).batch(3)
    halves = [TrainingStream(TOY_SOURCES, config, 32, rank=r, world_size=2).batch(3)
              for r in range(2)]
    for view in range(2):
        torch.testing.assert_close(whole[view]["inputs"][1], again[view]["inputs"][1])
        flux = whole[view]["inputs"][1]
        for rank, half in enumerate(halves):
            part = half[view]["inputs"][1]
            torch.testing.assert_close(part, flux[2 * rank:2 * rank + 2, :part.shape[1]])
    assert whole[0]["query"].shape == (4, 64)


def test_stream_does_not_depend_on_the_number_of_workers(tmp_path):
    config = tiny_config(tmp_path)

    def fluxes(num_workers):
        stream = TrainingStream(TOY_SOURCES, config, 32, start_step=0, stop_step=4)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=num_workers)
        return [view_a["inputs"][1] for view_a, _ in loader]

    for a, b in zip(fluxes(0), fluxes(2), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def _three_families(n_each=4):
    """Spectra in three families of slope (blue, flat, red), each object starting at its
    own wavelength: object ``i`` starts at 4000 + 10 i Å."""
    import astropy.units as u
    from specutils import Spectrum

    spectra = []
    for family, slope in enumerate((-3.0, 0.0, 3.0)):
        for member in range(n_each):
            start = 4000.0 + 10.0 * (family * n_each + member)
            wave = start * np.exp(np.arange(2000) * 2e-4)
            flux = (1 + 0.01 * member) * (wave / 5000.0) ** slope
            spectra.append(Spectrum(spectral_axis=wave * u.AA, flux=flux * u.Jy))
    return spectra


def test_similar_batches_hold_one_object_and_its_neighbours(tmp_path):
    from spectok.training.data import _Pool

    pool = _Pool(_three_families())
    near = pool.neighbours(5, 4).tolist()
    assert near[0] == 5 and sorted(near) == [4, 5, 6, 7]
    # repeat spectra of one source are never negatives of each other
    grouped = _Pool(_three_families(), groups=[0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert grouped.neighbours(0, 4).tolist()[0] == 0
    assert 1 not in grouped.neighbours(0, 4) and len(grouped.neighbours(0, 4)) == 4
    sources = [Source("families", pool, instruments=("native",))]

    def objects_per_batch(fraction):
        config = tiny_config(tmp_path, similar_batch_fraction=fraction)
        stream = TrainingStream(sources, config, 32)
        objects = []
        for step in range(6):
            start = torch.exp(stream.batch(step)[0]["inputs"][0][:, 0]).numpy()
            objects.append(np.round((start - 4000.0) / 10.0).astype(int))
        return objects

    for objects in objects_per_batch(1.0):  # an object and its three neighbours
        assert sorted(objects) == sorted(pool.neighbours(objects[0], 4).tolist())
    assert any(len(set(objects // 4)) > 1 for objects in objects_per_batch(0.0))
    # a source without a fixed collection draws the same stream whatever the fraction
    plain, similar = (TrainingStream(TOY_SOURCES, tiny_config(tmp_path, similar_batch_fraction=f),
                                     32).batch(2) for f in (0.0, 1.0))
    torch.testing.assert_close(plain[0]["inputs"][1], similar[0]["inputs"][1], atol=0, rtol=0)
    with pytest.raises(ValueError, match="similar_batch_fraction"):
        tiny_config(tmp_path, similar_batch_fraction=1.5)


# -- the loop -----------------------------------------------------------------------------

def test_training_reduces_the_loss_and_saves_a_loadable_model(tmp_path):
    config = tiny_config(tmp_path, steps=30, validate_every=30)
    model = train(config, progress=False, sources=TOY_SOURCES, device="cpu")
    log = np.genfromtxt(tmp_path / "log.csv", delimiter=",", names=True)
    assert len(log) == 30
    assert log["loss"][-5:].mean() < log["loss"][:5].mean()
    assert np.isfinite(log["val_loss"][-1])
    loaded = load_model(tmp_path / "toy-model.json")
    assert_same_parameters(parameters(loaded), parameters(model), atol=0)
    # the validation helper scores a saved model on exactly the batches training used
    losses = validation_loss(tmp_path / "toy-model.json", config, sources=TOY_SOURCES)
    assert losses["loss"] == pytest.approx(log["val_loss"][-1], rel=1e-5)
    assert losses["consistency"] == pytest.approx(log["val_consistency"][-1], rel=1e-5)
    # the toy spectra start at 4000-5000 Å and span at most 6 % in wavelength
    low, high = loaded.metadata["wavelength_range"]
    assert 4000 <= low < 4300 and 4800 < high <= 5000 * np.exp(300 * 2e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_training_on_a_gpu(tmp_path):
    # bfloat16 autocast: the loss falls, the saved model is the trained one, the float32
    # validation loss of the saved model is close to the logged bfloat16 one, and it resumes
    config = tiny_config(tmp_path, steps=30, validate_every=30)
    model = train(config, progress=False, sources=TOY_SOURCES, device="cuda")
    assert next(model.parameters()).is_cuda
    log = np.genfromtxt(tmp_path / "log.csv", delimiter=",", names=True)
    assert log["loss"][-5:].mean() < log["loss"][:5].mean()
    loaded = load_model(tmp_path / "toy-model.json")
    assert_same_parameters(parameters(loaded), parameters(model), atol=0)
    losses = validation_loss(tmp_path / "toy-model.json", config, sources=TOY_SOURCES)
    assert losses["loss"] == pytest.approx(log["val_loss"][-1], rel=0.05)
    # a checkpoint written on the GPU resumes there
    more = train(tiny_config(tmp_path, steps=32, validate_every=30), resume=True, progress=False,
                 sources=TOY_SOURCES, device="cuda")
    assert not torch.equal(parameters(more)["patch_projection.weight"],
                           parameters(model)["patch_projection.weight"])


def test_resume_from_a_checkpoint_without_the_wavelength_record(tmp_path):
    train(tiny_config(tmp_path, steps=3), progress=False, sources=TOY_SOURCES)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    del state["wavelength_span"]  # as written before the record existed
    torch.save(state, tmp_path / CHECKPOINT_NAME)
    with pytest.warns(UserWarning, match="predates the record") as caught:
        train(tiny_config(tmp_path, steps=5), resume=True, progress=False, sources=TOY_SOURCES)
    assert [w.filename for w in caught if "predates" in str(w.message)] == [__file__]
    assert "wavelength_range" not in load_model(tmp_path / "toy-model.json").metadata


def test_init_weights_starts_from_a_saved_model(tmp_path):
    first = train(tiny_config(tmp_path / "first", steps=4), progress=False, sources=TOY_SOURCES)
    saved = tmp_path / "first" / "toy-model.json"
    # the model returned is the model saved, name and metadata included
    assert (first.name, first.metadata) == (load_model(saved).name, load_model(saved).metadata)
    second = train(tiny_config(tmp_path / "second", steps=1, learning_rate=1e-12,
                               init_weights=str(saved)), progress=False, sources=TOY_SOURCES)
    assert_same_parameters(parameters(first), parameters(second), atol=1e-8)
    before = load_model(saved).metadata["wavelength_range"]
    after = load_model(tmp_path / "second" / "toy-model.json").metadata["wavelength_range"]
    assert after[0] <= before[0] and after[1] >= before[1]
    # a starting model without a recorded range leaves the new model without one
    unrecorded = load_model(saved)
    unrecorded.metadata.pop("wavelength_range")
    save_model(unrecorded, tmp_path / "unrecorded")
    train(tiny_config(tmp_path / "fourth", steps=1, init_weights=str(tmp_path / "unrecorded.json")),
          progress=False, sources=TOY_SOURCES)
    assert "wavelength_range" not in load_model(tmp_path / "fourth" / "toy-model.json").metadata
    with pytest.raises(ValueError, match="init_weights .* has configuration"):
        train(tiny_config(tmp_path / "third", model="small", init_weights=str(saved)),
              progress=False, sources=TOY_SOURCES)


def test_decoder_only_training_keeps_the_tokens_and_adds_the_pixel_basis(tmp_path):
    """From a model without the basis: the run may add it, and ``trainable = "decoder"``
    leaves every encoder parameter (so every token and embedding) as it was."""
    first = train(tiny_config(tmp_path / "first", steps=3), progress=False, sources=TOY_SOURCES)
    saved = str(tmp_path / "first" / "toy-model.json")
    model = {"preset": "tiny", "pixel_basis": True}
    decoder = train(tiny_config(tmp_path / "decoder", steps=4, model=model, init_weights=saved,
                                trainable="decoder", reconstruction_loss="chi2"),
                    progress=False, sources=TOY_SOURCES)
    assert decoder.config.pixel_basis
    before, after = parameters(first), parameters(decoder)
    encoder = {id(p) for p in decoder.encoder_parameters()}
    names = {name for name, p in decoder.named_parameters() if id(p) in encoder}
    for name in names:
        torch.testing.assert_close(after[name], before[name], atol=0, rtol=0, msg=name)
    assert after["pixel_coefficients.3.weight"].abs().sum() > 0     # zero at the start
    assert any(not torch.equal(after[name], before[name]) for name in before
               if name.startswith("decoder."))
    # the saved model reloads with its basis, and resuming keeps the encoder frozen
    assert load_model(tmp_path / "decoder" / "toy-model.json").config.pixel_basis
    resumed = train(tiny_config(tmp_path / "decoder", steps=6, model=model, init_weights=saved,
                                trainable="decoder", reconstruction_loss="chi2"),
                    resume=True, progress=False, sources=TOY_SOURCES)
    for name in names:
        torch.testing.assert_close(parameters(resumed)[name], before[name], atol=0, rtol=0)
    with pytest.raises(ValueError, match="trained 'decoder' parameters, this run 'all'"):
        train(tiny_config(tmp_path / "decoder", steps=8, model=model, init_weights=saved),
              resume=True, progress=False, sources=TOY_SOURCES)
    # the basis cannot be taken away, nor another setting changed
    with pytest.raises(ValueError, match="init_weights .* has configuration"):
        train(tiny_config(tmp_path / "removed", steps=1,
                          init_weights=str(tmp_path / "decoder" / "toy-model.json")),
              progress=False, sources=TOY_SOURCES)
    with pytest.raises(ValueError, match="init_weights .* has configuration"):
        train(tiny_config(tmp_path / "other", steps=1, init_weights=saved,
                          model={"preset": "tiny", "pixel_basis": True, "token_dim": 4}),
              progress=False, sources=TOY_SOURCES)


def test_readout_weight_adds_the_chi2_of_the_readout_alone(tmp_path):
    model = {"preset": "tiny", "pixel_basis": True}
    config = tiny_config(tmp_path, model=model, reconstruction_loss="chi2")
    weighted = dataclasses.replace(config, readout_weight=0.5)
    tokenizer = SpectralTokenizer(config.tokenizer_config()).eval()
    with torch.no_grad():
        tokenizer.pixel_coefficients[-1].bias.normal_(0, 0.3)
    views = TrainingStream(TOY_SOURCES, config, tokenizer.config.patch_size).batch(0)
    loss, _ = TrainingObjective(tokenizer, config)(*views)
    loss_weighted, _ = TrainingObjective(tokenizer, weighted)(*views)
    readout_chi2 = []
    for view in views:
        log_wave, flux, sigma, valid, observed, spacing = view["inputs"]
        query = view["query"]
        _, _, _, readout = tokenizer(log_wave, flux, sigma, valid, observed, spacing,
                                     hide=view["hide"], query_spacing=spacing.gather(1, query),
                                     query_log_wavelength=log_wave.gather(1, query),
                                     return_readout=True)
        error = torch.sqrt(sigma.gather(1, query) ** 2 + config.noise_floor ** 2)
        readout_chi2.append(reduced_chi2(readout, flux.gather(1, query), error,
                                         valid.gather(1, query) & view["query_valid"]).mean())
    # the reconstruction term averages the two views
    torch.testing.assert_close(loss_weighted - loss, 0.5 * 0.5 * sum(readout_chi2))
    assert loss_weighted > loss


def test_readout_weight_needs_the_pixel_basis_and_is_not_negative(tmp_path):
    with pytest.raises(ValueError, match="needs a model with pixel_basis"):
        tiny_config(tmp_path, readout_weight=0.5)
    with pytest.raises(ValueError, match="readout_weight must be 0 or more, got -1"):
        tiny_config(tmp_path, model={"preset": "tiny", "pixel_basis": True}, readout_weight=-1)


#: A tiny model with the decoder's pixel basis, which held sources are tested on.
BASIS_MODEL = {"preset": "tiny", "pixel_basis": True}


def _saved_basis_model(tmp_path):
    """A `BASIS_MODEL` trained two steps on the toy source: (the model, its saved .json path)."""
    first = train(tiny_config(tmp_path / "first", steps=2, model=BASIS_MODEL), progress=False,
                  sources=TOY_SOURCES)
    return first, str(tmp_path / "first" / "toy-model.json")


def _held():
    """The toy source held to the init_weights model's reconstructions, as a run names it."""
    sources = [dataclasses.replace(TOY_SOURCES[0], reconstruction_target="init_weights")]
    return sources, (SourceConfig("toy", reconstruction_target="init_weights"),)


def test_a_held_batch_of_the_starting_model_costs_only_the_scatters_likelihood(tmp_path):
    model = BASIS_MODEL
    _, saved = _saved_basis_model(tmp_path)
    sources, held = _held()
    config = tiny_config(tmp_path, model=model, init_weights=saved, trainable="decoder",
                         consistency_weight=0.0, reconstruction_loss="chi2", readout_weight=1.0,
                         sources=held)
    tokenizer = load_model(saved)
    views = TrainingStream(sources, config, tokenizer.config.patch_size).batch(0)
    assert all(view["reconstruct_init_weights"] is True for view in views)
    _, terms = TrainingObjective(tokenizer, config)(*views)
    # the model is still init_weights: its flux and readout sit on their targets, and what
    # is left is the scatter's likelihood against the data
    scatter_terms = []
    for view in views:
        log_wave, flux, sigma, valid, observed, spacing = view["inputs"]
        query = view["query"]
        with torch.no_grad():
            _, mean, log_scatter = tokenizer(log_wave, flux, sigma, valid, observed, spacing,
                                             hide=view["hide"],
                                             query_log_wavelength=log_wave.gather(1, query),
                                             query_spacing=spacing.gather(1, query))
        scatter_terms.append(gaussian_nll(mean, log_scatter, flux.gather(1, query),
                                          sigma.gather(1, query),
                                          valid.gather(1, query) & view["query_valid"],
                                          config.noise_floor))
    torch.testing.assert_close(terms["reconstruction"], 0.5 * sum(scatter_terms))
    # the same batch fitted to the data has the flux's own chi2 on top
    on_data = TrainingStream(TOY_SOURCES, config, tokenizer.config.patch_size).batch(0)
    _, data_terms = TrainingObjective(tokenizer, config)(*on_data)
    assert data_terms["reconstruction"] > terms["reconstruction"] + 1


def test_with_a_frozen_encoder_the_reference_decodes_the_models_own_tokens(tmp_path):
    model = BASIS_MODEL
    _, saved = _saved_basis_model(tmp_path)
    sources, held = _held()
    options = dict(model=model, init_weights=saved, consistency_weight=0.0,
                   reconstruction_loss="chi2", readout_weight=1.0, sources=held)
    tokenizer = load_model(saved)
    views = TrainingStream(sources, tiny_config(tmp_path, **options),
                           tokenizer.config.patch_size).batch(0)
    objectives = {trainable: TrainingObjective(tokenizer, tiny_config(tmp_path, trainable=trainable,
                                                                      **options))
                  for trainable in ("decoder", "all")}
    other = load_model(saved)
    with torch.no_grad():
        other.to_token.bias.add_(0.1)   # another encoder: its tokens are not the model's
    objectives["other encoder"] = TrainingObjective(
        tokenizer, tiny_config(tmp_path, trainable="decoder", **options), reference_model=other)
    with torch.no_grad():   # a decoder trained away from the reference, so the hold costs
        for parameter in tokenizer.decoder.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    encoder_calls = dict.fromkeys(objectives, 0)
    terms = {}
    for name, objective in objectives.items():
        def count(*_, name=name):
            encoder_calls[name] += 1
        objective.reference_model.encoder[0].register_forward_hook(count)
        terms[name] = objective(*views)[1]["reconstruction"]
    assert encoder_calls == {"decoder": 0, "all": 2, "other encoder": 2}
    torch.testing.assert_close(terms["decoder"], terms["all"], rtol=1e-6, atol=0)
    assert terms["other encoder"] != terms["decoder"]


def test_held_sources_keep_their_reconstructions_through_a_decoder_run(tmp_path):
    model = BASIS_MODEL
    first, saved = _saved_basis_model(tmp_path)
    sources, held = _held()
    spectra = [TOY_SOURCES[0].draw(np.random.default_rng(k), 0.0) for k in range(4)]

    def reconstructions(tokenizer):
        batch = encode(spectra, model=tokenizer, progress=False)
        return np.concatenate([spectok.decode(tokens, s.spectral_axis, model=tokenizer).flux.value
                               for tokens, s in zip(batch, spectra)])

    start = reconstructions(first)
    moved = {}
    for target, run_sources, configured in (("data", TOY_SOURCES, ()), ("held", sources, held)):
        changes = {"sources": configured} if configured else {}
        config = tiny_config(tmp_path / target, steps=6, model=model, init_weights=saved,
                             trainable="decoder", consistency_weight=0.0,
                             reconstruction_loss="chi2", learning_rate=3e-3, **changes)
        trained = train(config, progress=False, sources=run_sources)
        moved[target] = np.abs(reconstructions(trained) - start).mean()
    assert 0 < moved["held"] < 0.2 * moved["data"]
    # a resumed run holds to the same model: the checkpoint keeps it
    state = torch.load(tmp_path / "held" / CHECKPOINT_NAME, weights_only=True)
    assert_same_parameters(state["reference_model"], parameters(first), atol=0)


def test_hold_weight_weighs_the_held_chi2_of_the_flux_and_the_readout(tmp_path):
    sources, held = _held()
    config = tiny_config(tmp_path, model={"preset": "tiny", "pixel_basis": True},
                         init_weights="spectok-small", reconstruction_loss="chi2",
                         readout_weight=0.5, sources=held)
    reference = SpectralTokenizer(config.tokenizer_config()).eval()
    tokenizer = copy.deepcopy(reference)
    with torch.no_grad():
        tokenizer.pixel_coefficients[-1].bias.normal_(0, 0.3)   # moves the flux, not the readout
        tokenizer.readout_norm.bias.normal_(0, 0.3)             # moves both
    views = TrainingStream(sources, config, tokenizer.config.patch_size).batch(0)
    held_chi2 = []
    for view in views:
        log_wave, flux, sigma, valid, observed, spacing = view["inputs"]
        query = view["query"]
        outputs = [net(log_wave, flux, sigma, valid, observed, spacing, hide=view["hide"],
                       query_log_wavelength=log_wave.gather(1, query),
                       query_spacing=spacing.gather(1, query), return_readout=True)
                   for net in (tokenizer, reference)]
        error = torch.sqrt(sigma.gather(1, query) ** 2 + config.noise_floor ** 2)
        valid_queried = valid.gather(1, query) & view["query_valid"]
        (_, mean, _, readout), (_, held_mean, _, held_readout) = outputs
        held_chi2.append(reduced_chi2(mean, held_mean, error, valid_queried).mean()
                         + 0.5 * reduced_chi2(readout, held_readout, error, valid_queried).mean())
    terms = {weight: TrainingObjective(tokenizer, dataclasses.replace(config, hold_weight=weight),
                                       reference_model=reference)(*views)[1]["reconstruction"]
             for weight in (1.0, 3.0)}
    # the reconstruction term averages the two views
    torch.testing.assert_close(terms[3.0] - terms[1.0], 2.0 * 0.5 * sum(held_chi2))
    assert sum(held_chi2) > 0


def test_held_sources_need_init_weights_and_the_chi2(tmp_path):
    _, held = _held()
    needs = r"sources \['toy'\] reconstruct what init_weights reconstructs, so the run needs "
    with pytest.raises(ValueError, match=needs + "init_weights$"):
        tiny_config(tmp_path, sources=held, reconstruction_loss="chi2")
    with pytest.raises(ValueError, match=needs + "reconstruction_loss = 'chi2'$"):
        tiny_config(tmp_path, sources=held, init_weights="spectok-small")
    with pytest.raises(ValueError, match=needs + "reconstruction_weight > 0$"):
        tiny_config(tmp_path, sources=held, init_weights="spectok-small",
                    reconstruction_loss="chi2", reconstruction_weight=0.0)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=f"hold_weight must be positive, got {bad}"):
            tiny_config(tmp_path, hold_weight=bad)
    for make in (SourceConfig, functools.partial(Source, draw=None)):
        with pytest.raises(ValueError, match="source 'toy': reconstruction_target must be "
                                             "'data' or 'init_weights', got 'model'"):
            make("toy", reconstruction_target="model")
    # a batch held to init_weights needs an objective that keeps that model, and train and
    # validation_loss refuse such pre-built sources before any step
    sources, _ = _held()
    config = tiny_config(tmp_path)
    views = TrainingStream(sources, config, config.tokenizer_config().patch_size).batch(0)
    with pytest.raises(ValueError, match="a batch asks for the reconstruction of init_weights"):
        TrainingObjective(SpectralTokenizer(config.tokenizer_config()), config)(*views)
    unnamed = r"sources \['toy'\] .* configuration's sources do not say so"
    with pytest.raises(ValueError, match=unnamed):
        train(config, progress=False, sources=sources)
    assert not (tmp_path / CHECKPOINT_NAME).exists()
    with pytest.raises(ValueError, match=unnamed):
        validation_loss(SpectralTokenizer(config.tokenizer_config()), config, sources=sources)


def _stopped_at_step_3(config, output_dir, sources, monkeypatch):
    """``config`` run into ``output_dir`` and stopped right after its step-3 checkpoint."""
    save = loop._save_checkpoint

    def save_then_stop(path, objective, optimizer, scheduler, step, *args):
        save(path, objective, optimizer, scheduler, step, *args)
        if step == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(loop, "_save_checkpoint", save_then_stop)
    stopped = dataclasses.replace(config, output_dir=str(output_dir))
    with pytest.raises(KeyboardInterrupt):
        train(stopped, progress=False, sources=sources)
    monkeypatch.undo()
    return stopped


def test_a_run_with_fitted_and_held_sources_resumes_where_it_stopped(tmp_path, monkeypatch):
    model = BASIS_MODEL
    _, saved = _saved_basis_model(tmp_path)
    held_sources, held = _held()
    fitted = dataclasses.replace(TOY_SOURCES[0], name="fitted")
    sources = [fitted, held_sources[0]]
    config = tiny_config(tmp_path / "straight", model=model, init_weights=saved,
                         trainable="decoder", consistency_weight=0.0, readout_weight=1.0,
                         reconstruction_loss="chi2", hold_weight=5.0,
                         sources=(SourceConfig("fitted"), *held))
    stream = TrainingStream(sources, config, 32)
    assert {stream.batch(step)[0]["reconstruct_init_weights"] for step in range(6)} == \
        {True, False}
    straight = train(config, progress=False, sources=sources)
    stopped = _stopped_at_step_3(config, tmp_path / "stopped", sources, monkeypatch)
    # the reference comes from the checkpoint, whatever init_weights holds by now
    other = SpectralTokenizer(config.tokenizer_config())
    save_model(other, tmp_path / "first" / "toy-model")
    resumed = train(stopped, resume=True, progress=False, sources=sources)
    assert_same_parameters(parameters(straight), parameters(resumed), atol=0)
    # a checkpoint of a run that held nothing cannot resume one that holds
    plain = _stopped_at_step_3(dataclasses.replace(stopped, sources=(SourceConfig("fitted"),)),
                               tmp_path / "plain", [fitted], monkeypatch)
    with pytest.raises(ValueError, match="held no source to init_weights, this run holds some"):
        train(dataclasses.replace(stopped, output_dir=plain.output_dir), resume=True,
              progress=False, sources=sources)


def test_basis_only_training_keeps_everything_but_the_basis(tmp_path):
    first = train(tiny_config(tmp_path / "first", steps=3), progress=False, sources=TOY_SOURCES)
    saved = str(tmp_path / "first" / "toy-model.json")
    basis = train(tiny_config(tmp_path / "basis", steps=3, init_weights=saved, trainable="basis",
                              model={"preset": "tiny", "pixel_basis": True},
                              reconstruction_loss="chi2"),
                  progress=False, sources=TOY_SOURCES)
    before, after = parameters(first), parameters(basis)
    assert set(after) - set(before) == {k for k in after if k.startswith("pixel_coefficients.")}
    for name in before:
        torch.testing.assert_close(after[name], before[name], atol=0, rtol=0, msg=name)
    assert after["pixel_coefficients.3.weight"].abs().sum() > 0     # zero at the start


def test_pooling_only_training_changes_the_embedding_alone(tmp_path):
    first = train(tiny_config(tmp_path / "first", steps=3), progress=False, sources=TOY_SOURCES)
    saved = str(tmp_path / "first" / "toy-model.json")
    pooled = train(tiny_config(tmp_path / "pooling", steps=3, init_weights=saved,
                               trainable="pooling", reconstruction_weight=0.0,
                               consistency_weight=1.0, hide_fraction=0.0),
                   progress=False, sources=TOY_SOURCES)
    before, after = parameters(first), parameters(pooled)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("pooling.") for name in changed)
    # nothing reconstructed: the log's reconstruction term is zero throughout
    log = np.genfromtxt(tmp_path / "pooling" / "log.csv", delimiter=",", names=True)
    assert len(log) and np.all(log["reconstruction"] == 0.0)
    with pytest.raises(ValueError, match="'pooling' .* needs consistency_weight > 0"):
        tiny_config(tmp_path, trainable="pooling", init_weights=saved, consistency_weight=0.0)


def test_anchor_loss_holds_the_sharper_view_of_each_pair():
    reference = torch.randn(3, 8)
    moved = reference + 1.0
    n_valid_a, n_valid_b = torch.tensor([100, 5, 7]), torch.tensor([5, 100, 7])
    # row 0: view a is sharper and has not moved; row 1: view b is sharper and has;
    # row 2: as many valid pixels, so view a, which has not moved
    loss = anchor_loss(reference, moved, reference, reference, n_valid_a, n_valid_b)
    expected = (8.0 / reference[1].pow(2).sum()) / 3
    torch.testing.assert_close(loss, expected)
    a = reference.clone().requires_grad_(True)
    b = moved.clone().requires_grad_(True)
    anchor_loss(a, b, reference, reference, n_valid_a, n_valid_b).backward()
    assert torch.all(a.grad == 0)      # view a of row 0 is where it was: nothing to pull
    assert torch.count_nonzero(b.grad.abs().sum(-1)).item() == 1  # only row 1's sharper view


def _pooling_run(tmp_path, saved, **changes):
    config = tiny_config(tmp_path, steps=6, init_weights=saved, trainable="pooling",
                         reconstruction_weight=0.0, consistency_weight=1.0, hide_fraction=0.0,
                         **changes)
    return config, train(config, progress=False, sources=TOY_SOURCES)


def test_anchor_keeps_the_pooled_embedding_near_the_starting_model(tmp_path):
    first = train(tiny_config(tmp_path / "first", steps=3), progress=False, sources=TOY_SOURCES)
    saved = str(tmp_path / "first" / "toy-model.json")
    spectra = [TOY_SOURCES[0].draw(np.random.default_rng(k), 0.0) for k in range(8)]
    start = encode(spectra, model=first, progress=False).embedding
    moved = {}
    for weight in (0.0, 100.0):
        config, model = _pooling_run(tmp_path / str(weight), saved, anchor_weight=weight)
        moved[weight] = np.linalg.norm(encode(spectra, model=model, progress=False).embedding
                                       - start, axis=1).mean()
    assert 0 < moved[100.0] < 0.5 * moved[0.0]
    # the log has the unweighted anchor term, which the loss adds with its weight; a run
    # without the anchor leaves the column empty
    log = np.genfromtxt(tmp_path / "100.0" / "log.csv", delimiter=",", names=True)
    # the first step's pooling is the reference itself (zero up to rounding), later ones moved
    assert abs(log["anchor"][0]) < 1e-6 and np.all(log["anchor"][1:] > 0)
    np.testing.assert_allclose(log["loss"], log["consistency"] + 100.0 * log["anchor"],
                               rtol=1e-5)
    unanchored = np.genfromtxt(tmp_path / "0.0" / "log.csv", delimiter=",", names=True)
    assert np.all(np.isnan(unanchored["anchor"])) and np.all(np.isnan(unanchored["val_anchor"]))
    # validation_loss measures the anchor from init_weights, as training's validation does
    scored = validation_loss(model, config, sources=TOY_SOURCES)
    np.testing.assert_allclose([scored["loss"], scored["anchor"]],
                               [log["val_loss"][-1], log["val_anchor"][-1]], rtol=1e-5)
    assert "anchor" not in validation_loss(model, dataclasses.replace(config, anchor_weight=0.0),
                                           sources=TOY_SOURCES)
    with pytest.raises(ValueError, match="anchor_weight .* needs trainable = 'pooling', got 'all'"):
        tiny_config(tmp_path, anchor_weight=1.0)
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match=f"anchor_weight must be 0 or more, got {bad}"):
            tiny_config(tmp_path, trainable="pooling", init_weights=saved, anchor_weight=bad)


def test_anchored_pooling_training_resumes_where_it_stopped(tmp_path, monkeypatch):
    train(tiny_config(tmp_path / "first", steps=3), progress=False, sources=TOY_SOURCES)
    saved = str(tmp_path / "first" / "toy-model.json")
    config, straight = _pooling_run(tmp_path / "straight", saved, anchor_weight=10.0)
    stopped = _stopped_at_step_3(config, tmp_path / "stopped", TOY_SOURCES, monkeypatch)
    # the anchor's reference is the init_weights pooling, kept in the checkpoint
    kept = torch.load(tmp_path / "stopped" / CHECKPOINT_NAME, weights_only=True)
    start = load_model(saved).pooling.state_dict()
    assert_same_parameters(kept["reference_pooling"], start, atol=0)
    # a log written before the anchor had columns of its own is carried on
    log_path = tmp_path / "stopped" / "log.csv"
    lines = log_path.read_text().splitlines()
    old = [i for i, name in enumerate(lines[0].split(",")) if "anchor" not in name]
    log_path.write_text("".join(",".join(line.split(",")[i] for i in old) + "\n"
                                for line in lines))
    resumed = train(stopped, resume=True, progress=False, sources=TOY_SOURCES)
    assert_same_parameters(parameters(straight), parameters(resumed), atol=0)
    log = np.genfromtxt(log_path, delimiter=",", names=True)
    assert log["step"].tolist() == list(range(1, 7))
    assert np.all(np.isnan(log["anchor"][:3])) and np.all(log["anchor"][3:] > 0)


def test_untrimmed_views_have_the_patch_grid_encode_gives(tmp_path):
    wave = np.linspace(4000, 6000, 3000)
    star = Spectrum(spectral_axis=wave * u.AA, flux=(1 + 0.1 * np.sin(wave / 30)) * u.Jy,
                    uncertainty=StdDevUncertainty(np.full(wave.size, 0.01) * u.Jy))
    obj = data._as_object(star)
    views = {trim: data._view(obj, "sdss", 50.0, 0.0, np.random.default_rng(0), 32, 10**5, trim)
             for trim in (True, False)}
    encoded = prepare_spectrum(observe(star, "sdss", snr=50.0, rng=0))
    np.testing.assert_allclose(views[False].wavelength[0], encoded.wavelength[0])
    np.testing.assert_array_equal(views[False].valid[0], encoded.valid[0])
    trimmed = views[True].wavelength[0]
    assert 3990 < trimmed[0] < 4010 and 5990 < trimmed[-1] < 6010
    assert encoded.wavelength[0][0] < 3700          # SDSS starts well blueward of the star
    with pytest.raises(ValueError, match="trim_views must be true or false, got 'no'"):
        tiny_config(tmp_path, trim_views="no")


def test_a_window_of_a_whole_view_with_too_few_usable_pixels_is_redrawn():
    wave = np.linspace(4000, 6000, 3000)
    star = Spectrum(spectral_axis=wave * u.AA, flux=np.ones(wave.size) * u.Jy,
                    uncertainty=StdDevUncertainty(np.full(wave.size, 0.01) * u.Jy))
    obj = data._as_object(star)
    outcomes = []
    for seed in range(20):  # 100-pixel windows of SDSS's 3600-10400 Å: most miss the star
        try:
            view = data._view(obj, "sdss", 50.0, 0.0, np.random.default_rng(seed), 32, 100,
                              trim=False)
        except SpectrumInputError as error:
            assert "the window of sdss cut from this object is unusable" in str(error)
            outcomes.append(False)
        else:
            assert sum(int(v.sum()) for v in view.valid) >= 64
            outcomes.append(True)
    assert any(outcomes) and not all(outcomes)


def test_intervals_and_validation_batches_must_be_positive(tmp_path):
    # a zero interval would divide by zero mid-run; no validation batches, validate nothing
    for name in ("log_every", "validate_every", "checkpoint_every", "validation_batches"):
        with pytest.raises(ValueError, match=f"{name} must be 1 or more, got 0"):
            tiny_config(tmp_path, **{name: 0})


def test_the_objective_reports_only_terms_the_log_has(tmp_path):
    saved = str(tmp_path / "first" / "toy-model.json")
    train(tiny_config(tmp_path / "first", steps=1), progress=False, sources=TOY_SOURCES)
    config = tiny_config(tmp_path, trainable="pooling", init_weights=saved, anchor_weight=1.0,
                         reconstruction_weight=0.0, consistency_weight=1.0)
    model = load_model(saved)
    views = TrainingStream(TOY_SOURCES, config, model.config.patch_size).batch(0)
    _, terms = TrainingObjective(model, config)(*views)
    assert list(terms) == ["reconstruction", "consistency", "anchor"]
    assert set(terms) <= set(_LOG_FIELDS)


def test_trainable_choices_and_what_they_need(tmp_path):
    with pytest.raises(ValueError, match="trainable must be 'all', 'decoder', 'basis' or "
                                         "'pooling', got 'encoder'"):
        tiny_config(tmp_path, trainable="encoder")
    for trainable in ("decoder", "basis", "pooling"):
        with pytest.raises(ValueError, match=f"trainable = '{trainable}' .* needs init_weights"):
            tiny_config(tmp_path, trainable=trainable)
    with pytest.raises(ValueError, match="needs a model with pixel_basis = true"):
        tiny_config(tmp_path, trainable="basis", init_weights="spectok-small")


def test_rewinding_the_log_keeps_complete_rows_up_to_the_checkpoint(tmp_path):
    log = tmp_path / "log.csv"
    values = {"learning_rate": 0.001, "loss": 2.0, "reconstruction": 1.5, "consistency": 0.5,
              "grad_norm": 1.0, "spectra_per_second": 30.0}
    rows = [",".join(str({**values, "step": step, "wall_seconds": 10.0 * step}.get(name, ""))
                     for name in _LOG_FIELDS) for step in (20, 40, 60)]
    # the row of step 80 was cut short by a kill, after the checkpoint of step 50
    log.write_text(",".join(_LOG_FIELDS) + "\n" + "\n".join(rows) + "\n80,0.001,2.")
    assert _rewind_log(log, 50) == 400.0
    kept = np.genfromtxt(log, delimiter=",", names=True)
    assert kept["step"].tolist() == [20, 40]


def test_native_view_of_simulated_objects_is_an_error(tmp_path):
    import astropy.units as u
    from spectok.datasets import ModelArrays

    wave = np.linspace(4000.0, 5000.0, 400)

    def draw(rng, redshift):
        return ModelArrays(wave, np.ones(wave.size), u.Jy, np.ones(wave.size, dtype=bool))

    stream = TrainingStream([Source("my-simulator", draw, instruments=("sdss", "native"))],
                            tiny_config(tmp_path), 32)
    with pytest.raises(ValueError, match="'my-simulator' draws simulated objects"):
        stream.batch(0)


def test_native_view_of_a_simulated_source_is_an_error():
    with pytest.raises(ValueError, match="'quasars' is simulated"):
        build_sources([SourceConfig("quasars", instruments=["sdss", "native"])])


def test_exported_checkpoint_is_the_model_train_writes(tmp_path, monkeypatch):
    save = loop._save_checkpoint

    def save_and_keep_step_2(path, objective, optimizer, scheduler, step, *rest):
        save(path, objective, optimizer, scheduler, step, *rest)
        if step == 2:
            shutil.copy(path, tmp_path / "step-2.pt")

    monkeypatch.setattr(loop, "_save_checkpoint", save_and_keep_step_2)
    final = train(tiny_config(tmp_path, steps=4), progress=False, sources=TOY_SOURCES)
    exported = load_model(export_checkpoint(tmp_path, tmp_path / "exported"))
    assert_same_parameters(parameters(exported), parameters(final), atol=0)
    assert exported.metadata == load_model(tmp_path / "toy-model.json").metadata
    # mid-run: the weights a resume would start from, and the steps done so far
    middle = load_model(export_checkpoint(tmp_path / "step-2.pt", tmp_path / "middle"))
    state = torch.load(tmp_path / "step-2.pt", weights_only=True)
    assert_same_parameters(parameters(middle), state["model"], atol=0)
    assert middle.metadata["steps"] == 2 and exported.metadata["steps"] == 4
    assert middle.metadata["training"] == exported.metadata["training"]
    low, high = middle.metadata["wavelength_range"]
    assert 4000 <= low and high <= exported.metadata["wavelength_range"][1]
    # the command line does the same from the checkpoint file
    assert main(["export", str(tmp_path / CHECKPOINT_NAME), str(tmp_path / "again")]) == 0
    assert_same_parameters(parameters(load_model(tmp_path / "again.json")), parameters(final),
                           atol=0)


def test_export_does_not_replace_a_saved_model_unless_asked(tmp_path):
    train(tiny_config(tmp_path, steps=2), progress=False, sources=TOY_SOURCES)
    final = tmp_path / "toy-model"
    written = final.with_name("toy-model.json").read_bytes()
    with pytest.raises(FileExistsError, match="toy-model.json exists.*overwrite=True"):
        export_checkpoint(tmp_path, final)
    with pytest.raises(SystemExit, match="spectok export: .*toy-model.json exists"):
        main(["export", str(tmp_path), str(final)])
    assert final.with_name("toy-model.json").read_bytes() == written
    # either file alone is a saved model too
    (tmp_path / "half.safetensors").write_bytes(b"")
    with pytest.raises(FileExistsError, match="half.safetensors exists"):
        export_checkpoint(tmp_path, tmp_path / "half")
    assert main(["export", "--overwrite", str(tmp_path), str(final)]) == 0
    assert load_model(final.with_name("toy-model.json")).metadata["steps"] == 2


def test_export_records_the_range_of_the_starting_model(tmp_path):
    train(tiny_config(tmp_path / "first", steps=2), progress=False, sources=TOY_SOURCES)
    start = tmp_path / "first" / "toy-model.json"
    train(tiny_config(tmp_path / "second", steps=2, init_weights=str(start)), progress=False,
          sources=TOY_SOURCES)
    written = load_model(tmp_path / "second" / "toy-model.json").metadata
    start.unlink()   # the checkpoint keeps the starting model's range: it is not needed
    exported = load_model(export_checkpoint(tmp_path / "second", tmp_path / "exported"))
    assert exported.metadata == written
    # a checkpoint from before that record reads it from the starting model, if it is here
    state = torch.load(tmp_path / "second" / CHECKPOINT_NAME, weights_only=True)
    initial_range = state.pop("initial_wavelength_range")
    torch.save(state, tmp_path / "older.pt")
    with pytest.warns(UserWarning, match="init_weights .* cannot be loaded"):
        older = load_model(export_checkpoint(tmp_path / "older.pt", tmp_path / "older"))
    assert "wavelength_range" not in older.metadata
    # and one from before the record of the wavelengths trained on has none
    state["initial_wavelength_range"] = initial_range
    del state["wavelength_span"]
    torch.save(state, tmp_path / "oldest.pt")
    with pytest.warns(UserWarning, match="predates the record"):
        oldest = load_model(export_checkpoint(tmp_path / "oldest.pt", tmp_path / "oldest"))
    assert "wavelength_range" not in oldest.metadata


def test_exporting_what_is_not_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt in the run directory"):
        export_checkpoint(tmp_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "out")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read .*garbage.pt as a checkpoint"):
        export_checkpoint(tmp_path / "garbage.pt", tmp_path / "out")
    torch.save({"step": 3}, tmp_path / "other.pt")   # readable, but not a training state
    with pytest.raises(ValueError, match="other.pt is not a checkpoint .* no model, config"):
        export_checkpoint(tmp_path / "other.pt", tmp_path / "out")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(ValueError, match="tensor.pt is not a checkpoint"):
        export_checkpoint(tmp_path / "tensor.pt", tmp_path / "out")
    train(tiny_config(tmp_path / "run", steps=1), progress=False, sources=TOY_SOURCES)
    state = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    config = json.loads(state["config"])
    state["config"] = json.dumps({**config, "future_option": 1})
    torch.save(state, tmp_path / "newer.pt")
    with pytest.raises(ValueError, match="cannot read: .*unknown training options "
                                         r"\['future_option'\]"):
        export_checkpoint(tmp_path / "newer.pt", tmp_path / "out")
    state["config"] = json.dumps({**config, "model": "small"})
    torch.save(state, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="weights in .*mismatch.pt do not fit"):
        export_checkpoint(tmp_path / "mismatch.pt", tmp_path / "out")
    with pytest.raises(SystemExit, match="spectok export: cannot read .*garbage.pt"):
        main(["export", str(tmp_path / "garbage.pt"), str(tmp_path / "out")])
    assert not list(tmp_path.glob("out*"))


def test_resuming_from_an_unusable_checkpoint_is_an_error_naming_it(tmp_path):
    train(tiny_config(tmp_path, steps=1), progress=False, sources=TOY_SOURCES)
    checkpoint = tmp_path / CHECKPOINT_NAME
    # another architecture: was torch's 'Error(s) in loading state_dict for SpectralTokenizer'
    with pytest.raises(ValueError, match="holds the weights of another architecture than this "
                                         "run's model .* must train the same model"):
        train(tiny_config(tmp_path, steps=2, model={"preset": "tiny", "encoder_depth": 2}),
              resume=True, progress=False, sources=TOY_SOURCES)
    # cut short (copied in part): was torch's RuntimeError 'PytorchStreamReader failed ...'
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(ValueError, match="cannot read .*checkpoint.pt as a checkpoint"):
        train(tiny_config(tmp_path, steps=2), resume=True, progress=False, sources=TOY_SOURCES)
    # not a torch file: torch's message advised weights_only=False, unsafe on unknown files
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a file that spectok.training.train wrote") as caught:
        train(tiny_config(tmp_path, steps=2), resume=True, progress=False, sources=TOY_SOURCES)
    assert "weights_only" not in str(caught.value)


def test_resume_and_overwrite_must_be_bools(tmp_path):
    # resume="no" resumed, and overwrite="no" overwrote: a string is true
    with pytest.raises(ValueError, match="resume must be True or False, got 'no'"):
        train(tiny_config(tmp_path), resume="no", progress=False, sources=TOY_SOURCES)
    with pytest.raises(ValueError, match="overwrite must be True or False, got 'no'"):
        export_checkpoint(tmp_path, tmp_path / "out", overwrite="no")


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(tiny_config(tmp_path), resume=True, progress=False, sources=TOY_SOURCES)


def _run_script(tmp_path, body):
    script = tmp_path / "run.py"
    script.write_text(SOURCE_CODE + textwrap.dedent(body))
    return script


def test_sigkill_mid_training_then_resume_matches_uninterrupted_run(tmp_path):
    steps = 40
    body = f"""
    import sys, time
    from spectok.training import TrainingConfig, train
    config = TrainingConfig(model="tiny", output_dir=sys.argv[1], steps={steps}, batch_size=4,
                            warmup_steps=2, max_query_pixels=64, log_every=1,
                            validate_every=1000, checkpoint_every=1, validation_batches=1,
                            learning_rate=1e-3, name="toy-model")
    train(config, resume=len(sys.argv) > 2, progress=False, sources=SOURCES, device="cpu")
    """
    script = _run_script(tmp_path, body)
    run_dir = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, str(script), str(run_dir)])
    checkpoint = run_dir / CHECKPOINT_NAME
    deadline = time.time() + 120
    while time.time() < deadline:
        if checkpoint.exists() and torch.load(checkpoint, weights_only=True)["step"] >= 5:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = torch.load(checkpoint, weights_only=True)["step"]
    assert 5 <= killed_at < steps, "the run should have been killed mid-training"
    subprocess.run([sys.executable, str(script), str(run_dir), "--resume"], check=True)
    straight = train(TrainingConfig(model="tiny", output_dir=str(tmp_path / "straight"),
                                    steps=steps, batch_size=4, warmup_steps=2,
                                    max_query_pixels=64, log_every=1, validate_every=1000,
                                    checkpoint_every=100, validation_batches=1,
                                    learning_rate=1e-3, name="toy-model"),
                     progress=False, sources=TOY_SOURCES, device="cpu")
    resumed = load_model(run_dir / "toy-model.json")
    assert_same_parameters(parameters(straight), parameters(resumed), atol=1e-5)
    # the log reads as one run: each step once, the wall clock carried over
    log = np.genfromtxt(run_dir / "log.csv", delimiter=",", names=True)
    assert log["step"].tolist() == list(range(1, steps + 1))
    assert np.all(np.diff(log["wall_seconds"]) >= 0)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_one_process(tmp_path):
    body = """
    import os, sys
    from spectok.training import TrainingConfig, train
    config = TrainingConfig(model="tiny", output_dir=sys.argv[1], steps=4, batch_size=4,
                            warmup_steps=2, max_query_pixels=64, log_every=1, validate_every=4,
                            checkpoint_every=100, validation_batches=1, learning_rate=1e-3,
                            name="toy-model")
    train(config, progress=False, sources=SOURCES, device="cpu")
    """
    script = _run_script(tmp_path, body)
    port = _free_port()
    processes = []
    for rank in range(2):
        env = dict(os.environ, WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        processes.append(subprocess.Popen([sys.executable, str(script), str(tmp_path / "ddp")],
                                          env=env))
    assert [p.wait(timeout=300) for p in processes] == [0, 0]
    single = train(TrainingConfig(model="tiny", output_dir=str(tmp_path / "one"), steps=4,
                                  batch_size=4, warmup_steps=2, max_query_pixels=64, log_every=1,
                                  validate_every=4, checkpoint_every=100, validation_batches=1,
                                  learning_rate=1e-3, name="toy-model"),
                   progress=False, sources=TOY_SOURCES, device="cpu")
    ddp = load_model(tmp_path / "ddp" / "toy-model.json")
    # Summation order differs between one and two processes (~1e-7 relative in the
    # gradients); Adam's normalised steps of size lr = 1e-3 turn that into ~1e-5.
    assert_same_parameters(parameters(single), parameters(ddp), atol=5e-5)
    # the checkpoint of a DDP run exports to the model its rank 0 wrote
    exported = load_model(export_checkpoint(tmp_path / "ddp", tmp_path / "ddp-exported"))
    assert_same_parameters(parameters(exported), parameters(ddp), atol=0)
    assert exported.metadata == ddp.metadata


def test_half_written_checkpoint_is_never_loaded(tmp_path):
    config = tiny_config(tmp_path, steps=3, checkpoint_every=1)
    (tmp_path / (CHECKPOINT_NAME + ".partial")).write_bytes(b"half a checkpoint")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(config, resume=True, progress=False, sources=TOY_SOURCES)
    first = train(config, progress=False, sources=TOY_SOURCES)
    (tmp_path / (CHECKPOINT_NAME + ".partial")).write_bytes(b"a crash while saving step 4")
    resumed = train(config, resume=True, progress=False, sources=TOY_SOURCES)
    assert_same_parameters(parameters(first), parameters(resumed), atol=0)


def test_gpu_settings_that_cannot_work_are_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device 'cuda': torch sees 0 CUDA GPU\(s\) here"):
        _distributed_setup("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(RuntimeError, match="LOCAL_RANK 1.*1 GPU"):
        _distributed_setup("cuda")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="all 2 processes on one GPU"):
        _distributed_setup("cuda:0")


def test_latest_checkpoint_refuses_a_file(tmp_path):
    from spectok.training import latest_checkpoint

    checkpoint = tmp_path / CHECKPOINT_NAME
    checkpoint.write_bytes(b"")
    assert latest_checkpoint(tmp_path) == checkpoint
    assert latest_checkpoint(tmp_path / "no-such-run") is None
    # the checkpoint itself used to give None, as though the run had none
    with pytest.raises(NotADirectoryError, match=f"{CHECKPOINT_NAME} is a file; "
                                                 "latest_checkpoint takes the run directory"):
        latest_checkpoint(checkpoint)


def test_from_dict_takes_a_mapping():
    with pytest.raises(ValueError, match="training configuration: expected a dict of "
                                         "TrainingConfig fields, got"):
        TrainingConfig.from_dict([("steps", 5)])
