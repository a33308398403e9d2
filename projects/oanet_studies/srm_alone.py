"""Train the Spatial Ranking Module alone on ground-truth masks.

Separates the SRM's own learning from the detector's: the SRM is trained on
the synthetic train split's full (amodal) instance masks and panoptic
labels, exactly as `train_input='gt'` feeds it inside OANet, and then ranks
the ground-truth instances of the val split. It prints, per learning rate,
the share of overlapping pairs (all, and of different classes) whose top
instance gets the higher rank score (Eq. 3). A trained OANet checkpoint's
SRM can be scored the same way with --checkpoint.

    python tools/analysis_tools/srm_alone.py --lrs 1e-3 1e-2 --steps 1200
    python tools/analysis_tools/srm_alone.py --steps 0 \
        --checkpoint work_dirs/demo/iter_1200.pth
    python tools/analysis_tools/srm_alone.py --lrs   # class-order baseline

It also prints what ranking by class alone achieves: each class's mean
``depth`` (from the instances file) decides every different-class pair.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData
from PIL import Image
from pycocotools.coco import COCO

import mmoanet  # noqa: F401
from mmoanet.evaluation.functional import rgb_to_id

# tools.utils: helpers of the scripts, found from the checkout's root.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from tools.utils import REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'configs', 'oanet',
                  'oanet_r18_fpn_1200i_synthetic-occlusion.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default='data/synthetic_occlusion')
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--lrs', type=float, nargs='*', default=[1e-3, 1e-2])
    parser.add_argument('--steps', type=int, default=1200)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--checkpoint', help='score the SRM of this OANet checkpoint too')
    return parser.parse_args()


class Split:
    """Ground truth of one split: full masks, labels, semantic maps, pairs."""

    def __init__(self, root: str, split: str, classes: List[str],
                 thing_classes: List[str]) -> None:
        ann_dir = osp.join(root, 'annotations')
        coco = COCO(osp.join(ann_dir, f'instances_{split}.json'))
        with open(osp.join(ann_dir, f'panoptic_{split}.json')) as f:
            panoptic = json.load(f)
        with open(osp.join(ann_dir, f'overlaps_{split}.json')) as f:
            overlaps = {
                e['image_id']: e['pairs']
                for e in json.load(f)['images']
            }
        cat2label = {
            c['id']: classes.index(c['name'])
            for c in panoptic['categories']
        }
        self.images = []
        for ann in panoptic['annotations']:
            png = np.array(
                Image.open(
                    osp.join(ann_dir, f'panoptic_{split}',
                             ann['file_name'])).convert('RGB'))
            ids = rgb_to_id(png)
            sem = np.full(ids.shape, 255, dtype=np.int64)
            for segment in ann['segments_info']:
                sem[ids == segment['id']] = cat2label[segment['category_id']]
            instances = coco.loadAnns(coco.getAnnIds(imgIds=[ann['image_id']]))
            masks = np.stack([coco.annToMask(a) > 0 for a in instances])
            labels = [
                thing_classes.index(cat['name'])
                for cat in coco.loadCats([a['category_id'] for a in instances])
            ]
            self.images.append(
                dict(
                    instances=InstanceData(
                        masks=torch.from_numpy(masks),
                        labels=torch.tensor(labels)),
                    sem_seg=torch.from_numpy(sem)[None],
                    ann_index={
                        a['id']: i
                        for i, a in enumerate(instances)
                    },
                    pairs=overlaps[ann['image_id']]))

    def sample(self, instances: InstanceData,
               sem_seg: torch.Tensor) -> DetDataSample:
        shape = tuple(sem_seg.shape[-2:])
        sample = DetDataSample(
            metainfo=dict(
                img_shape=shape, pad_shape=shape, batch_input_shape=shape))
        sample.gt_instances = instances
        sample.gt_sem_seg = PixelData(sem_seg=sem_seg)
        return sample


def class_order_baseline(root: str, split: str) -> float:
    """Different-class pairs ordered right by the classes' mean depth, %."""
    ann_dir = osp.join(root, 'annotations')
    with open(osp.join(ann_dir, f'instances_{split}.json')) as f:
        annotations = json.load(f)['annotations']
    with open(osp.join(ann_dir, f'overlaps_{split}.json')) as f:
        images = json.load(f)['images']
    depths: Dict[int, List[float]] = {}
    for ann in annotations:
        depths.setdefault(ann['category_id'], []).append(ann['depth'])
    mean_depth = {cat: float(np.mean(d)) for cat, d in depths.items()}
    right = total = 0
    for image in images:
        for pair in image['pairs']:
            top, bottom = pair['top_category_id'], pair['bottom_category_id']
            if top != bottom:
                right += int(mean_depth[top] > mean_depth[bottom])
                total += 1
    return 100.0 * right / max(total, 1)


def pair_accuracy(srm, split: Split) -> Tuple[float, float]:
    """Share of pairs (all, different classes) ranked right, in percent."""
    right = total = right_diff = total_diff = 0
    with torch.no_grad():
        for image in split.images:
            instances = image['instances']
            scores = srm.rank_scores(instances, instances.masks.shape[-2:])
            for pair in image['pairs']:
                good = int(scores[image['ann_index'][pair['top_id']]] > scores[
                    image['ann_index'][pair['bottom_id']]])
                cross = pair['top_category_id'] != pair['bottom_category_id']
                right, total = right + good, total + 1
                right_diff += good * cross
                total_diff += cross
    return 100.0 * right / total, 100.0 * right_diff / max(total_diff, 1)


def train(srm, split: Split, lr: float, steps: int, batch_size: int,
          seed: int) -> float:
    """AdamW with cosine decay, as the tiny config; returns the last loss."""
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(srm.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, max(steps, 1), eta_min=lr / 100)
    loss = torch.zeros(())
    for _ in range(steps):
        batch = [
            split.images[i]
            for i in rng.integers(len(split.images), size=batch_size)
        ]
        instances = [image['instances'] for image in batch]
        samples = [split.sample(i['instances'], i['sem_seg']) for i in batch]
        loss = srm.loss(instances, samples)['loss_srm']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return float(loss)


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    meta = cfg.train_dataloader.dataset.metainfo
    root = osp.join(REPO_ROOT, args.data_root)
    print('ranking by class alone (mean depth per class) orders '
          f'{class_order_baseline(root, "val"):.1f}% of the val '
          'different-class pairs right')
    if not args.lrs and not args.checkpoint:
        return
    train_split = Split(root, 'train', list(meta['classes']),
                        list(meta['thing_classes']))
    val_split = Split(root, 'val', list(meta['classes']),
                      list(meta['thing_classes']))
    srm_cfg = cfg.model.panoptic_fusion_head.srm
    rows: List[Dict] = []
    for lr in args.lrs:
        torch.manual_seed(args.seed)
        srm = MODELS.build(srm_cfg)
        srm.init_weights()
        loss = train(srm, train_split, lr, args.steps, args.batch_size,
                     args.seed)
        rows.append(
            dict(
                source=f'SRM alone, lr {lr:g}, {args.steps} steps',
                loss=loss,
                acc=pair_accuracy(srm, val_split)))
    if args.checkpoint:
        from mmoanet.apis import init_model
        model = init_model(args.config, args.checkpoint)
        rows.append(
            dict(
                source=f'SRM of {args.checkpoint}',
                loss=float('nan'),
                acc=pair_accuracy(model.panoptic_fusion_head.srm, val_split)))
    print(f'\nval: ground-truth masks ranked by the SRM '
          f'(rank_region={srm_cfg.get("rank_region", "mask")})\n')
    print('| SRM | last train loss | pairs right % | different-class '
          'pairs right % |')
    print('|---|---:|---:|---:|')
    for row in rows:
        print(f'| {row["source"]} | {row["loss"]:.3f} | {row["acc"][0]:.1f} '
              f'| {row["acc"][1]:.1f} |')


if __name__ == '__main__':
    main()
