"""Class-agnostic against per-class NMS on the same trained OANet.

The R-CNN head's NMS runs at test time only (under the default
``train_input='gt'`` no training step uses it), so one checkpoint can be
tested with both: PanopticFPN's class-agnostic NMS (our default) and Mask
R-CNN's per-class NMS
(``oanet-per-class-nms_r50_fpn_100k_coco-panoptic.py``). Class-agnostic
NMS deletes the lower-scored box of every different-class pair whose boxes
overlap by more than the IoU threshold, i.e. some of the very pairs the SRM
orders. Per checkpoint and NMS, the tool reports PQ_th of both orders, the
share of overlapping ground-truth pairs whose two instances both survive
detection (``occlusion/matched``: both matched among ``pred_instances``,
after NMS, before fusion), both kept in the panoptic output
(``panoptic_occlusion/both_kept``) and the pairs each order ranks right.

    python projects/oanet_studies/nms_study.py \\
        work_dirs/h2h/*/iter_400.pth --work-dir work_dirs/nms_study

The data are the config's test split (the synthetic occlusion set of the
tiny config, whose ``overlaps_val.json`` gives the pairs).
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List

from study_utils import REPO_ROOT, mean_sd

import mmoanet  # noqa: F401
from mmoanet.apis import evaluate_checkpoint

CONFIG = osp.join(REPO_ROOT, 'configs', 'oanet',
                  'oanet_r18_fpn_1200i_synthetic-occlusion.py')
NMS_MODES = {'class-agnostic': True, 'per-class': False}
# (column title, metric key, format)
COLUMNS = [
    ('SRM PQ', 'coco_panoptic/srm/PQ', '{:.2f}'),
    ('SRM PQ_th', 'coco_panoptic/srm/PQ_th', '{:.2f}'),
    ('score PQ_th', 'coco_panoptic/score/PQ_th', '{:.2f}'),
    ('PQ_st', 'coco_panoptic/srm/PQ_st', '{:.2f}'),
    ('pairs both detected %', 'occlusion/matched', '{:.1f}'),
    ('pairs both kept (SRM panoptic) %', 'panoptic_occlusion/both_kept',
     '{:.1f}'),
    ('SRM pairs right %', 'occlusion/srm_acc', '{:.1f}'),
    ('score pairs right %', 'occlusion/score_acc', '{:.1f}'),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoints', nargs='+', help='trained OANet runs')
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/nms_study')
    return parser.parse_args()


def nms_test_options(config: str, class_agnostic: bool) -> Dict:
    """NMS mode, both orders, and the pair metric on the panoptic output."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    evaluators = [dict(e) for e in evaluators]
    panoptic = evaluators[0]
    overlaps = [e for e in evaluators if 'overlaps_file' in e]
    if not overlaps:
        raise ValueError(f'{config}: test_evaluator has no metric with an '
                         'overlaps_file (OcclusionOrderMetric)')
    if not any(e['type'] == 'PanopticOcclusionMetric' for e in evaluators):
        evaluators.append(
            dict(
                type='PanopticOcclusionMetric',
                overlaps_file=overlaps[0]['overlaps_file'],
                ann_file=panoptic['ann_file'],
                seg_prefix=panoptic['seg_prefix']))
    return {
        'model.test_cfg.rcnn.nms.class_agnostic': class_agnostic,
        'model.test_cfg.panoptic.compare_orders': True,
        'test_evaluator': evaluators,
    }


def table(runs: List[Dict]) -> str:
    """Markdown: per checkpoint and NMS mode, then mean ± sd and deltas."""
    lines = [
        '| checkpoint | NMS | ' + ' | '.join(c[0] for c in COLUMNS) + ' |',
        '|---|---|' + '---:|' * len(COLUMNS)
    ]
    for run in runs:
        cells = [fmt.format(run['metrics'][key]) for _, key, fmt in COLUMNS]
        lines.append(f'| {run["checkpoint"]} | {run["nms"]} | ' +
                     ' | '.join(cells) + ' |')
    for mode in NMS_MODES:
        chosen = [run for run in runs if run['nms'] == mode]
        cells = [
            mean_sd([run['metrics'][key] for run in chosen], fmt)
            for _, key, fmt in COLUMNS
        ]
        lines.append(f'| mean ± sd ({len(chosen)}) | {mode} | ' +
                     ' | '.join(cells) + ' |')
    by_checkpoint = {}
    for run in runs:
        by_checkpoint.setdefault(run['checkpoint'], {})[run['nms']] = run
    cells = []
    for _, key, fmt in COLUMNS:
        deltas = [
            pair['per-class']['metrics'][key] -
            pair['class-agnostic']['metrics'][key]
            for pair in by_checkpoint.values()
        ]
        cells.append(mean_sd(deltas, fmt, signed=True))
    lines.append('| mean ± sd | per-class - agnostic | ' + ' | '.join(cells) +
                 ' |')
    return '\n'.join(lines)


def main():
    args = parse_args()
    os.chdir(REPO_ROOT)
    os.makedirs(args.work_dir, exist_ok=True)
    runs = []
    for index, checkpoint in enumerate(args.checkpoints):
        for mode, class_agnostic in NMS_MODES.items():
            metrics = evaluate_checkpoint(
                args.config,
                checkpoint,
                osp.join(args.work_dir, f'{index}_{mode}'),
                cfg_options=nms_test_options(args.config, class_agnostic))
            runs.append(dict(checkpoint=checkpoint, nms=mode, metrics=metrics))
            with open(osp.join(args.work_dir, 'nms_study.json'), 'w') as f:
                json.dump(runs, f, indent=1)
    print('\n' + table(runs))


if __name__ == '__main__':
    main()
