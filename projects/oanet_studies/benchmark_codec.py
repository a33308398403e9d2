"""Time mmoanet's small helpers against the libraries that also have them.

    python projects/oanet_studies/benchmark_codec.py [--height 480 \\
        --width 640]

The panoptic colour codec (``mmoanet.evaluation.functional.panoptic_io``)
against ``panopticapi.utils.rgb2id``/``id2rgb``, and the package's one
mask-to-box routine (``mask_boxes``, used by the SRM fusion head and the
synthetic writer) against mmdet's ``mask2bbox`` and
``BitmapMasks.get_bboxes`` for many masks and against pycocotools' RLE box
for one. Each row checks that both give the same result, then prints the
best of ``--repeat`` rounds of ``--number`` calls, per call, with OpenCV on
one thread.
"""
import argparse
import timeit

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import torch
from mmdet.structures.mask import BitmapMasks, mask2bbox
from panopticapi.utils import id2rgb, rgb2id

from mmoanet.evaluation.functional import bgr_to_id, id_to_rgb, rgb_to_id
from mmoanet.models.seg_heads.panoptic_fusion_heads.fusion_utils import \
    mask_boxes


def coco_box(mask):
    """pycocotools' RLE box ``[x, y, w, h]`` of one mask."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return mask_utils.toBbox(rle).tolist()


def box_xywh(mask):
    """``mask_boxes`` of one mask as ``[x, y, w, h]``."""
    top, bottom, left, right = mask_boxes(mask[None])[0]
    return [float(left), float(top), float(right - left), float(bottom - top)]


def best_ms(func, number, repeat):
    return min(timeit.repeat(func, number=number,
                             repeat=repeat)) / number * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--masks', type=int, default=50)
    parser.add_argument('--number', type=int, default=100)
    parser.add_argument('--repeat', type=int, default=7)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    h, w = args.height, args.width
    ids = rng.integers(0, 1 << 24, size=(h, w))
    rgb = id2rgb(ids)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    masks = np.zeros((args.masks, h, w), bool)
    for mask in masks:
        y, x = rng.integers(0, h - 60), rng.integers(0, w - 60)
        mask[y:y + rng.integers(5, 60), x:x + rng.integers(5, 60)] = True
    tensor = torch.from_numpy(masks)
    boxes = [(left, top, right, bottom)
             for top, bottom, left, right in mask_boxes(masks)]

    rows = [
        ('decode RGB', lambda: rgb_to_id(rgb), lambda: rgb2id(rgb),
         'panopticapi rgb2id', np.array_equal(rgb_to_id(rgb), ids)),
        ('decode BGR (OpenCV read)', lambda: bgr_to_id(bgr),
         lambda: rgb2id(bgr[..., ::-1]), 'panopticapi rgb2id(bgr[..., ::-1])',
         np.array_equal(bgr_to_id(bgr), ids)),
        ('encode', lambda: id_to_rgb(ids), lambda: id2rgb(ids),
         'panopticapi id2rgb', np.array_equal(id_to_rgb(ids), rgb)),
        (f'{args.masks} mask boxes', lambda: mask_boxes(masks),
         lambda: mask2bbox(tensor), 'mmdet mask2bbox',
         np.array_equal(
             mask2bbox(tensor).numpy(), np.array(boxes, np.float32))),
        (f'{args.masks} mask boxes', lambda: mask_boxes(masks),
         lambda: BitmapMasks(masks, h, w).get_bboxes('hbox'),
         'mmdet BitmapMasks.get_bboxes',
         np.array_equal(
             BitmapMasks(masks, h, w).get_bboxes('hbox').tensor.numpy(),
             np.array(boxes, np.float32))),
        ('one mask box [x, y, w, h]', lambda: box_xywh(masks[0]),
         lambda: coco_box(masks[0]), 'pycocotools encode + toBbox',
         box_xywh(masks[0]) == coco_box(masks[0])),
    ]
    print(f'{h}x{w}, best of {args.repeat} x {args.number} calls, ms per '
          'call\n')
    print('| what | ours (ms) | library (ms) | library | same '
          'result |')
    print('|---|---:|---:|---|---|')
    for name, ours, library, library_name, same in rows:
        print(f'| {name} | {best_ms(ours, args.number, args.repeat):.3f} | '
              f'{best_ms(library, args.number, args.repeat):.3f} | '
              f'{library_name} | {same} |')


if __name__ == '__main__':
    main()
