"""Where the time of an SRM training step goes, before and after.

The SRM trained alone (``configs/srm/``: :class:`SRMAnnotationDataset`
feeding :class:`StandaloneSRM`) on COCO-sized data: synthetic occlusion
scenes written at 640 x 640 and cut to 480 x 640 (H x W), 80 thing classes
as ``configs/srm/srm_1x7-7x1_15k_coco-panoptic.py``, batch 8. One thread;
CPU time (``time.process_time``) per image, summed over the timed steps
after one warm-up step.

- data: the dataset's item (PNG decoding, semantic map, RLE decoding and
  the sample), and the three parts timed alone;
- model, before: the loss as it was computed up to this benchmark's commit
  (the dense ranking convolution over the whole grid, then the
  cross-entropy over the conflicting cells; conflicts counted in int64);
- model, after: ``StandaloneSRM.loss`` (logits at the conflicting cells
  only, conflicts counted in uint8), with its parts.

Both model paths see the same batches and the same weights, and their
losses must agree to 1e-5 (relative), otherwise the script exits with an
error. One pass over COCO train2017 (118,287 images) is extrapolated as
images x CPU time per image / 2 cores (data loading workers and the
training process sharing both cores perfectly: a lower bound on the wall
time).

Example:
    python projects/oanet_studies/benchmark_srm_train.py --num-images 32
"""
import argparse
import json
import os
import os.path as osp
import platform
import tempfile
import time
from typing import Callable, Dict, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmengine.dataset import pseudo_collate
from pycocotools import mask as mask_utils
from study_utils import REPO_ROOT, RESULTS_DIR, append_result, provenance

from mmoanet.datasets import SYNTHETIC_OCCLUSION_METAINFO
from mmoanet.datasets.srm_annotation_dataset import _decode
from mmoanet.datasets.synthetic_occlusion import generate_synthetic_occlusion
from mmoanet.evaluation.functional import load_panoptic_png
from mmoanet.utils.constants import IGNORE_INDEX

RECORD = osp.join(RESULTS_DIR, 'benchmark_srm_train.jsonl')
COCO_TRAIN_IMAGES = 118287
#: instances_train2017.json: 860,001 annotations on 118,287 images.
COCO_INSTANCES_PER_IMAGE = 7.27
CORES = 2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=32)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--num-classes', type=int, default=80)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--no-record',
        action='store_true',
        help=f'print the table only, do not append to {RECORD}')
    return parser.parse_args()


def write_data(out_dir: str, num_images: int, seed: int) -> None:
    """Synthetic scenes at 640 x 640, cut to their top 480 rows."""
    generate_synthetic_occlusion(
        out_dir, num_train=num_images, num_val=0, size=640, seed=seed)
    ann_dir = osp.join(out_dir, 'annotations')
    height = 480
    with open(osp.join(ann_dir, 'panoptic_train.json')) as f:
        panoptic = json.load(f)
    with open(osp.join(ann_dir, 'instances_train.json')) as f:
        instances = json.load(f)
    for image in panoptic['images'] + instances['images']:
        image['height'] = height
    for ann in panoptic['annotations']:
        path = osp.join(ann_dir, 'panoptic_train', ann['file_name'])
        cv2.imwrite(path, cv2.imread(path)[:height])
    kept = []
    for ann in instances['annotations']:
        mask = mask_utils.decode(ann['segmentation'])[:height]
        if not mask.any():
            continue
        rle = mask_utils.encode(np.asfortranarray(mask))
        rle['counts'] = rle['counts'].decode()
        ann.update(segmentation=rle, area=int(mask.sum()))
        ann['bbox'] = [float(v) for v in mask_utils.toBbox(rle)]
        kept.append(ann)
    instances['annotations'] = kept
    for name, content in (('panoptic_train.json', panoptic),
                          ('instances_train.json', instances)):
        with open(osp.join(ann_dir, name), 'w') as f:
            json.dump(content, f)


class Clock:
    """CPU seconds per named part, summed over calls."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}

    def time(self, name: str, func: Callable, *args):
        start = time.process_time()
        out = func(*args)
        self.seconds[name] = (
            self.seconds.get(name, 0.0) + time.process_time() - start)
        return out


def data_parts(dataset, index: int, clock: Clock) -> None:
    """The three parts of an item, timed alone."""
    info = dataset.get_data_info(index)
    ids = clock.time('data, part of the item: PNG decoding', load_panoptic_png,
                     info['seg_map_path'])

    def semantic_map() -> np.ndarray:
        sem_seg = np.full(ids.shape, IGNORE_INDEX, dtype=np.int64)
        for segment_id, label in info['segments']:
            sem_seg[ids == segment_id] = label
        return sem_seg

    clock.time('data, part of the item: semantic map', semantic_map)
    clock.time(
        'data, part of the item: RLE decoding', lambda: [
            _decode(ann['segmentation'], *ids.shape)
            for ann in info['instances']
        ])


def loss_before(srm, data_samples: list, clock: Clock) -> torch.Tensor:
    """The loss as computed before: dense convolution over the grid."""
    size = srm._canvas_size(data_samples)
    instances = [sample.gt_instances for sample in data_samples]
    instance_tensor = clock.time('before: paste', srm.paste,
                                 [inst.masks for inst in instances],
                                 [inst.labels for inst in instances], size)
    sem_grid = clock.time('before: sample sem_seg', srm.sample_sem_seg,
                          data_samples, size)

    def labels() -> torch.Tensor:
        active = instance_tensor > 0
        conflict = active.sum(dim=1) >= 2
        is_thing = sem_grid < srm.num_things_classes
        thing_class = sem_grid.clamp(max=srm.num_things_classes - 1)
        class_active = active.gather(1, thing_class[:, None])[:, 0]
        keep = conflict & is_thing & class_active
        return torch.where(keep, sem_grid,
                           torch.full_like(sem_grid, IGNORE_INDEX))

    target = clock.time('before: conflict labels', labels)
    logits = clock.time('before: ranking conv (dense)', srm, instance_tensor)

    def loss() -> torch.Tensor:
        loss_sum = F.cross_entropy(
            logits, target, ignore_index=IGNORE_INDEX, reduction='sum')
        return loss_sum / (target != IGNORE_INDEX).sum().clamp(min=1)

    return srm.loss_weight * clock.time('before: cross-entropy', loss)


def loss_after(srm, data_samples: list,
               clock: Clock) -> Tuple[torch.Tensor, int]:
    """``StandaloneSRM.loss``'s path, part by part (same calls)."""
    size = srm._canvas_size(data_samples)
    instances = [sample.gt_instances for sample in data_samples]
    instance_tensor = clock.time('after: paste', srm.paste,
                                 [inst.masks for inst in instances],
                                 [inst.labels for inst in instances], size)
    sem_grid = clock.time('after: sample sem_seg', srm.sample_sem_seg,
                          data_samples, size)
    target = clock.time('after: conflict labels', srm.conflict_labels,
                        instance_tensor, sem_grid)
    cells = (target != IGNORE_INDEX).nonzero()
    logits = clock.time('after: ranking conv (conflict cells)',
                        srm.conflict_logits, instance_tensor, cells)

    def loss() -> torch.Tensor:
        labels = target[cells[:, 0], cells[:, 1], cells[:, 2]]
        loss_sum = F.cross_entropy(logits, labels, reduction='sum')
        return loss_sum / max(len(cells), 1)

    return srm.loss_weight * clock.time('after: cross-entropy',
                                        loss), len(cells)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    register_all_modules(init_default_scope=True)
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp_dir:
        write_data(tmp_dir, args.num_images, args.seed)
        dataset = DATASETS.build(
            dict(
                type='SRMAnnotationDataset',
                data_root=tmp_dir + os.sep,
                ann_file='annotations/panoptic_train.json',
                data_prefix=dict(seg='annotations/panoptic_train/'),
                ins_ann_file='annotations/instances_train.json',
                metainfo=SYNTHETIC_OCCLUSION_METAINFO))
        model = MODELS.build(
            dict(
                type='StandaloneSRM',
                srm=dict(
                    type='SpatialRankingModule',
                    num_things_classes=args.num_classes)))
        srm = model.srm
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=1e-2, weight_decay=1e-4)
        clock = Clock()
        num_timed = num_instances = num_conflicts = 0
        worst = 0.0
        batches = range(0, len(dataset), args.batch_size)
        for number, first in enumerate(batches):
            warm_up = number == 0
            timer = Clock() if warm_up else clock
            indices = range(first, min(first + args.batch_size, len(dataset)))
            items = [
                timer.time('data: item (all of it)', dataset.__getitem__, i)
                for i in indices
            ]
            for i in indices:
                data_parts(dataset, i, timer)
            data = timer.time(
                'collate + preprocessor',
                lambda: model.data_preprocessor(pseudo_collate(items), True))
            samples = data['data_samples']
            before = loss_before(srm, samples, timer)
            timer.time('before: backward', before.backward)
            grads_before = [p.grad.clone() for p in model.parameters()]
            optimizer.zero_grad()
            after, num_cells = loss_after(srm, samples, timer)
            timer.time('after: backward', after.backward)
            if not torch.allclose(after, before, rtol=1e-5, atol=1e-7):
                raise AssertionError(f'batch {number}: loss {after.item()} '
                                     f'after, {before.item()} before')
            for grad, param in zip(grads_before, model.parameters()):
                if not torch.allclose(param.grad, grad, rtol=1e-4, atol=1e-6):
                    raise AssertionError(f'batch {number}: gradients differ')
            # The step as the Runner runs it gives the timed loss.
            with torch.no_grad():
                runner_loss = model(**data, mode='loss')['loss_srm']
            if not torch.allclose(runner_loss, after, rtol=1e-6, atol=0):
                raise AssertionError('StandaloneSRM.loss differs from the '
                                     'timed path')
            timer.time('optimizer step', optimizer.step)
            optimizer.zero_grad()
            worst = max(
                worst,
                abs(after.item() - before.item()) /
                max(abs(before.item()), 1e-12))
            if not warm_up:
                num_timed += len(indices)
                num_instances += sum(
                    len(s.gt_instances.labels) for s in samples)
                num_conflicts += num_cells

    ms = {
        name: 1e3 * seconds / num_timed
        for name, seconds in clock.seconds.items()
    }
    data_ms = ms['data: item (all of it)'] + ms['collate + preprocessor']
    totals = {}
    for side in ('before', 'after'):
        model_ms = sum(value for name, value in ms.items()
                       if name.startswith(side + ':'))
        model_ms += ms['optimizer step']
        totals[side] = dict(
            model_ms=model_ms,
            total_ms=data_ms + model_ms,
            coco_pass_min=COCO_TRAIN_IMAGES * (data_ms + model_ms) / 1e3 /
            CORES / 60)
    rows = [(name, value) for name, value in ms.items()]
    print(
        f'{num_timed} images of 480x640 timed ({num_instances / num_timed:.2f}'
        f' instances per image; COCO train2017 has '
        f'{COCO_INSTANCES_PER_IMAGE}), {args.num_classes} thing classes, '
        f'batch {args.batch_size}, one thread, CPU ms per image.\n')
    print('| part | CPU ms / image |')
    print('|---|---|')
    for name, value in rows:
        print(f'| {name} | {value:.2f} |')
    print('\n| step | data ms / image | model ms / image | total ms / image '
          f'| one pass over COCO train2017 on {CORES} cores (ideal) |')
    print('|---|---|---|---|---|')
    for side, total in totals.items():
        print(f'| {side} | {data_ms:.2f} | {total["model_ms"]:.2f} | '
              f'{total["total_ms"]:.2f} | {total["coco_pass_min"]:.1f} min |')
    print(f'\nConflicting cells: {num_conflicts / num_timed:.0f} per image '
          f'of {120 * 160} grid cells; largest relative loss difference '
          f'after/before {worst:.2g} (tolerance 1e-5).')
    if args.no_record:
        return
    record = dict(
        provenance(),
        study='benchmark_srm_train',
        data=dict(
            generator='mmoanet.datasets.synthetic_occlusion.'
            'generate_synthetic_occlusion',
            size=[480, 640],
            num_images=args.num_images,
            seed=args.seed),
        num_timed_images=num_timed,
        instances_per_image=num_instances / num_timed,
        conflicts_per_image=num_conflicts / num_timed,
        num_classes=args.num_classes,
        batch_size=args.batch_size,
        clock='time.process_time, one thread',
        versions=dict(
            torch=torch.__version__, python=platform.python_version()),
        ms_per_image=ms,
        totals=totals,
        max_relative_loss_difference=worst)
    append_result(osp.join(REPO_ROOT, RECORD), record)
    print(f'record appended to {RECORD}')


if __name__ == '__main__':
    main()
