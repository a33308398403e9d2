from . import panoptic_fusion_heads
from .oanet_stuff_head import OANetStuffHead
from .panoptic_fusion_heads import *  # noqa: F401,F403
from .spatial_ranking_module import SpatialRankingModule

__all__ = ['OANetStuffHead', 'SpatialRankingModule'
           ] + panoptic_fusion_heads.__all__
