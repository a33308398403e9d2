from .loading import LoadPanopticInstanceAnnotations

__all__ = ['LoadPanopticInstanceAnnotations']
