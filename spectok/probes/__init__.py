"""scikit-learn probes on spectok embeddings: redshift, stellar parameters, classes.

`SpectrumEmbedder` turns spectra into embedding arrays; the probes are
ordinary scikit-learn estimators on arrays, each with a choice of head
(``"ridge"``, ``"knn"``, ``"mlp"``, ``"kernel"``), standardised inputs, split-conformal
intervals (``predict_interval``) or prediction sets
(`SpectralClassProbe.predict_set`), and pickle-free persistence
(`save_probe` / `load_probe`).
"""

from .conformal import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .embedder import *  # noqa: F401,F403
from .regression import *  # noqa: F401,F403
from .classification import *  # noqa: F401,F403
from .persistence import *  # noqa: F401,F403
from . import conformal, heads, embedder, regression, classification, persistence  # noqa: E402

__all__ = (conformal.__all__ + heads.__all__ + embedder.__all__ + regression.__all__
           + classification.__all__ + persistence.__all__)
