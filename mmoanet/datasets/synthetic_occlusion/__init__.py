"""Synthetic occlusion scenes in the COCO panoptic + instances layout.

COCO cannot be downloaded everywhere, yet the spatial ranking module (SRM,
Sec. 3.2) needs data where detection-score order is wrong: a small, rare
object (a tie) lying on a large, frequent one (a person) that a detector
scores higher. These scenes build that in (see :mod:`.scene` for the depth
rule and :mod:`.coco_writer` for the files). Colours and shapes are strong,
texture noise modest, so a ResNet-18 trained from scratch learns them in
minutes. Generation is deterministic from the seed.
"""
from .coco_writer import (ANN_STYLES, generate_synthetic_occlusion,
                          overlap_statistics)
from .scene import (STUFF_SPECS, SYNTHETIC_OCCLUSION_METAINFO, THING_SPECS,
                    Scene, SceneObject, StuffSpec, ThingSpec, coco_like_mask,
                    make_scene)

__all__ = [
    'ANN_STYLES', 'SYNTHETIC_OCCLUSION_METAINFO', 'STUFF_SPECS', 'THING_SPECS',
    'Scene', 'SceneObject', 'StuffSpec', 'ThingSpec', 'coco_like_mask',
    'generate_synthetic_occlusion', 'make_scene', 'overlap_statistics'
]
