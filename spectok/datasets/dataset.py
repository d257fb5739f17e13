"""The container every loader and simulator in `spectok.datasets` returns."""

from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table

__all__ = ["SpectrumDataset"]


@dataclass
class SpectrumDataset:
    """Spectra with one row of labels each.

    Parameters
    ----------
    spectra : list of `~specutils.Spectrum` or `~specutils.SpectrumList`
        The spectra, on their native grids. Multi-arm objects are
        `~specutils.SpectrumList` instances (one entry per arm).
    labels : `~astropy.table.Table`
        One row per spectrum, in the same order, with at least an ``id`` column.
    name : str
        Short name of the source, e.g. ``"miles"``.
    meta : dict, optional
        Provenance: the distribution the files came from, its version, notes.

    Raises
    ------
    ValueError
        If ``labels`` does not have one row per spectrum or lacks an ``id`` column.

    Examples
    --------
    >>> import astropy.units as u
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> from specutils import Spectrum
    >>> from spectok.datasets import SpectrumDataset
    >>> s = Spectrum(spectral_axis=np.linspace(4000, 5000, 100) * u.AA,
    ...              flux=np.ones(100) * u.Jy)
    >>> ds = SpectrumDataset([s], Table({"id": ["star-1"]}), name="demo")
    >>> len(ds), ds[0][1]["id"]
    (1, np.str_('star-1'))
    """

    spectra: list
    labels: Table
    name: str
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if "id" not in self.labels.colnames:
            raise ValueError(f"{self.name}: labels need an 'id' column")
        if len(self.labels) != len(self.spectra):
            raise ValueError(
                f"{self.name}: {len(self.spectra)} spectra but {len(self.labels)} label rows"
            )

    def __len__(self):
        return len(self.spectra)

    def __getitem__(self, index):
        """``(spectrum, label_row)`` for an integer; a sub-dataset for a slice or index array."""
        if isinstance(index, (int, np.integer)):
            return self.spectra[index], self.labels[index]
        rows = range(len(self))[index] if isinstance(index, slice) else list(index)
        return SpectrumDataset([self.spectra[i] for i in rows], self.labels[list(rows)],
                               name=self.name, meta=dict(self.meta))

    def __repr__(self):
        return (f"<SpectrumDataset {self.name!r}: {len(self)} spectra, "
                f"labels {self.labels.colnames}>")
