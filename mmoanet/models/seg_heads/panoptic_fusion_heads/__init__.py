from .srm_fusion_head import SRMFusionHead, panoptic_sample_fields

__all__ = ['SRMFusionHead', 'panoptic_sample_fields']
