"""Tests of spectok.benchmarks and ``spectok bench``.

The pieces are tested on synthetic spectra; the whole benchmark runs once in
quick mode on the tiny model, which needs the published data wheels
(``remote_data``).
"""

import sys

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import StdDevUncertainty
from astropy.table import Table
from specutils import Spectrum

from spectok.adapter import prepare_spectrum
from spectok.benchmarks import (METHODS, TASKS, BenchmarkReport, EmbeddingMethod, benchmark_threads,
                                FluxPCAMethod, choose_hidden_patches, compare_heads,
                                diagonal_ranks,
                                format_report, log_grid, matched_chi2, resample_to_grid,
                                run_benchmark, token_bins)
from spectok.cli import main
from spectok.model import CONFIGS, SpectralTokenizer
from spectok.probes import HEADS



def test_token_bins_take_any_spectral_quantity():
    in_angstrom = token_bins(10_000.0, 20_000.0)
    np.testing.assert_allclose(token_bins(1 * u.um, 2 * u.um).value, in_angstrom.value)
    np.testing.assert_allclose(token_bins(299.792458 * u.THz, 149.896229 * u.THz).value,
                               in_angstrom.value, rtol=1e-9)
    with pytest.raises(u.UnitConversionError):
        token_bins(1 * u.s, 2 * u.s)


def _lined_star(centres, depth=0.4):
    """A flat spectrum with Gaussian absorption lines (σ 30 Å) at ``centres``."""
    lam = np.linspace(3500.0, 7500.0, 20_000)
    flux = 1.0 - sum(depth * np.exp(-0.5 * ((lam - c) / 30.0) ** 2) for c in centres)
    return Spectrum(spectral_axis=lam * u.AA, flux=flux * u.Unit("erg/(s cm2 AA)"))


def test_matched_chi2_finds_twins_at_any_scale():
    from spectok.datasets import observe

    stars = [_lined_star(c) for c in ([4300, 5200], [4300, 5300], [4400, 6500], [5900])]
    sdss = [observe(s, "sdss", snr=50, rng=i) for i, s in enumerate(stars)]
    xp = [observe(s * f, "gaia_xp", snr=50, rng=10 + i)
          for i, (s, f) in enumerate(zip(stars, (1.0, 3.0, 0.5, 20.0)))]
    chi2 = matched_chi2(sdss, xp, "gaia_xp")
    assert chi2.shape == (4, 4)
    assert np.all(diagonal_ranks(-chi2) == 1)
    assert np.all(np.diag(chi2) < 3)  # the twin fits to the noise, whatever its scale
    assert np.all(chi2[~np.eye(4, dtype=bool)] > 2 * np.diag(chi2).max())
    desi = [observe(stars[0], "desi", snr=50, rng=20)]
    np.testing.assert_allclose(matched_chi2(desi, xp[:1], "gaia_xp"),
                               matched_chi2(sdss[:1], xp[:1], "gaia_xp"), rtol=0.2)
    with pytest.raises(ValueError, match="not all on one grid"):
        matched_chi2(sdss, [xp[0], sdss[1]], "gaia_xp")
    shifted = Spectrum(spectral_axis=xp[1].spectral_axis * 1.01, flux=xp[1].flux,
                       uncertainty=xp[1].uncertainty)  # as many pixels, other wavelengths
    with pytest.raises(ValueError, match="not all on one grid"):
        matched_chi2(sdss, [xp[0], shifted], "gaia_xp")
    with pytest.raises(ValueError, match="not on the pixels of 'gaia_xp'"):
        matched_chi2(xp, sdss, "gaia_xp")
    with pytest.raises(ValueError, match="at least one view"):
        matched_chi2([], xp, "gaia_xp")
    no_errors = Spectrum(spectral_axis=xp[0].spectral_axis, flux=xp[0].flux)
    with pytest.raises(ValueError, match="has no uncertainty"):
        matched_chi2(sdss, [no_errors], "gaia_xp")


def test_resample_to_grid():
    wave = np.concatenate([np.linspace(4000, 4500, 201), np.linspace(4700, 5000, 101)])
    flux = 1.0 + (wave - 4000) / 1000
    mask = np.zeros(wave.size, bool)
    mask[100:120] = True  # 4250-4297.5 Å
    spectrum = Spectrum(spectral_axis=wave * u.AA, flux=flux * u.one, mask=mask,
                        uncertainty=StdDevUncertainty(0.01 * flux))
    prepared = prepare_spectrum(spectrum)
    grid = log_grid(3900.0, 5100.0, 5e-4)
    out = resample_to_grid(prepared, grid) * prepared.scale
    inside = ((grid > 4000) & (grid < 4245)) | ((grid > 4300) & (grid < 4500))
    np.testing.assert_allclose(out[inside], 1.0 + (grid[inside] - 4000) / 1000, rtol=1e-9)
    assert np.isnan(out[grid < 4000]).all() and np.isnan(out[grid > 5000]).all()
    assert np.isnan(out[(grid > 4252) & (grid < 4295)]).all()  # masked pixels
    assert np.isnan(out[(grid > 4505) & (grid < 4695)]).all()  # between the two ranges
    hidden = [np.zeros(wave.size, bool)]
    hidden[0][250:] = True
    assert np.isnan(resample_to_grid(prepared, grid, hidden)[grid > 4850]).all()  # 4847 Å on


def test_choose_hidden_patches(make_pair):
    prepared = [prepare_spectrum(make_pair(n=n, seed=n), patch_size=32) for n in (40, 300, 640)]
    patches, pixels = choose_hidden_patches(prepared, 0.1, 32, seed=0)
    assert [len(p) for p in patches] == [1, 1, 2]  # 2, 10 and 20 usable patches
    for p, chosen, masks in zip(prepared, patches, pixels):
        assert masks[0].shape == p.flux[0].shape
        assert masks[0].sum() == sum(min(32, len(p.flux[0]) - 32 * k) for k in chosen)
    again, _ = choose_hidden_patches(prepared, 0.1, 32, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(patches, again))
    one_patch = prepare_spectrum(make_pair(n=20), patch_size=32)
    assert len(choose_hidden_patches([one_patch], 0.5)[0][0]) == 0  # never hide everything


def test_methods_on_synthetic_spectra(tiny_model, make_pair):
    train = [make_pair(n=200, seed=s, relative_error=0.01) for s in range(30)]
    test = [make_pair(n=200, seed=100 + s, relative_error=0.01) for s in range(6)]
    grid = log_grid(4000.0, 5000.0, 2e-4)
    pca = FluxPCAMethod(grid, n_components=8).fit(train)
    assert pca.transform(test).shape == (6, 8)
    model = EmbeddingMethod(tiny_model, "tiny")
    assert model.transform(test).shape == (6, tiny_model.config.width)
    assert len(model.cache) == 6
    aligned = EmbeddingMethod(tiny_model, "tiny", token_bins(4000.0, 5000.0), cache=model.cache)
    x = aligned.transform(test)
    c = tiny_model.config
    assert x.shape == (6, c.width + 4 * c.token_dim) and len(model.cache) == 6   # no re-encoding
    np.testing.assert_array_equal(x[:, :c.width], model.transform(test))
    assert aligned.transform([]).shape == (0, c.width + 4 * c.token_dim)
    # one spectrum, not a list: its parts were taken for spectra (a Spectrum's pixels, without end)
    for call in (pca.fit, pca.transform, model.transform):
        with pytest.raises(TypeError, match="spectra must be a list of spectra, got one tuple"):
            call(test[0])
    with pytest.raises(ValueError, match="spectra is empty"):   # numpy's "need at least one"
        FluxPCAMethod(grid).fit([])
    # a map-style torch Dataset iterates through __getitem__ alone: taken as before
    subset = torch.utils.data.Subset(train, range(10))
    assert FluxPCAMethod(grid, n_components=4).fit(subset).transform(subset).shape == (10, 4)
    prepared = [prepare_spectrum(s, patch_size=32) for s in test]
    patches, pixels = choose_hidden_patches(prepared, 0.2, 32, seed=1)
    for method, hidden in ((model, patches), (pca, pixels)):
        chi2_all, chi2_hidden = method.reconstruction_chi2(prepared, hidden)
        assert chi2_all.shape == chi2_hidden.shape == (6,)
        assert np.all(np.isfinite(chi2_all)) and np.all(np.isfinite(chi2_hidden))
    # the spectra differ only by their noise: PCA reproduces them to about the noise
    assert np.median(pca.reconstruction_chi2(prepared, pixels)[0]) < 5


def test_context_prepares_each_spectrum_once(tiny_model, make_pair, monkeypatch):
    import spectok.adapter
    from spectok.benchmarks.context import BenchmarkContext

    calls = []
    prepare = spectok.adapter.prepare_spectrum
    for module in (spectok.adapter, spectok.adapter.prepare, spectok.adapter.batch):
        # wherever it is looked up: the package, prepare_spectra and to_batch
        monkeypatch.setattr(module, "prepare_spectrum",
                            lambda item, *a, **k: calls.append(item) or prepare(item, *a, **k))
    ctx = BenchmarkContext(tiny_model, quick=True)
    train = [make_pair(n=200, seed=s, relative_error=0.01) for s in range(12)]
    test = [make_pair(n=200, seed=100 + s, relative_error=0.01) for s in range(4)]
    first = ctx.features("miles", train, test)
    again = ctx.features("miles", train[:5], test)   # shared spectra: neither prepared again
    # each spectrum converted from its Spectrum once, for all three methods and both calls
    assert sorted(map(id, (c for c in calls if not isinstance(c, spectok.adapter.PreparedSpectrum)
                           ))) == sorted(map(id, train + test))
    for method in ("spectok", "untrained"):   # flux + PCA fits each call's training set
        x_train, (x_test,) = first[method]
        np.testing.assert_array_equal(again[method][0], x_train[:5])
        np.testing.assert_array_equal(again[method][1][0], x_test)
    # the same features as each method gives the spectra themselves
    spectok_method = ctx.methods("miles")[0]
    np.testing.assert_array_equal(EmbeddingMethod(tiny_model, "fresh", spectok_method.bin_edges)
                                  .transform(test), first["spectok"][1][0])
    pca = FluxPCAMethod(log_grid(3545.0, 7405.0, 1e-4)).fit(train)
    np.testing.assert_array_equal(pca.transform(test), first["flux_pca"][1][0])
    with pytest.raises(spectok.adapter.SpectrumInputError, match="spectrum 1"):
        ctx.prepared([test[0], "not a spectrum"])


def test_report_format():
    report = BenchmarkReport(meta={"model": "m", "seed": 3, "quick": False,
                                   "seconds": {"redshift": 12.0}})
    report.add("redshift", "coverage", {"spectok": 0.70, "untrained": 0.5, "flux_pca": 0.9},
               better="≈0.68", n=10)
    report.add("redshift", "NMAD", {"spectok": 0.05, "flux_pca": 0.02}, n=10)
    report.add("redshift", "rate", {m: 0.5 for m in METHODS}, better="higher", n=10)
    text = format_report(report)
    lines = text.splitlines()
    assert lines[0] == "spectok benchmark: model m, seed 3, full"
    assert "| **0.700** | 0.500 | 0.900 |" in lines[4]
    assert "| 0.050 | – | **0.020** |" in lines[5]
    assert "**" not in lines[6]  # a tie has no winner
    assert "total 12" in lines[-1]
    assert report.value("redshift", "NMAD", "flux_pca") == 0.02
    with pytest.raises(KeyError):
        report.value("redshift", "nope")
    assert str(report) == text


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown benchmark task"):
        run_benchmark(tasks=["stellar_parameters", "astrology"])
    with pytest.raises(SystemExit, match="unknown task"):
        main(["bench", "--tasks", "astrology"])


@pytest.mark.parametrize("arguments, message", [
    # each was taken, and the run started (or failed inside it)
    ({"tasks": []}, "tasks is empty"),   # an empty report
    ({"tasks": ["redshift", "spectral_types", "redshift"]},   # it ran, and was reported, twice
     r"tasks lists \['redshift'\] more than once"),
    ({"quick": "yes"}, "quick must be True or False, got 'yes'"),   # KeyError 'yes'
    ({"quick": None}, "quick must be True or False, got None"),     # the full run
    ({"seed": 1.5}, "seed must be a non-negative integer, got 1.5"),   # seed 1
    ({"seed": -1}, "seed must be a non-negative integer, got -1"),   # numpy's error, mid-run
    ({"num_threads": 2.7}, "num_threads must be a positive integer or None, got 2.7"),
    ({"num_threads": 0}, "num_threads must be a positive integer"),   # torch's RuntimeError
])
def test_bad_benchmark_arguments_are_refused_before_any_work(arguments, message, monkeypatch):
    from spectok.benchmarks import runner

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded: the arguments were not checked first")

    monkeypatch.setattr(sys.modules["spectok.encode"], "get_model", no_model)
    with pytest.raises(ValueError, match=message):
        runner.run_benchmark(**{"tasks": ["redshift"], **arguments})
    with pytest.raises(TypeError, match=r"tasks must be a list of names .* got 'redshift'"):
        runner.run_benchmark(tasks="redshift")   # read as tasks 'r', 'e', 'd', ...


def test_bad_head_comparison_arguments_are_refused_before_any_work(monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded: the arguments were not checked first")

    monkeypatch.setattr(sys.modules["spectok.encode"], "get_model", no_model)
    with pytest.raises(TypeError, match="comparisons must be a list of names .* got 'spex'"):
        compare_heads(comparisons="spex")
    with pytest.raises(ValueError, match=r"unknown benchmark heads \['forest'\]"):
        compare_heads(heads=["ridge", "forest"], comparisons=["spex"])
    with pytest.raises(ValueError, match=r"heads lists \['knn'\] more than once"):
        compare_heads(heads=["knn", "ridge", "knn"], comparisons=["spex"])
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got '0'"):
        compare_heads(seed="0", comparisons=["spex"])
    with pytest.raises(ValueError, match="num_threads must be a positive integer or None"):
        with benchmark_threads(-2):
            pass


#: The methods that feed every probe (the template fit only measures redshifts).
PROBED = ("spectok", "untrained", "flux_pca")


@pytest.fixture(scope="module")
def quick_report():
    torch.manual_seed(0)
    tiny = SpectralTokenizer(CONFIGS["tiny"]).eval()
    return run_benchmark(tiny, quick=True, seed=0, num_threads=1)


@pytest.mark.remote_data
def test_twins_ranked_among_more_candidates():
    from spectok.benchmarks.context import STAR_PAIRS, BenchmarkContext
    from spectok.benchmarks.tasks import galaxy_twin_ranks, star_twin_ranks

    torch.manual_seed(0)
    ctx = BenchmarkContext(SpectralTokenizer(CONFIGS["tiny"]), quick=True, seed=0)
    n_test = len(ctx.data.star_rows("test"))
    train, _ = ctx.data.miles_split(complete=False)
    extra_rows = train[:5]
    alone, _ = star_twin_ranks(ctx)
    among_more, _ = star_twin_ranks(ctx, extra_rows)
    assert list(among_more) == list(STAR_PAIRS)
    for pair in STAR_PAIRS:
        assert set(among_more[pair]) == {"spectok", "untrained", "flux_pca", "matched_chi2"}
        for method, ranks in among_more[pair].items():
            # the queries and their twins are the same: more candidates only push twins down
            assert len(ranks) == n_test and ranks.max() <= n_test + len(extra_rows)
            assert np.all(ranks >= alone[pair][method]), (pair, method)
    assert {len(r) for r in galaxy_twin_ranks(ctx, n=4).values()} == {4}
    test_star = ctx.data.star_rows("test")[0]
    with pytest.raises(ValueError, match=rf"extra_rows holds 1 test stars \(rows \[{test_star}\]"):
        star_twin_ranks(ctx, [test_star, *extra_rows])


@pytest.mark.remote_data
def test_quick_benchmark(quick_report):
    table = quick_report.table
    assert list(dict.fromkeys(table["task"])) == list(TASKS)
    assert table.colnames == ["task", "metric", "unit", "better", "n", *METHODS]
    counts = {task: int(np.sum(table["task"] == task)) for task in TASKS}
    assert counts == {"stellar_parameters": 11, "spectral_types": 5, "redshift": 17,
                      "object_classes": 20, "quasar_redshift": 4,
                      "cross_instrument": 8, "reconstruction": 10}
    # the metrics of the acceptance criteria (issue 5)
    for task, metric in (("stellar_parameters", "log10 Teff σ_MAD"),
                         ("stellar_parameters", "log g σ_MAD"),
                         ("stellar_parameters", "[Fe/H] σ_MAD"),
                         ("spectral_types", "subtype MAE"),
                         ("spectral_types", "fraction within ±1 subtype"),
                         ("redshift", "R² of z, simulated"),
                         ("redshift", "outliers |Δz|/(1+z) > 0.05"),
                         ("redshift", "DESI 39633345008634465: predicted z (true 0.3687)"),
                         ("object_classes", "mean per-class accuracy, sdss"),
                         ("object_classes", "mean per-class accuracy, desi"),
                         ("object_classes", "quasar PH957: P(quasar)"),
                         ("quasar_redshift", "outliers |Δz|/(1+z) > 0.05"),
                         ("reconstruction", "median χ²_ν, quasars, simulated")):
        for method in PROBED:
            assert np.isfinite(quick_report.value(task, metric, method)), (metric, method)
    # the template fit answers the redshift rows (not the probe's interval coverage) only
    fitted = np.isfinite(table["template_fit"])
    assert set(table["task"][fitted]) == {"redshift", "quasar_redshift"}
    redshift_rows = np.isin(table["task"], ["redshift", "quasar_redshift"])
    assert np.array_equal(fitted, redshift_rows & (table["metric"] != "68% interval coverage"))
    # the matched χ² answers the cross-instrument twins only, better than chance
    matched = np.isfinite(table["matched_chi2"])
    assert set(table["task"][matched]) == {"cross_instrument"}
    assert np.sum(matched) == np.sum(table["task"] == "cross_instrument")
    for metric in ("MILES stars sdss↔lamost", "MILES stars sdss↔gaia_xp",
                   "MILES stars lamost↔gaia_xp", "galaxies sdss↔desi"):
        assert quick_report.value("cross_instrument", f"{metric}: top-1 rate",
                                  "matched_chi2") >= 0.8, metric
    assert 0 < quick_report.value("redshift", "template fit: seconds per spectrum",
                                  "template_fit") < 5
    assert quick_report.value("redshift", "R² of z, simulated", "template_fit") > 0.99
    predicted = table[[": predicted z (true " in m for m in table["metric"]]]
    assert len(predicted) == 9  # 2 DESI + 7 usable MaNGA examples, one row each
    assert sum(m.startswith("MaNGA ") for m in predicted["metric"]) == 7
    assert np.all(predicted["n"] == 1)
    for row in predicted:
        assert row["better"] == "≈" + row["metric"].split("(true ")[1].rstrip(")")
    assert np.all(quick_report.rows("stellar_parameters")["spectok"] >= 0)
    probed = table[[not m.startswith("template fit") for m in table["metric"]]]
    for method in PROBED:
        assert np.all(np.isfinite(probed[method])), method
    assert np.all(table["n"] > 0)
    coverage = table[[("coverage" in m) or ("rate" in m) or ("accuracy" in m)
                      or ("fraction" in m) or ("outliers" in m) for m in table["metric"]]]
    for method in METHODS:
        values = coverage[method][np.isfinite(coverage[method])]
        assert np.all((values >= 0) & (values <= 1))
    assert np.all(quick_report.rows("cross_instrument")["spectok"] >= 0)
    # the untrained baseline has its own weights, not the model's
    assert not np.allclose(table["spectok"], table["untrained"])
    assert set(quick_report.meta["seconds"]) == set(TASKS)
    text = format_report(quick_report)
    assert text.count("\n| ") == len(table) + 1
    assert quick_report.meta["quick"] is True
    assert quick_report.meta["torch_threads"] == 1
    assert "Methods:" in text
    # every probe chose its head, per method, and the report says which
    heads = quick_report.meta["heads"]
    assert set(heads) == {"MILES parameters", "SpeX classes", "SpeX subtypes",
                          "galaxy redshifts", "quasar redshifts"}
    assert all(set(by_method) == {"spectok", "untrained", "flux_pca"}
               and set(by_method.values()) <= set(HEADS) for by_method in heads.values())
    assert "Heads chosen by cross-validation on the training set: MILES parameters:" in text


@pytest.mark.remote_data
def test_quick_benchmark_figures(quick_report, tmp_path):
    assert list(quick_report.figures) == list(TASKS)  # one per task, in task order
    paths = quick_report.save_figures(tmp_path / "figures")
    assert [p.name for p in paths] == [f"{task}.png" for task in TASKS]
    for path in paths:
        assert path.stat().st_size > 10_000, path
    figure = quick_report.figures["redshift"]()
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["unnamed + RedshiftProbe", "template fit"]  # the tiny model has no name
    truth = figure.axes[0].collections  # errorbar points and the outlier bounds are drawn
    assert len(figure.axes[0].get_lines()) >= 4 and truth
    recon = quick_report.figures["reconstruction"]()
    assert len(recon.axes) >= 15  # 5 domains x (spectrum, residuals, tokens), plus a colour bar


@pytest.mark.remote_data
def test_compare_heads_reads_the_subtypes_as_the_bench_does():
    table = compare_heads(quick=True, heads=["ridge", "knn"], comparisons=["spex"])
    rows = {(row["probe"], row["metric"]): row for row in table}
    subtypes = "SpectralClassProbe (SpeX subtype, median type)"
    for head in ("ridge", "knn"):
        mae, within = rows[subtypes, "subtype MAE"][head], rows[subtypes, "within ±1 subtype"][head]
        assert 0 <= mae < 5 and 0 < within <= 1
        # median types lie on the subtype grid: an error beyond ±1 is 2 steps or more
        assert within >= 1 - mae / 2 - 1e-12
    assert rows[subtypes, "subtype MAE"]["best"] in ("ridge", "knn")


@pytest.mark.remote_data
def test_bench_command(tmp_path, capsys):
    output = tmp_path / "report.md"
    assert main(["bench", "--quick", "--tasks", "stellar_parameters", "--threads", "1",
                 "-o", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "Teff RMSE" in printed and "spectok-small" in printed
    assert output.read_text().startswith("spectok benchmark: model spectok-small")
    table = Table.read(tmp_path / "report.ecsv")
    assert set(table["task"]) == {"stellar_parameters"}
    figure = tmp_path / "report-figures" / "stellar_parameters.png"
    assert figure.stat().st_size > 10_000 and "1 figure in" in printed


@pytest.mark.parametrize("arguments, error, message", [
    # each was taken (and printed wrong), or failed in astropy or float()
    ({"values": {"spectk": 1.0}}, ValueError, r"values names unknown methods \['spectk'\]"),
    ({"values": {"spectok": "1"}}, ValueError, r"values\['spectok'\] must be a number"),
    ({"values": {"spectok": True}}, ValueError, r"values\['spectok'\] must be a number"),
    ({"values": {"spectok": None}}, ValueError, r"values\['spectok'\] must be a number"),
    ({"values": [1.0]}, TypeError, "values must be a dict of method name to number"),
    ({"n": 2.7}, ValueError, "n must be a non-negative integer .*, got 2.7"),   # n 2
    ({"n": True}, ValueError, "n must be a non-negative integer .*, got True"),   # n 1
    ({"n": -1}, ValueError, "n must be a non-negative integer .*, got -1"),
    ({"better": "best"}, ValueError, "better must be 'lower', 'higher' or '≈' and a finite"),
    ({"better": "≈x"}, ValueError, "better must be 'lower', 'higher' or '≈' and a finite"),
    ({"better": "≈nan"}, ValueError, "better must be 'lower', 'higher' or '≈' and a finite"),
    ({"task": None}, TypeError, "task must be a str, got None"),   # astropy's 'str_len'
    ({"unit": u.K}, TypeError, r"unit must be a str, got Unit\(\"K\"\)"),
])
def test_bad_report_rows_are_refused(arguments, error, message):
    report = BenchmarkReport()
    with pytest.raises(error, match=message):
        report.add(**{"task": "t", "metric": "m", "values": {"spectok": 1.0}, **arguments})
    assert len(report.table) == 0


def test_bad_report_use_is_named(tmp_path):
    with pytest.raises(TypeError, match="meta must be a dict, got None"):
        BenchmarkReport(meta=None)   # AttributeError when printed
    with pytest.raises(ValueError, match=r"table lacks the report columns \['task'"):
        BenchmarkReport(table=Table())   # KeyError 'spectok' when printed
    with pytest.raises(TypeError, match="table must be an astropy Table, got list"):
        BenchmarkReport(table=[])
    with pytest.raises(TypeError, match="figures must be a dict, got None"):
        BenchmarkReport(figures=None)
    with pytest.raises(TypeError, match="name must be a str, got 5"):
        BenchmarkReport().add_figure(5, lambda: None)
    report = BenchmarkReport(meta={"notes": "one paragraph"})
    report.add("t", "m", {"spectok": 1.0, "flux_pca": 2.0})
    with pytest.raises(ValueError, match=r"meta\['notes'\] must be a list of paragraphs"):
        format_report(report)   # printed letter by letter
    with pytest.raises(TypeError, match="report must be a BenchmarkReport, got Table"):
        format_report(report.table)
    with pytest.raises(ValueError, match="unknown method 'spectk'"):
        report.value("t", "m", "spectk")   # a bare KeyError
    with pytest.raises(KeyError, match=r"no task 'tt' in the report; it has \['t'\]"):
        report.rows("tt")   # an empty table
    with pytest.raises(TypeError, match="draw must be a function"):
        report.add_figure("a", 3)   # kept, to fail in save_figures
    report.add_figure("a", lambda: None)
    with pytest.raises(ValueError, match="dpi must be a positive number, got True"):
        report.save_figures(tmp_path, dpi=True)
    with pytest.raises(TypeError, match="figure 'a': its function returned None, not a"):
        report.save_figures(tmp_path)   # AttributeError 'savefig'


def test_bad_figure_panels_are_named():
    from spectok.benchmarks.figures import panel_figure, reconstruction_figure

    panel = {"title": "z", "label": "z", "truth": [0.1, 0.5], "predicted": [0.1, 0.4]}
    with pytest.raises(ValueError, match="panels is empty"):   # matplotlib's error
        panel_figure([], "t")
    with pytest.raises(TypeError, match="panels must be a list of dicts"):
        panel_figure(panel, "t")   # its keys were taken for panels
    with pytest.raises(ValueError, match=r"panels\[0\] lacks \['label'\]"):   # KeyError
        panel_figure([{k: v for k, v in panel.items() if k != "label"}], "t")
    with pytest.raises(ValueError, match=r"panels\[1\] has unknown keys \['outlier'\]"):
        panel_figure([panel, {**panel, "outlier": 0.05}], "t")   # ignored
    with pytest.raises(ValueError, match="examples is empty"):
        reconstruction_figure([], None, "t")   # matplotlib's error
    with pytest.raises(TypeError, match="examples must be a list of"):
        reconstruction_figure(None, None, "t")


def test_matched_chi2_takes_lists_of_views():
    from specutils import SpectrumList

    from spectok.datasets import observe

    stars = [_lined_star(c) for c in ([4300, 5200], [5900])]
    sdss = [observe(s, "sdss", snr=50, rng=i) for i, s in enumerate(stars)]
    xp = [observe(s, "gaia_xp", snr=50, rng=10 + i) for i, s in enumerate(stars)]
    with pytest.raises(TypeError, match="views_a must be a list of spectra, got one Spectrum"):
        matched_chi2(sdss[0], xp, "gaia_xp")   # 'object of type Spectrum has no len()'
    with pytest.raises(TypeError, match="views_b must be a list of spectra, got one SpectrumList"):
        matched_chi2(sdss, SpectrumList(xp), "gaia_xp")   # its arms were taken for views
    np.testing.assert_array_equal(matched_chi2(iter(sdss), xp, "gaia_xp"),
                                  matched_chi2(sdss, xp, "gaia_xp"))
