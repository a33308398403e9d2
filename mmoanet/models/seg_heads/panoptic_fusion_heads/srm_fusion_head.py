"""Panoptic fusion that lays instances by their SRM rank (OANet Sec. 3.2).

Shape shorthand used in this file::

    N: instances in one image       C_th, C_st: thing, stuff classes
    H, W: original image size (ori_shape), where masks and stuff maps live
"""
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.models.seg_heads.panoptic_fusion_heads import BasePanopticFusionHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, InstanceList, OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from ..spatial_ranking_module import as_bool_masks

RANK_KEYS = ('srm', 'score')
STUFF_AREA_MODES = ('connected', 'class')
DEFAULT_TEST_CFG = dict(
    mask_overlap=0.5,
    stuff_area_limit=4900,
    stuff_area_mode='connected',
    max_per_img=100,
    compare_orders=False)


@MODELS.register_module()
class SRMFusionHead(BasePanopticFusionHead):
    """Fuse instance and stuff predictions, laying instances by rank.

    Instances are laid on an empty canvas in descending order of a key: the
    SRM ranking score of Eq. 3 (``rank_by='srm'``, OANet) or the detection
    score (``rank_by='score'``, the heuristic baseline of Table 3, run by
    the same code so the two differ only in the order). The remaining pixels
    take the argmax over stuff classes, and stuff regions that are too small
    become VOID. The head owns the SRM, hence its loss.

    Args:
        num_things_classes (int): C_th. Defaults to 80.
        num_stuff_classes (int): C_st. Defaults to 53.
        srm (dict): Config of the :class:`SpatialRankingModule`; its
            ``num_things_classes`` defaults to the head's.
        rank_by (str): ``'srm'`` (default) or ``'score'``, the order written
            as ``'pred_panoptic_seg'``.
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
            - compare_orders (bool): also return
              ``'pred_panoptic_seg_srm'`` and ``'pred_panoptic_seg_score'``,
              laid from one SRM forward. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 num_things_classes: int = 80,
                 num_stuff_classes: int = 53,
                 srm: ConfigType = dict(type='SpatialRankingModule'),
                 rank_by: str = 'srm',
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        assert rank_by in RANK_KEYS, f'rank_by must be one of {RANK_KEYS}'
        full_test_cfg = ConfigDict(DEFAULT_TEST_CFG)
        full_test_cfg.update(test_cfg or {})
        assert full_test_cfg.stuff_area_mode in STUFF_AREA_MODES, \
            f'stuff_area_mode must be one of {STUFF_AREA_MODES}'
        super().__init__(
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            test_cfg=full_test_cfg,
            loss_panoptic=None,
            init_cfg=init_cfg,
            **kwargs)
        srm = dict(srm)
        srm.setdefault('num_things_classes', num_things_classes)
        assert srm['num_things_classes'] == num_things_classes, \
            'the SRM must have one channel per thing class of the head'
        self.srm = MODELS.build(srm)
        self.rank_by = rank_by

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
                with_stuff_labels: bool = False) -> List[Dict[str, PixelData]]:
        """Panoptic segmentation of each image of the batch.

        Args:
            mask_results_list (list[InstanceData]): per image, ``masks`` bool
                (N, H, W) at the original image size, ``labels`` long (N,),
                ``scores`` float (N,). ``rank_scores`` float (N,) is written
                into each.
            seg_preds_list (list[Tensor]): per image, float (C_st, H, W),
                probabilities over stuff classes.
            batch_img_metas (list[dict], optional): per image, with
                ``img_shape``, the resized input size the SRM works at. When
                None, the SRM works at the mask size.
            with_stuff_labels (bool): Also return ``'pred_sem_seg'``, the
                stuff argmax + C_th (long (1, H, W)) that the fusion
                computes anyway, so that the detector need not compute it
                a second time. Defaults to False.

        Returns:
            list[dict[str, PixelData]]: per image, ``'pred_panoptic_seg'``
            (order ``rank_by``) and, with ``compare_orders``, also
            ``'pred_panoptic_seg_srm'`` and ``'pred_panoptic_seg_score'``,
            and with ``with_stuff_labels`` ``'pred_sem_seg'`` (see above).
            The panoptic ones hold ``sem_seg``, int32 (1, H, W), with ids
            ``label + instance_id * INSTANCE_OFFSET`` for things (instance
            ids from 1 in laying order), the stuff label for stuff and
            ``num_classes`` for VOID.
        """
        if batch_img_metas is None:
            batch_img_metas = [None] * len(mask_results_list)
        return [
            self._predict_single(mask_results, seg_preds, img_meta,
                                 with_stuff_labels)
            for mask_results, seg_preds, img_meta in zip(
                mask_results_list, seg_preds_list, batch_img_metas)
        ]

    def _predict_single(
            self,
            mask_results: InstanceData,
            seg_preds: Tensor,
            img_meta: Optional[dict],
            with_stuff_labels: bool = False) -> Dict[str, PixelData]:
        """Fusion of one image, see :meth:`predict`."""
        assert seg_preds.shape[0] == self.num_stuff_classes, \
            'seg_preds must hold probabilities over stuff classes only'
        masks = as_bool_masks(mask_results.masks, seg_preds.device)
        img_shape = masks.shape[-2:]
        if img_meta is not None:
            img_shape = img_meta['img_shape']
        # The SRM runs once; every order below reuses its scores.
        rank_scores = self.srm.rank_scores(mask_results, img_shape).detach()
        mask_results.rank_scores = rank_scores
        order_keys = dict(srm=rank_scores, score=mask_results.scores)
        stuff_labels = seg_preds.argmax(dim=0) + self.num_things_classes

        names = RANK_KEYS if self.test_cfg.compare_orders else (self.rank_by, )
        labels = mask_results.labels
        panoptic = {
            name: self._fuse(masks, labels, order_keys[name], stuff_labels)
            for name in names
        }
        results = dict(pred_panoptic_seg=panoptic[self.rank_by])
        if self.test_cfg.compare_orders:
            results.update({
                f'pred_panoptic_seg_{name}': panoptic[name]
                for name in names
            })
        if with_stuff_labels:
            results['pred_sem_seg'] = PixelData(sem_seg=stuff_labels[None])
        return results

    def _fuse(self, masks: Tensor, labels: Tensor, order_keys: Tensor,
              stuff_labels: Tensor) -> PixelData:
        """Lay instances by ``order_keys``, fill with stuff, void small stuff.

        Args:
            masks (Tensor): bool, shape (N, H, W).
            labels (Tensor): long, shape (N,).
            order_keys (Tensor): float, shape (N,), larger is laid first.
            stuff_labels (Tensor): long, shape (H, W), stuff argmax + C_th.

        Returns:
            PixelData: ``sem_seg`` int32 (1, H, W) panoptic ids.
        """
        instance_ids, laid_index = self._lay_instances(masks, order_keys)
        laid_labels = labels.to(stuff_labels.device).long()[laid_index]
        panoptic_seg = stuff_labels.clone()
        thing_mask = instance_ids > 0
        laid_ids = instance_ids[thing_mask]
        panoptic_seg[thing_mask] = (
            laid_labels[laid_ids - 1] + laid_ids * INSTANCE_OFFSET)
        void_mask = self._small_stuff_mask(panoptic_seg, ~thing_mask)
        panoptic_seg[void_mask] = self.num_classes
        return PixelData(sem_seg=panoptic_seg[None].int())

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
        boxes = _mask_boxes(masks_np)
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
        components = _equal_value_components(stuff_map)
        areas = np.bincount(components.ravel())
        small_component = areas < limit
        small_component[0] = False  # not stuff
        small = small_component[components]
        return torch.from_numpy(small).to(panoptic_seg.device)


def _mask_boxes(masks: np.ndarray) -> List[Tuple[int, int, int, int]]:
    """Tight bounding box of each mask, as slice bounds.

    Args:
        masks (np.ndarray): bool, shape (N, H, W).

    Returns:
        list[tuple[int, int, int, int]]: N boxes ``(top, bottom, left,
        right)``: ``masks[n, top:bottom, left:right]`` holds every pixel of
        mask n; ``(0, 0, 0, 0)`` for an empty mask.
    """
    boxes = []
    # One full pass (columns); rows are then read inside the column span.
    for cols_any, mask in zip(masks.any(axis=1), masks):
        cols = np.flatnonzero(cols_any)
        if len(cols) == 0:
            boxes.append((0, 0, 0, 0))
            continue
        left, right = int(cols[0]), int(cols[-1]) + 1
        rows = np.flatnonzero(mask[:, left:right].any(axis=1))
        boxes.append((int(rows[0]), int(rows[-1]) + 1, left, right))
    return boxes


def _equal_value_components(value_map: np.ndarray) -> np.ndarray:
    """Label the 4-connected regions of equal non-zero value in one pass.

    Per class labelling costs one full pass per stuff class present. Here
    the map is spread on a (2H - 1, 2W - 1) grid: even cells are the
    pixels, odd cells between two neighbours are set only when both hold
    the same non-zero value, odd-odd cells stay empty. One binary 4-
    connected labelling of that grid (OpenCV) then joins exactly the
    pixels that a per-class labelling joins.

    Args:
        value_map (np.ndarray): int, shape (H, W); 0 is no region.

    Returns:
        np.ndarray: int32, shape (H, W), 0 where ``value_map`` is 0, else
        the region's label (1 ..).
    """
    height, width = value_map.shape
    present = value_map != 0
    grid = np.zeros((2 * height - 1, 2 * width - 1), dtype=np.uint8)
    grid[::2, ::2] = present
    grid[::2, 1::2] = present[:, 1:] & (value_map[:, 1:] == value_map[:, :-1])
    grid[1::2, ::2] = present[1:] & (value_map[1:] == value_map[:-1])
    _, labels = cv2.connectedComponents(grid, connectivity=4, ltype=cv2.CV_32S)
    return labels[::2, ::2]
