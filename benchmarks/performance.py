"""Performance of spectok, side by side with peer encoders, in one run on one machine.

Run (the whole suite takes about 10 minutes on one CPU core; ``--quick`` is a
smoke run of a minute or two)::

    OMP_NUM_THREADS=1 python benchmarks/performance.py --threads 1 \\
        --peers-python peers-venv/bin/python -o benchmarks/RESULTS.md

(see ``benchmarks/peers.py`` for the three-line set-up of ``peers-venv``; without
``--peers-python`` the peers are left out). With ``--device cuda`` spectok and the
peers run on the GPU instead (``benchmarks/RESULTS-gpu.md``): times are taken after
`torch.cuda.synchronize`, the ceiling is the bfloat16 matrix product (spectok runs
under bfloat16 autocast there) and memory is the GPU's. It prints, as Markdown:

1. the machine: CPU model and cores, torch version and threads, load average;
2. encode throughput of the shipped model through `spectok.encode` (adapter,
   model and result objects; spectra as `specutils` objects) at batch sizes 1,
   16, 64 and 256 for SDSS-, DESI-, APOGEE-, Gaia XP- and SpeX-like spectra
   observed with `spectok.datasets.observe`;
3. the same for the peers (``benchmarks/peers.py`` in their own environment),
   with ratios;
4. time and peak memory against length, 1,000 to 200,000 pixels (each length in
   a fresh process), with the exponent fitted from 10,000 pixels up, and how
   close local attention comes to global attention where both are feasible;
5. training throughput of the small configuration (one optimiser step of the
   reconstruction + consistency objective at its batch size);
6. achieved GFLOP/s of the forward pass at batch 64 against this machine's
   measured fp32 matrix-multiplication rate;
7. the targets of issue 7, met or missed.

Why a plain script rather than airspeed velocity (asv), the astropy
convention: asv answers "did this commit get slower?" by building one
environment per commit and storing results per machine; this suite answers
"how does spectok compare with other encoders, here and now?", which needs the
peers in a separate environment (they must stay out of spectok's
dependencies), ratios measured in the same run, a fixed thread count, and a
report that can be committed. A script does that with one command and no
extra tooling; its functions are small enough to wrap as asv benchmarks later.

Times are wall-clock medians over repeated calls after an untimed warm-up.
"""

import argparse
import copy
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import spectok
from spectok.adapter import FLAM, prepare_spectrum, to_batch
from spectok.datasets import load_miles, load_model_atmospheres, observe
from spectok._device import autocast
from spectok.encode import _BATCH_PIXELS, _plan_batches

sys.path.insert(0, str(Path(__file__).parent))
from peers import PEERS, synchronize, throughput  # noqa: E402

#: Instrument presets timed, with the library observed through them.
INSTRUMENTS = {"sdss": "miles", "desi": "miles", "apogee": "atmospheres", "gaia_xp": "miles",
               "spex_prism": "atmospheres"}
LENGTHS = [1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000]
QUICK_LENGTHS = [1000, 10_000, 20_000, 50_000]


# -- the machine ---------------------------------------------------------------------------

def machine(threads, device):
    """CPU model, cores, torch version and threads, load average; the GPU where one is used."""
    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                     if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    found = {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__,
             "threads": threads, "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
             "python": platform.python_version(), "device": device.type,
             "load_average": os.getloadavg()}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        found.update(gpu=properties.name, gpu_memory_gib=properties.total_memory / 2**30,
                     multiprocessors=properties.multi_processor_count, cuda=torch.version.cuda)
    return found


def compute_dtype(device):
    """The dtype of `spectok.encode`'s matrix products: float32 on CPU, bfloat16 on GPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def matmul_size(device):
    """Side of the square products that give the ceiling: large enough to fill the device."""
    return 8192 if device.type == "cuda" else 2048


def matmul_rate(device, dtype=None, seconds=3.0):
    """GFLOP/s of square `torch.mm`: the ceiling, by wall clock and by CPU time.

    Medians over back-to-back products for ``seconds``, the same statistic as
    the forward pass is measured with, so that both see the same share of a
    shared machine. ``dtype`` defaults to `compute_dtype`.
    """
    n, dtype = matmul_size(device), dtype or compute_dtype(device)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    torch.mm(a, b)
    synchronize(device)
    wall, cpu = [], []
    started = time.perf_counter()
    while len(wall) < 3 or time.perf_counter() - started < seconds:
        w, c = _timed(device, torch.mm, a, b)
        wall.append(w)
        cpu.append(c)
    flop = 2 * n**3 / 1e9
    return {"size": n, "dtype": str(dtype).removeprefix("torch."),
            "gflops_per_second": flop / float(np.median(wall)),
            "gflops_per_cpu_second": flop / float(np.median(cpu)),
            "best_gflops_per_second": flop / min(wall)}


# -- spectra ---------------------------------------------------------------------------------

def spectra(instrument, library, n):
    """``n`` spectra of the library's objects observed through ``instrument`` (at S/N 30)."""
    found, k = [], 0
    while len(found) < n:
        try:
            found.append(observe(library[k % len(library)], instrument, snr=30, rng=k))
        except ValueError:   # the instrument does not see this object
            pass
        k += 1
    return found


def synthetic(n_pixels, seed=0):
    """``(wavelength, flux, sigma)`` of an ``n_pixels`` spectrum from 3,700 to 9,500 Å."""
    import astropy.units as u
    rng = np.random.default_rng(seed)
    wave = np.geomspace(3700.0, 9500.0, n_pixels)
    lines = rng.uniform(3700, 9500, 300)
    flux = 1 + 0.3 * (wave / 6000 - 1) - sum(
        d * np.exp(-0.5 * ((wave - c) / w) ** 2)
        for c, d, w in zip(lines, rng.uniform(0, 0.5, 300), rng.uniform(0.5, 5, 300)))
    flux = (flux + 0.02 * rng.standard_normal(n_pixels)) * 1e-17
    return wave * u.AA, flux * FLAM, np.full(n_pixels, 2e-19) * FLAM


# -- spectok ---------------------------------------------------------------------------------

def _encode(items, model):
    return spectok.encode(items, model=model, device=next(model.parameters()).device,
                          progress=False)


def encode_throughput(model, pools, batch_sizes, seconds):
    """Spectra per second of `spectok.encode`, per instrument and batch size.

    Results come back as NumPy arrays, so each call has finished its GPU work
    when it returns.
    """
    rows = []
    for instrument, pool in pools.items():
        pixels = int(np.mean([prepare_spectrum(s).n_slots(1) for s in pool]))
        for batch_size in batch_sizes:
            batch = [pool[k % len(pool)] for k in range(batch_size)]
            argument = batch[0] if batch_size == 1 else batch
            row = throughput(_encode, lambda _, items=argument: (items, model), batch_size,
                             min_repeats=3 if batch_size <= 64 else 2, max_seconds=seconds)
            row.update(instrument=instrument, pixels=pixels)
            rows.append(row)
            print(f"  spectok {instrument:10s} batch {batch_size:3d}: "
                  f"{row['spectra_per_second']:8.1f} spectra/s", flush=True)
    return rows


def _forward(model, inputs):
    device = next(model.parameters()).device
    with autocast(device):
        for x in inputs:
            model.encode(*(t.to(device) for t in x))


def forward_flops(model, pool, batch_size, repeats):
    """Achieved GFLOP/s of the model's forward pass on ``batch_size`` spectra.

    Measured two ways: split into the passes `spectok.encode` makes (at most
    ``_BATCH_PIXELS[device]`` padded pixels each), and as one pass of all rows.
    FLOPs are counted by `~torch.utils.flop_counter.FlopCounterMode` (matrix
    products and attention; element-wise work is not counted). Each timed
    forward pass is followed by square products in `compute_dtype` for as
    long, so that the ceiling it is compared with is measured under the same
    load.
    """
    device = next(model.parameters()).device
    prepared = [prepare_spectrum(pool[k % len(pool)]) for k in range(batch_size)]
    patch_size = model.config.patch_size
    plan = _plan_batches(np.array([p.n_slots(patch_size) for p in prepared]), batch_size,
                         _BATCH_PIXELS[device.type], model.config.full_attention_limit * patch_size)
    n = matmul_size(device)
    a, b = (torch.randn(n, n, device=device, dtype=compute_dtype(device)) for _ in range(2))
    matmul_gflop = 2 * n**3 / 1e9
    results = {}
    for label, groups in (("as spectok.encode batches it", plan),
                          ("one pass of all rows", [list(range(batch_size))])):
        inputs = [to_batch([prepared[k] for k in g], patch_size).model_inputs() for g in groups]
        counter = FlopCounterMode(display=False)
        with counter:   # with autograd on: the counter's module hooks need it
            _forward(model, inputs)
        forward, products = [], []
        with torch.inference_mode():
            for _ in range(repeats):
                forward.append(_timed(device, _forward, model, inputs))
                while sum(w for w, _ in products[-50:]) < forward[-1][0] or len(products) < 1:
                    products.append(_timed(device, torch.mm, a, b))
        gflop = counter.get_total_flops() / 1e9
        wall, cpu = np.median(forward, axis=0)
        matmul_wall, matmul_cpu = np.median(products, axis=0)
        results[label] = {"passes": len(groups), "gflop": gflop, "seconds": float(wall),
                          "gflops_per_second": gflop / wall,
                          "gflops_per_cpu_second": gflop / cpu,
                          "matmul_gflops_per_second": matmul_gflop / matmul_wall,
                          "matmul_gflops_per_cpu_second": matmul_gflop / matmul_cpu}
    return results


def _timed(device, function, *args):
    """(wall, CPU) seconds of one call, to the end of the work it queued on ``device``."""
    start, start_cpu = time.perf_counter(), time.process_time()
    function(*args)
    synchronize(device)
    return time.perf_counter() - start, time.process_time() - start_cpu


def _memory_kb(field):
    """``VmRSS`` (resident now) or ``VmHWM`` (resident peak) of this process, in kB (Linux)."""
    with open("/proc/self/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith(field + ":")))


def measure_length(n_pixels, threads, repeats, device):
    """Time and peak memory of encoding one ``n_pixels`` spectrum (run in a fresh process).

    On CPU the peak is the resident high-water mark (``VmHWM``), reset just
    before the first encoding of this length, so that imports and warm-up do
    not count; on a GPU it is the peak of memory allocated on the device
    (`torch.cuda.max_memory_allocated`), reset likewise.
    """
    torch.set_num_threads(threads)
    model = spectok.get_model(device=device)
    spectrum = synthetic(n_pixels)
    spectok.encode(synthetic(1000), model=model, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device) / 2**10
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")   # resets VmHWM to the current resident size
        baseline = _memory_kb("VmRSS")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = spectok.encode(spectrum, model=model, device=device)
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated(device) / 2**10 if device.type == "cuda"
            else _memory_kb("VmHWM"))
    return {"pixels": n_pixels, "patches": tokens.n_patches, "seconds": float(np.median(times)),
            "peak_mb": peak / 1024, "added_mb": (peak - baseline) / 1024,
            "finite": bool(np.isfinite(tokens.embedding).all())}


def length_scaling(lengths, threads, repeats, device):
    """`measure_length` for each length, each in its own process."""
    rows = []
    for n in lengths:
        out = subprocess.run([sys.executable, __file__, "--length", str(n), "--threads",
                              str(threads), "--repeats", str(repeats), "--device", device.type],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  {n:7d} pixels: {rows[-1]['seconds']:.3f} s, peak {rows[-1]['peak_mb']:.0f} MB "
              f"(+{rows[-1]['added_mb']:.0f} MB)", flush=True)
    return rows


def exponent(rows, key, low=10_000):
    """Slope of log ``key`` against log pixels, from ``low`` pixels up."""
    chosen = [r for r in rows if r["pixels"] >= low and r[key] > 0]
    if len(chosen) < 2:
        return float("nan")
    return float(np.polyfit(np.log([r["pixels"] for r in chosen]),
                            np.log([r[key] for r in chosen]), 1)[0])


def local_against_global(model, lengths):
    """How far local attention moves tokens and embeddings from global attention.

    Both run in float32 on any device, so that the difference is the
    attention's alone; each is timed after an untimed call.
    """
    dense = copy.deepcopy(model)
    dense.config = dataclasses.replace(model.config, full_attention_limit=10**9)
    device = next(model.parameters()).device
    rows = []
    for n in lengths:
        batch = to_batch([prepare_spectrum(synthetic(n, seed=1))], model.config.patch_size)
        inputs = [t.to(device) for t in batch.model_inputs()]
        with torch.inference_mode():
            local, full = model.encode(*inputs), dense.encode(*inputs)
            local_seconds, _ = _timed(device, model.encode, *inputs)
            full_seconds, _ = _timed(device, dense.encode, *inputs)
        a, b = local["embedding"][0], full["embedding"][0]
        tokens, full_tokens = local["tokens"], full["tokens"]
        rows.append({"pixels": n, "patches": tokens.shape[1],
                     "embedding_error": float((a - b).norm() / b.norm()),
                     "cosine": float(torch.nn.functional.cosine_similarity(a, b, dim=0)),
                     "token_error": float((tokens - full_tokens).norm() / full_tokens.norm()),
                     "local_seconds": local_seconds, "global_seconds": full_seconds})
    return rows


def training_throughput(steps, device):
    """Seconds per optimiser step of the small configuration, and spectra per second.

    The configuration is ``spectok/data/spectok-small-stage8.toml`` (the last
    stage that trained every parameter); its data come from
    its ``miles`` source only (building every source takes minutes), observed
    through that source's instruments. Views are cropped to
    ``max_view_pixels`` whatever the source, so the step cost is representative.
    On a GPU the step runs under bfloat16 autocast, as `spectok.training.train`
    runs it.
    """
    from spectok.model import SpectralTokenizer
    from spectok.training import TrainingObjective, load_config
    from spectok.training.config import SourceConfig
    from spectok.training.data import TrainingStream, build_sources
    from spectok.training.loop import _to_device

    path = resources.files("spectok") / "data" / "spectok-small-stage8.toml"
    config = load_config(path)
    miles = [s for s in config.sources if s.name == "miles"] or [SourceConfig("miles")]
    config = dataclasses.replace(config, sources=tuple(miles))
    torch.manual_seed(config.seed)
    model = SpectralTokenizer(config.tokenizer_config()).to(device).train()
    objective = TrainingObjective(model, config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    stream = TrainingStream(build_sources(config.sources), config, model.config.patch_size)
    data_times, step_times = [], []
    for step in range(steps + 1):
        start = time.perf_counter()
        view_a, view_b = stream.batch(step)
        data_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        with autocast(device):
            loss, _ = objective(_to_device(view_a, device), _to_device(view_b, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        synchronize(device)
        step_times.append(time.perf_counter() - start)
    seconds = float(np.median(step_times[1:]))
    return {"config": "spectok/data/spectok-small-stage8.toml", "batch_size": config.batch_size,
            "max_view_pixels": config.max_view_pixels, "steps": steps,
            "seconds_per_step": seconds, "data_seconds_per_step": float(np.median(data_times[1:])),
            "pairs_per_second": config.batch_size / seconds,
            "spectra_per_second": 2 * config.batch_size / seconds}


def run_peers(python, threads, batch_sizes, seconds, device):
    """The peers' results from ``benchmarks/peers.py`` run by ``python``, one peer at a time.

    A peer that fails is reported with the end of its error output instead of
    stopping the suite.
    """
    results, failed = [], {}
    for peer in PEERS:
        out = subprocess.run([python, str(Path(__file__).with_name("peers.py")), "--json",
                              "--peers", peer, "--threads", str(threads), "--seconds",
                              str(seconds), "--device", device.type,
                              "--batch-sizes", *map(str, batch_sizes)],
                             capture_output=True, text=True)
        if out.returncode:
            failed[peer] = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "?"
            print(f"  {peer} failed: {failed[peer]}", flush=True)
            continue
        results += json.loads(out.stdout.strip().splitlines()[-1])["results"]
    return {"results": results, "failed": failed}


# -- the report ------------------------------------------------------------------------------

def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def _sharing(r):
    """What the load average says about other work on the machine during the run."""
    load = max(r["machine"]["load_average"][0], r["load_average_end"][0])
    if load > r["machine"]["threads"] + 0.5:
        return ("other processes were using the machine's cores too, so wall times are "
                "those of a shared machine.")
    return "no other process kept a core busy, so wall times are those of a quiet machine."


def _model_alone(r, peers, names):
    """A sentence comparing spectok's forward pass alone (no adapter) with the peers."""
    batch = r["flops_batch"]
    forward = batch / r["flops"]["as spectok.encode batches it"]["seconds"]
    ratios = "; ".join(f"{name} {_ratio(forward / peers[name, batch]['spectra_per_second'])}"
                       for name in names if (name, batch) in peers)
    return (f"spectok's model alone, timed nearly as the peers are (the forward pass of batch "
            f"{batch} from ready-made tensors, their copy to the device included, from the FLOP "
            "measurement below; no adapter, no result objects): "
            f"**{forward:.0f} spectra/s**" + (f" ({ratios})." if ratios else "."))


def _ratio(x):
    """``2.8x``, or two significant digits below 1 (``0.035x``)."""
    return f"{x:.1f}x" if x >= 1 else f"{x:.2g}x"


def _share(x):
    """A fraction as a percentage, with a decimal below 10 %."""
    return f"{x:.0%}" if x >= 0.1 else f"{x:.1%}"


def _machine_lines(r):
    """The report's description of the machine: CPU, or GPU, and the matmul ceiling."""
    m, mm = r["machine"], r["matmul"]
    cpu = (f"{m['cpu']}, {m['cores']} cores (`lscpu`); Python {m['python']}, torch {m['torch']}; "
           f"**{m['threads']} torch thread(s)** (`torch.set_num_threads`; "
           f"`OMP_NUM_THREADS={m['omp_num_threads']}`)")
    if m.get("device") == "cuda":
        f32 = r["matmul_float32"]
        return [
            f"- **GPU: {m['gpu']}**, {m['gpu_memory_gib']:.0f} GiB, {m['multiprocessors']} "
            f"multiprocessors, CUDA {m['cuda']}. spectok and the peers run on the GPU; "
            "`spectok.encode` and training use bfloat16 autocast there, the peers run as "
            "published (float32). Times are taken after `torch.cuda.synchronize`.",
            f"- Host: {cpu}; load average (1 min) at start {m['load_average'][0]:.2f}, at end "
            f"{r['load_average_end'][0]:.2f}.",
            f"- Measured matrix-multiplication rate (`torch.mm` of {mm['size']}² matrices, "
            f"median over 3 s): **{mm['gflops_per_second'] / 1e3:.0f} TFLOP/s in {mm['dtype']}**"
            f", {f32['gflops_per_second'] / 1e3:.0f} TFLOP/s in float32.",
        ]
    return [
        f"- CPU: {cpu}.",
        f"- Load average (1 min) at start {m['load_average'][0]:.2f}, at end "
        f"{r['load_average_end'][0]:.2f}: {_sharing(r)} Where it helps, rates per "
        "CPU-second of this process are given too: they leave out the time spent waiting "
        "for a core, but not the slowdown of sharing caches and memory.",
        f"- Measured fp32 matrix-multiplication rate (`torch.mm` of {mm['size']}² matrices, "
        f"median over 3 s, {m['threads']} thread(s)): **{mm['gflops_per_second']:.1f} GFLOP/s** "
        f"by wall clock, {mm['gflops_per_cpu_second']:.1f} per CPU-second (best single "
        f"product: {mm['best_gflops_per_second']:.1f}).",
    ]


def report(r):
    """The Markdown report of a run's results (the dictionary that ``-o`` saves as JSON)."""
    gpu = r["machine"].get("device") == "cuda"
    out = [
        "# spectok performance" + (f" on {r['machine']['gpu']}" if gpu else ""),
        "",
        f"Produced by `{r['command']}` on {r['date']}.",
        "",
        "## Machine",
        "",
        *_machine_lines(r),
        "",
        "## Encode throughput (spectra/s)",
        "",
        "`spectok.encode` on `specutils` spectra (adapter, model and result objects "
        "included), shipped model `spectok-small`. Median over repeated calls.",
        "",
    ]
    sizes = sorted({row["batch_size"] for row in r["encode"]})
    by = {(row["instrument"], row["batch_size"]): row for row in r["encode"]}
    instruments = list(dict.fromkeys(row["instrument"] for row in r["encode"]))
    out.append(_table(["spectra", "pixels"] + [f"batch {b}" for b in sizes],
                      [[i, by[i, sizes[0]]["pixels"]]
                       + [f"{by[i, b]['spectra_per_second']:.1f}" for b in sizes]
                       for i in instruments]))
    sdss = {b: by["sdss", b]["spectra_per_second"] for b in sizes if ("sdss", b) in by}
    out += ["", f"Single-spectrum latency (SDSS, batch 1): **{1e3 / sdss[1]:.1f} ms** "
            f"({1e3 / by['sdss', 1]['spectra_per_cpu_second']:.1f} ms of CPU time).", ""]

    out += ["## Peers (same run, same " + ("GPU)" if gpu else "threads)"), ""]
    for peer, error in r.get("peers", {}).get("failed", {}).items():
        out += [f"- {peer} did not run: `{error}`", ""]
    if r.get("peers", {}).get("results"):
        peer_rows = r["peers"]["results"]
        peer_sizes = sorted({p["batch_size"] for p in peer_rows})
        names = list(dict.fromkeys(p["name"] for p in peer_rows))
        pb = {(p["name"], p["batch_size"]): p for p in peer_rows}
        rows = [["spectok (SDSS, 4,608 px)"] + [f"{sdss[b]:.1f}" if b in sdss else "-"
                                                 for b in peer_sizes] + ["-"]]
        for name in names:
            pixels = pb[name, peer_sizes[0]]["pixels"]
            ratio = [_ratio(sdss[b] / pb[name, b]['spectra_per_second']) for b in peer_sizes
                     if b in sdss]
            rows.append([f"{name} ({pixels:,} px)"]
                        + [f"{pb[name, b]['spectra_per_second']:.2f}" for b in peer_sizes]
                        + [", ".join(ratio)])
        out.append(_table(["encoder"] + [f"batch {b}" for b in peer_sizes]
                          + ["spectok ÷ peer (per batch size)"], rows))
        big = max(b for b in peer_sizes if b in sdss)
        cpu = by["sdss", big]["spectra_per_cpu_second"]
        out += ["", f"Per CPU-second at batch {big}: spectok {cpu:.1f} spectra; "
                + "; ".join(f"{name} {pb[name, big]['spectra_per_cpu_second']:.2f} "
                            f"({_ratio(cpu / pb[name, big]['spectra_per_cpu_second'])})"
                            for name in names) + "."]
        out += ["", "Peers are built at their published configurations with random weights "
                "and timed on ready-made tensors (no reading, no unit handling), which favours "
                "them; spectok's times include its adapter. See `benchmarks/peers.py` for what "
                "each peer computes.", "", _model_alone(r, pb, names), ""]
    else:
        out += ["Not measured in this run (no `--peers-python`).", ""]

    memory = ("peak GPU memory allocated while encoding (`torch.cuda.max_memory_allocated`, "
              "reset after warm-up), and the memory added by the encoding (that peak minus "
              "what was allocated just before: the model)" if gpu else
              "peak resident memory of the process while encoding (`VmHWM`, reset after imports "
              "and warm-up), and the memory added by the encoding (that peak minus the "
              "resident size just before)")
    out += ["## Cost against length", "",
            "One synthetic spectrum of 3,700-9,500 Å per length, encoded with `spectok.encode` "
            f"in a fresh process: median wall time, {memory}.", ""]
    out.append(_table(["pixels", "patches", "time (s)", "µs / pixel",
                       "peak GPU (MB)" if gpu else "peak RSS (MB)", "added (MB)"],
                      [[f"{x['pixels']:,}", x["patches"], f"{x['seconds']:.3f}",
                        f"{1e6 * x['seconds'] / x['pixels']:.1f}", f"{x['peak_mb']:.0f}",
                        f"{x['added_mb']:.0f}"] for x in r["lengths"]]))
    out += ["", f"Fitted exponent from 10,000 pixels up: time **{r['time_exponent']:.2f}**, "
            f"added memory **{r['memory_exponent']:.2f}**.", "",
            "Beyond 1,024 patches (32,768 pixels) the encoder attends locally (blocks of 256 "
            "patches see 512 patches key by key and the rest of the spectrum through one "
            "summary per 128 patches). Distance from global attention where both run:", ""]
    out.append(_table(["pixels", "patches", "embedding rel. error", "cosine",
                       "token rel. error", "local (s)", "global (s)"],
                      [[f"{x['pixels']:,}", x["patches"], f"{x['embedding_error']:.3f}",
                        f"{x['cosine']:.4f}", f"{x['token_error']:.3f}",
                        f"{x['local_seconds']:.3g}", f"{x['global_seconds']:.3g}"]
                       for x in r["local"]]))

    t = r["training"]
    out += ["", "## Training throughput", "",
            f"`{t['config']}` (model `small`, batch {t['batch_size']} pairs of views, views "
            f"cropped to {t['max_view_pixels']} pixels), one AdamW step of the reconstruction + "
            f"consistency objective (`spectok.training.TrainingObjective`), median of "
            f"{t['steps']} steps: **{t['seconds_per_step']:.2f} s/step**, "
            f"**{t['spectra_per_second']:.1f} spectra/s** ({t['pairs_per_second']:.1f} pairs/s); "
            f"making the batch takes another {t['data_seconds_per_step']:.2f} s/step (done by "
            "DataLoader workers in training). Data from the configuration's `miles` source.", ""]

    out += [f"## Forward pass against the matmul ceiling (SDSS, batch {r['flops_batch']})", ""]
    out += ["FLOPs counted by `torch.utils.flop_counter.FlopCounterMode` (matrix products "
            "and attention; element-wise work is free). Medians over repeats; each forward "
            f"pass is followed by {r['matmul']['size']}² `torch.mm` products in "
            f"{r['matmul'].get('dtype', 'float32')} for as long, which give the ceiling under "
            "the same load.",
            ""]
    out.append(_table(["forward pass", "passes", "GFLOP", "time (s)", "GFLOP/s",
                       "matmul GFLOP/s", "of matmul rate", "per CPU-second"],
                      [[label, f["passes"], f"{f['gflop']:.1f}", f"{f['seconds']:.3f}",
                        f"{f['gflops_per_second']:.1f}", f"{f['matmul_gflops_per_second']:.1f}",
                        _share(f['gflops_per_second'] / f['matmul_gflops_per_second']),
                        _share(f['gflops_per_cpu_second'] / f['matmul_gflops_per_cpu_second'])]
                       for label, f in r["flops"].items()]))
    out += ["", "## Targets (issue 7)", ""]
    if gpu:
        return "\n".join(out + ["The targets are set for the CPU: see `RESULTS.md`.", ""])
    out += ["Judged by wall clock; the last column gives the same quantity per CPU-second of "
            "the measured process (time waiting for a core left out).", ""]
    out.append(_table(["target", "measured", "", "per CPU-second"], targets(r)))
    return "\n".join(out) + "\n"


def targets(r):
    """Rows of (target, measured value, met or missed, the value per CPU-second)."""
    by = {(row["instrument"], row["batch_size"]): row for row in r["encode"]}
    rows = []

    def add(name, value, ok, cpu_value):
        rows.append([name, value, "met" if ok else "**missed**", cpu_value])
    if ("sdss", 64) in by and r.get("peers"):
        peers = {p["peer"]: p for p in r["peers"]["results"] if p["batch_size"] == 64}
        for key, label, factor in (("spender", "spender's encoder", 2),
                                   ("aion", "AION-1 codec", 25), ("specformer", "SpecFormer", 25)):
            if key in peers:
                ratio = by["sdss", 64]["spectra_per_second"] / peers[key]["spectra_per_second"]
                cpu_ratio = (by["sdss", 64]["spectra_per_cpu_second"]
                             / peers[key]["spectra_per_cpu_second"])
                add(f"SDSS batch 64 ≥ {factor}× {label}", f"{ratio:.1f}×", ratio >= factor,
                    f"{cpu_ratio:.1f}×")
    if ("sdss", 1) in by:
        latency = 1e3 / by["sdss", 1]["spectra_per_second"]
        add("single-spectrum latency < 20 ms", f"{latency:.1f} ms", latency < 20,
            f"{1e3 / by['sdss', 1]['spectra_per_cpu_second']:.1f} ms")
    forward = r["flops"]["as spectok.encode batches it"]
    share = forward["gflops_per_second"] / forward["matmul_gflops_per_second"]
    add(f"forward ≥ 50 % of matmul rate (batch {r['flops_batch']})", f"{share:.0%}",
        share >= 0.5,
        f"{forward['gflops_per_cpu_second'] / forward['matmul_gflops_per_cpu_second']:.0%}")
    add("time exponent ≤ 1.1 (10k-200k px)", f"{r['time_exponent']:.2f}",
        r["time_exponent"] <= 1.1, "")
    add("memory exponent ≤ 1.1 (10k-200k px)", f"{r['memory_exponent']:.2f}",
        r["memory_exponent"] <= 1.1, "")
    longest = max(r["lengths"], key=lambda x: x["pixels"])
    add(f"{longest['pixels']:,}-pixel spectrum in < 4 GB", f"{longest['peak_mb']:.0f} MB peak",
        longest["peak_mb"] < 4096, "")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer sizes, repeats")
    parser.add_argument("--peers-python", help="python of the environment with the peers")
    parser.add_argument("-o", "--output", help="write the Markdown report here too")
    parser.add_argument("--device", default="cpu",
                        help="'cpu' (default) or 'cuda': where spectok and the peers run")
    parser.add_argument("--from-json", metavar="RESULTS_JSON",
                        help="measure nothing: print the report of a saved run (the .json "
                             "that -o writes beside the Markdown)")
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    device = torch.device(args.device)
    if args.from_json:
        text = report(json.loads(Path(args.from_json).read_text()))
        print(text)
        if args.output:
            Path(args.output).write_text(text)
        return
    if args.length:
        print(json.dumps(measure_length(args.length, args.threads, args.repeats, device)))
        return

    quick = args.quick
    results = {"machine": machine(args.threads, device),
               "date": time.strftime("%Y-%m-%d %H:%M %Z"),
               "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} python "
                          "benchmarks/performance.py " + " ".join(sys.argv[1:])}
    print("matmul ceiling", flush=True)
    results["matmul"] = matmul_rate(device, seconds=1.0 if quick else 3.0)
    if device.type == "cuda":
        results["matmul_float32"] = matmul_rate(device, torch.float32, 1.0 if quick else 3.0)
    print("spectra", flush=True)
    libraries = {"miles": load_miles().spectra[:64],
                 "atmospheres": load_model_atmospheres().spectra[:64]}
    pools = {name: spectra(name, libraries[library], 8 if quick else 32)
             for name, library in INSTRUMENTS.items()}
    model = spectok.get_model(device=device)
    batch_sizes = [1, 16] if quick else [1, 16, 64, 256]
    print("encode throughput", flush=True)
    results["encode"] = encode_throughput(model, pools, batch_sizes, 2.0 if quick else 8.0)
    print("forward FLOPs", flush=True)
    results["flops_batch"] = 16 if quick else 64
    results["flops"] = forward_flops(model, pools["sdss"], results["flops_batch"],
                                     1 if quick else 5)
    print("length scaling", flush=True)
    results["lengths"] = length_scaling(QUICK_LENGTHS if quick else LENGTHS, args.threads,
                                        1 if quick else 3, device)
    results["time_exponent"] = exponent(results["lengths"], "seconds")
    results["memory_exponent"] = exponent(results["lengths"], "added_mb")
    print("local against global attention", flush=True)
    results["local"] = local_against_global(model, [40_000] if quick else [40_000, 65_536])
    print("training", flush=True)
    results["training"] = training_throughput(1 if quick else 5, device)
    if args.peers_python:
        print("peers", flush=True)
        peer_sizes = [1, 4] if quick else [1, 16, 64] + ([256] if device.type == "cuda" else [])
        results["peers"] = run_peers(args.peers_python, args.threads, peer_sizes,
                                     1.0 if quick else 8.0, device)
    results["load_average_end"] = os.getloadavg()
    text = report(results)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
        Path(args.output).with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
