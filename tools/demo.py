"""The main job end to end on this machine: ``make demo``.

The project's story in one run, on one data set and one budget, each step
the command a user types:

1. data: ``tools/dataset_converters/make_synthetic_occlusion.py`` writes
   the head-to-head's set (amodal masks, 160 px, 300 train / 100 val,
   seed 0) to ``data/synthetic_occlusion/``, the folder the tiny configs
   read;
2. stock PanopticFPN, as mmdet ships it: ``tools/train.py``, then
   ``tools/test.py --eval pq``;
3. PanopticFPN + SRM, the product path: an SRM trained alone by
   ``tools/train.py configs/srm/...``, merged into the stock checkpoint of
   step 2 by ``tools/model_converters/add_srm_to_panoptic_fpn.py``, tested
   with ``configs/panoptic_fpn_srm/``;
4. full OANet: trained, then tested once for both fusion orders (SRM and
   detection score) of the same predictions;
5. overlays of both models that have two orders, score order | SRM order
   (``tools/inference.py``), and loss curves.

Both networks train for the head-to-head's standard budget (400 iterations
of batch 4, a linear warm-up of min(50, N // 10) iterations, then a cosine
decay to 1e-5, all set by ``--cfg-options``), so the final table compares
with the README's. Everything lands in ``--work-dir``; a rerun skips each
step already done by the same command, ``--fresh`` starts again. Run it
from the folder that holds ``data/`` (the checkout for ``make demo``).
"""
import argparse
import glob
import json
import os
import os.path as osp
import shlex
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from mmoanet.apis import plot_loss_curve

TOOLS = osp.dirname(osp.abspath(__file__))
CONFIGS = osp.join(osp.dirname(TOOLS), 'configs')
STOCK = 'panoptic_fpn/panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py'
SRM = 'srm/srm_1x7-7x1_1200i_synthetic-occlusion.py'
PFPN_SRM = ('panoptic_fpn_srm/'
            'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py')
OANET = 'oanet/oanet_r18_fpn_1200i_synthetic-occlusion.py'
# The tiny configs read this folder; the head-to-head's default scene.
DATA_ROOT = osp.join('data', 'synthetic_occlusion')
DATA_ARGS = dict(
    ann_style='amodal', num_train=300, num_val=100, size=160, seed=0)
# (row of the final table, test step, metric key of its PQ family)
ROWS = [('stock PanopticFPN', 'test_stock', 'coco_panoptic'),
        ('PanopticFPN + SRM', 'test_pfpn_srm', 'coco_panoptic'),
        ('full OANet, SRM order', 'test_oanet', 'coco_panoptic/srm'),
        ('full OANet, score order', 'test_oanet', 'coco_panoptic/score')]
TITLES = dict(
    data='synthetic occlusion set -> ' + DATA_ROOT,
    train_stock='training stock PanopticFPN',
    test_stock='testing stock PanopticFPN',
    train_srm='training the SRM alone, from the amodal annotations',
    merge='adding the SRM to the stock checkpoint',
    test_pfpn_srm='testing PanopticFPN + SRM',
    train_oanet='training full OANet',
    test_oanet='testing OANet: SRM order and score order',
    overlays_pfpn_srm='PanopticFPN + SRM overlays, score | SRM order',
    overlays_oanet='OANet overlays, score order | SRM order')
# Placeholder of the merge command until the SRM is trained.
SRM_CKPT = '<last checkpoint of train_srm>'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'demo'))
    parser.add_argument(
        '--max-iters',
        type=int,
        default=400,
        help='iterations of each network (the head-to-head\'s standard '
        'budget: 400)')
    parser.add_argument(
        '--srm-iters',
        type=int,
        help='steps of the SRM alone (default: its config\'s)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of every training')
    parser.add_argument(
        '--fresh', action='store_true', help='delete the work dir first')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='print the commands of every step and exit')
    args = parser.parse_args(argv)
    for flag in ('max_iters', 'srm_iters'):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f'--{flag.replace("_", "-")} {value}: must be at '
                         'least 1')
    return args


def config(name: str) -> str:
    return osp.relpath(osp.join(CONFIGS, name))


def tool(name: str) -> List[str]:
    return [sys.executable, osp.relpath(osp.join(TOOLS, name))]


def budget(max_iters: int, seed: int) -> List[str]:
    """``--cfg-options`` of a network: the head-to-head's schedule.

    Validation is off during training; the test step scores the model.
    """
    warmup = max(1, min(50, max_iters // 10))
    log_every = max(1, min(20, max_iters // 10))
    return [
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters}', 'val_cfg=None',
        'val_dataloader=None', 'val_evaluator=None',
        f'param_scheduler.0.end={warmup}', f'param_scheduler.1.begin={warmup}',
        f'param_scheduler.1.end={max_iters}',
        f'param_scheduler.1.T_max={max(max_iters - warmup, 1)}',
        f'default_hooks.checkpoint.interval={min(300, max_iters)}',
        f'default_hooks.logger.interval={log_every}',
        f'log_processor.window_size={log_every}', f'randomness.seed={seed}'
    ]


def plan(args) -> Dict[str, List[str]]:
    """Every step's command, in order (``SRM_CKPT`` is filled in)."""
    work = args.work_dir
    train_net = budget(args.max_iters, args.seed)
    stock_ckpt = osp.join(work, 'stock', f'iter_{args.max_iters}.pth')
    oanet_ckpt = osp.join(work, 'oanet', f'iter_{args.max_iters}.pth')
    merged = osp.join(work, 'pfpn_srm', 'panoptic-fpn-srm.pth')
    srm_options = [f'randomness.seed={args.seed}']
    if args.srm_iters:  # its cosine decay ends with it
        n = args.srm_iters
        srm_options += [
            f'train_cfg.max_iters={n}', f'param_scheduler.0.end={n}',
            f'param_scheduler.0.T_max={n}',
            f'default_hooks.checkpoint.interval={n}'
        ]
    data = ['--out', DATA_ROOT]
    for key, value in DATA_ARGS.items():
        data += [f'--{key.replace("_", "-")}', str(value)]
    data.append('--force')  # the data step runs when the stamp differs
    return {
        'data':
        tool('dataset_converters/make_synthetic_occlusion.py') + data,
        'train_stock':
        tool('train.py') + [
            config(STOCK), '--work-dir',
            osp.join(work, 'stock'), '--resume', '--cfg-options', *train_net
        ],
        'test_stock':
        tool('test.py') + [
            config(STOCK), stock_ckpt, '--eval', 'pq', '--work-dir',
            osp.join(work, 'stock', 'test'), '--eval-options', 'classwise=True'
        ],
        'train_srm':
        tool('train.py') + [
            config(SRM), '--work-dir',
            osp.join(work, 'srm'), '--resume', '--cfg-options', *srm_options
        ],
        'merge':
        tool('model_converters/add_srm_to_panoptic_fpn.py') +
        [stock_ckpt, SRM_CKPT, merged, '--force'],
        'test_pfpn_srm':
        tool('test.py') + [
            config(PFPN_SRM), merged, '--eval', 'pq', '--work-dir',
            osp.join(work, 'pfpn_srm', 'test'), '--eval-options',
            'classwise=True'
        ],
        'train_oanet':
        tool('train.py') + [
            config(OANET), '--work-dir',
            osp.join(work, 'oanet'), '--resume', '--cfg-options', *train_net
        ],
        'test_oanet':
        tool('test.py') + [
            config(OANET), oanet_ckpt, '--eval', 'pq', '--work-dir',
            osp.join(work, 'oanet', 'test'), '--eval-options', 'classwise=True'
        ],
        'overlays_pfpn_srm':
        tool('inference.py') + [
            osp.join(work, 'overlay_inputs'),
            config(PFPN_SRM), '--weights', merged, '--out-dir',
            osp.join(work, 'pfpn_srm', 'overlays'), '--device', 'cpu',
            '--force'
        ],
        'overlays_oanet':
        tool('inference.py') + [
            osp.join(work, 'overlay_inputs'),
            config(OANET), '--weights', oanet_ckpt, '--out-dir',
            osp.join(work, 'oanet', 'overlays'), '--device', 'cpu', '--force'
        ],
    }


def newest_test_metrics(test_dir: str) -> Dict[str, float]:
    """Metrics of the newest run in a ``tools/test.py`` work dir.

    mmengine's ``LoggerHook`` writes them to ``<timestamp>/<timestamp>.json``.
    """
    logs = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    logs = [
        p for p in logs
        if osp.basename(osp.dirname(p)) + '.json' == osp.basename(p)
    ]
    if not logs:
        raise FileNotFoundError(f'no metrics of tools/test.py in {test_dir}')
    with open(logs[-1]) as f:
        return json.load(f)


def read_json(path: str) -> Optional[dict]:
    """A JSON file the demo wrote, or None where there is none."""
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_step(name: str, command: List[str], done_dir: str) -> dict:
    """Run a command unless the same one finished before; return its record.

    Raises:
        SystemExit: the command failed; its output is above.
    """
    marker = osp.join(done_dir, f'{name}.json')
    record = read_json(marker)  # main() drops the data's if it changed
    if record is not None and record['command'] == command:
        print(f'done before (in {record["seconds"]:.0f} s), skipped')
        return record
    print(f'$ {shlex.join(command)}', flush=True)
    start = time.perf_counter()
    result = subprocess.run(command)
    if result.returncode != 0:
        sys.exit(f'demo: step {name} failed (exit {result.returncode})')
    record = dict(command=command, seconds=time.perf_counter() - start)
    if name.startswith('test_'):
        record['metrics'] = newest_test_metrics(
            command[command.index('--work-dir') + 1])
    os.makedirs(done_dir, exist_ok=True)
    with open(marker, 'w') as f:
        json.dump(record, f, indent=1)
    return record


def final_table(records: Dict[str, dict]) -> str:
    """Markdown: PQ, PQ_th, PQ_st of every model and its ΔPQ vs stock."""
    stock = records['test_stock']['metrics']['coco_panoptic/PQ']
    lines = [
        '| model | PQ | PQ_th | PQ_st | ΔPQ vs stock |',
        '|---|---:|---:|---:|---:|'
    ]
    for label, step, family in ROWS:
        metrics = records[step]['metrics']
        pq = metrics[f'{family}/PQ']
        delta = '-' if step == 'test_stock' else f'{pq - stock:+.2f}'
        lines.append(f'| {label} | {pq:.2f} | '
                     f'{metrics[family + "/PQ_th"]:.2f} | '
                     f'{metrics[family + "/PQ_st"]:.2f} | {delta} |')
    return '\n'.join(lines)


def source_commit() -> dict:
    """The checkout's commit and whether its tree was clean, if in git."""
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'],
                                cwd=TOOLS,
                                capture_output=True,
                                text=True,
                                check=True).stdout.strip()
        status = subprocess.run(['git', 'status', '--porcelain'],
                                cwd=TOOLS,
                                capture_output=True,
                                text=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return dict(commit=None, clean=None)
    return dict(commit=commit, clean=not status.strip())


def summary_line(records: Dict[str, dict]) -> str:
    """One sentence on what the table shows, from its numbers."""
    stock = records['test_stock']['metrics']
    upgraded = records['test_pfpn_srm']['metrics']
    oanet = records['test_oanet']['metrics']
    gain, things, stuff = (
        upgraded[f'coco_panoptic/{key}'] - stock[f'coco_panoptic/{key}']
        for key in ('PQ', 'PQ_th', 'PQ_st'))
    orders = oanet['coco_panoptic/srm/PQ'] - oanet['coco_panoptic/score/PQ']
    versus = oanet['coco_panoptic/srm/PQ'] - stock['coco_panoptic/PQ']
    return (f'The same stock detections laid in SRM order: {gain:+.2f} PQ '
            f'(PQ_th {things:+.2f}, PQ_st {stuff:+.2f}); OANet\'s SRM order: '
            f'{orders:+.2f} PQ over its own score order, {versus:+.2f} '
            'against stock PanopticFPN.')


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    steps = plan(args)
    if args.dry_run:
        for name, command in steps.items():
            print(f'{name}: {shlex.join(command)}')
        return
    # The data is reused while it carries the demo's settings; models
    # trained on other data are not.
    stamp = osp.join(DATA_ROOT, 'mmoanet_demo.json')
    data_ready = read_json(stamp) == DATA_ARGS
    done_dir = osp.join(args.work_dir, 'steps')
    if osp.isdir(args.work_dir) and os.listdir(args.work_dir):
        if not osp.isdir(done_dir):  # never delete what the demo did not make
            sys.exit(f'demo: {args.work_dir} is not a work dir of the demo '
                     '(no steps/ in it); choose another --work-dir')
        if args.fresh or not data_ready:
            print(f'removing {args.work_dir}', flush=True)
            shutil.rmtree(args.work_dir)
    os.makedirs(done_dir, exist_ok=True)  # marks the work dir as the demo's
    started = time.perf_counter()
    records, seconds = {}, {}
    for number, (name, command) in enumerate(steps.items(), 1):
        print(f'\n[demo {number}/{len(steps)}] {TITLES[name]}', flush=True)
        if name == 'merge':
            with open(osp.join(args.work_dir, 'srm', 'last_checkpoint')) as f:
                command[command.index(SRM_CKPT)] = osp.relpath(
                    f.read().strip())
        if name.startswith('overlays'):  # the first six validation images
            os.makedirs(command[2], exist_ok=True)
            for path in sorted(glob.glob(osp.join(DATA_ROOT, 'val',
                                                  '*.jpg')))[:6]:
                shutil.copy(path, command[2])
        step_start = time.perf_counter()
        if name == 'data' and data_ready:
            print(f'{DATA_ROOT} holds the demo\'s data, reused')
            records[name] = dict(command=command, seconds=0.0)
        else:
            records[name] = run_step(name, command, done_dir)
        seconds[name] = time.perf_counter() - step_start
        if name == 'data':
            with open(stamp, 'w') as f:
                json.dump(DATA_ARGS, f)
        print(f'[demo] {name}: {seconds[name]:.0f} s', flush=True)
    curves = []
    for run in ('stock', 'srm', 'oanet'):
        try:
            curves.append(
                plot_loss_curve(
                    osp.join(args.work_dir, run),
                    osp.join(args.work_dir, run, 'loss_curve.png')))
        except FileNotFoundError:  # a run shorter than a logger interval
            pass
    total = time.perf_counter() - started

    table, line = final_table(records), summary_line(records)
    with open(osp.join(args.work_dir, 'demo_results.json'), 'w') as f:
        json.dump(
            dict(
                table=table,
                summary=line,
                step_seconds={
                    k: round(v, 1)
                    for k, v in seconds.items()
                },
                total_seconds=round(total, 1),
                max_iters=args.max_iters,
                srm_iters=args.srm_iters,
                seed=args.seed,
                data=dict(DATA_ARGS, root=DATA_ROOT),
                metrics={
                    k: r['metrics']
                    for k, r in records.items() if 'metrics' in r
                },
                **source_commit()),
            f,
            indent=1)
    print('\n' + '=' * 72)
    print(f'{DATA_ARGS["num_val"]} val images of the synthetic occlusion set '
          f'(amodal, {DATA_ARGS["size"]} px); each network trained '
          f'{args.max_iters} iterations, seed {args.seed}\n')
    print(table + '\n\n' + line + '\n')
    print('wall time: ' + ', '.join(f'{k} {v:.0f} s'
                                    for k, v in seconds.items()) +
          f'; total {total / 60:.1f} min (a step done before: 0 s)')
    print(f'loss curves: {", ".join(curves)}')
    print('overlays (score order | SRM order): ' + ', '.join(
        osp.join(args.work_dir, run, 'overlays', 'vis')
        for run in ('pfpn_srm', 'oanet')))
    print(f'results: {osp.join(args.work_dir, "demo_results.json")}')


if __name__ == '__main__':
    main()
