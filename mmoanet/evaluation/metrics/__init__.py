from .multi_order_panoptic_metric import MultiOrderPanopticMetric
from .occlusion_order_metric import OcclusionOrderMetric

__all__ = ['MultiOrderPanopticMetric', 'OcclusionOrderMetric']
