"""tools/train.py and tools/test.py end to end on a tiny synthetic set.

Covers: training, a run killed mid-way that resumes from its last
checkpoint, `--eval pq` with both fusion orders, `--out`, `--format-only`,
`--show-dir`, 2-process CPU training through torchrun, and the early errors
for a missing dataset folder, a checkpoint of another model and a dataset
without panoptic ground truth.

What only a command line shows runs in a fresh interpreter, as a user would
(the killed training, one tools/test.py command, the 2-process training);
the rest calls the tools' ``main(argv)`` in this process, which saves the
seconds of imports per call.
"""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from mmoanet.datasets import generate_synthetic_occlusion
from mmoanet.evaluation import load_panoptic_dump
from mmoanet.utils import CheckpointMismatchError, load_checkpoint_safely
from tests.utils import (REPO_ROOT, load_script, log_sizes, log_text, run_main,
                         run_tool)

test_tool = load_script('tools/test.py')
train_tool = load_script('tools/train.py')

TINY = osp.join(REPO_ROOT, 'configs/oanet/'
                'oanet_r18_fpn_1200i_synthetic-occlusion.py')

# Shrinks the tiny config further: a test trains a handful of iterations.
CONFIG_TEMPLATE = """
_base_ = {base!r}
data_root = {root!r}
model = dict(test_cfg=dict(rcnn=dict(score_thr=0.0)))
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=1, **loader,
    dataset=dict(data_root=data_root))
val_dataloader = dict(**loader, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/panoptic_val.json',
    seg_prefix=data_root + 'annotations/panoptic_val/')
test_evaluator = [
    dict(type='MultiOrderPanopticMetric', **val_evaluator),
    dict(type='OcclusionOrderMetric',
         overlaps_file=data_root + 'annotations/overlaps_val.json',
         ins_ann_file=data_root + 'annotations/instances_val.json')
]
train_cfg = dict(max_iters={max_iters}, val_interval=1000)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=2, max_keep_ckpts=10))
"""


def write_config(tmp_path, root, max_iters, name='cfg.py'):
    path = tmp_path / name
    path.write_text(
        CONFIG_TEMPLATE.format(
            base=TINY, root=root + '/', max_iters=max_iters))
    return str(path)


def loads(path):
    try:
        load_checkpoint_safely(path)
    except Exception:
        return False
    return True


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    generate_synthetic_occlusion(
        str(root), num_train=6, num_val=3, size=96, seed=1)
    return str(root)


@pytest.fixture(scope='module')
def trained(tmp_path_factory, data_root):
    """Kill a 6-iteration run after its iteration-2 checkpoint, resume.

    The killed run is a real process; the resume runs in this process and
    its part of the work dir's log files is kept.
    """
    tmp_path = tmp_path_factory.mktemp('train')
    config = write_config(tmp_path, data_root, max_iters=6)
    work_dir = str(tmp_path / 'work')
    proc = subprocess.Popen(
        [sys.executable, 'tools/train.py', config, '--work-dir', work_dir],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    # mmengine names a checkpoint in `last_checkpoint` once it is saved.
    while not osp.exists(osp.join(work_dir, 'last_checkpoint')):
        assert proc.poll() is None, 'training stopped before a checkpoint'
        assert time.time() < deadline, 'no checkpoint within 240 s'
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not osp.exists(osp.join(work_dir, 'iter_6.pth'))
    last_saved = max(
        int(osp.basename(path)[len('iter_'):-len('.pth')])
        for path in glob.glob(osp.join(work_dir, 'iter_*.pth')) if loads(path))

    # The killed run's log stays; only what the resume adds is its log.
    before = log_sizes(work_dir)
    run_main(train_tool.main, [config, '--work-dir', work_dir, '--resume'])
    return dict(
        config=config,
        work_dir=work_dir,
        last_saved=last_saved,
        log=log_text(work_dir, since=before))


def test_killed_run_resumes_from_its_last_checkpoint(trained):
    log = trained['log']
    assert f'resumed epoch: 0, iter: {trained["last_saved"]}' in log
    # Training went on from there, not from scratch.
    assert 'Iter(train) [1/6]' not in log
    assert f'Iter(train) [{trained["last_saved"] + 1}/6]' in log
    final = load_checkpoint_safely(osp.join(trained['work_dir'], 'iter_6.pth'))
    assert final['meta']['iter'] == 6
    # The loss history runs through the kill: one entry per iteration.
    history = final['message_hub']['log_scalars']['train/loss']
    assert len(history.data[0]) == 6


def test_test_tool_reports_both_orders(trained, tmp_path):
    out = str(tmp_path / 'preds.pkl')
    result = run_tool('tools/test.py', trained['config'],
                      osp.join(trained['work_dir'],
                               'iter_6.pth'), '--work-dir', str(tmp_path),
                      '--eval', 'pq', '--out', out, '--show-dir', 'painted',
                      '--eval-options', 'classwise=True')
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    for key in ('coco_panoptic/PQ:', 'coco_panoptic/srm/PQ_th:',
                'coco_panoptic/score/PQ_th:', 'coco_panoptic/score/RQ_st:'):
        assert key in log
    # --out: compact (PNG maps, RLE masks) and lossless.
    predictions = load_panoptic_dump(out)
    assert len(predictions) == 3
    pan = predictions[0]['pred_panoptic_seg']['sem_seg']
    assert pan.shape == (96, 96) and pan.dtype == np.int64
    assert isinstance(predictions[0]['pred_instances']['masks'], list)
    # --show-dir: one picture per image, ground truth | score | SRM order.
    painted = glob.glob(osp.join(str(tmp_path), '*', 'painted', '*'))
    assert len(painted) == 3
    picture = cv2.imread(painted[0])
    assert picture.shape[1] == 3 * 96 and picture.shape[0] > 96
    # classwise=True: per-class PQ of both orders beside the log.
    for name in ('per_class_pq.csv', 'per_class_pq.md', 'per_class_pq.png'):
        assert glob.glob(osp.join(str(tmp_path), '*', name)), name


def test_format_only_writes_a_submission(trained, tmp_path):
    prefix = str(tmp_path / 'submission')
    run_main(test_tool.main, [
        trained['config'],
        osp.join(trained['work_dir'], 'iter_6.pth'), '--work-dir',
        str(tmp_path), '--format-only', '--outfile-prefix', prefix
    ])
    with open(prefix + '.panoptic.json') as f:
        submission = json.load(f)
    assert len(submission['annotations']) == 3


def test_checkpoint_of_another_model_is_refused(trained, tmp_path):
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'fc.weight': torch.zeros(2, 2)}}, other)
    with pytest.raises(
            CheckpointMismatchError, match='does not fit the model') as info:
        run_main(test_tool.main,
                 [trained['config'],
                  str(other), '--work-dir',
                  str(tmp_path)])
    assert str(other) in str(info.value)


def test_missing_dataset_folder_is_named(tmp_path):
    config = write_config(tmp_path, str(tmp_path / 'no_such_data'), 2)
    with pytest.raises(FileNotFoundError) as info:
        run_main(train_tool.main,
                 [config, '--work-dir',
                  str(tmp_path / 'work')])
    assert 'train_dataloader.dataset.data_root' in str(info.value)
    assert 'no_such_data' in str(info.value)


def test_dataset_without_panoptic_ground_truth_stops_early(
        trained, data_root, tmp_path):
    # A test-dev style annotation file: images, no annotations.
    with open(osp.join(data_root, 'annotations', 'panoptic_val.json')) as f:
        info = json.load(f)
    image_info = dict(images=info['images'], categories=info['categories'])
    ann = tmp_path / 'image_info.json'
    ann.write_text(json.dumps(image_info))
    config = tmp_path / 'no_gt.py'
    config.write_text(
        f'_base_ = {trained["config"]!r}\n'
        f'test_dataloader = dict(dataset=dict(ann_file={str(ann)!r}))\n'
        f'test_evaluator = dict(_delete_=True, '
        f'type="MultiOrderPanopticMetric", '
        f'ann_file={str(ann)!r})\n')
    with pytest.raises(ValueError, match='panoptic ground truth'):
        run_main(test_tool.main, [
            str(config),
            osp.join(trained['work_dir'], 'iter_6.pth'), '--work-dir',
            str(tmp_path)
        ])


def test_two_process_cpu_training(data_root, tmp_path):
    config = write_config(tmp_path, data_root, max_iters=2)
    work_dir = str(tmp_path / 'work')
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    result = run_tool(
        '-m',
        'torch.distributed.run',
        '--nproc_per_node=2',
        '--master_port=29613',
        'tools/train.py',
        config,
        '--work-dir',
        work_dir,
        '--launcher',
        'pytorch',
        env=env,
        timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'Distributed training: True' in log
    assert 'dist_cfg=dict(backend=\'gloo\')' in log
    # Rank 0 reached the last iteration: DDP would hang if rank 1 had not.
    assert log.count('Iter(train) [2/2]') >= 1
    assert osp.exists(osp.join(work_dir, 'iter_2.pth'))
