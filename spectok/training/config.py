"""Training configuration, read from a TOML file."""

import math
import numbers
import os
import tomllib
from collections.abc import Mapping, Set
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .._checks import as_pair
from ..model import CONFIGS, TokenizerConfig
from .losses import RECONSTRUCTION_LOSSES

__all__ = ["SourceConfig", "TrainingConfig", "load_config"]

#: What a source's reconstructions can be trained against (`SourceConfig.reconstruction_target`).
RECONSTRUCTION_TARGETS = ("data", "init_weights")


#: What each annotated type of a configuration field accepts, and how errors call it.
_FIELD_KINDS = {bool: (bool, "true or false"), int: (numbers.Integral, "an integer"),
                float: (numbers.Real, "a number"), str: ((str, os.PathLike), "a string")}


def _check_types(config, prefix=""):
    """Refuse a field of a configuration dataclass whose value is not of its declared type
    (a TOML ``steps = "ten"`` would otherwise fail far from its cause); ``prefix`` begins
    the message, to say which configuration it is."""
    for spec in fields(config):
        if spec.type not in _FIELD_KINDS:   # tuples, and fields that take several types
            continue
        value = getattr(config, spec.name)
        accepted, what = _FIELD_KINDS[spec.type]
        if not isinstance(value, accepted) or (spec.type is not bool and isinstance(value, bool)):
            raise ValueError(f"{prefix}{spec.name} must be {what}, got {value!r}")


def _check_range(source, name, lowest, what):
    """Refuse a source's ``snr`` or ``redshift`` unless it is a (low, high) pair of finite
    numbers with ``lowest < low <= high`` (a reversed pair would be drawn from silently)."""
    pair = getattr(source, name)
    low, high = as_pair(pair, f"source {source.name!r}: {name} must be a (low, high) pair of "
                              f"numbers, got {pair!r}")
    if not (math.isfinite(low) and math.isfinite(high) and lowest < low <= high):
        raise ValueError(f"source {source.name!r}: {name} must be {what} with low <= high, "
                         f"got {tuple(pair)!r}")


def _check_instruments(source):
    """Refuse a source's ``instruments`` unless it is a non-empty sequence of preset names
    (or `~spectok.datasets.Instrument` objects) and ``"native"``."""
    from ..datasets import get_instrument

    instruments = source.instruments
    # a set's order varies between processes, so one seed would draw other instruments
    if isinstance(instruments, (str, bytes, Mapping, Set)) \
            or not hasattr(instruments, "__len__") or len(instruments) == 0:
        raise ValueError(f"source {source.name!r}: instruments must be a non-empty list of "
                         f"instrument names, got {instruments!r}")
    for instrument in instruments:
        if instrument != "native":
            try:
                get_instrument(instrument)
            except ValueError as error:
                raise ValueError(f"source {source.name!r}: {error}") from None


def _finite(low, high=math.inf, *, include_low=True, include_high=False):
    """A test that a number is finite and within (or on the edges of) [low, high]."""
    def ok(value):
        return (math.isfinite(value) and (value >= low if include_low else value > low)
                and (value <= high if include_high else value < high))
    return ok


#: The numeric settings of a `TrainingConfig` whose range nothing else checks: a learning
#: rate or temperature of 0 or below, a negative gradient clip or loss weight, or a NaN
#: anywhere would train silently on nonsense (or fail steps later in numpy or torch).
_SETTING_RANGES = (
    ("learning_rate", _finite(0, include_low=False), "a positive number"),
    ("temperature", _finite(0, include_low=False), "a positive number"),
    ("grad_clip", lambda v: v > 0, "a positive number (inf: no clipping)"),  # NaN fails
    ("weight_decay", _finite(0), "a number, 0 or more"),
    ("noise_floor", _finite(0), "a number, 0 or more"),
    ("reconstruction_weight", _finite(0), "a number, 0 or more"),
    ("consistency_weight", _finite(0), "a number, 0 or more"),
    ("min_learning_ratio", _finite(0, 1, include_high=True), "between 0 and 1"),
    ("hide_fraction", _finite(0, 1),
     "in [0, 1) (every spectrum keeps a visible patch)"),
    ("warmup_steps", _finite(0), "0 or more"),
    ("seed", _finite(0), "0 or more (it seeds numpy's generators)"),
    ("max_query_pixels", _finite(1), "1 or more"),
    ("max_view_pixels", _finite(1), "1 or more"),
)


def _check_source(source):
    """Refuse a `SourceConfig` or `~spectok.training.Source` with values of the wrong type,
    a weight that is not positive, unknown instruments, an S/N or redshift range that is not
    an ordered pair of finite numbers (S/N > 0, redshift > -1), or an unknown
    reconstruction target."""
    if not isinstance(source.name, str):
        raise ValueError(f"a source's name must be a string, got {source.name!r}")
    _check_types(source, f"source {source.name!r}: ")
    if not (source.weight > 0 and math.isfinite(source.weight)):
        raise ValueError(f"source {source.name!r}: weight must be a positive number, got "
                         f"{source.weight!r}")
    _check_instruments(source)
    _check_range(source, "snr", 0.0, "positive")
    _check_range(source, "redshift", -1.0, "> -1")
    if source.reconstruction_target not in RECONSTRUCTION_TARGETS:
        raise ValueError(f"source {source.name!r}: reconstruction_target must be 'data' or "
                         f"'init_weights', got {source.reconstruction_target!r}")


def _held_sources(sources):
    """Names of the sources (configured or built) held to the init_weights model."""
    return [source.name for source in sources if source.reconstruction_target == "init_weights"]


@dataclass(frozen=True)
class SourceConfig:
    """One source of the pretraining mixture.

    Parameters
    ----------
    name : str
        A source known to `spectok.training.SOURCES` (``"miles"``,
        ``"spex"``, ``"galaxies"``, …).
    weight : float
        Relative frequency with which a training step draws from this source.
    instruments : list of str
        Instrument presets (`spectok.datasets.INSTRUMENTS`) to observe
        through; ``"native"`` means the spectrum as published.
    snr : tuple of float
        Range of the signal-to-noise ratio per pixel (drawn log-uniformly).
    redshift : tuple of float
        Range of redshifts (drawn uniformly); both views share one redshift.
    reconstruction_target : {"data", "init_weights"}
        What the decoder learns to reconstruct on this source's spectra:
        the data (default), or what the ``init_weights`` model reconstructs
        from them (its flux, and its readout with ``readout_weight``), so
        that training on the other sources leaves this source's
        reconstructions where they were (learning without forgetting). Needs
        ``init_weights``, ``reconstruction_weight > 0`` and
        ``reconstruction_loss = "chi2"``: the mean is
        held by its χ² to the starting model's, with the data's errors and
        the weight ``hold_weight``, while the model's scatter still learns
        from the data.

    Examples
    --------
    Simulated galaxies seen through SDSS and DESI presets at redshifts up
    to 1, drawn twice as often as a source of weight 1:

    >>> from spectok.training import SourceConfig
    >>> SourceConfig("galaxies", weight=2.0, instruments=("sdss", "desi"),
    ...              redshift=(0.0, 1.0))  # doctest: +NORMALIZE_WHITESPACE
    SourceConfig(name='galaxies', weight=2.0, instruments=('sdss', 'desi'),
                 snr=(10.0, 100.0), redshift=(0.0, 1.0), reconstruction_target='data')
    >>> SourceConfig("miles", weight=0)
    Traceback (most recent call last):
    ...
    ValueError: source 'miles': weight must be a positive number, got 0
    """

    name: str
    weight: float = 1.0
    instruments: tuple = ("sdss",)
    snr: tuple = (10.0, 100.0)
    redshift: tuple = (0.0, 0.0)
    reconstruction_target: str = "data"

    def __post_init__(self):
        _check_source(self)


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that defines a training run.

    Parameters
    ----------
    model : str or dict
        A preset name from `spectok.model.CONFIGS`, or a dict of
        `~spectok.model.TokenizerConfig` fields (``preset`` picks the base).
    name : str
        Name of the trained model (the file stem of the saved weights).
    output_dir : str
        Where checkpoints, the CSV log and the final model go.
    steps, batch_size : int
        Optimiser steps; global batch size (split evenly across ranks).
    learning_rate, weight_decay, warmup_steps, min_learning_ratio, grad_clip : float
        AdamW with linear warm-up then cosine decay to ``min_learning_ratio``
        times the peak; gradients clipped to this norm.
    hide_fraction : float
        Fraction of patches hidden from the encoder (masked-patch modelling).
    noise_floor : float
        Added in quadrature to normalised errors in the reconstruction loss.
    reconstruction_loss : {"gaussian_nll", "chi2"}
        ``"gaussian_nll"``: the decoder's mean and scatter trained together
        by the Gaussian likelihood (`~spectok.training.gaussian_nll`).
        ``"chi2"``: the mean by its χ² alone, the scatter by the likelihood
        given the mean (`~spectok.training.chi2_and_scatter_nll`), so that
        the model cannot discount the pixels it fits worst.
    reconstruction_weight, consistency_weight, temperature : float
        Weights of the loss terms and the InfoNCE temperature.
    readout_weight : float
        For a model with the pixel basis: weight of the χ² of the attention
        readout alone (the basis's detail left out), added to the loss
        (times ``reconstruction_weight``). Hidden patches get the readout
        alone, so this keeps it a predictor by itself rather than the smooth
        part of a sum. 0 (default): no such term.
    similar_batch_fraction : float
        Fraction of the steps that draw from a fixed collection (not a
        simulator) whose batch is one random object and its nearest
        neighbours in coarse spectral shape instead of random objects: hard
        negatives, so that the consistency term must tell similar objects
        apart, not only different kinds.
    max_query_pixels : int
        Pixels per spectrum at which the decoder is queried in training (a
        random subset; all pixels when the spectrum is shorter).
    max_view_pixels : int
        Longer observed views are cut to a random window of this many
        consecutive pixels (bounds the quadratic attention cost of a step).
    trim_views : bool
        Cut each arm of an observed view to its first and last usable pixel
        (true, default, as stages 1 to 18 of ``spectok-small`` were trained),
        or keep arms whole (false) as `spectok.encode` does. Where an object
        covers little of an instrument's range (a MILES star, 3540 to 7410 Å,
        seen as Gaia XP-like, 3360 to 10200 Å), the two place the patches
        differently, so a model encodes best what it was trained on.
    seed : int
        Seeds the data stream and the initial weights.
    init_weights : str
        Start from these weights instead of a random initialisation: a
        shipped model name or the ``.json`` description of a saved model
        (continued pretraining; the architecture must match ``model``, or
        differ from it only by ``pixel_basis`` switched on, whose network
        then starts at zero so the model first predicts what the saved one
        does). Empty: random.
    trainable : {"all", "decoder", "basis", "pooling"}
        ``"all"`` (default) trains every parameter; ``"decoder"`` freezes
        the encoder
        (`~spectok.model.SpectralTokenizer.encoder_parameters`), so the
        tokens and embeddings stay exactly those of ``init_weights`` (which
        it needs) while the decoder learns to reconstruct from them;
        ``"basis"`` trains the pixel basis alone (``pixel_basis`` on), so
        that the decoder's attention readout, and with it every wavelength
        the basis does not reach (hidden patches, gaps), stays exactly that
        of ``init_weights`` too; ``"pooling"`` trains the attention pooling
        alone, on the consistency term (which it needs), so that the tokens
        and every reconstruction stay those of ``init_weights`` and only the
        pooled embedding learns to bring an object's views together.
    anchor_weight : float
        With ``trainable = "pooling"``: weight of a term that keeps
        embeddings where the ``init_weights`` model put them, so that the
        consistency term pulls the poorer view of an object to the sharper
        one rather than both to a place that forgets what only the sharper
        one shows. Of each pair, the view with more valid pixels is
        anchored (`~spectok.training.anchor_loss`); the log's ``loss``
        includes the term, ``consistency`` does not. 0 (default): no such
        term.
    hold_weight : float
        Weight of the χ² that holds the sources with ``reconstruction_target
        = "init_weights"`` to the starting model's reconstruction (flux and,
        with ``readout_weight``, readout), against the weight 1 of the
        other sources' χ² against their data. Those χ² are small and their
        gradients vanish near the starting point, so a few fitted sources
        with large χ² can pull the shared decoder far from it unless the
        hold is weighed up. Default 1.
    log_every, validate_every, checkpoint_every, validation_batches : int
        Intervals in steps, and the size of the fixed validation set.
    num_workers : int
        DataLoader worker processes per rank.
    sources : tuple of `SourceConfig`

    Examples
    --------
    The ``tiny`` preset made twice as wide, trained on MILES stars and
    simulated galaxies (three to one); a configuration is frozen, and
    `dataclasses.replace` makes a changed copy:

    >>> import dataclasses
    >>> from spectok.training import SourceConfig, TrainingConfig
    >>> config = TrainingConfig(
    ...     model={"preset": "tiny", "width": 64}, steps=2000,
    ...     sources=(SourceConfig("miles", weight=3.0),
    ...              SourceConfig("galaxies", instruments=("sdss", "desi"))))
    >>> config.tokenizer_config().width, [source.name for source in config.sources]
    (64, ['miles', 'galaxies'])
    >>> dataclasses.replace(config, steps=10).steps
    10

    Settings that cannot work together are refused when the configuration
    is made, not when the run reaches them:

    >>> TrainingConfig(trainable="decoder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: trainable = 'decoder' freezes trained parameters, so it needs init_weights...
    """

    model: object = "small"
    name: str = "spectok-custom"
    output_dir: str = "runs/spectok-custom"
    steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_learning_ratio: float = 0.05
    grad_clip: float = 1.0
    hide_fraction: float = 0.3
    noise_floor: float = 0.005
    reconstruction_loss: str = "gaussian_nll"
    reconstruction_weight: float = 1.0
    consistency_weight: float = 0.2
    readout_weight: float = 0.0
    temperature: float = 0.1
    similar_batch_fraction: float = 0.0
    max_query_pixels: int = 512
    max_view_pixels: int = 4096
    trim_views: bool = True
    seed: int = 0
    init_weights: str = ""
    trainable: str = "all"
    anchor_weight: float = 0.0
    hold_weight: float = 1.0
    log_every: int = 10
    validate_every: int = 200
    checkpoint_every: int = 100
    validation_batches: int = 8
    num_workers: int = 0
    sources: tuple = field(default_factory=lambda: (SourceConfig("miles"),))

    def __post_init__(self):
        _check_types(self)
        for name, ok, what in _SETTING_RANGES:
            if not ok(getattr(self, name)):
                raise ValueError(f"{name} must be {what}, got {getattr(self, name)!r}")
        for name in ("name", "output_dir"):
            if not os.fspath(getattr(self, name)):
                raise ValueError(f"{name} must not be empty (output_dir = '.' writes to the "
                                 "current directory)")
        self.tokenizer_config()   # an unknown preset or model field, now rather than in train
        if (isinstance(self.sources, (str, bytes, Mapping)) or not hasattr(self.sources, "__len__")
                or not all(isinstance(s, SourceConfig) for s in self.sources)):
            raise ValueError(f"sources must be a list of SourceConfig ([[sources]] tables in "
                             f"TOML), got {self.sources!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        for name in ("log_every", "validate_every", "checkpoint_every", "validation_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be 1 or more, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be 0 (batches made in the training process) or "
                             f"more, got {self.num_workers}")
        if not self.sources:
            raise ValueError("the training mixture needs at least one source")
        if not 0 <= self.similar_batch_fraction <= 1:
            raise ValueError(f"similar_batch_fraction must be between 0 and 1, got "
                             f"{self.similar_batch_fraction}")
        if self.reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"unknown reconstruction_loss {self.reconstruction_loss!r}; "
                             f"choose from {sorted(RECONSTRUCTION_LOSSES)}")
        if not _finite(0)(self.readout_weight):
            raise ValueError(f"readout_weight must be 0 or more, got {self.readout_weight}")
        if self.consistency_weight and self.batch_size < 2:   # one pair: the loss is 0
            raise ValueError("the consistency term tells each pair of views from the other "
                             "pairs of its batch, so it needs batch_size 2 or more, got "
                             f"{self.batch_size}; or set consistency_weight = 0")
        if not self.reconstruction_weight and not self.consistency_weight:
            raise ValueError("reconstruction_weight and consistency_weight are both 0: the run "
                             "would have no loss to train on")
        if self.readout_weight and not self.tokenizer_config().pixel_basis:
            raise ValueError("readout_weight weighs the readout against the pixel basis, "
                             "so it needs a model with pixel_basis = true")
        if self.trainable not in ("all", "decoder", "basis", "pooling"):
            raise ValueError(f"trainable must be 'all', 'decoder', 'basis' or 'pooling', got "
                             f"{self.trainable!r}")
        if self.trainable == "pooling" and not self.consistency_weight:
            raise ValueError("trainable = 'pooling' trains the pooled embedding, which only the "
                             "consistency term sees, so it needs consistency_weight > 0")
        if not _finite(0)(self.anchor_weight):  # NaN too
            raise ValueError(f"anchor_weight must be 0 or more, got {self.anchor_weight}")
        if self.anchor_weight and self.trainable != "pooling":
            raise ValueError("anchor_weight keeps the pooled embedding near that of the "
                             "init_weights model while the tokens stay theirs, so it needs "
                             f"trainable = 'pooling', got {self.trainable!r}")
        if self.trainable != "all" and not self.init_weights:
            raise ValueError(f"trainable = {self.trainable!r} freezes trained parameters, so it "
                             "needs init_weights: the trained model to keep them from")
        if not _finite(0, include_low=False)(self.hold_weight):  # NaN too
            raise ValueError(f"hold_weight must be positive, got {self.hold_weight}")
        held = _held_sources(self.sources)
        missing = [need for need, met in (("init_weights", self.init_weights),
                                          ("reconstruction_weight > 0",
                                           self.reconstruction_weight > 0),
                                          ("reconstruction_loss = 'chi2'",
                                           self.reconstruction_loss == "chi2")) if not met]
        if held and missing:
            raise ValueError(f"sources {held} reconstruct what init_weights reconstructs, so the "
                             f"run needs {' and '.join(missing)}")
        if self.trainable == "basis" and not self.tokenizer_config().pixel_basis:
            raise ValueError("trainable = 'basis' trains the pixel basis alone, so it needs a "
                             "model with pixel_basis = true")

    def tokenizer_config(self):
        """The `~spectok.model.TokenizerConfig` of the model to train."""
        if isinstance(self.model, str):
            if self.model not in CONFIGS:
                raise ValueError(f"unknown model preset {self.model!r}; known: {sorted(CONFIGS)}")
            return CONFIGS[self.model]
        if not isinstance(self.model, Mapping):
            raise ValueError(f"model must be a preset name ({sorted(CONFIGS)}) or a dict of "
                             f"TokenizerConfig fields ([model] in TOML), got {self.model!r}")
        values = dict(self.model)
        preset = values.pop("preset", "small")
        if not isinstance(preset, str) or preset not in CONFIGS:
            raise ValueError(f"unknown model preset {preset!r}; known: {sorted(CONFIGS)}")
        base = CONFIGS[preset]
        return TokenizerConfig.from_dict({**base.to_dict(), **values})

    def to_dict(self):
        """A JSON-serialisable copy (stored with checkpoints and the model)."""
        values = asdict(self)
        values["sources"] = [asdict(s) for s in self.sources]
        return values

    @classmethod
    def from_dict(cls, values):
        """The configuration that `to_dict` wrote, as checkpoints and models store it.

        Parameters
        ----------
        values : dict
            `TrainingConfig` fields, with ``sources`` a list of `SourceConfig`
            fields and lists where fields hold tuples (as JSON has them).

        Returns
        -------
        `TrainingConfig`

        Raises
        ------
        ValueError
            Unknown fields, with their names, or values the configuration
            rejects.

        Examples
        --------
        >>> import json
        >>> from spectok.training import TrainingConfig
        >>> config = TrainingConfig(steps=5)
        >>> TrainingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
        True
        """
        if not isinstance(values, Mapping):
            raise ValueError(f"training configuration: expected a dict of TrainingConfig "
                             f"fields, got {values!r}")
        return _from_values(dict(values), "training configuration")


def _from_values(values, origin):
    """A `TrainingConfig` from plain (TOML or JSON) values; ``origin`` starts each error."""
    unknown = set(values) - {f.name for f in fields(TrainingConfig)}
    if unknown:
        raise ValueError(f"{origin}: unknown training options {sorted(unknown)}")
    source_fields = {f.name for f in fields(SourceConfig)}
    sources = []
    tables = values.get("sources", ())
    if isinstance(tables, (str, bytes, Mapping)) or not isinstance(tables, (list, tuple)):
        raise ValueError(f"{origin}: sources must be a list of source tables ([[sources]] in "
                         f"TOML, not [sources]), got {tables!r}")
    for table in tables:
        if isinstance(table, SourceConfig):
            sources.append(table)
            continue
        if not isinstance(table, Mapping):
            raise ValueError(f"{origin}: each source must be a table of SourceConfig fields "
                             f"([[sources]] in TOML), got {table!r}")
        if "name" not in table:
            raise ValueError(f"{origin}: a source has no name: {dict(table)!r}")
        bad = set(table) - source_fields
        if bad:
            raise ValueError(f"{origin}: unknown source options {sorted(bad)}")
        sources.append(SourceConfig(**{k: tuple(v) if isinstance(v, list) else v
                                       for k, v in table.items()}))
    if sources:
        values["sources"] = tuple(sources)
    return TrainingConfig(**values)


def load_config(path, **overrides):
    """Read a `TrainingConfig` from a TOML file.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        TOML file: top-level keys are `TrainingConfig` fields, ``[[sources]]``
        tables are `SourceConfig` fields, ``[model]`` may override the preset.
    **overrides
        Fields to replace (e.g. ``steps=10`` for a quick check).

    Returns
    -------
    `TrainingConfig`

    Raises
    ------
    ValueError
        Unknown keys, with their names; a file that is not TOML; ``sources``
        that are not ``[[sources]]`` tables; values the configuration rejects.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spectok.training import load_config
    >>> text = 'steps = 5\\n[[sources]]\\nname = "miles"\\ninstruments = ["sdss", "lamost"]\\n'
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "run.toml"
    ...     _ = path.write_text(text)
    ...     config = load_config(path)
    >>> config.steps, config.sources[0].instruments
    (5, ('sdss', 'lamost'))
    """
    try:
        values = tomllib.loads(Path(path).read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a valid TOML file: {error}") from None
    values.update(overrides)
    return _from_values(values, path)
