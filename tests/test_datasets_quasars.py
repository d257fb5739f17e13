"""The quasar simulator against published quasar properties, and the real quasar examples."""

import astropy.units as u
import numpy as np
import pytest
from scipy.ndimage import median_filter

from spectok.datasets import (QUASAR_LINES, QuasarGenerator, igm_transmission,
                              load_quasar_examples, observe, quasar_spectrum, simulate_quasars,
                              smc_extinction)


def _equivalent_width(lam, flux, centre, half_width, sides):
    """Rest EW of a line above a straight continuum fitted in two side windows."""
    side = np.zeros_like(lam, bool)
    for lo, hi in sides:
        side |= (lam > lo) & (lam < hi)
    fit = np.polyfit(lam[side], flux[side], 1)
    core = np.abs(lam - centre) < half_width
    continuum = np.polyval(fit, lam[core])
    return np.trapezoid((flux[core] - continuum) / continuum, lam[core])


# line -> (half width of the integration, continuum windows), rest Å.
_EW_WINDOWS = {
    "C IV": (60.0, [(1450.0, 1470.0), (1690.0, 1710.0)]),
    "C III]": (70.0, [(1790.0, 1820.0), (2000.0, 2040.0)]),
    "Mg II": (80.0, [(2650.0, 2680.0), (2920.0, 2950.0)]),
    "Hβ": (90.0, [(4700.0, 4740.0), (5080.0, 5120.0)]),
    "Hα": (180.0, [(6150.0, 6250.0), (6900.0, 7000.0)]),
}


@pytest.fixture(scope="module")
def rest_frame_quasars():
    """Noiseless rest-frame quasars without IGM (z = 0) or host."""
    return [quasar_spectrum(seed, redshift=0.0, wavelength_range=[1300, 7500] * u.AA)
            for seed in range(40)]


@pytest.mark.parametrize("line", sorted(_EW_WINDOWS))
def test_equivalent_widths_follow_the_composite(rest_frame_quasars, line):
    half_width, sides = _EW_WINDOWS[line]
    wave, composite_ew, _ = QUASAR_LINES[line]
    measured = [_equivalent_width(spec.spectral_axis.to_value(u.AA), spec.flux.value, wave,
                                  half_width, sides) for spec, _ in rest_frame_quasars]
    # The sample median sits within the published 0.2 dex scatter of the
    # Vanden Berk et al. (2001) composite, and the scatter is of that size.
    assert abs(np.log10(np.median(measured) / composite_ew)) < 0.2
    assert 0.1 < np.std(np.log10(np.clip(measured, 1e-3, None))) < 0.45


@pytest.mark.parametrize("redshift", [0.6, 1.4, 2.4])
def test_lines_sit_at_their_redshifted_rest_wavelength(redshift):
    model, _ = quasar_spectrum(7, redshift=redshift, wavelength_range=[1000, 7000] * u.AA)
    observed = observe(model, "sdss", redshift=redshift, noise=False)
    lam, flux = observed.spectral_axis.to_value(u.AA), observed.flux.value
    found = 0
    for name in ("C IV", "C III]", "Mg II", "Hβ"):
        expected = QUASAR_LINES[name][0] * (1 + redshift)
        if not lam[0] + 200 < expected < lam[-1] - 200:
            continue
        window = np.abs(lam - expected) < expected * 0.01
        peak = lam[window][np.argmax(flux[window])]
        assert abs(peak / expected - 1) < 1.5e-3, name  # < 450 km/s
        found += 1
    assert found >= 2


def test_igm_absorption_deepens_with_redshift():
    lam = np.linspace(1070.0, 1170.0, 2000)
    mean_model = [igm_transmission(lam, z, scatter=False).mean() for z in (2.0, 3.0, 4.0)]
    sight_lines = [np.mean([igm_transmission(lam, z, rng).mean() for rng in range(60)])
                   for z in (2.0, 3.0, 4.0)]
    assert mean_model[0] > mean_model[1] > mean_model[2]
    assert sight_lines[0] > sight_lines[1] > sight_lines[2]
    # The scatter keeps the mean close to Madau (1995).
    np.testing.assert_allclose(sight_lines, mean_model, atol=0.08)
    # Red of Lyα the IGM is transparent; below the Lyman limit nearly opaque at z = 4.
    assert igm_transmission([1300.0, 1500.0], 4.0, scatter=False).min() == 1.0
    assert igm_transmission([850.0], 4.0, scatter=False)[0] < 0.05


def test_forest_is_dimmed_in_observed_spectra():
    ratios = {}
    for z in (2.2, 3.8):
        ds = simulate_quasars(12, "desi", z=z, seed=1, snr=1000.0, host_templates=[])
        ratios[z] = np.median(ds.labels["forest_transmission"])
    assert ratios[2.2] > ratios[3.8]


def test_smc_extinction_has_the_smc_normalisation():
    ebv = 0.2
    a_b = smc_extinction(4400 * u.AA, ebv)
    a_v = smc_extinction(0.55 * u.um, ebv)
    assert a_b - a_v == pytest.approx(ebv, rel=0.1)
    assert a_v / ebv == pytest.approx(2.93, rel=0.1)
    assert smc_extinction(1500 * u.AA, ebv) > 3 * a_v  # steep SMC UV rise, no 2175 Å bump


def test_simulate_quasars_is_reproducible_and_prefix_stable():
    small = simulate_quasars(2, "lamost", z=(0.5, 3.0), seed=3, host_templates=[])
    large = simulate_quasars(4, "lamost", z=(0.5, 3.0), seed=3, host_templates=[])
    np.testing.assert_array_equal(small.labels["z"], large.labels["z"][:2])
    np.testing.assert_array_equal(small.spectra[1].flux, large.spectra[1].flux)
    assert set(large.labels.colnames) >= {"id", "z", "snr", "alpha_nu", "log_l3000", "ew_civ"}
    assert large.labels["ew_civ"].unit == u.AA


def test_worker_processes_draw_the_same_quasars():
    serial = simulate_quasars(3, "sdss", z=(0.5, 3.0), seed=3, host_templates=[])
    parallel = simulate_quasars(3, "sdss", z=(0.5, 3.0), seed=3, host_templates=[], n_jobs=2)
    for x, y in zip(serial.spectra, parallel.spectra):
        np.testing.assert_array_equal(x.flux.value, y.flux.value)
        np.testing.assert_array_equal(x.uncertainty.array, y.uncertainty.array)
    for name in serial.labels.colnames:
        np.testing.assert_array_equal(serial.labels[name], parallel.labels[name])


def test_generator_draws_what_quasar_spectrum_draws():
    spectrum, labels = quasar_spectrum(5, redshift=1.2, wavelength_range=[1000, 4000] * u.AA)
    model, model_labels = QuasarGenerator().model(5, redshift=1.2,
                                                  wavelength_range=[1000, 4000] * u.AA)
    assert model_labels == labels
    np.testing.assert_array_equal(model.wavelength, spectrum.spectral_axis.to_value(u.AA))
    np.testing.assert_array_equal(model.flux, spectrum.flux.value)
    assert model.unit == spectrum.flux.unit == u.erg / u.s / u.cm**2 / u.AA


def test_generator_with_hosts_draws_what_quasar_spectrum_draws():
    from specutils import Spectrum

    lam = np.arange(1000.0, 12000.0, 2.0)
    ssp = [Spectrum(spectral_axis=lam * u.AA, flux=(lam / 5000.0) ** p * u.one,
                    meta={"age_gyr": age}) for p, age in [(-2.0, 0.1), (1.0, 10.0)]]
    generator = QuasarGenerator(ssp)
    for seed in range(4):  # one generator reused, as a training stream does
        rest = [3000, 8000] * u.AA
        expected, labels = quasar_spectrum(seed, redshift=0.2, wavelength_range=rest,
                                           host_templates=ssp)
        spectrum, generated_labels = generator.spectrum(seed, redshift=0.2,
                                                        wavelength_range=rest)
        np.testing.assert_array_equal(spectrum.flux, expected.flux)
        np.testing.assert_equal(generated_labels, labels)  # NaN forest transmission too
        assert labels["host_fraction"] > 0


def test_low_redshift_quasars_can_have_hosts():
    ds = simulate_quasars(30, "sdss", z=(0.05, 0.3), seed=2)
    fractions = np.asarray(ds.labels["host_fraction"])
    assert (fractions > 0).any()
    assert ((fractions >= 0) & (fractions <= 0.6)).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "at least 1"),
    ({"z": (2.0, 1.0)}, "range must be"),
    ({"z": -0.5}, "non-negative"),
    ({"snr": 0.0}, "positive"),
    ({"n_jobs": 0}, "n_jobs must be a nonzero integer"),
    ({"n_jobs": "two"}, "n_jobs must be a nonzero integer"),
])
def test_simulate_quasars_rejects_bad_arguments(kwargs, match):
    arguments = {"n": 1, "instrument": "sdss", "host_templates": [], **kwargs}
    with pytest.raises(ValueError, match=match):
        simulate_quasars(**arguments)


def test_quasar_spectrum_and_igm_reject_bad_arguments():
    with pytest.raises(ValueError, match="non-negative"):
        quasar_spectrum(0, redshift=-0.1)
    with pytest.raises(ValueError, match="wavelength_range must be two positive"):
        quasar_spectrum(0, wavelength_range=[3000, 3000] * u.AA)
    # a reversed pair was sorted, three values were taken as a range, kg failed in astropy
    for bad in ((5000, 3000), (3000, 5000, 7000), [1, 2] * u.kg):
        with pytest.raises(ValueError, match="wavelength_range must be two positive"):
            quasar_spectrum(0, wavelength_range=bad)
    with pytest.raises(ValueError, match="empty rest-frame range"):
        quasar_spectrum(0, wavelength_range=(100, 500))   # below the 500 Å the model starts at
    with pytest.raises(ValueError, match="non-negative"):
        igm_transmission([1100.0], -1.0)
    for z in ("2", None, True):
        with pytest.raises(ValueError, match="redshift must be a non-negative number, got"):
            quasar_spectrum(0, redshift=z)
        with pytest.raises(ValueError, match="redshift must be a non-negative number, got"):
            igm_transmission([1100.0], z)
    with pytest.raises(ValueError, match="finite and non-negative, got inf"):
        quasar_spectrum(0, redshift=np.inf)
    from specutils import Spectrum
    ageless = [Spectrum(spectral_axis=np.linspace(3000, 9000, 50) * u.AA, flux=np.ones(50) * u.Jy)]
    with pytest.raises(ValueError, match="age"):
        quasar_spectrum(0, redshift=0.2, host_templates=ageless)


@pytest.mark.remote_data
def test_real_quasar_examples_and_glikman_redshifts():
    ds = load_quasar_examples()
    assert len(ds) == 31
    assert set(ds.labels["class"]) == {"quasar"}
    glikman = ds.labels["reference"] == "Glikman et al. 2006"
    assert glikman.sum() == 27
    assert np.isnan(ds.labels["z"][~glikman]).all()
    # The undocumented redshift column agrees with the Paschen-β, Paschen-α and
    # He I 10830 peaks.
    agree = 0
    for spectrum, z in zip(np.array(ds.spectra, dtype=object)[glikman], ds.labels["z"][glikman]):
        lam = spectrum.spectral_axis.to_value(u.AA)
        flux = spectrum.flux.value
        offsets = []
        for name in ("Paβ", "Paα", "He I"):
            centre = QUASAR_LINES[name][0] * (1 + z)
            usable = np.isfinite(flux) & (flux != 0)
            core = usable & (np.abs(lam - centre) < 400)
            side = usable & (np.abs(lam - centre) < 800) & ~core
            if core.sum() < 20 or side.sum() < 10:
                continue
            excess = median_filter(flux[core] - np.polyval(np.polyfit(lam[side], flux[side], 1),
                                                           lam[core]), 5)
            offsets.append(lam[core][np.argmax(excess)] / QUASAR_LINES[name][0] - 1 - z)
        agree += bool(offsets) and abs(np.median(offsets)) < 0.005
    assert agree >= 24


def test_quasar_ranges_of_the_wrong_kind_are_named():
    # before: z=(0.1, inf) was drawn from, z='2.5' was 2.5, and snr=(3, 10, 30) raised
    # 'too many values to unpack'
    for kwargs, message in [({"z": (0.1, np.inf)}, r"z must be finite, got \(0.1, inf\)"),
                            ({"z": "2.5"}, "z must be a number or a .* got '2.5'"),
                            ({"snr": (3, 10, 30)}, r"snr must be a number or a \(low, high\) "
                                                   r"pair of numbers, got \(3, 10, 30\)"),
                            ({"n": 1.0}, "n must be an integer number of objects")]:
        arguments = {"n": 1, "instrument": "sdss", "host_templates": [], **kwargs}
        with pytest.raises(ValueError, match=message):
            simulate_quasars(**arguments)


def test_one_host_template_instead_of_a_list_is_refused():
    from specutils import Spectrum, SpectrumList

    wave = np.linspace(3000, 7000, 50) * u.AA
    one = Spectrum(spectral_axis=wave, flux=np.ones(50) * u.Jy, meta={"age_gyr": 1.0})
    with pytest.raises(TypeError, match="host_templates must be a list of template spectra"):
        QuasarGenerator(SpectrumList([one, one]))   # its arms were taken for two templates
    assert QuasarGenerator([])._hosts is None   # no hosts, as before
