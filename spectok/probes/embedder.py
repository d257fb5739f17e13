"""`SpectrumEmbedder`: spectra in, embedding arrays out, inside a scikit-learn pipeline."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..adapter import log_bin_edges

__all__ = ["SpectrumEmbedder", "token_features"]


def token_features(batch, wavelength_bins=None):
    """The feature rows `SpectrumEmbedder` gives: pooled embedding, then aligned tokens.

    Parameters
    ----------
    batch : `~spectok.TokenBatch` or `~spectok.SpectralTokens`
        Encoded spectra (from `spectok.encode`); one spectrum's tokens give
        one row.
    wavelength_bins : `~astropy.units.Quantity`, optional
        Bin edges for `~spectok.TokenBatch.aligned` (zero where a spectrum
        does not reach); `None` gives the pooled embedding alone.

    Returns
    -------
    `~numpy.ndarray`, shape (n_spectra, width [+ n_bins × token_dim]), float32

    Raises
    ------
    spectok.adapter.SpectrumInputError, astropy.units.UnitConversionError
        ``wavelength_bins`` that are not strictly monotonic spectral edges.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> import spectok
    >>> from spectok.probes import token_features
    >>> s = spectok.datasets.example_spectrum()
    >>> token_features(spectok.encode([s, s]), np.geomspace(4000, 8000, 5) * u.AA).shape
    (2, 256)
    """
    from ..tokens import SpectralTokens, TokenBatch

    if isinstance(batch, SpectralTokens):
        batch = TokenBatch([batch], np.zeros(1, dtype=int))
    embedding = batch.embedding
    if wavelength_bins is None:
        return embedding
    aligned = batch.aligned(wavelength_bins).filled(0.0).astype(np.float32)
    n_spectra, n_bins, token_dim = aligned.shape
    return np.hstack([embedding, aligned.reshape(n_spectra, n_bins * token_dim)])


class SpectrumEmbedder(TransformerMixin, BaseEstimator):
    """Turn spectra into spectok embeddings (a scikit-learn transformer).

    ``transform`` runs `spectok.encode` and returns the pooled embeddings as
    an array, so the embedder can head a pipeline whose next steps are the
    probes: ``make_pipeline(SpectrumEmbedder(), RedshiftProbe())``. With
    ``wavelength_bins``, the tokens aligned on those bins
    (`~spectok.SpectralTokens.aligned`, zero where a spectrum does not reach)
    follow the pooled embedding in each row: features that keep where in
    wavelength each token was, which redshifts and stellar parameters need
    (see the benchmark in the model card). Nothing is learned: `fit` only
    records which model will be used and the number of features.

    It takes spectra, not arrays (a list of `~specutils.Spectrum`,
    `~specutils.SpectrumList` or ``(wavelength, flux[, uncertainty])``
    tuples, or a `~spectok.datasets.SpectrumDataset`), so scikit-learn's
    ``check_estimator``, which feeds numeric 2-D arrays, does not apply to it;
    the probes that follow it are checked instead.

    Parameters
    ----------
    model : `~spectok.model.SpectralTokenizer` or str, optional
        The model, or a shipped model name (default ``spectok.conf.default_model``).
    batch_size : int, optional
        Spectra per forward pass (default ``spectok.conf.batch_size``).
    device : str, optional
        Where to run (default ``spectok.conf.device``).
    medium : {None, "air", "vacuum"}
        Medium of the wavelengths; `None` reads each spectrum's ``meta["medium"]``.
    wavelength_bins : `~astropy.units.Quantity`, optional
        Edges (vacuum, any spectral unit, strictly monotonic) of the bins on
        which to add aligned tokens; `None` gives the pooled embedding alone.

    Attributes
    ----------
    model_name_ : str
        Name of the model used.
    n_features_out_ : int
        Features per spectrum: the embedding width, plus
        ``n_bins × token_dim`` with ``wavelength_bins``.

    Examples
    --------
    >>> import spectok
    >>> from spectok.probes import SpectrumEmbedder
    >>> spectrum = spectok.datasets.example_spectrum()
    >>> X = SpectrumEmbedder().fit_transform([spectrum, spectrum])
    >>> X.shape
    (2, 128)

    With 16 wavelength bins of 32-wide tokens as well:

    >>> import astropy.units as u, numpy as np
    >>> bins = np.geomspace(3700, 9000, 17) * u.AA
    >>> SpectrumEmbedder(wavelength_bins=bins).fit_transform([spectrum]).shape
    (1, 640)
    """

    def __init__(self, model=None, batch_size=None, device=None, medium=None,
                 wavelength_bins=None):
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.medium = medium
        self.wavelength_bins = wavelength_bins

    def fit(self, X=None, y=None):
        """Record the model's name and embedding width; nothing is learned.

        Parameters
        ----------
        X : ignored
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        spectok.adapter.SpectrumInputError, astropy.units.UnitConversionError
            ``wavelength_bins`` that are not strictly monotonic spectral edges.
        """
        from ..encode import get_model

        net = get_model(self.model, self.device)
        self.model_name_ = net.name
        self.n_features_out_ = len(self._feature_names(net.config))
        return self

    def _n_bins(self):
        if self.wavelength_bins is None:
            return 0
        return len(log_bin_edges(self.wavelength_bins)) - 1

    def _feature_names(self, config):
        names = [f"embedding{i}" for i in range(config.width)]
        names += [f"bin{b}_token{i}" for b in range(self._n_bins())
                  for i in range(config.token_dim)]
        return names

    def transform(self, X):
        """Encode spectra and return their embeddings.

        Parameters
        ----------
        X : spectrum-like, list of spectrum-like or `~spectok.datasets.SpectrumDataset`

        Returns
        -------
        `~numpy.ndarray`, shape (n_spectra, ``n_features_out_``), float32
            One row per spectrum, in input order.

        Raises
        ------
        spectok.adapter.SpectrumInputError, astropy.units.UnitConversionError
            A spectrum that cannot be encoded (rows must stay aligned with
            the labels, so none is skipped).

        Examples
        --------
        With a small untrained model (its embeddings are 32 wide):

        >>> import spectok
        >>> from spectok.model import CONFIGS, SpectralTokenizer
        >>> from spectok.probes import SpectrumEmbedder
        >>> embedder = SpectrumEmbedder(model=SpectralTokenizer(CONFIGS["tiny"]))
        >>> spectrum = spectok.datasets.example_spectrum()
        >>> embedder.transform([spectrum, spectrum]).shape
        (2, 32)
        """
        from ..encode import encode

        result = encode(X, model=self.model, batch_size=self.batch_size,
                        device=self.device, medium=self.medium, progress=False, errors="raise")
        return token_features(result, self.wavelength_bins)

    def get_feature_names_out(self, input_features=None):
        """Names of the columns: ``embedding0``, …, then ``bin0_token0``, … per wavelength bin.

        Returns
        -------
        `~numpy.ndarray` of str
        """
        from ..encode import get_model

        config = get_model(self.model, self.device).config
        return np.array(self._feature_names(config), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.non_deterministic = False
        return tags
