"""Random COCO panoptic ground truth / prediction pairs for PQ checks.

Images are a few stuff regions (a Voronoi partition of random seeds, one
segment per stuff category) with thing ellipses painted over them (later
ones occlude earlier ones), some of them crowd, and VOID rectangles. The
prediction repaints the same scene with moved seeds and shifted things,
swaps some classes, drops some things, adds spurious blobs and VOID, so that
every PQ rule (match, IoU <= 0.5, crowd and VOID ignoring, FP, FN) occurs.
Used by ``projects/oanet_studies/benchmark_pq.py`` and the tests.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

from ..evaluation.functional.panoptic_io import id_to_rgb

THING_IDS = tuple(range(1, 13))
STUFF_IDS = tuple(range(20, 28))
# Listed but never drawn: categories absent from both sides.
UNUSED_IDS = (13, 28)


def random_categories() -> List[dict]:
    """COCO-style category list: 13 things and 9 stuff, ids not contiguous.

    Returns:
        list[dict]: Dicts with ``id``, ``name``, ``isthing``.
    """
    categories = []
    for cat_id in sorted(THING_IDS + STUFF_IDS + UNUSED_IDS):
        isthing = int(cat_id < 20)
        kind = 'thing' if isthing else 'stuff'
        categories.append(
            dict(id=cat_id, name=f'{kind}_{cat_id}', isthing=isthing))
    return categories


def _ellipse(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Random filled ellipse, bool (height, width)."""
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    ry = rng.uniform(4, height / 3)
    rx = rng.uniform(4, width / 3)
    ys, xs = np.ogrid[:height, :width]
    return ((ys - cy) / ry)**2 + ((xs - cx) / rx)**2 <= 1


def _stuff_labels(height: int, width: int, seeds: np.ndarray,
                  seed_cats: np.ndarray) -> np.ndarray:
    """Category of the nearest seed per pixel, int64 (height, width)."""
    ys, xs = np.mgrid[:height, :width]
    dist = ((ys[None] - seeds[:, 0, None, None])**2 +
            (xs[None] - seeds[:, 1, None, None])**2)
    return seed_cats[dist.argmin(0)]


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate a bool (H, W) mask, filling with False."""
    shifted = np.zeros_like(mask)
    height, width = mask.shape
    src = mask[max(0, -dy):height - max(0, dy), max(0, -dx):width - max(0, dx)]
    shifted[max(0, dy):max(0, dy) + src.shape[0],
            max(0, dx):max(0, dx) + src.shape[1]] = src
    return shifted


class _Painter:
    """Paints segments into an id map with random distinct ids."""

    def __init__(self, height: int, width: int,
                 rng: np.random.Generator) -> None:
        self.ids = np.zeros((height, width), dtype=np.int64)
        self.rng = rng
        self.info: Dict[int, dict] = {}

    def paint(self,
              mask: np.ndarray,
              category_id: int,
              iscrowd: int = 0) -> None:
        seg_id = int(self.rng.integers(1, 1 << 24))
        while seg_id in self.info:
            seg_id = int(self.rng.integers(1, 1 << 24))
        self.ids[mask] = seg_id
        self.info[seg_id] = dict(
            id=seg_id, category_id=category_id, iscrowd=iscrowd)

    def segments(self, with_area: bool) -> List[dict]:
        """Segments that kept pixels, with ``area`` if asked."""
        seg_ids, counts = np.unique(self.ids, return_counts=True)
        area = dict(zip(seg_ids.tolist(), counts.tolist()))
        segments = []
        for seg_id, info in self.info.items():
            if seg_id in area:
                seg = dict(info)
                if with_area:
                    seg['area'] = area[seg_id]
                segments.append(seg)
        return segments


def random_panoptic_pair(
    height: int, width: int, rng: np.random.Generator
) -> Tuple[np.ndarray, List[dict], np.ndarray, List[dict]]:
    """One random ground truth and prediction.

    Args:
        height (int): Image height H.
        width (int): Image width W.
        rng (np.random.Generator): Random source.

    Returns:
        tuple: ground truth ids (int64, (H, W)), ground truth segments
        (``id``, ``category_id``, ``iscrowd``, ``area``), prediction ids
        (int64, (H, W)) and prediction segments (``id``, ``category_id``).
    """
    num_seeds = int(rng.integers(2, 7))
    seeds = rng.uniform(0, (height, width), size=(num_seeds, 2))
    seed_cats = rng.choice(STUFF_IDS, size=num_seeds)
    things = []
    for _ in range(int(rng.integers(0, 9))):
        mask = _ellipse(height, width, rng)
        cat_id = int(rng.choice(THING_IDS))
        things.append((mask, cat_id, int(rng.random() < 0.15)))

    gt = _Painter(height, width, rng)
    stuff = _stuff_labels(height, width, seeds, seed_cats)
    for cat_id in np.unique(stuff).tolist():
        gt.paint(stuff == cat_id, cat_id)
    for mask, cat_id, iscrowd in things:
        gt.paint(mask, cat_id, iscrowd)
    for _ in range(int(rng.integers(0, 3))):
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        gt.ids[y0:y0 + int(rng.integers(3, 40)),
               x0:x0 + int(rng.integers(3, 40))] = 0

    pred = _Painter(height, width, rng)
    if rng.random() < 0.05:
        return gt.ids, gt.segments(True), pred.ids, pred.segments(False)
    moved = seeds + rng.normal(0, 0.08 * min(height, width), seeds.shape)
    pred_cats = np.where(
        rng.random(num_seeds) < 0.1, rng.choice(STUFF_IDS, num_seeds),
        seed_cats)
    stuff = _stuff_labels(height, width, moved, pred_cats)
    for cat_id in np.unique(stuff).tolist():
        if rng.random() < 0.9:
            pred.paint(stuff == cat_id, cat_id)
    for mask, cat_id, _ in things:
        if rng.random() < 0.15:
            continue
        if rng.random() < 0.1:
            cat_id = int(rng.choice(THING_IDS))
        dy, dx = rng.integers(-6, 7, size=2)
        pred.paint(_shift(mask, int(dy), int(dx)), cat_id)
    for _ in range(int(rng.integers(0, 3))):
        pred.paint(_ellipse(height, width, rng), int(rng.choice(THING_IDS)))
    if rng.random() < 0.3:
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        pred.ids[y0:y0 + int(rng.integers(3, 30)),
                 x0:x0 + int(rng.integers(3, 30))] = 0
    return gt.ids, gt.segments(True), pred.ids, pred.segments(False)


def write_random_panoptic_set(out_dir: str,
                              num_images: int,
                              size: Tuple[int, int] = (160, 160),
                              seed: int = 0) -> Dict[str, str]:
    """Write random pairs in COCO panoptic format.

    Sizes vary by up to 20 px around ``size`` so that images differ.

    Args:
        out_dir (str): Folder to write into (created).
        num_images (int): Number of images.
        size (tuple[int, int]): Mean (H, W). Defaults to (160, 160).
        seed (int): Random seed. Defaults to 0.

    Returns:
        dict[str, str]: ``gt_json``, ``gt_folder``, ``pred_json``,
        ``pred_folder`` paths.
    """
    rng = np.random.default_rng(seed)
    paths = dict(
        gt_json=osp.join(out_dir, 'gt.json'),
        gt_folder=osp.join(out_dir, 'gt'),
        pred_json=osp.join(out_dir, 'pred.json'),
        pred_folder=osp.join(out_dir, 'pred'))
    os.makedirs(paths['gt_folder'], exist_ok=True)
    os.makedirs(paths['pred_folder'], exist_ok=True)
    images, gt_anns, pred_anns = [], [], []
    for image_id in range(num_images):
        height = int(size[0] + rng.integers(-20, 21))
        width = int(size[1] + rng.integers(-20, 21))
        gt_ids, gt_segments, pred_ids, pred_segments = random_panoptic_pair(
            height, width, rng)
        file_name = f'{image_id:06d}.png'
        Image.fromarray(id_to_rgb(gt_ids)).save(
            osp.join(paths['gt_folder'], file_name))
        Image.fromarray(id_to_rgb(pred_ids)).save(
            osp.join(paths['pred_folder'], file_name))
        images.append(
            dict(
                id=image_id,
                height=height,
                width=width,
                file_name=file_name.replace('.png', '.jpg')))
        gt_anns.append(
            dict(
                image_id=image_id,
                file_name=file_name,
                segments_info=gt_segments))
        pred_anns.append(
            dict(
                image_id=image_id,
                file_name=file_name,
                segments_info=pred_segments))
    with open(paths['gt_json'], 'w') as f:
        json.dump(
            dict(
                images=images,
                annotations=gt_anns,
                categories=random_categories()), f)
    with open(paths['pred_json'], 'w') as f:
        json.dump(dict(annotations=pred_anns), f)
    return paths
