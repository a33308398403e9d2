"""A metric whose annotation file does not parse names that file."""
import json

import pytest

from mmoanet.datasets.exceptions import PanopticAnnotationError
from mmoanet.evaluation.metrics import (MultiOrderPanopticMetric,
                                        OcclusionOrderMetric,
                                        PanopticErrorMetric,
                                        PanopticOcclusionMetric)


@pytest.fixture
def files(tmp_path):
    """A truncated JSON file and a valid, empty overlaps / panoptic pair."""
    broken = tmp_path / 'broken.json'
    broken.write_text('{"images": [{"id": 1, "file_name": "a.png"')
    overlaps = tmp_path / 'overlaps_val.json'
    overlaps.write_text(json.dumps({'images': []}))
    panoptic = tmp_path / 'panoptic_val.json'
    panoptic.write_text(
        json.dumps({
            'images': [],
            'annotations': [],
            'categories': []
        }))
    return broken, overlaps, panoptic


def _assert_names(error, path):
    message = str(error.value)
    assert str(path) in message
    assert 'line 1 column' in message


def test_multi_order_panoptic_metric_names_broken_ann_file(files, tmp_path):
    broken, _, _ = files
    with pytest.raises(PanopticAnnotationError) as error:
        MultiOrderPanopticMetric(
            ann_file=str(broken), seg_prefix=str(tmp_path))
    _assert_names(error, broken)


def test_occlusion_order_metric_names_broken_files(files):
    broken, overlaps, _ = files
    with pytest.raises(PanopticAnnotationError) as error:
        OcclusionOrderMetric(
            overlaps_file=str(broken), ins_ann_file=str(overlaps))
    _assert_names(error, broken)
    with pytest.raises(PanopticAnnotationError) as error:
        OcclusionOrderMetric(
            overlaps_file=str(overlaps), ins_ann_file=str(broken))
    _assert_names(error, broken)


@pytest.mark.parametrize('metric_type',
                         [PanopticOcclusionMetric, PanopticErrorMetric])
def test_pair_metrics_name_broken_files(files, tmp_path, metric_type):
    broken, overlaps, panoptic = files
    with pytest.raises(PanopticAnnotationError) as error:
        metric_type(
            overlaps_file=str(broken),
            ann_file=str(panoptic),
            seg_prefix=str(tmp_path))
    _assert_names(error, broken)
    with pytest.raises(PanopticAnnotationError) as error:
        metric_type(
            overlaps_file=str(overlaps),
            ann_file=str(broken),
            seg_prefix=str(tmp_path))
    _assert_names(error, broken)
