"""Does the SRM order beat the score order? Train several seeds and compare.

For each seed the tiny config is trained on the synthetic occlusion set
(a seed whose work dir already holds a finished run is reused), then its
predictions are fused in both orders and scored: PQ, PQ things and the share
of overlapping pairs whose top instance each order ranks higher. The tool
prints a markdown table (per seed, then mean and standard deviation) and
writes a plot and a JSON file.

    python projects/oanet_studies/srm_evidence.py --seeds 0 1 2 \
        --work-dir work_dirs/srm_evidence

The dataset must exist first (`make demo` or
tools/dataset_converters/make_synthetic_occlusion.py).
"""
import argparse
import json
import os
import os.path as osp
import statistics

from mmengine.config import DictAction
from study_utils import REPO_ROOT, mean_sd

from mmoanet.apis import evaluate_checkpoint, run_options, train_in_subprocess

CONFIG = osp.join(REPO_ROOT, 'configs', 'oanet',
                  'oanet_r18_fpn_1200i_synthetic-occlusion.py')
# (column title, metric key, format)
COLUMNS = [
    ('PQ', 'coco_panoptic/{}/PQ', '{:.2f}'),
    ('PQ_th', 'coco_panoptic/{}/PQ_th', '{:.2f}'),
    ('PQ_st', 'coco_panoptic/{}/PQ_st', '{:.2f}'),
    ('pairs right %', 'occlusion/{}_acc', '{:.1f}'),
    ('diff-class pairs right %', 'occlusion/{}_acc_diff', '{:.1f}'),
]
ORDERS = ('srm', 'score')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-dir', default='work_dirs/srm_evidence')
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument(
        '--max-iters', type=int, help='override the training budget')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='key=value overrides for training and testing, e.g. '
        'model.panoptic_fusion_head.srm.kernel=3x3')
    args = parser.parse_args()
    try:  # a bad budget fails before the first training
        run_options(0, args.max_iters)
    except ValueError as error:
        parser.error(str(error))
    return args


def run_seed(args, seed):
    work_dir = osp.join(args.work_dir, f'seed{seed}')
    options = run_options(seed, args.max_iters) + list(args.cfg_options)
    checkpoint = train_in_subprocess(args.config, work_dir, options)
    test_options = dict(option.split('=', 1) for option in args.cfg_options)
    metrics = evaluate_checkpoint(
        args.config,
        checkpoint,
        osp.join(work_dir, 'test'),
        cfg_options={
            k: DictAction._parse_iterable(v)
            for k, v in test_options.items()
        } or None)
    return dict(seed=seed, checkpoint=checkpoint, metrics=metrics)


def table(runs):
    header = '| seed | order | ' + ' | '.join(c[0] for c in COLUMNS) + ' |'
    lines = [header, '|' + '---|' * (len(COLUMNS) + 2)]
    for run in runs:
        for order in ORDERS:
            cells = [
                fmt.format(run['metrics'][key.format(order)])
                for _, key, fmt in COLUMNS
            ]
            lines.append(f'| {run["seed"]} | {order} | ' + ' | '.join(cells) +
                         ' |')
    for order in ORDERS:
        cells = [
            mean_sd([run['metrics'][key.format(order)] for run in runs], fmt)
            for _, key, fmt in COLUMNS
        ]
        lines.append(f'| mean ± sd | {order} | ' + ' | '.join(cells) + ' |')
    gains = []
    for _, key, fmt in COLUMNS:
        deltas = [
            run['metrics'][key.format('srm')] -
            run['metrics'][key.format('score')] for run in runs
        ]
        gains.append(mean_sd(deltas, signed=True))
    lines.append('| mean ± sd | SRM - score | ' + ' | '.join(gains) + ' |')
    return '\n'.join(lines)


def plot(runs, out_file):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(COLUMNS), figsize=(3 * len(COLUMNS), 3))
    for ax, (title, key, _) in zip(axes, COLUMNS):
        for i, order in enumerate(ORDERS):
            values = [run['metrics'][key.format(order)] for run in runs]
            ax.scatter([i] * len(values), values, label=order)
            ax.errorbar(
                i + 0.15,
                statistics.mean(values),
                yerr=statistics.stdev(values) if len(values) > 1 else 0,
                fmt='_',
                color='k',
                capsize=4)
        ax.set_xticks(range(len(ORDERS)), ORDERS)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(f'SRM vs score order, {len(runs)} seeds (synthetic val)')
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)


def main():
    args = parse_args()
    os.chdir(REPO_ROOT)
    os.makedirs(args.work_dir, exist_ok=True)
    runs = [run_seed(args, seed) for seed in args.seeds]
    with open(osp.join(args.work_dir, 'evidence.json'), 'w') as f:
        json.dump(runs, f, indent=1)
    plot(runs, osp.join(args.work_dir, 'evidence.png'))
    print('\n' + table(runs))
    print(f'\nplot: {osp.join(args.work_dir, "evidence.png")}')


if __name__ == '__main__':
    main()
