"""The unit-aware adapter: anything spectrum-like → a padded `SpectrumBatch`.

Units are handled here, once, for everything the model reads; downstream,
spectra are plain arrays and tensors:

* wavelengths in vacuum Ångström (air converted with the IAU standard of
  Morton 2000 when asked), ascending within each arm;
* flux in one canonical unit per kind (f_λ in erg s⁻¹ cm⁻² Å⁻¹ for any
  spectral flux density; counts and dimensionless fluxes as they are),
  divided by a robust per-spectrum scale that is kept alongside;
* a 1σ error per pixel, and a validity flag.

Arms of a `~specutils.SpectrumList` keep their own pixels: they are laid end
to end in order of wavelength, each padded to a whole number of patches, so
no patch mixes two arms and nothing is resampled.
"""

from . import errors, units
from .batch import SpectrumBatch, to_batch
from .coverage import check_wavelength_range, fraction_outside
from .errors import (NoUncertaintyWarning, SpectrumInputError, SpectrumInputWarning,
                     WavelengthRangeWarning, warn_skipped)
from .inputs import split_masked
from .prepare import (PreparedSpectrum, is_single_spectrum, iter_spectra, prepare_spectra,
                      prepare_spectrum)
from .units import canonical_flux, flux_in_unit, log_bin_edges, wavelength_grid

# Tracebacks and the API docs name the exceptions where users import them from
# (spectok.adapter.SpectrumInputError), not the submodule that defines them.
for _public in (SpectrumInputError, SpectrumInputWarning, NoUncertaintyWarning,
                WavelengthRangeWarning):
    _public.__module__ = __name__
del _public

__all__ = ["SpectrumBatch", "PreparedSpectrum", "prepare_spectrum", "prepare_spectra",
           "warn_skipped", "ERROR_MODES", "to_batch", "iter_spectra",
           "is_single_spectrum", "wavelength_grid", "log_bin_edges", "split_masked",
           "canonical_flux", "flux_in_unit", "fraction_outside",
           "check_wavelength_range", "SpectrumInputError", "SpectrumInputWarning",
           "NoUncertaintyWarning", "WavelengthRangeWarning", "FLAM"]

# The constants are assigned here, not only imported: the API docs read the description
# of a constant from the source of the module it is documented in (this one).

#: What `spectok.encode` and `spectok.encode_catalogue` can do with a spectrum that
#: cannot be used: raise its error, or leave it out with a warning or silently.
ERROR_MODES = errors.ERROR_MODES

FLAM = units.FLAM
"""Canonical unit of spectral flux density (f_λ)."""
