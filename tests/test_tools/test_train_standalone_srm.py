"""tools/train.py configs/srm/...: the SRM trained alone by mmengine's Runner
on a tiny synthetic set, an ordinary mmengine checkpoint out, resumed
exactly and merged into a PanopticFPN checkpoint, and a crafted pickle
given as --resume refused without running."""
import os.path as osp
import re

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from mmoanet.apis import add_srm_to_checkpoint
from mmoanet.datasets import generate_synthetic_occlusion
from mmoanet.utils import (UnsafeCheckpointError, check_checkpoint_matches,
                           load_checkpoint_safely)
from tests.utils import (TINY_PFPN_CONFIG, TINY_PFPN_SRM_CONFIG,
                         TINY_SRM_CONFIG, load_script, log_text, run_main)

train_tool = load_script('tools/train.py')

CONFIG_TEMPLATE = """
_base_ = {base!r}
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={root!r}))
train_cfg = dict(max_iters=6)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3))
"""


@pytest.fixture(scope='module')
def config_path(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    generate_synthetic_occlusion(
        str(root), num_train=6, num_val=2, size=67, seed=5)
    path = tmp_path_factory.mktemp('cfg') / 'srm_cfg.py'
    path.write_text(
        CONFIG_TEMPLATE.format(base=TINY_SRM_CONFIG, root=str(root) + '/'))
    return str(path)


def train(config_path, work_dir, *extra):
    run_main(train_tool.main,
             [config_path, '--work-dir',
              str(work_dir), *extra])


def test_trains_writes_mmengine_checkpoints_and_resumes_exactly(
        config_path, tmp_path):
    straight = tmp_path / 'straight'
    train(config_path, straight)
    for name in ('iter_3.pth', 'iter_6.pth', 'last_checkpoint'):
        assert osp.exists(straight / name)
    final = load_checkpoint_safely(str(straight / 'iter_6.pth'))
    assert final['meta']['iter'] == 6
    assert final['meta']['dataset_meta']['thing_classes']
    assert {'optimizer', 'param_schedulers', 'message_hub'} <= set(final)
    assert final['state_dict'] and all(
        key.startswith('srm.') for key in final['state_dict'])
    first = load_checkpoint_safely(str(straight / 'iter_3.pth'))
    assert any(not torch.equal(first['state_dict'][key], value)
               for key, value in final['state_dict'].items())
    text = log_text(str(straight))
    assert 'loss_srm' in text and 'Iter(train) [6/6]' in text

    # Resumed from step 3 elsewhere: the very same weights at step 6.
    resumed = tmp_path / 'resumed'
    train(config_path, resumed, '--resume', str(straight / 'iter_3.pth'))
    again = load_checkpoint_safely(str(resumed / 'iter_6.pth'))
    assert again['meta']['iter'] == 6
    for key, value in final['state_dict'].items():
        torch.testing.assert_close(
            again['state_dict'][key], value, rtol=0, atol=0)

    # The Runner's checkpoint merges into a stock PanopticFPN checkpoint
    # that then fits the PanopticFPN + SRM model exactly.
    torch.manual_seed(0)
    stock = MODELS.build(Config.fromfile(TINY_PFPN_CONFIG).model)
    stock_path = str(tmp_path / 'stock.pth')
    torch.save(dict(state_dict=stock.state_dict()), stock_path)
    merged_path = str(tmp_path / 'merged.pth')
    summary = add_srm_to_checkpoint(stock_path, str(straight / 'iter_6.pth'),
                                    merged_path)
    assert summary['srm_iter'] == 6
    model = MODELS.build(Config.fromfile(TINY_PFPN_SRM_CONFIG).model)
    check_checkpoint_matches(model, merged_path)
    merged = load_checkpoint_safely(merged_path)
    assert merged['meta']['srm']['srm_cfg']['type'] == 'SpatialRankingModule'
    for key, value in final['state_dict'].items():
        assert torch.equal(merged['state_dict']['panoptic_fusion_head.' + key],
                           value)


class _Payload:
    """Unpickling it would create ``path``: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_a_crafted_resume_checkpoint_is_refused_and_not_run(
        config_path, tmp_path):
    marker = tmp_path / 'payload_ran'
    evil = tmp_path / 'iter_3.pth'
    torch.save(
        dict(
            state_dict=dict(w=torch.zeros(1)),
            meta=dict(iter=3, note=_Payload(str(marker)))), evil)
    with pytest.raises(UnsafeCheckpointError, match=re.escape(str(evil))):
        train(config_path, tmp_path / 'work', '--resume', str(evil))
    assert not marker.exists()
