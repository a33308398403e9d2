from .random_panoptic import (random_categories, random_panoptic_pair,
                              write_random_panoptic_set)

__all__ = [
    'random_categories', 'random_panoptic_pair', 'write_random_panoptic_set'
]
