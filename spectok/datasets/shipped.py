"""A real spectrum shipped inside the package, for examples and smoke tests."""

from importlib import resources

from specutils import Spectrum

__all__ = ["example_spectrum_path", "example_spectrum"]

_EXAMPLE = "example_manga_galaxy.fits"


def example_spectrum_path():
    """Path of the shipped example spectrum (a FITS table specutils reads).

    The spectrum is the first of the eight MaNGA galaxy test spectra published
    in ``sdss-mangadap`` 4.5.0 (BSD-3): 4563 log-λ pixels from 3622 to 10354 Å
    (vacuum), flux in 1e-17 erg s⁻¹ cm⁻² Å⁻¹, with inverse variance and mask,
    redshift 0.0495.

    Returns
    -------
    `~pathlib.Path`

    Examples
    --------
    >>> from spectok.datasets import example_spectrum_path
    >>> example_spectrum_path().name
    'example_manga_galaxy.fits'
    """
    return resources.files("spectok") / "data" / _EXAMPLE


def example_spectrum():
    """The shipped example spectrum as a `~specutils.Spectrum`.

    Returns
    -------
    `~specutils.Spectrum`
        With a 1σ uncertainty, a mask and ``meta`` holding ``id``,
        ``medium`` and ``redshift``.

    Examples
    --------
    >>> from spectok.datasets import example_spectrum
    >>> spectrum = example_spectrum()
    >>> len(spectrum.flux), spectrum.meta["redshift"]
    (4563, 0.0495282)
    """
    spectrum = Spectrum.read(example_spectrum_path(), format="tabular-fits")
    spectrum.meta.update(id="manga-test-0", medium="vacuum", redshift=0.0495282,
                         instrument="MaNGA")
    return spectrum
