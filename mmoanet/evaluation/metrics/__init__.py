from .multi_order_panoptic_metric import MultiOrderPanopticMetric

__all__ = ['MultiOrderPanopticMetric']
