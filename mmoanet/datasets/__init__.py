from .coco_panoptic_instances import CocoPanopticInstancesDataset
from .exceptions import (DatasetItemError, PanopticAnnotationError,
                         PanopticFileNotFoundError)
from .srm_annotation_dataset import SRMAnnotationDataset
from .synthetic_occlusion import (SYNTHETIC_OCCLUSION_METAINFO,
                                  generate_synthetic_occlusion,
                                  overlap_statistics)
from .transforms import LoadPanopticInstanceAnnotations

__all__ = [
    'CocoPanopticInstancesDataset', 'DatasetItemError',
    'LoadPanopticInstanceAnnotations', 'PanopticAnnotationError',
    'PanopticFileNotFoundError', 'SRMAnnotationDataset',
    'SYNTHETIC_OCCLUSION_METAINFO', 'generate_synthetic_occlusion',
    'overlap_statistics'
]
