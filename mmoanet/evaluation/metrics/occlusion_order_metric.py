"""How often a fusion order puts the right instance on top.

PQ mixes the ordering with everything else a model gets right or wrong. This
metric isolates the ordering the paper is about (Sec. 3.2): for every pair
of overlapping ground-truth instances with a known top one, it finds the two
predicted instances that match them and asks whether an order ranks the top
one higher. Orders compared: ``'srm'`` (``pred_instances.rank_scores``, Eq. 3)
and ``'score'`` (``pred_instances.scores``, the heuristic).

The pairs come from the ``overlaps_{split}.json`` written by
``tools/dataset_converters/make_synthetic_occlusion.py``; the full (amodal)
instance masks from the COCO instances file of the same split.
"""
import json
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from pycocotools.coco import COCO

from ...datasets.annotation_checks import naming_json_errors
from .input_paths import check_input_path

ORDER_KEYS = {'srm': 'rank_scores', 'score': 'scores'}


def match_instances(gt_masks: np.ndarray, gt_labels: np.ndarray,
                    pred_masks: np.ndarray, pred_labels: np.ndarray,
                    pred_scores: np.ndarray, iou_thr: float) -> np.ndarray:
    """Match predictions to ground truth one to one by mask IoU.

    Predictions are taken in descending score; each takes the unmatched
    ground truth of its class with the highest IoU, if at least ``iou_thr``.

    Args:
        gt_masks (np.ndarray): bool, shape (G, H, W).
        gt_labels (np.ndarray): int, shape (G,).
        pred_masks (np.ndarray): bool, shape (P, H, W).
        pred_labels (np.ndarray): int, shape (P,).
        pred_scores (np.ndarray): float, shape (P,).
        iou_thr (float): least IoU of a match.

    Returns:
        np.ndarray: int64, shape (G,), the matched prediction of each ground
        truth instance or -1.
    """
    matches = np.full(len(gt_masks), -1, dtype=np.int64)
    if len(gt_masks) == 0 or len(pred_masks) == 0:
        return matches
    gt_flat = gt_masks.reshape(len(gt_masks), -1).astype(np.float32)
    pred_flat = pred_masks.reshape(len(pred_masks), -1).astype(np.float32)
    inter = pred_flat @ gt_flat.T
    union = pred_flat.sum(1)[:, None] + gt_flat.sum(1)[None, :] - inter
    iou = inter / np.maximum(union, 1)
    iou[pred_labels[:, None] != gt_labels[None, :]] = 0
    for pred in np.argsort(-pred_scores, kind='stable'):
        candidates = np.where(matches == -1, iou[pred], 0)
        best = int(candidates.argmax())
        if candidates[best] >= iou_thr:
            matches[best] = pred
    return matches


@METRICS.register_module()
class OcclusionOrderMetric(BaseMetric):
    """Share of overlapping instance pairs each fusion order gets right.

    Args:
        overlaps_file (str): ``overlaps_{split}.json`` of the synthetic set:
            per image, pairs ``top_id``/``bottom_id`` of instance ids.
        ins_ann_file (str): COCO instances JSON with the full masks.
        iou_thr (float): least mask IoU for a prediction to stand for a
            ground-truth instance. Defaults to 0.5.
        orders (Sequence[str]): among ``'srm'`` and ``'score'``.
        collect_device (str): as in ``BaseMetric``.
        prefix (str): metric name prefix. Defaults to ``'occlusion'``.

    Reported: ``occlusion/pairs`` (pairs in the ground truth),
    ``occlusion/matched`` (share with both instances detected) and, per
    order, ``occlusion/{order}_acc``: the share of matched pairs where the
    order ranks the top instance strictly higher, in percent, and
    ``occlusion/{order}_acc_diff`` over the pairs of two different classes
    only. The SRM sees one channel per class, so for two overlapping
    instances of one class it has no cue to their order (Eq. 2 defines
    conflicts between different classes only); ``_diff`` is the share it
    is built to get right.
    """

    def __init__(self,
                 overlaps_file: str,
                 ins_ann_file: str,
                 iou_thr: float = 0.5,
                 orders: Sequence[str] = ('srm', 'score'),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = 'occlusion') -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        unknown = set(orders) - set(ORDER_KEYS)
        if unknown:
            raise ValueError(f'unknown orders {sorted(unknown)}; '
                             f'use {sorted(ORDER_KEYS)}')
        self.orders = tuple(orders)
        self.iou_thr = iou_thr
        check_input_path(overlaps_file, 'overlaps_file')
        check_input_path(ins_ann_file, 'ins_ann_file')
        with open(overlaps_file) as f, naming_json_errors(overlaps_file):
            overlaps = json.load(f)
        self.pairs = {
            entry['image_id']: entry['pairs']
            for entry in overlaps['images']
        }
        with naming_json_errors(ins_ann_file):
            self.coco = COCO(ins_ann_file)
        self._cat2label: Optional[Dict[int, int]] = None

    @property
    def cat2label(self) -> Dict[int, int]:
        """Category id -> thing label, through the class names."""
        if self._cat2label is None:
            classes = list(self.dataset_meta['thing_classes'])
            cat2label = {}
            for cat in self.coco.loadCats(self.coco.getCatIds()):
                if cat['name'] not in classes:
                    raise ValueError(
                        f'category {cat["id"]} ({cat["name"]}) of the '
                        'instances file is not a thing class of the dataset')
                cat2label[cat['id']] = classes.index(cat['name'])
            self._cat2label = cat2label
        return self._cat2label

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            image_id = sample['img_id']
            pairs = self.pairs.get(image_id)
            if pairs is None:
                raise KeyError(f'image {image_id} is not in the overlaps '
                               'file; pass the file of the evaluated split')
            pred = sample['pred_instances']
            missing = [o for o in self.orders if ORDER_KEYS[o] not in pred]
            if missing:
                raise KeyError(f'pred_instances has no '
                               f'{[ORDER_KEYS[o] for o in missing]}: the '
                               'model must be OANet with an SRMFusionHead')
            ann_ids = self.coco.getAnnIds(imgIds=[image_id])
            anns = self.coco.loadAnns(ann_ids)
            gt_masks = np.stack([self.coco.annToMask(a) > 0 for a in anns]) \
                if anns else np.zeros((0, 1, 1), bool)
            gt_labels = np.array(
                [self.cat2label[a['category_id']] for a in anns],
                dtype=np.int64)
            pred_masks = pred['masks'].cpu().numpy().astype(bool)
            if len(pred_masks) and pred_masks.shape[1:] != gt_masks.shape[1:]:
                raise ValueError(
                    f'image {image_id}: predicted masks {pred_masks.shape[1:]}'
                    f' and ground truth {gt_masks.shape[1:]} differ in size')
            matches = match_instances(gt_masks, gt_labels, pred_masks,
                                      pred['labels'].cpu().numpy(),
                                      pred['scores'].cpu().numpy(),
                                      self.iou_thr)
            index = {ann_id: i for i, ann_id in enumerate(ann_ids)}
            keys = {o: pred[ORDER_KEYS[o]].cpu().numpy() for o in self.orders}
            result = defaultdict(int, pairs=len(pairs))
            for pair in pairs:
                top = matches[index[pair['top_id']]]
                bottom = matches[index[pair['bottom_id']]]
                if top < 0 or bottom < 0:
                    continue
                cross = pair['top_category_id'] != pair['bottom_category_id']
                result['matched'] += 1
                result['matched_diff'] += int(cross)
                for order, key in keys.items():
                    right = int(key[top] > key[bottom])
                    result[order] += right
                    result[f'{order}_diff'] += right * int(cross)
            self.results.append(dict(result))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:

        def total(key):
            return sum(r.get(key, 0) for r in results)

        pairs, matched = total('pairs'), total('matched')
        metrics = dict(
            pairs=float(pairs), matched=100.0 * matched / max(pairs, 1))
        for order in self.orders:
            metrics[f'{order}_acc'] = 100.0 * total(order) / max(matched, 1)
            metrics[f'{order}_acc_diff'] = 100.0 * total(
                f'{order}_diff') / max(total('matched_diff'), 1)
        MMLogger.get_current_instance().info(
            f'occlusion order over {matched} of {pairs} overlapping pairs '
            'with both instances detected: ' +
            ', '.join(f'{o} {metrics[f"{o}_acc"]:.1f}%' for o in self.orders))
        return metrics
