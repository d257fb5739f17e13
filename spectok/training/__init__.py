"""Self-supervised pretraining: objectives, the data stream and the training loop."""

from .config import *  # noqa: F401,F403
from .data import *  # noqa: F401,F403
from .loop import *  # noqa: F401,F403
from .objectives import *  # noqa: F401,F403
