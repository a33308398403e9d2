from .oanet_stuff_head import OANetStuffHead
from .panoptic_fusion_heads import SRMFusionHead
from .spatial_ranking_module import SpatialRankingModule

__all__ = ['OANetStuffHead', 'SpatialRankingModule', 'SRMFusionHead']
