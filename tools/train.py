"""Train an mmoanet model.

    python tools/train.py configs/oanet/oanet_r50_fpn_100k_coco-panoptic.py
    python tools/train.py CONFIG --work-dir DIR --amp --resume
    bash tools/dist_train.sh CONFIG 8          # 8 processes (torchrun)

The flags are mmdet 3.x's, so commands carry over from mmdet unchanged.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmoanet  # noqa: F401  (registers components, safe checkpoints)
from mmoanet.utils import (add_checkpoint_match_hook, add_launch_args,
                           apply_work_dir, check_paths_exist,
                           find_resume_checkpoint, finish_distributed,
                           format_each_config_once, parse_launch_args,
                           prepare_cpu_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an mmoanet model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir when no path is given')
    add_launch_args(parser)
    args = parse_launch_args(parser, argv)
    args.resume_skipped = []  # newer checkpoints --resume passed over
    # Bad paths stop here, before the config's model or data are built.
    if not osp.isfile(args.config):
        parser.error(f'config {args.config} not found')
    if args.resume not in (None, 'auto') and not osp.isfile(args.resume):
        parser.error(f'--resume {args.resume}: no such checkpoint')
    return args


def build_config(args) -> Config:
    """Turn the command line into the Runner's config."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    apply_work_dir(cfg, args.config, args.work_dir)
    load_from = cfg.get('load_from')
    if load_from and '://' not in load_from and not osp.isfile(load_from):
        raise FileNotFoundError(
            f'load_from {load_from}: no such checkpoint (set in '
            f'{args.config} or by --cfg-options load_from=...)')
    if args.amp:
        if not torch.cuda.is_available():
            raise RuntimeError('--amp needs a CUDA GPU: mmengine\'s '
                               'AmpOptimWrapper does not run on the CPU')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise KeyError(f'{args.config} has no auto_scale_lr setting '
                           '(enable and base_batch_size); add one to use '
                           '--auto-scale-lr')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        # Newest complete checkpoint of the work dir, or a fresh start.
        checkpoint = find_resume_checkpoint(
            cfg.work_dir, skipped=getattr(args, 'resume_skipped', None))
        cfg.resume = checkpoint is not None
        cfg.load_from = checkpoint
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    # A warm start logs every skipped or missing key to the log file; a
    # checkpoint to resume from must fit the model (allow_partial_load).
    add_checkpoint_match_hook(cfg)
    check_paths_exist(cfg, ('train_dataloader', 'val_dataloader'))
    return cfg


def main(argv=None):
    args = parse_args(argv)
    format_each_config_once()  # mmengine formats the config 4+ times
    cfg = build_config(args)
    prepare_cpu_distributed(cfg, args.launcher)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    for note in args.resume_skipped:  # into the log file of the run
        runner.logger.warning(f'--resume: {note}')
    runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
