"""The argument checks shared across spectok (`spectok._checks`, and the adapter's
`check_spectra`, `as_angstrom` and `as_wavelength_range`)."""

import astropy.units as u
import numpy as np
import pytest
import torch
from specutils import Spectrum, SpectrumList

from spectok._checks import as_pair, check_names
from spectok.adapter.prepare import check_spectra
from spectok.adapter.units import as_angstrom, as_wavelength_range


def test_as_pair_takes_two_numbers_in_order():
    assert as_pair([1, 2.5], "no") == (1.0, 2.5)
    assert as_pair(np.array([3, 4]), "no") == (3.0, 4.0)
    # a dict gave its keys and a set an order that varies between processes
    for bad in ({0: 0.1, 1: 2}, {2.0, 1.0}, "12", (1, "2"), (True, 2), (1, 2, 3), 5):
        with pytest.raises(ValueError, match="^no$"):
            as_pair(bad, "no")


def test_check_names_keeps_order_and_refuses_slips():
    assert check_names(["b", "a"], ("a", "b"), "x", "things", single=False) == ("b", "a")
    assert check_names("a", ("a", "b"), "x", "things") == ("a",)
    with pytest.raises(TypeError, match="x must be a list of names"):
        check_names("a", ("a", "b"), "x", "things", single=False)
    with pytest.raises(TypeError, match="x must be a name or a sequence"):
        check_names({"a"}, ("a", "b"), "x", "things")
    with pytest.raises(ValueError, match=r"x: unknown things \['c'\]"):
        check_names(["c"], ("a", "b"), "x", "things")
    with pytest.raises(ValueError, match=r"x lists \['a'\] more than once"):
        check_names(["a", "a"], ("a", "b"), "x", "things")


def test_check_spectra_takes_containers_of_spectra_and_refuses_one():
    spectrum = Spectrum(spectral_axis=np.arange(1.0, 6.0) * u.AA, flux=np.ones(5) * u.Jy)
    spectra = [spectrum, spectrum]
    assert check_spectra(spectra, "s") is spectra
    subset = torch.utils.data.Subset(spectra, [1])   # iterable through __getitem__ alone
    assert list(check_spectra(subset, "s")) == [spectrum]
    generator = (s for s in spectra)
    assert check_spectra(generator, "s") is generator   # left lazy
    for one in (spectrum, SpectrumList(spectra), (spectrum.spectral_axis, spectrum.flux)):
        with pytest.raises(TypeError, match="s must be a list of spectra, got one"):
            check_spectra(one, "s")
    for bad in ("a.fits", {"a": spectrum}, {1, 2}, np.array(3.0), 5, None):
        with pytest.raises(TypeError, match=r"s must be a list \(or another ordered"):
            check_spectra(bad, "s")


def test_as_angstrom_reads_wavelengths_and_widths():
    assert as_angstrom(0.5 * u.um, "w") == pytest.approx(5000.0)
    assert as_angstrom(4000, "w") == 4000.0
    assert as_angstrom(2 * u.nm, "w", spectral=False) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="w must be in Å or another length unit"):
        as_angstrom(2 * u.GHz, "w", spectral=False)   # a width is never a frequency
    for bad in ("4000", True, [1, 2] * u.AA, 3 * u.kg):
        with pytest.raises(ValueError, match="^w must be"):
            as_angstrom(bad, "w")


@pytest.mark.parametrize("value", [
    (3500, 10500), (3500.0, 1.05 * u.um), (0.35 * u.um, 10500), [0.35, 1.05] * u.um,
    ([3500, 10500] * u.AA).to(u.Hz, u.spectral()),   # descends in Hz
    ([10500, 3500] * u.AA).to(u.Hz, u.spectral()),   # ascends in Hz
])
def test_as_wavelength_range_reads_any_spectral_pair(value):
    assert as_wavelength_range(value, "r") == pytest.approx((3500.0, 10500.0))


@pytest.mark.parametrize("value", [
    (10500, 3500), [1.05, 0.35] * u.um, (3500, 3500), {3500, 10500}, (3500, 10500, 2e4),
    3500 * u.AA, np.array(3500.0), (0, 3500), (3500, np.inf), [1, 2] * u.kg, ("3500", 9000),
])
def test_as_wavelength_range_refuses_what_is_not_an_ordered_pair(value):
    with pytest.raises(ValueError, match="r must be two positive, finite wavelengths"):
        as_wavelength_range(value, "r")
