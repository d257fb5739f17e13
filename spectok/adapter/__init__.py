"""The unit-aware adapter: anything spectrum-like → a padded `SpectrumBatch`.

This is the only module of spectok that touches `astropy.units`. Everything
downstream sees plain tensors:

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

# The private helpers stay importable from here, as from the single module before the
# split (spectok.adapter._median, _check_error_mode, ...).
from .batch import _MAX_RELATIVE_SIGMA, _arm_gradient, _SlotLayout  # noqa: F401
from .errors import _check_error_mode  # noqa: F401
from .inputs import _arm_arrays, _label, _medium_of, _prepare_arm  # noqa: F401
from .prepare import (_MAX_DYNAMIC_RANGE, _MIN_RELATIVE_NOISE, _active_patches,  # noqa: F401
                      _check_length, _der_snr_noise, _flux_scale, _is_pair, _median,
                      _not_a_spectrum, _prepare, _require_usable_patch)
from .units import (_COUNT_UNITS, _air_to_vacuum, _canonical_unit,  # noqa: F401
                    _classify_flux_unit, _conversion_factor, _sigma_quantity,
                    _wavelength_angstrom)

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
