"""Canvas helpers of :class:`SRMFusionHead`, in NumPy / OpenCV.

Each is kept because it is measurably faster on CPU than the plain torch
pass it replaces (see its docstring).
"""
from typing import List, Tuple

import cv2
import numpy as np


def mask_boxes(masks: np.ndarray) -> List[Tuple[int, int, int, int]]:
    """Tight bounding box of each mask, as slice bounds.

    The package's one mask-to-box routine (the synthetic writer's COCO
    boxes too). Kept rather than mmdet's ``mask2bbox`` or
    ``BitmapMasks.get_bboxes``: one full pass instead of two, 7.0 ms
    against 46 ms (``mask2bbox``) for 50 masks of 480x640
    (``python projects/oanet_studies/benchmark_codec.py``), same boxes.

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


def equal_value_components(value_map: np.ndarray) -> np.ndarray:
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
