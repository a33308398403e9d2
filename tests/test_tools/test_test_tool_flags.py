"""tools/test.py: --tta is refused before anything is read."""
import importlib.util
import os.path as osp

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
