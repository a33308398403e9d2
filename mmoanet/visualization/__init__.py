from .panoptic_overlay import draw_order_comparison, draw_panoptic_overlay

__all__ = ['draw_order_comparison', 'draw_panoptic_overlay']
