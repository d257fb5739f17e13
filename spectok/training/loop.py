"""The training loop: one process, or many under ``torchrun`` (DDP)."""

import copy
import csv
import dataclasses
import functools
import json
import math
import os
import pickle
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .._preflight import check_free_space, check_writable_directory
from .._atomic import write_atomically
from .._device import autocast, resolve_device
from ..model import SpectralTokenizer, load_model, save_model
from .config import TrainingConfig, _held_sources
from .data import TrainingStream, build_sources
from .objectives import (RECONSTRUCTION_LOSSES, anchor_loss, consistency_loss, gaussian_nll,
                         reduced_chi2)

__all__ = ["train", "validation_loss", "TrainingObjective", "latest_checkpoint",
           "export_checkpoint", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"
#: The loss terms that `TrainingObjective` reports, in the order the log lists them.
_TERMS = ("reconstruction", "consistency", "anchor")
_LOG_FIELDS = ["step", "learning_rate", "loss", *_TERMS, "grad_norm", "spectra_per_second",
               "wall_seconds", "val_loss", *(f"val_{term}" for term in _TERMS)]


class TrainingObjective(nn.Module):
    """The full pretraining loss of a tokenizer on a pair of views.

    Wrapping the loss in a module lets `~torch.nn.parallel.DistributedDataParallel`
    see one forward call per step for both views.

    Parameters
    ----------
    model : `~spectok.model.SpectralTokenizer`
    config : `~spectok.training.TrainingConfig`
    reference_pooling : `torch.nn.Module`, optional
        With ``config.anchor_weight``: the pooling of the ``init_weights``
        model, which the anchor holds the sharper views to (the states it
        pools are the frozen encoder's, as those of ``init_weights`` are).
        Default: a frozen copy of ``model.pooling`` as it is now.
    reference_model : `~spectok.model.SpectralTokenizer`, optional
        With sources whose ``reconstruction_target`` is ``"init_weights"``:
        the ``init_weights`` model, whose reconstructions of their views the
        decoder is held to. Default: a frozen copy of ``model`` as it is now.
        Where ``config.trainable`` freezes the encoder and the two models'
        encoders are equal, only the reference's decoder runs on a held
        batch: it decodes the tokens the model under training made.
    """

    def __init__(self, model, config, reference_pooling=None, reference_model=None):
        super().__init__()
        self.model = model
        self.config = config
        self.reference_pooling = None
        if config.anchor_weight:
            reference = model.pooling if reference_pooling is None else reference_pooling
            self.reference_pooling = copy.deepcopy(reference).requires_grad_(False)
        self.reference_model = None
        if _held_sources(config.sources):
            reference = model if reference_model is None else reference_model
            self.reference_model = copy.deepcopy(reference).requires_grad_(False)
        # a frozen encoder that equals the reference's makes the tokens the reference would
        self._reference_decodes_tokens = (
            self.reference_model is not None and config.trainable != "all"
            and all(torch.equal(a, b) for a, b in zip(model.encoder_parameters(),
                                                     self.reference_model.encoder_parameters())))

    def _view(self, view):
        log_wave, flux, sigma, valid, observed, spacing = view["inputs"]
        if not (self.config.reconstruction_weight or self.config.readout_weight):
            # nothing to reconstruct: the consistency term needs the embedding alone
            encoded = self.model.encode(log_wave, flux, sigma, valid, observed, spacing,
                                        hide=view["hide"])
            return flux.new_zeros(()), encoded
        query = view["query"]

        def pick(t):
            return t.gather(1, query)

        arguments = (log_wave, flux, sigma, valid, observed, spacing)
        queries = dict(hide=view["hide"], query_log_wavelength=pick(log_wave),
                       query_spacing=pick(spacing), return_readout=True)
        encoded, mean, log_scatter, readout = self.model(*arguments, **queries)
        query_flux, query_sigma = pick(flux), pick(sigma)
        query_valid = pick(valid) & view["query_valid"]
        floor = self.config.noise_floor
        if view.get("reconstruct_init_weights", False):
            if self.reference_model is None:
                raise ValueError("a batch asks for the reconstruction of init_weights, but the "
                                 "configuration names no source with reconstruction_target = "
                                 "'init_weights', so the objective keeps no such model")
            with torch.no_grad():
                held_flux, held_readout = self._reference_reconstruction(encoded, arguments,
                                                                         queries)
            # the flux and the readout are held to the reference's; the scatter still learns
            # from the data
            chi2_weight = self.config.hold_weight
            readout_target = held_readout.float()
            nll = (chi2_weight * reduced_chi2(mean, held_flux.float(), query_sigma, query_valid,
                                              floor).mean()
                   + gaussian_nll(mean.detach(), log_scatter, query_flux, query_sigma,
                                  query_valid, floor))
        else:
            chi2_weight, readout_target = 1.0, query_flux
            reconstruction_loss = RECONSTRUCTION_LOSSES[self.config.reconstruction_loss]
            nll = reconstruction_loss(mean, log_scatter, query_flux, query_sigma, query_valid,
                                      floor)
        if self.config.readout_weight:
            nll = nll + chi2_weight * self.config.readout_weight * reduced_chi2(
                readout, readout_target, query_sigma, query_valid, floor).mean()
        return nll, encoded

    def _reference_reconstruction(self, encoded, arguments, queries):
        """The reference model's flux and readout at the queried pixels of a held batch."""
        if self._reference_decodes_tokens:
            held_flux, _, held_readout = self.reference_model.decode(
                encoded["tokens"], encoded["centre"], encoded["log_spacing"], encoded["active"],
                queries["query_log_wavelength"], queries["query_spacing"], encoded["n_pixels"],
                return_readout=True)
            return held_flux, held_readout
        _, held_flux, _, held_readout = self.reference_model(*arguments, **queries)
        return held_flux, held_readout

    def _anchor(self, view_a, encoded_a, view_b, encoded_b):
        with torch.no_grad():
            reference_a, reference_b = (self.reference_pooling(e["states"], e["active"])
                                        for e in (encoded_a, encoded_b))
        n_valid_a, n_valid_b = (valid.sum(-1) for _, _, _, valid, _, _ in
                                (view_a["inputs"], view_b["inputs"]))
        return anchor_loss(encoded_a["embedding"], encoded_b["embedding"],
                           reference_a, reference_b, n_valid_a, n_valid_b)

    def forward(self, view_a, view_b):
        """The total loss and the terms it weighs.

        Parameters
        ----------
        view_a, view_b : dict
            The two views of each object of a batch, as `TrainingStream`
            makes them (on the model's device).

        Returns
        -------
        loss : `torch.Tensor`
            ``reconstruction_weight`` × reconstruction + ``consistency_weight``
            × consistency (+ ``anchor_weight`` × anchor): a scalar, with gradient.
        terms : dict of str to `torch.Tensor`
            Detached: ``reconstruction`` (the loss per pixel of the decoded
            flux, plus ``readout_weight`` × the readout's own χ²; 0 when
            neither is weighted, as nothing is then decoded; for a batch
            held to ``init_weights``, ``hold_weight`` × the χ² of flux and
            readout against that model's plus the scatter's likelihood),
            ``consistency``, and ``anchor`` when ``anchor_weight`` is not 0.
        """
        nll_a, encoded_a = self._view(view_a)
        nll_b, encoded_b = self._view(view_b)
        reconstruction = 0.5 * (nll_a + nll_b)
        consistency = consistency_loss(encoded_a["embedding"], encoded_b["embedding"],
                                       self.config.temperature)
        loss = (self.config.reconstruction_weight * reconstruction
                + self.config.consistency_weight * consistency)
        terms = {"reconstruction": reconstruction.detach(), "consistency": consistency.detach()}
        if self.config.anchor_weight:
            anchor = self._anchor(view_a, encoded_a, view_b, encoded_b)
            loss = loss + self.config.anchor_weight * anchor
            terms["anchor"] = anchor.detach()
        return loss, terms


def _learning_rate_factor(config):
    def factor(step):
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return config.min_learning_ratio + (1 - config.min_learning_ratio) * cosine
    return factor


def _distributed_setup(device=None):
    """(rank, world_size, device), initialising torch.distributed under torchrun.

    ``device`` as for `train`. A GPU given without an index means the GPU of
    the process's ``LOCAL_RANK``; processes talk over NCCL on GPUs and over
    gloo on the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {str(device)!r} asked for, but PyTorch sees no GPU "
                               f"(torch {torch.__version__}); train with device='cpu'")
        if device.index is not None and world_size > 1:
            raise RuntimeError(f"device {str(device)!r} would put all {world_size} processes "
                               "on one GPU; give 'cuda' and each process takes the GPU of its "
                               "LOCAL_RANK")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"this process (LOCAL_RANK {local_rank}) needs GPU {device.index}, but "
                f"{torch.cuda.device_count()} GPU(s) are visible: start at most that many "
                "processes per node (torchrun --nproc-per-node), or train on the CPU "
                "(device='cpu', `spectok train --device cpu`)")
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, world_size, device


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
    path = Path(output_dir) / CHECKPOINT_NAME
    return path if path.exists() else None


def _save_checkpoint(path, objective, optimizer, scheduler, step, config, span, initial_range):
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


def _rewind_log(log_path, step):
    """Drop the log rows after ``step`` (logged after the last checkpoint, and about to be
    redone) and return the wall-clock seconds logged up to it, so a resumed run's log
    reads as one run. The file is replaced atomically."""
    with open(log_path, newline="") as f:
        # a row cut short by a kill lacks fields (None): it goes too
        rows = [row for row in csv.DictReader(f)
                if None not in row.values() and int(row["step"]) <= step]

    def write(partial):
        with open(partial, "w", newline="") as f:
            writer = csv.DictWriter(f, _LOG_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(log_path, write)
    return float(rows[-1]["wall_seconds"]) if rows else 0.0


def _to_device(view, device):
    return {key: tuple(t.to(device) for t in value) if isinstance(value, (tuple, list))
            else value.to(device) if isinstance(value, torch.Tensor) else value
            for key, value in view.items()}


def _check_held_sources(sources, objective):
    """Refuse, before any step, sources held to init_weights that the configuration does not
    name as held (so the objective keeps no reference model to hold them to)."""
    held = _held_sources(sources)
    if held and objective.reference_model is None:
        raise ValueError(f"sources {held} reconstruct what init_weights reconstructs, but the "
                         "configuration's sources do not say so; give them "
                         "reconstruction_target = 'init_weights' there too")


def _mean_over_ranks(values, device):
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(tensor)
        tensor /= dist.get_world_size()
    return tensor.tolist()


def _validate(objective, batches, device, precision):
    """Mean of the loss and of each of its terms over the validation batches (and ranks)."""
    totals = {}
    objective.eval()
    with torch.no_grad(), precision():
        for view_a, view_b in batches:
            loss, terms = objective(_to_device(view_a, device), _to_device(view_b, device))
            for name, value in {"loss": loss, **terms}.items():
                totals[name] = totals.get(name, 0.0) + float(value) / len(batches)
    objective.train()
    return dict(zip(totals, _mean_over_ranks(list(totals.values()), device)))


def _validation_batches(sources, config, patch_size, rank=0, world_size=1):
    """The fixed validation batches of a configuration (this rank's share of each)."""
    return list(TrainingStream(sources, config, patch_size, rank=rank, world_size=world_size,
                               start_step=0, stop_step=config.validation_batches,
                               validation=True))


def validation_loss(model, config, *, sources=None):
    """The pretraining loss of a model on a configuration's validation batches.

    These are the fixed batches `train` validates on (new draws and views of
    the training pool, from a stream of their own): they depend only on the
    configuration's sources, seed, batch settings (``batch_size``,
    ``similar_batch_fraction``, ``max_view_pixels``, …) and
    ``validation_batches`` (and the model's patch size), so any saved
    models -- the stages of one model, or runs of different configurations --
    can be compared on the same spectra. The loss is computed in float32 on
    the model's device (`train` validates under bfloat16 autocast on a GPU,
    so its logged values differ there in the last digits; for sources held
    to ``init_weights`` by more, as bfloat16 rounds the reconstructions to
    about 0.4 %). With an ``anchor_weight`` or sources held to
    ``init_weights``, the loss measures distances from the ``init_weights``
    model, which is loaded.

    Parameters
    ----------
    model : `~spectok.model.SpectralTokenizer`, str or `~pathlib.Path`
        A model, or a shipped model's name or a saved model's ``.json`` path.
    config : `~spectok.training.TrainingConfig`
        The configuration whose validation batches (and loss weights) to use.
    sources : list of `~spectok.training.data.Source`, optional
        Pre-built sources instead of ``config.sources``; those held to
        ``init_weights`` must be so in ``config.sources`` too.

    Returns
    -------
    dict
        ``loss`` (the weighted total) and its terms: ``reconstruction`` (as
        `TrainingObjective` reports it), ``consistency``, and ``anchor`` when
        the configuration's ``anchor_weight`` is not 0.

    Raises
    ------
    ValueError
        ``sources`` holds a source to ``init_weights`` that ``config.sources``
        does not.

    Examples
    --------
    >>> from spectok.training import TrainingConfig, SourceConfig, validation_loss
    >>> config = TrainingConfig(sources=(SourceConfig("stellar_templates"),),
    ...                         validation_batches=1, batch_size=2)
    >>> losses = validation_loss("spectok-small", config)  # doctest: +REMOTE_DATA
    >>> sorted(losses)  # doctest: +REMOTE_DATA
    ['consistency', 'loss', 'reconstruction']
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    sources = build_sources(config.sources) if sources is None else sources
    batches = _validation_batches(sources, config, model.config.patch_size)
    device = next(model.parameters()).device
    was_training = model.training
    # the anchor and the held sources measure distances from init_weights' model
    reference_model = reference_pooling = None
    if config.anchor_weight or _held_sources(config.sources):
        reference_model = load_model(config.init_weights, device=device)
        reference_pooling = reference_model.pooling
    objective = TrainingObjective(model, config, reference_pooling, reference_model)
    _check_held_sources(sources, objective)
    losses = _validate(objective, batches, device, nullcontext)
    model.train(was_training)
    return losses


def _load_initial_weights(model, name_or_path):
    """Copy the weights of a saved model into ``model``, whose architecture must match.

    ``model`` may add the pixel basis to a saved model without one; its
    network starts at zero, so ``model`` first predicts what the saved one
    does. Returns the saved model's metadata.
    """
    initial = load_model(name_or_path)
    adds_basis = (model.config.pixel_basis and not initial.config.pixel_basis
                  and dataclasses.replace(initial.config, pixel_basis=True) == model.config)
    if initial.config != model.config and not adds_basis:
        raise ValueError(f"init_weights {name_or_path!r} has configuration {initial.config}, "
                         f"but the run trains {model.config}")
    # the configurations differ at most by the basis, whose keys alone can be missing
    model.load_state_dict(initial.state_dict(), strict=not adds_basis)
    return initial.metadata


def _widen_span(span, *views):
    """``span`` (min, max of ln λ/Å) widened to the valid pixels of ``views``."""
    low, high = span
    for view in views:
        log_wavelength, valid = view["inputs"][0], view["inputs"][3]
        seen = log_wavelength[valid]
        if seen.numel():
            low, high = min(low, float(seen.min())), max(high, float(seen.max()))
    return low, high


def _span_over_ranks(span, device):
    """The union of every rank's ``span``."""
    if not dist.is_initialized():
        return span
    extremes = torch.tensor([-span[0], span[1]], dtype=torch.float64, device=device)
    dist.all_reduce(extremes, op=dist.ReduceOp.MAX)
    return -float(extremes[0]), float(extremes[1])


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
        The file cannot be read or is not a checkpoint of `train`; its
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
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
        raise ValueError(f"cannot read {checkpoint} as a checkpoint ({error})") from error
    needed = ("model", "step", "config")
    missing = [key for key in needed if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(f"{checkpoint} is not a checkpoint of spectok.training.train (it has "
                         f"no {', '.join(missing)})")
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


def train(config, *, resume=False, progress=True, sources=None, device=None):
    """Pretrain a tokenizer; the same call runs on one CPU or under ``torchrun``.

    Parameters
    ----------
    config : `~spectok.training.TrainingConfig`
        The run (see `~spectok.training.load_config` for the TOML form).
    resume : bool
        Continue from the checkpoint in ``config.output_dir`` (exactly: same
        parameters, optimiser and scheduler state, and data stream).
    progress : bool
        Show a progress bar (rank 0 only).
    sources : list of `~spectok.training.data.Source`, optional
        Pre-built sources instead of ``config.sources`` (tests, custom data).
    device : str or `torch.device`, optional
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (a GPU where one is visible, else
        the CPU); `None` means ``spectok.conf.device`` (``"auto"`` unless
        changed). ``"cuda"`` means the GPU of the process's ``LOCAL_RANK``.
        On a GPU the forward pass runs under bfloat16 autocast.

    Returns
    -------
    `~spectok.model.SpectralTokenizer`
        The trained model; rank 0 also writes it with
        `~spectok.model.save_model` to ``output_dir/name``, with the training
        configuration and the observed wavelength range trained on
        (``metadata["wavelength_range"]``, Å, including that of the
        ``init_weights`` model) in its metadata.

    Raises
    ------
    FileNotFoundError
        ``resume=True`` but there is no checkpoint.
    PermissionError
        The output directory is not writable (checked before any work).
    OSError
        Not enough free disk space for two checkpoints and the model
        (``errno.ENOSPC``, checked before any work).
    RuntimeError
        A GPU asked for where none is visible, or a GPU run with more
        processes on a node than visible GPUs (or all of them on one).
    ValueError
        ``batch_size`` not divisible by the number of processes; a resumed
        checkpoint that trained other parameters (``trainable``) or held
        other sources to ``init_weights``; ``sources`` holding a source to
        ``init_weights`` that ``config.sources`` does not (checked before
        any step).

    Examples
    --------
    Two steps of the ``tiny`` model on the CPU, from a source of one's own
    (here one spectrum seen as published, over and over); the run directory
    holds the checkpoint, the CSV log and the trained model:

    >>> import pathlib, tempfile
    >>> import spectok
    >>> from spectok.model import load_model
    >>> from spectok.training import Source, TrainingConfig, latest_checkpoint, train
    >>> spectrum = spectok.datasets.example_spectrum()
    >>> source = Source("example", lambda rng, redshift: spectrum, instruments=("native",))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     config = TrainingConfig(model="tiny", name="toy", output_dir=tmp, steps=2,
    ...                             batch_size=2, warmup_steps=1, validate_every=2,
    ...                             validation_batches=1)
    ...     model = train(config, sources=[source], progress=False, device="cpu")
    ...     run = pathlib.Path(tmp)
    ...     print(sorted(path.name for path in run.iterdir()))
    ...     print(load_model(run / "toy").metadata["steps"], latest_checkpoint(run).name)
    ['checkpoint.pt', 'log.csv', 'toy.json', 'toy.safetensors']
    2 checkpoint.pt
    >>> spectok.encode(spectrum, model=model).tokens.shape
    (143, 8)
    """
    rank, world_size, device = _distributed_setup(device)
    if config.batch_size % world_size:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by the "
                         f"{world_size} processes")
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_writable_directory(output_dir, "output directory")

    torch.manual_seed(config.seed)
    model = SpectralTokenizer(config.tokenizer_config()).to(device)
    # a checkpoint holds the weights and AdamW's two moments; the old one stays until the
    # new one is complete, and the final model is written beside them
    n_bytes = 4 * sum(p.numel() for p in model.parameters())
    # with held sources each checkpoint also keeps the model they are held to
    copies = 9 if _held_sources(config.sources) else 7
    check_free_space(output_dir, copies * n_bytes + 2**20, "checkpoints and the trained model")
    initial_range = ()  # the wavelengths the starting weights were trained on (none here)
    if config.init_weights:
        initial_range = _load_initial_weights(model, config.init_weights).get("wavelength_range")
    if config.trainable == "decoder":
        for parameter in model.encoder_parameters():
            parameter.requires_grad_(False)
    elif config.trainable in ("basis", "pooling"):
        model.requires_grad_(False)
        module = {"basis": "pixel_coefficients", "pooling": "pooling"}[config.trainable]
        getattr(model, module).requires_grad_(True)
    trained = [parameter for parameter in model.parameters() if parameter.requires_grad]
    objective = TrainingObjective(model, config)
    optimizer = torch.optim.AdamW(trained, lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _learning_rate_factor(config))
    start = 0
    span = (math.inf, -math.inf)  # ln λ/Å of the valid pixels trained on
    checkpoint_path = output_dir / CHECKPOINT_NAME
    if resume:
        if latest_checkpoint(output_dir) is None:
            raise FileNotFoundError(f"no checkpoint to resume from in {output_dir}")
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        trained_before = json.loads(state["config"]).get("trainable", "all")
        if trained_before != config.trainable:
            raise ValueError(f"the checkpoint in {output_dir} trained {trained_before!r} "
                             f"parameters, this run {config.trainable!r}: a resumed run "
                             "must train the same ones")
        model.load_state_dict(state["model"])
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
        start = int(state["step"])
        if "wavelength_span" in state:
            span = tuple(state["wavelength_span"].tolist())
        else:
            span = None
            warnings.warn(f"{checkpoint_path} predates the record of the wavelengths trained "
                          "on; the saved model will have no wavelength_range", stacklevel=2)

    wrapped = (DistributedDataParallel(objective, device_ids=[device] if device.type == "cuda"
                                       else None) if world_size > 1 else objective)
    sources = build_sources(config.sources) if sources is None else sources
    _check_held_sources(sources, objective)
    patch_size = model.config.patch_size
    stream = TrainingStream(sources, config, patch_size, rank=rank, world_size=world_size,
                            start_step=start, stop_step=config.steps)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=config.num_workers,
                                         persistent_workers=False)
    validation = _validation_batches(sources, config, patch_size, rank, world_size)

    precision = functools.partial(autocast, device)

    log_path = output_dir / "log.csv"
    seconds_before = 0.0
    if rank == 0:
        if resume and log_path.exists():
            seconds_before = _rewind_log(log_path, start)
        else:
            with open(log_path, "w", newline="") as f:
                csv.writer(f).writerow(_LOG_FIELDS)
    bar = tqdm(total=config.steps, initial=start, disable=not progress or rank != 0,
               desc="spectok.train", unit="step")
    started, window = time.time() - seconds_before, time.time()
    objective.train()
    step = start
    for step, (view_a, view_b) in enumerate(loader, start=start):
        if span is not None:
            span = _widen_span(span, view_a, view_b)
        with precision():
            loss, terms = wrapped(_to_device(view_a, device), _to_device(view_b, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        loss = loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(trained, config.grad_clip)
        optimizer.step()
        scheduler.step()
        done = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss):.3f}")
        validate = done % config.validate_every == 0 or done == config.steps
        if done % config.log_every == 0 or validate:
            logged = {"loss": loss, **terms}
            row = {"step": done, "learning_rate": scheduler.get_last_lr()[0],
                   **dict(zip(logged, _mean_over_ranks([float(v) for v in logged.values()],
                                                       device))),
                   "grad_norm": float(grad_norm),
                   "spectra_per_second": config.batch_size * config.log_every
                   / max(time.time() - window, 1e-9),
                   "wall_seconds": time.time() - started}
            window = time.time()
            if validate:
                row.update((f"val_{name}", value) for name, value
                           in _validate(objective, validation, device, precision).items())
            if rank == 0:
                with open(log_path, "a", newline="") as f:
                    csv.DictWriter(f, _LOG_FIELDS).writerow(row)
        if (done % config.checkpoint_every == 0 or done == config.steps) and span is not None:
            span = _span_over_ranks(span, device)
        if done % config.checkpoint_every == 0 or done == config.steps:
            if rank == 0:
                _save_checkpoint(checkpoint_path, objective, optimizer, scheduler, done, config,
                                 span, initial_range)
    bar.close()
    if step + 1 >= config.steps:
        # as load_model would give it back, so tokens name it and encode knows its range
        model.name = config.name
        model.metadata = json.loads(json.dumps(  # in the JSON types the saved model holds
            _model_metadata(config, config.steps, span, initial_range)))
        if rank == 0:
            save_model(model, output_dir / config.name, metadata=model.metadata)
    if dist.is_initialized():
        dist.barrier()
    return model.eval()
