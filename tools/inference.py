"""Panoptic segmentation of an image or a folder of images.

    python tools/inference.py IMAGE_OR_FOLDER CONFIG CHECKPOINT --out-dir DIR
    python tools/inference.py demo/ CONFIG CHECKPOINT --out-dir DIR \\
        --compare-orders --score-thr 0.3 --device cuda:0

Writes, for every image NAME.EXT (a folder is read without recursion):

    DIR/panoptic/NAME.png   COCO panoptic PNG of the model's primary order
    DIR/panoptic.json       COCO panoptic ``images``, ``annotations`` (with
                            ``segments_info``) and ``categories``
    DIR/vis/NAME.jpg        the image with coloured, outlined, named segments;
                            with --compare-orders (OANet only) two titled
                            panels, detection-score order | SRM order, with
                            the pixels where they differ outlined in magenta
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np
from mmdet.registry import MODELS
from mmdet.utils.misc import IMG_EXTENSIONS
from mmdet.visualization.palette import get_palette
from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar

from mmoanet.apis import (coco_categories, inference_panoptic, init_model,
                          panoptic_to_coco)
from mmoanet.models import OANet
from mmoanet.visualization import draw_order_comparison, draw_panoptic_overlay

ORDER_KEYS = ('pred_panoptic_seg_score', 'pred_panoptic_seg_srm')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Panoptic segmentation of images: COCO panoptic PNG + '
        'JSON and coloured overlays')
    parser.add_argument('input', help='an image file or a folder of images')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out-dir', required=True, help='where panoptic/, vis/ go')
    parser.add_argument(
        '--compare-orders',
        action='store_true',
        help='draw the detection-score and the SRM order side by side '
        '(OANet only)')
    parser.add_argument(
        '--device', default='cpu', help='e.g. cpu or cuda:0 (default cpu)')
    parser.add_argument(
        '--score-thr',
        type=float,
        help='keep instances scoring at least this (default: the '
        'test_cfg.rcnn.score_thr of the config)')
    parser.add_argument(
        '--alpha',
        type=float,
        default=0.5,
        help='opacity of the segment colours in the overlays')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.test_cfg.panoptic.'
        'stuff_area_limit=64')
    return parser.parse_args(argv)


def collect_images(path: str) -> List[str]:
    """Image files named by ``path``: itself, or its folder's images.

    Raises:
        FileNotFoundError: Nothing at ``path``.
        ValueError: A file without an image extension, or a folder with no
            image file in it.
    """
    if osp.isdir(path):
        names = sorted(
            name for name in os.listdir(path)
            if name.lower().endswith(IMG_EXTENSIONS)
            and osp.isfile(osp.join(path, name)))
        if not names:
            raise ValueError(f'{path}: no image file in this folder '
                             f'(looked for {", ".join(IMG_EXTENSIONS)})')
        return [osp.join(path, name) for name in names]
    if not osp.exists(path):
        raise FileNotFoundError(f'{path}: no such file or folder')
    if not path.lower().endswith(IMG_EXTENSIONS):
        raise ValueError(f'{path} is not an image file (expected one of '
                         f'{", ".join(IMG_EXTENSIONS)})')
    return [path]


def read_image(path: str) -> np.ndarray:
    """uint8 (H, W, 3) BGR image; ValueError naming an undecodable file."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f'{path}: cannot be decoded as an image')
    return image


def output_stems(paths: Sequence[str]) -> List[str]:
    """File stems for the outputs, unique even for ``a.jpg`` + ``a.png``."""
    stems = [osp.splitext(osp.basename(path))[0] for path in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [osp.basename(path).replace('.', '_') for path in paths]


def image_ids(stems: Sequence[str]) -> List[int]:
    """COCO ``image_id`` per image: a numeric stem (``000000000139``)
    itself, so ids agree with a COCO annotation file, else 1, 2, ..."""
    if all(stem.isdigit() for stem in stems):
        ids = [int(stem) for stem in stems]
        if len(set(ids)) == len(ids):
            return ids
    return list(range(1, len(stems) + 1))


def overlay_palette(palette: Union[None, str, Sequence],
                    num_classes: int) -> List[tuple]:
    """RGB colour per class from a dataset ``palette`` (colours, or a name
    such as 'random' or 'coco' that mmdet's ``get_palette`` knows)."""
    if isinstance(palette, (list, tuple)) and palette and isinstance(
            palette[0], (list, tuple)):
        if len(palette) < num_classes:
            raise ValueError(f'the palette has {len(palette)} colours for '
                             f'{num_classes} classes')
        palette = [tuple(color) for color in palette]
    colors = get_palette(palette, num_classes)
    return colors


def build_config(args: argparse.Namespace) -> Config:
    """Config with the command line's overrides merged in.

    Raises:
        ValueError: --compare-orders for a model that is not an OANet.
    """
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config {args.config} not found')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.score_thr is not None:
        cfg.merge_from_dict({'model.test_cfg.rcnn.score_thr': args.score_thr})
    if args.compare_orders:
        model_type = cfg.model.get('type')
        model_class = MODELS.get(model_type) if model_type else None
        if not (isinstance(model_class, type)
                and issubclass(model_class, OANet)):
            raise ValueError(
                f'--compare-orders needs an OANet model (its SRM fusion head '
                f'computes both orders), but {args.config} builds '
                f'{model_type!r}')
        cfg.merge_from_dict({'model.test_cfg.panoptic.compare_orders': True})
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the command line; returns the COCO panoptic JSON it wrote."""
    args = parse_args(argv)
    paths = collect_images(args.input)
    cfg = build_config(args)
    model = init_model(cfg, args.checkpoint, device=args.device)
    label2cat, categories, id_source = coco_categories(model)
    classes = model.dataset_meta['classes']
    num_classes = len(classes)
    palette = overlay_palette(model.dataset_meta.get('palette'), num_classes)

    png_dir = osp.join(args.out_dir, 'panoptic')
    vis_dir = osp.join(args.out_dir, 'vis')
    os.makedirs(png_dir, exist_ok=True)
    os.makedirs(vis_dir, exist_ok=True)
    stems = output_stems(paths)
    images, annotations = [], []
    progress = ProgressBar(len(paths), file=sys.stdout)
    for path, stem, image_id in zip(paths, stems, image_ids(stems)):
        image = read_image(path)
        sample = inference_panoptic(model, image)
        pan_ids = sample.pred_panoptic_seg.sem_seg.cpu().numpy()[0]
        png, segments_info = panoptic_to_coco(pan_ids, label2cat, num_classes)
        cv2.imwrite(osp.join(png_dir, stem + '.png'), png[..., ::-1])
        height, width = image.shape[:2]
        images.append(
            dict(
                id=image_id,
                file_name=osp.basename(path),
                height=height,
                width=width))
        annotations.append(
            dict(
                image_id=image_id,
                file_name=stem + '.png',
                segments_info=segments_info))
        if args.compare_orders:
            missing = [key for key in ORDER_KEYS if key not in sample]
            if missing:
                raise ValueError(f'{args.config}: the model did not predict '
                                 f'{missing}; --compare-orders needs '
                                 'an SRMFusionHead')
            score_ids, srm_ids = (
                sample.get(key).sem_seg.cpu().numpy() for key in ORDER_KEYS)
            overlay = draw_order_comparison(image, score_ids, srm_ids, palette,
                                            classes, args.alpha)
        else:
            overlay = draw_panoptic_overlay(image, pan_ids, palette, classes,
                                            args.alpha)
        cv2.imwrite(osp.join(vis_dir, stem + '.jpg'), overlay)
        progress.update()

    result = dict(
        info=dict(
            description='mmoanet panoptic predictions',
            config=args.config,
            checkpoint=args.checkpoint,
            panoptic_key='pred_panoptic_seg',
            category_ids=id_source),
        images=images,
        annotations=annotations,
        categories=categories)
    json_path = osp.join(args.out_dir, 'panoptic.json')
    with open(json_path, 'w') as f:
        json.dump(result, f)
    print(f'\n{len(paths)} image(s): PNGs in {png_dir}, overlays in '
          f'{vis_dir}, segments in {json_path} ({id_source})')
    return result


if __name__ == '__main__':
    main()
