"""Vectorised panoptic quality (PQ), numerically identical to panopticapi.

The COCO panoptic rules (Kirillov et al., "Panoptic Segmentation", 2019), as
the reference evaluator ``panopticapi.evaluation.pq_compute`` applies them:

- Segment id 0 in the ground truth is VOID. A prediction's VOID pixels count
  neither for nor against it: they are taken out of the union of a pair.
- A ground truth segment with ``iscrowd == 1`` is never matched and never a
  false negative.
- A predicted and a ground truth segment of the same category match when
  ``IoU > 0.5``, with ``IoU = inter / (area_pred + area_gt - inter -
  void_pred)`` and ``void_pred`` the prediction's pixels on ground truth VOID.
- An unmatched prediction is a false positive unless more than half of it
  lies on VOID plus the (last listed) crowd region of its category.
- Per category PQ = sum IoU / (TP + FP / 2 + FN / 2), SQ = sum IoU / TP,
  RQ = TP / (TP + FP / 2 + FN / 2); 'All', 'Things' and 'Stuff' average over
  the categories that have any TP + FP + FN.

Instead of a Python loop over the (ground truth, prediction) pairs of an
image, both id maps are turned into small segment indices with
``np.searchsorted`` and one ``np.bincount`` gives the whole intersection
matrix; matching, false negatives and false positives are then array
operations on that matrix.

Shape shorthand:

    H, W: image size
    G: ground truth segments of one image (from its segments info)
    P: predicted segments of one image
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

#: Id of unlabelled pixels in a COCO panoptic PNG.
VOID_ID = 0

#: Column order of the per-category statistics in :class:`PanopticStats`.
STAT_FIELDS = ('tp', 'fp', 'fn', 'iou')

CategoryDict = Dict[int, dict]


class PanopticStats:
    """Per-category PQ statistics that add up over images and processes.

    Every category id maps to a float64 array ``[tp, fp, fn, iou_sum]`` of
    shape (4,). Counts stay exact in float64 up to 2**53. The object is
    small and picklable, so metrics can gather it across ranks.

    Args:
        per_category (dict[int, np.ndarray], optional): Initial statistics,
            category id to a float64 array of shape (4,). Defaults to None.
    """

    def __init__(self,
                 per_category: Optional[Dict[int, np.ndarray]] = None) -> None:
        self.per_category: Dict[int, np.ndarray] = {}
        if per_category:
            for cat_id, values in per_category.items():
                self.per_category[int(cat_id)] = np.array(
                    values, dtype=np.float64)

    def add(self,
            cat_id: int,
            tp: float = 0,
            fp: float = 0,
            fn: float = 0,
            iou: float = 0.0) -> None:
        """Add counts to one category."""
        row = self.per_category.get(cat_id)
        if row is None:
            row = self.per_category[cat_id] = np.zeros(4, dtype=np.float64)
        row += (tp, fp, fn, iou)

    def __iadd__(self, other: 'PanopticStats') -> 'PanopticStats':
        for cat_id, values in other.per_category.items():
            row = self.per_category.get(cat_id)
            if row is None:
                self.per_category[cat_id] = values.copy()
            else:
                row += values
        return self

    def __add__(self, other: 'PanopticStats') -> 'PanopticStats':
        total = PanopticStats(self.per_category)
        total += other
        return total

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PanopticStats):
            return NotImplemented
        return (self.per_category.keys() == other.per_category.keys() and all(
            np.array_equal(values, other.per_category[cat_id])
            for cat_id, values in self.per_category.items()))

    def __repr__(self) -> str:
        rows = ', '.join(
            f'{cat_id}: {values.tolist()}'
            for cat_id, values in sorted(self.per_category.items()))
        return f'PanopticStats({{{rows}}})'

    def get(self, cat_id: int) -> np.ndarray:
        """Return ``[tp, fp, fn, iou_sum]`` (float64, (4,)) of a category."""
        return self.per_category.get(cat_id, np.zeros(4, dtype=np.float64))


def merge_stats(stats_list: Sequence[PanopticStats]) -> PanopticStats:
    """Sum the statistics of several images or processes.

    Args:
        stats_list (Sequence[PanopticStats]): Statistics to add up.

    Returns:
        PanopticStats: Their sum (a new object).
    """
    total = PanopticStats()
    for stats in stats_list:
        total += stats
    return total


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """Decode COCO panoptic colours into segment ids.

    Args:
        rgb (np.ndarray): uint8, shape (H, W, 3), channels in RGB order.

    Returns:
        np.ndarray: int64, shape (H, W), ``R + 256 * G + 256**2 * B``.
    """
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Encode segment ids as COCO panoptic colours.

    Args:
        ids (np.ndarray): int, shape (H, W), values in ``[0, 256**3)``.

    Returns:
        np.ndarray: uint8, shape (H, W, 3), RGB order.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= 1 << 24):
        raise ValueError('panoptic ids must lie in [0, 2**24) to be stored '
                         'as a COCO panoptic PNG')
    shifts = np.array([0, 8, 16], dtype=np.int64)
    return ((ids[..., None] >> shifts) & 255).astype(np.uint8)


def load_panoptic_png(path: str) -> np.ndarray:
    """Read a COCO panoptic PNG from the local disk.

    Args:
        path (str): Path of an RGB PNG.

    Returns:
        np.ndarray: int64, shape (H, W), segment ids.
    """
    with Image.open(path) as image:
        rgb = np.asarray(image.convert('RGB'))
    return rgb_to_id(rgb)


def _index_segments(id_map: np.ndarray, segment_ids: np.ndarray,
                    outside_index: int) -> np.ndarray:
    """Replace every id by its position in ``segment_ids``.

    Args:
        id_map (np.ndarray): int64, shape (H * W,).
        segment_ids (np.ndarray): int64, shape (K,), distinct.
        outside_index (int): Index given to ids not in ``segment_ids``.

    Returns:
        np.ndarray: int64, shape (H * W,), values in ``[0, K]`` or
        ``outside_index``.
    """
    if len(segment_ids) == 0:
        return np.full(id_map.shape, outside_index, dtype=np.int64)
    sorter = np.argsort(segment_ids, kind='stable')
    sorted_ids = segment_ids[sorter]
    position = np.searchsorted(sorted_ids, id_map)
    np.minimum(position, len(sorted_ids) - 1, out=position)
    found = sorted_ids[position] == id_map
    return np.where(found, sorter[position], outside_index)


def panoptic_stats_single(gt_ids: np.ndarray,
                          gt_segments: Sequence[dict],
                          pred_ids: np.ndarray,
                          pred_segments: Sequence[dict],
                          categories: Optional[CategoryDict] = None,
                          image_name: str = '') -> PanopticStats:
    """PQ statistics of one image.

    Args:
        gt_ids (np.ndarray): int, shape (H, W), ground truth segment ids;
            0 is VOID.
        gt_segments (Sequence[dict]): G dicts with ``id``, ``category_id``,
            ``iscrowd`` and optionally ``area``. When ``area`` is given it is
            used as it is (as panopticapi uses the JSON's area), otherwise the
            area is counted on ``gt_ids``. With repeated ids the last dict
            wins, as in panopticapi.
        pred_ids (np.ndarray): int, shape (H, W), predicted segment ids;
            pixels with an id missing from ``pred_segments`` must be 0 (VOID).
        pred_segments (Sequence[dict]): P dicts with ``id`` and
            ``category_id``; every listed segment must have pixels.
        categories (dict[int, dict], optional): Known categories; when given,
            a prediction of another category is an error (panopticapi's
            check). Defaults to None.
        image_name (str): Name used in error messages. Defaults to ''.

    Returns:
        PanopticStats: TP, FP, FN and IoU sum per category of this image.
    """
    if gt_ids.shape != pred_ids.shape:
        raise ValueError(f'{image_name}: ground truth shape {gt_ids.shape} '
                         f'differs from prediction shape {pred_ids.shape}')
    gt_info = {int(seg['id']): seg for seg in gt_segments}
    pred_info = {int(seg['id']): seg for seg in pred_segments}
    num_gt, num_pred = len(gt_info), len(pred_info)
    gt_seg_ids = np.fromiter(gt_info, dtype=np.int64, count=num_gt)
    pred_seg_ids = np.fromiter(pred_info, dtype=np.int64, count=num_pred)

    # Rows: G ground truth segments, then VOID, then ids outside the
    # segments info. Columns: P predicted segments, then the rest.
    void_row, other_row = num_gt, num_gt + 1
    gt_flat = np.asarray(gt_ids, dtype=np.int64).ravel()
    pred_flat = np.asarray(pred_ids, dtype=np.int64).ravel()
    gt_index = _index_segments(gt_flat, gt_seg_ids, other_row)
    if VOID_ID not in gt_info:
        gt_index[gt_flat == VOID_ID] = void_row
    else:
        void_row = int(np.flatnonzero(gt_seg_ids == VOID_ID)[0])
    pred_index = _index_segments(pred_flat, pred_seg_ids, num_pred)
    joint = np.bincount(
        gt_index * (num_pred + 1) + pred_index,
        minlength=(num_gt + 2) * (num_pred + 1))
    confusion = joint.reshape(num_gt + 2, num_pred + 1)

    _check_prediction(confusion, pred_flat, pred_index, pred_info,
                      pred_seg_ids, categories, image_name)
    pred_area = confusion[:, :num_pred].sum(0)
    gt_area = confusion[:num_gt].sum(1).astype(np.float64)
    for row, seg in enumerate(gt_info.values()):
        if 'area' in seg:
            gt_area[row] = seg['area']
    pred_on_void = confusion[void_row, :num_pred]
    inter = confusion[:num_gt, :num_pred]

    gt_cat = np.array([seg['category_id'] for seg in gt_info.values()],
                      dtype=np.int64)
    gt_crowd = np.array(
        [seg.get('iscrowd', 0) == 1 for seg in gt_info.values()], dtype=bool)
    pred_cat = np.array([seg['category_id'] for seg in pred_info.values()],
                        dtype=np.int64)

    # Matching: same category, ground truth not crowd, IoU > 0.5.
    candidate = ((inter > 0) & (gt_cat[:, None] == pred_cat[None, :])
                 & ~gt_crowd[:, None])
    union = (
        pred_area[None, :] + gt_area[:, None] - inter - pred_on_void[None, :])
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = np.where(candidate, inter / union, 0.0)
    matched = candidate & (iou > 0.5)

    stats = PanopticStats()
    match_rows, match_cols = np.nonzero(matched)
    for row, col in zip(match_rows.tolist(), match_cols.tolist()):
        stats.add(int(gt_cat[row]), tp=1, iou=float(iou[row, col]))

    gt_matched = matched.any(1)
    pred_matched = matched.any(0)
    for row in np.flatnonzero(~gt_matched & ~gt_crowd).tolist():
        stats.add(int(gt_cat[row]), fn=1)

    # Ignored area of each prediction: VOID plus the crowd region of its
    # category (the last crowd segment listed for it).
    crowd_row_of_cat = {}
    for row in np.flatnonzero(gt_crowd & ~gt_matched).tolist():
        crowd_row_of_cat[int(gt_cat[row])] = row
    ignored = pred_on_void.copy()
    for col, cat_id in enumerate(pred_cat.tolist()):
        crowd_row = crowd_row_of_cat.get(cat_id)
        if crowd_row is not None:
            ignored[col] += confusion[crowd_row, col]
    false_pos = ~pred_matched & ~(ignored / pred_area > 0.5)
    for col in np.flatnonzero(false_pos).tolist():
        stats.add(int(pred_cat[col]), fp=1)
    return stats


def _check_prediction(confusion: np.ndarray, pred_flat: np.ndarray,
                      pred_index: np.ndarray, pred_info: Dict[int, dict],
                      pred_seg_ids: np.ndarray,
                      categories: Optional[CategoryDict],
                      image_name: str) -> None:
    """Raise on the prediction errors that panopticapi refuses."""
    num_pred = len(pred_info)
    unlisted = (pred_index == num_pred) & (pred_flat != VOID_ID)
    if unlisted.any():
        ids = np.unique(pred_flat[unlisted]).tolist()
        raise KeyError(f'{image_name}: segment ids {ids} are in the '
                       'prediction map but not in its segments info')
    empty = confusion[:, :num_pred].sum(0) == 0
    if empty.any():
        raise KeyError(f'{image_name}: segment ids '
                       f'{pred_seg_ids[empty].tolist()} are in the '
                       'segments info but have no pixel in the map')
    if categories is not None:
        for seg_id, seg in pred_info.items():
            if seg['category_id'] not in categories:
                raise KeyError(f'{image_name}: segment {seg_id} has the '
                               f'unknown category_id {seg["category_id"]}')


def pq_average(
    stats: PanopticStats,
    categories: CategoryDict,
    isthing: Optional[bool] = None
) -> Tuple[Dict[str, float], Dict[int, Dict[str, float]]]:
    """Average PQ, SQ and RQ over categories.

    Args:
        stats (PanopticStats): Accumulated statistics.
        categories (dict[int, dict]): Category id to a dict with ``isthing``.
        isthing (bool, optional): Keep things only (True), stuff only
            (False) or all categories (None). Defaults to None.

    Returns:
        tuple[dict, dict]: ``{'pq', 'sq', 'rq', 'n'}`` as fractions in
        [0, 1] with ``n`` the number of categories that have any
        TP + FP + FN, and per category id ``{'pq', 'sq', 'rq'}`` (0 for a
        category without any). With ``n == 0`` the averages are 0, where
        panopticapi divides by zero.
    """
    per_class = {}
    totals = np.zeros(3, dtype=np.float64)
    num_valid = 0
    for cat_id, info in categories.items():
        if isthing is not None and (info['isthing'] == 1) != isthing:
            continue
        tp, fp, fn, iou = stats.get(cat_id)
        if tp + fp + fn == 0:
            per_class[cat_id] = dict(pq=0.0, sq=0.0, rq=0.0)
            continue
        num_valid += 1
        denominator = tp + 0.5 * fp + 0.5 * fn
        values = (iou / denominator, iou / tp if tp else 0.0, tp / denominator)
        per_class[cat_id] = dict(zip(('pq', 'sq', 'rq'), map(float, values)))
        totals += values
    if num_valid:
        totals /= num_valid
    summary = dict(zip(('pq', 'sq', 'rq'), map(float, totals)))
    summary['n'] = num_valid
    return summary, per_class


def pq_summary(stats: PanopticStats, categories: CategoryDict) -> dict:
    """'All', 'Things' and 'Stuff' averages plus per-class results.

    Args:
        stats (PanopticStats): Accumulated statistics.
        categories (dict[int, dict]): Category id to a dict with ``isthing``.

    Returns:
        dict: ``'All'``, ``'Things'``, ``'Stuff'``, each
        ``{'pq', 'sq', 'rq', 'n'}``, and ``'per_class'``, category id to
        ``{'pq', 'sq', 'rq'}`` (as panopticapi's ``pq_compute`` returns).
    """
    results = {}
    for name, isthing in (('All', None), ('Things', True), ('Stuff', False)):
        results[name], per_class = pq_average(stats, categories, isthing)
        if isthing is None:
            results['per_class'] = per_class
    return results


def pq_compute_files(gt_json_file: str,
                     pred_json_file: str,
                     gt_folder: Optional[str] = None,
                     pred_folder: Optional[str] = None) -> dict:
    """Evaluate COCO panoptic files, like panopticapi's ``pq_compute``.

    Args:
        gt_json_file (str): COCO panoptic ground truth JSON (``annotations``
            and ``categories``).
        pred_json_file (str): Prediction JSON with ``annotations``.
        gt_folder (str, optional): Folder of the ground truth PNGs. Defaults
            to the JSON path without ``.json``.
        pred_folder (str, optional): Folder of the predicted PNGs. Defaults
            to the JSON path without ``.json``.

    Returns:
        dict: As :func:`pq_summary`.
    """
    with open(gt_json_file) as f:
        gt_json = json.load(f)
    with open(pred_json_file) as f:
        pred_json = json.load(f)
    gt_folder = gt_folder or gt_json_file.replace('.json', '')
    pred_folder = pred_folder or pred_json_file.replace('.json', '')
    categories = {cat['id']: cat for cat in gt_json['categories']}
    pred_by_image = {ann['image_id']: ann for ann in pred_json['annotations']}

    pairs = []
    for gt_ann in gt_json['annotations']:
        pred_ann = pred_by_image.get(gt_ann['image_id'])
        if pred_ann is None:
            raise KeyError(f'no prediction for image {gt_ann["image_id"]}')
        pairs.append((gt_ann, pred_ann))
    stats = stats_from_annotations(pairs, gt_folder, pred_folder, categories)
    return pq_summary(stats, categories)


def stats_from_annotations(
        pairs: List[Tuple[dict, dict]],
        gt_folder: str,
        pred_folder: str,
        categories: Optional[CategoryDict] = None) -> PanopticStats:
    """Statistics over matched (ground truth, prediction) annotations.

    Args:
        pairs (list[tuple[dict, dict]]): COCO panoptic annotation dicts
            (``file_name``, ``segments_info``) of the same image.
        gt_folder (str): Folder of the ground truth PNGs.
        pred_folder (str): Folder of the predicted PNGs.
        categories (dict[int, dict], optional): Known categories.

    Returns:
        PanopticStats: Their summed statistics.
    """
    stats = PanopticStats()
    for gt_ann, pred_ann in pairs:
        stats += panoptic_stats_single(
            load_panoptic_png(osp.join(gt_folder, gt_ann['file_name'])),
            gt_ann['segments_info'],
            load_panoptic_png(osp.join(pred_folder, pred_ann['file_name'])),
            pred_ann['segments_info'], categories,
            str(gt_ann.get('image_id', gt_ann['file_name'])))
    return stats
