"""tools/test.py: --tta and bad outputs are refused before anything is
read."""
import importlib.util
import os.path as osp
import re

import pytest

from tests.utils import REPO_ROOT

TINY = osp.join(REPO_ROOT, 'configs/oanet/'
                'oanet_r18_fpn_1200i_synthetic-occlusion.py')


def _load_test_tool():
    spec = importlib.util.spec_from_file_location(
        'mmoanet_test_tool', osp.join(REPO_ROOT, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tta_is_refused_for_panoptic(tmp_path, capsys):
    tool = _load_test_tool()
    # The checkpoint does not exist: the --tta message comes first.
    with pytest.raises(SystemExit) as exit_info:
        tool.parse_args([TINY, str(tmp_path / 'absent.pth'), '--tta'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'not supported for panoptic segmentation' in err
    assert 'absent.pth' not in err


@pytest.fixture
def checkpoint(tmp_path) -> str:
    # A .pkl name, so that passing it as --out too passes the suffix check.
    path = tmp_path / 'model.pkl'
    path.write_bytes(b'not read by parse_args')
    return str(path)


@pytest.mark.parametrize(
    'out,message',
    [
        # /sys refuses new files even to root (os.access would say yes).
        ('/sys/preds.pkl', r'--out /sys/preds\.pkl: the folder /sys is not '
         'writable'),
        ('{tmp}/a_file/preds.pkl', r'--out .*a_file/preds\.pkl: .*a_file is '
         'a file, not a folder'),
        ('{tmp}/existing.pkl', r'--out .*existing\.pkl exists; pass --force '
         'to replace it'),
        ('{checkpoint}', r'--out .*model\.pkl is also an input of this run'),
        ('{tmp}/a_folder.pkl', r'a_folder\.pkl is a folder, not a file'),
    ],
    ids=['unwritable', 'parent-is-a-file', 'exists', 'input', 'folder'])
def test_out_is_checked_before_the_test_pass(tmp_path, checkpoint, capsys, out,
                                             message):
    (tmp_path / 'a_file').write_text('x')
    (tmp_path / 'existing.pkl').write_bytes(b'earlier')
    (tmp_path / 'a_folder.pkl').mkdir()
    out = out.format(tmp=tmp_path, checkpoint=checkpoint)
    tool = _load_test_tool()
    for force in ([], ['--force']):
        if force and 'exists' in message:
            continue  # --force is the way out of this one
        with pytest.raises(SystemExit) as exit_info:
            tool.parse_args([TINY, checkpoint, '--out', out] + force)
        assert exit_info.value.code == 2
        assert re.search(message, capsys.readouterr().err)
    assert (tmp_path / 'existing.pkl').read_bytes() == b'earlier'


def test_force_replaces_an_existing_out(tmp_path, checkpoint):
    (tmp_path / 'existing.pkl').write_bytes(b'earlier')
    args = _load_test_tool().parse_args(
        [TINY, checkpoint, '--out',
         str(tmp_path / 'existing.pkl'), '--force'])
    assert args.force and args.out.endswith('existing.pkl')


def test_outfile_prefix_is_checked(tmp_path, checkpoint, capsys):
    prefix = tmp_path / 'sub'
    (tmp_path / 'sub.panoptic').mkdir()
    (tmp_path / 'sub.panoptic' / '1.png').write_bytes(b'png')
    tool = _load_test_tool()
    with pytest.raises(SystemExit):
        tool.parse_args([
            TINY, checkpoint, '--format-only', '--outfile-prefix',
            str(prefix)
        ])
    assert 'sub.panoptic is not empty; pass --force' in capsys.readouterr().err
    args = tool.parse_args([
        TINY, checkpoint, '--format-only', '--outfile-prefix',
        str(prefix), '--force'
    ])
    assert args.force
