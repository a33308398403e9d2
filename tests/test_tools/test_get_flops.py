"""tools/analysis_tools/get_flops.py counts the SRM that mmdet's leaves out."""
import importlib.util
import math
import os.path as osp

import pytest

from tests.utils import REPO_ROOT

TINY = osp.join(REPO_ROOT, 'configs/oanet/'
                'oanet_r18_fpn_1200i_synthetic-occlusion.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'mmoanet_get_flops',
        osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'get_flops.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counts_include_the_srm(capsys):
    tool = _load_tool()
    result = tool.main([TINY, '--shape', '96', '128', '--num-instances', '8'])
    flops, params = result['flops'], result['params']
    # The tiny SRM: 6 thing classes, 1x7+7x1, stride 4 -> a 24 x 32 grid.
    grid = math.ceil(96 / 4) * math.ceil(128 / 4)
    assert flops['SRM (dense)'] == 4 * 7 * 6 * 6 * grid
    # 6 of 6 classes present: the two paths, plus Eq. 3 over 8 instances.
    assert flops['SRM (as run)'] == (2 * 7 * 6 * 12 + 8) * grid
    assert flops['total with SRM (as run)'] == (
        flops['detector (tensor mode)'] + flops['SRM (as run)'])
    parts = ('backbone', 'neck (FPN)', 'RPN head', 'RoI heads', 'stuff branch')
    assert all(flops[part] > 0 for part in parts)
    assert sum(flops[part]
               for part in parts) == flops['detector (tensor mode)']
    # SRM parameters: four 6 -> 6 convs of 7 taps, one bias of 6.
    assert params['SRM'] == 4 * 6 * 6 * 7 + 6
    assert sum(params[part] for part in parts) + params['SRM'] == \
        params['model']
    report = capsys.readouterr().out
    assert '| SRM (as run) |' in report and '| SRM | ' in report
    with pytest.raises(ValueError, match='num-classes-present'):
        tool.main([
            TINY, '--shape', '96', '96', '--num-instances', '3',
            '--num-classes-present', '4'
        ])
