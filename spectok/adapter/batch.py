"""Padding prepared spectra into one `SpectrumBatch` of tensors for the model.

The arms of each spectrum lie end to end in order of wavelength, each padded to a
whole number of patches, so no patch mixes two arms and nothing is resampled.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import NoUncertaintyWarning, SpectrumInputError
from .prepare import PreparedSpectrum, check_spectra, prepare_spectrum

__all__ = ["SpectrumBatch", "to_batch"]

#: Largest normalised error passed on (the model clips log σ far below it).
_MAX_RELATIVE_SIGMA = 1e30


@dataclass
class SpectrumBatch:
    """Padded tensors for a batch of spectra, ready for the model.

    Attributes
    ----------
    log_wavelength : `~torch.Tensor`, (batch, pixels), float64
        ln of vacuum wavelength in Å.
    flux, sigma : `~torch.Tensor`, (batch, pixels), float32
        Flux and 1σ error divided by ``scale`` (0 and 1 at unusable pixels).
    spacing : `~torch.Tensor`, (batch, pixels), float32
        ln λ step per pixel (the sampling).
    valid, observed : `~torch.Tensor` of bool, (batch, pixels)
        Usable pixels; real pixels (not padding).
    scale : `~torch.Tensor`, (batch,), float64
        Flux scale of each spectrum, in its canonical unit.
    lengths : `~torch.Tensor`, (batch,), int64
        Pixel slots used by each spectrum (a multiple of the patch size).
    spectra : list of `PreparedSpectrum`
        Per-spectrum units, labels and ids.
    """

    log_wavelength: torch.Tensor
    flux: torch.Tensor
    sigma: torch.Tensor
    spacing: torch.Tensor
    valid: torch.Tensor
    observed: torch.Tensor
    scale: torch.Tensor
    lengths: torch.Tensor
    spectra: list = field(default_factory=list)

    def __len__(self):
        return self.flux.shape[0]

    def to(self, device):
        """Return a copy with every tensor on ``device``."""
        moved = {name: getattr(self, name).to(device) for name in
                 ("log_wavelength", "flux", "sigma", "spacing", "valid", "observed",
                  "scale", "lengths")}
        return SpectrumBatch(**moved, spectra=self.spectra)

    def model_inputs(self):
        """The tensors `~spectok.model.SpectralTokenizer.encode` takes, in its argument order."""
        return (self.log_wavelength, self.flux, self.sigma, self.valid, self.observed,
                self.spacing)


# -- padding ---------------------------------------------------------------------------

class _SlotLayout:
    """Where the concatenated real pixels of a batch go in its padded (spectra, slots) arrays.

    Each arm is followed by padding to a whole number of patches, and the
    last arm of a row also by the row's padding to the longest row. `place`
    fills an array with two boolean-mask assignments, whatever the number of
    spectra and arms.

    Parameters
    ----------
    arm_length, arm_padding : `~numpy.ndarray` of int
        Real pixels and padding slots of each arm, arms of all rows in order.
    last_arm : `~numpy.ndarray` of int
        Index of the last arm of each row.
    lengths : `~numpy.ndarray` of int
        Slots used by each row.
    """

    def __init__(self, arm_length, arm_padding, last_arm, lengths):
        self.shape = (len(lengths), int(lengths.max()))
        self.padding = arm_padding.copy()
        self.padding[last_arm] += self.shape[1] - lengths
        self.real = np.repeat(np.tile([True, False], len(arm_length)),
                              np.column_stack([arm_length, self.padding]).ravel())
        self.real = self.real.reshape(self.shape)

    def place(self, values, fill, dtype):
        """Padded array of ``values`` (all real pixels); ``fill`` is a scalar or one per arm."""
        if np.ndim(fill) == 0:
            out = np.full(self.shape, fill, dtype)
        else:
            out = np.empty(self.shape, dtype)
            out[~self.real] = np.repeat(fill, self.padding)
        out[self.real] = values
        return out


def _arm_gradient(log_wave, starts, stops):
    """`numpy.gradient` of each arm of the concatenated ``log_wave``, all arms at once."""
    spacing = np.empty_like(log_wave)
    spacing[1:-1] = (log_wave[2:] - log_wave[:-2]) / 2.0
    spacing[starts] = log_wave[starts + 1] - log_wave[starts]
    spacing[stops - 1] = log_wave[stops - 1] - log_wave[stops - 2]
    return spacing


def to_batch(spectra, patch_size=32, medium=None, warn_missing_uncertainty=True):
    """Convert spectra into one padded `SpectrumBatch`.

    Parameters
    ----------
    spectra : list of spectrum-like or of `PreparedSpectrum`
        The spectra (see `prepare_spectrum` for the accepted kinds).
    patch_size : int
        Each arm is padded to a multiple of this many pixels.
    medium : {None, "air", "vacuum"}
        Medium of the wavelengths of every spectrum (`None`: from each
        spectrum's ``meta['medium']``, default vacuum).
    warn_missing_uncertainty : bool
        Emit one `NoUncertaintyWarning` when some spectra have no uncertainty.

    Returns
    -------
    `SpectrumBatch`

    Raises
    ------
    TypeError
        ``spectra`` is one spectrum rather than a list of them.
    SpectrumInputError, astropy.units.UnitConversionError
        As `prepare_spectrum`, naming the offending spectrum.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from spectok.adapter import to_batch
    >>> wave = np.linspace(4000, 5000, 100) * u.AA
    >>> flux = np.full(100, 3.0) * u.Jy
    >>> batch = to_batch([(wave, flux, 0.1 * flux), (wave[:40], flux[:40], 0.1 * flux[:40])])
    >>> tuple(batch.flux.shape), batch.lengths.tolist()
    ((2, 128), [128, 64])
    """
    prepared = [s if isinstance(s, PreparedSpectrum) else prepare_spectrum(s, i, medium,
                                                                           patch_size)
                for i, s in enumerate(check_spectra(spectra, "spectra"))]
    if not prepared:
        raise SpectrumInputError("no spectra given: the list is empty")
    missing = [p.label for p in prepared if not p.has_uncertainty]
    if missing and warn_missing_uncertainty:
        warnings.warn(f"{len(missing)} of {len(prepared)} spectra have no uncertainty "
                      f"({', '.join(missing[:3])}{', …' if len(missing) > 3 else ''}); using a "
                      "constant noise level per arm estimated from the flux (DER_SNR)",
                      NoUncertaintyWarning, stacklevel=2)
    # Every arm of every spectrum at once, as one concatenation of real pixels.
    arm_length = np.array([len(w) for p in prepared for w in p.wavelength])
    arms_per_row = np.array([len(p.wavelength) for p in prepared])
    row = np.repeat(np.arange(len(prepared)), arms_per_row)
    arm_padding = -arm_length % patch_size
    lengths = np.bincount(row, weights=arm_length + arm_padding).astype(int)
    stops = np.cumsum(arm_length)
    starts = stops - arm_length
    layout = _SlotLayout(arm_length, arm_padding, np.cumsum(arms_per_row) - 1, lengths)

    log_wave = np.log(np.concatenate([w for p in prepared for w in p.wavelength]))
    spacing = _arm_gradient(log_wave, starts, stops)
    valid = np.concatenate([v for p in prepared for v in p.valid])
    scale = np.repeat([p.scale for p in prepared],
                      np.bincount(row, weights=arm_length).astype(int))
    with np.errstate(over="ignore", invalid="ignore"):  # at invalid pixels only
        flux = np.where(valid, np.concatenate([f for p in prepared for f in p.flux]) / scale, 0)
        sigma = np.where(valid, np.minimum(np.concatenate(
            [s for p in prepared for s in p.sigma]) / scale, _MAX_RELATIVE_SIGMA), 1)
    # Padding repeats the last real pixel before it.
    log_wave = layout.place(log_wave, log_wave[stops - 1], np.float64)
    spacing = layout.place(spacing, spacing[stops - 1], np.float32)
    flux = layout.place(flux, 0, np.float32)
    sigma = layout.place(sigma, 1, np.float32)
    valid = layout.place(valid, False, bool)
    observed = layout.real
    return SpectrumBatch(
        log_wavelength=torch.from_numpy(log_wave), flux=torch.from_numpy(flux),
        sigma=torch.from_numpy(sigma), spacing=torch.from_numpy(spacing),
        valid=torch.from_numpy(valid), observed=torch.from_numpy(observed),
        scale=torch.tensor([p.scale for p in prepared], dtype=torch.float64),
        lengths=torch.tensor(lengths), spectra=prepared)
