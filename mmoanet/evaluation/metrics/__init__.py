from .dump_panoptic_results import DumpPanopticResults, load_panoptic_dump
from .multi_order_panoptic_metric import MultiOrderPanopticMetric
from .occlusion_order_metric import OcclusionOrderMetric
from .panoptic_error_metric import PanopticErrorMetric
from .panoptic_occlusion_metric import PanopticOcclusionMetric

__all__ = [
    'DumpPanopticResults', 'load_panoptic_dump', 'MultiOrderPanopticMetric',
    'OcclusionOrderMetric', 'PanopticErrorMetric', 'PanopticOcclusionMetric'
]
