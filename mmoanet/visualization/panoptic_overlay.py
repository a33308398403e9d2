"""Headless drawing of panoptic predictions with OpenCV.

:func:`draw_panoptic_overlay` blends class colours over an image, outlines
every segment and names it; :func:`draw_order_comparison` puts the
score-ordered and the SRM-ordered results (Sec. 3.2 of the paper) side by
side and outlines where they disagree. Only numpy and cv2 drawing calls are
used, so no display is needed.

Shape shorthand:

    H, W: image size
    C: thing plus stuff classes; label C is VOID
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmdet.evaluation.functional import INSTANCE_OFFSET

#: BGR colour of segment borders, of VOID labels and of disagreements.
BORDER_COLOR = (255, 255, 255)
TEXT_COLOR = (255, 255, 255)
DIFF_COLOR = (255, 0, 255)
TITLE_BACKGROUND = (40, 40, 40)

# Instances of one class get colours this far (per channel) from the class
# colour, so touching instances stay apart.
_INSTANCE_JITTER = 48
# A segment is named only if a disc of this radius (px) fits inside it.
_MIN_LABEL_RADIUS = 3.0


def _font_scale(height: int, width: int) -> float:
    """OpenCV font scale that stays readable from 100 px to 2000 px."""
    return float(np.clip(min(height, width) / 700, 0.3, 1.2))


def _segment_color(segment_id: int, label: int, palette: Sequence) -> tuple:
    """BGR colour of a segment: its class colour, shifted per instance."""
    red, green, blue = (int(value) for value in palette[label])
    color = np.array([blue, green, red], dtype=np.int64)
    instance_id = segment_id // INSTANCE_OFFSET
    if instance_id > 0:
        shift = np.random.default_rng(segment_id).integers(
            -_INSTANCE_JITTER, _INSTANCE_JITTER + 1, size=3)
        color = np.clip(color + shift, 0, 255)
    return tuple(int(value) for value in color)


def _segment_borders(pan_ids: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels whose right or lower neighbour has another id."""
    borders = np.zeros(pan_ids.shape, dtype=bool)
    horizontal = pan_ids[:, 1:] != pan_ids[:, :-1]
    vertical = pan_ids[1:, :] != pan_ids[:-1, :]
    borders[:, :-1] |= horizontal
    borders[:-1, :] |= vertical
    return borders


def _put_text(canvas: np.ndarray, text: str, center: Tuple[int, int],
              scale: float) -> None:
    """Write ``text`` centred on ``center``, white on a dark outline."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (text_w, text_h), _ = cv2.getTextSize(text, font, scale, 1)
    height, width = canvas.shape[:2]
    x = int(np.clip(center[0] - text_w // 2, 0, max(width - text_w, 0)))
    y = int(np.clip(center[1] + text_h // 2, text_h, height - 1))
    cv2.putText(canvas, text, (x, y), font, scale, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(canvas, text, (x, y), font, scale, TEXT_COLOR, 1, cv2.LINE_AA)


def draw_panoptic_overlay(image: np.ndarray,
                          pan_ids: np.ndarray,
                          palette: Sequence[Sequence[int]],
                          classes: Sequence[str],
                          alpha: float = 0.5) -> np.ndarray:
    """Colour, outline and name every segment of a panoptic map.

    Args:
        image (np.ndarray): uint8, shape (H, W, 3), BGR.
        pan_ids (np.ndarray): int, shape (H, W) or (1, H, W), ids ``label +
            instance_id * INSTANCE_OFFSET`` as the fusion heads write them;
            label C (``len(classes)``) is VOID and left uncoloured.
        palette (Sequence[Sequence[int]]): C RGB colours (the dataset's
            ``palette``); thing instances get shifted variants.
        classes (Sequence[str]): C class names, drawn on the segments.
        alpha (float): Opacity of the colours. Defaults to 0.5.

    Returns:
        np.ndarray: uint8, shape (H, W, 3), BGR; ``image`` is not changed.
    """
    pan_ids = np.asarray(pan_ids).astype(np.int64)
    if pan_ids.ndim == 3:
        pan_ids = pan_ids[0]
    if pan_ids.shape != image.shape[:2]:
        raise ValueError(f'panoptic map {pan_ids.shape} and image '
                         f'{image.shape[:2]} differ in size')
    if len(palette) < len(classes):
        raise ValueError(f'{len(palette)} palette colours for '
                         f'{len(classes)} classes')
    num_classes = len(classes)
    color_layer = image.copy()
    segments = []
    for segment_id in np.unique(pan_ids).tolist():
        label = segment_id % INSTANCE_OFFSET
        if label >= num_classes:
            continue
        mask = pan_ids == segment_id
        color_layer[mask] = _segment_color(segment_id, label, palette)
        segments.append((mask, classes[label]))
    canvas = cv2.addWeighted(image, 1 - alpha, color_layer, alpha, 0)
    canvas[_segment_borders(pan_ids)] = BORDER_COLOR

    scale = _font_scale(*pan_ids.shape)
    for mask, name in segments:
        # The point deepest inside the segment keeps the name on it, even
        # for rings and L shapes whose centroid lies outside.
        depth = cv2.distanceTransform(
            np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
        y, x = np.unravel_index(int(depth.argmax()), depth.shape)
        if depth[y, x] >= _MIN_LABEL_RADIUS:
            _put_text(canvas, name, (int(x), int(y)), scale)
    return canvas


def _title_bar(width: int, height: int, title: str) -> np.ndarray:
    """uint8 (height, width, 3) dark strip with a centred title."""
    bar = np.empty((height, width, 3), dtype=np.uint8)
    bar[:] = TITLE_BACKGROUND
    scale = _font_scale(height * 10, width)
    text_width = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale,
                                 1)[0][0]
    if text_width > width - 4:
        # Narrow images: shrink the title rather than cut it off.
        scale *= max(width - 4, 1) / text_width
    _put_text(bar, title, (width // 2, height // 2), scale)
    return bar


def _align_instance_ids(pan_ids: np.ndarray,
                        reference: np.ndarray) -> np.ndarray:
    """Rename the thing segments of ``pan_ids`` after those of ``reference``.

    The fusion head numbers instances in the order it lays them, so one
    detection has different ids in the score and the SRM order. Each thing
    segment takes the id of the same-class ``reference`` segment it shares
    most pixels with, one to one, larger overlaps first; what stays
    unmatched keeps its id.

    Args:
        pan_ids (np.ndarray): int64, shape (H, W), fusion ids.
        reference (np.ndarray): int64, shape (H, W), fusion ids.

    Returns:
        np.ndarray: int64, shape (H, W).
    """
    base = int(max(pan_ids.max(), reference.max())) + 1
    pairs, counts = np.unique(
        pan_ids.ravel() * base + reference.ravel(), return_counts=True)
    renamed = {}
    taken = set()
    for pair in pairs[np.argsort(-counts, kind='stable')].tolist():
        segment_id, reference_id = divmod(pair, base)
        same_label = (
            segment_id % INSTANCE_OFFSET == reference_id % INSTANCE_OFFSET)
        if (segment_id < INSTANCE_OFFSET or not same_label
                or segment_id in renamed or reference_id in taken):
            continue
        renamed[segment_id] = reference_id
        taken.add(reference_id)
    aligned = pan_ids.copy()
    for segment_id, reference_id in renamed.items():
        aligned[pan_ids == segment_id] = reference_id
    return aligned


def draw_order_comparison(
        image: np.ndarray,
        score_pan_ids: np.ndarray,
        srm_pan_ids: np.ndarray,
        palette: Sequence[Sequence[int]],
        classes: Sequence[str],
        alpha: float = 0.5,
        titles: Optional[Tuple[str, str]] = None) -> np.ndarray:
    """Score order | SRM order, titled, with their disagreements outlined.

    Both panels are :func:`draw_panoptic_overlay` results. The SRM order's
    instances are renamed after their score-order counterparts (the fusion
    head numbers instances by laying order), so matching instances share
    colours; pixels that then belong to another segment in the two orders
    (an instance laid over another in one order and under it in the other,
    Fig. 1 of the paper) are outlined in magenta on both panels.

    Args:
        image (np.ndarray): uint8, shape (H, W, 3), BGR.
        score_pan_ids (np.ndarray): int (H, W) or (1, H, W), fusion ids of
            the detection-score order (``pred_panoptic_seg_score``).
        srm_pan_ids (np.ndarray): Same for the SRM order
            (``pred_panoptic_seg_srm``).
        palette (Sequence[Sequence[int]]): C RGB colours.
        classes (Sequence[str]): C class names.
        alpha (float): Opacity of the colours. Defaults to 0.5.
        titles (tuple[str, str], optional): Panel titles. Defaults to
            ``('score order', 'SRM order')``, the latter with the share of
            pixels that differ.

    Returns:
        np.ndarray: uint8, shape (H + T, 2 * W, 3), BGR, where T is the
        title bar height (``max(14, H // 10)``).
    """
    score_pan_ids = np.asarray(score_pan_ids).astype(np.int64)
    srm_pan_ids = np.asarray(srm_pan_ids).astype(np.int64)
    score_pan_ids = score_pan_ids.reshape(score_pan_ids.shape[-2:])
    srm_pan_ids = srm_pan_ids.reshape(srm_pan_ids.shape[-2:])
    srm_pan_ids = _align_instance_ids(srm_pan_ids, score_pan_ids)
    differ = (score_pan_ids != srm_pan_ids).astype(np.uint8)
    if titles is None:
        titles = ('score order',
                  f'SRM order ({100 * differ.mean():.1f}% px differ)')
    contours, _ = cv2.findContours(differ, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    height, width = image.shape[:2]
    bar_height = max(14, height // 10)
    panels = []
    for pan_ids, title in zip((score_pan_ids, srm_pan_ids), titles):
        panel = draw_panoptic_overlay(image, pan_ids, palette, classes, alpha)
        cv2.drawContours(panel, contours, -1, DIFF_COLOR, 1)
        panels.append(np.vstack([_title_bar(width, bar_height, title), panel]))
    return np.hstack(panels)
