"""Evaluate an mmoanet checkpoint.

    python tools/test.py CONFIG CHECKPOINT --eval pq
    python tools/test.py CONFIG CHECKPOINT --eval pq \
        --eval-options classwise=True
    python tools/test.py CONFIG CHECKPOINT --format-only \
        --outfile-prefix work_dirs/test-dev/oanet     # COCO test-dev files
    bash tools/dist_test.sh CONFIG CHECKPOINT 8 --eval pq

With OANet configs the table shows PQ, SQ and RQ (all, things, stuff) for
SRM order and score order of the same predictions side by side.

A checkpoint that lacks a tensor of the model or holds one at another shape
is refused (``CheckpointMatchHook``) unless ``--allow-partial-load`` is
given; bad flags and missing files stop the tool before anything is built.
The outputs (``--out``, ``--outfile-prefix``) are checked before the test
pass (a folder that cannot be written, a parent that is a file, an input
given as output; an existing output needs ``--force``) and written
atomically, so a finished pass is never lost to its write.
"""
import argparse
import os.path as osp

from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmoanet  # noqa: F401  (registers components, safe checkpoints)
from mmoanet.evaluation import DumpPanopticResults
from mmoanet.utils import (EVAL_ALIASES, OutputPathError,
                           add_checkpoint_match_hook, add_launch_args,
                           apply_work_dir, check_output_dir, check_output_file,
                           check_paths_exist, finish_distributed,
                           format_each_config_once, parse_launch_args,
                           prepare_cpu_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) an mmoanet model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs and metrics go')
    parser.add_argument(
        '--out',
        help='dump the predictions to this pickle file (.pkl), compactly: '
        'panoptic maps as PNG, masks as RLE (DumpPanopticResults)')
    parser.add_argument(
        '--eval',
        nargs='+',
        help='metrics as mmdet 2.x names them; "pq" selects '
        'MultiOrderPanopticMetric (the default of OANet configs)')
    parser.add_argument(
        '--eval-options',
        nargs='+',
        action=DictAction,
        help='extra metric arguments, e.g. classwise=True')
    parser.add_argument(
        '--format-only',
        action='store_true',
        help='only write COCO panoptic PNG + JSON (test-dev submission)')
    parser.add_argument(
        '--outfile-prefix',
        help='prefix of the files written by --format-only')
    parser.add_argument(
        '--force',
        action='store_true',
        help='replace an existing --out file or --outfile-prefix output')
    parser.add_argument(
        '--show', action='store_true', help='show predictions in a window')
    parser.add_argument(
        '--show-dir',
        help='save painted predictions under work_dir/timestamp/show_dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='--show interval (s)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation: not supported for panoptic '
        'segmentation (refused with a message)')
    parser.add_argument(
        '--allow-partial-load',
        action='store_true',
        help='evaluate even if the checkpoint lacks tensors of the model or '
        'holds them at other shapes (they keep their initial values; every '
        'such key goes to the log file). Without it such a checkpoint is '
        'refused. Config key: allow_partial_load=True')
    add_launch_args(parser)
    args = parse_launch_args(parser, argv)
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser, args) -> None:
    """Refuse bad flag values before a config, model or checkpoint is read.

    ``parser.error`` prints the usage and the reason and exits with code 2.
    """
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out {args.out}: must end with .pkl (a pickle of '
                     'the predictions); for COCO panoptic JSON and PNGs use '
                     '--format-only --outfile-prefix PREFIX')
    if args.tta:
        parser.error('--tta: test-time augmentation is not supported for '
                     "panoptic segmentation (mmdet's DetTTAModel merges "
                     'boxes and masks, not panoptic maps); test without it')
    unknown = [name for name in args.eval or () if name not in EVAL_ALIASES]
    if unknown:
        parser.error(f'--eval {" ".join(unknown)}: unsupported; use one of '
                     f'{sorted(set(EVAL_ALIASES))}')
    if args.format_only and not args.outfile_prefix:
        parser.error('--format-only needs --outfile-prefix')
    if not osp.isfile(args.config):
        parser.error(f'config {args.config} not found')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint} not found')
    inputs = (args.config, args.checkpoint)
    try:
        if args.out is not None:
            check_output_file(args.out, inputs, args.force, what='--out')
        if args.outfile_prefix:
            check_output_file(f'{args.outfile_prefix}.panoptic.json', inputs,
                              args.force, '--outfile-prefix')
            check_output_dir(f'{args.outfile_prefix}.panoptic', args.force,
                             '--outfile-prefix')
    except OutputPathError as error:
        parser.error(str(error))


def configure_evaluator(cfg: Config, args) -> None:
    """Apply ``--eval``, ``--eval-options`` and ``--format-only``.

    They act on the panoptic metric; other metrics of a list stay as they
    are (``--format-only`` drops them: there is nothing to compare with).
    """
    evaluators = cfg.get('test_evaluator')
    if evaluators is None and not args.eval:
        raise KeyError(f'{args.config} has no test_evaluator; pass --eval pq')
    if not isinstance(evaluators, (list, tuple)):
        evaluators = [evaluators] if evaluators else []
    panoptic_types = set(EVAL_ALIASES.values()) | {'CocoPanopticMetric'}
    index = next(
        (i
         for i, e in enumerate(evaluators) if e.get('type') in panoptic_types),
        None)
    if args.eval:  # names checked by check_args
        metric_type = EVAL_ALIASES[args.eval[0]]
        old = evaluators[index] if index is not None else {}
        if old.get('type') != metric_type:
            keep = {
                k: old[k]
                for k in ('ann_file', 'seg_prefix', 'backend_args') if k in old
            }
            new = ConfigDict(type=metric_type, **keep)
            if index is None:
                evaluators.append(new)
                index = len(evaluators) - 1
            else:
                evaluators[index] = new
    if index is None:
        raise KeyError(f'{args.config}: test_evaluator has no panoptic '
                       'metric; pass --eval pq')
    panoptic = evaluators[index]
    if args.eval_options:
        panoptic.update(args.eval_options)
    if args.format_only:
        panoptic.update(format_only=True, outfile_prefix=args.outfile_prefix)
        evaluators = [panoptic]
    cfg.test_evaluator = evaluators[0] if len(evaluators) == 1 else evaluators


def build_config(args) -> Config:
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    apply_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    if args.allow_partial_load:
        cfg.allow_partial_load = True
    # Refuses a checkpoint of another model when it is loaded.
    add_checkpoint_match_hook(cfg)
    configure_evaluator(cfg, args)
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    check_paths_exist(cfg, ('test_dataloader', ))
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
    if args.out is not None:
        runner.test_evaluator.metrics.append(
            DumpPanopticResults(out_file_path=args.out))
    metrics = runner.test()
    finish_distributed()
    return metrics


if __name__ == '__main__':
    main()
