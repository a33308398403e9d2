from .panoptic_files import pq_compute_files
from .random_panoptic import (random_categories, random_panoptic_pair,
                              write_random_panoptic_set)

__all__ = [
    'pq_compute_files', 'random_categories', 'random_panoptic_pair',
    'write_random_panoptic_set'
]
