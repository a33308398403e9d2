"""Every checkpoint argument of every tool refuses a malicious pickle.

A checkpoint is a pickle; ``torch.load(weights_only=False)`` runs whatever
its ``__reduce__`` names. Issue 18 found two tools that did. Here every
``.py`` file under ``tools/`` is either listed with the arguments through
which it reads a checkpoint, or listed as reading none: a new tool fails
this test until it is listed. Each checkpoint argument is then given a
pickle whose ``__reduce__`` would create a marker file; the tool must
refuse it, naming the file, and the marker must not exist.

Also: no ``torch.load`` outside ``mmoanet/utils/checkpoint.py`` in the
package, ``tools/`` or ``projects/``; and every output argument of every
tool that writes files refuses a folder it cannot write, or whose parent is
a file, before it reads any input (so no finished work is lost to the
write).
"""
import glob
import io
import os.path as osp
import re
import sys
import types
from types import SimpleNamespace

import cv2
import pytest
import torch

from mmoanet.datasets import generate_synthetic_occlusion
from tests.utils import REPO_ROOT, load_script, run_main

STOCK = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn',
                 'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')

#: tool -> {checkpoint argument: argv template}. ``{evil}`` is the
#: malicious checkpoint; the other fields come from the ``workspace``.
CHECKPOINT_ARGS = {
    'tools/test.py': {
        'CHECKPOINT': ['{config}', '{evil}', '--work-dir', '{work}'],
    },
    'tools/train.py': {
        '--resume': ['{config}', '--work-dir', '{work}', '--resume', '{evil}'],
    },
    'tools/inference.py': {
        '--weights': [
            '{image}', '{config}', '--weights', '{evil}', '--out-dir',
            '{out_dir}'
        ],
        'model (a .pth)': ['{image}', '{evil}', '--out-dir', '{out_dir}'],
    },
    'tools/model_converters/add_srm_to_panoptic_fpn.py': {
        'DETECTOR': ['{evil}', '{safe}', '{out_file}'],
        'SRM': ['{safe}', '{evil}', '{out_file}'],
    },
    'tools/analysis_tools/dump_instance_predictions.py': {
        'CHECKPOINT': ['{config}', '{evil}', '--out', '{out_json}'],
    },
    'tools/deployment/export_onnx.py': {
        'CHECKPOINT': ['{config}', '{evil}', '{out_dir}'],
    },
}

#: tool -> why it reads no checkpoint.
NO_CHECKPOINT = {
    'tools/analysis_tools/get_flops.py': 'counts FLOPs of a config',
    'tools/dataset_converters/make_synthetic_occlusion.py':
    'writes a data set',
    'tools/demo.py': 'trains its own checkpoints through tools/train.py',
    'tools/deployment/test_onnx.py': 'reads ONNX graphs and a JSON manifest',
    'tools/misc/print_config.py': 'prints a config',
    'tools/misc/requirements_satisfied.py': 'checks installed versions',
}


def tools_on_disk() -> list:
    return sorted(
        osp.relpath(path, REPO_ROOT).replace(osp.sep, '/')
        for path in glob.glob(
            osp.join(REPO_ROOT, 'tools', '**', '*.py'), recursive=True))


def test_every_tool_is_listed():
    listed = set(CHECKPOINT_ARGS) | set(NO_CHECKPOINT)
    assert not set(CHECKPOINT_ARGS) & set(NO_CHECKPOINT)
    unlisted = [tool for tool in tools_on_disk() if tool not in listed]
    assert not unlisted, (
        f'{unlisted}: add each to CHECKPOINT_ARGS (with every argument '
        'through which it reads a checkpoint) or to NO_CHECKPOINT')
    gone = sorted(listed - set(tools_on_disk()))
    assert not gone, f'{gone} are listed but no longer in tools/'


class _CreatesMarker:
    """Unpickling this creates the file ``path``: code would have run."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture(scope='module')
def workspace(tmp_path_factory) -> SimpleNamespace:
    """A tiny data set, a config on it, an image and a safe checkpoint."""
    root = tmp_path_factory.mktemp('pickles')
    data = root / 'data'
    generate_synthetic_occlusion(
        str(data), num_train=2, num_val=1, size=48, seed=0)
    config = root / 'config.py'
    config.write_text(
        f'_base_ = {STOCK!r}\n'
        f'data_root = {str(data) + "/"!r}\n'
        "loader = dict(num_workers=0, persistent_workers=False)\n"
        'train_dataloader = dict(batch_size=1, **loader, '
        'dataset=dict(data_root=data_root))\n'
        'val_dataloader = dict(**loader, dataset=dict(data_root=data_root))\n'
        'test_dataloader = val_dataloader\n'
        "val_evaluator = dict(ann_file=data_root + "
        "'annotations/panoptic_val.json', seg_prefix=data_root + "
        "'annotations/panoptic_val/')\n"
        'test_evaluator = val_evaluator\n'
        'train_cfg = dict(max_iters=2, val_interval=1000)\n')
    safe = root / 'safe.pth'
    torch.save(dict(state_dict=dict(weight=torch.zeros(1))), safe)
    image = glob.glob(str(data / 'val' / '*.jpg'))[0]
    assert cv2.imread(image) is not None
    return SimpleNamespace(
        root=root, config=str(config), safe=str(safe), image=image)


CASES = [(tool, argument) for tool, arguments in CHECKPOINT_ARGS.items()
         for argument in arguments]


def run_tool_on(tool: str, argument: str, workspace, tmp_path, evil,
                monkeypatch, capsys) -> str:
    """Run ``tool`` with ``evil`` as ``argument``; return what it said."""
    values = dict(
        vars(workspace),
        evil=str(evil),
        work=str(tmp_path / 'work'),
        out_dir=str(tmp_path / 'out'),
        out_file=str(tmp_path / 'merged.pth'),
        out_json=str(tmp_path / 'predictions.json'))
    argv = [arg.format(**values) for arg in CHECKPOINT_ARGS[tool][argument]]
    if tool.endswith('export_onnx.py') and 'onnx' not in sys.modules:
        try:
            import onnx  # noqa: F401
        except ImportError:
            # The export imports onnx before it reads the checkpoint; the
            # checkpoint path is what is tested here, not the exporter.
            monkeypatch.setitem(sys.modules, 'onnx', types.ModuleType('onnx'))
    module = load_script(tool)
    runner = tool in ('tools/train.py', 'tools/test.py')
    with pytest.raises(BaseException) as error:  # noqa: B017
        run_main(module.main, argv, runner=runner)
    captured = capsys.readouterr()
    return '\n'.join([
        f'{type(error.value).__name__}: {error.value}', captured.out,
        captured.err
    ])


@pytest.mark.parametrize(
    'tool,argument', CASES, ids=[f'{t}:{a}' for t, a in CASES])
def test_malicious_checkpoint_is_refused_not_run(workspace, tmp_path,
                                                 monkeypatch, capsys, tool,
                                                 argument):
    marker = tmp_path / 'code_ran'
    evil = tmp_path / 'evil.pth'
    torch.save(
        dict(
            state_dict=dict(weight=torch.zeros(1)),
            meta=dict(note=_CreatesMarker(str(marker)))), evil)
    text = run_tool_on(tool, argument, workspace, tmp_path, evil, monkeypatch,
                       capsys)
    assert not marker.exists(), f'{tool} {argument}: the pickle ran'
    assert re.search(
        r'refusing to load checkpoint \S*evil\.pth',
        text), (f'{tool} {argument} did not refuse the file by name: '
                f'{text[-2000:]}')


@pytest.mark.parametrize(
    'tool,argument', CASES, ids=[f'{t}:{a}' for t, a in CASES])
def test_truncated_checkpoint_is_named(workspace, tmp_path, monkeypatch,
                                       capsys, tool, argument):
    # Issue 18: a corrupt or truncated checkpoint gave OSError [Errno 22] or
    # a raw torch RuntimeError, with no file named.
    whole = io.BytesIO()
    torch.save(dict(state_dict=dict(weight=torch.zeros(1000))), whole)
    evil = tmp_path / 'evil.pth'
    evil.write_bytes(whole.getvalue()[:len(whole.getvalue()) // 2])
    text = run_tool_on(tool, argument, workspace, tmp_path, evil, monkeypatch,
                       capsys)
    assert re.search(r'checkpoint \S*evil\.pth cannot be read .*truncated',
                     text), (f'{tool} {argument}: {text[-2000:]}')


def test_the_marker_pickle_does_run_when_unpickled(tmp_path):
    # Shows the test pickle is live: torch.load(weights_only=False) runs it.
    marker = tmp_path / 'code_ran'
    buffer = io.BytesIO()
    torch.save(dict(meta=_CreatesMarker(str(marker))), buffer)
    buffer.seek(0)
    torch.load(buffer, weights_only=False)  # noqa: the point of the test
    assert marker.exists()


def test_no_torch_load_outside_the_safe_loader():
    allowed = {osp.join('mmoanet', 'utils', 'checkpoint.py')}
    offenders = []
    for folder in ('mmoanet', 'tools', 'projects'):
        for path in glob.glob(
                osp.join(REPO_ROOT, folder, '**', '*.py'), recursive=True):
            relative = osp.relpath(path, REPO_ROOT)
            if relative in allowed:
                continue
            with open(path) as f:
                for number, line in enumerate(f, start=1):
                    if re.search(r'\btorch\.load\b|\bfrom torch import load',
                                 line):
                        offenders.append(f'{relative}:{number}')
    assert not offenders, (
        f'torch.load outside mmoanet/utils/checkpoint.py: {offenders}; '
        'use mmoanet.utils.load_checkpoint_safely')


# ------------------------------------------------------------------ outputs

#: tool -> {output argument: argv template with ``{out}``}. The inputs are
#: a malicious checkpoint: had any been read before the output check, the
#: marker would exist.
OUTPUT_ARGS = {
    'tools/test.py': {
        '--out': ['{config}', '{evil}', '--out', '{out}.pkl'],
        '--outfile-prefix':
        ['{config}', '{evil}', '--format-only', '--outfile-prefix', '{out}'],
    },
    'tools/inference.py': {
        '--out-dir':
        ['{image}', '{config}', '--weights', '{evil}', '--out-dir', '{out}'],
    },
    'tools/model_converters/add_srm_to_panoptic_fpn.py': {
        'OUT': ['{evil}', '{evil}', '{out}.pth'],
    },
    'tools/analysis_tools/dump_instance_predictions.py': {
        '--out': ['{config}', '{evil}', '--out', '{out}.json'],
    },
    'tools/deployment/export_onnx.py': {
        'OUT_DIR': ['{config}', '{evil}', '{out}'],
    },
    'tools/dataset_converters/make_synthetic_occlusion.py': {
        '--out': ['--out', '{out}', '--num-train', '1', '--num-val', '1'],
    },
}
#: Outputs that cannot be written, and the message (part) for each.
BAD_OUTPUTS = {
    'unwritable': ('/sys/mmoanet_out', 'not writable'),
    'parent-is-a-file': ('{a_file}/out', 'is a file, not a folder'),
}
OUTPUT_CASES = [(tool, argument, bad)
                for tool, arguments in OUTPUT_ARGS.items()
                for argument in arguments for bad in BAD_OUTPUTS]

#: tool -> what it writes instead of a checked output (or nothing).
NO_CHECKED_OUTPUT = {
    'tools/train.py':
    "the Runner's work_dir: a new timestamped log folder per run, "
    'checkpoints that --resume continues',
    'tools/demo.py':
    'its own work dir, through the tools above',
    'tools/analysis_tools/get_flops.py':
    'prints',
    'tools/deployment/test_onnx.py':
    'prints metrics, logs to --work-dir',
    'tools/misc/print_config.py':
    'prints',
    'tools/misc/requirements_satisfied.py':
    'prints',
}


def test_every_tool_is_listed_by_its_outputs():
    assert not set(OUTPUT_ARGS) & set(NO_CHECKED_OUTPUT)
    assert sorted(set(OUTPUT_ARGS) | set(NO_CHECKED_OUTPUT)) == \
        tools_on_disk()


@pytest.mark.parametrize(
    'tool,argument,bad',
    OUTPUT_CASES,
    ids=[f'{t}:{a}:{b}' for t, a, b in OUTPUT_CASES])
def test_bad_output_is_refused_before_any_input_is_read(
        workspace, tmp_path, monkeypatch, capsys, tool, argument, bad):
    marker = tmp_path / 'code_ran'
    evil = tmp_path / 'evil.pth'
    torch.save(dict(meta=_CreatesMarker(str(marker))), evil)
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    out, message = BAD_OUTPUTS[bad]
    values = dict(
        vars(workspace), evil=str(evil), out=out.format(a_file=a_file))
    argv = [arg.format(**values) for arg in OUTPUT_ARGS[tool][argument]]
    module = load_script(tool)
    with pytest.raises(BaseException) as error:  # noqa: B017
        run_main(module.main, argv, runner=False)
    captured = capsys.readouterr()
    text = '\n'.join([str(error.value), captured.out, captured.err])
    assert message in text, f'{tool} {argument}: {text[-2000:]}'
    assert not marker.exists()
