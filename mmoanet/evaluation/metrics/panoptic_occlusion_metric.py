"""What happens to overlapping instances, read from any panoptic prediction.

:class:`OcclusionOrderMetric` needs OANet's two instance orders, so it cannot
score mmdet's PanopticFPN. This metric only reads ``pred_panoptic_seg``,
which every panoptic model writes, and asks for each pair of overlapping
ground-truth things (the ``overlaps_{split}.json`` of the synthetic set):
is the top thing kept (its panoptic segment is matched), is the bottom one
kept, are both, and does the prediction give their overlap to the top one?

Matching is PQ's: a predicted and a ground-truth segment of the same
category match when their IoU is above 0.5, with the prediction's pixels on
ground-truth VOID left out of the union (see
:mod:`mmoanet.evaluation.functional.panoptic_quality`).

Shape shorthand:

    H, W: original image size (``ori_shape``)
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get, load
from mmengine.logging import MMLogger

from ...datasets.annotation_checks import naming_json_errors
from ..functional import VOID_ID, decode_panoptic_png, fusion_ids_to_coco
from .input_paths import check_input_path


def match_segments(gt_ids: np.ndarray,
                   gt_categories: Dict[int, int],
                   pred_ids: np.ndarray,
                   pred_categories: Dict[int, int],
                   iou_thr: float = 0.5) -> Dict[int, Tuple[int, float]]:
    """Match predicted to ground-truth panoptic segments as PQ does.

    Segments of one map are disjoint, so with ``iou_thr >= 0.5`` a segment
    has at most one match.

    Args:
        gt_ids (np.ndarray): int, shape (H, W), ground-truth segment ids,
            0 is VOID.
        gt_categories (dict[int, int]): Ground-truth segment id to category
            id (segments missing here are not matched).
        pred_ids (np.ndarray): int, shape (H, W), predicted segment ids, 0
            is VOID.
        pred_categories (dict[int, int]): Predicted segment id to category
            id.
        iou_thr (float): A match needs an IoU above this. Defaults to 0.5.

    Returns:
        dict[int, tuple[int, float]]: Ground-truth segment id to (matched
        predicted segment id, IoU), for matched segments only.
    """
    if gt_ids.shape != pred_ids.shape:
        raise ValueError(f'ground truth {gt_ids.shape} and prediction '
                         f'{pred_ids.shape} differ in size')
    gt_flat = gt_ids.astype(np.int64).ravel()
    pred_flat = pred_ids.astype(np.int64).ravel()
    stride = int(pred_flat.max()) + 1 if pred_flat.size else 1
    keys, inter = np.unique(gt_flat * stride + pred_flat, return_counts=True)
    gt_of_key, pred_of_key = keys // stride, keys % stride
    gt_area = dict(zip(*np.unique(gt_flat, return_counts=True)))
    pred_area = dict(zip(*np.unique(pred_flat, return_counts=True)))
    pred_on_void = {
        int(p): int(n)
        for g, p, n in zip(gt_of_key, pred_of_key, inter) if g == VOID_ID
    }
    matches = {}
    for gt_id, pred_id, count in zip(gt_of_key.tolist(), pred_of_key.tolist(),
                                     inter.tolist()):
        if gt_id == VOID_ID or pred_id == VOID_ID:
            continue
        category = gt_categories.get(gt_id)
        if category is None or pred_categories.get(pred_id) != category:
            continue
        union = (
            gt_area[gt_id] + pred_area[pred_id] - count -
            pred_on_void.get(pred_id, 0))
        iou = count / union
        if iou > iou_thr:
            matches[gt_id] = (pred_id, iou)
    return matches


class PanopticGroundTruth:
    """Ground-truth PNGs and segments of a COCO panoptic JSON.

    Args:
        ann_file (str): COCO panoptic JSON.
        seg_prefix (str): Folder of its PNGs.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 ann_file: str,
                 seg_prefix: str,
                 backend_args: Optional[dict] = None) -> None:
        check_input_path(ann_file, 'ann_file', backend_args=backend_args)
        check_input_path(
            seg_prefix, 'seg_prefix', folder=True, backend_args=backend_args)
        with naming_json_errors(ann_file):
            panoptic = load(ann_file, backend_args=backend_args)
        if 'annotations' not in panoptic:
            raise ValueError(f'{ann_file} has no annotations (ground truth)')
        self.ann_file = ann_file
        self.seg_prefix = seg_prefix
        self.backend_args = backend_args
        self.categories = {c['id']: c for c in panoptic['categories']}
        self.annotations = {a['image_id']: a for a in panoptic['annotations']}

    def cat2label(self, classes: Sequence[str]) -> Dict[int, int]:
        """Category id -> label, through the class names, as mmdet does."""
        names = {c['name']: cat_id for cat_id, c in self.categories.items()}
        missing = [name for name in classes if name not in names]
        if missing:
            raise ValueError(f'classes {missing} of the dataset are not '
                             f'categories of {self.ann_file}')
        return {names[name]: label for label, name in enumerate(classes)}

    def load(self, image_id: int) -> Tuple[np.ndarray, List[dict]]:
        """Segment ids (uint32 (H, W), 0 VOID) and segments of an image."""
        annotation = self.annotations.get(image_id)
        if annotation is None:
            raise KeyError(f'image {image_id} is not in {self.ann_file}; '
                           'pass the file of the evaluated split')
        path = osp.join(self.seg_prefix, annotation['file_name'])
        gt_ids = decode_panoptic_png(get(path, backend_args=self.backend_args))
        return gt_ids, annotation['segments_info']


def prediction_segments(data_sample: dict, label2cat: Dict[int, int],
                        num_classes: int) -> Tuple[np.ndarray, Dict[int, int]]:
    """COCO ids (int64 (H, W), 0 VOID) and id -> category of a prediction.

    Args:
        data_sample (dict): With ``pred_panoptic_seg.sem_seg``, int (1, H,
            W), ids ``label + instance_id * INSTANCE_OFFSET``; label
            ``num_classes`` is VOID.
        label2cat (dict[int, int]): Label to category id.
        num_classes (int): Thing plus stuff classes.
    """
    pred = data_sample['pred_panoptic_seg']
    pan = pred['sem_seg']
    pan = pan.cpu().numpy() if hasattr(pan, 'cpu') else np.asarray(pan)
    ids, segments = fusion_ids_to_coco(pan[0].astype(np.int64), label2cat,
                                       num_classes, pred.get('ignore_index'))
    return ids, {s['id']: s['category_id'] for s in segments}


@METRICS.register_module()
class PanopticOcclusionMetric(BaseMetric):
    """Overlapping pairs kept and ordered, from ``pred_panoptic_seg`` alone.

    Works for any panoptic model (mmdet's PanopticFPN and OANet alike), so a
    head-to-head compares models with one piece of code.

    Args:
        overlaps_file (str): ``overlaps_{split}.json`` of the synthetic set:
            per image, pairs with ``top_segment_id``, ``bottom_segment_id``
            (ids of the panoptic PNG) and ``overlap_rle`` (their amodal
            intersection, COCO RLE).
        ann_file (str): COCO panoptic JSON of the split.
        seg_prefix (str): Folder of its PNGs.
        iou_thr (float): A segment is kept when a prediction of its category
            matches it with an IoU above this. Defaults to 0.5 (PQ's).
        backend_args (dict, optional): mmengine file backend arguments.
        collect_device (str): As in ``BaseMetric``. Defaults to 'cpu'.
        prefix (str, optional): Defaults to ``'panoptic_occlusion'``.

    Reported (percent, over all ground-truth pairs unless said): ``pairs``
    (count), ``top_kept``, ``bottom_kept``, ``both_kept`` and
    ``order_acc``: of the pairs with both kept, the share whose overlap
    holds more pixels of the top thing's segment than of the bottom's.
    """
    default_prefix: Optional[str] = 'panoptic_occlusion'

    def __init__(self,
                 overlaps_file: str,
                 ann_file: str,
                 seg_prefix: str,
                 iou_thr: float = 0.5,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        check_input_path(
            overlaps_file, 'overlaps_file', backend_args=backend_args)
        with naming_json_errors(overlaps_file):
            overlaps = load(overlaps_file, backend_args=backend_args)
        self.pairs = {
            entry['image_id']: entry['pairs']
            for entry in overlaps['images']
        }
        for pairs in self.pairs.values():
            if pairs and 'top_segment_id' not in pairs[0]:
                raise ValueError(
                    f'{overlaps_file} has no panoptic segment ids per pair; '
                    'regenerate it with tools/dataset_converters/'
                    'make_synthetic_occlusion.py')
            break
        self.iou_thr = iou_thr
        self.ground_truth = PanopticGroundTruth(ann_file, seg_prefix,
                                                backend_args)
        self._label2cat: Optional[Dict[int, int]] = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score the pairs of each image.

        Args:
            data_batch (dict): Unused.
            data_samples (Sequence[dict]): With ``img_id`` and
                ``pred_panoptic_seg`` (``sem_seg`` int (1, H, W)).
        """
        classes = self.dataset_meta['classes']
        if self._label2cat is None:
            cat2label = self.ground_truth.cat2label(classes)
            self._label2cat = {v: k for k, v in cat2label.items()}
        for sample in data_samples:
            image_id = sample['img_id']
            pairs = self.pairs.get(image_id)
            if pairs is None:
                raise KeyError(f'image {image_id} is not in the overlaps '
                               'file; pass the file of the evaluated split')
            gt_ids, segments = self.ground_truth.load(image_id)
            pred_ids, pred_categories = prediction_segments(
                sample, self._label2cat, len(classes))
            matches = match_segments(
                gt_ids, {s['id']: s['category_id']
                         for s in segments}, pred_ids, pred_categories,
                self.iou_thr)
            result = dict(
                pairs=len(pairs),
                top_kept=0,
                bottom_kept=0,
                both_kept=0,
                order_right=0)
            for pair in pairs:
                top = matches.get(pair['top_segment_id'])
                bottom = matches.get(pair['bottom_segment_id'])
                result['top_kept'] += int(top is not None)
                result['bottom_kept'] += int(bottom is not None)
                if top is None or bottom is None:
                    continue
                result['both_kept'] += 1
                overlap = mask_utils.decode(pair['overlap_rle']).astype(bool)
                if overlap.shape != pred_ids.shape:
                    raise ValueError(
                        f'image {image_id}: overlap mask {overlap.shape} and '
                        f'prediction {pred_ids.shape} differ in size')
                held = pred_ids[overlap]
                result['order_right'] += int(
                    (held == top[0]).sum() > (held == bottom[0]).sum())
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Shares in percent over all images."""
        total = {
            key: sum(r[key] for r in results)
            for key in ('pairs', 'top_kept', 'bottom_kept', 'both_kept',
                        'order_right')
        }
        pairs = max(total['pairs'], 1)
        metrics = dict(
            pairs=float(total['pairs']),
            top_kept=100.0 * total['top_kept'] / pairs,
            bottom_kept=100.0 * total['bottom_kept'] / pairs,
            both_kept=100.0 * total['both_kept'] / pairs,
            order_acc=100.0 * total['order_right'] /
            max(total['both_kept'], 1))
        MMLogger.get_current_instance().info(
            f'overlapping pairs ({total["pairs"]}): top kept '
            f'{metrics["top_kept"]:.1f}%, both kept '
            f'{metrics["both_kept"]:.1f}%, overlap given to the top in '
            f'{metrics["order_acc"]:.1f}% of those')
        return metrics
