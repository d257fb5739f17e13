"""Real spectra from published packages, instrument simulators, synthetic
galaxies and quasars, and survey readers."""

from .dataset import *  # noqa: F401,F403
from .instruments import *  # noqa: F401,F403
from .observing import *  # noqa: F401,F403
from .galaxies import *  # noqa: F401,F403
from .quasars import *  # noqa: F401,F403
from .mmu import *  # noqa: F401,F403
from .fetch import *  # noqa: F401,F403
from .miles import *  # noqa: F401,F403
from .spex import *  # noqa: F401,F403
from .templates import *  # noqa: F401,F403
from .examples import *  # noqa: F401,F403
from .split import *  # noqa: F401,F403
from .readers import *  # noqa: F401,F403
from .shipped import *  # noqa: F401,F403
