"""mmoanet: OANet panoptic segmentation for MMDetection 3.x.

Importing the package checks the OpenMMLab versions, registers every mmoanet
component in mmdet's registries, makes mmengine read local checkpoints
with ``weights_only=True`` (see :mod:`mmoanet.utils.checkpoint`) and lets
configs anywhere inherit ``mmoanet::`` configs (see
:mod:`mmoanet.utils.config_package`).
"""
# isort: off
from .utils.dependencies import check_dependencies
from .version import __version__  # noqa: F401

check_dependencies()

# Importing the subpackages registers their components; the version guard
# above must run first so that a wrong stack fails with a readable message.
from . import datasets, engine, evaluation, models, visualization  # noqa: E402
from .datasets import *  # noqa: E402,F401,F403
from .engine import *  # noqa: E402,F401,F403
from .evaluation import *  # noqa: E402,F401,F403
from .models import *  # noqa: E402,F401,F403
from .visualization import *  # noqa: E402,F401,F403
from .utils import register_safe_checkpoint_loader  # noqa: E402
from .utils.config_package import register_config_package  # noqa: E402
# isort: on

register_safe_checkpoint_loader()
register_config_package()  # configs elsewhere may inherit 'mmoanet::...'

__all__ = (['__version__', 'register_safe_checkpoint_loader'] +
           models.__all__ + datasets.__all__ + engine.__all__ +
           evaluation.__all__ + visualization.__all__)
