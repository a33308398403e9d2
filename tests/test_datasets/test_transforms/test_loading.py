"""LoadPanopticInstanceAnnotations options and the id decoding."""
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile

from mmoanet.datasets import (SYNTHETIC_OCCLUSION_METAINFO,
                              CocoPanopticInstancesDataset,
                              LoadPanopticInstanceAnnotations)
from mmoanet.evaluation.functional import bgr_to_id


def test_png_colours_decode_to_segment_ids():
    """The loader decodes OpenCV's BGR pixels with ``bgr_to_id``."""
    rgb = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 1], [255, 255, 255]]],
                   np.uint8)
    np.testing.assert_array_equal(
        bgr_to_id(rgb[..., ::-1]), [[1, 256, 65536, 256**3 - 1]])


@pytest.fixture(scope='module')
def first_result(synthetic_root) -> dict:
    """Data info of the first synthetic train image, image loaded."""
    dataset = CocoPanopticInstancesDataset(
        data_root=synthetic_root,
        ann_file='annotations/panoptic_train.json',
        ins_ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
        metainfo=SYNTHETIC_OCCLUSION_METAINFO)
    return LoadImageFromFile()(dataset.get_data_info(0))


@pytest.mark.parametrize('with_mask,with_seg', [(True, False), (False, True),
                                                (False, False)])
def test_flags(first_result, with_mask, with_seg):
    results = LoadPanopticInstanceAnnotations(
        with_mask=with_mask, with_seg=with_seg)(
            dict(first_result))
    assert ('gt_masks' in results) == with_mask
    assert ('gt_seg_map' in results) == with_seg
    assert len(results['gt_bboxes']) == len(results['gt_bboxes_labels'])


def test_without_png_loads_instances_only(first_result):
    results = dict(first_result, seg_map_path=None)
    results = LoadPanopticInstanceAnnotations()(results)
    assert 'gt_seg_map' not in results
    assert len(results['gt_masks']) == len(results['gt_bboxes']) > 0
