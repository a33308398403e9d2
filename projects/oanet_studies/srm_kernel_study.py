"""Table 5 the paper's way: one trained detector, only the SRM retrained.

The paper's Table 5 keeps PQ_St at 24.9 in every row: one network, and only
the Spatial Ranking Module changed per convolution setting. Retraining the
whole detector per setting (``srm_evidence.py --cfg-options ...kernel=``)
mixes the kernel's effect with training noise. Under ``train_input='gt'``
the SRM shares no parameter with the network and sees only ground-truth
masks, so it can be trained alone (``tools/train.py
configs/srm/srm_1x7-7x1_1200i_synthetic-occlusion.py`` with the detector's
SRM settings and the setting's kernel and stride; no image goes through a
network) and swapped into one fixed detector. This study does that per
setting and per SRM seed, evaluates the detector's test split with each
SRM (the detector's predictions are the same every time; only the order
changes) and prints a markdown table, mean and sd over the SRM seeds. The
SRM training seconds are those of the whole ``tools/train.py`` process.

    python projects/oanet_studies/srm_kernel_study.py \\
        work_dirs/demo/iter_1200.pth --seeds 0 1 2 \\
        --settings 1x1@4 3x3@4 1x7+7x1@4 1x7+7x1@2 1x7+7x1@1

A setting is ``KERNEL@STRIDE`` or ``1x7+7x1/kK@STRIDE`` (kernel size K of
the large-kernel block, default 7). Its receptive field on the image is
``k * stride`` pixels for a k-cell kernel (1 for ``1x1``, 3 for ``3x3``,
K for ``1xK+Kx1``, whose two paths each cover K x K cells): the paper's
1x7+7x1 on a tensor "of input size" sees 7 pixels; the same block at our
default stride 4 sees 28.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import time
from typing import Dict, List, Tuple

from srm_utils import (SRM_CONFIG, PairSplit, load_trained_srm, pair_accuracy,
                       srm_train_options, train_srm)
from study_utils import REPO_ROOT, mean_sd

CONFIG = osp.join(REPO_ROOT, 'configs', 'oanet',
                  'oanet_r18_fpn_1200i_synthetic-occlusion.py')
DEFAULT_SETTINGS = ['1x1@4', '3x3@4', '1x7+7x1@4', '1x7+7x1@2', '1x7+7x1@1']
# (column title, metric key, format); 'gt_acc' is computed by this tool.
COLUMNS = [
    ('SRM PQ', 'coco_panoptic/srm/PQ', '{:.2f}'),
    ('SRM PQ_th', 'coco_panoptic/srm/PQ_th', '{:.2f}'),
    ('PQ_st', 'coco_panoptic/srm/PQ_st', '{:.2f}'),
    ('detected pairs right %', 'occlusion/srm_acc', '{:.1f}'),
    ('diff-class detected pairs right %', 'occlusion/srm_acc_diff', '{:.1f}'),
    ('GT pairs right %', 'gt_acc', '{:.1f}'),
]


def parse_setting(setting: str) -> Dict:
    """``'1x7+7x1/k15@2'`` -> kernel, kernel_size, stride, receptive field.

    Raises:
        ValueError: for a malformed setting.
    """
    try:
        kernel, stride = setting.split('@')
        kernel_size = 7
        if '/k' in kernel:
            kernel, size = kernel.split('/k')
            kernel_size = int(size)
        stride = int(stride)
    except ValueError:
        raise ValueError(f'setting {setting!r} is not KERNEL@STRIDE or '
                         '1x7+7x1/kK@STRIDE') from None
    cells = {'1x1': 1, '3x3': 3, '1x7+7x1': kernel_size}.get(kernel)
    if cells is None or stride < 1 or kernel_size % 2 == 0:
        raise ValueError(f'setting {setting!r}: kernel must be 1x1, 3x3 or '
                         '1x7+7x1 (odd /kK), stride >= 1')
    name = kernel if kernel_size == 7 or kernel != '1x7+7x1' \
        else f'1x{kernel_size}+{kernel_size}x1'
    return dict(
        setting=setting,
        name=name,
        kernel=kernel,
        kernel_size=kernel_size,
        stride=stride,
        field_px=cells * stride)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='the fixed OANet checkpoint')
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--data-root', default='data/synthetic_occlusion')
    parser.add_argument(
        '--settings', nargs='+', default=DEFAULT_SETTINGS, type=str)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--lr', type=float, default=1e-2, help='SRM learning rate (AdamW)')
    parser.add_argument('--steps', type=int, default=1200)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--work-dir', default='work_dirs/srm_kernel_study')
    return parser.parse_args()


def trained_srm(srm_cfg: dict, setting: Dict, seed: int, args,
                root: str) -> Tuple[object, float]:
    """Train one SRM alone on ground-truth masks (``tools/train.py``).

    Args:
        srm_cfg (dict): the detector's SRM config; the setting's kernel,
            kernel size and stride replace its own.

    Returns:
        tuple: the trained SRM (eval mode) and the training seconds.
    """
    cfg = dict(srm_cfg)
    cfg.update(
        kernel=setting['kernel'],
        kernel_size=setting['kernel_size'],
        stride=setting['stride'])
    overrides = {
        key: value
        for key, value in cfg.items() if key not in ('type', )
    }
    work_dir = osp.join(args.work_dir,
                        f'{setting["setting"].replace("/", "_")}_s{seed}')
    start = time.perf_counter()
    checkpoint, _ = train_srm(
        work_dir,
        srm_train_options(
            root, seed, args.steps, args.lr, args.batch_size, srm=overrides),
        log_file=osp.join(work_dir + '.log'))
    return load_trained_srm(checkpoint, cfg), time.perf_counter() - start


def table(rows: List[Dict], baseline: Dict) -> str:
    """Markdown table, one line per setting (mean ± sd over SRM seeds)."""
    header = ('| SRM setting | stride | receptive field px | seeds | ' +
              ' | '.join(c[0] for c in COLUMNS) + ' | SRM train s |')
    lines = [header, '|---|---:|---:|---:|' + '---:|' * (len(COLUMNS) + 1)]
    cells = [
        fmt.format(baseline[key]) if key in baseline else '-'
        for _, key, fmt in COLUMNS
    ]
    lines.append('| detector\'s own SRM (trained with it) | '
                 f'{baseline["stride"]} | {baseline["field_px"]} | - | ' +
                 ' | '.join(cells) + ' | - |')
    for setting in dict.fromkeys(row['setting'] for row in rows):
        runs = [row for row in rows if row['setting'] == setting]
        first = runs[0]
        cells = [
            mean_sd([run['metrics'][key] for run in runs], fmt)
            for _, key, fmt in COLUMNS
        ]
        seconds = statistics.mean(run['train_s'] for run in runs)
        lines.append(f'| {first["name"]} | {first["stride"]} | '
                     f'{first["field_px"]} | {len(runs)} | ' +
                     ' | '.join(cells) + f' | {seconds:.0f} |')
    return '\n'.join(lines)


def main():
    args = parse_args()
    os.chdir(REPO_ROOT)
    os.makedirs(args.work_dir, exist_ok=True)
    settings = [parse_setting(s) for s in args.settings]
    from mmengine.config import Config

    from mmoanet.apis import build_test_runner
    runner = build_test_runner(args.config, args.checkpoint, args.work_dir)
    model = runner.model
    fusion_head = model.panoptic_fusion_head
    own_srm = fusion_head.srm
    srm_cfg = dict(Config.fromfile(args.config).model.panoptic_fusion_head.srm)
    srm_cfg.setdefault('type', 'SpatialRankingModule')
    srm_cfg['num_things_classes'] = own_srm.num_things_classes
    meta = runner.test_dataloader.dataset.metainfo
    root = osp.join(REPO_ROOT, args.data_root)
    val_split = PairSplit(root, 'val', meta)

    baseline = dict(runner.test())
    baseline.update(
        gt_acc=pair_accuracy(own_srm, val_split)[0],
        stride=own_srm.stride,
        field_px=parse_setting(
            f'{own_srm.kernel}/k{own_srm.kernel_size}@{own_srm.stride}')
        ['field_px'])
    device = next(model.parameters()).device
    rows = []
    out_file = osp.join(args.work_dir, 'srm_kernel_study.json')
    for setting in settings:
        for seed in args.seeds:
            srm, seconds = trained_srm(srm_cfg, setting, seed, args, root)
            gt_acc = pair_accuracy(srm, val_split)[0]
            fusion_head.srm = srm.to(device)
            metrics = dict(runner.test())
            metrics['gt_acc'] = gt_acc
            rows.append(
                dict(**setting, seed=seed, train_s=seconds, metrics=metrics))
            print(
                f'{setting["setting"]} seed {seed}: SRM PQ '
                f'{metrics["coco_panoptic/srm/PQ"]:.2f}, PQ_th '
                f'{metrics["coco_panoptic/srm/PQ_th"]:.2f}, trained in '
                f'{seconds:.0f} s',
                flush=True)
            with open(out_file, 'w') as f:
                json.dump(
                    dict(args=vars(args), baseline=baseline, runs=rows),
                    f,
                    indent=1)
    fusion_head.srm = own_srm
    print(f'\nfixed detector {args.checkpoint}; SRM alone on ground-truth '
          f'masks (tools/train.py {SRM_CONFIG}), AdamW lr {args.lr:g}, '
          f'{args.steps} steps of batch {args.batch_size}; mean ± sd over SRM '
          f'seeds {args.seeds}\n')
    print(table(rows, baseline))
    print(f'\nscore-order PQ of the fixed detector (the same for every '
          f'row): {baseline["coco_panoptic/score/PQ"]:.2f}; all runs in '
          f'{out_file}')


if __name__ == '__main__':
    main()
