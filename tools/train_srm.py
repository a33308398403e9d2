"""Train the Spatial Ranking Module alone from a dataset's annotations.

Under ``train_input='gt'`` the SRM (OANet Sec. 3.2) shares no parameter
with the network: it learns from ground-truth instance masks and the
panoptic labels where they overlap (Eq. 2). So it can be trained from the
annotation files alone, without a single image going through a network,
and then added to a detector that was trained without it, e.g. one of
mmdet's released PanopticFPN checkpoints
(``tools/model_converters/add_srm_to_panoptic_fpn.py``).

    python tools/train_srm.py \\
        configs/panoptic_fpn_srm/panoptic-fpn-srm_r50_fpn_1x_coco.py
    python tools/train_srm.py CONFIG --resume          # go on where it stopped
    python tools/train_srm.py CONFIG --iters 3000 --lr 1e-2 --work-dir DIR

What it reads from CONFIG:

- ``train_dataloader.dataset``: ``data_root``, ``ann_file`` (COCO panoptic
  JSON), ``data_prefix.seg`` (its PNGs), ``metainfo.classes`` (else the
  dataset class's), and the COCO *instances* JSON, from the dataset's
  ``ins_ann_file`` (OANet configs) or ``srm_train.ins_ann_file``. Instance
  masks cut from the panoptic PNG never overlap, so the SRM cannot learn
  from them. For a dataset with panoptic annotations only, the instances
  file can be a trained detector's predictions on the training images, a
  COCO results file of ``tools/analysis_tools/dump_instance_predictions.py``
  (OANet's ``train_input='pred'``, predictions made once): its masks
  overlap, and the targets still come from the panoptic PNGs.
- ``model.panoptic_fusion_head.srm``: the SRM to build.
- ``srm_train`` (optional): ``iters``, ``batch_size``, ``lr``,
  ``weight_decay``; command-line flags override it.

Masks and labels are used at the annotation size (the original image
size), where :class:`SRMFusionHead` ranks instances inside mmdet's
detectors (they pass no image metas). The optimiser is AdamW with cosine
decay to lr / 100, as ``tools/analysis_tools/srm_alone.py`` uses.

Writes to the work dir (``work_dirs/<config name>`` by default):
``srm_iter_<N>.pth`` and ``srm_latest.pth``, SRM-only checkpoints
(``state_dict`` of the SRM, ``meta`` with its config and class names, and
the optimiser state for ``--resume``), and ``train_srm.log.json``. At the
end it prints images per second and what that rate means for one pass
over COCO train2017.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import time
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader, Dataset

import mmoanet  # noqa: F401  (registers the SRM and the datasets)

# tools.*: helpers of the scripts, found from the folder above tools/.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools.utils.srm_annotations import (EpochSampler, SRMAnnotations,
                                         as_data_samples, collate_items,
                                         dataset_settings)

__all__ = [
    'EpochSampler', 'SRMAnnotations', 'as_data_samples', 'build_srm',
    'coco_extrapolation', 'dataset_settings', 'load_srm_checkpoint', 'main',
    'save_srm_checkpoint', 'train_srm'
]

COCO_TRAIN2017_IMAGES = 118287
#: Default for the pixel scaling of the COCO extrapolation. COCO images are
#: at most 640 px on their longer side; 640 x 480 is their most common size.
#: An assumption, printed with the result: pass --coco-pixels to change it.
COCO_ASSUMED_PIXELS = 640 * 480
DEFAULT_SCHEDULE = dict(iters=1200, batch_size=4, lr=1e-2, weight_decay=1e-4)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config with the dataset and the SRM')
    parser.add_argument('--work-dir', help='where checkpoints and logs go')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this SRM checkpoint, or, without a value, from '
        'the work dir\'s srm_latest.pth')
    parser.add_argument('--iters', type=int, help='total training steps')
    parser.add_argument('--batch-size', type=int, help='images per step')
    parser.add_argument('--lr', type=float, help='AdamW learning rate')
    parser.add_argument('--weight-decay', type=float)
    parser.add_argument(
        '--ins-ann-file',
        help='COCO instances JSON, or COCO results of a detector '
        '(dump_instance_predictions.py), relative to data_root unless '
        'absolute; overrides the config')
    parser.add_argument(
        '--min-score',
        type=float,
        default=0.0,
        help='with a results file: leave out predictions scored below this '
        '(default: 0, keep all)')
    parser.add_argument(
        '--max-images',
        type=int,
        help='use only the first N images of the annotations (a quick '
        'check or a timing)')
    parser.add_argument(
        '--workers', type=int, default=2, help='annotation loading workers')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--save-interval',
        type=int,
        default=500,
        help='write srm_iter_<N>.pth and srm_latest.pth every N steps')
    parser.add_argument('--log-interval', type=int, default=50)
    parser.add_argument(
        '--coco-pixels',
        type=int,
        default=COCO_ASSUMED_PIXELS,
        help='pixels per COCO image for the extrapolation (default: '
        '640 x 480, an assumption)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'model.panoptic_fusion_head.srm.kernel=3x3')
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------


def save_srm_checkpoint(path: str,
                        srm: torch.nn.Module,
                        meta: dict,
                        optimizer: Optional[torch.optim.Optimizer] = None,
                        scheduler=None) -> None:
    """Write an SRM-only checkpoint.

    Args:
        path (str): Output file.
        srm (nn.Module): The SpatialRankingModule.
        meta (dict): ``srm_cfg``, ``thing_classes``, ``iter`` and whatever
            else describes the run.
        optimizer, scheduler: Saved for ``--resume`` when given.
    """
    checkpoint = dict(
        meta=dict(meta, kind='srm'),
        state_dict={
            name: tensor.detach().cpu()
            for name, tensor in srm.state_dict().items()
        })
    if optimizer is not None:
        checkpoint['optimizer'] = optimizer.state_dict()
    if scheduler is not None:
        checkpoint['scheduler'] = scheduler.state_dict()
    tmp_path = path + '.tmp'
    torch.save(checkpoint, tmp_path)
    os.replace(tmp_path, path)  # never a half-written checkpoint


def load_srm_checkpoint(path: str) -> dict:
    """Read a checkpoint of :func:`save_srm_checkpoint`.

    Raises:
        ValueError: When ``path`` is not an SRM-only checkpoint.
    """
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    if not isinstance(checkpoint, dict) or checkpoint.get(
            'meta', {}).get('kind') != 'srm':
        raise ValueError(f'{path} is not an SRM checkpoint of '
                         'tools/train_srm.py')
    return checkpoint


# ----------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------


def build_srm(cfg: Config) -> torch.nn.Module:
    """The SRM of ``cfg``'s fusion head, initialised.

    Its ``num_things_classes`` defaults to the fusion head's, as
    :class:`SRMFusionHead` sets it.
    """
    head_cfg = cfg.model.panoptic_fusion_head
    if 'srm' not in head_cfg:
        raise ValueError(f'{cfg.filename}: model.panoptic_fusion_head has '
                         'no srm (use an SRMFusionHead config)')
    srm_cfg = dict(head_cfg.srm)
    srm_cfg.setdefault('num_things_classes',
                       head_cfg.get('num_things_classes', 80))
    srm = MODELS.build(srm_cfg)
    srm.init_weights()
    return srm


def train_srm(srm: torch.nn.Module,
              dataset: Dataset,
              iters: int,
              batch_size: int,
              lr: float,
              weight_decay: float = 1e-4,
              seed: int = 0,
              workers: int = 0,
              work_dir: Optional[str] = None,
              meta: Optional[dict] = None,
              resume_from: Optional[dict] = None,
              save_interval: int = 500,
              log_interval: int = 50,
              progress: bool = True) -> Dict[str, float]:
    """Train ``srm`` on ``dataset`` (items of :class:`SRMAnnotations`).

    Args:
        srm (nn.Module): A built SpatialRankingModule.
        dataset (Dataset): Items with ``instances`` and ``sem_seg``.
        iters (int): Total steps, counting those of ``resume_from``.
        batch_size (int): Images per step.
        lr (float): Peak AdamW learning rate, cosine-decayed to lr / 100.
        weight_decay (float): AdamW weight decay. Defaults to 1e-4.
        seed (int): Seed of the image order. Defaults to 0.
        workers (int): DataLoader workers. Defaults to 0.
        work_dir (str, optional): Where checkpoints and the log go; nothing
            is written when None.
        meta (dict, optional): Stored in the checkpoints.
        resume_from (dict, optional): A loaded checkpoint with optimiser
            state (:func:`load_srm_checkpoint`).
        save_interval (int): Steps between checkpoints. Defaults to 500.
        log_interval (int): Steps between log lines. Defaults to 50.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        dict: ``last_loss``, ``images``, ``seconds`` (this run, loading
        included), ``images_per_second``, ``mean_pixels`` (per image seen)
        and ``start_iter``.
    """
    optimizer = torch.optim.AdamW(
        srm.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, max(iters, 1), eta_min=lr / 100)
    start_iter = 0
    if resume_from is not None:
        srm.load_state_dict(resume_from['state_dict'])
        optimizer.load_state_dict(resume_from['optimizer'])
        scheduler.load_state_dict(resume_from['scheduler'])
        start_iter = resume_from['meta']['iter']
    meta = dict(meta or {})
    meta.update(iters=iters, batch_size=batch_size, lr=lr, seed=seed)
    log_file = None
    if work_dir is not None:
        os.makedirs(work_dir, exist_ok=True)
        log_file = open(osp.join(work_dir, 'train_srm.log.json'), 'a')

    def save(step: int) -> None:
        if work_dir is None:
            return
        meta['iter'] = step
        path = osp.join(work_dir, f'srm_iter_{step}.pth')
        save_srm_checkpoint(path, srm, meta, optimizer, scheduler)
        latest = osp.join(work_dir, 'srm_latest.pth')
        save_srm_checkpoint(latest, srm, meta, optimizer, scheduler)

    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(len(dataset), seed, start_iter * batch_size),
        num_workers=workers,
        collate_fn=collate_items)
    srm.train()
    bar = ProgressBar(iters - start_iter) if progress else None
    loss = torch.zeros(())
    images = pixels = 0
    start = time.perf_counter()
    batches = iter(loader)
    for step in range(start_iter + 1, iters + 1):
        batch = next(batches)
        samples = as_data_samples(batch)
        loss = srm.loss([item['instances'] for item in batch],
                        samples)['loss_srm']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        images += len(batch)
        pixels += sum(item['sem_seg'].numel() for item in batch)
        if bar is not None:
            bar.update()
        if log_file is not None and (step % log_interval == 0
                                     or step == iters):
            seconds = time.perf_counter() - start
            log_file.write(
                json.dumps(
                    dict(
                        iter=step,
                        loss_srm=round(loss.item(), 5),
                        lr=scheduler.get_last_lr()[0],
                        images_per_second=round(images / seconds, 2))) + '\n')
            log_file.flush()
        if step % save_interval == 0 or step == iters:
            save(step)
    seconds = time.perf_counter() - start
    if bar is not None:
        sys.stdout.write('\n')
    if log_file is not None:
        log_file.close()
    return dict(
        last_loss=loss.item(),
        images=images,
        seconds=seconds,
        images_per_second=images / seconds if seconds > 0 else math.nan,
        mean_pixels=pixels / images if images else math.nan,
        start_iter=start_iter)


def coco_extrapolation(images_per_second: float, mean_pixels: float,
                       coco_pixels: int) -> Tuple[str, str]:
    """Two sentences: one pass over COCO train2017 at the measured rate.

    The first keeps the measured image size; the second scales the time by
    pixels (the work per image, PNG decoding, mask decoding, the SRM grid,
    grows about linearly with them), to ``coco_pixels`` per image.
    """
    same_size = COCO_TRAIN2017_IMAGES / images_per_second
    scale = coco_pixels / mean_pixels
    return (f'one pass over COCO train2017 at this size: '
            f'{COCO_TRAIN2017_IMAGES:,} images / {images_per_second:.2f} '
            f'images/s = {same_size / 60:.1f} min',
            f'scaled by pixels to {coco_pixels:,} px per image (x '
            f'{scale:.2f}): {same_size * scale / 60:.1f} min')


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    schedule = dict(DEFAULT_SCHEDULE)
    schedule.update({
        key: value
        for key, value in cfg.get('srm_train', {}).items() if key in schedule
    })
    for key in schedule:
        if getattr(args, key) is not None:
            schedule[key] = getattr(args, key)
    work_dir = args.work_dir or osp.join(
        'work_dirs',
        osp.splitext(osp.basename(args.config))[0])

    settings = dataset_settings(cfg, args.ins_ann_file)
    dataset = SRMAnnotations(
        settings['panoptic_json'],
        settings['png_dir'],
        settings['instances_json'],
        settings['classes'],
        settings['thing_classes'],
        max_images=args.max_images,
        min_score=args.min_score)
    torch.manual_seed(args.seed)
    srm = build_srm(cfg)
    resume_from = None
    if args.resume:
        path = (
            osp.join(work_dir, 'srm_latest.pth')
            if args.resume == 'auto' else args.resume)
        if not osp.isfile(path):
            raise FileNotFoundError(f'--resume: no SRM checkpoint at {path}')
        resume_from = load_srm_checkpoint(path)
        print(f'resuming from {path} at step {resume_from["meta"]["iter"]}')
    srm_cfg = dict(cfg.model.panoptic_fusion_head.srm)
    srm_cfg['num_things_classes'] = srm.num_things_classes
    meta = dict(
        config=osp.abspath(args.config),
        srm_cfg=srm_cfg,
        thing_classes=settings['thing_classes'],
        instances_json=settings['instances_json'],
        instances_from_results=dataset.from_results,
        images=len(dataset))
    if dataset.from_results:
        meta['min_score'] = args.min_score
    source = (f'predictions scored >= {args.min_score} of'
              if dataset.from_results else 'instance annotations of')
    print(f'SRM: {srm_cfg}\n{len(dataset)} images, {schedule}\n'
          f'{dataset.num_instances} {source} {settings["instances_json"]}')
    stats = train_srm(
        srm,
        dataset,
        schedule['iters'],
        schedule['batch_size'],
        schedule['lr'],
        schedule['weight_decay'],
        seed=args.seed,
        workers=args.workers,
        work_dir=work_dir,
        meta=meta,
        resume_from=resume_from,
        save_interval=args.save_interval,
        log_interval=args.log_interval)
    if stats['images'] == 0:
        print(f'nothing to train: the checkpoint is at step '
              f'{stats["start_iter"]} of {schedule["iters"]}')
        return stats
    print(f'last loss_srm {stats["last_loss"]:.4f}; {stats["images"]} '
          f'images in {stats["seconds"]:.1f} s = '
          f'{stats["images_per_second"]:.2f} images/s at '
          f'{stats["mean_pixels"]:,.0f} px per image '
          f'({args.workers} loading workers)')
    for line in coco_extrapolation(stats['images_per_second'],
                                   stats['mean_pixels'], args.coco_pixels):
        print(line)
    print(f'SRM checkpoint: {osp.join(work_dir, "srm_latest.pth")}')
    return stats


if __name__ == '__main__':
    main()
