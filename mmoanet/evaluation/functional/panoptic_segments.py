"""Fusion-head panoptic ids to COCO panoptic segment ids and segments.

mmdet's fusion heads write ``label + instance_id * INSTANCE_OFFSET`` with
the label ``num_classes`` for VOID; a COCO panoptic PNG stores segment ids
with 0 for VOID and lists every other id in ``segments_info``. Both the
evaluation metric and the inference writers convert through
:func:`fusion_ids_to_coco`, so the files they write agree.

Shape shorthand:

    H, W: image size
    K: distinct ids of one map
"""
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmdet.evaluation.functional import INSTANCE_OFFSET

from .panoptic_quality import VOID_ID


def segment_areas(ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Distinct ids of a map and their pixel counts.

    Fusion head ids stay small (``label + 1000 * instance``), so a bincount
    is linear where ``np.unique`` sorts every pixel (~10x slower on COCO
    sized maps); huge ids fall back to ``np.unique``.

    Args:
        ids (np.ndarray): int64, shape (H, W), non-negative.

    Returns:
        tuple[np.ndarray, np.ndarray]: ids (K,) and counts (K,), ascending.
    """
    if ids.size and ids.max() < 1 << 22:
        counts = np.bincount(ids.ravel())
        seg_ids = np.flatnonzero(counts)
        return seg_ids, counts[seg_ids]
    return np.unique(ids, return_counts=True)


def fusion_ids_to_coco(
        pan: np.ndarray,
        label2cat: Dict[int, int],
        num_classes: int,
        ignore_index: Optional[int] = None) -> Tuple[np.ndarray, List[dict]]:
    """Turn fusion-head ids into COCO segment ids and their segments.

    Ids are kept as they are (they are unique per segment already), except
    that VOID pixels become 0 and the one id that would collide with VOID,
    label 0 with instance 0, gets a fresh id.

    Args:
        pan (np.ndarray): int64, shape (H, W), ids ``label + instance_id *
            INSTANCE_OFFSET``; the label ``num_classes`` is VOID.
        label2cat (dict[int, int]): Label (``0 .. num_classes - 1``) to COCO
            category id.
        num_classes (int): Number of thing plus stuff classes.
        ignore_index (int, optional): A second label to treat as VOID (mmdet
            puts ``ignore_index`` on some ``PixelData``). Defaults to None.

    Returns:
        tuple[np.ndarray, list[dict]]: COCO ids, int64 (H, W), 0 for VOID;
        and one dict per non-VOID id, ascending, with ``id``,
        ``category_id`` and ``area`` (pixel count).

    Raises:
        ValueError: A label is neither VOID nor in ``label2cat``.
    """
    labels = pan % INSTANCE_OFFSET
    void = labels == num_classes
    if ignore_index is not None:
        void |= labels == ignore_index
    ids = pan.copy()
    label_of_id = {}
    zero_segment = (ids == VOID_ID) & ~void
    if zero_segment.any():
        fresh_id = int(ids.max()) + 1
        ids[zero_segment] = fresh_id
        label_of_id[fresh_id] = 0
    ids[void] = VOID_ID
    seg_ids, areas = segment_areas(ids)
    segments = []
    for seg_id, area in zip(seg_ids.tolist(), areas.tolist()):
        if seg_id == VOID_ID:
            continue
        label = label_of_id.get(seg_id, seg_id % INSTANCE_OFFSET)
        if label not in label2cat:
            raise ValueError(f'panoptic id {seg_id} has label {label}, not '
                             f'in [0, {num_classes}]')
        segments.append(
            dict(id=seg_id, category_id=label2cat[label], area=area))
    return ids, segments
