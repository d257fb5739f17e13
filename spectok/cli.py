"""The ``spectok`` command: ``info``, ``encode``, ``train``, ``export``, ``validate`` and
``bench``."""

import argparse
import sys
import warnings
from pathlib import Path

#: Most ``--wavelength-bins``: each bin holds a token per spectrum, and bins much finer
#: than the model's patches (32 pixels for the shipped model) repeat the same tokens.
_MAX_WAVELENGTH_BINS = 10_000

__all__ = ["main"]


def _info(args):
    import platform

    import torch

    import spectok
    from spectok._device import resolve_device
    from spectok.model import available_models, load_model

    print(f"spectok {spectok.__version__}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"device {resolve_device()} (cuda available: {torch.cuda.is_available()})")
    print(f"default model: {spectok.conf.default_model}")
    for name in available_models():
        model = load_model(name)
        n = sum(p.numel() for p in model.parameters())
        c = model.config
        print(f"  {name}: {n / 1e6:.2f} M parameters, width {c.width}, "
              f"{c.encoder_depth}+{c.decoder_depth} blocks, patch {c.patch_size}, "
              f"token {c.token_dim}{', pixel basis' if c.pixel_basis else ''}")
    return 0


def _wavelength_bins(values):
    """``--wavelength-bins LO HI N``: N bins equal in ln λ from LO to HI Å (or None)."""
    if values is None:
        return None
    import astropy.units as u
    import numpy as np

    from spectok.adapter.units import as_wavelength_range

    lo, hi, n = values
    if not (np.isfinite(n) and n == int(n) and 1 <= n <= _MAX_WAVELENGTH_BINS):
        raise SystemExit(f"spectok encode: --wavelength-bins needs a whole number of bins "
                         f"from 1 to {_MAX_WAVELENGTH_BINS} (finer bins repeat the tokens of "
                         f"the patches they fall in), got {n:g}")
    try:
        lo, hi = as_wavelength_range((lo, hi), "--wavelength-bins LO HI")
    except ValueError as error:   # HI = inf made bins [3700, inf, inf, ...]
        raise SystemExit(f"spectok encode: {error}") from None
    return np.geomspace(lo, hi, int(n) + 1) * u.AA


def _encode(args):
    from spectok.catalogue import encode_catalogue

    try:
        result = encode_catalogue(
            args.files, args.output, model=args.model, chunk_size=args.chunk_size,
            batch_size=args.batch_size, device=args.device, medium=args.medium,
            errors=args.errors, file_format=args.format, resume=args.resume,
            overwrite=args.overwrite, progress=True if args.progress else None,
            wavelength_bins=_wavelength_bins(args.wavelength_bins))
    except (OSError, ValueError) as error:  # unreadable input, unwritable output, bad settings
        raise SystemExit(f"spectok encode: {error}") from None
    resumed = (f" (resumed: {result.resumed_chunks} chunks were already done)"
               if result.resumed_chunks else "")
    skipped = f", skipped {len(result.skipped)}" if result.skipped else ""
    print(f"wrote {result.n_encoded} embeddings to {result.path}{skipped}{resumed}")
    if result.skipped and not result.n_encoded:
        print("spectok encode: no spectrum could be encoded", file=sys.stderr)
        return 1
    return 0


def _read_config(command, path, **overrides):
    """A training configuration, or a one-line exit naming what is wrong with it.

    The sources are checked, not built: building loads their data, which the
    run does after its own checks of the output directory and the disk.
    """
    from spectok.training import load_config
    from spectok.training.data import check_source_configs

    try:
        config = load_config(path, **overrides)
        check_source_configs(config.sources)
    except (OSError, ValueError) as error:   # no such file, bad TOML or setting, unknown source
        raise SystemExit(f"spectok {command}: {error}") from None
    return config


def _require_model(command, name):
    """Load the model ``name`` now (it is cached), or exit in one line naming the problem:
    before the minutes a command spends on its data, not in a traceback after them."""
    from spectok.encode import get_model

    try:
        get_model(name, "cpu")
    except (OSError, TypeError, ValueError) as error:
        raise SystemExit(f"spectok {command}: {error}") from None


def _train(args):
    from spectok._device import resolve_device
    from spectok.training import latest_checkpoint, train

    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.output_dir is not None:
        overrides["output_dir"] = args.output_dir
    if args.num_workers is not None:
        overrides["num_workers"] = args.num_workers
    config = _read_config("train", args.config, **overrides)
    try:   # what would stop the run, found before any data is loaded
        device = resolve_device(args.device)
    except ValueError as error:
        raise SystemExit(f"spectok train: {error}") from None
    if args.resume and latest_checkpoint(config.output_dir) is None:
        raise SystemExit(f"spectok train: --resume, but there is no checkpoint to resume from "
                         f"in {config.output_dir}")
    train(config, resume=args.resume, progress=not args.no_progress, device=device)
    return 0


def _export(args):
    from spectok.training import export_checkpoint

    try:
        description = export_checkpoint(args.checkpoint, args.output,
                                        overwrite=args.overwrite)
    except (OSError, ValueError) as error:
        raise SystemExit(f"spectok export: {error}") from None
    print(f"wrote {description} and {description.with_suffix('.safetensors')}")
    return 0


def _validate(args):
    from astropy.table import Table

    from spectok.training import build_sources, validation_loss

    config = _read_config("validate", args.config)
    for name in args.models:
        _require_model("validate", name)
    sources = build_sources(config.sources)
    rows = [{"model": name, **validation_loss(name, config, sources=sources)}
            for name in args.models]
    table = Table(rows=rows, names=list(rows[0]))
    for name in table.colnames[1:]:
        table[name].format = ".4f"
    print(f"validation batches of {args.config}: {config.validation_batches} batches of "
          f"{config.batch_size} pairs, seed {config.seed}")
    table.pprint_all()
    return 0


def _bench(args):
    from spectok._atomic import write_atomically
    from spectok._checks import check_names
    from spectok._preflight import check_writable_directory
    from spectok.benchmarks import TASKS, benchmark_threads, format_report, run_benchmark

    tasks = None
    if args.tasks:
        tasks = [t.strip() for item in args.tasks for t in item.split(",") if t.strip()]
        try:   # unknown, repeated (run twice) or no task ("--tasks ''")
            check_names(tasks, TASKS, "--tasks", "tasks", single=False)
        except ValueError as error:
            raise SystemExit(f"spectok bench: {error}") from None
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"spectok bench: --threads must be at least 1, got {args.threads}")
    if args.seed < 0:
        raise SystemExit(f"spectok bench: --seed must be a non-negative integer, got {args.seed}")
    output = Path(args.output) if args.output else None
    if output is not None:   # a read-only folder too, before a run of minutes
        try:
            check_writable_directory(output.parent, "output directory")
        except OSError as error:
            raise SystemExit(f"spectok bench: {error}") from None
    if output is not None and output.is_dir():
        raise SystemExit(f"spectok bench: -o {output} is a directory; give the path of the "
                         "report file (e.g. report.md)")
    _require_model("bench", args.model)
    report = run_benchmark(model=args.model, tasks=tasks, quick=args.quick, seed=args.seed,
                           num_threads=args.threads)
    text = format_report(report)
    print(text)
    if output is not None:
        write_atomically(output, lambda partial: partial.write_text(text + "\n"))
        write_atomically(output.with_suffix(".ecsv"), lambda partial: report.table.write(
            partial, format="ascii.ecsv", overwrite=True))
        folder = output.with_name(output.stem + "-figures")
        with benchmark_threads(args.threads):  # drawing the reconstructions runs the model
            figures = report.save_figures(folder)
        print(f"wrote {output}, {output.with_suffix('.ecsv')} and {len(figures)} "
              f"figure{'' if len(figures) == 1 else 's'} in {folder}")
    return 0


def _parser():
    parser = argparse.ArgumentParser(
        prog="spectok", description="Universal tokens and embeddings for 1-D spectra.")
    commands = parser.add_subparsers(dest="command", required=True)

    info = commands.add_parser("info", help="version, shipped models, device")
    info.set_defaults(run=_info)

    encode = commands.add_parser(
        "encode", help="encode spectrum files to an embedding table (resumable)",
        description="Encode spectrum files to an embedding table, a chunk at a time. Chunks "
        "are kept in OUTPUT.parts/ until the table is written; after a crash or a kill, run "
        "the same command with --resume to continue where it stopped.")
    encode.add_argument("files", nargs="+", help="spectrum files specutils can read")
    encode.add_argument("-o", "--output", required=True,
                        help="output table: .fits, .h5/.hdf5 or .parquet")
    encode.add_argument("--format", help="specutils reader to use (e.g. 'tabular-fits')")
    encode.add_argument("--model", help="shipped model name or path of a model .json")
    encode.add_argument("--batch-size", type=int)
    encode.add_argument("--chunk-size", type=int, default=1024,
                        help="files per chunk written to disk (default: 1024)")
    encode.add_argument("--device", help="'auto', 'cpu', 'cuda', …")
    encode.add_argument("--medium", choices=["air", "vacuum"],
                        help="medium of the wavelengths (default: vacuum)")
    encode.add_argument("--errors", choices=["raise", "warn", "skip"], default="warn",
                        help="what to do with a file that cannot be read or encoded "
                             "(default: warn and leave it out)")
    encode.add_argument("--resume", action="store_true",
                        help="continue the interrupted run that wrote OUTPUT.parts/")
    encode.add_argument("--overwrite", action="store_true",
                        help="replace OUTPUT, and (without --resume) discard OUTPUT.parts/")
    encode.add_argument("--progress", action="store_true", help="show a progress bar")
    encode.add_argument("--wavelength-bins", nargs=3, type=float, metavar=("LO", "HI", "N"),
                        help="also write the tokens aligned on N bins equal in ln λ from "
                             "LO to HI Å (vacuum): columns aligned_tokens and aligned_valid, "
                             "the edges in meta['binedges']")
    encode.set_defaults(run=_encode)

    train = commands.add_parser("train", help="pretrain a tokenizer from a TOML config")
    train.add_argument("config", help="training configuration (TOML)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint in the output directory")
    train.add_argument("--steps", type=int, help="override the number of steps")
    train.add_argument("--output-dir", help="override the output directory")
    train.add_argument("--num-workers", type=int,
                       help="override the DataLoader workers that make the batches (the data "
                            "stream, and so the run, does not depend on their number)")
    train.add_argument("--device",
                       help="'auto' (a GPU where one is visible), 'cpu' or 'cuda'; default: "
                            "spectok.conf.device ('auto')")
    train.add_argument("--no-progress", action="store_true")
    train.set_defaults(run=_train)

    export = commands.add_parser(
        "export", help="save the model of a training checkpoint",
        description="Write the model of a training checkpoint as OUTPUT.json and "
        "OUTPUT.safetensors, which spectok bench --model and spectok validate take, to "
        "evaluate a run before it ends.")
    export.add_argument("checkpoint", help="checkpoint.pt of a run, or the run's output directory")
    export.add_argument("output", help="destination without suffix, e.g. runs/my-run/step-2000")
    export.add_argument("--overwrite", action="store_true",
                        help="replace a model already saved at OUTPUT")
    export.set_defaults(run=_export)

    validate = commands.add_parser(
        "validate", help="score models on a training configuration's validation batches",
        description="The pretraining loss of each model on the fixed validation batches that "
        "training with CONFIG validates on, so that checkpoints and runs compare on the "
        "same spectra.")
    validate.add_argument("config", help="training configuration (TOML)")
    validate.add_argument("models", nargs="+", metavar="MODEL",
                          help="shipped model name or path of a model .json")
    validate.set_defaults(run=_validate)

    bench = commands.add_parser("bench", help="benchmark a model against two baselines")
    bench.add_argument("--model", help="shipped model name or path of a model .json "
                       "(default: the shipped model)")
    bench.add_argument("--tasks", nargs="+", metavar="TASK",
                       help="tasks to run (default: all): stellar_parameters, spectral_types, "
                            "redshift, object_classes, quasar_redshift, cross_instrument, "
                            "reconstruction")
    bench.add_argument("--quick", action="store_true",
                       help="small subsets (a smoke test; the numbers are noisy)")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--threads", type=int,
                       help="torch threads, threads for the probes' cross-validation and "
                            "processes for the simulations (default: torch's; 1 is faster on "
                            "a busy machine)")
    bench.add_argument("-o", "--output", help="also write the markdown report here, the "
                       "table beside it as .ecsv, and the figures in OUTPUT-figures/ (PNG)")
    bench.set_defaults(run=_bench)
    return parser


def main(argv=None):
    """Run the ``spectok`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.

    Examples
    --------
    >>> from spectok.cli import main
    >>> main(["info"])  # doctest: +ELLIPSIS
    spectok ...
    0
    """
    args = _parser().parse_args(argv)
    with warnings.catch_warnings():
        if getattr(args, "command", None) == "encode":
            warnings.simplefilter("default")
        return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
