"""Panoptic inference with onnxruntime: the graphs of an ONNX export run
the network, the detector's own PyTorch code the rest.

:class:`ORTPanopticModel` builds the detector from the export's
``config.py`` WITHOUT loading any weights and points its network modules
at onnxruntime sessions (the trunk, ``bbox_head``, ``mask_head`` and the
SRM convolution, see :mod:`mmoanet.deploy.graphs`). Everything else of its
``predict`` is unchanged: mmdet's anchor decoding and proposal NMS,
RoIAlign (mmcv), box decoding and NMS, mask pasting, the semantic head's
upsampling and the fusion head (``SRMFusionHead`` lays the instances in
SRM order, and in both orders with ``compare_orders``). So the outputs are
the same ``DetDataSample`` fields as the PyTorch model's, computed by the
same code; since the torch weights stay random, a result that matches the
trained PyTorch model shows that the network ran in onnxruntime.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
from mmdet.structures import DetDataSample, SampleList
from torch import Tensor

from ..apis.inference import ImagesType, inference_panoptic, init_model
from ..datasets.annotation_checks import naming_json_errors
from .onnx_export import MANIFEST_FORMAT, MANIFEST_NAME

DEPLOY_REQUIREMENTS = 'pip install -r requirements/deploy.txt'


def import_onnxruntime():
    """``onnxruntime``, or an ImportError that says how to install it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            'onnxruntime inference needs the onnxruntime package: '
            f'{DEPLOY_REQUIREMENTS} (or pip install mmoanet[deploy])'
        ) from error
    return onnxruntime


def read_manifest(deploy_dir: str) -> dict:
    """The ``deploy.json`` of an export folder, checked.

    Raises:
        FileNotFoundError: No ``deploy.json`` or a graph file is missing.
        ValueError: The manifest is not an mmoanet ONNX export.
    """
    path = osp.join(deploy_dir, MANIFEST_NAME)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} not found: {deploy_dir} is not an ONNX export of '
            'tools/deployment/export_onnx.py')
    with open(path) as f, naming_json_errors(path):
        manifest = json.load(f)
    if not isinstance(manifest, dict) or \
            manifest.get('format') != MANIFEST_FORMAT:
        raise ValueError(f'{path}: not an mmoanet ONNX manifest (format '
                         f'{MANIFEST_FORMAT!r} expected)')
    for key in ('graphs', 'config', 'num_levels', 'dataset_meta'):
        if key not in manifest:
            raise ValueError(f'{path}: missing key {key!r}')
    for name, graph in manifest['graphs'].items():
        if not osp.isfile(osp.join(deploy_dir, graph['file'])):
            raise FileNotFoundError(f'{path}: graph {name} file '
                                    f'{graph["file"]} is missing')
    return manifest


class OrtGraph:
    """One onnxruntime session called with and returning torch tensors.

    Args:
        session (onnxruntime.InferenceSession): The graph's session.
    """

    def __init__(self, session) -> None:
        self.session = session
        self.input_names = [node.name for node in session.get_inputs()]

    def __call__(self, *inputs: Tensor) -> List[Tensor]:
        feeds = {
            name:
            np.ascontiguousarray(
                value.detach().cpu().numpy(), dtype=np.float32)
            for name, value in zip(self.input_names, inputs)
        }
        return [
            torch.from_numpy(output)
            for output in self.session.run(None, feeds)
        ]


def attach_graphs(detector: nn.Module, graphs: Dict[str, OrtGraph],
                  num_levels: int) -> None:
    """Point the detector's network modules at onnxruntime graphs.

    The trunk graph runs once per batch where the detector computes its
    features (``OANet._shared_forward``, else ``extract_feat``); the RPN
    head and the semantic head then return its outputs for those features.
    ``bbox_head``, ``mask_head`` and the SRM's ``forward`` call their graphs.

    Args:
        detector (nn.Module): Built from the export's config.
        graphs (dict[str, OrtGraph]): ``trunk``, ``bbox_head``,
            ``mask_head`` and, for an SRM fusion head, ``srm``.
        num_levels (int): L, FPN levels in the trunk's outputs.
    """
    trunk_outputs = {}

    def run_trunk(inputs: Tensor) -> tuple:
        outputs = graphs['trunk'](inputs)
        if len(outputs) != 3 * num_levels + 1:
            raise RuntimeError(f'the trunk graph gave {len(outputs)} '
                               f'outputs, expected {3 * num_levels + 1}')
        feats = tuple(outputs[:num_levels])
        trunk_outputs.update(
            feats=feats,
            rpn_outs=(outputs[num_levels:2 * num_levels],
                      outputs[2 * num_levels:3 * num_levels]),
            seg_preds=outputs[-1])
        return feats

    def outputs_for(feats: Sequence[Tensor], key: str):
        if feats is not trunk_outputs.get('feats'):
            raise RuntimeError(
                f'{key} asked for features the trunk graph did not give; '
                'the onnxruntime model supports the predict path only')
        return trunk_outputs[key]

    if hasattr(detector, '_shared_forward'):  # OANet

        def shared_forward(inputs: Tensor) -> tuple:
            feats = run_trunk(inputs)
            # The stuff head's features are inside the trunk graph; the
            # semantic head is handed the FPN levels to look them up by.
            return feats, trunk_outputs['rpn_outs'], feats

        detector._shared_forward = shared_forward
    else:
        detector.extract_feat = run_trunk
    detector.rpn_head.forward = lambda feats: outputs_for(feats, 'rpn_outs')
    detector.semantic_head.forward = lambda feats: dict(
        seg_preds=outputs_for(feats, 'seg_preds'))
    roi_head = detector.roi_head
    roi_head.bbox_head.forward = lambda feats: tuple(graphs['bbox_head']
                                                     (feats))
    roi_head.mask_head.forward = lambda feats: graphs['mask_head'](feats)[0]
    srm = getattr(detector.panoptic_fusion_head, 'srm', None)
    if srm is not None:
        if 'srm' not in graphs:
            raise ValueError('the fusion head has an SRM, but the export '
                             'has no srm graph')
        # ``present`` only selects the cheaper PyTorch form; the dense
        # graph gives the same logits.
        srm.forward = lambda instance_tensor, present=None: graphs['srm'](
            instance_tensor)[0]


class ORTPanopticModel:
    """A panoptic detector whose network runs in onnxruntime.

    Args:
        deploy_dir (str): Folder written by :func:`export_onnx`.
        providers (Sequence[str]): onnxruntime execution providers.
            Defaults to ``('CPUExecutionProvider', )``.
        num_threads (int, optional): onnxruntime intra-op threads; None
            lets onnxruntime choose (all cores).
        cfg_options (dict, optional): Overrides of the export's config for
            the post-processing (e.g.
            ``{'model.test_cfg.panoptic.compare_orders': True}``); the
            graphs are fixed.

    Attributes:
        detector (nn.Module): The detector in eval mode; use it where a
            PyTorch model is expected (``runner.model``,
            :func:`inference_panoptic`).
        manifest (dict): The export's ``deploy.json``.
    """

    def __init__(self,
                 deploy_dir: str,
                 providers: Sequence[str] = ('CPUExecutionProvider', ),
                 num_threads: Optional[int] = None,
                 cfg_options: Optional[dict] = None) -> None:
        onnxruntime = import_onnxruntime()
        self.manifest = read_manifest(deploy_dir)
        options = onnxruntime.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        graphs = {
            name:
            OrtGraph(
                onnxruntime.InferenceSession(
                    osp.join(deploy_dir, graph['file']),
                    sess_options=options,
                    providers=list(providers)))
            for name, graph in self.manifest['graphs'].items()
        }
        detector = init_model(
            osp.join(deploy_dir, self.manifest['config']),
            checkpoint=None,
            cfg_options=cfg_options)
        dataset_meta = dict(self.manifest['dataset_meta'])
        if dataset_meta.get('palette') is not None:
            dataset_meta['palette'] = [
                tuple(color) for color in dataset_meta['palette']
            ]
        detector.dataset_meta = dataset_meta
        attach_graphs(detector, graphs, self.manifest['num_levels'])
        self.detector = detector
        self.graphs = graphs

    @property
    def cfg(self):
        """The merged config the detector was built from."""
        return self.detector.cfg

    def __call__(self, images: ImagesType) -> Union[DetDataSample, SampleList]:
        """Predict images, as :func:`inference_panoptic` does.

        Args:
            images (str | np.ndarray | Sequence): Image files or uint8
                (H, W, 3) BGR arrays.

        Returns:
            DetDataSample | list[DetDataSample]: ``pred_panoptic_seg`` (and
            the detector's other fields, e.g. ``pred_panoptic_seg_srm`` /
            ``_score`` with ``compare_orders``), as the PyTorch model.
        """
        return inference_panoptic(self.detector, images)


def evaluate_onnx(
    deploy_dir: str,
    work_dir: str,
    cfg_options: Optional[dict] = None,
    num_threads: Optional[int] = None,
    providers: Sequence[str] = ('CPUExecutionProvider', )
) -> Dict[str, float]:
    """Run the export's test set through onnxruntime and its metrics.

    mmengine's Runner of the export's ``config.py`` (its
    ``test_dataloader`` and ``test_evaluator``, as ``tools/test.py`` runs
    them) with the onnxruntime-backed detector in place of the PyTorch one.

    Args:
        deploy_dir (str): Folder written by :func:`export_onnx`.
        work_dir (str): Where the Runner writes its logs.
        cfg_options (dict, optional): Overrides of the export's config, for
            both the data and the post-processing (e.g.
            ``{'test_dataloader.dataset.data_root': 'data/x/'}``).
        num_threads (int, optional): onnxruntime intra-op threads.
        providers (Sequence[str]): onnxruntime execution providers.

    Returns:
        dict[str, float]: The test metrics (e.g. ``coco_panoptic/PQ``).
    """
    # Imported here: the Runner is only needed for evaluation.
    from mmengine.runner import Runner

    from ..utils import check_paths_exist

    model = ORTPanopticModel(
        deploy_dir,
        providers=providers,
        num_threads=num_threads,
        cfg_options=cfg_options)
    cfg = model.cfg.copy()
    cfg.work_dir = work_dir
    cfg.load_from = None
    cfg.resume = False
    check_paths_exist(cfg, ('test_dataloader', ))
    runner = Runner.from_cfg(cfg)
    # The Runner built a PyTorch detector from the config; every batch goes
    # through the onnxruntime-backed one instead.
    runner.model = model.detector
    return runner.test()
