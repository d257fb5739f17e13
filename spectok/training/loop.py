"""The training loop: one process, or many under ``torchrun`` (DDP)."""

import csv
import dataclasses
import functools
import json
import math
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .._atomic import write_atomically
from .._checks import check_bool
from .._preflight import check_free_space, check_writable_directory
from .._device import autocast, resolve_device
from ..model import SpectralTokenizer, load_model, save_model
from .checkpoints import (CHECKPOINT_NAME, _model_metadata, _restore_checkpoint, _save_checkpoint,
                          latest_checkpoint)
from .config import _held_sources
from .data import TrainingStream, build_sources
from .objective import TrainingObjective

__all__ = ["train", "validation_loss"]

#: The loss terms that `TrainingObjective` reports, in the order the log lists them.
_TERMS = ("reconstruction", "consistency", "anchor")
_LOG_FIELDS = ["step", "learning_rate", "loss", *_TERMS, "grad_norm", "spectra_per_second",
               "wall_seconds", "val_loss", *(f"val_{term}" for term in _TERMS)]


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
    if device.type == "cuda":   # resolve_device has checked that the GPU exists
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
        A GPU run with more processes on a node than visible GPUs (or all
        of them on one).
    ValueError
        A ``device`` torch does not know or a GPU that is not there;
        ``resume`` not a bool; ``batch_size`` not divisible by the number of
        processes; a resumed checkpoint that cannot be read, holds another
        architecture, trained other parameters (``trainable``) or held
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
    check_bool(resume, "resume")
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
        start, span = _restore_checkpoint(checkpoint_path, objective, optimizer, scheduler,
                                          config, device)

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
