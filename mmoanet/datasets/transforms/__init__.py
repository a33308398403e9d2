from .loading import LoadPanopticInstanceAnnotations, rgb_to_segment_id

__all__ = ['LoadPanopticInstanceAnnotations', 'rgb_to_segment_id']
