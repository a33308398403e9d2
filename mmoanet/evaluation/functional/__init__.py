from .panoptic_quality import (VOID_ID, PanopticStats, id_to_rgb,
                               load_panoptic_png, merge_stats,
                               panoptic_stats_single, pq_average,
                               pq_compute_files, pq_summary, rgb_to_id,
                               stats_from_annotations)

__all__ = [
    'VOID_ID', 'PanopticStats', 'id_to_rgb', 'load_panoptic_png',
    'merge_stats', 'panoptic_stats_single', 'pq_average', 'pq_compute_files',
    'pq_summary', 'rgb_to_id', 'stats_from_annotations'
]
