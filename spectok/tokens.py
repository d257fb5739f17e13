"""Result objects of `spectok.encode`: `SpectralTokens` (one) and `TokenBatch` (many)."""

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.table import Table

from .adapter import log_bin_edges

__all__ = ["SpectralTokens", "TokenBatch"]


@dataclass
class SpectralTokens:
    """Tokens and embedding of one spectrum.

    Attributes
    ----------
    tokens : `~numpy.ndarray`, shape (n_patches, token_dim)
        One continuous token per patch of the native grid.
    embedding : `~numpy.ndarray`, shape (width,)
        The pooled embedding of the whole spectrum.
    patch_edges : `~astropy.units.Quantity`, shape (n_patches, 2)
        First and last vacuum wavelength of the real pixels of each patch.
    valid : `~numpy.ndarray` of bool, shape (n_patches,)
        Patches that took part in attention (at least half their pixels usable).
    scale : `~astropy.units.Quantity`
        The spectrum's flux scale (median of ``|flux|``), kept so amplitude is not
        lost: the tokens themselves do not depend on it.
    flux_unit : `~astropy.units.Unit`
        The unit the spectrum came in; `~spectok.decode` returns flux in it.
    patch_log_wavelength, patch_log_spacing : `~numpy.ndarray`, shape (n_patches,)
        Patch geometry used by the decoder: mean ln(λ/Å) and log10 of the
        ln λ step per pixel.
    patch_n_pixels : `~numpy.ndarray` of int, shape (n_patches,)
        Real pixels of each patch (fewer than the patch size in the last
        patch of an arm).
    id : object
        ``meta['id']`` of the input spectrum, if it had one.
    model : str
        Name of the model that made the tokens.

    Examples
    --------
    `spectok.encode` of one spectrum gives its tokens: one row of ``tokens``
    per patch of the spectrum's own pixels, and one ``embedding`` of fixed
    length whatever the grid (features for a probe or a similarity search).

    >>> import spectok
    >>> tokens = spectok.encode(spectok.datasets.example_spectrum())
    >>> tokens.tokens.shape, tokens.embedding.shape
    ((143, 32), (128,))
    >>> tokens.patch_edges[0].round(1)  # the first patch's pixels, vacuum wavelength
    <Quantity [3621.6, 3647.5] Angstrom>
    >>> int(tokens.valid.sum())  # patches with enough usable pixels to take part
    143
    >>> tokens.tokens[tokens.valid].shape  # the tokens of those patches only
    (143, 32)
    >>> tokens.id, tokens.model
    ('manga-test-0', 'spectok-small')
    """

    tokens: np.ndarray
    embedding: np.ndarray
    patch_edges: u.Quantity
    valid: np.ndarray
    scale: u.Quantity
    flux_unit: u.UnitBase
    patch_log_wavelength: np.ndarray
    patch_log_spacing: np.ndarray
    patch_n_pixels: np.ndarray
    id: object = None
    model: str = ""

    @property
    def n_patches(self):
        """Number of patches (and tokens)."""
        return len(self.tokens)

    def to_table(self):
        """One row per patch: wavelength range, validity and the token.

        Returns
        -------
        `~astropy.table.Table`

        Examples
        --------
        >>> import spectok
        >>> tokens = spectok.encode(spectok.datasets.example_spectrum())
        >>> table = tokens.to_table()
        >>> table.colnames
        ['patch', 'wavelength_min', 'wavelength_max', 'valid', 'token']
        """
        table = Table({
            "patch": np.arange(self.n_patches),
            "wavelength_min": self.patch_edges[:, 0],
            "wavelength_max": self.patch_edges[:, 1],
            "valid": self.valid,
            "token": self.tokens,
        })
        table.meta.update({"id": self.id, "model": self.model, "scale": str(self.scale)})
        return table

    def aligned(self, bin_edges, medium="vacuum"):
        """The tokens averaged onto fixed wavelength bins: one layout for every instrument.

        Each bin gets the mean of the valid tokens whose patches overlap it,
        weighted by the overlap in ln λ (a patch spans its pixels, half a
        pixel beyond the first and last). Spectra of any grid, resolution and
        wavelength range then give arrays of one shape whose rows mean the
        same wavelengths: fixed-length features for a probe that keep where
        in the spectrum each feature is, which the pooled `embedding` does not.

        Parameters
        ----------
        bin_edges : `~astropy.units.Quantity`, shape (n_bins + 1,)
            Strictly monotonic bin edges in any spectral unit.
        medium : {"vacuum", "air"}
            Medium of ``bin_edges``.

        Returns
        -------
        ``numpy.ma.MaskedArray``, shape (n_bins, token_dim)
            Masked in bins that no valid patch reaches (``.filled(0.0)`` gives
            plain features), in the order of ascending wavelength.

        Raises
        ------
        spectok.adapter.SpectrumInputError, astropy.units.UnitConversionError
            Bin edges without a spectral unit, fewer than two, or not
            strictly monotonic.

        Examples
        --------
        >>> import astropy.units as u, numpy as np
        >>> import spectok
        >>> tokens = spectok.encode(spectok.datasets.example_spectrum())
        >>> grid = tokens.aligned(np.geomspace(3000, 12000, 31) * u.AA)
        >>> grid.shape, int(grid.mask.any(axis=1).sum())
        ((30, 32), 7)
        """
        return np.ma.MaskedArray(*_aligned(self, log_bin_edges(bin_edges, medium)))

    def __repr__(self):
        lo, hi = self.patch_edges[0, 0], self.patch_edges[-1, 1]
        return (f"<SpectralTokens {self.n_patches} tokens × {self.tokens.shape[1]} "
                f"({self.valid.sum()} valid), embedding {self.embedding.shape[0]}, "
                f"{lo:.1f} – {hi:.1f}, model {self.model!r}>")


def _aligned(tokens, log_edges):
    """(bin means, mask) of `SpectralTokens.aligned` for ascending ln λ bin edges."""
    half_pixel = 0.5 * 10.0 ** tokens.patch_log_spacing[tokens.valid]
    edges = np.log(tokens.patch_edges[tokens.valid].to_value(u.AA))
    lo, hi = edges[:, :1] - half_pixel[:, None], edges[:, 1:] + half_pixel[:, None]
    overlap = np.clip(np.minimum(hi, log_edges[1:]) - np.maximum(lo, log_edges[:-1]), 0, None)
    weight = overlap.sum(axis=0)
    covered = weight > 0
    means = np.zeros((len(weight), tokens.tokens.shape[1]), dtype=np.float64)
    means[covered] = (overlap.T @ tokens.tokens[tokens.valid])[covered] / weight[covered, None]
    return means, np.broadcast_to(~covered[:, None], means.shape).copy()


@dataclass
class TokenBatch:
    """Tokens and embeddings of many spectra, in input order.

    Attributes
    ----------
    items : list of `SpectralTokens`
        One per encoded spectrum.
    indices : `~numpy.ndarray` of int
        Position in the input of each item (differs from ``range(len(items))``
        only when spectra were skipped).
    skipped : list of (int, str)
        Input position and error message of each spectrum that could not be
        encoded (with ``errors="skip"`` or ``"warn"``).
    widths : tuple of (int, int)
        Widths of the model's embedding and tokens, so that the arrays of a
        batch with no items (every spectrum skipped) still have the model's
        widths; (0, 0) where unknown. `encode` sets it.

    Raises
    ------
    TypeError
        ``items`` is not a list of `SpectralTokens`.
    ValueError
        ``indices`` is not one integer per item.

    Examples
    --------
    `spectok.encode` of a list of spectra gives a batch; with
    ``errors="skip"`` a spectrum that cannot be encoded (here one with no
    finite flux) is left out and noted.

    >>> import numpy as np
    >>> import spectok
    >>> spectrum = spectok.datasets.example_spectrum()
    >>> unusable = (spectrum.spectral_axis, spectrum.flux * np.nan)
    >>> batch = spectok.encode([spectrum, unusable, spectrum], errors="skip")
    >>> batch
    <TokenBatch 2 spectra, 1 skipped>
    >>> batch.embedding.shape  # one row per encoded spectrum
    (2, 128)
    >>> batch.indices.tolist(), [index for index, _ in batch.skipped]  # positions in the input
    ([0, 2], [1])
    >>> for tokens in batch:  # a SpectralTokens each
    ...     print(tokens.id, tokens.tokens.shape)
    manga-test-0 (143, 32)
    manga-test-0 (143, 32)
    """

    items: list
    indices: np.ndarray
    skipped: list = field(default_factory=list)
    widths: tuple = (0, 0)

    def __post_init__(self):
        if not (isinstance(self.items, list)
                and all(isinstance(item, SpectralTokens) for item in self.items)):
            raise TypeError(f"items must be a list of SpectralTokens, got "
                            f"{type(self.items).__name__}")
        self.indices = np.asarray(self.indices)
        if self.indices.shape != (len(self.items),) or self.indices.dtype.kind not in "iu":
            raise ValueError(f"indices must be {len(self.items)} integers, one per item, got "
                             f"{self.indices!r:.80}")

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        if isinstance(index, (bool, np.bool_)):
            raise TypeError("a TokenBatch is indexed by position or slice, not by a bool")
        try:
            return self.items[index]
        except IndexError:
            raise IndexError(f"index {index} is out of range for a batch of {len(self.items)} "
                             "encoded spectra (positions count encoded spectra; "
                             "`indices` gives each one's position in the input)") from None

    def __iter__(self):
        return iter(self.items)

    @property
    def embedding(self):
        """Embeddings stacked into an array of shape (n_spectra, width)."""
        if not self.items:
            return np.empty((0, self.widths[0]), np.float32)
        return np.stack([item.embedding for item in self.items])

    @property
    def tokens(self):
        """Per-spectrum token arrays (their lengths differ)."""
        return [item.tokens for item in self.items]

    def aligned(self, bin_edges, medium="vacuum"):
        """`SpectralTokens.aligned` of every spectrum, stacked.

        Parameters
        ----------
        bin_edges, medium
            As for `SpectralTokens.aligned`.

        Returns
        -------
        ``numpy.ma.MaskedArray``, shape (n_spectra, n_bins, token_dim)

        Raises
        ------
        spectok.adapter.SpectrumInputError, astropy.units.UnitConversionError
            As for `SpectralTokens.aligned`.

        Examples
        --------
        >>> import astropy.units as u, numpy as np
        >>> import spectok
        >>> s = spectok.datasets.example_spectrum()
        >>> spectok.encode([s, s]).aligned(np.geomspace(4000, 8000, 9) * u.AA).shape
        (2, 8, 32)
        """
        log_edges = log_bin_edges(bin_edges, medium)
        if not self.items:
            return np.ma.MaskedArray(np.empty((0, len(log_edges) - 1, self.widths[1])))
        means, masks = zip(*(_aligned(item, log_edges) for item in self.items))
        return np.ma.MaskedArray(np.stack(means), np.stack(masks))

    @property
    def ids(self):
        """``meta['id']`` of each encoded spectrum (None where absent)."""
        return [item.id for item in self.items]

    def to_table(self):
        """One row per spectrum: input index, id, flux scale and the embedding.

        Returns
        -------
        `~astropy.table.Table`

        Examples
        --------
        >>> import spectok
        >>> s = spectok.datasets.example_spectrum()
        >>> spectok.encode([s, s]).to_table().colnames
        ['index', 'id', 'scale', 'unit', 'n_patches', 'embedding']
        """
        return Table({
            "index": self.indices,
            "id": [str(i) if i is not None else "" for i in self.ids],
            "scale": [item.scale.value for item in self.items],
            "unit": [item.scale.unit.to_string() for item in self.items],
            "n_patches": [item.n_patches for item in self.items],
            "embedding": self.embedding,
        }, meta={"model": self.items[0].model if self.items else "",
                 "skipped": [int(i) for i, _ in self.skipped]})

    def __repr__(self):
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        return f"<TokenBatch {len(self)} spectra{skipped}>"
