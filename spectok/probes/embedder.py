"""`SpectrumEmbedder`: spectra in, embedding arrays out, inside a scikit-learn pipeline."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["SpectrumEmbedder"]


class SpectrumEmbedder(TransformerMixin, BaseEstimator):
    """Turn spectra into spectok embeddings (a scikit-learn transformer).

    ``transform`` runs `spectok.encode` and returns the pooled embeddings as
    an array, so the embedder can head a pipeline whose next steps are the
    probes: ``make_pipeline(SpectrumEmbedder(), RedshiftProbe())``. Nothing is
    learned: `fit` only records which model will be used and the width of
    its embedding.

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

    Attributes
    ----------
    model_name_ : str
        Name of the model used.
    n_features_out_ : int
        Width of the embedding.

    Examples
    --------
    >>> import spectok
    >>> from spectok.probes import SpectrumEmbedder
    >>> spectrum = spectok.datasets.example_spectrum()
    >>> X = SpectrumEmbedder().fit_transform([spectrum, spectrum])
    >>> X.shape
    (2, 128)
    """

    def __init__(self, model=None, batch_size=None, device=None, medium=None):
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.medium = medium

    def fit(self, X=None, y=None):
        """Record the model's name and embedding width; nothing is learned.

        Parameters
        ----------
        X : ignored
        y : ignored

        Returns
        -------
        self
        """
        from ..encode import get_model

        net = get_model(self.model, self.device)
        self.model_name_ = getattr(net, "name", "unnamed")
        self.n_features_out_ = int(net.config.width)
        return self

    def transform(self, X):
        """Encode spectra and return their embeddings.

        Parameters
        ----------
        X : spectrum-like, list of spectrum-like or `~spectok.datasets.SpectrumDataset`

        Returns
        -------
        `~numpy.ndarray`, shape (n_spectra, width), float32
            One row per spectrum, in input order.

        Raises
        ------
        spectok.adapter.SpectrumInputError, astropy.units.UnitConversionError
            A spectrum that cannot be encoded (rows must stay aligned with
            the labels, so none is skipped).
        """
        from ..datasets import SpectrumDataset
        from ..encode import encode
        from ..tokens import SpectralTokens

        spectra = X.spectra if isinstance(X, SpectrumDataset) else X
        result = encode(spectra, model=self.model, batch_size=self.batch_size,
                        device=self.device, medium=self.medium, progress=False, errors="raise")
        if isinstance(result, SpectralTokens):
            return result.embedding[None, :]
        return result.embedding

    def get_feature_names_out(self, input_features=None):
        """Names of the embedding columns: ``embedding0``, ``embedding1``, …

        Returns
        -------
        `~numpy.ndarray` of str
        """
        width = getattr(self, "n_features_out_", None)
        if width is None:
            from ..encode import get_model

            width = int(get_model(self.model, self.device).config.width)
        return np.array([f"embedding{i}" for i in range(width)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.non_deterministic = False
        return tags
