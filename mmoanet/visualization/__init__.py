from .panoptic_local_visualizer import (PanopticLocalVisualizer,
                                        align_instance_ids)

__all__ = ['PanopticLocalVisualizer', 'align_instance_ids']
