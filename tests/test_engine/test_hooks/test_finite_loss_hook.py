"""FiniteLossHook stops a real mmengine Runner at the first NaN/Inf loss,
naming iteration and term, and no checkpoint of NaN weights is saved;
CategoryIdsHook keeps the training set's category ids in checkpoints."""
import glob
import logging
import math
import os.path as osp
import time

import pytest
import torch
import torch.nn as nn
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Dataset

import mmoanet  # noqa: F401  (registers the hooks)
from mmoanet.engine import FiniteLossHook, NonFiniteLossError
from mmoanet.utils import load_checkpoint_safely


class ToyModel(BaseModel):
    """Two loss terms; the data can make the second one NaN or Inf."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, inputs, data_samples=None, mode='loss'):
        x = torch.stack(inputs)
        return dict(
            loss_fit=(self.linear(x[:, :1])**2).mean(),
            loss_aux=(x[:, 1:] * self.linear.weight).abs().mean(),
            acc=torch.tensor(float('nan')))  # not a loss: not checked


class ToyDataset(Dataset):
    """Item ``bad`` carries ``bad_value`` in its input."""

    def __init__(self, bad=None, bad_value=float('nan'), length=20):
        self.bad, self.bad_value, self.length = bad, bad_value, length
        self.cat_ids = [7, 3]
        self._metainfo = dict(classes=('a', 'b'))

    @property
    def metainfo(self):
        return dict(self._metainfo)

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        x = torch.tensor([1.0, 0.5])
        if index == self.bad:
            x[1] = self.bad_value
        return dict(inputs=x)


def make_runner(work_dir,
                dataset,
                lr=0.01,
                hooks=None,
                resume=False,
                max_iters=6):
    loader = DataLoader(
        dataset, batch_size=1, shuffle=False, collate_fn=pseudo_collate)
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=hooks if hooks is not None else
        [dict(type='FiniteLossHook'),
         dict(type='CategoryIdsHook')],
        resume=resume,
        default_scope='mmdet',
        experiment_name=f'toy_{time.time_ns()}')


def last_checkpoint(work_dir) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


@pytest.mark.parametrize('bad_value', [float('nan'), float('inf')])
def test_stops_at_the_iteration_of_the_bad_loss(tmp_path, bad_value):
    # Item 3 (the 4th iteration) makes loss_aux (and the total) not finite.
    runner = make_runner(tmp_path, ToyDataset(bad=3, bad_value=bad_value))
    with pytest.raises(NonFiniteLossError) as error:
        runner.train()
    message = str(error.value)
    shown = 'nan' if math.isnan(bad_value) else 'inf'
    assert message.startswith(
        'training stopped at iteration 4: loss not finite: '
        f'loss={shown}, loss_aux={shown} (finite: loss_fit=')
    assert 'acc' not in message
    # iter_1..3 saved, not iter_4; the latest is iter_3 and it is finite.
    saved = sorted(
        osp.basename(path) for path in glob.glob(str(tmp_path / '*.pth')))
    assert saved == ['iter_1.pth', 'iter_2.pth', 'iter_3.pth']
    assert last_checkpoint(tmp_path).endswith('iter_3.pth')
    weights = load_checkpoint_safely(last_checkpoint(tmp_path))['state_dict']
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_huge_learning_rate_stops_without_nan_checkpoint(tmp_path):
    # lr 1e4 (issue 18): the weights and then the loss overflow within a few
    # steps; training stops there and the latest checkpoint is finite.
    runner = make_runner(tmp_path, ToyDataset(), lr=1e30, max_iters=20)
    with pytest.raises(
            NonFiniteLossError, match='training stopped at '
            'iteration [0-9]+'):
        runner.train()
    saved = glob.glob(str(tmp_path / 'iter_*.pth'))
    assert len(saved) < 20
    if saved:
        latest = load_checkpoint_safely(last_checkpoint(tmp_path))
        assert all(
            torch.isfinite(w).all() for w in latest['state_dict'].values())


def test_nan_weights_are_not_saved(tmp_path):
    hook = FiniteLossHook()
    state = dict(
        a=torch.ones(2),
        b=torch.tensor([1.0, float('nan')]),
        steps=torch.tensor([3]))
    with pytest.raises(
            NonFiniteLossError,
            match=r'iteration 5 \(epoch 0\): weight b is not finite'):
        hook.before_save_checkpoint(
            None, dict(meta=dict(iter=5, epoch=0), state_dict=state))
    state['b'] = torch.zeros(2)
    hook.before_save_checkpoint(None, dict(meta={}, state_dict=state))


def test_without_the_hook_nan_goes_on(tmp_path):
    # The behaviour the hook exists for: mmengine alone trains on.
    runner = make_runner(tmp_path, ToyDataset(bad=1), hooks=[])
    runner.train()
    weights = load_checkpoint_safely(last_checkpoint(tmp_path))['state_dict']
    assert not all(torch.isfinite(w).all() for w in weights.values())


def test_category_ids_kept_in_checkpoints_and_resume_agrees(tmp_path):
    make_runner(tmp_path, ToyDataset(), max_iters=2).train()
    meta = load_checkpoint_safely(str(tmp_path / 'iter_2.pth'))['meta']
    assert meta['dataset_meta'] == dict(classes=('a', 'b'), cat_ids=[7, 3])
    # A resume compares the metainfo: the ids must not make it differ.
    log_file = tmp_path / 'resume.log'
    runner = make_runner(tmp_path, ToyDataset(), max_iters=3, resume=True)
    logger = MMLogger.get_instance('resume_check', log_file=str(log_file))
    runner._logger = logger
    runner.train()
    assert runner.iter == 3
    assert 'dataset metainfo from the resumed checkpoint is different' \
        not in log_file.read_text()


def test_finite_loss_hook_cost_is_small():
    # The check is one stacked isfinite: far below a millisecond on CPU.
    hook = FiniteLossHook()
    outputs = {f'loss_{i}': torch.tensor(float(i)) for i in range(8)}
    outputs['loss'] = torch.tensor(28.0)
    runner = type('R', (), dict(iter=0, train_loop=None))()
    start = time.perf_counter()
    for _ in range(200):
        hook.after_train_iter(runner, 0, outputs=outputs)
    per_call = (time.perf_counter() - start) / 200
    logging.getLogger(__name__).info('FiniteLossHook: %.1f us', 1e6 * per_call)
    assert per_call < 5e-3
