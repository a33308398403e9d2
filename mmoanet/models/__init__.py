from .detectors import *  # noqa: F401,F403
from .seg_heads import *  # noqa: F401,F403
