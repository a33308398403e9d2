"""One readable picture of a panoptic result, for mmdet's tools.

mmdet's ``DetLocalVisualizer`` paints ``pred_instances``, ``pred_sem_seg``
and ``pred_panoptic_seg`` on top of each other when a data sample holds all
three, as OANet's do; :class:`PanopticLocalVisualizer` draws the panoptic
result alone, and optionally the two fusion orders side by side and the
ground truth beside them.

Shape shorthand:

    H, W: original image size (``ori_shape``)
    C: thing plus stuff classes; label C is VOID
    N: predicted instances
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmdet.evaluation import INSTANCE_OFFSET
from mmdet.registry import VISUALIZERS
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmdet.visualization.palette import _get_adaptive_scales, get_palette
from mmengine.dist import master_only
from mmengine.fileio import get

from ..evaluation.functional.panoptic_io import decode_panoptic_png

#: Data sample keys of the two fusion orders (``compare_orders=True``),
#: and the fields of ``pred_panoptic_seg`` that hold them instead when the
#: detector keeps only that key (mmdet's PanopticFPN with an SRMFusionHead).
ORDER_KEYS = (('score order', 'pred_panoptic_seg_score'),
              ('SRM order', 'pred_panoptic_seg_srm'))
ORDER_FIELDS = ('sem_seg_score', 'sem_seg_srm')
PRIMARY_KEY = 'pred_panoptic_seg'

# Instances of one class get colours this far (per channel) from the class
# colour, so touching instances of a class stay apart.
_INSTANCE_JITTER = 48
# A segment is named only if a disc of this radius (px) fits inside it.
_MIN_LABEL_RADIUS = 3.0
_TITLE_BACKGROUND = (40, 40, 40)
_TITLE_TEXT = (255, 255, 255)

ColorType = Union[str, Tuple[int, int, int]]


def align_instance_ids(pan_ids: np.ndarray,
                       reference: np.ndarray) -> np.ndarray:
    """Rename the thing segments of ``pan_ids`` after those of ``reference``.

    The fusion head numbers instances in the order it lays them, so one
    detection has different ids in the score and in the SRM order. Each
    thing segment takes the id of the same-class ``reference`` segment it
    shares most pixels with, one to one, larger overlaps first; what stays
    unmatched keeps its id. Matching instances then share a colour, and
    only pixels that really change owner count as a difference.

    Args:
        pan_ids (np.ndarray): int64, shape (H, W), fusion ids.
        reference (np.ndarray): int64, shape (H, W), fusion ids.

    Returns:
        np.ndarray: int64, shape (H, W).
    """
    base = int(max(pan_ids.max(), reference.max())) + 1
    pairs, counts = np.unique(
        pan_ids.ravel() * base + reference.ravel(), return_counts=True)
    renamed: Dict[int, int] = {}
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


def segment_borders(pan_ids: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels whose right or lower neighbour has another id."""
    borders = np.zeros(pan_ids.shape, dtype=bool)
    borders[:, :-1] |= pan_ids[:, 1:] != pan_ids[:, :-1]
    borders[:-1, :] |= pan_ids[1:, :] != pan_ids[:-1, :]
    return borders


def _numpy(value) -> np.ndarray:
    """A tensor (any device) or array-like as a numpy array."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _as_ids(sem_seg) -> np.ndarray:
    """``sem_seg`` of a PixelData (tensor or array, (1, H, W) or (H, W))
    as int64 (H, W)."""
    sem_seg = _numpy(sem_seg)
    return sem_seg.reshape(sem_seg.shape[-2:]).astype(np.int64)


@VISUALIZERS.register_module()
class PanopticLocalVisualizer(DetLocalVisualizer):
    """Panoptic results as one readable panel per result.

    Each panel colours every segment of a panoptic map with its class colour
    from ``dataset_meta['palette']`` (thing instances get shifted variants,
    so touching instances of one class stay apart), outlines every segment
    in white and writes the class name, and for things the detection score
    in percent, on the segments large enough to hold it. Only the panoptic
    result is drawn: ``pred_instances`` and ``pred_sem_seg``, which OANet
    keeps beside it, would cover it (mmdet's ``DetLocalVisualizer`` paints
    all three at once).

    Panels, left to right:

    - the ground truth, when ``draw_gt`` and the data sample carries it:
      the panoptic PNG named by the metainfo ``seg_map_path`` with its
      ``segments_info`` (exact), or else ``gt_sem_seg`` with the
      ``gt_instances`` masks (an overlapped pixel goes to the smallest
      instance of its class covering it: amodal masks overlap);
    - with ``draw_orders`` and both ``pred_panoptic_seg_score`` and
      ``pred_panoptic_seg_srm`` on the data sample, or both
      ``pred_panoptic_seg.sem_seg_score`` and ``.sem_seg_srm`` (mmdet's
      PanopticFPN with an SRMFusionHead)
      (``test_cfg.panoptic.compare_orders=True``): the detection-score
      order and the SRM order (Sec. 3.2 of the paper), instances matched
      across the two so a detection keeps its colour, and the pixels whose
      segment differs outlined in ``diff_color`` on both, with the share of
      such pixels in the title; otherwise ``pred_panoptic_seg``.

    With more than one panel, each gets a title bar. A data sample with
    ground truth only (mmdet's ``browse_dataset.py``) gets the ground truth
    panel; one without panoptic prediction or ground truth is drawn by
    ``DetLocalVisualizer``.

    Args:
        name (str): Instance name. Defaults to 'visualizer'.
        image (np.ndarray, optional): uint8 (H, W, 3) RGB image to draw on.
        vis_backends (list[dict], optional): mmengine visualization
            backends. Defaults to None.
        save_dir (str, optional): Where the backends save. Defaults to None.
        text_color (str | tuple): RGB colour of the names. Defaults to
            white.
        mask_color (str | tuple, optional): Colour of every class instead
            of the palette (anything mmdet's ``get_palette`` takes).
        line_width (int): Width in px of the difference outlines. Defaults
            to 1.
        alpha (float): Opacity of the segment colours. Defaults to 0.5.
        draw_orders (bool): Draw both fusion orders when the data sample
            has them. Defaults to True.
        draw_labels (bool): Write class names. Defaults to True.
        draw_scores (bool): Add the detection score to thing names (the
            score of the same-class ``pred_instances`` mask holding most of
            the segment). Defaults to True.
        diff_color (str | tuple): RGB colour of the outline of pixels that
            differ between the orders. Defaults to magenta.
        bbox_color: Unused for panoptic results; kept for
            ``DetLocalVisualizer``'s fallback. Defaults to None.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[dict]] = None,
                 save_dir: Optional[str] = None,
                 text_color: ColorType = (255, 255, 255),
                 mask_color: Optional[ColorType] = None,
                 line_width: int = 1,
                 alpha: float = 0.5,
                 draw_orders: bool = True,
                 draw_labels: bool = True,
                 draw_scores: bool = True,
                 diff_color: ColorType = (255, 0, 255),
                 bbox_color: Optional[ColorType] = None) -> None:
        super().__init__(
            name=name,
            image=image,
            vis_backends=vis_backends,
            save_dir=save_dir,
            bbox_color=bbox_color,
            text_color=text_color,
            mask_color=mask_color,
            line_width=line_width,
            alpha=alpha)
        self.draw_orders = draw_orders
        self.draw_labels = draw_labels
        self.draw_scores = draw_scores
        self.diff_color = tuple(mmcv.color_val(diff_color)[::-1]) \
            if isinstance(diff_color, str) else tuple(diff_color)

    # ------------------------------------------------------------------
    # colours and names
    # ------------------------------------------------------------------
    def _class_colors(self, num_classes: int) -> List[Tuple[int, int, int]]:
        """RGB colour per class: ``mask_color``, else the palette."""
        palette = self.mask_color
        if palette is None:
            palette = self.dataset_meta.get('palette', 'random')
        if isinstance(palette, (list, tuple)) and palette and isinstance(
                palette[0], (list, tuple)):
            palette = [tuple(int(v) for v in color) for color in palette]
            if len(palette) < num_classes:
                raise ValueError(f'the palette has {len(palette)} colours '
                                 f'for {num_classes} classes; set '
                                 "dataset_meta['palette'] or mask_color")
        return [
            tuple(int(v) for v in color)
            for color in get_palette(palette, num_classes)
        ]

    @staticmethod
    def _segment_color(segment_id: int, class_color: tuple) -> np.ndarray:
        """uint8 (3,) RGB colour of a segment: its class colour, shifted by
        a fixed amount per instance id (deterministic across calls)."""
        color = np.array(class_color, dtype=np.int64)
        if segment_id >= INSTANCE_OFFSET:
            shift = np.random.default_rng(segment_id).integers(
                -_INSTANCE_JITTER, _INSTANCE_JITTER + 1, size=3)
            color = np.clip(color + shift, 0, 255)
        return color.astype(np.uint8)

    @staticmethod
    def _instance_scores(pan_ids: np.ndarray, instances) -> Dict[int, float]:
        """Detection score of each thing segment.

        The fusion head lays a segment out of one predicted mask, so the
        same-class mask that holds most of the segment's pixels is its
        source.

        Args:
            pan_ids (np.ndarray): int64 (H, W) fusion ids.
            instances (InstanceData): ``masks`` bool (N, H, W), ``labels``
                (N,), ``scores`` (N,).

        Returns:
            dict[int, float]: Segment id to score in [0, 1].
        """
        if instances is None or len(instances) == 0 or not all(
                key in instances for key in ('masks', 'labels', 'scores')):
            return {}
        masks = instances.masks
        masks = masks.to_ndarray() if hasattr(masks, 'to_ndarray') else \
            _numpy(masks)
        masks = masks.astype(bool)
        if masks.shape[-2:] != pan_ids.shape:
            return {}
        labels = _numpy(instances.labels).astype(np.int64)
        scores = _numpy(instances.scores).astype(np.float64)
        result = {}
        for segment_id in np.unique(pan_ids[pan_ids >= INSTANCE_OFFSET]):
            segment = pan_ids == segment_id
            candidates = np.flatnonzero(labels == segment_id % INSTANCE_OFFSET)
            if candidates.size == 0:
                continue
            hits = masks[candidates][:, segment].sum(axis=1)
            if hits.max() > 0:
                result[int(segment_id)] = float(
                    scores[candidates[hits.argmax()]])
        return result

    # ------------------------------------------------------------------
    # panels
    # ------------------------------------------------------------------
    def _draw_panoptic_panel(
            self,
            image: np.ndarray,
            pan_ids: np.ndarray,
            classes: Sequence[str],
            scores: Optional[Dict[int, float]] = None,
            outline: Optional[np.ndarray] = None) -> np.ndarray:
        """Colour, outline and name every segment of one panoptic map.

        Args:
            image (np.ndarray): uint8 (H, W, 3) RGB.
            pan_ids (np.ndarray): int64 (H, W), ids ``label + instance_id
                * INSTANCE_OFFSET``; label C (``len(classes)``) is VOID and
                keeps the image.
            classes (Sequence[str]): C class names.
            scores (dict[int, float], optional): Score per thing segment id.
            outline (np.ndarray, optional): uint8 (H, W), pixels whose
                outer contour is drawn in ``diff_color``.

        Returns:
            np.ndarray: uint8 (H, W, 3) RGB.
        """
        if pan_ids.shape != image.shape[:2]:
            raise ValueError(f'panoptic map {pan_ids.shape} and image '
                             f'{image.shape[:2]} differ in size')
        num_classes = len(classes)
        class_colors = self._class_colors(num_classes)
        color_layer = image.copy()
        named = []
        for segment_id in np.unique(pan_ids).tolist():
            label = segment_id % INSTANCE_OFFSET
            if label >= num_classes:  # VOID (or an ignore index)
                continue
            mask = pan_ids == segment_id
            color_layer[mask] = self._segment_color(segment_id,
                                                    class_colors[label])
            named.append((segment_id, label, mask))
        canvas = cv2.addWeighted(image, 1 - self.alpha, color_layer,
                                 self.alpha, 0)
        canvas[segment_borders(pan_ids)] = (255, 255, 255)
        if outline is not None and outline.any():
            contours, _ = cv2.findContours(outline, cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(canvas, contours, -1, self.diff_color,
                             max(int(self.line_width), 1))
        self.set_image(canvas)
        if self.draw_labels:
            self._draw_names(named, classes, scores or {})
        return self.get_image()

    def _draw_names(self, named: list, classes: Sequence[str],
                    scores: Dict[int, float]) -> None:
        """Write each segment's name (and score) on the current image."""
        for segment_id, label, mask in named:
            # The point deepest inside the segment keeps the name on it,
            # even for rings and L shapes whose centroid lies outside.
            depth = cv2.distanceTransform(
                np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
            y, x = np.unravel_index(int(depth.argmax()), depth.shape)
            if depth[y, x] < _MIN_LABEL_RADIUS:
                continue
            text = classes[label]
            if self.draw_scores and segment_id in scores:
                text += f' {100 * scores[segment_id]:.0f}'
            scale = float(_get_adaptive_scales(np.array([mask.sum()]))[0])
            self.draw_texts(
                text,
                np.array([x, y]),
                colors=self.text_color,
                font_sizes=max(int(13 * scale), 6),
                horizontal_alignments='center',
                vertical_alignments='center',
                bboxes=[{
                    'facecolor': 'black',
                    'alpha': 0.6,
                    'pad': 0.5,
                    'edgecolor': 'none'
                }])

    def _title_bar(self, width: int, height: int, title: str,
                   font_size: int) -> np.ndarray:
        """uint8 (height, width, 3) RGB dark strip with a centred title."""
        bar = np.empty((height, width, 3), dtype=np.uint8)
        bar[:] = _TITLE_BACKGROUND
        self.set_image(bar)
        self.draw_texts(
            title,
            np.array([width / 2, height / 2]),
            colors=_TITLE_TEXT,
            font_sizes=font_size,
            horizontal_alignments='center',
            vertical_alignments='center')
        return self.get_image()

    def _gt_panoptic(self, data_sample: DetDataSample, shape: Tuple[int, int],
                     num_classes: int) -> Optional[np.ndarray]:
        """Ground truth as int64 (H, W) fusion ids, or None if absent.

        From the PNG (``seg_map_path`` + ``segments_info`` metainfo, as
        mmdet's panoptic datasets give them) when the data sample carries
        them, else from ``gt_sem_seg`` (labels, 255 VOID) and the
        ``gt_instances`` masks.
        """
        meta = data_sample.metainfo
        if meta.get('seg_map_path') and 'segments_info' in meta:
            segment_ids = decode_panoptic_png(get(meta['seg_map_path']))
            pan_ids = np.full(segment_ids.shape, num_classes, dtype=np.int64)
            for index, segment in enumerate(meta['segments_info']):
                label = int(segment['category'])
                instance = index + 1 if segment.get('is_thing') else 0
                pan_ids[segment_ids == segment['id']] = (
                    label + instance * INSTANCE_OFFSET)
            return pan_ids if pan_ids.shape == shape else None
        if 'gt_sem_seg' not in data_sample:
            return None
        labels = _as_ids(data_sample.gt_sem_seg.sem_seg)
        if labels.shape != shape:
            return None
        pan_ids = np.where(labels >= num_classes, num_classes, labels)
        instances = data_sample.get('gt_instances')
        if instances is None or len(instances) == 0 or \
                'masks' not in instances:
            return pan_ids
        masks = instances.masks
        masks = masks.to_ndarray() if hasattr(masks, 'to_ndarray') else \
            _numpy(masks)
        masks = masks.astype(bool)
        if masks.shape[-2:] != shape:
            return pan_ids
        instance_labels = _numpy(instances.labels).astype(np.int64)
        owner = np.zeros(shape, dtype=np.int64)
        # Larger first, so where amodal masks overlap the smallest wins.
        for index in np.argsort(-masks.reshape(len(masks), -1).sum(1)):
            owner[masks[index]
                  & (labels == instance_labels[index])] = index + 1
        things = owner > 0
        pan_ids[things] = labels[things] + owner[things] * INSTANCE_OFFSET
        return pan_ids

    def _prediction_panels(
            self, image: np.ndarray, data_sample: DetDataSample,
            classes: Sequence[str]) -> List[Tuple[str, np.ndarray]]:
        """(title, panel) of the primary result, or of both orders."""
        instances = data_sample.get('pred_instances')
        primary = data_sample.get(PRIMARY_KEY)
        orders = []
        for (_, key), field in zip(ORDER_KEYS, ORDER_FIELDS):
            if key in data_sample:
                orders.append(data_sample.get(key).sem_seg)
            elif primary is not None and field in primary:
                orders.append(primary.get(field))
        if self.draw_orders and len(orders) == len(ORDER_KEYS):
            score_ids = _as_ids(orders[0])
            srm_ids = align_instance_ids(_as_ids(orders[1]), score_ids)
            differ = (score_ids != srm_ids).astype(np.uint8)
            titles = ('score order',
                      f'SRM order ({100 * differ.mean():.1f}% px differ)')
            return [(title,
                     self._draw_panoptic_panel(
                         image, pan_ids, classes,
                         self._instance_scores(pan_ids, instances), differ))
                    for title, pan_ids in zip(titles, (score_ids, srm_ids))]
        pan_ids = _as_ids(data_sample.pred_panoptic_seg.sem_seg)
        return [('prediction',
                 self._draw_panoptic_panel(
                     image, pan_ids, classes,
                     self._instance_scores(pan_ids, instances)))]

    # ------------------------------------------------------------------
    # entry point
    # ------------------------------------------------------------------
    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[DetDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       pred_score_thr: float = 0.3,
                       step: int = 0) -> None:
        """Draw the panels of one data sample; show, save or log them.

        Same signature and outputs as ``DetLocalVisualizer.add_datasample``
        (``show`` opens a window, ``out_file`` writes the picture, else it
        goes to the visualization backends).

        Args:
            name (str): Image identifier.
            image (np.ndarray): uint8 (H, W, 3) RGB.
            data_sample (:obj:`DetDataSample`, optional): With
                ``pred_panoptic_seg`` (``sem_seg`` (1, H, W)) and optionally
                the two order keys, ``pred_instances`` (for the scores) and
                the ground truth.
            draw_gt (bool): Draw the ground truth panel when there is one.
                Defaults to True.
            draw_pred (bool): Draw the prediction panels. Defaults to True.
            show (bool): Show in a window. Defaults to False.
            wait_time (float): Seconds to show. Defaults to 0.
            out_file (str, optional): File to write. Defaults to None.
            pred_score_thr (float): Used only by the ``DetLocalVisualizer``
                fallback; the panoptic result is already thresholded by
                ``test_cfg.rcnn.score_thr``. Defaults to 0.3.
            step (int): Global step for the backends. Defaults to 0.
        """
        # A panoptic prediction, or (browse_dataset) panoptic ground truth:
        # the stuff and thing labels of gt_sem_seg with gt_instances.
        has_panoptic = data_sample is not None and (
            PRIMARY_KEY in data_sample or
            (draw_gt and 'gt_sem_seg' in data_sample
             and 'gt_instances' in data_sample))
        if not has_panoptic:
            return super().add_datasample(name, image, data_sample, draw_gt,
                                          draw_pred, show, wait_time, out_file,
                                          pred_score_thr, step)
        classes = self.dataset_meta.get('classes')
        if not classes:
            raise ValueError('PanopticLocalVisualizer needs '
                             "dataset_meta['classes'] to name segments")
        image = image.clip(0, 255).astype(np.uint8)
        data_sample = data_sample.cpu()
        panels = []
        if draw_gt:
            gt_ids = self._gt_panoptic(data_sample, image.shape[:2],
                                       len(classes))
            if gt_ids is not None:
                panels.append(
                    ('ground truth',
                     self._draw_panoptic_panel(image, gt_ids, classes)))
        if draw_pred and PRIMARY_KEY in data_sample:
            panels += self._prediction_panels(image, data_sample, classes)
        if not panels:
            drawn = image
        elif len(panels) == 1:
            drawn = panels[0][1]
        else:
            height, width = image.shape[:2]
            bar_height = int(np.clip(height // 10, 16, 40))
            # One font size for all titles; characters are about 0.8 font
            # sizes wide, so the longest title must fit its panel.
            longest = max(len(title) for title, _ in panels)
            font_size = int(
                np.clip(min(bar_height * 0.6, width / longest * 1.2), 5, 16))
            drawn = np.hstack([
                np.vstack([
                    self._title_bar(width, bar_height, title, font_size), panel
                ]) for title, panel in panels
            ])
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(drawn[..., ::-1], out_file)
        else:
            self.add_image(name, drawn, step)
