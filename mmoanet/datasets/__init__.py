from .coco_panoptic_instances import CocoPanopticInstancesDataset
from .exceptions import PanopticAnnotationError, PanopticFileNotFoundError
from .synthetic_occlusion import (SYNTHETIC_OCCLUSION_METAINFO,
                                  generate_synthetic_occlusion,
                                  overlap_statistics)
from .transforms import LoadPanopticInstanceAnnotations, rgb_to_segment_id

__all__ = [
    'CocoPanopticInstancesDataset', 'LoadPanopticInstanceAnnotations',
    'PanopticAnnotationError', 'PanopticFileNotFoundError',
    'SYNTHETIC_OCCLUSION_METAINFO', 'generate_synthetic_occlusion',
    'overlap_statistics', 'rgb_to_segment_id'
]
