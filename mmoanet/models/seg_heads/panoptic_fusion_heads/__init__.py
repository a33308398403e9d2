from .srm_fusion_head import (SRMFusionHead, panoptic_sample_fields,
                              same_class_by_score)

__all__ = ['SRMFusionHead', 'panoptic_sample_fields', 'same_class_by_score']
