from .inference import (ANNOTATION_LOADERS, coco_categories,
                        inference_panoptic, init_model, panoptic_to_coco)
from .panoptic_inferencer import (InputError, PanopticInferencer,
                                  inference_summary)

__all__ = [
    'ANNOTATION_LOADERS', 'coco_categories', 'inference_panoptic',
    'init_model', 'panoptic_to_coco', 'InputError', 'PanopticInferencer',
    'inference_summary'
]
