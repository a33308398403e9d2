"""The main job end to end on this machine: `make demo`.

1. generate the synthetic occlusion dataset (data/synthetic_occlusion/),
2. train the tiny OANet config from scratch for a fixed budget,
3. evaluate it: PQ/SQ/RQ for SRM order and score order of the same
   predictions, and how often each order puts the right instance on top,
4. plot the losses, paint overlays (score order | SRM order).

Everything lands in work_dirs/demo/. Re-running resumes an interrupted
training and skips the steps already done; `--fresh` starts again.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

# The folder holding tools/ and configs/ (the checkout): the configs'
# relative data paths are resolved against it.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

CONFIG = osp.join(REPO_ROOT, 'configs', 'oanet',
                  'oanet_r18_fpn_1200i_synthetic-occlusion.py')
DATA_ARGS = dict(num_train=400, num_val=100, size=160, seed=0)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--max-iters',
        type=int,
        default=None,
        help='training budget in iterations (default: the config\'s)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--fresh', action='store_true', help='delete work-dir first')
    args = parser.parse_args()
    from mmoanet.apis import run_options
    try:  # a bad budget fails here, before any data is written
        args.train_options = run_options(args.seed, args.max_iters)
    except ValueError as error:
        parser.error(str(error))
    return args


def step(number, text):
    print(f'\n[demo {number}/4] {text}', flush=True)


def make_data(data_root):
    """Generate the dataset unless the same one is already there."""
    from mmoanet.datasets import (generate_synthetic_occlusion,
                                  overlap_statistics)
    stamp = osp.join(data_root, 'mmoanet_demo.json')
    if osp.exists(stamp):
        with open(stamp) as f:
            if json.load(f) == DATA_ARGS:
                print(f'{data_root} is already there, reusing it')
                return
    start = time.time()
    generate_synthetic_occlusion(data_root, **DATA_ARGS)
    for split in ('train', 'val'):
        stats = overlap_statistics(data_root, split)
        print(f'{split}: {stats["num_images"]:.0f} images, '
              f'{stats["images_with_overlap"]:.0%} with overlapping '
              f'instances, {stats["pairs_per_image"]:.1f} pairs per image')
    with open(stamp, 'w') as f:
        json.dump(DATA_ARGS, f)
    print(f'generated in {time.time() - start:.1f} s')


def main():
    args = parse_args()
    os.chdir(REPO_ROOT)
    from mmoanet.apis import (evaluate_checkpoint, order_table,
                              plot_loss_curve, train_in_subprocess)
    if args.fresh and osp.isdir(args.work_dir):
        shutil.rmtree(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    # The tiny config reads this folder.
    data_root = 'data/synthetic_occlusion/'
    started = time.time()

    step(1, f'synthetic occlusion dataset -> {data_root}')
    make_data(data_root)

    step(2, 'training the tiny OANet (ResNet-18, from scratch) on 2 cores')
    train_start = time.time()
    checkpoint = train_in_subprocess(
        CONFIG,
        args.work_dir,
        args.train_options,
        train_script=osp.join(REPO_ROOT, 'tools', 'train.py'),
        cwd=REPO_ROOT)
    train_time = time.time() - train_start
    print(f'checkpoint: {checkpoint} ({train_time / 60:.1f} min)')

    step(3, 'evaluating SRM order and score order of the same predictions')
    # classwise: per-class PQ of both orders as table and bar chart, beside
    # the evaluation log (test/<timestamp>/per_class_pq.*).
    metrics = evaluate_checkpoint(CONFIG, checkpoint,
                                  osp.join(args.work_dir, 'test'),
                                  {'test_evaluator.0.classwise': True})
    with open(osp.join(args.work_dir, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=1)
    table = order_table(metrics)

    step(4, 'loss curve and overlays')
    curve = plot_loss_curve(args.work_dir,
                            osp.join(args.work_dir, 'loss_curve.png'))
    inputs = osp.join(args.work_dir, 'overlay_inputs')
    os.makedirs(inputs, exist_ok=True)
    for path in sorted(glob.glob(osp.join(data_root, 'val', '*')))[:6]:
        shutil.copy(path, inputs)
    # The tiny config predicts both orders; PanopticLocalVisualizer draws
    # them side by side.
    subprocess.run([
        sys.executable, 'tools/inference.py', inputs, CONFIG, '--weights',
        checkpoint, '--out-dir',
        osp.join(args.work_dir, 'overlays'), '--device', 'cpu'
    ],
                   check=True)

    print('\n' + '=' * 72)
    print(f'OANet tiny demo: {checkpoint}')
    print(f'val: {DATA_ARGS["num_val"]} synthetic images; same predictions, '
          'two fusion orders\n')
    print(table)
    print(f'\nloss curve: {curve}')
    print(f'overlays (score order | SRM order): '
          f'{osp.join(args.work_dir, "overlays", "vis")}')
    print(f'metrics: {osp.join(args.work_dir, "metrics.json")}')
    print('per-class PQ (table, bar chart): '
          f'{osp.join(args.work_dir, "test", "*", "per_class_pq.*")}')
    print(f'total time: {(time.time() - started) / 60:.1f} min '
          f'(training {train_time / 60:.1f} min)')


if __name__ == '__main__':
    main()
