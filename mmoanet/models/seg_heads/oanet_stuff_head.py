"""Stuff branch of OANet (Sec. 3.1, Fig. 3).

Shape shorthand used below:

    B: images in the batch       L: FPN levels the head reads
    H, W: padded input size      C_th / C_st: thing / stuff classes
    C_out: logit channels, C_th + C_st (Object-SC) or C_st (Stuff-SC)
"""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.seg_heads.base_semantic_head import BaseSemanticHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from ...utils.constants import IGNORE_INDEX


@MODELS.register_module()
class OANetStuffHead(BaseSemanticHead):
    """Stuff segmentation branch of OANet.

    Every FPN level in ``[start_level, end_level)`` goes through two stacked
    3x3 conv+norm+ReLU blocks, is upsampled (bilinear) to the size of
    ``feats[0]`` (stride 4), and the levels are concatenated. One 3x3
    conv+norm+ReLU block and one 1x1 conv then give the logits (Fig. 3).

    The norm defaults to GroupNorm, as in mmdet's PanopticFPN semantic head:
    batches are only 2 images per GPU, too few for BatchNorm statistics. The
    paper does not name the norm.

    Args:
        num_things_classes (int): C_th. Defaults to 80 (COCO).
        num_stuff_classes (int): C_st. Defaults to 53 (COCO).
        in_channels (int): Channels of every input level; with OANet's
            ``share_mode='skip'`` these are the RPN 3x3 conv outputs, so
            ``rpn_head.feat_channels``. Defaults to 256.
        feat_channels (int): Channels of the per-level convs and of the 3x3
            conv after concatenation. Defaults to 128.
        start_level (int): First input level used (0 is P2, stride 4).
            Defaults to 0.
        end_level (int): Levels ``[start_level, end_level)`` are used.
            Defaults to 4 (P2-P5; P6 adds little at stride 64).
        supervision (str): Which classes the logits cover and are trained
            on (Table 2). ``'all'`` (Object-SC, default, +0.5 PQ in Table 2):
            C_th + C_st channels, thing pixels supervised with their class so
            that objects give context to the stuff around them. ``'stuff'``
            (Stuff-SC): C_st channels, thing pixels ignored.
        conv_cfg (dict, optional): Conv config of the conv blocks.
            Defaults to None (plain Conv2d).
        norm_cfg (dict): Norm config of the conv blocks. Defaults to
            ``dict(type='GN', num_groups=32, requires_grad=True)``.
        loss_seg (dict): Pixel-wise loss, ``ignore_index`` must be 255.
            Averaged over non-ignored pixels, so Stuff-SC is not scaled
            down by the share of thing pixels. Its ``loss_weight`` should
            stay 1.0: lambda of Eq. 1 is applied by the detector
            (``OANet.stuff_loss_weight``).
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to N(0, 0.01) on the 1x1 logits conv (the conv blocks
            keep ConvModule's Kaiming init).
    """

    def __init__(
        self,
        num_things_classes: int = 80,
        num_stuff_classes: int = 53,
        in_channels: int = 256,
        feat_channels: int = 128,
        start_level: int = 0,
        end_level: int = 4,
        supervision: str = 'all',
        conv_cfg: OptConfigType = None,
        norm_cfg: ConfigType = dict(
            type='GN', num_groups=32, requires_grad=True),
        loss_seg: ConfigType = dict(
            type='CrossEntropyLoss',
            ignore_index=IGNORE_INDEX,
            avg_non_ignore=True,
            loss_weight=1.0),
        init_cfg: OptMultiConfig = dict(
            type='Normal', std=0.01, override=dict(name='conv_logits'))
    ) -> None:
        if supervision not in ('all', 'stuff'):
            raise ValueError("supervision must be 'all' or 'stuff', "
                             f'got {supervision!r}')
        num_logits = num_stuff_classes
        if supervision == 'all':
            num_logits += num_things_classes
        super().__init__(
            num_classes=num_logits,
            seg_rescale_factor=1 / 4,
            loss_seg=loss_seg,
            init_cfg=init_cfg)
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.supervision = supervision
        self.start_level = start_level
        self.end_level = end_level

        def conv_block(in_chs: int) -> ConvModule:
            return ConvModule(
                in_chs,
                feat_channels,
                3,
                padding=1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg)

        self.level_convs = nn.ModuleList(
            nn.Sequential(conv_block(in_channels), conv_block(feat_channels))
            for _ in range(start_level, end_level))
        num_levels = end_level - start_level
        self.fuse_conv = conv_block(feat_channels * num_levels)
        self.conv_logits = nn.Conv2d(feat_channels, num_logits, 1)

    def forward(self, feats: Tuple[Tensor]) -> Dict[str, Tensor]:
        """Compute the logits.

        Args:
            feats (tuple[Tensor]): FPN-like levels, each float
                (B, in_channels, H_l, W_l); ``feats[0]`` has stride 4.

        Returns:
            dict[str, Tensor]: ``seg_preds``, float (B, C_out, H/4, W/4),
            and ``seg_feats``, float (B, feat_channels, H/4, W/4), the
            features before the 1x1 conv.
        """
        if len(feats) < self.end_level:
            raise ValueError(f'needs {self.end_level} levels, '
                             f'got {len(feats)}')
        out_size = feats[0].shape[-2:]
        upsampled = []
        for level, convs in zip(
                range(self.start_level, self.end_level), self.level_convs):
            level_feat = convs(feats[level])
            if level_feat.shape[-2:] != out_size:
                level_feat = F.interpolate(
                    level_feat,
                    size=out_size,
                    mode='bilinear',
                    align_corners=False)
            upsampled.append(level_feat)
        seg_feats = self.fuse_conv(torch.cat(upsampled, dim=1))
        return dict(seg_preds=self.conv_logits(seg_feats), seg_feats=seg_feats)

    def _targets(self, batch_data_samples: SampleList,
                 size: Tuple[int, int]) -> Tensor:
        """Stack ``gt_sem_seg`` at the logits' size in the head's labels.

        Args:
            batch_data_samples (list[:obj:`DetDataSample`]): Each holds
                ``gt_sem_seg.sem_seg``, (1, H, W) integer, things
                0..C_th-1, stuff C_th..C_th+C_st-1, 255 ignore.
            size (tuple[int, int]): (H/4, W/4) of the logits.

        Returns:
            Tensor: long (B, H/4, W/4), values in ``[0, C_out)`` or 255.
        """
        gt_segs = torch.stack([
            data_sample.gt_sem_seg.sem_seg.float()
            for data_sample in batch_data_samples
        ])
        # Nearest resampling keeps labels intact (no blended class ids).
        targets = F.interpolate(gt_segs, size=size, mode='nearest')
        targets = targets.squeeze(1).long()
        if self.supervision == 'stuff':
            is_thing = targets < self.num_things_classes
            is_stuff = (~is_thing) & (targets != IGNORE_INDEX)
            targets = torch.where(is_stuff, targets - self.num_things_classes,
                                  targets)
            targets[is_thing] = IGNORE_INDEX
        return targets

    def loss(self, feats: Tuple[Tensor],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Pixel-wise cross-entropy at stride 4, before lambda (Eq. 1).

        Args:
            feats (tuple[Tensor]): See :meth:`forward`.
            batch_data_samples (list[:obj:`DetDataSample`]): Each holds
                ``gt_sem_seg`` padded to (1, H, W) (see :meth:`_targets`).

        Returns:
            dict[str, Tensor]: ``loss_seg``, a float scalar.
        """
        seg_preds = self(feats)['seg_preds']
        targets = self._targets(batch_data_samples, seg_preds.shape[-2:])
        return dict(loss_seg=self.loss_seg(seg_preds, targets))

    def predict(self,
                feats: Tuple[Tensor],
                batch_img_metas: List[dict],
                rescale: bool = False) -> List[Tensor]:
        """Stuff probabilities per image, plus a "things" channel.

        With Object-SC (``supervision='all'``) the C_th thing logits are
        merged into one channel, their maximum, placed after the C_st stuff
        logits: the layout of mmdet's ``PanopticFPNHead``. The argmax over
        these C_st + 1 channels is the "things" channel exactly where the
        argmax over all C_th + C_st classes is a thing (at the logits'
        stride 4, except exact ties, which go to stuff; bilinear upsampling
        of the maximum can favour it by a hair where two thing classes
        meet), so the fusion head can tell
        where a thing wins (``test_cfg.uncovered_things='void'`` of
        :class:`SRMFusionHead`), while upsampling C_st + 1 channels instead
        of C_th + C_st (54 instead of 133 on COCO; measured 1.0 s against
        2.5 s per 480 x 640 image on one busy CPU core). Stuff labels only
        compare the stuff channels (Sec. 3.1), which the extra channel and
        the softmax do not reorder. With Stuff-SC there are only the C_st
        stuff channels.

        Args:
            feats (tuple[Tensor]): See :meth:`forward`.
            batch_img_metas (list[dict]): Need ``batch_input_shape``,
                ``img_shape`` and, with ``rescale``, ``ori_shape``.
            rescale (bool): Resize to ``ori_shape`` after cropping the
                padding. Defaults to False.

        Returns:
            list[Tensor]: float (C_st + 1, H_img, W_img) per image with
            Object-SC, (C_st, H_img, W_img) with Stuff-SC, a softmax over
            dim 0; (H_img, W_img) is ``ori_shape`` with ``rescale``, else
            ``img_shape``.
        """
        seg_logits = self(feats)['seg_preds']
        if self.supervision == 'all':
            num_things = self.num_things_classes
            best_thing = seg_logits[:, :num_things].amax(dim=1, keepdim=True)
            seg_logits = torch.cat([seg_logits[:, num_things:], best_thing],
                                   dim=1)
        seg_logits = F.interpolate(
            seg_logits,
            size=batch_img_metas[0]['batch_input_shape'],
            mode='bilinear',
            align_corners=False)
        probs_list = []
        for logits, img_meta in zip(seg_logits, batch_img_metas):
            img_h, img_w = img_meta['img_shape'][:2]
            logits = logits[:, :img_h, :img_w]
            # Resizing to the same size is an identity: skip the pass.
            if rescale and tuple(img_meta['ori_shape'][:2]) != (img_h, img_w):
                logits = F.interpolate(
                    logits[None],
                    size=img_meta['ori_shape'][:2],
                    mode='bilinear',
                    align_corners=False)[0]
            probs_list.append(logits.softmax(dim=0))
        return probs_list
