"""Synthetic occlusion scenes in the COCO panoptic + instances layout.

COCO cannot be downloaded everywhere, yet the spatial ranking module (SRM,
Sec. 3.2) needs data where detection-score order is wrong: a small, rare
object (a tie) lying on a large, frequent one (a person) that a detector
scores higher. These scenes build that in. Things are stacked by a depth
that follows their class (big ``table`` at the bottom, small ``badge`` on
top) plus a little Gaussian noise, and small objects are mostly placed on a
larger one, so most images hold overlapping pairs whose top instance is the
smaller one. Colours and shapes are strong, texture noise modest, so a
ResNet-18 trained from scratch learns them in minutes.

Layout written under ``out_dir`` (the official COCO panoptic one)::

    {split}/000000000001.jpg ...                       images
    annotations/panoptic_{split}.json                  COCO panoptic JSON
    annotations/panoptic_{split}/000000000001.png ...  id = R + 256G + 256^2B
    annotations/instances_{split}.json   amodal RLE masks, overlapping
    annotations/overlaps_{split}.json    overlapping pairs, which is on top

Rule for hidden things: a thing whose visible part (after all objects above
it are drawn) is smaller than ``min_visible_area`` pixels is removed from
the scene before anything is written, so it is absent from the image, the
PNG, the instances JSON and the overlaps alike. Removing it only uncovers
objects below it, so one pass suffices. Amodal masks are clipped to the
image, as COCO masks are.

Category ids are deliberately not label + 1 (things 11-16, stuff 21-24) so
that code confusing ids with labels fails on this data too.
"""
import json
import os
import os.path as osp
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_utils


@dataclass(frozen=True)
class ThingSpec:
    """How one thing class looks and where it sits in the depth order.

    Sizes are fractions of the image size ``S``; ``depth_rank`` grows towards
    the viewer; ``frequency`` is the sampling weight (big classes are
    frequent, as persons are on COCO).
    """
    name: str
    category_id: int
    color: Tuple[int, int, int]
    shape: str
    size_range: Tuple[Tuple[float, float], Tuple[float, float]]
    max_angle: float
    depth_rank: int
    frequency: float


@dataclass(frozen=True)
class StuffSpec:
    """A background class: a base colour and a texture kind."""
    name: str
    category_id: int
    color: Tuple[int, int, int]
    texture: str


THING_SPECS = (
    ThingSpec('table', 11, (140, 85, 40), 'rectangle',
              ((0.40, 0.65), (0.28, 0.45)), 10, 0, 0.22),
    ThingSpec('person', 12, (135, 60, 175), 'ellipse',
              ((0.10, 0.16), (0.20, 0.30)), 15, 1, 0.26),
    ThingSpec('book', 13, (230, 230, 225), 'rectangle',
              ((0.16, 0.26), (0.11, 0.18)), 40, 2, 0.20),
    ThingSpec('cup', 14, (225, 35, 35), 'circle', ((0.05, 0.08), (0.05, 0.08)),
              0, 3, 0.12),
    ThingSpec('tie', 15, (250, 210, 0), 'kite', ((0.05, 0.08), (0.14, 0.20)),
              20, 4, 0.10),
    ThingSpec('badge', 16, (235, 50, 205), 'hexagon',
              ((0.045, 0.07), (0.045, 0.07)), 30, 5, 0.10),
)
STUFF_SPECS = (
    StuffSpec('sky', 21, (150, 200, 240), 'gradient'),
    StuffSpec('grass', 22, (60, 145, 55), 'stripes'),
    StuffSpec('water', 23, (30, 75, 150), 'ripples'),
    StuffSpec('sand', 24, (205, 185, 135), 'speckles'),
)

SYNTHETIC_OCCLUSION_METAINFO = dict(
    classes=tuple(s.name for s in THING_SPECS + STUFF_SPECS),
    thing_classes=tuple(s.name for s in THING_SPECS),
    stuff_classes=tuple(s.name for s in STUFF_SPECS),
    palette=[s.color for s in THING_SPECS + STUFF_SPECS])


@dataclass
class SceneObject:
    """One thing of a scene.

    ``amodal`` is the full shape (bool, (S, S)), ``visible`` the part not
    covered by objects above (bool, (S, S)).
    """
    spec: ThingSpec
    depth: float
    amodal: np.ndarray
    visible: np.ndarray = None
    bbox: Tuple[float, float, float, float] = (0, 0, 0, 0)


@dataclass
class Scene:
    """A rendered scene: image, stuff map and things bottom to top.

    ``image`` is uint8 (S, S, 3) RGB; ``stuff_map`` int64 (S, S) indices
    into :data:`STUFF_SPECS`; ``objects`` sorted by increasing depth.
    """
    image: np.ndarray
    stuff_map: np.ndarray
    objects: List[SceneObject] = field(default_factory=list)


def _draw_shape(spec: ThingSpec, center: Tuple[float, float],
                half_size: Tuple[float, float], angle: float,
                size: int) -> np.ndarray:
    """Rasterise one amodal shape; returns bool (size, size)."""
    canvas = np.zeros((size, size), np.uint8)
    cx, cy = center
    hw, hh = half_size
    if spec.shape == 'ellipse':
        cv2.ellipse(canvas, (round(cx), round(cy)), (round(hw), round(hh)),
                    angle, 0, 360, 1, -1)
    elif spec.shape == 'circle':
        cv2.circle(canvas, (round(cx), round(cy)), round(hw), 1, -1)
    else:
        if spec.shape == 'rectangle':
            outline = [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
        elif spec.shape == 'kite':  # a tie: short top, long pointed bottom
            outline = [(0, -hh), (hw, -0.4 * hh), (0, hh), (-hw, -0.4 * hh)]
        else:  # hexagon
            outline = [(hw * np.cos(t), hw * np.sin(t))
                       for t in np.arange(6) * np.pi / 3]
        theta = np.deg2rad(angle)
        rotation = np.array([[np.cos(theta), -np.sin(theta)],
                             [np.sin(theta), np.cos(theta)]])
        points = np.array(outline) @ rotation.T + np.array([cx, cy])
        cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
    return canvas.astype(bool)


def _stuff_layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """Split the background into 2-3 wavy horizontal bands of stuff.

    Returns:
        np.ndarray: int64 (size, size), indices into :data:`STUFF_SPECS`.
    """
    num_bands = int(rng.integers(2, 4))
    classes = rng.choice(len(STUFF_SPECS), num_bands, replace=False)
    xs = np.arange(size)
    ys = np.arange(size)[:, None]
    band = np.zeros((size, size), np.int64)
    bases = np.sort(rng.uniform(0.2, 0.8, num_bands - 1)) * size
    for base in bases:
        wave = base + rng.uniform(0.02, 0.08) * size * np.sin(
            2 * np.pi * xs / rng.uniform(0.4, 1.2) / size +
            rng.uniform(0, 2 * np.pi))
        band += (ys >= wave[None, :]).astype(np.int64)
    return classes[band]


def _stuff_texture(rng: np.random.Generator, spec: StuffSpec,
                   size: int) -> np.ndarray:
    """Texture of one stuff class over the whole canvas; float (S, S, 3)."""
    color = np.array(spec.color, np.float32)
    grid = np.arange(size, dtype=np.float32) / size
    if spec.texture == 'gradient':
        shade = 25 * (0.5 - grid)[:, None].repeat(size, 1)
    elif spec.texture == 'stripes':
        shade = np.broadcast_to(rng.normal(0, 12, size), (size, size))
    elif spec.texture == 'ripples':
        shade = 18 * np.sin(2 * np.pi * 9 * grid[:, None] +
                            2 * np.sin(2 * np.pi * 2 * grid[None, :]))
    else:  # speckles
        shade = 30 * (rng.random((size, size)) < 0.06) - 10
    return color + np.asarray(shade, np.float32)[..., None]


def make_scene(rng: np.random.Generator,
               size: int,
               num_things: Tuple[int, int] = (3, 7),
               on_top_prob: float = 0.8,
               depth_noise: float = 0.5,
               min_visible_area: int = 20,
               noise_std: float = 4.0) -> Scene:
    """Sample and render one scene.

    Args:
        rng (np.random.Generator): Source of all randomness.
        size (int): Image side ``S`` in pixels.
        num_things (tuple[int, int]): Half-open range of things sampled
            before hidden ones are removed. Defaults to (3, 7).
        on_top_prob (float): Chance that a thing which is not a table is
            centred on a thing of a lower depth rank placed before it, which
            is what makes most images hold overlaps. Defaults to 0.8.
        depth_noise (float): Std of the Gaussian noise added to the class
            depth rank; 0.5 swaps neighbouring classes in about 8% of
            their overlaps, so class alone does not decide the order.
            Defaults to 0.5.
        min_visible_area (int): Things with fewer visible pixels are removed
            (see the module docstring). Defaults to 20.
        noise_std (float): Std of the pixel noise. Defaults to 4.0.

    Returns:
        Scene: The rendered scene.
    """
    frequencies = np.array([s.frequency for s in THING_SPECS])
    count = int(rng.integers(*num_things))
    picks = rng.choice(
        len(THING_SPECS), count, p=frequencies / frequencies.sum())
    picks = sorted(picks, key=lambda i: THING_SPECS[i].depth_rank)
    objects: List[SceneObject] = []
    centers: List[Tuple[float, float, float, float, int]] = []
    for index in picks:
        spec = THING_SPECS[index]
        (w_lo, w_hi), (h_lo, h_hi) = spec.size_range
        half_w = rng.uniform(w_lo, w_hi) * size / 2
        if spec.shape in ('circle', 'hexagon'):  # regular: one size
            half_h = half_w
        else:
            half_h = rng.uniform(h_lo, h_hi) * size / 2
        anchors = [c for c in centers if c[4] < spec.depth_rank]
        if anchors and rng.random() < on_top_prob:
            ax, ay, aw, ah, _ = anchors[int(rng.integers(len(anchors)))]
            center = (ax + rng.uniform(-0.6, 0.6) * aw,
                      ay + rng.uniform(-0.6, 0.6) * ah)
        else:
            center = tuple(rng.uniform(0.1, 0.9, 2) * size)
        angle = rng.uniform(-spec.max_angle, spec.max_angle)
        amodal = _draw_shape(spec, center, (half_w, half_h), angle, size)
        if amodal.sum() < min_visible_area:
            continue
        centers.append((*center, half_w, half_h, spec.depth_rank))
        depth = spec.depth_rank + rng.normal(0, depth_noise)
        objects.append(SceneObject(spec, depth, amodal))
    objects.sort(key=lambda obj: obj.depth)

    covered = np.zeros((size, size), bool)
    for obj in reversed(objects):  # from the viewer down
        obj.visible = obj.amodal & ~covered
        if obj.visible.sum() >= min_visible_area:
            covered |= obj.amodal
    objects = [o for o in objects if o.visible.sum() >= min_visible_area]

    stuff_map = _stuff_layout(rng, size)
    image = np.zeros((size, size, 3), np.float32)
    for stuff_index in np.unique(stuff_map):
        texture = _stuff_texture(rng, STUFF_SPECS[stuff_index], size)
        image[stuff_map == stuff_index] = texture[stuff_map == stuff_index]
    for obj in objects:
        color = np.array(obj.spec.color, np.float32) + rng.normal(0, 8, 3)
        eroded = cv2.erode(obj.amodal.astype(np.uint8), np.ones((3, 3)))
        image[obj.amodal] = color
        image[obj.amodal & ~eroded.astype(bool)] = 0.55 * color  # outline
    image += rng.normal(0, noise_std, image.shape)
    scene = Scene(np.clip(image, 0, 255).astype(np.uint8), stuff_map)
    scene.objects = objects
    return scene


def _mask_bbox(mask: np.ndarray) -> List[float]:
    """Tight COCO box ``[x, y, w, h]`` of a non-empty bool mask."""
    ys, xs = np.nonzero(mask)
    return [
        float(xs.min()),
        float(ys.min()),
        float(xs.max() - xs.min() + 1),
        float(ys.max() - ys.min() + 1)
    ]


def _segment_id_to_rgb(segment_map: np.ndarray) -> np.ndarray:
    """Encode segment ids (int64, (H, W)) as uint8 RGB, id = R+256G+256²B."""
    return np.stack([(segment_map >> shift) & 255 for shift in (0, 8, 16)],
                    axis=-1).astype(np.uint8)


def _write_split(out_dir: str, split: str, num_images: int, size: int,
                 seed: int, scene_cfg: dict) -> None:
    """Generate and write the images and four annotation files of a split."""
    split_seed = {'train': 0, 'val': 1}.get(split, 2)
    img_dir = osp.join(out_dir, split)
    png_dir = osp.join(out_dir, 'annotations', f'panoptic_{split}')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(png_dir, exist_ok=True)
    images, panoptic_anns, instance_anns, overlaps = [], [], [], []
    next_ann_id = 1
    for index in range(num_images):
        # One stream per image: image k does not depend on how many are made.
        rng = np.random.default_rng([seed, split_seed, index])
        scene = make_scene(rng, size, **scene_cfg)
        image_id = index + 1
        stem = f'{image_id:012d}'
        cv2.imwrite(
            osp.join(img_dir, f'{stem}.jpg'), scene.image[..., ::-1],
            [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(
            dict(
                id=image_id, file_name=f'{stem}.jpg', height=size, width=size))

        num_segments = len(scene.objects) + len(STUFF_SPECS)
        segment_ids = rng.choice(256**3 - 1, num_segments, replace=False) + 1
        segment_map = np.zeros((size, size), np.int64)
        segments_info, ann_ids = [], []
        for stuff_index, spec in enumerate(STUFF_SPECS):
            region = scene.stuff_map == stuff_index
            for obj in scene.objects:
                region &= ~obj.visible
            if region.any():
                segment_id = int(segment_ids[len(scene.objects) + stuff_index])
                segment_map[region] = segment_id
                segments_info.append(
                    dict(
                        id=segment_id,
                        category_id=spec.category_id,
                        area=int(region.sum()),
                        bbox=_mask_bbox(region),
                        iscrowd=0))
        for obj, segment_id in zip(scene.objects, segment_ids.tolist()):
            segment_map[obj.visible] = segment_id
            segments_info.append(
                dict(
                    id=segment_id,
                    category_id=obj.spec.category_id,
                    area=int(obj.visible.sum()),
                    bbox=_mask_bbox(obj.visible),
                    iscrowd=0))
            rle = mask_utils.encode(np.asfortranarray(obj.amodal, np.uint8))
            rle['counts'] = rle['counts'].decode('ascii')
            instance_anns.append(
                dict(
                    id=next_ann_id,
                    image_id=image_id,
                    category_id=obj.spec.category_id,
                    segmentation=rle,
                    area=int(obj.amodal.sum()),
                    bbox=_mask_bbox(obj.amodal),
                    iscrowd=0,
                    panoptic_segment_id=segment_id,
                    visible_area=int(obj.visible.sum()),
                    depth=round(float(obj.depth), 4)))
            ann_ids.append(next_ann_id)
            next_ann_id += 1
        cv2.imwrite(
            osp.join(png_dir, f'{stem}.png'),
            _segment_id_to_rgb(segment_map)[..., ::-1])
        panoptic_anns.append(
            dict(
                image_id=image_id,
                file_name=f'{stem}.png',
                segments_info=segments_info))
        overlaps.append(
            dict(
                image_id=image_id,
                file_name=f'{stem}.jpg',
                pairs=_overlapping_pairs(scene.objects, ann_ids)))

    thing_categories = [
        dict(
            id=s.category_id,
            name=s.name,
            supercategory='thing',
            isthing=1,
            color=list(s.color)) for s in THING_SPECS
    ]
    stuff_categories = [
        dict(
            id=s.category_id,
            name=s.name,
            supercategory='stuff',
            isthing=0,
            color=list(s.color)) for s in STUFF_SPECS
    ]
    info = dict(
        description='mmoanet synthetic occlusion scenes',
        seed=seed,
        size=size,
        split=split)
    ann_dir = osp.join(out_dir, 'annotations')
    _dump(
        dict(
            info=info,
            images=images,
            annotations=panoptic_anns,
            categories=thing_categories + stuff_categories),
        osp.join(ann_dir, f'panoptic_{split}.json'))
    _dump(
        dict(
            info=info,
            images=images,
            annotations=instance_anns,
            categories=[{
                k: c[k]
                for k in ('id', 'name', 'supercategory')
            } for c in thing_categories]),
        osp.join(ann_dir, f'instances_{split}.json'))
    _dump(
        dict(info=info, images=overlaps),
        osp.join(ann_dir, f'overlaps_{split}.json'))


def _overlapping_pairs(objects: Sequence[SceneObject],
                       ann_ids: Sequence[int]) -> List[dict]:
    """Pairs of things whose amodal masks intersect, top one first.

    ``objects`` are sorted bottom to top, so the later one of a pair is on
    top where they overlap.
    """
    pairs = []
    for low in range(len(objects)):
        for high in range(low + 1, len(objects)):
            area = int((objects[low].amodal & objects[high].amodal).sum())
            if area > 0:
                pairs.append(
                    dict(
                        top_id=ann_ids[high],
                        bottom_id=ann_ids[low],
                        top_category_id=objects[high].spec.category_id,
                        bottom_category_id=objects[low].spec.category_id,
                        overlap_area=area))
    return pairs


def _dump(obj: dict, path: str) -> None:
    """Write ``obj`` as compact JSON."""
    with open(path, 'w') as file:
        json.dump(obj, file, separators=(',', ':'))


def generate_synthetic_occlusion(out_dir: str,
                                 num_train: int = 200,
                                 num_val: int = 50,
                                 size: int = 160,
                                 seed: int = 0,
                                 **scene_cfg) -> None:
    """Write a train and a val split of synthetic occlusion scenes.

    The output is a deterministic function of the arguments.

    Args:
        out_dir (str): Root folder (created if missing).
        num_train (int): Training images. Defaults to 200.
        num_val (int): Validation images. Defaults to 50.
        size (int): Image side in pixels. Defaults to 160.
        seed (int): Random seed. Defaults to 0.
        **scene_cfg: Options of :func:`make_scene` (``num_things``,
            ``on_top_prob``, ``depth_noise``, ``min_visible_area``,
            ``noise_std``).
    """
    for split, num_images in (('train', num_train), ('val', num_val)):
        _write_split(out_dir, split, num_images, size, seed, scene_cfg)


def overlap_statistics(out_dir: str, split: str) -> Dict[str, float]:
    """Measure how often detection-score order would be wrong in a split.

    Args:
        out_dir (str): Root folder written by
            :func:`generate_synthetic_occlusion`.
        split (str): ``'train'`` or ``'val'``.

    Returns:
        dict[str, float]: ``num_images``, ``num_pairs``,
        ``images_with_overlap`` (share of images with at least one
        overlapping pair), ``pairs_per_image``, ``top_smaller`` (share of
        pairs whose top instance has the smaller amodal area),
        ``top_rarer`` (share whose top class has fewer instances in the
        split) and ``same_class`` (share of pairs of one class).
    """
    ann_dir = osp.join(out_dir, 'annotations')
    with open(osp.join(ann_dir, f'instances_{split}.json')) as file:
        instances = json.load(file)['annotations']
    with open(osp.join(ann_dir, f'overlaps_{split}.json')) as file:
        overlaps = json.load(file)['images']
    area = {ann['id']: ann['area'] for ann in instances}
    class_count = Counter(ann['category_id'] for ann in instances)
    pairs = [pair for image in overlaps for pair in image['pairs']]
    num_pairs = max(len(pairs), 1)
    return dict(
        num_images=len(overlaps),
        num_pairs=len(pairs),
        images_with_overlap=sum(bool(i['pairs'])
                                for i in overlaps) / max(len(overlaps), 1),
        pairs_per_image=len(pairs) / max(len(overlaps), 1),
        top_smaller=sum(area[p['top_id']] < area[p['bottom_id']]
                        for p in pairs) / num_pairs,
        top_rarer=sum(class_count[p['top_category_id']] < class_count[
            p['bottom_category_id']] for p in pairs) / num_pairs,
        same_class=sum(p['top_category_id'] == p['bottom_category_id']
                       for p in pairs) / num_pairs)
