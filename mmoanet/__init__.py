"""mmoanet: OANet panoptic segmentation for MMDetection 3.x.

Importing the package checks the OpenMMLab versions, registers every mmoanet
component in mmdet's registries and makes mmengine read local checkpoints
with ``weights_only=True`` (see :mod:`mmoanet.utils.checkpoint`).
"""
# isort: off
from .utils.dependencies import check_dependencies
from .version import __version__

check_dependencies()

# Importing the subpackages registers their components; the version guard
# above must run first so that a wrong stack fails with a readable message.
from .datasets import (  # noqa: E402
    CocoPanopticInstancesDataset, LoadPanopticInstanceAnnotations)
from .evaluation import MultiOrderPanopticMetric  # noqa: E402
from .models import (  # noqa: E402
    OANet, OANetStuffHead, SpatialRankingModule, SRMFusionHead)
from .utils import register_safe_checkpoint_loader  # noqa: E402
# isort: on

register_safe_checkpoint_loader()

__all__ = [
    '__version__', 'OANet', 'OANetStuffHead', 'SpatialRankingModule',
    'SRMFusionHead', 'CocoPanopticInstancesDataset',
    'LoadPanopticInstanceAnnotations', 'MultiOrderPanopticMetric',
    'register_safe_checkpoint_loader'
]
