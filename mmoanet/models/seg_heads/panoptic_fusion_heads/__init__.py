from .srm_fusion_head import SRMFusionHead

__all__ = ['SRMFusionHead']
