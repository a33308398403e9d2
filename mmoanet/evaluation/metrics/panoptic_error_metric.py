"""Where a panoptic model loses PQ: a breakdown by error kind and class.

PQ says how much is lost, not why. This metric splits the loss the way the
fusion step can cause it:

- things vs stuff, SQ vs RQ, per class (PQ's own statistics, from
  :func:`~mmoanet.evaluation.functional.panoptic_stats_single`);
- every ground-truth thing that no predicted segment matches (a false
  negative of PQ) gets one kind:

  - ``missed``: no detection before fusion finds it (needs
    ``pred_instances``);
  - ``buried``: found, but most of its pixels went to another thing's
    segment (laid above it: the wrong order, Sec. 3.2);
  - ``not_laid``: found, but most of its pixels are VOID or stuff (the
    fusion dropped the detection, e.g. by ``mask_overlap``);
  - ``bad_mask``: found, and its pixels went mostly to a segment of its own
    class that still does not match it (a poor or merged mask);

- ground-truth stuff pixels predicted VOID (``stuff_voided``, e.g. areas
  under ``stuff_area_limit``) or as another class (``stuff_confused``,
  split into ``stuff_as_stuff`` and ``stuff_as_thing``).

A detection *finds* a ground-truth thing when both have the same class and
their IoU is above ``iou_thr``, where the detection's pixels on the things
known to lie on top of it (from the overlaps file) leave the union: an
amodal mask rightly runs under its occluders. Without an overlaps file the
IoU is the plain one with the visible segment, so an amodal detection of a
mostly hidden thing may count as ``missed``.

Shape shorthand:

    H, W: original image size (``ori_shape``)
    N: detections before fusion
    G: ground-truth thing segments of an image
"""
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import load
from mmengine.logging import MMLogger, print_log

from ...datasets.annotation_checks import naming_json_errors
from ..functional import (PanopticStats, merge_stats, panoptic_stats_single,
                          pq_summary)
from .input_paths import check_input_path
from .panoptic_occlusion_metric import (PanopticGroundTruth, match_segments,
                                        prediction_segments)

THING_KINDS = ('missed', 'buried', 'not_laid', 'bad_mask')


def detections_finding(det_masks: np.ndarray,
                       det_labels: np.ndarray,
                       gt_ids: np.ndarray,
                       thing_ids: Sequence[int],
                       thing_labels: Sequence[int],
                       iou_thr: float,
                       on_top: Optional[np.ndarray] = None) -> np.ndarray:
    """Which ground-truth things some detection finds.

    Args:
        det_masks (np.ndarray): bool, shape (N, H, W).
        det_labels (np.ndarray): int, shape (N,).
        gt_ids (np.ndarray): int, shape (H, W), ground-truth segment ids.
        thing_ids (Sequence[int]): G ground-truth thing segment ids.
        thing_labels (Sequence[int]): their G labels.
        iou_thr (float): least IoU (exclusive).
        on_top (np.ndarray, optional): bool, shape (G, G); ``on_top[g, h]``
            says thing ``h`` lies on thing ``g``, so a detection of ``g``
            may cover ``h``'s pixels. Defaults to None (no such pairs).

    Returns:
        np.ndarray: bool, shape (G,).
    """
    found = np.zeros(len(thing_ids), bool)
    if len(det_masks) == 0 or len(thing_ids) == 0:
        return found
    if det_masks.shape[1:] != gt_ids.shape:
        raise ValueError(f'detections {det_masks.shape[1:]} and ground truth '
                         f'{gt_ids.shape} differ in size; predict with '
                         'rescale=True')
    det = det_masks.reshape(len(det_masks), -1).astype(np.float32)
    gt = np.stack([(gt_ids == i).ravel() for i in thing_ids])
    gt = gt.astype(np.float32)
    inter = det @ gt.T  # (N, G)
    det_area = det.sum(1, keepdims=True)
    gt_area = gt.sum(1)[None, :]
    union = gt_area + det_area - inter
    if on_top is not None:
        # Pixels of the detection on the thing's occluders leave the union.
        union -= inter @ on_top.T.astype(np.float32)
    iou = inter / np.maximum(union, 1)
    same = np.asarray(det_labels)[:, None] == np.asarray(thing_labels)[None]
    return ((iou > iou_thr) & same).any(0)


@METRICS.register_module()
class PanopticErrorMetric(BaseMetric):
    """Breakdown of the PQ loss by error kind, things/stuff and class.

    Works on any panoptic model's ``pred_panoptic_seg``; the ``missed``
    kind also needs the detections before fusion as ``pred_instances``
    (``masks`` bool (N, H, W), ``labels`` (N,)), which OANet keeps and
    ``projects/oanet_studies/head_to_head.py`` adds for mmdet's models.
    Without them, ``missed`` is left out and the other kinds are counted
    without asking whether a detection existed.

    Args:
        ann_file (str): COCO panoptic JSON of the split.
        seg_prefix (str): Folder of its PNGs.
        overlaps_file (str, optional): ``overlaps_{split}.json`` of the
            synthetic set; adds ``pair_top_buried`` and
            ``pair_bottom_not_laid``. Defaults to None.
        iou_thr (float): Match threshold (PQ's). Defaults to 0.5.
        backend_args (dict, optional): mmengine file backend arguments.
        collect_device (str): As in ``BaseMetric``. Defaults to 'cpu'.
        prefix (str, optional): Defaults to ``'panoptic_errors'``.

    Reported, in percent: ``PQ_th``/``SQ_th``/``RQ_th`` and ``_st`` (as
    PQ), ``fn_th`` (unmatched ground-truth things), the four thing kinds
    above (shares of all ground-truth things, adding up to ``fn_th``),
    ``fp_th`` (unmatched predicted things, share of predicted things),
    ``stuff_voided``, ``stuff_confused``, ``stuff_as_stuff`` and
    ``stuff_as_thing`` (shares of ground-truth stuff pixels), per class
    ``{class}/PQ``, ``{class}/SQ``, ``{class}/RQ`` and, with overlaps, the
    pair shares.
    """
    default_prefix: Optional[str] = 'panoptic_errors'

    def __init__(self,
                 ann_file: str,
                 seg_prefix: str,
                 overlaps_file: Optional[str] = None,
                 iou_thr: float = 0.5,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ground_truth = PanopticGroundTruth(ann_file, seg_prefix,
                                                backend_args)
        self.pairs = None
        if overlaps_file is not None:
            check_input_path(
                overlaps_file, 'overlaps_file', backend_args=backend_args)
            with naming_json_errors(overlaps_file):
                overlaps = load(overlaps_file, backend_args=backend_args)
            self.pairs = {
                e['image_id']: e['pairs']
                for e in overlaps['images']
            }
        self.iou_thr = iou_thr
        self._cat2label: Optional[Dict[int, int]] = None
        self._warned = False

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Classify the errors of each image.

        Args:
            data_batch (dict): Unused.
            data_samples (Sequence[dict]): With ``img_id``,
                ``pred_panoptic_seg`` (``sem_seg`` int (1, H, W)) and
                optionally ``pred_instances``.
        """
        classes = self.dataset_meta['classes']
        num_things = len(self.dataset_meta['thing_classes'])
        if self._cat2label is None:
            self._cat2label = self.ground_truth.cat2label(classes)
        label2cat = {v: k for k, v in self._cat2label.items()}
        for sample in data_samples:
            image_id = sample['img_id']
            gt_ids, segments = self.ground_truth.load(image_id)
            gt_ids = gt_ids.astype(np.int64)
            pred_ids, pred_categories = prediction_segments(
                sample, label2cat, len(classes))
            matches = match_segments(
                gt_ids, {s['id']: s['category_id']
                         for s in segments}, pred_ids, pred_categories,
                self.iou_thr)
            counts = defaultdict(float)
            counts['stats'] = panoptic_stats_single(
                gt_ids, segments, pred_ids, [
                    dict(id=i, category_id=c)
                    for i, c in pred_categories.items()
                ], None, str(image_id))
            label_of = {
                s['id']: self._cat2label[s['category_id']]
                for s in segments
            }
            pred_label = {
                i: self._cat2label[c]
                for i, c in pred_categories.items()
            }
            things = [
                s for s in segments
                if label_of[s['id']] < num_things and not s.get('iscrowd')
            ]
            found = self._found(sample, gt_ids, things, label_of)
            counts['with_detections'] = int(found is not None)
            kinds = {}
            for index, segment in enumerate(things):
                if segment['id'] in matches:
                    continue
                kind = self._kind(gt_ids == segment['id'], pred_ids,
                                  pred_label, label_of[segment['id']],
                                  num_things, found, index)
                kinds[segment['id']] = kind
                counts[kind] += 1
            counts['gt_th'] = len(things)
            counts['fn_th'] = len(kinds)
            matched_preds = {pred for pred, _ in matches.values()}
            pred_things = [
                i for i, lab in pred_label.items() if lab < num_things
            ]
            counts['pred_th'] = len(pred_things)
            counts['fp_th'] = sum(i not in matched_preds for i in pred_things)
            self._stuff_pixels(gt_ids, segments, label_of, pred_ids,
                               pred_label, num_things, counts)
            if self.pairs is not None:
                for pair in self.pairs.get(image_id, []):
                    counts['pairs'] += 1
                    counts['pair_top_buried'] += int(
                        kinds.get(pair['top_segment_id']) == 'buried')
                    counts['pair_bottom_not_laid'] += int(
                        kinds.get(pair['bottom_segment_id']) == 'not_laid')
            self.results.append(dict(counts))

    def _found(self, sample: dict, gt_ids: np.ndarray, things: List[dict],
               label_of: Dict[int, int]) -> Optional[np.ndarray]:
        """bool (G,): found by a detection; None without detections."""
        on_top = None
        if self.pairs is not None:
            index = {s['id']: i for i, s in enumerate(things)}
            on_top = np.zeros((len(things), len(things)), bool)
            for pair in self.pairs.get(sample['img_id'], []):
                top = index.get(pair['top_segment_id'])
                bottom = index.get(pair['bottom_segment_id'])
                if top is not None and bottom is not None:
                    on_top[bottom, top] = True
        instances = sample.get('pred_instances')
        if instances is None or 'masks' not in instances:
            if not self._warned:
                print_log(
                    'PanopticErrorMetric: no pred_instances on the data '
                    "samples, so 'missed' cannot be told apart",
                    logger='current')
                self._warned = True
            return None
        masks = instances['masks']
        masks = masks.cpu().numpy() if hasattr(masks, 'cpu') else masks
        labels = instances['labels']
        labels = labels.cpu().numpy() if hasattr(labels, 'cpu') else labels
        return detections_finding(
            np.asarray(masks, bool), np.asarray(labels), gt_ids,
            [s['id'] for s in things], [label_of[s['id']] for s in things],
            self.iou_thr, on_top)

    @staticmethod
    def _kind(region: np.ndarray, pred_ids: np.ndarray,
              pred_label: Dict[int, int], label: int, num_things: int,
              found: Optional[np.ndarray], index: int) -> str:
        """Error kind of one unmatched ground-truth thing."""
        if found is not None and not found[index]:
            return 'missed'
        held = pred_ids[region]
        ids, pixels = np.unique(held, return_counts=True)
        by_owner = defaultdict(int)
        for pred_id, count in zip(ids.tolist(), pixels.tolist()):
            owner_label = pred_label.get(pred_id)
            if owner_label is None or owner_label >= num_things:
                by_owner['not_laid'] += count  # VOID or stuff
            elif owner_label == label:
                by_owner['bad_mask'] += count
            else:
                by_owner['buried'] += count
        return max(('buried', 'not_laid', 'bad_mask'),
                   key=lambda k: by_owner[k])

    @staticmethod
    def _stuff_pixels(gt_ids: np.ndarray, segments: List[dict],
                      label_of: Dict[int, int], pred_ids: np.ndarray,
                      pred_label: Dict[int, int], num_things: int,
                      counts: dict) -> None:
        """Count ground-truth stuff pixels by what the prediction holds."""
        for segment in segments:
            label = label_of[segment['id']]
            if label < num_things:
                continue
            held = pred_ids[gt_ids == segment['id']]
            ids, pixels = np.unique(held, return_counts=True)
            for pred_id, count in zip(ids.tolist(), pixels.tolist()):
                counts['stuff_px'] += count
                owner = pred_label.get(pred_id)
                if owner is None:
                    counts['stuff_voided'] += count
                elif owner < num_things:
                    counts['stuff_as_thing'] += count
                elif owner != label:
                    counts['stuff_as_stuff'] += count

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Shares in percent and per-class PQ over all images."""

        def total(key):
            return sum(r.get(key, 0) for r in results)

        def share(key, denominator):
            return 100.0 * total(key) / max(total(denominator), 1)

        stats: PanopticStats = merge_stats([r['stats'] for r in results])
        categories = self.ground_truth.categories
        summary = pq_summary(stats, categories)
        metrics = {}
        for suffix, group in (('th', 'Things'), ('st', 'Stuff')):
            for key in ('pq', 'sq', 'rq'):
                metrics[f'{key.upper()}_{suffix}'] = 100 * summary[group][key]
        metrics['fn_th'] = share('fn_th', 'gt_th')
        with_detections = all(r['with_detections'] for r in results)
        for kind in THING_KINDS:
            if kind != 'missed' or with_detections:
                metrics[kind] = share(kind, 'gt_th')
        metrics['fp_th'] = share('fp_th', 'pred_th')
        for key in ('stuff_voided', 'stuff_as_stuff', 'stuff_as_thing'):
            metrics[key] = share(key, 'stuff_px')
        metrics['stuff_confused'] = (
            metrics['stuff_as_stuff'] + metrics['stuff_as_thing'])
        for cat_id, values in summary['per_class'].items():
            name = categories[cat_id]['name']
            for key in ('pq', 'sq', 'rq'):
                metrics[f'{name}/{key.upper()}'] = 100 * values[key]
        if self.pairs is not None:
            metrics['pair_top_buried'] = share('pair_top_buried', 'pairs')
            metrics['pair_bottom_not_laid'] = share('pair_bottom_not_laid',
                                                    'pairs')
        MMLogger.get_current_instance().info('PQ errors: ' + ', '.join(
            f'{k} {metrics[k]:.1f}%'
            for k in ('fn_th', *THING_KINDS, 'fp_th', 'stuff_voided',
                      'stuff_confused') if k in metrics))
        return metrics
