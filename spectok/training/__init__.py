"""Self-supervised pretraining: losses, the training objective, data, checkpoints and the loop."""

from .checkpoints import *  # noqa: F401,F403
from .config import *  # noqa: F401,F403
from .data import *  # noqa: F401,F403
from .loop import *  # noqa: F401,F403
from .objective import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
