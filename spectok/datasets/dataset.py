"""The container every loader and simulator in `spectok.datasets` returns."""

from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table

from ..adapter.prepare import check_spectra

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
    TypeError
        If ``spectra`` is one spectrum rather than a list of them (or a
        string, a dict or a set), or ``labels`` is not a
        `~astropy.table.Table`.
    ValueError
        If ``labels`` does not have one row per spectrum or lacks an ``id`` column.

    Notes
    -----
    Indexing follows numpy: an integer gives ``(spectrum, label_row)``; a
    slice, an array of positions or a boolean mask (``ds[ds.labels["z"] >
    0.5]``) gives a `SpectrumDataset` of those rows.

    Examples
    --------
    >>> import astropy.units as u
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> from specutils import Spectrum
    >>> from spectok.datasets import SpectrumDataset
    >>> s = Spectrum(spectral_axis=np.linspace(4000, 5000, 100) * u.AA,
    ...              flux=np.ones(100) * u.Jy)
    >>> ds = SpectrumDataset([s, s, s], Table({"id": ["a", "b", "c"], "teff": [4000, 6000, 9000]}),
    ...                      name="demo")
    >>> len(ds), ds[0][1]["id"]
    (3, np.str_('a'))
    >>> list(ds[ds.labels["teff"] > 5000].labels["id"])  # a boolean mask, as in numpy
    [np.str_('b'), np.str_('c')]
    """

    spectra: list
    labels: Table
    name: str
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.spectra = list(check_spectra(self.spectra, f"{self.name}: spectra"))
        if not isinstance(self.labels, Table):
            raise TypeError(f"{self.name}: labels must be an astropy Table (Table(columns) "
                            f"makes one from a dict), got a {type(self.labels).__name__}")
        if "id" not in self.labels.colnames:
            raise ValueError(f"{self.name}: labels need an 'id' column")
        if len(self.labels) != len(self.spectra):
            raise ValueError(
                f"{self.name}: {len(self.spectra)} spectra but {len(self.labels)} label rows"
            )

    def __len__(self):
        return len(self.spectra)

    def __getitem__(self, index):
        """``(spectrum, label_row)`` for an integer; a sub-dataset for a slice, an index
        array or a boolean mask (``ds[ds.labels["z"] > 0.5]``), as numpy indexes."""
        if isinstance(index, (bool, np.bool_)):
            raise TypeError(f"{self.name}: index a SpectrumDataset by position, slice, index "
                            "array or boolean mask, not by a bool")
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(f"{self.name}: index {index} is out of range for "
                                 f"{len(self)} spectra")
            return self.spectra[index], self.labels[index]
        if not isinstance(index, slice):
            index = np.asarray(index)
            if index.size == 0:
                index = index.astype(int)
        try:
            rows = np.arange(len(self))[index]
        except IndexError as error:   # a mask of another length, an index out of range
            raise IndexError(f"{self.name}: {error}") from None
        return SpectrumDataset([self.spectra[i] for i in rows], self.labels[rows],
                               name=self.name, meta=dict(self.meta))

    def __repr__(self):
        return (f"<SpectrumDataset {self.name!r}: {len(self)} spectra, "
                f"labels {self.labels.colnames}>")
