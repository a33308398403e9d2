"""Panoptic fusion that lays instances by their SRM rank (OANet Sec. 3.2).

Shape shorthand used in this file::

    N: instances in one image       C_th, C_st: thing, stuff classes
    H, W: original image size (ori_shape), where masks and stuff maps live
"""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.models.seg_heads.panoptic_fusion_heads import BasePanopticFusionHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptMultiConfig, PixelList)
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from ....utils.config_keys import check_known_keys, parameter_names
from ..spatial_ranking_module import as_bool_masks
from .fusion_utils import equal_value_components, mask_boxes

RANK_KEYS = ('srm', 'score')
STUFF_AREA_MODES = ('connected', 'class')
UNCOVERED_THINGS_RULES = ('stuff', 'void')
SAME_CLASS_ORDERS = ('rank', 'score')
SEG_LAYOUTS = ('auto', 'things_stuff', 'stuff_things', 'stuff')
#: ``PixelData`` field of :meth:`SRMFusionHead.predict` -> data-sample key
#: (the keys OANet's metrics, visualizer and inference tools read).
SAMPLE_KEYS = dict(
    sem_seg='pred_panoptic_seg',
    sem_seg_srm='pred_panoptic_seg_srm',
    sem_seg_score='pred_panoptic_seg_score',
    stuff_labels='pred_sem_seg')
DEFAULT_TEST_CFG = dict(
    mask_overlap=0.5,
    stuff_area_limit=4900,
    stuff_area_mode='connected',
    max_per_img=100,
    uncovered_things='stuff',
    same_class_order='rank',
    compare_orders=False)


@MODELS.register_module()
class SRMFusionHead(BasePanopticFusionHead):
    """Fuse instance and stuff predictions, laying instances by rank.

    Instances are laid on an empty canvas in descending order of a key: the
    SRM ranking score of Eq. 3 (``rank_by='srm'``, OANet) or the detection
    score (``rank_by='score'``, the heuristic baseline of Table 3, run by
    the same code so the two differ only in the order). The remaining pixels
    take the argmax over stuff classes, or become VOID where the semantic
    head's best class there is a thing (``uncovered_things='void'``), and
    stuff regions that are too small become VOID. The head owns the SRM,
    hence its loss.

    The semantic predictions may come in three channel layouts
    (``seg_layout``): C_st stuff classes then one "things" channel
    (``'stuff_things'``: mmdet's ``PanopticFPNHead``, whose things channel
    is trained as one class, and OANet's Object-SC stuff head, which
    merges its C_th thing logits into their maximum); all C_th + C_st
    classes, things first (``'things_stuff'``, e.g. a head's raw Object-SC
    scores); C_st stuff classes only (``'stuff'``: OANet's Stuff-SC head).

    Args:
        num_things_classes (int): C_th. Defaults to 80.
        num_stuff_classes (int): C_st. Defaults to 53.
        srm (dict): Config of the :class:`SpatialRankingModule`; its
            ``num_things_classes`` defaults to the head's.
        rank_by (str): ``'srm'`` (default) or ``'score'``, the order written
            as ``'pred_panoptic_seg'``.
        seg_layout (str): Channel layout of ``seg_preds``, see above.
            ``'auto'`` (default) picks it from the channel count; with one
            thing class, where C_th + C_st = C_st + 1, it takes
            ``'stuff_things'`` (what both heads above give).
        test_cfg (dict, optional): Missing keys take these defaults:

            - mask_overlap (float): an instance is skipped when more than
              this fraction of its area is already covered. Defaults to 0.5.
            - stuff_area_limit (int): stuff regions with fewer pixels become
              VOID; 4900 in Sec. 4. Defaults to 4900.
            - stuff_area_mode (str): ``'connected'`` (default, the paper:
              min area of a connected stuff region, 4-connectivity) or
              ``'class'`` (total area of a stuff class, as mmdet's
              heuristic fusion does).
            - max_per_img (int): at most this many instances are laid;
              100 in Sec. 4. Defaults to 100.
            - uncovered_things (str): what a pixel becomes when no laid
              instance covers it but the semantic head's best class there
              is a thing (a missed detection, or an instance skipped by
              ``mask_overlap`` or ``max_per_img``). ``'stuff'`` (default,
              this head's original rule): the best stuff class, which
              paints the object's area as stuff. ``'void'``: VOID, as
              mmdet's ``HeuristicFusionHead`` does with PanopticFPN's
              merged things channel, so stuff segments keep their shape.
              Needs thing scores, i.e. ``seg_layout`` other than
              ``'stuff'``. A test-time switch: same trained weights. On
              one tiny OANet (synthetic set, docs/benchmarks.md) it gave
              PQ_st 86.8 against 85.3; on one tiny stock PanopticFPN with
              this head, 91.4 against 90.0.
            - same_class_order (str): how instances of the same class are
              ordered under ``rank_by='srm'``. ``'rank'`` (default, the
              paper): by their ranking scores too. ``'score'``: by
              detection score, in the slots the ranking gives that class
              (:func:`same_class_by_score`); the SRM still orders classes.
            - compare_orders (bool): also return both orders,
              ``sem_seg_srm`` and ``sem_seg_score`` (data-sample keys
              ``pred_panoptic_seg_srm`` / ``_score``, see
              :func:`panoptic_sample_fields`), laid from one SRM forward.
              Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.

    A key of ``test_cfg`` other than those above, and any keyword argument
    the head does not take, raises
    :class:`~mmoanet.utils.config_keys.UnknownConfigKeyError` naming the
    closest known key: mmdet would ignore a misspelt one. The keys mmdet's
    own ``HeuristicFusionHead`` reads (``mask_overlap``,
    ``stuff_area_limit``) are among the known ones, so a PanopticFPN
    config's ``test_cfg.panoptic`` keeps working with this head.
    """

    def __init__(self,
                 num_things_classes: int = 80,
                 num_stuff_classes: int = 53,
                 srm: ConfigType = dict(type='SpatialRankingModule'),
                 rank_by: str = 'srm',
                 seg_layout: str = 'auto',
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        check_known_keys(kwargs, parameter_names(SRMFusionHead.__init__),
                         'model.panoptic_fusion_head (SRMFusionHead)')
        check_known_keys(test_cfg or {}, DEFAULT_TEST_CFG,
                         'model.test_cfg.panoptic (SRMFusionHead)')
        assert rank_by in RANK_KEYS, f'rank_by must be one of {RANK_KEYS}'
        full_test_cfg = ConfigDict(DEFAULT_TEST_CFG)
        full_test_cfg.update(test_cfg or {})
        assert full_test_cfg.stuff_area_mode in STUFF_AREA_MODES, \
            f'stuff_area_mode must be one of {STUFF_AREA_MODES}'
        if full_test_cfg.uncovered_things not in UNCOVERED_THINGS_RULES:
            raise ValueError(
                'test_cfg.panoptic.uncovered_things must be one of '
                f'{UNCOVERED_THINGS_RULES}, got '
                f'{full_test_cfg.uncovered_things!r}')
        if full_test_cfg.same_class_order not in SAME_CLASS_ORDERS:
            raise ValueError(
                'test_cfg.panoptic.same_class_order must be one of '
                f'{SAME_CLASS_ORDERS}, got '
                f'{full_test_cfg.same_class_order!r}')
        if seg_layout not in SEG_LAYOUTS:
            raise ValueError(f'seg_layout must be one of {SEG_LAYOUTS}, '
                             f'got {seg_layout!r}')
        super().__init__(
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            test_cfg=full_test_cfg,
            loss_panoptic=None,
            init_cfg=init_cfg)
        srm = dict(srm)
        srm.setdefault('num_things_classes', num_things_classes)
        assert srm['num_things_classes'] == num_things_classes, \
            'the SRM must have one channel per thing class of the head'
        self.srm = MODELS.build(srm)
        self.rank_by = rank_by
        self.seg_layout = seg_layout

    def loss(self, instances_list: Optional[InstanceList],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """SRM loss, see :meth:`SpatialRankingModule.loss`.

        Returns:
            dict[str, Tensor]: ``loss_srm``.
        """
        return self.srm.loss(instances_list, batch_data_samples)

    def predict(self,
                mask_results_list: InstanceList,
                seg_preds_list: List[Tensor],
                batch_img_metas: Optional[List[dict]] = None,
                with_stuff_labels: bool = False,
                **kwargs) -> PixelList:
        """Panoptic segmentation of each image of the batch.

        mmdet's contract (``TwoStagePanopticSegmentor.predict`` calls
        ``predict(mask_results_list, seg_preds_list)``): one ``PixelData``
        per image whose ``sem_seg`` is the panoptic result. The extras ride
        on the same ``PixelData`` as further fields, which mmdet ignores;
        :func:`panoptic_sample_fields` maps them to data-sample keys.

        Args:
            mask_results_list (list[InstanceData]): per image, ``masks`` bool
                (N, H, W) at the original image size, ``labels`` long (N,),
                ``scores`` float (N,). ``rank_scores`` float (N,) is written
                into each.
            seg_preds_list (list[Tensor]): per image, float (C_seg, H', W'),
                scores (probabilities or logits) in one of the layouts of
                ``seg_layout``: C_seg is C_th + C_st, C_st + 1 or C_st.
                (H', W') is (H, W), or a padded size that is cropped to it
                at the bottom and right (mmdet's semantic heads without
                ``rescale``).
            batch_img_metas (list[dict], optional): per image, with
                ``img_shape``, the resized input size the SRM works at. When
                None (mmdet's detectors), the SRM works at the mask size.
            with_stuff_labels (bool): Also return ``stuff_labels``, the
                stuff argmax + C_th that the fusion computes anyway, so
                that the detector need not compute it a second time.
                Defaults to False.

        Returns:
            list[PixelData]: per image, ``sem_seg`` int32 (1, H, W), the
            order ``rank_by``, with ids ``label + instance_id *
            INSTANCE_OFFSET`` for things (instance ids from 1 in laying
            order), the stuff label for stuff and ``num_classes`` for VOID.
            With ``compare_orders`` also ``sem_seg_srm`` and
            ``sem_seg_score`` (same format), with ``with_stuff_labels``
            also ``stuff_labels`` long (1, H, W).
        """
        if batch_img_metas is None:
            batch_img_metas = [None] * len(mask_results_list)
        return [
            self._predict_single(mask_results, seg_preds, img_meta,
                                 with_stuff_labels)
            for mask_results, seg_preds, img_meta in zip(
                mask_results_list, seg_preds_list, batch_img_metas)
        ]

    def _predict_single(self,
                        mask_results: InstanceData,
                        seg_preds: Tensor,
                        img_meta: Optional[dict] = None,
                        with_stuff_labels: bool = False) -> PixelData:
        """Fusion of one image, see :meth:`predict`."""
        masks = as_bool_masks(mask_results.masks, seg_preds.device)
        mask_h, mask_w = masks.shape[-2:]
        seg_h, seg_w = seg_preds.shape[-2:]
        if seg_h < mask_h or seg_w < mask_w:
            raise ValueError(f'seg_preds ({seg_h}, {seg_w}) is smaller than '
                             f'the instance masks ({mask_h}, {mask_w})')
        stuff_labels, thing_wins = self._semantic_labels(
            seg_preds[:, :mask_h, :mask_w])
        img_shape = (mask_h, mask_w)
        if img_meta is not None:
            img_shape = img_meta['img_shape']
        # The SRM runs once; every order below reuses its scores.
        rank_scores = self.srm.rank_scores(mask_results, img_shape).detach()
        mask_results.rank_scores = rank_scores
        srm_keys = rank_scores
        if self.test_cfg.same_class_order == 'score':
            srm_keys = same_class_by_score(rank_scores, mask_results.scores,
                                           mask_results.labels)
        order_keys = dict(srm=srm_keys, score=mask_results.scores)
        uncovered_void = None
        if self.test_cfg.uncovered_things == 'void':
            uncovered_void = thing_wins

        names = RANK_KEYS if self.test_cfg.compare_orders else (self.rank_by, )
        labels = mask_results.labels
        panoptic = {
            name:
            self._fuse(masks, labels, order_keys[name], stuff_labels,
                       uncovered_void)
            for name in names
        }
        result = PixelData(sem_seg=panoptic[self.rank_by])
        if self.test_cfg.compare_orders:
            for name in names:
                result.set_field(panoptic[name], f'sem_seg_{name}')
        if with_stuff_labels:
            result.stuff_labels = stuff_labels[None]
        return result

    def _semantic_labels(self,
                         seg_preds: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Stuff labels and where a thing is the best semantic class.

        Args:
            seg_preds (Tensor): float, shape (C_seg, H, W), see
                :meth:`predict`.

        Returns:
            tuple[Tensor, Tensor | None]: ``stuff_labels`` long (H, W), the
            argmax over the stuff channels + C_th; ``thing_wins`` bool
            (H, W), True where the argmax over every channel is a thing
            (ties as ``argmax``: the lower channel), None for the
            ``'stuff'`` layout.
        """
        layout = self._resolve_layout(seg_preds.shape[0])
        num_things = self.num_things_classes
        if layout == 'things_stuff':
            stuff_scores = seg_preds[num_things:]
        else:
            stuff_scores = seg_preds[:self.num_stuff_classes]
        best_stuff, stuff_index = stuff_scores.max(dim=0)
        stuff_labels = stuff_index + num_things
        if layout == 'things_stuff':
            thing_wins = seg_preds[:num_things].amax(dim=0) >= best_stuff
        elif layout == 'stuff_things':
            thing_wins = seg_preds[-1] > best_stuff
        else:
            thing_wins = None
            if self.test_cfg.uncovered_things == 'void':
                raise ValueError(
                    "test_cfg.panoptic.uncovered_things='void' needs thing "
                    f'scores, but seg_preds has {seg_preds.shape[0]} '
                    'channels, the stuff classes only (e.g. OANetStuffHead '
                    "with supervision='stuff'); use "
                    "uncovered_things='stuff'")
        return stuff_labels, thing_wins

    def _resolve_layout(self, num_channels: int) -> str:
        """The ``seg_layout`` of ``num_channels`` semantic channels."""
        num_things, num_stuff = self.num_things_classes, self.num_stuff_classes
        expected = dict(
            things_stuff=num_things + num_stuff,
            stuff_things=num_stuff + 1,
            stuff=num_stuff)
        if self.seg_layout != 'auto':
            if num_channels != expected[self.seg_layout]:
                raise ValueError(
                    f'seg_layout={self.seg_layout!r} expects '
                    f'{expected[self.seg_layout]} channels in seg_preds, '
                    f'got {num_channels}')
            return self.seg_layout
        # 'stuff_things' first: with one thing class it is also the count of
        # 'things_stuff', and it is what mmdet's and OANet's heads give.
        for layout in ('stuff_things', 'things_stuff', 'stuff'):
            if expected[layout] == num_channels:
                return layout
        raise ValueError(
            f'seg_preds has {num_channels} channels, but {num_things} thing '
            f'and {num_stuff} stuff classes give {expected} channels per '
            'seg_layout; check model.panoptic_fusion_head.seg_layout and '
            'its num_things_classes / num_stuff_classes')

    def _fuse(self,
              masks: Tensor,
              labels: Tensor,
              order_keys: Tensor,
              stuff_labels: Tensor,
              uncovered_void: Optional[Tensor] = None) -> PixelData:
        """Lay instances by ``order_keys``, fill with stuff, void small stuff.

        Args:
            masks (Tensor): bool, shape (N, H, W).
            labels (Tensor): long, shape (N,).
            order_keys (Tensor): float, shape (N,), larger is laid first.
            stuff_labels (Tensor): long, shape (H, W), stuff argmax + C_th.
            uncovered_void (Tensor, optional): bool, shape (H, W): pixels
                that become VOID unless an instance is laid there. Defaults
                to None (none).

        Returns:
            Tensor: int32, shape (1, H, W), panoptic ids.
        """
        instance_ids, laid_index = self._lay_instances(masks, order_keys)
        laid_labels = labels.to(stuff_labels.device).long()[laid_index]
        panoptic_seg = stuff_labels.clone()
        thing_mask = instance_ids > 0
        laid_ids = instance_ids[thing_mask]
        panoptic_seg[thing_mask] = (
            laid_labels[laid_ids - 1] + laid_ids * INSTANCE_OFFSET)
        stuff_mask = ~thing_mask
        if uncovered_void is not None:
            stuff_mask &= ~uncovered_void
            panoptic_seg[~thing_mask & uncovered_void] = self.num_classes
        void_mask = self._small_stuff_mask(panoptic_seg, stuff_mask)
        panoptic_seg[void_mask] = self.num_classes
        return panoptic_seg[None].int()

    def _lay_instances(self, masks: Tensor,
                       order_keys: Tensor) -> Tuple[Tensor, Tensor]:
        """Lay masks in descending ``order_keys``; later ones go underneath.

        An instance is skipped when more than ``mask_overlap`` of its area
        is already covered; laying stops after ``max_per_img`` instances.

        Args:
            masks (Tensor): bool, shape (N, H, W).
            order_keys (Tensor): float, shape (N,).

        Returns:
            tuple[Tensor, Tensor]: ``instance_ids`` long (H, W), 0 where no
            instance is laid, k for the k-th laid one; ``laid_index`` long
            (K,), the index into the N instances of each laid one.
        """
        # NumPy on the host: per-crop reductions of bool tensors are ~1000x
        # slower in torch on CPU (a crop's ``sum`` costs as much as a full
        # image's), and this loop is inherently sequential anyway.
        masks_np = masks.cpu().numpy()
        instance_ids = np.zeros(masks_np.shape[-2:], dtype=np.int64)
        order = torch.argsort(order_keys, descending=True, stable=True)
        boxes = mask_boxes(masks_np)
        overlap_limit = self.test_cfg.mask_overlap
        laid_index = []
        # Per instance, work on its bounding box only: Mask R-CNN masks are
        # a few percent of the image, and a full-image pass per instance
        # made this loop the most expensive step of OANet's inference.
        for index in order.tolist():
            if len(laid_index) >= self.test_cfg.max_per_img:
                break
            top, bottom, left, right = boxes[index]
            if bottom <= top:  # empty mask
                continue
            mask_crop = masks_np[index, top:bottom, left:right]
            ids_crop = instance_ids[top:bottom, left:right]
            area = np.count_nonzero(mask_crop)
            free_part = mask_crop & (ids_crop == 0)
            free_area = np.count_nonzero(free_part)
            covered = area - free_area
            if free_area == 0 or covered > overlap_limit * area:
                continue
            laid_index.append(index)
            ids_crop[free_part] = len(laid_index)
        return (torch.from_numpy(instance_ids).to(masks.device),
                torch.tensor(
                    laid_index, dtype=torch.long, device=masks.device))

    def _small_stuff_mask(self, panoptic_seg: Tensor,
                          stuff_mask: Tensor) -> Tensor:
        """Stuff pixels whose region is below ``stuff_area_limit``.

        Args:
            panoptic_seg (Tensor): long, shape (H, W).
            stuff_mask (Tensor): bool, shape (H, W), pixels holding stuff.

        Returns:
            Tensor: bool, shape (H, W).
        """
        limit = self.test_cfg.stuff_area_limit
        if self.test_cfg.stuff_area_mode == 'class':
            classes, areas = torch.unique(
                panoptic_seg[stuff_mask], return_counts=True)
            small_classes = classes[areas < limit]
            return stuff_mask & torch.isin(panoptic_seg, small_classes)
        # Connected regions (4-connectivity) of every stuff class at once.
        stuff_map = torch.where(stuff_mask, panoptic_seg + 1,
                                torch.zeros_like(panoptic_seg)).cpu().numpy()
        components = equal_value_components(stuff_map)
        areas = np.bincount(components.ravel())
        small_component = areas < limit
        small_component[0] = False  # not stuff
        small = small_component[components]
        return torch.from_numpy(small).to(panoptic_seg.device)


def same_class_by_score(rank_keys: Tensor, scores: Tensor,
                        labels: Tensor) -> Tensor:
    """Order keys: rank order between classes, score order within one.

    The SRM pastes every instance of a class into the same channel, so it
    sees nothing that tells two instances of one class apart; their order
    is left to the detection score, which also lays a low-score fragment of
    an object after the object itself (and ``mask_overlap`` then drops
    it). Each class keeps the laying slots that ``rank_keys`` give its
    instances; the slots are handed out again by descending score.

    Args:
        rank_keys (Tensor): float, shape (N,), larger is laid first.
        scores (Tensor): float, shape (N,), detection scores.
        labels (Tensor): long, shape (N,).

    Returns:
        Tensor: float, shape (N,), larger is laid first.
    """
    num = rank_keys.numel()
    order = torch.argsort(rank_keys, descending=True, stable=True)
    slots = torch.empty_like(order)
    slots[order] = torch.arange(num, device=order.device)
    keys = torch.empty_like(rank_keys, dtype=torch.float)
    labels = labels.to(rank_keys.device)
    scores = scores.to(rank_keys.device)
    for label in labels.unique():
        members = (labels == label).nonzero().squeeze(1)
        by_score = members[torch.argsort(
            scores[members], descending=True, stable=True)]
        keys[by_score] = (num - slots[members].sort().values).float()
    return keys


def panoptic_sample_fields(result: PixelData) -> Dict[str, PixelData]:
    """Split a fusion result into the data-sample fields it holds.

    Args:
        result (PixelData): One image's result of
            :meth:`SRMFusionHead.predict`.

    Returns:
        dict[str, PixelData]: data-sample key (``pred_panoptic_seg``,
        ``pred_panoptic_seg_srm``, ``pred_panoptic_seg_score``,
        ``pred_sem_seg``) to ``PixelData(sem_seg=...)``, for the fields
        present.
    """
    return {
        sample_key: PixelData(sem_seg=result.get(field))
        for field, sample_key in SAMPLE_KEYS.items() if field in result
    }
