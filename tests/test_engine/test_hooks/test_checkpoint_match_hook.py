"""CheckpointMatchHook: strict when testing or resuming, logs warm starts."""
from types import SimpleNamespace

import pytest
import torch.nn as nn
from mmdet.registry import HOOKS
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import BaseLoop

import mmoanet  # noqa: F401  (registers the hook)
from mmoanet.utils import CheckpointMismatchError


class TrainLoop(BaseLoop):

    def __init__(self):  # no runner or data needed here
        pass

    def run(self):
        pass


def fake_runner(tmp_path, training, resume=False, **cfg):
    """The attributes of a Runner the hook reads."""
    logger = MMLogger.get_instance(
        f'hook_{training}_{resume}_{len(cfg)}',
        log_file=str(tmp_path / 'run.log'))
    return SimpleNamespace(
        model=nn.Linear(2, 3),
        cfg=Config(cfg),
        logger=logger,
        _train_loop=TrainLoop() if training else dict(
            type='IterBasedTrainLoop'),
        _resume=resume,
        _load_from='other.pth')


# Weights of nn.Linear(2, 2): the bias and weight have another shape.
OTHER = dict(state_dict=dict(weight=nn.Linear(2, 2).weight.data))


def test_testing_refuses_another_shape(tmp_path):
    hook = HOOKS.build(dict(type='CheckpointMatchHook'))
    runner = fake_runner(tmp_path, training=False)
    with pytest.raises(
            CheckpointMismatchError,
            match=r'checkpoint other\.pth does not fit the model Linear.* '
            r'weight \(checkpoint \(2, 2\), model \(3, 2\)\).* 1 are missing '
            r'from it, e\.g\. bias'):
        hook.after_load_checkpoint(runner, OTHER)


def test_resuming_refuses_too(tmp_path):
    hook = HOOKS.build(dict(type='CheckpointMatchHook'))
    with pytest.raises(CheckpointMismatchError):
        hook.after_load_checkpoint(
            fake_runner(tmp_path, training=True, resume=True), OTHER)


@pytest.mark.parametrize('training,cfg',
                         [(True, {}), (False, dict(allow_partial_load=True))])
def test_warm_start_or_partial_load_logs_to_file(tmp_path, training, cfg):
    hook = HOOKS.build(dict(type='CheckpointMatchHook'))
    runner = fake_runner(tmp_path, training=training, **cfg)
    hook.after_load_checkpoint(runner, OTHER)
    log = (tmp_path / 'run.log').read_text()
    assert 'other.pth: partial load into Linear: 1 tensors skipped' in log
    assert 'skipped weight: checkpoint (2, 2), model (3, 2)' in log
    assert 'missing bias' in log
