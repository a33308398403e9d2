"""tools/test.py and tools/train.py on bad input (issue 11).

A checkpoint of a slightly different model is refused by tools/test.py,
naming the tensor and both shapes, unless --allow-partial-load, which logs
the skipped keys to the log file; a warm start from such a checkpoint
trains and logs every skipped key to the log file; bad flags and paths are
refused before the model, the data or the checkpoint are read.

The tools run in this process (``main(argv)``); tools/test.py as a command
is covered by tests/test_tools/test_train_test.py.
"""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmoanet.datasets import generate_synthetic_occlusion
from mmoanet.utils import CheckpointMismatchError
from tests.test_tools.test_train_test import write_config
from tests.utils import load_script, log_text, run_main

test_tool = load_script('tools/test.py')
train_tool = load_script('tools/train.py')


@pytest.fixture(scope='module')
def setting(tmp_path_factory):
    """A tiny data set, its config and two checkpoints of the tiny model.

    ``same`` holds the model's own (random) weights; ``other`` is the same
    but for the thing classifier, which has one class fewer, as a
    checkpoint trained on 5 thing classes instead of 6 would.
    """
    tmp_path = tmp_path_factory.mktemp('bad_input')
    root = str(tmp_path / 'data')
    generate_synthetic_occlusion(root, num_train=2, num_val=2, size=64, seed=5)
    config = write_config(tmp_path, root, max_iters=1)
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(config).model)
    state = model.state_dict()
    key = next(k for k in state if k.endswith('fc_cls.weight'))
    other_state = dict(state, **{key: state[key][1:]})
    paths = {}
    for name, weights in (('same', state), ('other', other_state)):
        paths[name] = str(tmp_path / f'{name}.pth')
        torch.save(dict(state_dict=weights, meta=dict(iter=0)), paths[name])
    return dict(
        config=config,
        key=key,
        model_shape=tuple(state[key].shape),
        other_shape=tuple(other_state[key].shape),
        **paths)


def test_test_tool_refuses_one_tensor_of_another_shape(setting, tmp_path):
    with pytest.raises(CheckpointMismatchError) as info:
        run_main(
            test_tool.main,
            [setting['config'], setting['other'], '--work-dir',
             str(tmp_path)])
    message = str(info.value)
    assert setting['other'] in message
    assert (f'{setting["key"]} (checkpoint {setting["other_shape"]}, model '
            f'{setting["model_shape"]})') in message
    assert '--allow-partial-load' in message
    # Refused before any prediction: no metric was computed.
    assert 'coco_panoptic/PQ' not in log_text(str(tmp_path))


def test_test_tool_partial_load_on_request_logs_to_file(setting, tmp_path):
    metrics = run_main(test_tool.main, [
        setting['config'], setting['other'], '--work-dir',
        str(tmp_path), '--allow-partial-load'
    ])
    assert 'coco_panoptic/PQ' in metrics
    log = log_text(str(tmp_path))
    assert f'skipped {setting["key"]}: checkpoint {setting["other_shape"]}' \
        in log
    assert 'coco_panoptic/PQ' in log


def test_warm_start_logs_every_skipped_key_to_file(setting, tmp_path):
    work_dir = str(tmp_path / 'work')
    run_main(train_tool.main, [
        setting['config'], '--work-dir', work_dir, '--cfg-options',
        f'load_from={setting["other"]}'
    ])
    log = log_text(work_dir)
    assert f'{setting["other"]}: partial load into OANet' in log
    assert f'skipped {setting["key"]}: checkpoint {setting["other_shape"]}' \
        in log
    # The warm start trained and saved as usual.
    assert osp.exists(osp.join(work_dir, 'iter_1.pth'))


def test_test_tool_checks_flags_before_reading_anything(
        setting, tmp_path, capsys):
    # A damaged checkpoint: had it been read first, its error would show.
    damaged = tmp_path / 'damaged.pth'
    damaged.write_bytes(b'PK\x03\x04 cut short')
    for flags, message in (
        (['--out', 'res.json'], '--out res.json: must end with .pkl'),
        (['--eval', 'bbox'], '--eval bbox: unsupported'),
        (['--format-only'], '--format-only needs --outfile-prefix'),
    ):
        with pytest.raises(SystemExit) as info:
            run_main(
                test_tool.main,
                [
                    setting['config'],
                    str(damaged), '--work-dir',
                    str(tmp_path / 'work')
                ] + flags,
                runner=False)
        assert info.value.code == 2
        assert message in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'work')
    with pytest.raises(SystemExit):
        run_main(
            test_tool.main, [setting['config'],
                             str(tmp_path / 'missing.pth')],
            runner=False)
    assert 'missing.pth not found' in capsys.readouterr().err


def test_train_tool_checks_load_from_before_building(setting, tmp_path):
    work_dir = tmp_path / 'work'
    missing = str(tmp_path / 'missing.pth')
    with pytest.raises(
            FileNotFoundError,
            match=rf'load_from {missing}: no such checkpoint'):
        run_main(
            train_tool.main, [
                setting['config'], '--work-dir',
                str(work_dir), '--cfg-options', f'load_from={missing}'
            ],
            runner=False)
    # Nothing was built: the Runner would have made the work dir.
    assert not work_dir.exists()
