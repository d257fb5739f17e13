"""Weights on disk: safetensors tensors plus a JSON description with a sha256.

A model called ``NAME`` is two files side by side: ``NAME.safetensors`` (the
tensors, which cannot carry code) and ``NAME.json`` (the tokenizer
configuration and the sha256 of the tensor file). Loading checks the hash
before reading a single tensor. Nothing is ever unpickled.
"""

import functools
import hashlib
import json
import os
from importlib import resources
from pathlib import Path

from safetensors.torch import load_file, save_file

from .._atomic import write_atomically
from .._device import resolve_device
from .tokenizer import SpectralTokenizer, TokenizerConfig

__all__ = ["save_model", "load_model", "available_models", "WeightsError"]

_FORMAT_VERSION = 1


class WeightsError(OSError):
    """A model could not be found, or its files do not match their description."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shipped_directory():
    return Path(resources.files("spectok") / "data")


def available_models():
    """Names of the models shipped with spectok.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from spectok.model import available_models
    >>> "spectok-small" in available_models()
    True
    """
    return sorted(p.stem for p in _shipped_directory().glob("*.json")
                  if p.with_suffix(".safetensors").exists())


def save_model(model, path, metadata=None):
    """Write a model as ``PATH.safetensors`` plus ``PATH.json``.

    Both files are written to temporary names and renamed, so a crash never
    leaves a half-written model under the final name.

    Parameters
    ----------
    model : `~spectok.model.SpectralTokenizer`
        The model to save.
    path : str or `~pathlib.Path`
        Destination without suffix, e.g. ``"runs/my-model"``.
    metadata : dict, optional
        JSON-serialisable facts to keep in the description (training data, steps…).

    Returns
    -------
    `~pathlib.Path`
        The path of the JSON description.

    Raises
    ------
    TypeError
        ``model`` is not a `~spectok.model.SpectralTokenizer`, or
        ``metadata`` holds what JSON cannot (checked before anything is
        written).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spectok.model import CONFIGS, SpectralTokenizer, save_model, load_model
    >>> model = SpectralTokenizer(CONFIGS["tiny"])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     description = save_model(model, pathlib.Path(tmp) / "mine")
    ...     again = load_model(description)
    >>> again.config == model.config
    True
    """
    if not isinstance(model, SpectralTokenizer):
        raise TypeError(f"save_model saves a spectok.model.SpectralTokenizer, not a "
                        f"{type(model).__name__}")
    path = Path(path)
    try:   # before any file is written: no tensors left without their description
        metadata = json.loads(json.dumps(metadata or {}))
    except (TypeError, ValueError) as error:
        raise TypeError(f"metadata must be JSON-serialisable facts (numbers, strings, lists, "
                        f"dicts): {error}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors_path = path.with_name(path.name + ".safetensors")
    description_path = path.with_name(path.name + ".json")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomically(tensors_path, functools.partial(save_file, state))
    description = {
        "format_version": _FORMAT_VERSION,
        "name": path.name,
        "config": model.config.to_dict(),
        "sha256": _sha256(tensors_path),
        "metadata": metadata,
    }
    write_atomically(description_path,
                     lambda partial: partial.write_text(json.dumps(description, indent=2) + "\n"))
    return description_path


def _resolve(name_or_path):
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"a model is given by its shipped name or the path of its .json "
                        f"description, not by {type(name_or_path).__name__} {name_or_path!r}")
    if not Path(name_or_path).name:   # "", Path("") (which is "."), "/"
        raise WeightsError(f"no model named: give a shipped name "
                           f"({', '.join(available_models()) or 'none'}) or the path of a "
                           ".json description")
    candidate = Path(name_or_path)
    if candidate.suffix == ".json":
        return candidate
    if candidate.suffix == ".safetensors" and candidate.with_suffix(".json").exists():
        return candidate.with_suffix(".json")   # the tensors' own description
    if candidate.with_name(candidate.name + ".json").exists():
        return candidate.with_name(candidate.name + ".json")
    shipped = _shipped_directory() / f"{name_or_path}.json"
    if shipped.exists():
        return shipped
    raise WeightsError(f"unknown model {str(name_or_path)!r}: not a shipped model "
                       f"(available: {', '.join(available_models()) or 'none'}) "
                       "and no such .json description on disk")


def load_model(name_or_path="spectok-small", device="cpu"):
    """Load a model by shipped name or by the path of its JSON description.

    Parameters
    ----------
    name_or_path : str or `~pathlib.Path`
        A name from `~spectok.model.available_models`, or a path to ``NAME.json`` (or ``NAME``,
        or ``NAME.safetensors`` beside it) written by `~spectok.model.save_model`.
    device : str, `torch.device` or None
        Where to put the model: ``"cpu"``, ``"cuda"``, ``"auto"`` (a GPU when
        there is one), ...; `None` means ``spectok.conf.device``.

    Returns
    -------
    `~spectok.model.SpectralTokenizer`
        The model, in evaluation mode.

    Raises
    ------
    TypeError
        ``name_or_path`` is neither a string nor a path.
    ValueError
        ``device`` is not a device torch knows.
    WeightsError
        Unknown or empty name, missing tensor file, a description that is
        not a JSON object (or whose model name is not a string, or whose
        metadata is not an object), a tensor file whose sha256 does not match its
        description (tampered or corrupted), an invalid configuration in
        the description, or tensors that do not fit that configuration.

    Examples
    --------
    >>> from spectok.model import load_model
    >>> model = load_model("spectok-small")
    >>> model.config.patch_size
    32
    """
    device = resolve_device(device)
    description_path = _resolve(name_or_path)
    try:
        description = json.loads(description_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise WeightsError(f"cannot read model description {description_path}: {error}") from None
    if not isinstance(description, dict):
        raise WeightsError(f"{description_path} is not a model description: it holds a JSON "
                           f"{type(description).__name__}, not an object")
    if description.get("format_version") != _FORMAT_VERSION:
        raise WeightsError(f"{description_path}: unsupported format_version "
                           f"{description.get('format_version')!r} (expected {_FORMAT_VERSION})")
    name = description.get("name", description_path.stem)
    if not isinstance(name, str) or not name:
        raise WeightsError(f"{description_path}: the model's name must be a non-empty string, "
                           f"got {name!r}")
    metadata = description.get("metadata", {})
    if not isinstance(metadata, dict):
        raise WeightsError(f"{description_path}: metadata must be a JSON object, got a JSON "
                           f"{type(metadata).__name__}")
    tensors_path = description_path.with_suffix(".safetensors")
    if not tensors_path.exists():
        raise WeightsError(f"missing weights file {tensors_path} for {description_path.name}")
    actual = _sha256(tensors_path)
    if actual != description.get("sha256"):
        raise WeightsError(f"{tensors_path} does not match its description: sha256 {actual} "
                           f"!= {description.get('sha256')}; the file is corrupted or was modified")
    try:
        config = TokenizerConfig.from_dict(description["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(f"{description_path}: invalid tokenizer configuration "
                           f"({type(error).__name__}: {error})") from None
    try:
        model = SpectralTokenizer(config)
    except (RuntimeError, TypeError, ValueError) as error:
        raise WeightsError(f"{description_path}: invalid tokenizer configuration, the model "
                           f"cannot be built ({type(error).__name__}: {error})") from None
    tensors = load_file(tensors_path)   # not a safetensors file: SafetensorError (documented)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise WeightsError(f"{tensors_path} does not hold the tensors of the model that "
                           f"{description_path.name} describes ({type(error).__name__}: "
                           f"{str(error)[:300]})") from None
    model.name = name
    model.metadata = metadata
    return model.to(device).eval()
