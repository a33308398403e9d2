"""OANet detector (Liu et al., CVPR 2019, Sec. 3).

Shape shorthand: B images, H x W padded input, L FPN levels, C_th thing
classes, C_st stuff classes.
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.detectors import TwoStagePanopticSegmentor
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, InstanceList, OptConfigType, OptMultiConfig
from mmengine.model import normal_init
from mmengine.structures import InstanceData
from torch import Tensor

from ..seg_heads.panoptic_fusion_heads import panoptic_sample_fields

SHARE_MODES = ('skip', 'backbone', 'none')


@MODELS.register_module()
class OANet(TwoStagePanopticSegmentor):
    """Occlusion Aware Network: Mask R-CNN + stuff branch + SRM.

    Differences from mmdet's ``PanopticFPN``: the stuff branch may read the
    RPN's 3x3 conv outputs (``share_mode``), the stuff loss is scaled by
    lambda (Eq. 1), the fusion head (which owns the Spatial Ranking Module)
    is trained, and prediction keeps ``pred_instances`` and
    ``pred_sem_seg`` next to the panoptic results.

    Proposals always come from the RPN; ``proposals`` in data samples are
    ignored.

    Args:
        backbone, neck, rpn_head, roi_head, train_cfg, test_cfg,
        data_preprocessor, init_cfg, semantic_head, panoptic_fusion_head:
            As in mmdet's ``TwoStagePanopticSegmentor``; ``semantic_head``
            is an ``OANetStuffHead``, ``panoptic_fusion_head`` an
            ``SRMFusionHead``, ``test_cfg.panoptic`` goes to the latter.
        share_mode (str): What the two branches share (Table 4).
            ``'skip'`` (default, best: 37.2 PQ): backbone, FPN and the RPN
            3x3 "skip-connection" conv; the stuff head reads
            ``relu(rpn_head.rpn_conv(P_l))``, computed once per forward for
            both heads. ``'backbone'`` (37.0 PQ): the ResNet only; the stuff
            head reads ``relu(stuff_conv(Q_l))`` over the levels ``Q_l`` of
            its own FPN ``stuff_neck``. ``'none'`` (36.5 PQ): nothing;
            ``stuff_backbone`` and ``stuff_neck`` of its own, then
            ``stuff_conv``. ``stuff_conv`` is a private 3x3 conv + ReLU of
            the RPN conv's size and initialisation, so that the stuff path
            has the same depth in every mode and the modes differ only in
            what they share (Table 4 compares sharing, not depth).
        stuff_loss_weight (float): lambda in Eq. 1, applied here (once) to
            the stuff head's ``loss_seg``. Table 1: 0.25 best; with 1.0
            training did not converge. Defaults to 0.25.
        stuff_backbone (dict, optional): Backbone of the stuff branch, only
            for ``share_mode='none'``.
        stuff_neck (dict, optional): FPN of the stuff branch, for
            ``share_mode`` ``'backbone'`` and ``'none'``, with an
            ``out_channels`` attribute (mmdet's ``FPN`` has one);
            ``stuff_conv`` maps its levels to ``rpn_head.feat_channels``,
            which must equal ``semantic_head.in_channels`` as in ``'skip'``.
            Checkpoints of these modes written before ``stuff_conv``
            existed lack its weights: the checkpoint check refuses them
            (a partial load would leave ``stuff_conv`` random); retrain.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 semantic_head: ConfigType,
                 panoptic_fusion_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 share_mode: str = 'skip',
                 stuff_loss_weight: float = 0.25,
                 stuff_backbone: OptConfigType = None,
                 stuff_neck: OptConfigType = None) -> None:
        if share_mode not in SHARE_MODES:
            raise ValueError(f'share_mode must be one of {SHARE_MODES}, '
                             f'got {share_mode!r}')
        if share_mode != 'skip' and stuff_neck is None:
            raise ValueError(f"share_mode={share_mode!r} needs stuff_neck")
        if share_mode == 'none' and stuff_backbone is None:
            raise ValueError("share_mode='none' needs stuff_backbone")
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            semantic_head=semantic_head,
            panoptic_fusion_head=panoptic_fusion_head)
        self.share_mode = share_mode
        self.stuff_loss_weight = stuff_loss_weight
        if share_mode == 'none':
            self.stuff_backbone = MODELS.build(stuff_backbone)
        if share_mode != 'skip':
            self.stuff_neck = MODELS.build(stuff_neck)
            # The stand-in for the shared rpn_conv: same shape, same
            # N(0, 0.01) init as RPNHead's, one conv for every level.
            self.stuff_conv = nn.Conv2d(
                self.stuff_neck.out_channels,
                self.rpn_head.feat_channels,
                3,
                padding=1)
            normal_init(self.stuff_conv, std=0.01)

    def _shared_forward(self,
                        batch_inputs: Tensor) -> Tuple[tuple, tuple, tuple]:
        """Run the trunk, the RPN convs and the stuff branch's features.

        Args:
            batch_inputs (Tensor): float (B, 3, H, W).

        Returns:
            tuple: ``(x, rpn_outs, stuff_feats)``: the FPN levels of the
            instance branch; ``(cls_scores, bbox_preds)``, lists of L float
            RPN maps; the L levels the stuff head reads.
        """
        backbone_feats = self.backbone(batch_inputs)
        x = self.neck(backbone_feats)
        if self.share_mode == 'skip':
            # Same maps as RPNHead.forward_single, kept for the stuff head.
            rpn_head = self.rpn_head
            skip_feats = tuple(F.relu(rpn_head.rpn_conv(level)) for level in x)
            rpn_outs = ([rpn_head.rpn_cls(feat) for feat in skip_feats],
                        [rpn_head.rpn_reg(feat) for feat in skip_feats])
            return x, rpn_outs, skip_feats
        rpn_outs = self.rpn_head(x)
        if self.share_mode == 'backbone':
            stuff_levels = self.stuff_neck(backbone_feats)
        else:
            stuff_levels = self.stuff_neck(self.stuff_backbone(batch_inputs))
        stuff_feats = tuple(
            F.relu(self.stuff_conv(level)) for level in stuff_levels)
        return x, rpn_outs, stuff_feats

    def _srm_train_instances(self, x: Tuple[Tensor],
                             rpn_results_list: InstanceList,
                             batch_data_samples: SampleList) -> InstanceList:
        """Instances the SRM is trained on (Sec. 4.2), per ``train_input``.

        ``'gt'``: the ground-truth instances. ``'pred'`` / ``'both'``: the
        instance branch's detached predictions on this batch's proposals,
        masks at the resized input scale (``rescale=False``), as the SRM
        sees them at test time; the RoI head's ``test_cfg`` bounds their
        number (``max_per_img``). With ``'both'`` the fusion head adds the
        ground truth from ``batch_data_samples`` itself.

        Returns:
            list[:obj:`InstanceData`]: Per image ``masks`` (N, H_img, W_img)
            bool (or ``BitmapMasks`` for ``'gt'``) and ``labels`` (N,) long.
        """
        if self.panoptic_fusion_head.srm.train_input == 'gt':
            return [sample.gt_instances for sample in batch_data_samples]
        with torch.no_grad():
            results_list = self.roi_head.predict(
                x, rpn_results_list, batch_data_samples, rescale=False)
        return [results.detach() for results in results_list]

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        """Losses of Eq. 1.

        Args:
            batch_inputs (Tensor): float (B, 3, H, W), normalised.
            batch_data_samples (list[:obj:`DetDataSample`]): Each holds
                ``gt_instances`` (bboxes, labels, masks) and ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``loss_rpn_cls``, ``loss_rpn_bbox``,
            ``loss_cls``, ``acc``, ``loss_bbox``, ``loss_mask``, ``loss_seg``
            (already times lambda) and ``loss_srm``.
        """
        x, rpn_outs, stuff_feats = self._shared_forward(batch_inputs)

        gt_instances, gt_instances_ignore, batch_img_metas = \
            unpack_gt_instances(batch_data_samples)
        # The RPN is class-agnostic: every ground-truth box is class 0.
        rpn_gt_instances = [
            InstanceData(bboxes=gt.bboxes, labels=torch.zeros_like(gt.labels))
            for gt in gt_instances
        ]
        losses = self.rpn_head.loss_by_feat(*rpn_outs, rpn_gt_instances,
                                            batch_img_metas,
                                            gt_instances_ignore)
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_results_list = self.rpn_head.predict_by_feat(
            *rpn_outs, batch_img_metas=batch_img_metas, cfg=proposal_cfg)

        # Before roi_head.loss, which renames the proposals' ``bboxes``.
        srm_instances = self._srm_train_instances(x, rpn_results_list,
                                                  batch_data_samples)

        losses.update(
            self.roi_head.loss(x, rpn_results_list, batch_data_samples))
        seg_losses = self.semantic_head.loss(stuff_feats, batch_data_samples)
        losses.update({
            name: self.stuff_loss_weight * value
            for name, value in seg_losses.items()
        })
        losses.update(
            self.panoptic_fusion_head.loss(srm_instances, batch_data_samples))
        return losses

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Panoptic, instance and stuff predictions.

        Args:
            batch_inputs (Tensor): float (B, 3, H, W), normalised.
            batch_data_samples (list[:obj:`DetDataSample`]): Hold the
                image metas.
            rescale (bool): Results at ``ori_shape`` if True, else at
                ``img_shape``. Defaults to True.

        Returns:
            list[:obj:`DetDataSample`]: Each gains the fusion head's results
            as separate keys (``pred_panoptic_seg`` and, with
            ``compare_orders``, ``pred_panoptic_seg_srm`` /
            ``pred_panoptic_seg_score``; int32 ids (1, H_img, W_img), see
            :func:`panoptic_sample_fields`), ``pred_instances``
            (``bboxes`` (N, 4), ``labels`` (N,), ``scores`` (N,),
            ``masks`` bool (N, H_img, W_img), ``rank_scores`` (N,)) and
            ``pred_sem_seg`` (``sem_seg`` long (1, H_img, W_img), the stuff
            argmax + C_th).
        """
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        x, rpn_outs, stuff_feats = self._shared_forward(batch_inputs)
        rpn_results_list = self.rpn_head.predict_by_feat(
            *rpn_outs, batch_img_metas=batch_img_metas, rescale=False)
        results_list = self.roi_head.predict(
            x, rpn_results_list, batch_data_samples, rescale=rescale)
        seg_probs_list = self.semantic_head.predict(stuff_feats,
                                                    batch_img_metas, rescale)
        # The fusion head returns the stuff argmax it computes anyway as
        # ``pred_sem_seg``: one pass over (C_st, H, W) instead of two.
        panoptic_list = self.panoptic_fusion_head.predict(
            results_list,
            seg_probs_list,
            batch_img_metas,
            with_stuff_labels=True)

        for sample, instances, panoptic in zip(batch_data_samples,
                                               results_list, panoptic_list):
            sample.pred_instances = instances
            for key, pixel_data in panoptic_sample_fields(panoptic).items():
                setattr(sample, key, pixel_data)
        return batch_data_samples

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList) -> tuple:
        """Raw outputs, without post-processing (tensor mode).

        Returns:
            tuple: RPN ``cls_scores`` and ``bbox_preds`` (lists of L maps),
            the RoI head's forward outputs, then the stuff logits, float
            (B, C_out, H/4, W/4).
        """
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        x, rpn_outs, stuff_feats = self._shared_forward(batch_inputs)
        rpn_results_list = self.rpn_head.predict_by_feat(
            *rpn_outs, batch_img_metas=batch_img_metas, rescale=False)
        roi_outs = self.roi_head.forward(x, rpn_results_list,
                                         batch_data_samples)
        seg_preds = self.semantic_head(stuff_feats)['seg_preds']
        return tuple(rpn_outs) + roi_outs + (seg_preds, )
