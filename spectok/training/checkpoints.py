"""Training checkpoints: their name, finding the last, writing one, resuming from it, export."""

import contextlib
import functools
import json
import math
import pickle
import warnings
from pathlib import Path

import torch

from .._atomic import write_atomically
from .._checks import check_bool
from ..model import SpectralTokenizer, load_model, save_model
from .config import TrainingConfig

__all__ = ["latest_checkpoint", "export_checkpoint", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"


def latest_checkpoint(output_dir):
    """Path of the last complete checkpoint in a run directory, or `None`.

    `train` keeps one checkpoint, `CHECKPOINT_NAME`, in its output
    directory; each is written to a temporary name and renamed, so a file
    with the final name is always complete.

    Parameters
    ----------
    output_dir : str or `~pathlib.Path`
        The run directory (``TrainingConfig.output_dir``).

    Returns
    -------
    `~pathlib.Path` or None
        The checkpoint, or `None` where there is none yet (or no such
        directory).

    Raises
    ------
    NotADirectoryError
        ``output_dir`` is a file (such as the checkpoint itself), which
        used to give `None`.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from spectok.training import latest_checkpoint
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     run = pathlib.Path(tmp)
    ...     _ = (run / "checkpoint.pt.partial").write_bytes(b"")  # a write cut short
    ...     print(latest_checkpoint(run))
    ...     _ = (run / "checkpoint.pt").write_bytes(b"")  # stands in for a complete one
    ...     print(latest_checkpoint(run).name)
    None
    checkpoint.pt
    """
    output_dir = Path(output_dir)
    if output_dir.is_file():   # the checkpoint itself, say: a file holds no checkpoint
        raise NotADirectoryError(f"{output_dir} is a file; latest_checkpoint takes the run "
                                 f"directory that holds {CHECKPOINT_NAME}")
    path = output_dir / CHECKPOINT_NAME
    return path if path.exists() else None


def _save_checkpoint(path, objective, optimizer, scheduler, step, config, span, initial_range):
    """Write the state `train` resumes from to ``path`` (atomically)."""
    state = {
        "model": objective.model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "config": json.dumps(config.to_dict()),
        "torch_rng": torch.get_rng_state(),
        # that of the init_weights model: export_checkpoint needs it, not the model
        "initial_wavelength_range": None if initial_range is None else list(initial_range),
    }
    if span is not None:
        state["wavelength_span"] = torch.tensor(span, dtype=torch.float64)
    if objective.reference_pooling is not None:
        # the anchor's reference, so a resumed run holds to it whatever becomes of init_weights
        state["reference_pooling"] = objective.reference_pooling.state_dict()
    if objective.reference_model is not None:
        # likewise the model whose reconstructions the held sources keep
        state["reference_model"] = objective.reference_model.state_dict()
    write_atomically(path, functools.partial(torch.save, state))


@contextlib.contextmanager
def _reading(path):
    """Turn the errors of reading ``path`` with `torch.load` into ValueErrors naming it."""
    try:
        yield
    except pickle.UnpicklingError:   # torch's own message advises weights_only=False
        raise ValueError(f"cannot read {path} as a checkpoint: it is not a file that "
                         "spectok.training.train wrote") from None
    except (EOFError, RuntimeError) as error:
        raise ValueError(f"cannot read {path} as a checkpoint ({error})") from error


def _check_state(state, path):
    """Refuse what `torch.load` read from ``path`` unless `_save_checkpoint` wrote it."""
    needed = ("model", "step", "config")
    missing = [key for key in needed if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(f"{path} is not a checkpoint of spectok.training.train (it has "
                         f"no {', '.join(missing)})")
    return state


def _restore_checkpoint(path, objective, optimizer, scheduler, config, device):
    """Load what `_save_checkpoint` wrote into a run's objects; (step, wavelength span).

    The span is None for a checkpoint from before spans were recorded (with a
    warning pointing at the caller of `train`).
    """
    with _reading(path):
        state = _check_state(torch.load(path, map_location=device, weights_only=True), path)
    output_dir = Path(path).parent
    trained_before = json.loads(state["config"]).get("trainable", "all")
    if trained_before != config.trainable:
        raise ValueError(f"the checkpoint in {output_dir} trained {trained_before!r} "
                         f"parameters, this run {config.trainable!r}: a resumed run "
                         "must train the same ones")
    try:
        objective.model.load_state_dict(state["model"])
    except RuntimeError:
        raise ValueError(f"the checkpoint in {output_dir} holds the weights of another "
                         f"architecture than this run's model ({config.tokenizer_config()}): "
                         "a resumed run must train the same model") from None
    if "reference_pooling" in state:  # else, as before it was kept: init_weights' own
        objective.reference_pooling.load_state_dict(state["reference_pooling"])
    if objective.reference_model is not None:
        if "reference_model" not in state:
            raise ValueError(f"the checkpoint in {output_dir} was written by a run that "
                             "held no source to init_weights, this run holds some: a "
                             "resumed run must train the same sources")
        objective.reference_model.load_state_dict(state["reference_model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"].cpu())   # map_location moved it
    if "wavelength_span" not in state:
        warnings.warn(f"{path} predates the record of the wavelengths trained on; the saved "
                      "model will have no wavelength_range", stacklevel=3)
        return int(state["step"]), None
    return int(state["step"]), tuple(state["wavelength_span"].tolist())


def _trained_wavelength_range(span, initial_range):
    """The observed wavelengths (Å) a model has been trained on, [min, max], or None.

    ``initial_range`` is that of the model the run started from
    (``init_weights``): ``()`` for none, None when that model has none.
    None when a part of the training is unrecorded (a start from a model
    without a range, or a resume from a checkpoint without one), since a
    range too narrow would make `spectok.encode` warn about wavelengths the
    model did see. Rounded outwards to 0.1 Å.
    """
    if span is None or initial_range is None:
        return None
    low, high = math.exp(span[0]), math.exp(span[1])
    if initial_range:
        low, high = min(low, initial_range[0]), max(high, initial_range[1])
    return [math.floor(10 * low + 1e-6) / 10, math.ceil(10 * high - 1e-6) / 10]


def _model_metadata(config, steps, span, initial_range):
    """What a saved model records of its training (see `_trained_wavelength_range`)."""
    metadata = {"training": config.to_dict(), "steps": steps}
    wavelength_range = _trained_wavelength_range(span, initial_range)
    if wavelength_range is not None:
        metadata["wavelength_range"] = wavelength_range
    return metadata


def export_checkpoint(checkpoint, path, *, overwrite=False):
    """Save the model of a training checkpoint, to evaluate a run before it ends.

    The model is written as `train` writes the final one (with
    `~spectok.model.save_model`), with the steps done so far as ``steps``
    in its metadata, so `spectok.load_model`, ``spectok bench --model`` and
    ``spectok validate`` take it like any other.

    Parameters
    ----------
    checkpoint : str or `~pathlib.Path`
        A checkpoint written by `train`, or the run's output directory (its
        last checkpoint).
    path : str or `~pathlib.Path`
        Destination without suffix, e.g. ``"runs/my-run/step-2000"``.
    overwrite : bool
        Replace a model already saved at ``path``. Off by default, so that
        exporting to the name a run gives its final model (``output_dir /
        name``) cannot silently replace a finished model with an earlier
        step's.

    Returns
    -------
    `~pathlib.Path`
        The path of the model's JSON description.

    Raises
    ------
    FileNotFoundError
        No checkpoint at ``checkpoint``.
    FileExistsError
        A model (either of its two files) is already saved at ``path`` and
        ``overwrite`` is false.
    ValueError
        ``overwrite`` is not a bool; the file cannot be read or is not a
        checkpoint of `train`; its
        training configuration is one this version of spectok cannot read;
        or its weights do not fit the architecture that configuration names.

    Warns
    -----
    UserWarning
        The wavelength range trained on cannot be recorded: the checkpoint
        predates its record, or (for checkpoints written before spectok kept
        the starting model's range in them) the model the run started from,
        ``init_weights``, cannot be loaded here.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spectok.model import load_model
    >>> from spectok.training import TrainingConfig, export_checkpoint, train
    >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +REMOTE_DATA
    ...     run = pathlib.Path(tmp)
    ...     config = TrainingConfig(model="tiny", output_dir=str(run), steps=2, batch_size=2,
    ...                             warmup_steps=1, max_query_pixels=32, validate_every=2,
    ...                             validation_batches=1, checkpoint_every=1)
    ...     _ = train(config, progress=False, device="cpu")
    ...     load_model(export_checkpoint(run, run / "step-2")).metadata["steps"]
    2
    """
    check_bool(overwrite, "overwrite")
    checkpoint = Path(checkpoint)
    if not overwrite:
        path = Path(path)
        existing = [path.with_name(path.name + suffix) for suffix in (".json", ".safetensors")
                    if path.with_name(path.name + suffix).exists()]
        if existing:
            raise FileExistsError(f"{existing[0]} exists; choose another destination, or pass "
                                  "overwrite=True (spectok export --overwrite) to replace it")
    if checkpoint.is_dir():
        found = latest_checkpoint(checkpoint)
        if found is None:
            raise FileNotFoundError(f"no {CHECKPOINT_NAME} in the run directory {checkpoint}")
        checkpoint = found
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    with _reading(checkpoint):
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    _check_state(state, checkpoint)
    try:
        config = TrainingConfig.from_dict(json.loads(state["config"]))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{checkpoint} stores a training configuration this version of spectok "
                         f"cannot read: {error}") from error
    model = SpectralTokenizer(config.tokenizer_config())
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ValueError(f"the weights in {checkpoint} do not fit the architecture its "
                         f"configuration names: {error}") from error
    span = None
    if "wavelength_span" in state:
        span = tuple(state["wavelength_span"].tolist())
    else:
        warnings.warn(f"{checkpoint} predates the record of the wavelengths trained on; the "
                      "exported model will have no wavelength_range", stacklevel=2)
    if "initial_wavelength_range" in state:
        initial_range = state["initial_wavelength_range"]
    elif not config.init_weights:
        initial_range = ()
    else:   # an older checkpoint: the range is that of the starting model, if it is here
        try:
            initial_range = load_model(config.init_weights).metadata.get("wavelength_range")
        except (OSError, ValueError) as error:
            initial_range = None
            warnings.warn(f"the run started from init_weights {config.init_weights!r}, which "
                          f"cannot be loaded here ({error}), so the exported model records no "
                          "wavelength_range", stacklevel=2)
    return save_model(model, path,
                      metadata=_model_metadata(config, int(state["step"]), span, initial_range))
