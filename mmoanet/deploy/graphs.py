"""The network parts of a two-stage panoptic detector, as ONNX graphs.

Shape shorthand: B images, H x W padded input, L FPN levels, N RoIs,
C feature channels, C_th thing classes, C_seg semantic channels,
h x w the SRM grid.

Four graphs hold every learned weight of the detector:

- ``trunk``: image (B, 3, H, W) -> the L FPN levels, the L RPN class and
  box maps, the semantic head's logits. For OANet this is
  ``OANet._shared_forward`` plus the stuff head, so every ``share_mode``
  exports; for mmdet's ``PanopticFPN`` it is ``extract_feat``,
  ``rpn_head`` and ``semantic_head``.
- ``bbox_head``: RoI features (N, C, 7, 7) -> class scores and box deltas.
- ``mask_head``: RoI features (N, C, 14, 14) -> mask logits.
- ``srm``: the SRM convolution, instance tensor (1, C_th, h, w) -> ranking
  logits (the dense :meth:`SpatialRankingModule.forward`).

What lies between them (anchors and proposal NMS, RoIAlign, box decoding
and NMS, mask pasting, the fusion) stays the detector's own PyTorch code;
:class:`mmoanet.deploy.ORTPanopticModel` runs it on the graphs' outputs.
"""
from typing import Dict, List, Tuple

import torch.nn as nn
from torch import Tensor

#: Graph name -> (input names, dynamic axes of the inputs).
GRAPH_INPUTS: Dict[str, Tuple[List[str], Dict[int, str]]] = dict(
    trunk=(['inputs'], {
        0: 'batch',
        2: 'height',
        3: 'width'
    }),
    bbox_head=(['bbox_feats'], {
        0: 'num_rois'
    }),
    mask_head=(['mask_feats'], {
        0: 'num_rois'
    }),
    srm=(['instance_tensor'], {
        0: 'batch',
        2: 'grid_height',
        3: 'grid_width'
    }))


def trunk_output_names(num_levels: int) -> List[str]:
    """Output names of the trunk graph, in order.

    Args:
        num_levels (int): L, the FPN levels (RPN levels are the same).

    Returns:
        list[str]: ``feat_<l>``, ``rpn_cls_<l>``, ``rpn_reg_<l>`` for each
        level, then ``seg_preds``.
    """
    names = [f'feat_{level}' for level in range(num_levels)]
    names += [f'rpn_cls_{level}' for level in range(num_levels)]
    names += [f'rpn_reg_{level}' for level in range(num_levels)]
    return names + ['seg_preds']


def run_trunk(detector: nn.Module,
              inputs: Tensor) -> Tuple[tuple, list, list, Tensor]:
    """Forward of the trunk graph in PyTorch.

    Args:
        detector (nn.Module): An ``OANet`` or an mmdet
            ``TwoStagePanopticSegmentor`` (``PanopticFPN``).
        inputs (Tensor): float (B, 3, H, W), normalised and padded.

    Returns:
        tuple: ``(feats, rpn_cls, rpn_reg, seg_preds)``: L FPN levels
        (B, C, H_l, W_l); L RPN class maps (B, A, H_l, W_l); L RPN box maps
        (B, 4A, H_l, W_l); the semantic logits (B, C_seg, H/4, W/4).
    """
    if hasattr(detector, '_shared_forward'):  # OANet: the stuff branch
        feats, (rpn_cls, rpn_reg), stuff_feats = \
            detector._shared_forward(inputs)
    else:
        feats = detector.extract_feat(inputs)
        rpn_cls, rpn_reg = detector.rpn_head(feats)
        stuff_feats = feats
    seg_preds = detector.semantic_head(stuff_feats)['seg_preds']
    return tuple(feats), list(rpn_cls), list(rpn_reg), seg_preds


class TrunkGraph(nn.Module):
    """:func:`run_trunk` with flat outputs, for ``torch.onnx.export``."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        feats, rpn_cls, rpn_reg, seg_preds = run_trunk(self.detector, inputs)
        return (*feats, *rpn_cls, *rpn_reg, seg_preds)


class SRMGraph(nn.Module):
    """The SRM's dense convolution, for ``torch.onnx.export``.

    At inference the PyTorch SRM reads only the channels of the classes
    present (:meth:`SpatialRankingModule.forward_present`, the same logits
    up to float rounding with less work); the graph keeps the dense form,
    whose shapes do not depend on the image.
    """

    def __init__(self, srm: nn.Module) -> None:
        super().__init__()
        self.srm = srm

    def forward(self, instance_tensor: Tensor) -> Tensor:
        return self.srm(instance_tensor)


def graph_modules(detector: nn.Module) -> Dict[str, nn.Module]:
    """The module exported as each graph.

    Args:
        detector (nn.Module): In eval mode.

    Returns:
        dict[str, nn.Module]: ``trunk``, ``bbox_head``, ``mask_head`` and,
        when the fusion head has an SRM, ``srm``.
    """
    modules = dict(
        trunk=TrunkGraph(detector),
        bbox_head=detector.roi_head.bbox_head,
        mask_head=detector.roi_head.mask_head)
    srm = getattr(detector.panoptic_fusion_head, 'srm', None)
    if srm is not None:
        modules['srm'] = SRMGraph(srm)
    return modules
