"""Train the Spatial Ranking Module alone on ground-truth masks.

Separates the SRM's own learning from the detector's: the SRM is trained
the way a user trains it, ``tools/train.py
configs/srm/srm_1x7-7x1_1200i_synthetic-occlusion.py`` (the synthetic train
split's full, amodal instance masks and panoptic labels, as
``train_input='gt'`` feeds it inside OANet), one run per learning rate,
and then ranks the ground-truth instances of the val split. It prints, per
learning rate, the share of overlapping pairs (all, and of different
classes) whose top instance gets the higher rank score (Eq. 3). A trained
OANet checkpoint's SRM can be scored the same way with --checkpoint.

    python projects/oanet_studies/srm_alone.py --lrs 1e-3 1e-2 --steps 1200
    python projects/oanet_studies/srm_alone.py --lrs \\
        --checkpoint work_dirs/demo/iter_1200.pth
    python projects/oanet_studies/srm_alone.py --lrs   # class-order baseline

It also prints what ranking by class alone achieves: each class's mean
``depth`` (from the instances file) decides every different-class pair.
"""
import argparse
import json
import os.path as osp
from typing import Dict, List

import numpy as np
from srm_utils import (PairSplit, load_trained_srm, pair_accuracy, srm_config,
                       srm_train_options, train_srm)
from study_utils import REPO_ROOT

DETECTOR_CONFIG = osp.join(REPO_ROOT, 'configs', 'oanet',
                           'oanet_r18_fpn_1200i_synthetic-occlusion.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default='data/synthetic_occlusion')
    parser.add_argument('--lrs', type=float, nargs='*', default=[1e-3, 1e-2])
    parser.add_argument('--steps', type=int, default=1200)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default='work_dirs/srm_alone')
    parser.add_argument(
        '--checkpoint', help='score the SRM of this OANet checkpoint too')
    parser.add_argument(
        '--detector-config',
        default=DETECTOR_CONFIG,
        help='the config of --checkpoint')
    return parser.parse_args()


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


def last_loss(work_dir: str) -> float:
    """The last logged training loss of a run."""
    from mmoanet.apis import read_training_scalars
    records = read_training_scalars(work_dir)
    return records[-1]['loss'] if records else float('nan')


def main():
    args = parse_args()
    from mmoanet.datasets import SYNTHETIC_OCCLUSION_METAINFO
    root = osp.join(REPO_ROOT, args.data_root)
    print('ranking by class alone (mean depth per class) orders '
          f'{class_order_baseline(root, "val"):.1f}% of the val '
          'different-class pairs right')
    if not args.lrs and not args.checkpoint:
        return
    val_split = PairSplit(root, 'val', SYNTHETIC_OCCLUSION_METAINFO)
    srm_cfg = srm_config()
    rows: List[Dict] = []
    for lr in args.lrs:
        work_dir = osp.join(args.work_dir,
                            f'lr{lr:g}_steps{args.steps}_seed{args.seed}')
        checkpoint, _ = train_srm(
            work_dir,
            srm_train_options(root, args.seed, args.steps, lr,
                              args.batch_size),
            log_file=osp.join(args.work_dir, f'train_lr{lr:g}.log'))
        rows.append(
            dict(
                source=f'SRM alone, lr {lr:g}, {args.steps} steps',
                loss=last_loss(work_dir),
                acc=pair_accuracy(
                    load_trained_srm(checkpoint, srm_cfg), val_split)))
    if args.checkpoint:
        from mmoanet.apis import init_model
        model = init_model(args.detector_config, args.checkpoint)
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
