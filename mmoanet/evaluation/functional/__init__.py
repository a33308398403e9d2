from .panoptic_io import (bgr_to_id, decode_panoptic_png, id_to_rgb,
                          load_panoptic_png, rgb_to_id)
from .panoptic_quality import (VOID_ID, PanopticStats, merge_stats,
                               panoptic_stats_single, pq_average, pq_summary)
from .panoptic_segments import fusion_ids_to_coco, segment_areas

__all__ = [
    'VOID_ID', 'PanopticStats', 'bgr_to_id', 'decode_panoptic_png',
    'fusion_ids_to_coco', 'id_to_rgb', 'load_panoptic_png', 'merge_stats',
    'panoptic_stats_single', 'pq_average', 'pq_summary', 'rgb_to_id',
    'segment_areas'
]
