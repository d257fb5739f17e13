"""`run_benchmark`: every task, on a model and its two baselines, in one call."""

from contextlib import contextmanager

import torch

from .._checks import check_names, is_integer
from .context import BenchmarkContext, _check_run_arguments
from .tasks import TASKS, _run_task
from .template_redshift import TemplateRedshiftFit

_FIT = TemplateRedshiftFit()  # the settings the tasks use: the defaults

__all__ = ["run_benchmark", "benchmark_threads"]


def run_benchmark(model=None, tasks=None, quick=False, seed=0, num_threads=None):
    """Run the spectok benchmark on a model and two baselines.

    Every task fits the same probes (`spectok.probes`, fixed seeds) on three
    kinds of features and reports them side by side. Each probe picks its
    head by cross-validation on the training set (``head="auto"``), so every
    method gets the head that suits it; the star/galaxy/quasar probe, whose
    classes are unequally many, is a logistic regression with balanced class
    weights instead. The features:

    * ``spectok`` — embeddings of the model under test;
    * ``untrained`` — embeddings of the same architecture with random
      (seeded) weights: what pretraining buys;
    * ``flux_pca`` — normalised flux resampled onto a fixed log-λ grid per
      task and its principal components: the classic approach;

    and two classical references without a probe, each for its own task:

    * ``template_fit`` — `TemplateRedshiftFit`, the classical χ² fit of
      eigen-templates over trial redshifts, with its time per spectrum (the
      two redshift tasks);
    * ``matched_chi2`` — `matched_chi2`: the sharper view of each object
      observed again through the coarser instrument, and every candidate's
      χ² against it (cross-instrument twins).

    Tasks (`TASKS`):

    ``stellar_parameters``
        MILES stars split by star: RMSE and MAE of Teff (K), log g and
        [Fe/H] (dex), and the coverage of 68 % and 95 % conformal intervals.
    ``spectral_types``
        SpeX prism spectra split by source: M/L/T accuracy, mean size of 90 %
        conformal prediction sets; RMSE, MAE and fraction within ±1 of the
        numeric subtype, predicted as the median type of a
        `~spectok.probes.SpectralClassProbe` over the subtypes that at least
        `~spectok.probes.AUTO_FOLDS` training sources have
        (`~spectok.probes.SpectralClassProbe.predict_quantile`).
    ``redshift``
        Probe trained on simulated galaxies observed with SDSS, DESI and
        LAMOST (0 ≤ z ≤ 1.2); tested on held-out simulated galaxies (σ_NMAD
        and outlier rate of Δz/(1+z), interval coverage) and on the real
        DESI (2) and MaNGA (7 usable) examples.
    ``object_classes``
        Star / galaxy / quasar classification (mean per-class accuracy and
        each class's accuracy) of MILES test stars and held-out simulated
        galaxies and quasars observed with SDSS and with DESI, all cropped to
        3700-7400 Å so that coverage cannot give a star away (the probe's
        classes weighted equally, as the score does); and, object by
        object, the probability of the true class for the real DESI and
        MaNGA galaxies and the real optical quasars.
    ``quasar_redshift``
        Probe trained on simulated SDSS and DESI quasars (0.1 ≤ z ≤ 4.5),
        tested on held-out ones: σ_NMAD and outlier rate of Δz/(1+z), R².
    ``cross_instrument``
        MILES test stars observed through SDSS, LAMOST and Gaia XP, and
        simulated galaxies through SDSS and DESI: rank of the true twin
        among all candidates by cosine similarity of the features, and by
        χ² at matched resolution (median, top-1 rate).
    ``reconstruction``
        Median reduced χ² of reconstructions against the data errors per
        domain (optical and near-IR stars, simulated and real galaxies,
        simulated quasars), with nothing hidden and on 10 % of patches hidden from the
        encoder (inpainting). For flux + PCA, the spectrum is fitted by
        its components on the task grid and interpolated back.

    Parameters
    ----------
    model : `~spectok.model.SpectralTokenizer` or str, optional
        The model under test (default: the shipped ``spectok.conf.default_model``).
    tasks : sequence of str, optional
        Names from `TASKS` (default: all).
    quick : bool
        Small subsets of every data set, for tests (well under a minute
        with the tiny model); numbers from it are noisy.
    seed : int
        Seed of subsets, simulated galaxies and noise, probes and the
        untrained baseline.
    num_threads : int, optional
        Torch threads for the models during the run, threads for the probes'
        cross-validation and processes (at most 8) for the simulated
        galaxies and quasars (default: leave torch's setting). On a
        machine that other jobs keep busy, 1 is much faster than one per
        core (measured 3.5× on a loaded 2-core machine).

    Returns
    -------
    `~spectok.benchmarks.BenchmarkReport`
        Its ``figures`` hold one figure per task, drawn by
        `~spectok.benchmarks.BenchmarkReport.save_figures`.
        ``.table`` has one row per metric; `~spectok.benchmarks.format_report`
        makes it markdown.

    Raises
    ------
    TypeError
        ``tasks`` is one string (or another non-list), or holds a non-string.
    ValueError
        An unknown task name, ``tasks`` that name none or one twice,
        ``quick`` not a bool, ``seed`` not a non-negative integer or
        ``num_threads`` not a positive integer (all checked before any work).
    spectok.datasets.WheelFetchError
        The published data cannot be fetched.

    Examples
    --------
    >>> from spectok.benchmarks import run_benchmark
    >>> report = run_benchmark(tasks=["spectral_types"], quick=True,
    ...                        num_threads=1)  # doctest: +REMOTE_DATA
    >>> report.table["metric"][0]  # doctest: +REMOTE_DATA
    np.str_('M/L/T accuracy')
    """
    from ..encode import get_model

    names = list(TASKS if tasks is None else
                 check_names(tasks, TASKS, "tasks", "benchmark tasks", single=False))
    _check_run_arguments(quick, seed, num_threads)
    net = get_model(model, "cpu")
    ctx = BenchmarkContext(net, quick=quick, seed=seed)
    ctx.report.meta["tasks"] = names
    ctx.report.meta["notes"] = [
        "Methods: *spectok* — the pooled embedding of the model under test followed by its "
        "tokens aligned on wavelength bins ~5 % wide over the task's range "
        "(`SpectrumEmbedder(wavelength_bins=...)`); *untrained* — the same features from the "
        "same architecture with random weights (what pretraining buys); *flux + PCA* — flux "
        "divided by its median, resampled onto a fixed log-λ grid per task, and its leading "
        "64 principal components fitted on the training spectra (gaps filled by a "
        "least-squares fit of the components). Every method feeds the same probes "
        "(fixed seeds), each with the head that 3-fold cross-validation on the training set "
        "chooses (`head=\"auto\"`; the star/galaxy/quasar probe: logistic regression with "
        "balanced class weights); every probe is fitted on the whole training set, and the "
        "intervals and prediction sets reported are calibrated out of fold "
        "(`calibration=\"cv\"`, 5 parts); splits are by object. *template fit* (redshift tasks "
        f"only) — no probe: χ² over trial redshifts of {_FIT.n_templates} eigen-templates "
        f"plus a degree-{_FIT.poly_degree} polynomial, the templates learnt from noiseless "
        "rest-frame models of the same simulator that made the test galaxies and quasars, so "
        "on simulations it is an optimistic reference. *matched χ²* (cross-instrument twins "
        "only) — no features: each object's sharper view is observed again through the "
        "coarser instrument (`matched_chi2`) and every candidate is ranked by its reduced χ² "
        "against it with a free flux scale, which keeps every resolution element both "
        "instruments see: the reference an embedding's nearest neighbour is read against.",
        "Reconstruction: median over spectra of the reduced χ² of the reconstruction against "
        "the data errors, with nothing hidden, and on the pixels of 10 % of patches hidden "
        "from the encoder (flux + PCA: those pixels left out of the fit). For flux + PCA only "
        "pixels inside the task grid count.",
    ]
    with benchmark_threads(num_threads):
        ctx.report.meta["torch_threads"] = torch.get_num_threads()
        for name in names:
            _run_task(ctx, name)
    return ctx.report


@contextmanager
def benchmark_threads(num_threads=None):
    """The benchmark's thread settings: ``num_threads`` torch threads, one BLAS thread.

    Small matrix products dominate the probes and flux + PCA's coefficients;
    one BLAS thread is much faster for them on a busy machine (the model runs
    on torch's own threads, and flux + PCA's one large SVD per task on as
    many BLAS threads). Instead, scikit-learn's parallel work -- every
    (option, fold) fit with which ``head="auto"`` scores the heads -- runs in
    as many threads as torch uses (joblib's threading backend; the heads'
    linear algebra releases the GIL). Torch's previous thread count is
    restored on exit.

    Parameters
    ----------
    num_threads : int, optional
        Torch threads, and threads for scikit-learn's parallel work; default:
        leave torch's setting.

    Examples
    --------
    >>> import torch
    >>> from spectok.benchmarks import benchmark_threads
    >>> before = torch.get_num_threads()
    >>> with benchmark_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    from joblib import parallel_config
    from threadpoolctl import threadpool_limits

    if num_threads is not None and (not is_integer(num_threads) or num_threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        with threadpool_limits(limits=1, user_api="blas"), \
                parallel_config(backend="threading", n_jobs=torch.get_num_threads()):
            yield
    finally:
        torch.set_num_threads(threads)
