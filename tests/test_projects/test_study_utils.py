"""projects/oanet_studies/study_utils.py: the one mean ± sd formatter, the
portable command lines and the variants file of the studies."""
import json
import os.path as osp
import re
import sys

import pytest

from tests.utils import COMMIT_PATTERN, IN_GIT_CHECKOUT, REPO_ROOT, load_script

study_utils = load_script('projects/oanet_studies/study_utils.py')


@pytest.mark.parametrize('values,fmt,signed,expected', [
    ([], '{:.2f}', False, '-'),
    ([None], '{:.2f}', False, '-'),
    ([1.0], '{:.1f}', False, '1.0'),
    ([11.0, 13.0, None], '{:.1f}', False, '12.0 ± 1.4'),
    ([2.0, 4.0], '{:.2f}', True, '+3.00 ± 1.41'),
    ([-2.0, -4.0], '{:.2f}', True, '-3.00 ± 1.41'),
    ([0.5, 0.5], '{:.3f}', False, '0.500 ± 0.000'),
])
def test_mean_sd(values, fmt, signed, expected):
    assert study_utils.mean_sd(values, fmt, signed) == expected


def test_commands_are_recorded_runnable_from_the_checkout():
    command = [
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'train.py'), 'run config.py',
        f'train_dataloader.dataset.data_root={REPO_ROOT}/data/x/',
        '/elsewhere/iter_4.pth'
    ]
    assert study_utils.portable_command(command) == (
        "python tools/train.py 'run config.py' "
        'train_dataloader.dataset.data_root=data/x/ /elsewhere/iter_4.pth')
    assert study_utils.repo_relative(osp.join(REPO_ROOT, 'a', 'b')) == 'a/b'


def test_provenance_names_the_commit_and_the_clean_flag():
    origin = study_utils.provenance(['projects/oanet_studies/x.py', '--a'])
    assert origin['command'] == 'python projects/oanet_studies/x.py --a'
    assert re.fullmatch(COMMIT_PATTERN, origin['git_commit'])
    assert isinstance(origin['git_dirty'], bool)
    if not IN_GIT_CHECKOUT:  # no commit to vouch for the files
        assert origin['git_dirty'] is True


def test_variants_file(tmp_path):
    variants = study_utils.read_variants(
        osp.join(REPO_ROOT, study_utils.VARIANTS_FILE))
    assert {'pfpn-stock', 'oanet', 'oanet-score',
            'pfpn-srm-cls'} <= set(variants)
    for spec in variants.values():
        if 'config' in spec:
            assert osp.isfile(osp.join(REPO_ROOT, spec['config']))
        elif 'reuse' in spec:
            assert 'config' in variants[spec['reuse']]
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'x': {'test_options': {}}}))
    with pytest.raises(ValueError, match='variant x needs config'):
        study_utils.read_variants(str(bad))
