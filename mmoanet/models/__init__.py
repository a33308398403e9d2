from . import detectors, seg_heads
from .detectors import *  # noqa: F401,F403
from .seg_heads import *  # noqa: F401,F403

__all__ = detectors.__all__ + seg_heads.__all__
