"""An evaluator whose seg_prefix folder or annotation file is missing fails
when it is built (Runner start-up), naming the key and the path."""
import json

import pytest
from mmdet.registry import METRICS

import mmoanet  # noqa: F401


@pytest.fixture
def files(tmp_path):
    panoptic = tmp_path / 'panoptic_val.json'
    panoptic.write_text(
        json.dumps(dict(images=[], annotations=[], categories=[])))
    overlaps = tmp_path / 'overlaps_val.json'
    overlaps.write_text(json.dumps(dict(images=[])))
    instances = tmp_path / 'instances_val.json'
    instances.write_text(
        json.dumps(dict(images=[], annotations=[], categories=[])))
    (tmp_path / 'pngs').mkdir()
    return dict(
        ann_file=str(panoptic),
        seg_prefix=str(tmp_path / 'pngs'),
        overlaps_file=str(overlaps),
        ins_ann_file=str(instances),
        missing=str(tmp_path / 'moved'))


METRIC_KEYS = {
    'MultiOrderPanopticMetric': ('ann_file', 'seg_prefix'),
    'PanopticErrorMetric': ('ann_file', 'seg_prefix', 'overlaps_file'),
    'PanopticOcclusionMetric': ('overlaps_file', 'ann_file', 'seg_prefix'),
    'OcclusionOrderMetric': ('overlaps_file', 'ins_ann_file'),
}
CASES = [(metric, key) for metric, keys in METRIC_KEYS.items() for key in keys]


@pytest.mark.parametrize(
    'metric,key', CASES, ids=[f'{m}-{k}' for m, k in CASES])
def test_missing_input_fails_at_build(files, metric, key):
    cfg = dict(type=metric, **{k: files[k] for k in METRIC_KEYS[metric]})
    METRICS.build(cfg)  # all present: builds
    cfg[key] = files['missing']
    kind = 'folder' if key == 'seg_prefix' else 'file'
    with pytest.raises(
            FileNotFoundError,
            match=rf'evaluator {key}: no {kind} .*moved; check the data '
            'root'):
        METRICS.build(cfg)


def test_seg_prefix_that_is_a_file(files):
    with pytest.raises(FileNotFoundError, match=r'\(it is a file\)'):
        METRICS.build(
            dict(
                type='MultiOrderPanopticMetric',
                ann_file=files['ann_file'],
                seg_prefix=files['ann_file']))


def test_format_only_needs_no_ground_truth_folder(files, tmp_path):
    metric = METRICS.build(
        dict(
            type='MultiOrderPanopticMetric',
            seg_prefix=files['missing'],
            format_only=True,
            outfile_prefix=str(tmp_path / 'out')))
    assert metric.format_only
