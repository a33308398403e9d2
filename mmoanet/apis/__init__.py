from .inference import (ANNOTATION_LOADERS, coco_categories,
                        inference_panoptic, init_model, panoptic_to_coco)

__all__ = [
    'ANNOTATION_LOADERS', 'coco_categories', 'inference_panoptic',
    'init_model', 'panoptic_to_coco'
]
