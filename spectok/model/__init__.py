"""The tokenizer network and its weights (PyTorch modules only; no units)."""

from .layers import *  # noqa: F401,F403
from .tokenizer import *  # noqa: F401,F403
from .weights import *  # noqa: F401,F403
