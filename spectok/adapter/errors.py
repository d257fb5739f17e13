"""The adapter's exceptions and warnings, and its ``errors`` modes (`ERROR_MODES`).

A spectrum that cannot be used raises `SpectrumInputError`; `spectok.encode` and
`spectok.encode_catalogue` can instead leave it out, with one `SpectrumInputWarning`
for all of them (`warn_skipped`) or silently.
"""

import warnings

from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["ERROR_MODES", "SpectrumInputError", "SpectrumInputWarning", "NoUncertaintyWarning",
           "WavelengthRangeWarning", "warn_skipped"]

#: What `spectok.encode` and `spectok.encode_catalogue` can do with a spectrum that
#: cannot be used: raise its error, or leave it out with a warning or silently.
ERROR_MODES = ("raise", "warn", "skip")


class SpectrumInputError(ValueError):
    """A spectrum that spectok cannot use; the message names the spectrum and the problem."""


class SpectrumInputWarning(AstropyUserWarning):
    """Some spectra of a batch could not be used and were skipped."""


class NoUncertaintyWarning(AstropyUserWarning):
    """Spectra without uncertainties were given a constant noise level."""


class WavelengthRangeWarning(AstropyUserWarning):
    """Spectra reach outside the wavelength range the model was trained on, or
    `~spectok.decode` is asked for wavelengths beyond the encoded spectrum."""


def _check_error_mode(errors):
    """Refuse (ValueError) an ``errors`` option other than those of `ERROR_MODES`."""
    if not isinstance(errors, str) or errors not in ERROR_MODES:
        raise ValueError(f"errors must be one of {ERROR_MODES}, got {errors!r}")


def warn_skipped(skipped, n_spectra, stacklevel=2):
    """Warn once that spectra were left out, quoting the first three reasons.

    Parameters
    ----------
    skipped : list of (int, str)
        Position and error message of each spectrum left out (as from
        `prepare_spectra`); nothing is warned when it is empty.
    n_spectra : int
        How many spectra there were in all.
    stacklevel : int
        As for `warnings.warn`, counted from the caller of this function.

    Warns
    -----
    SpectrumInputWarning
        ``skipped`` is not empty.

    Examples
    --------
    >>> import warnings
    >>> from spectok.adapter import warn_skipped
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_skipped([(1, "spectrum 1: no valid pixels")], 3)
    >>> str(caught[0].message)
    'skipped 1 of 3 spectra: spectrum 1: no valid pixels'
    """
    if skipped:
        warnings.warn(f"skipped {len(skipped)} of {n_spectra} spectra: "
                      + "; ".join(message for _, message in skipped[:3])
                      + ("; …" if len(skipped) > 3 else ""),
                      SpectrumInputWarning, stacklevel=stacklevel + 1)
