"""Write a trained detector's instance predictions as COCO results.

The Spatial Ranking Module learns where instance masks overlap (OANet Sec.
3.2, Eq. 2), so ``tools/train_srm.py`` needs overlapping instance masks. A
dataset with panoptic annotations only has none: masks cut from its PNGs
never overlap. OANet's own answer is ``train_input='pred'``: paste the
instance branch's predictions, which do overlap, and take the targets at
the conflicting pixels from the panoptic ground truth. This tool does the
same for a trained detector without training a network: it runs mmdet's
PanopticFPN (or OANet) once over a split, by default the training images
with the test pipeline (no augmentation), and writes its instance
predictions as a COCO instance *results* file, which
``tools/train_srm.py --ins-ann-file`` reads in place of an instances JSON:

    python tools/analysis_tools/dump_instance_predictions.py \\
        CONFIG CHECKPOINT --out work_dirs/preds/instances_train_pred.json
    python tools/train_srm.py SRM_CONFIG \\
        --ins-ann-file work_dirs/preds/instances_train_pred.json

The predictions are those the detector hands its fusion head (the same
path as ``compare_fusion_heads.py``): ``roi_head.predict`` after the
config's ``model.test_cfg.rcnn`` (``score_thr``, NMS, ``max_per_img``,
``mask_thr_binary``), masks at the original image size. Each becomes one
entry ``{image_id, category_id, segmentation, score}``: the image id of
the dataset, the panoptic JSON's id of the thing class (matched by name),
the mask as compressed RLE (pycocotools, ``counts`` a str).
"""
import argparse
import contextlib
import copy
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.runner import Runner
from pycocotools import mask as mask_utils

import mmoanet  # noqa: F401  (registers components, safe checkpoints)
from mmoanet.datasets.annotation_checks import naming_json_errors

# tools.*: helpers of the scripts, found from the checkout's root.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from tools.analysis_tools.compare_fusion_heads import detections, load_detector

SPLITS = ('train', 'val', 'test')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the detector\'s config')
    parser.add_argument('checkpoint', help='the detector\'s checkpoint')
    parser.add_argument(
        '--out', required=True, help='COCO results JSON to write')
    parser.add_argument(
        '--split',
        choices=SPLITS,
        default='train',
        help='whose images: the config\'s train_dataloader.dataset (with '
        'the test pipeline), val_dataloader or test_dataloader (default: '
        'train)')
    parser.add_argument(
        '--device',
        help='where the detector runs (default: cuda when there is one, '
        'else cpu)')
    parser.add_argument(
        '--workers',
        type=int,
        default=0,
        help='image loading workers (default: 0, in this process)')
    parser.add_argument(
        '--max-images', type=int, help='only the first N images (a check)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.test_cfg.rcnn.score_thr'
        '=0.5')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config {args.config} not found')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint} not found')
    return args


def split_dataloader(cfg: Config, split: str, workers: int = 0) -> dict:
    """The dataloader config of ``split``: in order, without augmentation.

    Args:
        cfg (Config): The detector's config.
        split (str): ``'train'`` (``train_dataloader.dataset``, unwrapped
            from RepeatDataset and kin, with the test pipeline and in test
            mode, so no image is filtered out), ``'val'`` or ``'test'``.
        workers (int): DataLoader workers. Defaults to 0.

    Returns:
        dict: A config for ``Runner.build_dataloader``.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    loader = copy.deepcopy(cfg.get(f'{split}_dataloader'))
    if not loader:
        raise ValueError(f'{cfg.filename} has no {split}_dataloader')
    if split == 'train':
        test_loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
        if not test_loader:
            raise ValueError(f'{cfg.filename}: no test_dataloader whose '
                             'pipeline the training images could go through')
        dataset = loader.dataset
        while 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset...
            dataset = dataset.dataset
        dataset = copy.deepcopy(dataset)
        dataset.pipeline = copy.deepcopy(test_loader.dataset.pipeline)
        dataset.test_mode = True
        loader = copy.deepcopy(test_loader)
        loader.dataset = dataset
    loader.num_workers = workers
    loader.persistent_workers = workers > 0
    loader.sampler = ConfigDict(type='DefaultSampler', shuffle=False)
    loader.pop('batch_sampler', None)
    return loader


def thing_category_ids(panoptic_json: str,
                       thing_classes: Sequence[str]) -> List[int]:
    """The panoptic JSON's category id of each thing label, by name.

    Args:
        panoptic_json (str): COCO panoptic JSON of the split.
        thing_classes (Sequence[str]): Thing class names; label = index.

    Returns:
        list[int]: ``category_id`` of label 0, 1, ...

    Raises:
        ValueError: A thing class has no category of that name.
    """
    with open(panoptic_json) as f, naming_json_errors(panoptic_json):
        categories = json.load(f)['categories']
    id_of_name = {category['name']: category['id'] for category in categories}
    missing = [name for name in thing_classes if name not in id_of_name]
    if missing:
        raise ValueError(f'{panoptic_json}: no category named {missing} '
                         '(thing classes of the config)')
    return [id_of_name[name] for name in thing_classes]


def encode_masks(masks: torch.Tensor) -> List[Dict[str, object]]:
    """Compressed RLEs of bool (N, H, W) masks, ``counts`` as str."""
    if not len(masks):
        return []
    masks = masks.detach().cpu().numpy().astype(np.uint8)
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
    return [
        dict(
            size=[int(n) for n in rle['size']],
            counts=rle['counts'].decode('ascii')) for rle in rles
    ]


def dump_predictions(model: torch.nn.Module,
                     loader,
                     category_ids: Sequence[int],
                     max_images: Optional[int] = None) -> List[dict]:
    """COCO results of ``model``'s instance predictions on ``loader``.

    Args:
        model (nn.Module): A panoptic detector (see
            :func:`~tools.analysis_tools.compare_fusion_heads.detections`).
        loader (DataLoader): Its images; samples carry ``img_id``.
        category_ids (Sequence[int]): Category id of each thing label.
        max_images (int, optional): Stop after this many images.

    Returns:
        list[dict]: ``image_id``, ``category_id``, ``segmentation``
        (compressed RLE at the original image size) and ``score`` of every
        prediction, image by image.
    """
    results = []
    with torch.no_grad(), contextlib.closing(
            detections(model, loader, max_images)) as batches:
        for _, samples, (instances_list, _, _) in batches:
            for sample, instances in zip(samples, instances_list):
                image_id = sample.metainfo['img_id']
                height, width = sample.metainfo['ori_shape'][:2]
                masks = instances.masks
                if len(masks) and tuple(masks.shape[1:]) != (height, width):
                    raise RuntimeError(
                        f'image {image_id}: masks of shape '
                        f'{tuple(masks.shape[1:])}, not its original size '
                        f'{(height, width)}')
                for rle, label, score in zip(
                        encode_masks(masks), instances.labels.tolist(),
                        instances.scores.tolist()):
                    results.append(
                        dict(
                            image_id=image_id,
                            category_id=category_ids[label],
                            segmentation=rle,
                            score=round(float(score), 5)))
    return results


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    # A checkpoint of another model is refused, naming the file, as
    # tools/test.py refuses it; an unreadable one too.
    model = load_detector(cfg, args.checkpoint, check_match=True).to(device)
    loader = Runner.build_dataloader(
        split_dataloader(cfg, args.split, args.workers))
    dataset = loader.dataset
    category_ids = thing_category_ids(dataset.ann_file,
                                      dataset.metainfo['thing_classes'])
    start = time.perf_counter()
    results = dump_predictions(model, loader, category_ids, args.max_images)
    seconds = time.perf_counter() - start
    num_images = len(dataset)
    if args.max_images is not None:
        num_images = min(num_images, args.max_images)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    tmp_path = args.out + '.tmp'
    with open(tmp_path, 'w') as f:
        json.dump(results, f)
    os.replace(tmp_path, args.out)  # never a half-written file
    stats = dict(
        images=num_images,
        predictions=len(results),
        seconds=seconds,
        s_per_img=seconds / max(num_images, 1))
    print(f'{len(results)} predictions on {num_images} {args.split} images '
          f'({dataset.ann_file}) in {seconds:.1f} s = '
          f'{stats["s_per_img"]:.3f} s per image on {device}; written to '
          f'{args.out}')
    return stats


if __name__ == '__main__':
    main()
