"""Checkpoints written by mmengine's Runner load back with weights_only."""
import collections
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint

import mmoanet  # noqa: F401  (installs the safe loader)
from mmoanet.utils import UnsafeCheckpointError, load_checkpoint_safely


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        inputs = torch.stack(inputs)
        outputs = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((outputs - torch.stack(labels))**2).mean())
        return outputs


def toy_dataset(num=8):
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(num, 2, generator=generator)
    return [dict(inputs=x, labels=x.sum(0, keepdim=True)) for x in inputs]


def make_runner(work_dir, max_iters, **kwargs):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=toy_dataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=2),
            dict(type='MultiStepLR', milestones=[3], by_epoch=False)
        ],
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        randomness=dict(seed=0),
        experiment_name=f'toy_{max_iters}_{id(kwargs)}',
        **kwargs)


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('ckpt')
    runner = make_runner(work_dir, max_iters=4)
    runner.train()
    return osp.join(work_dir, 'iter_4.pth'), runner


def test_runner_checkpoint_holds_the_extra_types(runner_checkpoint):
    path, _ = runner_checkpoint
    # The reason for the safe loader: plain weights_only refuses the file.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    checkpoint = load_checkpoint_safely(path)
    assert {
        'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'
    } <= set(checkpoint)
    buffers = checkpoint['message_hub']['log_scalars']
    assert 'train/loss' in buffers
    assert isinstance(buffers['train/loss'].data[0], np.ndarray)


def test_resume_restores_iteration_optimizer_and_history(
        runner_checkpoint, tmp_path):
    path, trained = runner_checkpoint
    resumed = make_runner(tmp_path, max_iters=6, resume=True, load_from=path)
    resumed.train()
    # Resumed at iteration 4 and trained two more.
    assert resumed.iter == 6
    history = resumed.message_hub.get_scalar('train/loss').data[0]
    assert len(history) == 6
    # The scheduler state came back: lr after the milestone at iter 3.
    assert resumed.optim_wrapper.get_lr()['lr'][0] == pytest.approx(0.001)


def test_load_from_restores_weights(runner_checkpoint):
    path, trained = runner_checkpoint
    model = ToyModel()
    load_checkpoint(model, path, map_location='cpu')
    torch.testing.assert_close(model.linear.weight,
                               trained.model.linear.weight)


class _Payload:
    """Unpickling this creates a file: the attack the safe loader stops."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_malicious_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'evil.pth'
    torch.save(
        dict(state_dict=dict(w=torch.zeros(1)), meta=_Payload(str(marker))),
        path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_safely(str(path))
    assert str(path) in str(info.value)
    # builtins.open pickles under its home module, io.
    assert 'io.open' in str(info.value)
    # Through mmengine's own entry point (used by load_from and --resume).
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(ToyModel(), str(path))
    assert not marker.exists()


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_safely(str(tmp_path / 'nope.pth'))


class _AttributeWalk:
    """Reaches past the allowed types through ``getattr``: refused too."""

    def __reduce__(self):
        return (getattr, (collections.Counter, 'fromkeys'))


def test_getattr_is_limited_to_history_buffer_methods(tmp_path):
    path = tmp_path / 'walk.pth'
    torch.save(dict(meta=_AttributeWalk()), path)
    with pytest.raises(UnsafeCheckpointError, match='getattr'):
        load_checkpoint_safely(str(path))
