"""ONNX export and onnxruntime inference (optional extra ``deploy``).

Importing this package needs only torch; onnxruntime is imported when an
:class:`ORTPanopticModel` is made.
"""
from .graphs import graph_modules, run_trunk, trunk_output_names
from .onnx_export import export_onnx
from .ort_model import (ORTPanopticModel, attach_graphs, evaluate_onnx,
                        read_manifest)

__all__ = [
    'ORTPanopticModel', 'attach_graphs', 'evaluate_onnx', 'export_onnx',
    'graph_modules', 'read_manifest', 'run_trunk', 'trunk_output_names'
]
