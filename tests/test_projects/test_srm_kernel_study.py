"""The settings and the table of projects/oanet_studies/srm_kernel_study.py.
"""
import pytest

from tests.utils import load_script

study = load_script('projects/oanet_studies/srm_kernel_study.py')
COLUMNS, parse_setting, table = study.COLUMNS, study.parse_setting, study.table


@pytest.mark.parametrize('setting,kernel,kernel_size,stride,field_px', [
    ('1x1@4', '1x1', 7, 4, 4),
    ('3x3@4', '3x3', 7, 4, 12),
    ('1x7+7x1@4', '1x7+7x1', 7, 4, 28),
    ('1x7+7x1@1', '1x7+7x1', 7, 1, 7),
    ('1x7+7x1/k15@2', '1x7+7x1', 15, 2, 30),
])
def test_parse_setting(setting, kernel, kernel_size, stride, field_px):
    parsed = parse_setting(setting)
    assert (parsed['kernel'], parsed['kernel_size'], parsed['stride'],
            parsed['field_px']) == (kernel, kernel_size, stride, field_px)


def test_parse_setting_names_the_kernel_size():
    assert parse_setting('1x7+7x1/k15@2')['name'] == '1x15+15x1'
    assert parse_setting('1x7+7x1@2')['name'] == '1x7+7x1'


@pytest.mark.parametrize(
    'setting', ['5x5@4', '1x7+7x1', '3x3@0', '1x7+7x1/k6@2', '3x3@two'])
def test_bad_setting_is_refused(setting):
    with pytest.raises(ValueError, match='setting'):
        parse_setting(setting)


def test_table_gives_mean_and_sd_over_seeds():
    keys = [key for _, key, _ in COLUMNS]
    baseline = dict({key: 50.0 for key in keys}, stride=4, field_px=28)
    rows = [
        dict(
            parse_setting('3x3@4'),
            seed=seed,
            train_s=10.0 * (seed + 1),
            metrics={key: value
                     for key in keys})
        for seed, value in ((0, 70.0), (1, 74.0))
    ]
    lines = table(rows, baseline).splitlines()
    assert len(lines) == 4  # header, rule, the fixed SRM, one setting
    assert lines[2].startswith("| detector's own SRM")
    cells = [cell.strip() for cell in lines[3].strip('|').split('|')]
    # setting, stride, field, seeds, then every column, then seconds
    assert cells[:4] == ['3x3', '4', '12', '2']
    assert cells[4] == '72.00 ± 2.83'  # mean 72, sample sd sqrt(8)
    assert cells[-1] == '15'
