"""Tests of spectok.visualization (Agg backend, the tiny model)."""

import matplotlib

matplotlib.use("Agg")

import astropy.units as u  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.nddata import StdDevUncertainty  # noqa: E402
from astropy.table import Table  # noqa: E402
from specutils import Spectrum, SpectrumList  # noqa: E402

import spectok  # noqa: E402
from spectok.visualization import (plot_confusion_matrix, plot_embedding_map,  # noqa: E402
                                   plot_predicted_vs_true, plot_reconstruction, plot_spectrum,
                                   plot_token_similarity, plot_tokens, plot_training_log)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def masked_spectrum(make_pair):
    wave, flux, sigma = make_pair(n=200)
    mask = np.zeros(200, bool)
    mask[50:60] = True
    mask[150] = True
    return Spectrum(spectral_axis=wave, flux=flux, uncertainty=StdDevUncertainty(sigma),
                    mask=mask, meta={"id": "star-1"})


def test_plot_spectrum_shades_masked_pixels(masked_spectrum):
    fig, ax = plt.subplots()
    assert plot_spectrum(masked_spectrum, ax=ax) is ax
    line = ax.get_lines()[0]
    assert np.isnan(line.get_ydata()[50:60]).all() and np.isfinite(line.get_ydata()[0])
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["star-1", "±1σ", "masked"]
    assert "Angstrom" in ax.get_xlabel() and "erg" in ax.get_ylabel()


def test_plot_spectrum_with_reconstruction(tiny_model, masked_spectrum, make_pair):
    ax = plot_spectrum(masked_spectrum, reconstruction=True, model=tiny_model)
    assert [line.get_label() for line in ax.get_lines()] == ["star-1", "reconstruction"]
    # a given reconstruction, arms of a SpectrumList and a plain tuple
    wave, flux, sigma = make_pair(n=100, lo=5000, hi=6000)
    arms = SpectrumList([masked_spectrum, Spectrum(spectral_axis=wave, flux=flux)])
    rendered = spectok.decode(spectok.encode(masked_spectrum, model=tiny_model),
                              masked_spectrum.spectral_axis, model=tiny_model)
    ax = plot_spectrum(arms, reconstruction=rendered, show_uncertainty=False)
    assert len(ax.get_lines()) == 3
    ax = plot_spectrum((wave.to(u.um), flux, sigma))
    assert "um" in ax.get_xlabel()
    with pytest.raises(TypeError, match="cannot plot"):
        plot_spectrum(np.ones(10))


def test_plot_tokens(tiny_model, masked_spectrum):
    tokens = spectok.encode(masked_spectrum, model=tiny_model)
    fig, ax = plt.subplots()
    assert plot_tokens(tokens, ax=ax, spectrum=masked_spectrum) is ax
    collection = ax.collections[0]
    assert collection.get_array().size == tokens.tokens.size
    lo, hi = ax.get_xlim()
    assert lo == pytest.approx(tokens.patch_edges[0, 0].value)
    assert hi == pytest.approx(tokens.patch_edges[-1, 1].value)
    assert len(fig.axes) == 3  # heatmap, colour bar, spectrum overlay


def test_plot_tokens_refuses_anything_but_one_spectrum_s_tokens(tiny_model, masked_spectrum):
    batch = spectok.encode([masked_spectrum, masked_spectrum], model=tiny_model)
    with pytest.raises(TypeError, match=r"cannot plot a TokenBatch as tokens: give the "
                       r"SpectralTokens of one spectrum .* batch\[0\]"):
        plot_tokens(batch)
    with pytest.raises(TypeError, match="cannot plot a Spectrum as tokens: give the "
                       "SpectralTokens"):
        plot_tokens(masked_spectrum)


def test_plot_reconstruction(tiny_model, masked_spectrum):
    upper, lower = plot_reconstruction(masked_spectrum, model=tiny_model)
    assert upper.figure is lower.figure
    pulls = lower.get_lines()[0].get_ydata()
    assert np.isnan(pulls[50:60]).all() and np.isfinite(pulls[:50]).all()
    assert "χ²_ν" in lower.texts[0].get_text()
    fig, axes = plt.subplots(2)
    assert plot_reconstruction(masked_spectrum, tiny_model, ax=axes) == tuple(axes)
    with pytest.raises(ValueError, match="two Axes"):
        plot_reconstruction(masked_spectrum, tiny_model, ax=[axes[0]])
    tokens = spectok.encode(masked_spectrum, model=tiny_model)
    with pytest.raises(TypeError, match="cannot plot a SpectralTokens: give a Spectrum"):
        plot_reconstruction(tokens, tiny_model)


def test_plot_predicted_vs_true():
    truth = np.linspace(3000, 9000, 30) * u.K
    pred = truth + 100 * u.K
    ax = plot_predicted_vs_true(truth, pred, interval=(pred - 200 * u.K, pred + 50 * u.K),
                                label="Teff")
    assert ax.get_xlabel() == "true Teff [K]"
    text = ax.texts[0].get_text()
    assert "RMSE 100" in text and "interval coverage 100%" in text
    with pytest.raises(ValueError, match="differ in length"):
        plot_predicted_vs_true([1, 2], [1, 2, 3])


def test_plot_predicted_vs_true_refuses_several_targets_at_once():
    # three parameters of 10 objects: not pooled into one RMSE over 30 points
    truth = np.arange(30.0).reshape(10, 3)
    with pytest.raises(ValueError, match=r"y_true must be 1-D .* shape \(10, 3\): plot one "
                       "target at a time"):
        plot_predicted_vs_true(truth, truth + 1)
    with pytest.raises(ValueError, match=r"y_pred must be 1-D .* shape \(10, 1\)"):
        plot_predicted_vs_true(truth[:, 0], truth[:, :1])
    with pytest.raises(ValueError, match=r"shape \(\)"):
        plot_predicted_vs_true(1.0, 1.0)
    ax = plot_predicted_vs_true(truth[:, 0], truth[:, 0] + 1)  # one column at a time
    assert "RMSE 1\n" in ax.texts[0].get_text() and "n = 10" in ax.texts[0].get_text()
    with pytest.raises(ValueError, match=r"interval bounds must have the shape of y_true, "
                       r"\(10,\); got \(30,\) and \(10,\)"):
        plot_predicted_vs_true(truth[:, 0], truth[:, 0], interval=(truth.ravel(), truth[:, 0]))


def test_plot_predicted_vs_true_redshift_outliers():
    z = np.linspace(0.0, 1.0, 20)
    pred = z.copy()
    pred[:2] += 0.5  # 2 of 20 beyond 0.05 (1 + z)
    ax = plot_predicted_vs_true(z, pred, label="z", outlier_bound=0.05)
    text = ax.texts[0].get_text()
    assert "outliers 10.0%" in text and "σ_MAD 0 of Δ/(1+true)" in text
    upper = ax.get_lines()[-1]  # the bounds follow the 1:1 line
    np.testing.assert_allclose(upper.get_ydata(), upper.get_xdata() * 1.05 + 0.05)
    with pytest.raises(ValueError, match="outlier_bound must be positive"):
        plot_predicted_vs_true(z, pred, outlier_bound=-0.05)


def test_plot_embedding_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 6))
    x[:, 0] *= 10  # the first principal component is the first axis, up to sign
    teff = np.linspace(3000, 9000, 30)
    fig, ax = plt.subplots()
    assert plot_embedding_map(x, teff, ax=ax, label="Teff") is ax
    offsets = ax.collections[0].get_offsets()
    assert abs(np.corrcoef(offsets[:, 0], x[:, 0])[0, 1]) > 0.99
    np.testing.assert_allclose(ax.collections[0].get_array(), teff)
    assert fig.axes[-1].get_ylabel() == "Teff"  # the colour bar
    ax = plot_embedding_map(x, ["a", "b", "c"] * 10, method="tsne")
    assert ax.get_xlabel() == "t-SNE 1" and len(ax.collections) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    for bad, match in (({"method": "umap"}, "method"), ({"labels": [1, 2]}, "2 labels")):
        with pytest.raises(ValueError, match=match):
            plot_embedding_map(x, **bad)
    with pytest.raises(ValueError, match="at least 3"):
        plot_embedding_map(x[:2])
    # several labels at once would be read as RGB colours
    with pytest.raises(ValueError, match=r"labels must be 1-D .* shape \(30, 3\)"):
        plot_embedding_map(x, rng.random((30, 3)))


def test_objects_without_a_numeric_label_are_drawn_in_grey():
    # before: matplotlib left points whose colour value is NaN out of the plot
    x = np.random.default_rng(0).normal(size=(30, 6))
    teff = np.linspace(3000, 9000, 30)
    teff[[3, 7]] = np.nan
    fig, ax = plt.subplots()
    plot_embedding_map(x, teff, ax=ax)
    points = ax.collections[0]
    fig.canvas.draw()
    colours = points.get_facecolors()
    assert len(colours) == 30
    np.testing.assert_allclose(colours[[3, 7], :3], 0.6)
    assert not np.allclose(colours[0, :3], 0.6)


def test_plot_embedding_map_refuses_what_is_not_embeddings(tiny_model, masked_spectrum):
    tokens = spectok.encode(masked_spectrum, model=tiny_model)
    with pytest.raises(TypeError, match="embedding of one spectrum: give a TokenBatch"):
        plot_embedding_map(tokens)
    for given, name in (([tokens] * 3, "list"), (masked_spectrum, "Spectrum")):
        with pytest.raises(TypeError, match=f"cannot map embeddings from a {name}: give a "
                           "TokenBatch"):
            plot_embedding_map(given)


def test_plot_confusion_matrix():
    fig, ax = plt.subplots()
    true = ["M", "M", "L", "T", "T", "T"]
    pred = ["M", "L", "L", "T", "T", "M"]
    assert plot_confusion_matrix(true, pred, labels=["M", "L", "T"], ax=ax, colorbar=True) is ax
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(image[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(image.sum(axis=1), 1.0)
    assert "accuracy 66.7%" in ax.get_title()
    ax = plot_confusion_matrix(true, pred, normalize=None)
    assert ax.get_images()[0].get_array().sum() == 6
    with pytest.raises(ValueError, match="normalize"):
        plot_confusion_matrix(true, pred, normalize="all")
    with pytest.raises(ValueError, match=r"y_true must be 1-D .* shape \(3, 2\): plot one "
                       "target at a time"):
        plot_confusion_matrix(np.reshape(true, (3, 2)), np.reshape(pred, (3, 2)))
    with pytest.raises(ValueError, match="differ in length: 6 and 5"):
        plot_confusion_matrix(true, pred[:5])


def test_plot_token_similarity(tiny_model, make_pair):
    wave, flux, sigma = make_pair(n=300, lo=4000, hi=6000)
    coarse = make_pair(n=120, lo=3900, hi=6100)
    a = spectok.encode((wave, flux, sigma), model=tiny_model)
    b = spectok.encode(coarse, model=tiny_model)
    ax = plot_token_similarity(a, b, labels=("SDSS", "Gaia XP"))
    similarity = ax.collections[0].get_array()
    assert similarity.size == a.n_patches * b.n_patches
    assert np.all(np.abs(similarity) <= 1 + 1e-9)
    assert ax.get_xlabel().startswith("Gaia XP patch wavelength")
    batch_a = spectok.encode([make_pair(seed=i) for i in range(4)], model=tiny_model)
    ax = plot_token_similarity(batch_a, batch_a)
    np.testing.assert_allclose(np.diag(ax.get_images()[0].get_array()), 1.0, atol=1e-6)
    assert "100%" in ax.get_title()
    with pytest.raises(TypeError, match="both .* got a SpectralTokens and a TokenBatch"):
        plot_token_similarity(a, batch_a)
    with pytest.raises(TypeError, match="got a Spectrum and a ndarray of shapes"):
        plot_token_similarity(Spectrum(spectral_axis=wave, flux=flux), batch_a.embedding)
    # embeddings of two models of other widths
    with pytest.raises(ValueError, match="vectors of 32 and 16 dimensions"):
        plot_token_similarity(batch_a, batch_a.embedding[:, :16])


def test_plot_training_log(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,learning_rate,loss,reconstruction,consistency,grad_norm,"
                    "spectra_per_second,wall_seconds,val_loss,val_reconstruction,val_consistency\n"
                    "20,1e-4,3.0,-0.5,2.0,1.0,10,5,,,\n"
                    "40,2e-4,2.0,-0.9,1.5,1.0,10,10,2.2,-0.8,1.6\n"
                    "60,3e-4,1.5,-1.2,1.2,1.0,10,15,,,\n")
    ax = plot_training_log(path)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["loss", "reconstruction", "consistency", "val_loss",
                      "val_reconstruction", "val_consistency"]
    assert ax.get_yscale() == "linear"  # the Gaussian NLL is negative
    val = ax.get_lines()[3]
    assert val.get_xdata().tolist() == [40.0]
    ax = plot_training_log(tmp_path, columns=["loss", "val_loss"])  # the run directory
    assert ax.get_yscale() == "log"
    with pytest.raises(KeyError, match="not in the training log"):
        plot_training_log(path, columns=["nope"])
    with pytest.raises(KeyError, match="step"):
        plot_training_log(Table({"loss": [1.0]}))
    with pytest.raises(TypeError, match="cannot read a training log from a dict: give the path"):
        plot_training_log({"step": [20], "loss": [1.0]})
    # an anchored run's log: the anchor drawn in a colour of its own, its validation likewise
    anchored = Table({"step": [20, 40], "loss": [3.0, 2.0], "consistency": [2.0, 1.5],
                      "anchor": [0.1, 0.05], "val_anchor": [np.nan, 0.06]})
    lines = plot_training_log(anchored).get_lines()
    assert [line.get_label() for line in lines] == ["loss", "consistency", "anchor", "val_anchor"]
    assert lines[2].get_color() == lines[3].get_color() not in {lines[0].get_color(),
                                                                lines[1].get_color()}


@pytest.mark.parametrize("ax", ["left", 3, "figure", "two axes"])
def test_every_plot_refuses_an_ax_that_is_not_an_axes(ax, tiny_model, masked_spectrum):
    # before: AttributeError ("'str' object has no attribute 'plot'", or 'errorbar',
    # 'imshow', 'scatter', 'add_collection')
    if ax == "figure":
        ax = plt.figure()
    elif ax == "two axes":
        ax = plt.subplots(1, 2)[1]
    tokens = spectok.encode(masked_spectrum, model=tiny_model)
    embeddings = np.random.default_rng(0).normal(size=(5, 4))
    calls = [lambda: plot_spectrum(masked_spectrum, ax=ax),
             lambda: plot_tokens(tokens, ax=ax),
             lambda: plot_token_similarity(embeddings, embeddings, ax=ax),
             lambda: plot_predicted_vs_true([1.0, 2.0], [1.0, 2.0], ax=ax),
             lambda: plot_embedding_map(embeddings, ax=ax),
             lambda: plot_confusion_matrix([1, 2], [1, 2], ax=ax),
             lambda: plot_training_log(Table({"step": [1], "loss": [1.0]}), ax=ax)]
    for call in calls:
        with pytest.raises(TypeError, match=rf"ax must be a matplotlib Axes \(or None for a new "
                                            rf"figure\), got a {type(ax).__name__}"):
            call()


def test_plot_reconstruction_refuses_an_ax_that_is_not_two_axes(tiny_model, masked_spectrum):
    # before: TypeError "object of type 'Axes' has no len()" for one Axes, and
    # AttributeError "'str' object has no attribute 'plot'" for "ab"
    for ax in ("ab", 3, [plt.gca(), "b"]):
        with pytest.raises(TypeError, match="ax must be two matplotlib Axes, the spectra panel "
                                            r"and the residual panel \(or None"):
            plot_reconstruction(masked_spectrum, tiny_model, ax=ax)
    with pytest.raises(ValueError, match="ax must be two Axes, .*; got 1"):
        plot_reconstruction(masked_spectrum, tiny_model, ax=plt.gca())


def test_plot_spectrum_refuses_tuples_that_do_not_pair_up():
    # before: matplotlib's "x and y must have same first dimension", IndexError "tuple index
    # out of range", numpy's "operands could not be broadcast", and IndexError "list index
    # out of range" for an empty SpectrumList
    wave = np.linspace(4000, 5000, 10) * u.AA
    with pytest.raises(ValueError, match=r"wavelength and flux differ in shape: \(10,\) and "
                                         r"\(7,\)"):
        plot_spectrum((wave, np.ones(7) * u.Jy))
    with pytest.raises(TypeError, match=r"cannot plot a tuple of 1: give \(wavelength, flux\)"):
        plot_spectrum((wave,))
    with pytest.raises(ValueError, match=r"uncertainty must have the shape of the flux, "
                                         r"\(10,\); got \(3,\)"):
        plot_spectrum((wave, np.ones(10) * u.Jy, np.ones(3)))
    with pytest.raises(ValueError, match="empty SpectrumList"):
        plot_spectrum(SpectrumList([]))
    with pytest.raises(u.UnitConversionError, match="wavelength must be a spectral axis .*"
                                                    "got kg"):   # before: drawn, in kg
        plot_spectrum((wave.value * u.kg, np.ones(10) * u.Jy))
    assert plot_spectrum((wave.to(u.THz, u.spectral()), np.ones(10) * u.Jy)).get_lines()
    edges = np.linspace(4000, 5000, 11) * u.AA   # bin edges are still fine
    assert plot_spectrum((edges, np.ones(10) * u.Jy, np.ones(10))).get_lines()


def test_plot_predicted_vs_true_refuses_bad_intervals_bounds_and_empty_input():
    # before: an interval of one array raised IndexError "tuple index out of range", a
    # swapped one was drawn with 0 % coverage, outlier_bound="0.1" raised "'>' not supported
    # between 'str' and 'int'" (an array: "truth value ... is ambiguous"), and empty input
    # gave an empty plot
    z = np.linspace(0.0, 1.0, 5)
    with pytest.raises(ValueError, match=r"interval must be a \(lower, upper\) pair"):
        plot_predicted_vs_true(z, z, interval=(z,))
    with pytest.raises(ValueError, match="lower bound is above its upper bound for 5 of 5"):
        plot_predicted_vs_true(z, z, interval=(z + 1, z - 1))
    for bound in ("0.1", np.array([0.1, 0.2])):
        with pytest.raises(ValueError, match="outlier_bound must be a positive number, got"):
            plot_predicted_vs_true(z, z, outlier_bound=bound)
    with pytest.raises(ValueError, match="empty: nothing to plot"):
        plot_predicted_vs_true([], [])


def test_plot_token_similarity_refuses_empty_batches_and_bad_labels():
    # before: numpy's "attempt to get argmax of an empty sequence", and IndexError for one label
    e = np.random.default_rng(0).normal(size=(3, 4))
    with pytest.raises(ValueError, match="nothing to compare: a has 0 embeddings and b 0"):
        plot_token_similarity(e[:0], e[:0])
    assert not plt.get_fignums()  # refused before a figure was made
    for labels in (("a",), "ab"):
        with pytest.raises(ValueError, match="labels must be two names, one per view"):
            plot_token_similarity(e, e, labels=labels)


def test_plot_training_log_refuses_a_string_of_columns_and_an_unknown_logy():
    # before: columns="loss" was read letter by letter (KeyError "columns ['l', 'o', 's',
    # 's'] are not in the training log"), and logy="yes" drew a linear axis
    log = Table({"step": [1, 2], "loss": [1.0, 2.0]})
    with pytest.raises(TypeError, match=r"columns must be a list of column names, got the "
                                        r"string 'loss' \(for one column: \['loss'\]\)"):
        plot_training_log(log, columns="loss")
    with pytest.raises(ValueError, match="logy must be True, False or 'auto', got 'yes'"):
        plot_training_log(log, logy="yes")
    assert plot_training_log(log, logy=np.True_).get_yscale() == "log"
