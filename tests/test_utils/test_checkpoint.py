"""Checkpoints written by mmengine's Runner load back with weights_only."""
import collections
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint

import mmoanet  # noqa: F401  (installs the safe loader)
from mmoanet.utils import (CheckpointMismatchError, CorruptCheckpointError,
                           UnsafeCheckpointError, check_checkpoint_matches,
                           load_checkpoint_safely)


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


# ------------------------------------------ issue 11: corrupt and foreign


def test_truncated_checkpoint_names_the_file(runner_checkpoint, tmp_path):
    path, _ = runner_checkpoint
    truncated = tmp_path / 'iter_4_cut.pth'
    with open(path, 'rb') as source:
        content = source.read()
    truncated.write_bytes(content[:len(content) // 2])
    with pytest.raises(
            CorruptCheckpointError,
            match=r'iter_4_cut\.pth cannot be read .*truncated'):
        load_checkpoint_safely(str(truncated))
    # Through mmengine's entry point too; the file is left in place.
    with pytest.raises(CorruptCheckpointError, match=r'iter_4_cut\.pth'):
        load_checkpoint(ToyModel(), str(truncated))
    assert truncated.stat().st_size == len(content) // 2


class TwoLayers(nn.Module):
    """Four tensors; a checkpoint may differ in one of them."""

    def __init__(self, hidden=3, outputs=2):
        super().__init__()
        self.first = nn.Linear(2, hidden)
        self.second = nn.Linear(hidden, outputs)


def save_state(path, model, drop=()):
    state = {k: v for k, v in model.state_dict().items() if k not in drop}
    torch.save(dict(state_dict=state, meta=dict(iter=1)), path)
    return str(path)


def test_one_tensor_of_another_shape_is_refused(tmp_path):
    # Three of four tensors fit: not enough for evaluation.
    other = save_state(tmp_path / 'other.pth', TwoLayers(outputs=5))
    with pytest.raises(CheckpointMismatchError) as info:
        check_checkpoint_matches(TwoLayers(), other)
    message = str(info.value)
    assert other in message
    assert 'of its 4 tensors, 2 have another shape' in message
    assert 'second.weight (checkpoint (5, 3), model (2, 3))' in message
    assert 'second.bias (checkpoint (5,), model (2,))' in message
    assert '--allow-partial-load' in message


def test_one_missing_tensor_is_refused(tmp_path):
    model = TwoLayers()
    partial = save_state(tmp_path / 'partial.pth', model, drop=['first.bias'])
    with pytest.raises(
            CheckpointMismatchError,
            match=r'partial\.pth does not fit .* 1 are missing from it, '
            r'e\.g\. first\.bias'):
        check_checkpoint_matches(model, partial)


def test_matching_checkpoint_passes_with_ddp_prefix(tmp_path):
    model = TwoLayers()
    state = {f'module.{k}': v for k, v in model.state_dict().items()}
    path = tmp_path / 'ddp.pth'
    torch.save(dict(state_dict=state), path)
    report = check_checkpoint_matches(model, str(path))
    assert report == dict(missing=[], wrong_shape=[], unexpected=[])
    # A loaded checkpoint works as well as a path.
    report = check_checkpoint_matches(
        model, dict(state_dict=dict(state, extra=torch.zeros(1))))
    assert report['unexpected'] == ['extra']


def test_partial_load_writes_every_key_to_the_log_file(tmp_path):
    log_file = tmp_path / 'run.log'
    logger = MMLogger.get_instance('partial_load', log_file=str(log_file))
    model = TwoLayers()
    other = save_state(
        tmp_path / 'other.pth', TwoLayers(outputs=5), drop=['first.bias'])
    report = check_checkpoint_matches(
        model, other, allow_partial=True, logger=logger)
    assert report['missing'] == ['first.bias']
    assert [key for key, _, _ in report['wrong_shape']
            ] == ['second.weight', 'second.bias']
    for handler in logger.handlers:
        handler.flush()
    log = log_file.read_text()
    assert f'{other}: partial load into TwoLayers: 2 tensors skipped' in log
    assert 'skipped second.weight: checkpoint (5, 3), model (2, 3)' in log
    assert 'skipped second.bias: checkpoint (5,), model (2,)' in log
    assert 'missing first.bias' in log
