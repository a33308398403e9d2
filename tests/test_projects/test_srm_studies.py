"""The SRM studies on the package's SRM workflow: an SRM trained by
tools/train.py configs/srm/..., read back and scored on ground-truth pairs
(srm_utils), and the record srm_on_stock_pfpn.py writes."""
import argparse
import json
import os.path as osp
import re

import pytest
import torch

import mmoanet.apis
from mmoanet.datasets import (SYNTHETIC_OCCLUSION_METAINFO,
                              generate_synthetic_occlusion)
from mmoanet.utils import load_checkpoint_safely
from tests.utils import COMMIT_PATTERN, REPO_ROOT, load_script, run_main

srm_utils = load_script('projects/oanet_studies/srm_utils.py')
study_utils = load_script('projects/oanet_studies/study_utils.py')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic'))
    generate_synthetic_occlusion(root, num_train=4, num_val=3, size=48, seed=1)
    return root


def test_options_set_the_schedule_data_and_srm():
    options = srm_utils.srm_train_options(
        'data/x',
        3,
        iters=20,
        lr=0.01,
        batch_size=2,
        workers=0,
        ins_ann_file='/abs/pred.json',
        srm=dict(kernel='3x3', stride=2))
    assert options[:2] == [
        'train_dataloader.dataset.data_root=data/x/', 'randomness.seed=3'
    ]
    for expected in ('train_cfg.max_iters=20', 'param_scheduler.0.T_max=20',
                     'default_hooks.checkpoint.interval=20',
                     'optim_wrapper.optimizer.lr=0.01',
                     'param_scheduler.0.eta_min=0.0001',
                     'train_dataloader.persistent_workers=False',
                     'train_dataloader.dataset.ins_ann_file=/abs/pred.json',
                     'model.srm.kernel=3x3', 'model.srm.stride=2'):
        assert expected in options


def test_train_srm_runs_tools_train_on_the_srm_config(monkeypatch, tmp_path):
    calls = []

    def fake_train(config, work_dir, options, **kwargs):
        calls.append((config, work_dir, list(options), kwargs))
        return osp.join(work_dir, 'iter_2.pth')

    monkeypatch.setattr(mmoanet.apis, 'train_in_subprocess', fake_train)
    options = srm_utils.srm_train_options('data/x', 0, iters=2)
    checkpoint, command = srm_utils.train_srm(
        str(tmp_path / 'srm'), options, log_file='train.log')
    assert checkpoint == str(tmp_path / 'srm' / 'iter_2.pth')
    (config, work_dir, passed, kwargs), = calls
    assert config == osp.join(REPO_ROOT, srm_utils.SRM_CONFIG)
    assert passed == options and kwargs['log_file'] == 'train.log'
    assert kwargs['cwd'] == REPO_ROOT
    assert study_utils.portable_command(command).startswith(
        'python tools/train.py '
        'configs/srm/srm_1x7-7x1_1200i_synthetic-occlusion.py --work-dir ')


def test_an_srm_trained_by_the_runner_ranks_ground_truth_pairs(
        data_root, tmp_path):
    """Two steps of tools/train.py on the SRM config with the options the
    studies pass (in this process here); the checkpoint read back and
    scored on the val split's overlapping pairs."""
    work_dir = str(tmp_path / 'srm')
    options = srm_utils.srm_train_options(
        data_root, 0, iters=2, batch_size=2, workers=0)
    train_tool = load_script('tools/train.py')
    run_main(
        train_tool.main, [
            osp.join(REPO_ROOT, srm_utils.SRM_CONFIG), '--work-dir', work_dir,
            '--cfg-options', *options, 'experiment_name=srm_studies'
        ],
        runner=False)
    checkpoint = osp.join(work_dir, 'iter_2.pth')
    srm = srm_utils.load_trained_srm(checkpoint, srm_utils.srm_config())
    state = load_checkpoint_safely(checkpoint, map_location='cpu')
    for key, value in srm.state_dict().items():
        assert torch.equal(value, state['state_dict']['srm.' + key])
    split = srm_utils.PairSplit(data_root, 'val', SYNTHETIC_OCCLUSION_METAINFO)
    with open(osp.join(data_root, 'annotations', 'overlaps_val.json')) as f:
        pairs = [p for image in json.load(f)['images'] for p in image['pairs']]
    assert pairs, 'the val split should have overlapping pairs'
    right, right_diff = srm_utils.pair_accuracy(srm, split)
    # Ranking both ways round gives the complement on every pair.
    flipped = srm_utils.pair_accuracy(_Negated(srm), split)
    assert 0 <= right <= 100 and 0 <= right_diff <= 100
    assert flipped[0] == pytest.approx(100 - right)
    # A checkpoint without srm.* tensors is refused.
    other = tmp_path / 'other.pth'
    torch.save(dict(state_dict={'backbone.w': torch.zeros(1)}), str(other))
    with pytest.raises(ValueError, match='no srm'):
        srm_utils.load_trained_srm(str(other), srm_utils.srm_config())


class _Negated:
    """An SRM whose rank scores are another's, negated."""

    def __init__(self, srm):
        self.srm = srm

    def rank_scores(self, *args):
        return -self.srm.rank_scores(*args)


def test_srm_on_stock_pfpn_records_the_product_path(tmp_path, monkeypatch):
    """The row of one stock run: train, merge, compare commands as a user
    types them, paths relative to the repository, commit and clean flag."""
    study = load_script('projects/oanet_studies/srm_on_stock_pfpn.py')
    stock_dir = tmp_path / 'stock'
    stock_dir.mkdir()
    (stock_dir / 'eval_pfpn-stock_amodal_spec.json').write_text(
        json.dumps(
            dict(
                config=osp.join(REPO_ROOT, 'work_dirs', 'h2h', 'test.py'),
                checkpoint=osp.join(REPO_ROOT, 'work_dirs', 'h2h',
                                    'iter_400.pth'))))
    stock = dict(
        variant='pfpn-stock',
        style='amodal',
        scene='default',
        seed=1,
        max_iters=400,
        data_root='data/head_to_head/amodal',
        work_dir=str(stock_dir),
        metrics={'coco_panoptic/PQ': 70.0},
        infer_s_per_img=0.1)
    commands = []

    def fake_train_srm(work_dir, options, log_file=None):
        checkpoint = osp.join(work_dir, 'iter_1200.pth')
        return checkpoint, ['python-exe', 'tools/train.py', 'srm.py'
                            ] + list(options)

    def fake_run_command(command, log_file=None, cwd=None):
        commands.append(command)
        if 'compare_fusion_heads.py' in command[1]:
            out = command[command.index('--out') + 1]
            with open(out, 'w') as f:
                json.dump(
                    {
                        'srm-void': {
                            'coco_panoptic/PQ': 72.0
                        },
                        'heuristic': {
                            'coco_panoptic/PQ': 70.0
                        }
                    }, f)

    monkeypatch.setattr(study, 'train_srm', fake_train_srm)
    monkeypatch.setattr(mmoanet.apis, 'run_command', fake_run_command)
    args = argparse.Namespace(
        work_dir=str(tmp_path / 'work'),
        srm_input='gt',
        srm_iters=1200,
        same_class_order='score')
    record = study.upgrade(args, stock)
    assert record['variant'] == 'pfpn-srm-cls'
    assert record['metrics'] == {'coco_panoptic/PQ': 72.0}
    assert record['stock_metrics_same_run'] == {'coco_panoptic/PQ': 70.0}
    merge, compare = commands
    assert merge[1:3] == [
        osp.join(REPO_ROOT, 'tools', 'model_converters',
                 'add_srm_to_panoptic_fpn.py'),
        osp.join(REPO_ROOT, 'work_dirs', 'h2h', 'iter_400.pth')
    ]
    merged = merge[4]
    assert compare[3] == merged and compare[5] == merged
    assert record['srm_merge_command'].startswith(
        'python tools/model_converters/add_srm_to_panoptic_fpn.py '
        'work_dirs/h2h/iter_400.pth ')
    assert record['test_command'].startswith(
        'python projects/oanet_studies/compare_fusion_heads.py '
        'work_dirs/h2h/test.py ')
    assert ('train_dataloader.dataset.data_root=data/head_to_head/amodal/'
            in record['srm_train_command'])
    assert re.fullmatch(COMMIT_PATTERN, record['git_commit'])
    assert isinstance(record['git_dirty'], bool)
    text = json.dumps({
        key: value
        for key, value in record.items() if key != 'work_dir'
    })
    assert REPO_ROOT not in text
    assert 'infer_s_per_img' not in record
