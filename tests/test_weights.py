"""Weights on disk: safetensors + JSON with sha256, never a pickle."""

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import spectok
from spectok.model import (CONFIGS, SpectralTokenizer, WeightsError, available_models,
                           load_model, save_model)


@pytest.fixture
def saved(tiny_model, tmp_path):
    """A tiny model saved under ``tmp_path/mine``; returns the JSON path."""
    return save_model(tiny_model, tmp_path / "mine", metadata={"steps": 0, "data": ["synthetic"]})


def test_save_writes_two_files_with_hash(saved, tiny_model):
    tensors = saved.with_suffix(".safetensors")
    assert saved.name == "mine.json" and tensors.exists()
    assert sorted(p.name for p in saved.parent.iterdir()) == ["mine.json", "mine.safetensors"]
    description = json.loads(saved.read_text())
    assert description["sha256"] == hashlib.sha256(tensors.read_bytes()).hexdigest()
    assert description["config"] == tiny_model.config.to_dict()
    assert description["name"] == "mine"
    assert description["metadata"] == {"steps": 0, "data": ["synthetic"]}


def test_round_trip_is_bit_exact(saved, tiny_model, pair):
    loaded = load_model(saved)
    assert loaded.config == tiny_model.config
    assert not loaded.training
    assert loaded.name == "mine" and loaded.metadata["steps"] == 0
    original, again = tiny_model.state_dict(), loaded.state_dict()
    assert original.keys() == again.keys()
    for key in original:
        assert torch.equal(original[key], again[key]), key
    a = spectok.encode(pair, model=tiny_model)
    b = spectok.encode(pair, model=loaded)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.embedding, b.embedding)


def test_load_by_path_without_suffix(saved):
    assert load_model(saved.with_suffix("")).name == "mine"
    assert load_model(str(saved)).name == "mine"
    assert load_model(saved.with_suffix(".safetensors")).name == "mine"


def test_load_on_the_device_encode_would_use(saved):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(load_model(saved, device="auto").parameters()).device.type == expected
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda'"):
        load_model(saved, device="gpu")


def test_tampered_weights_refused(saved):
    tensors = saved.with_suffix(".safetensors")
    data = bytearray(tensors.read_bytes())
    data[len(data) // 2] ^= 0x01
    tensors.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match its description: sha256"):
        load_model(saved)


def test_missing_weights_file(saved):
    saved.with_suffix(".safetensors").unlink()
    with pytest.raises(WeightsError, match="missing weights file .*mine.safetensors"):
        load_model(saved)


def test_unknown_model_name_lists_available():
    with pytest.raises(WeightsError, match="unknown model 'no-such-model'") as info:
        load_model("no-such-model")
    for name in available_models():
        assert name in str(info.value)
    assert "available:" in str(info.value)


@pytest.mark.parametrize("bad", [None, 3, ["spectok-small"]])
def test_a_model_is_named_by_a_string_or_a_path(bad):
    with pytest.raises(TypeError, match="shipped name or the path of its .json description"):
        load_model(bad)


def test_unknown_config_keys_refused(saved):
    description = json.loads(saved.read_text())
    description["config"]["n_layers"] = 12
    saved.write_text(json.dumps(description))
    with pytest.raises(WeightsError, match=r"mine.json: invalid tokenizer configuration .*"
                       r"unknown tokenizer configuration keys: \['n_layers'\]"):
        load_model(saved)


def test_bad_description_refused(saved):
    description = json.loads(saved.read_text())
    saved.write_text(json.dumps({**description, "format_version": 99}))
    with pytest.raises(WeightsError, match="unsupported format_version 99"):
        load_model(saved)
    saved.write_text("{not json")
    with pytest.raises(WeightsError, match="cannot read model description"):
        load_model(saved)
    # each was loaded: a model named 5, and metadata that failed at its first .get()
    saved.write_text(json.dumps({**description, "name": 5}))
    with pytest.raises(WeightsError, match="mine.json: the model's name must be a non-empty "
                                           "string, got 5"):
        load_model(saved)
    saved.write_text(json.dumps({**description, "metadata": [1, 2]}))
    with pytest.raises(WeightsError, match="metadata must be a JSON object, got a JSON list"):
        load_model(saved)


def test_mismatched_config_refused(saved):
    """Tensors of one architecture under another configuration do not load silently."""
    description = json.loads(saved.read_text())
    description["config"]["width"] = 64
    saved.write_text(json.dumps(description))
    # a WeightsError naming the files (before: torch's bare RuntimeError)
    with pytest.raises(WeightsError, match=r"(?s)mine.safetensors does not hold the tensors of the "
                                           r"model that mine.json describes .*size mismatch"):
        load_model(saved)


def _with_matching_hash(saved, tensors):
    """Replace the tensors of ``saved`` by ``tensors`` (bytes) and record their sha256."""
    saved.with_suffix(".safetensors").write_bytes(tensors)
    description = json.loads(saved.read_text())
    description["sha256"] = hashlib.sha256(tensors).hexdigest()
    saved.write_text(json.dumps(description))


def test_tensors_that_do_not_fit_the_description_are_a_weights_error(saved, tmp_path):
    # before: another model's tensors raised torch's RuntimeError "Missing key(s)". (A file
    # that is not safetensors at all stays safetensors' documented SafetensorError.)
    from safetensors.torch import save as save_tensors
    _with_matching_hash(saved, save_tensors({"w": torch.zeros(3)}))
    with pytest.raises(WeightsError, match="(?s)does not hold the tensors .*Missing key"):
        load_model(saved)


def test_a_configuration_the_model_cannot_be_built_from_is_a_weights_error(saved):
    # before: torch's RuntimeError "Trying to create tensor with negative dimension -1"
    # and TypeError "empty(): argument 'size' failed to unpack"
    description = json.loads(saved.read_text())
    for key, value in (("width", -1), ("patch_size", "32")):
        saved.write_text(json.dumps({**description,
                                     "config": {**description["config"], key: value}}))
        with pytest.raises(WeightsError, match=f"mine.json: invalid tokenizer configuration .*"
                                               f"{key} must be a positive integer"):
            load_model(saved)


def test_a_description_that_is_not_a_json_object_or_no_name_is_a_weights_error(saved):
    # before: AttributeError "'list' object has no attribute 'get'", and for load_model("")
    # ValueError "PosixPath('.') has an empty name"
    saved.write_text("[1, 2]")
    with pytest.raises(WeightsError, match="mine.json is not a model description: it holds a "
                                           "JSON list, not an object"):
        load_model(saved)
    for empty in ("", Path(""), "."):
        with pytest.raises(WeightsError, match="no model named: give a shipped name"):
            load_model(empty)


def test_metadata_json_cannot_hold_is_refused_before_anything_is_written(tiny_model, tmp_path):
    # before: json's TypeError after the tensors were written, leaving mine.safetensors
    # without its description
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        save_model(tiny_model, tmp_path / "mine", metadata={"when": object()})
    # before: AttributeError "'str' object has no attribute 'state_dict'"
    with pytest.raises(TypeError, match="saves a spectok.model.SpectralTokenizer, not a str"):
        save_model("mine", tmp_path / "mine")
    assert list(tmp_path.iterdir()) == []


def test_loading_never_unpickles(saved, monkeypatch, pair, tiny_model):
    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling is not allowed")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(torch.serialization, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    loaded = load_model(saved)
    np.testing.assert_array_equal(spectok.encode(pair, model=loaded).embedding,
                                  spectok.encode(pair, model=tiny_model).embedding)


def test_save_overwrites_atomically(saved, tmp_path):
    torch.manual_seed(1)
    other = SpectralTokenizer(CONFIGS["tiny"])
    save_model(other, tmp_path / "mine")
    assert not list(tmp_path.glob("*.partial"))
    loaded = load_model(saved)
    assert torch.equal(loaded.to_token.weight, other.to_token.weight)


def test_shipped_model_listed_and_loads():
    """Smoke test of the shipped weights; their numbers will change, so none are checked."""
    assert "spectok-small" in available_models()
    model = load_model("spectok-small")
    assert isinstance(model, SpectralTokenizer) and not model.training
    assert model.name == "spectok-small"


def test_shipped_model_was_trained_by_its_committed_configs():
    """The weights' recorded training run is ``spectok-small.toml``, and its ``init_weights``
    chain leads through the committed stage configs back to random weights."""
    import dataclasses
    from importlib import resources

    from spectok.training import load_config

    folder = resources.files("spectok") / "data"
    configs = {path.name: load_config(path) for path in folder.iterdir()
               if path.name.startswith("spectok-small") and path.name.endswith(".toml")}
    shipped = configs["spectok-small.toml"]
    recorded = load_model("spectok-small").metadata["training"]
    expected = json.loads(json.dumps(dataclasses.asdict(shipped)))
    defaults = {f.name: f.default for f in dataclasses.fields(shipped)}
    for key in expected.keys() - recorded.keys():  # options added after the model was trained
        assert expected[key] == defaults[key], key
    assert {k: v for k, v in recorded.items() if k != "output_dir"} == \
        {k: v for k, v in expected.items() if k in recorded and k != "output_dir"}
    by_output = {f"{c.output_dir}/{c.name}.json": name for name, c in configs.items()}
    chain, config = ["spectok-small.toml"], shipped
    while config.init_weights:  # stage 1 starts from random weights
        chain.append(by_output[config.init_weights])
        config = configs[chain[-1]]
    assert chain == ["spectok-small.toml", "spectok-small-stage19.toml",
                     "spectok-small-stage13.toml",
                     "spectok-small-stage8.toml", "spectok-small-stage7.toml",
                     "spectok-small-stage5.toml", "spectok-small-stage4.toml",
                     "spectok-small-stage3.toml", "spectok-small-stage2.toml",
                     "spectok-small-stage1.toml"]


def test_a_model_that_cannot_be_built_is_a_weights_error(saved, monkeypatch):
    # a valid configuration too large to allocate: torch's RuntimeError named no file
    import spectok.model.weights as weights

    def out_of_memory(config):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(weights, "SpectralTokenizer", out_of_memory)
    with pytest.raises(WeightsError, match="mine.json: invalid tokenizer configuration, the "
                                           "model cannot be built"):
        load_model(saved)
