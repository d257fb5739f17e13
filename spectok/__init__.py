"""spectok: universal tokens and embeddings for any 1-D astronomical spectrum.

The front door is `encode`: give it any spectrum on its own wavelength grid
and get back tokens and an embedding. `decode` renders tokens on any grid.
"""

from astropy import config as _config

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - running from a source tree without setuptools_scm
    __version__ = "0.0.0"


class Conf(_config.ConfigNamespace):
    """Configuration parameters for `spectok`."""

    default_model = _config.ConfigItem(
        "spectok-small", "Name of the shipped model (or path of a model's JSON description) "
        "used when none is given.")
    device = _config.ConfigItem(
        "auto", "Device for encoding: 'auto' (GPU when there is one), 'cpu', 'cuda', 'cuda:1', …")
    batch_size = _config.ConfigItem(64, "Spectra per forward pass in encode.")
    max_pixels = _config.ConfigItem(
        1_000_000, "Most pixels (all arms together) one spectrum may have. Longer spectra are "
        "refused with a SpectrumInputError before any array is converted. The default is ten "
        "times the longest survey spectra (about 10^5 pixels); encoding a million pixels with "
        "spectok-small takes about 1 GB and 10 s on one CPU core, and both grow linearly.")


conf = Conf()

from . import datasets  # noqa: E402, F401 - spectok.datasets.example_spectrum() etc.
from .encode import decode, encode, get_model  # noqa: E402
from .catalogue import encode_catalogue  # noqa: E402
from .model import load_model  # noqa: E402
from .tokens import SpectralTokens, TokenBatch  # noqa: E402

__all__ = ["encode", "decode", "encode_catalogue", "load_model", "get_model", "SpectralTokens",
           "TokenBatch", "conf", "Conf", "__version__"]
