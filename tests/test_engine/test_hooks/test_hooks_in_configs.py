"""Every shipped config trains with our hooks; a diverging tiny PanopticFPN
run through tools/train.py stops at a NaN/Inf loss with no NaN checkpoint
as the latest, and its checkpoints hold the category ids."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmoanet.datasets import generate_synthetic_occlusion
from mmoanet.engine import NonFiniteLossError
from mmoanet.utils import load_checkpoint_safely
from tests.utils import REPO_ROOT, load_script, run_main

HOOKS = ('CheckpointMatchHook', 'FiniteLossHook', 'CategoryIdsHook')
CONFIGS = sorted(
    path for path in glob.glob(
        osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in path)
STOCK = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn',
                 'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')


def test_there_are_configs():
    assert len(CONFIGS) > 20


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO_ROOT) for p in CONFIGS])
def test_every_config_lists_our_hooks(path):
    cfg = Config.fromfile(path)
    types = [hook['type'] for hook in cfg.get('custom_hooks', [])]
    assert set(HOOKS) <= set(types), (path, types)


CONFIG_TEMPLATE = """
_base_ = {base!r}
data_root = {root!r}
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(batch_size=1, **loader,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(**loader, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/panoptic_val.json',
    seg_prefix=data_root + 'annotations/panoptic_val/')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=12, val_interval=1000)
optim_wrapper = dict(optimizer=dict(lr=1e4), clip_grad=None)
# Seeded: whether lr 1e4 overflows within 12 iterations depends on the
# initial weights (unseeded, one CI run in two kept a finite loss; seed 0
# does too; seeds 1, 2 and 3 each stopped within the 12).
randomness = dict(seed=1)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=20))
"""


def test_learning_rate_1e4_stops_without_a_nan_checkpoint(tmp_path):
    # Issue 18: lr 1e4 printed loss nan for 20 iterations, saved NaN
    # weights and exited 0.
    root = str(tmp_path / 'data')
    generate_synthetic_occlusion(root, num_train=4, num_val=1, size=64, seed=0)
    config = tmp_path / 'diverge.py'
    config.write_text(CONFIG_TEMPLATE.format(base=STOCK, root=root + '/'))
    work_dir = tmp_path / 'work'
    train = load_script('tools/train.py')
    torch.manual_seed(0)
    with pytest.raises(NonFiniteLossError) as error:
        run_main(train.main, [str(config), '--work-dir', str(work_dir)])
    message = str(error.value)
    assert message.startswith('training stopped at iteration ')
    stopped_at = int(message.split('iteration ')[1].split()[0].rstrip(':'))
    assert 1 <= stopped_at < 12
    saved = sorted(glob.glob(str(work_dir / 'iter_*.pth')))
    numbers = sorted(int(osp.basename(p)[5:-4]) for p in saved)
    # No checkpoint of the stopping iteration or later.
    assert all(number < stopped_at for number in numbers)
    if numbers:
        with open(work_dir / 'last_checkpoint') as f:
            latest = f.read().strip()
        assert latest.endswith(f'iter_{numbers[-1]}.pth')
        checkpoint = load_checkpoint_safely(latest)
        for name, weight in checkpoint['state_dict'].items():
            if weight.is_floating_point():
                assert torch.isfinite(weight).all(), name
        # mmdet's CocoPanopticDataset keeps no ids; CategoryIdsHook does.
        assert checkpoint['meta']['dataset_meta']['cat_ids'] == [
            11, 12, 13, 14, 15, 16, 21, 22, 23, 24
        ]
