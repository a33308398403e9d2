"""Export a two-stage panoptic detector to ONNX graphs plus a manifest.

``torch.onnx.export`` (its TorchScript exporter, ``dynamo=False``: the
dynamo exporter needs ``onnxscript``, which the stack does not hold) writes
the graphs of :mod:`mmoanet.deploy.graphs`; ``deploy.json`` lists them with
their inputs and outputs, and ``config.py`` is the model's merged config,
from which :class:`mmoanet.deploy.ORTPanopticModel` builds the
post-processing. mmdeploy 1.3.1 was tried first and does not run on this
stack (docs/deployment.md).
"""
import io
import json
import math
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import mmengine
import torch
import torch.nn as nn
from mmengine.config import Config

from ..apis.inference import init_model
from ..utils import atomic_write, check_output_dir
from ..version import __version__
from .graphs import GRAPH_INPUTS, graph_modules, run_trunk, trunk_output_names

#: Format tag of ``deploy.json``; :class:`ORTPanopticModel` refuses others.
MANIFEST_FORMAT = 'mmoanet-onnx-1'
MANIFEST_NAME = 'deploy.json'
CONFIG_NAME = 'config.py'
DEFAULT_OPSET = 17


def _pad_divisor(cfg: Config) -> int:
    """The data preprocessor's ``pad_size_divisor`` (1 when unset)."""
    return int(
        cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1) or 1)


def example_inputs(detector: nn.Module, shape: Sequence[int],
                   pad_divisor: int) -> Dict[str, torch.Tensor]:
    """Inputs the graphs are traced with.

    Args:
        detector (nn.Module): The detector being exported.
        shape (Sequence[int]): (H, W) of an input image; padded up to a
            multiple of ``pad_divisor`` as the data preprocessor does.
        pad_divisor (int): The preprocessor's ``pad_size_divisor``.

    Returns:
        dict[str, Tensor]: Graph name -> float input: ``trunk`` (1, 3, H,
        W), ``bbox_head`` and ``mask_head`` (3, C, S, S) at their RoI
        extractors' sizes, ``srm`` (1, C_th, h, w).
    """
    height, width = (
        math.ceil(size / pad_divisor) * pad_divisor for size in shape)
    generator = torch.Generator().manual_seed(0)
    inputs = dict(
        trunk=torch.randn((1, 3, height, width), generator=generator))
    roi_head = detector.roi_head
    for name, extractor in (('bbox_head', roi_head.bbox_roi_extractor),
                            ('mask_head', roi_head.mask_roi_extractor)):
        size = extractor.roi_layers[0].output_size
        inputs[name] = torch.randn((3, extractor.out_channels, *size),
                                   generator=generator)
    srm = getattr(detector.panoptic_fusion_head, 'srm', None)
    if srm is not None:
        grid_h, grid_w = srm.grid_size((height, width))
        inputs['srm'] = (torch.rand(
            (1, srm.num_things_classes, grid_h, grid_w), generator=generator)
                         > 0.7).float()
    return inputs


def _output_names(name: str, num_levels: int) -> list:
    if name == 'trunk':
        return trunk_output_names(num_levels)
    return dict(
        bbox_head=['cls_score', 'bbox_pred'],
        mask_head=['mask_preds'],
        srm=['rank_logits'])[name]


def _dynamic_axes(name: str, output_names: list) -> Dict[str, dict]:
    """Dynamic axes of a graph's inputs and outputs."""
    input_names, input_axes = GRAPH_INPUTS[name]
    axes = {input_names[0]: input_axes}
    for output in output_names:
        if name == 'trunk' or name == 'srm':
            axes[output] = dict(input_axes)
        else:
            axes[output] = {0: 'num_rois'}
    return axes


def export_onnx(config: str,
                checkpoint: Optional[str],
                out_dir: str,
                shape: Tuple[int, int] = (320, 320),
                opset: int = DEFAULT_OPSET,
                cfg_options: Optional[dict] = None,
                force: bool = False) -> dict:
    """Export a panoptic detector to ONNX graphs in ``out_dir``.

    Args:
        config (str): Model config file (``PanopticFPN`` with any fusion
            head, e.g. ``SRMFusionHead``, or ``OANet``).
        checkpoint (str, optional): Weights, read by :func:`init_model`
            (the safe loader; a checkpoint that does not fit is refused).
            None exports the freshly initialised model (tests, speed).
        out_dir (str): Folder of the export; must be empty or missing
            unless ``force``.
        shape (tuple[int, int]): (H, W) of the trace input. Height and width
            stay dynamic in the graphs. Defaults to (320, 320).
        opset (int): ONNX opset. Defaults to 17.
        cfg_options (dict, optional): Config overrides, e.g. test-time
            settings of the fusion head (they go into ``config.py``).
        force (bool): Write into a non-empty ``out_dir``. Defaults to False.

    Returns:
        dict: The manifest written as ``deploy.json``.
    """
    check_output_dir(out_dir, force=force, what='export folder')
    try:
        import onnx  # noqa: F401  (torch's exporter writes through it)
    except ImportError as error:
        raise ImportError(
            'ONNX export needs the onnx package: pip install -r '
            'requirements/deploy.txt (or pip install mmoanet[deploy])'
        ) from error
    detector = init_model(config, checkpoint, cfg_options=cfg_options)
    cfg = detector.cfg
    inputs = example_inputs(detector, shape, _pad_divisor(cfg))
    with torch.no_grad():
        num_levels = len(run_trunk(detector, inputs['trunk'])[0])
    graphs = {}
    mmengine.mkdir_or_exist(out_dir)
    for name, module in graph_modules(detector).items():
        output_names = _output_names(name, num_levels)
        input_names = GRAPH_INPUTS[name][0]
        buffer = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(
                module, (inputs[name], ),
                buffer,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=_dynamic_axes(name, output_names),
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False)
        file_name = f'{name}.onnx'
        with atomic_write(osp.join(out_dir, file_name), 'wb') as f:
            f.write(buffer.getvalue())
        graphs[name] = dict(
            file=file_name, inputs=input_names, outputs=output_names)
    with atomic_write(osp.join(out_dir, CONFIG_NAME)) as f:
        f.write(cfg.pretty_text)
    manifest = dict(
        format=MANIFEST_FORMAT,
        detector=type(detector).__name__,
        fusion_head=type(detector.panoptic_fusion_head).__name__,
        num_levels=num_levels,
        graphs=graphs,
        config=CONFIG_NAME,
        checkpoint=None if checkpoint is None else osp.basename(checkpoint),
        dataset_meta=_jsonable(detector.dataset_meta),
        trace_shape=list(inputs['trunk'].shape[-2:]),
        opset=opset,
        mmoanet_version=__version__,
        torch_version=torch.__version__)
    with atomic_write(osp.join(out_dir, MANIFEST_NAME)) as f:
        json.dump(manifest, f, indent=2)
    return manifest


def _jsonable(value):
    """Tuples to lists, recursively, for ``json.dump``."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value
