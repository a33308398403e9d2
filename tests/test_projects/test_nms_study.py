"""The test options and the table of projects/oanet_studies/nms_study.py."""
from tests.utils import load_script

study = load_script('projects/oanet_studies/nms_study.py')
COLUMNS, CONFIG = study.COLUMNS, study.CONFIG
nms_test_options, table = study.nms_test_options, study.table


def test_options_switch_only_the_nms_and_add_the_pair_metric():
    agnostic = nms_test_options(CONFIG, True)
    per_class = nms_test_options(CONFIG, False)
    assert agnostic['model.test_cfg.rcnn.nms.class_agnostic'] is True
    assert per_class['model.test_cfg.rcnn.nms.class_agnostic'] is False
    assert agnostic['test_evaluator'] == per_class['test_evaluator']
    types = [metric['type'] for metric in per_class['test_evaluator']]
    assert types[0] == 'MultiOrderPanopticMetric'
    assert {'OcclusionOrderMetric', 'PanopticOcclusionMetric'} <= set(types)


def test_table_gives_per_checkpoint_rows_means_and_deltas():
    keys = [key for _, key, _ in COLUMNS]
    runs = [
        dict(
            checkpoint=f'seed{seed}.pth',
            nms=nms,
            metrics={key: base + seed
                     for key in keys}) for seed in (0, 1)
        for nms, base in (('class-agnostic', 50.0), ('per-class', 53.0))
    ]
    lines = table(runs).splitlines()
    assert len(lines) == 2 + 4 + 2 + 1
    cells = [cell.strip() for cell in lines[-1].strip('|').split('|')]
    assert cells[1] == 'per-class - agnostic'
    assert cells[2] == '+3.00 ± 0.00'
    agnostic_mean = [cell.strip() for cell in lines[-3].strip('|').split('|')]
    assert agnostic_mean[2] == '50.50 ± 0.71'
