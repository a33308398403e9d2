"""Writing synthetic occlusion scenes as COCO panoptic + instances files.

Layout written under ``out_dir`` (the official COCO panoptic one)::

    {split}/000000000001.jpg ...                       images
    annotations/panoptic_{split}.json                  COCO panoptic JSON
    annotations/panoptic_{split}/000000000001.png ...  id = R + 256G + 256^2B
    annotations/instances_{split}.json   RLE masks, see ``ann_style``
    annotations/overlaps_{split}.json    overlapping pairs, which is on top

Annotation styles (``ann_style``), so that a conclusion can be checked on
more than one kind of instance ground truth:

- ``'amodal'``: instance masks are the full objects; overlapping things
  overlap completely (what the SRM learns from, Sec. 3.2).
- ``'coco'``: masks as a COCO annotator draws them
  (:func:`~.scene.coco_like_mask`): the visible part, its holes filled and
  a band of ``coco_band`` pixels across an occluder's edge; overlaps are
  partial.
- ``'panoptic'``: no instances file at all; a config then cuts the
  instances from the PNG (``instance_source='panoptic'``, mmdet's way).

The panoptic PNG + JSON and the overlaps file are the same in every style:
a pair lists the amodal overlap (``overlap_area`` and, as RLE,
``overlap_rle``) and the panoptic segment ids of both things, so metrics
can score the order from the PNG alone.
"""
import json
import os
import os.path as osp
import sys
from collections import Counter
from typing import Dict, List, Sequence

import cv2
import numpy as np
import pycocotools.mask as mask_utils
from mmengine.utils import ProgressBar

from ...evaluation.functional.panoptic_io import id_to_rgb
from ...models.seg_heads.panoptic_fusion_heads.fusion_utils import mask_boxes
from .scene import (STUFF_SPECS, THING_SPECS, SceneObject, coco_like_mask,
                    make_scene)

ANN_STYLES = ('amodal', 'coco', 'panoptic')


def _mask_bbox(mask: np.ndarray) -> List[float]:
    """Tight COCO box ``[x, y, w, h]`` of a non-empty bool mask (S, S).

    The SRM fusion head's :func:`mask_boxes`, the package's one mask-to-box
    routine: 0.15 ms on a 480x640 mask, against 1.05 ms for pycocotools'
    RLE box (``python projects/oanet_studies/benchmark_codec.py``).
    """
    top, bottom, left, right = mask_boxes(mask[None])[0]
    return [float(left), float(top), float(right - left), float(bottom - top)]


def _write_split(out_dir: str, split: str, num_images: int, size: int,
                 seed: int, ann_style: str, coco_band: int,
                 overlap_image_share: float, scene_cfg: dict,
                 progress: bool) -> None:
    """Generate and write the images and annotation files of a split."""
    split_seed = {'train': 0, 'val': 1}.get(split, 2)
    img_dir = osp.join(out_dir, split)
    png_dir = osp.join(out_dir, 'annotations', f'panoptic_{split}')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(png_dir, exist_ok=True)
    images, panoptic_anns, instance_anns, overlaps = [], [], [], []
    next_ann_id = 1
    if progress:
        # The stream of now, not the one bound when mmengine was imported.
        print(f'{split}: {num_images} images -> {img_dir}', flush=True)
        bar = ProgressBar(num_images, file=sys.stdout)
    for index in range(num_images):
        # One stream per image: image k does not depend on how many are made.
        rng = np.random.default_rng([seed, split_seed, index])
        image_cfg = dict(scene_cfg)
        if overlap_image_share < 1:
            # A stream of its own, so the default set stays unchanged.
            draw = np.random.default_rng([seed, split_seed, index, 1])
            image_cfg['allow_overlap'] = bool(
                draw.random() < overlap_image_share)
        scene = make_scene(rng, size, **image_cfg)
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
            if ann_style == 'coco':
                mask = coco_like_mask(obj.amodal, obj.visible, coco_band)
            else:
                mask = obj.amodal
            instance_anns.append(
                dict(
                    id=next_ann_id,
                    image_id=image_id,
                    category_id=obj.spec.category_id,
                    segmentation=_encode_rle(mask),
                    area=int(mask.sum()),
                    bbox=_mask_bbox(mask),
                    iscrowd=0,
                    panoptic_segment_id=segment_id,
                    visible_area=int(obj.visible.sum()),
                    depth=round(float(obj.depth), 4)))
            ann_ids.append(next_ann_id)
            next_ann_id += 1
        cv2.imwrite(
            osp.join(png_dir, f'{stem}.png'),
            id_to_rgb(segment_map)[..., ::-1])
        panoptic_anns.append(
            dict(
                image_id=image_id,
                file_name=f'{stem}.png',
                segments_info=segments_info))
        overlaps.append(
            dict(
                image_id=image_id,
                file_name=f'{stem}.jpg',
                pairs=_overlapping_pairs(scene.objects, ann_ids,
                                         segment_ids.tolist())))
        if progress:
            bar.update()
    if progress:
        sys.stdout.write('\n')  # the bar redraws one line; end it

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
        split=split,
        ann_style=ann_style)
    ann_dir = osp.join(out_dir, 'annotations')
    _dump(
        dict(
            info=info,
            images=images,
            annotations=panoptic_anns,
            categories=thing_categories + stuff_categories),
        osp.join(ann_dir, f'panoptic_{split}.json'))
    instances_file = osp.join(ann_dir, f'instances_{split}.json')
    if ann_style == 'panoptic':
        if osp.exists(instances_file):  # left by an earlier style
            os.remove(instances_file)
    else:
        _dump(
            dict(
                info=info,
                images=images,
                annotations=instance_anns,
                categories=[{
                    k: c[k]
                    for k in ('id', 'name', 'supercategory')
                } for c in thing_categories]), instances_file)
    _dump(
        dict(info=info, images=overlaps),
        osp.join(ann_dir, f'overlaps_{split}.json'))


def _encode_rle(mask: np.ndarray) -> dict:
    """COCO RLE of a bool mask (S, S), ``counts`` as a JSON string."""
    rle = mask_utils.encode(np.asfortranarray(mask, np.uint8))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def _overlapping_pairs(objects: Sequence[SceneObject], ann_ids: Sequence[int],
                       segment_ids: Sequence[int]) -> List[dict]:
    """Pairs of things whose amodal masks intersect, top one first.

    ``objects`` are sorted bottom to top, so the later one of a pair is on
    top where they overlap. ``top_id``/``bottom_id`` are ids of the
    instances file (absent in the ``'panoptic'`` style),
    ``top_segment_id``/``bottom_segment_id`` those of the panoptic PNG,
    ``top_area``/``bottom_area`` amodal areas and ``overlap_rle`` the
    amodal intersection, all of which the PNG gives to the top thing or to
    one above it.
    """
    pairs = []
    for low in range(len(objects)):
        for high in range(low + 1, len(objects)):
            overlap = objects[low].amodal & objects[high].amodal
            area = int(overlap.sum())
            if area > 0:
                pairs.append(
                    dict(
                        top_id=ann_ids[high],
                        bottom_id=ann_ids[low],
                        top_category_id=objects[high].spec.category_id,
                        bottom_category_id=objects[low].spec.category_id,
                        overlap_area=area,
                        top_segment_id=int(segment_ids[high]),
                        bottom_segment_id=int(segment_ids[low]),
                        top_area=int(objects[high].amodal.sum()),
                        bottom_area=int(objects[low].amodal.sum()),
                        overlap_rle=_encode_rle(overlap)))
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
                                 ann_style: str = 'amodal',
                                 coco_band: int = 3,
                                 overlap_image_share: float = 1.0,
                                 progress: bool = False,
                                 **scene_cfg) -> None:
    """Write a train and a val split of synthetic occlusion scenes.

    The output is a deterministic function of the arguments; the images,
    PNGs and overlaps do not depend on ``ann_style`` or ``coco_band``.

    Args:
        out_dir (str): Root folder (created if missing).
        num_train (int): Training images. Defaults to 200.
        num_val (int): Validation images. Defaults to 50.
        size (int): Image side in pixels. Defaults to 160.
        seed (int): Random seed. Defaults to 0.
        ann_style (str): ``'amodal'``, ``'coco'`` or ``'panoptic'`` (see
            the module docstring). Defaults to ``'amodal'``.
        coco_band (int): Overshoot in pixels of ``'coco'`` masks across an
            occluder's edge (:func:`~.scene.coco_like_mask`). Defaults to 3.
        overlap_image_share (float): Share of the images whose things may
            overlap; the others are drawn with ``allow_overlap=False``.
            Defaults to 1.0 (all, as ``on_top_prob`` places them).
        progress (bool): Show a progress bar per split on stdout
            (mmengine's ``ProgressBar``: images written, rate, time left),
            as the command-line tool does. Off by default, so library
            callers and tests stay quiet. Defaults to False.
        **scene_cfg: Options of :func:`make_scene` (``num_things``,
            ``on_top_prob``, ``depth_noise``, ``min_visible_area``,
            ``noise_std``, ``thing_scale``).

    Raises:
        ValueError: for an unknown ``ann_style`` or a share outside [0, 1].
    """
    if ann_style not in ANN_STYLES:
        raise ValueError(f'ann_style must be one of {ANN_STYLES}, got '
                         f'{ann_style!r}')
    if not 0 <= overlap_image_share <= 1:
        raise ValueError('overlap_image_share must lie in [0, 1], got '
                         f'{overlap_image_share}')
    for split, num_images in (('train', num_train), ('val', num_val)):
        _write_split(out_dir, split, num_images, size, seed, ann_style,
                     coco_band, overlap_image_share, scene_cfg, progress)


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
    with open(osp.join(ann_dir, f'panoptic_{split}.json')) as file:
        panoptic = json.load(file)
    with open(osp.join(ann_dir, f'overlaps_{split}.json')) as file:
        overlaps = json.load(file)['images']
    thing_ids = {c['id'] for c in panoptic['categories'] if c['isthing']}
    class_count = Counter(segment['category_id']
                          for ann in panoptic['annotations']
                          for segment in ann['segments_info']
                          if segment['category_id'] in thing_ids)
    pairs = [pair for image in overlaps for pair in image['pairs']]
    if pairs and 'top_area' not in pairs[0]:
        raise ValueError(
            f'{osp.join(ann_dir, f"overlaps_{split}.json")} was written by an '
            'older generator (no top_area); regenerate it with '
            'tools/dataset_converters/make_synthetic_occlusion.py')
    num_pairs = max(len(pairs), 1)
    return dict(
        num_images=len(overlaps),
        num_pairs=len(pairs),
        images_with_overlap=sum(bool(i['pairs'])
                                for i in overlaps) / max(len(overlaps), 1),
        pairs_per_image=len(pairs) / max(len(overlaps), 1),
        top_smaller=sum(p['top_area'] < p['bottom_area']
                        for p in pairs) / num_pairs,
        top_rarer=sum(class_count[p['top_category_id']] < class_count[
            p['bottom_category_id']] for p in pairs) / num_pairs,
        same_class=sum(p['top_category_id'] == p['bottom_category_id']
                       for p in pairs) / num_pairs)
