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

Instead of ``np.unique`` over 64-bit pixel keys and a Python loop over the
(ground truth, prediction) pairs of an image, the two maps are collapsed into
raster runs of equal id pairs, the run ids are turned into segment indices,
and one weighted ``np.bincount`` gives the whole intersection matrix;
matching, false negatives and false positives are array operations on that
(G + 2, P + 2) matrix.

Shape shorthand:

    H, W: image size
    G: ground truth segments of one image (from its segments info)
    P: predicted segments of one image
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: Id of unlabelled pixels in a COCO panoptic PNG.
VOID_ID = 0

#: Column order of the per-category statistics in :class:`PanopticStats`.
STAT_FIELDS = ('tp', 'fp', 'fn', 'iou')

CategoryDict = Dict[int, dict]

# Above this many segments _index_segments switches to a binary search.
_MAX_EQUALITY_PASSES = 48


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


def _pair_runs(
        gt_flat: np.ndarray,
        pred_flat: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collapse raster-order runs of equal (ground truth, prediction) ids.

    Panoptic maps are piecewise constant, so a 160 px map of 25,600 pixels
    has only a few thousand runs; indexing and counting the runs instead of
    the pixels leaves four full-size passes per image.

    Args:
        gt_flat (np.ndarray): int or uint, shape (N,), N = H * W > 0.
        pred_flat (np.ndarray): int or uint, shape (N,).

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ground truth ids and
        prediction ids of the R runs, shape (R,) each (input dtypes), and
        their lengths, int64 (R,).
    """
    num_pixels = gt_flat.size
    change = np.empty(num_pixels, dtype=bool)
    change[:1] = True
    np.not_equal(gt_flat[1:], gt_flat[:-1], out=change[1:])
    change[1:] |= pred_flat[1:] != pred_flat[:-1]
    starts = np.flatnonzero(change)
    lengths = np.diff(starts, append=num_pixels)
    return gt_flat[starts], pred_flat[starts], lengths


def _index_segments(id_map: np.ndarray, segment_ids: Sequence[int],
                    outside_index: int) -> np.ndarray:
    """Replace every id by its position in ``segment_ids``.

    Panoptic maps hold a few dozen segments in large connected regions, so
    one equality pass per segment beats a binary search per pixel (about 2x
    on 160 px COCO-like maps); past ``_MAX_EQUALITY_PASSES`` segments the
    binary search is used.

    Args:
        id_map (np.ndarray): int or uint, shape (H * W,).
        segment_ids (Sequence[int]): K distinct ids.
        outside_index (int): Index given to ids not in ``segment_ids``.

    Returns:
        np.ndarray: intp, shape (H * W,), values in ``[0, K)`` or
        ``outside_index``.
    """
    if len(segment_ids) <= _MAX_EQUALITY_PASSES:
        index = np.full(id_map.shape, outside_index, dtype=np.intp)
        for position, seg_id in enumerate(segment_ids):
            index[id_map == seg_id] = position
        return index
    segment_ids = np.asarray(segment_ids, dtype=np.int64)
    id_map = id_map.astype(np.int64, copy=False)
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

    # Rows: G ground truth segments, VOID (unless listed as a segment), ids
    # outside the segments info. Columns: P predicted segments, VOID (unless
    # listed), unlisted ids (an error).
    gt_lookup = list(gt_info)
    if VOID_ID not in gt_info:
        gt_lookup.append(VOID_ID)
    void_row = gt_lookup.index(VOID_ID)
    pred_lookup = list(pred_info)
    if VOID_ID not in pred_info:
        pred_lookup.append(VOID_ID)
    num_rows, num_cols = len(gt_lookup) + 1, len(pred_lookup) + 1
    gt_run_ids, pred_run_ids, run_lengths = _pair_runs(
        np.asarray(gt_ids).ravel(),
        np.asarray(pred_ids).ravel())
    joint = _index_segments(gt_run_ids, gt_lookup, num_rows - 1)
    joint *= num_cols
    joint += _index_segments(pred_run_ids, pred_lookup, num_cols - 1)
    # Float64 sums of integer run lengths are exact below 2**53 pixels.
    confusion = np.bincount(
        joint, weights=run_lengths,
        minlength=num_rows * num_cols).astype(np.int64).reshape(
            num_rows, num_cols)

    _check_prediction(confusion, pred_info, categories, image_name)
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
    # union >= inter > 0 wherever a pair is a candidate.
    iou = np.divide(inter, union, out=np.zeros(inter.shape), where=candidate)
    matched = iou > 0.5

    # Plain Python accumulation per image: a few dozen numbers, where one
    # NumPy call per segment cost more than the pixel work on small maps.
    per_category: Dict[int, List[float]] = {}
    gt_cat_list = gt_cat.tolist()
    pred_cat_list = pred_cat.tolist()
    match_rows, match_cols = np.nonzero(matched)
    for row, value in zip(match_rows.tolist(), iou[match_rows,
                                                   match_cols].tolist()):
        counts = _counts(per_category, gt_cat_list[row])
        counts[0] += 1
        counts[3] += value

    gt_matched = matched.any(1)
    pred_matched = matched.any(0)
    for row in np.flatnonzero(~gt_matched & ~gt_crowd).tolist():
        _counts(per_category, gt_cat_list[row])[2] += 1

    # Ignored area of each prediction: VOID plus the crowd region of its
    # category (the last crowd segment listed for it).
    crowd_row_of_cat = {}
    for row in np.flatnonzero(gt_crowd & ~gt_matched).tolist():
        crowd_row_of_cat[gt_cat_list[row]] = row
    ignored = pred_on_void.copy()
    if crowd_row_of_cat:
        for col, cat_id in enumerate(pred_cat_list):
            crowd_row = crowd_row_of_cat.get(cat_id)
            if crowd_row is not None:
                ignored[col] += confusion[crowd_row, col]
    false_pos = ~pred_matched & ~(ignored / pred_area > 0.5)
    for col in np.flatnonzero(false_pos).tolist():
        _counts(per_category, pred_cat_list[col])[1] += 1
    return PanopticStats(per_category)


def _counts(per_category: Dict[int, List[float]], cat_id: int) -> List[float]:
    """``[tp, fp, fn, iou_sum]`` of a category, created at zero."""
    counts = per_category.get(cat_id)
    if counts is None:
        counts = per_category[cat_id] = [0, 0, 0, 0.0]
    return counts


def _check_prediction(confusion: np.ndarray, pred_info: Dict[int, dict],
                      categories: Optional[CategoryDict],
                      image_name: str) -> None:
    """Raise on the prediction errors that panopticapi refuses.

    Args:
        confusion (np.ndarray): int64, shape (G + 2, P + 2) or (G + 1,
            P + 1) when id 0 is a listed segment; last column: pixels of
            unlisted ids.
        pred_info (dict[int, dict]): Predicted segments by id.
        categories (dict[int, dict], optional): Known categories.
        image_name (str): Name used in error messages.
    """
    if confusion[:, -1].any():
        raise KeyError(f'{image_name}: the prediction map has segment ids '
                       'that are not in its segments info')
    area = confusion[:, :len(pred_info)].sum(0)
    empty = [
        seg_id for seg_id, seg_area in zip(pred_info, area.tolist())
        if seg_area == 0
    ]
    if empty:
        raise KeyError(f'{image_name}: segment ids {empty} are in the '
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
