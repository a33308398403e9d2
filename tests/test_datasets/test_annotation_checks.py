"""annotation_checks: what is wrong with a COCO annotation, without
decoding."""
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmoanet.datasets.annotation_checks import (bbox_problem, duplicates,
                                                iscrowd_problem, rle_run_total,
                                                rle_run_totals,
                                                segmentation_problem)


def encoded(mask: np.ndarray) -> str:
    """pycocotools' compressed RLE counts of a (H, W) 0/1 mask."""
    return mask_utils.encode(np.asfortranarray(mask.astype(
        np.uint8)))['counts'].decode()


FULL_4X6 = encoded(np.ones((4, 6)))


@pytest.mark.parametrize(
    'segmentation',
    [
        dict(size=[4, 6], counts=FULL_4X6),
        dict(size=[4, 6], counts=FULL_4X6.encode()),
        dict(size=[4, 6], counts=[3, 20, 1]),
        [[0, 0, 6, 0, 6, 4, 0, 4]],
        [[-0.5, 0, 6.9, 0, 6, 4.9]],
        [[1, 1, 2, 2]],  # under three points: mmdet ignores the instance
    ])
def test_valid_segmentations_pass(segmentation):
    assert segmentation_problem(segmentation, 4, 6) is None


@pytest.mark.parametrize(
    'segmentation,problem',
    [
        (dict(size=[6, 4], counts='abc'), 'RLE is 6x4 (size [height, width]) '
         'but the image is 4x6'),
        (dict(counts='abc'), 'no valid size'),
        (dict(size=[4, 6], counts=[3, 20
                                   ]), 'sum to 23, not height x width = 24'),
        (dict(size=[4, 6], counts=[30, -6]), 'not all non-negative integers'),
        (dict(size=[4, 6], counts=[3.5, 20.5
                                   ]), 'not all non-negative integers'),
        (dict(size=[4, 6], counts=5), 'RLE counts are a int'),
        # A 5x6 mask's counts under a 4x6 size: pycocotools would paint past
        # the end of the mask.
        (dict(size=[4, 6], counts=encoded(np.ones((5, 6)))),
         'compressed RLE sum to 30, not height x width = 24: the counts '
         'encode another size'),
        (dict(size=[4, 6], counts=encoded(np.ones((3, 6)))), 'sum to 18'),
        (dict(size=[4, 6], counts='a'), 'not a valid compressed RLE'),
        (dict(size=[4, 6], counts='0 h'), 'not a valid compressed RLE'),
        ([[0, 0, 8, 0, 8, 4]], 'polygon 0 reaches x 0..8, y 0..4, outside the '
         '4x6 image'),
        ([[0, 0, 1, 0, 1, -2]], 'reaches x 0..1, y -2..0'),
        ([[0, 0, 1]], 'odd number of coordinates (3)'),
        ([[0, 0, 1, '1', 2, 2]], 'polygon 0 is not a flat list of numbers'),
        ([[[0, 0], [1, 1], [2, 0], [3, 3]]
          ], 'polygon 0 is not a flat list of numbers'),
        ([(0, 0, 1, 1, 2, 0)], 'polygon 0 is not a flat list of numbers'),
        (None, 'neither polygons (a list) nor an RLE (a dict)'),
    ])
def test_problems_are_named(segmentation, problem):
    assert problem in segmentation_problem(segmentation, 4, 6)


def test_precomputed_rle_total_is_used():
    rle = dict(size=[4, 6], counts=FULL_4X6)
    assert segmentation_problem(rle, 4, 6, rle_total=24) is None
    assert 'sum to 25' in segmentation_problem(rle, 4, 6, rle_total=25)


def test_run_totals_agree_with_pycocotools():
    rng = np.random.default_rng(0)
    counts, sizes = [], []
    for _ in range(200):
        height, width = rng.integers(1, 90, size=2)
        density = rng.choice([0.0, 0.02, 0.5, 0.98, 1.0])
        mask = rng.random((height, width)) < density
        if rng.random() < 0.3:  # long runs, several characters a run
            mask[:] = False
            mask[height // 3:, :width // 2] = True
        counts.append(encoded(mask))
        sizes.append(int(height * width))
    assert [rle_run_total(c) for c in counts] == sizes
    assert rle_run_totals(counts).tolist() == sizes
    invalid = ['', 'a', '0 h', '\x7f', 'o' * 14 + '0']
    assert [rle_run_total(c) for c in invalid] == [-1] * len(invalid)
    mixed = counts[:3] + invalid + counts[3:6]
    assert rle_run_totals(
        mixed).tolist() == sizes[:3] + [-1] * len(invalid) + sizes[3:6]
    assert rle_run_totals([]).tolist() == []
    # Decoded in chunks of CHUNK_CHARS characters: same totals.
    from mmoanet.datasets import annotation_checks
    original = annotation_checks.CHUNK_CHARS
    try:
        annotation_checks.CHUNK_CHARS = 50
        assert rle_run_totals(
            mixed).tolist() == sizes[:3] + [-1] * len(invalid) + sizes[3:6]
        assert rle_run_totals(counts).tolist() == sizes
    finally:
        annotation_checks.CHUNK_CHARS = original


@pytest.mark.parametrize(
    'bbox', [[0, 0, 6, 4], [5.5, 3.5, 3, 3], [-2, -2, 3, 3], [2, 2, 0, 0]])
def test_valid_boxes_pass(bbox):
    assert bbox_problem(bbox, 4, 6) is None


@pytest.mark.parametrize('bbox,problem', [
    ([0, 0, 6], 'not four numbers'),
    ('0 0 6 4', 'not four numbers'),
    ([0, 0, None, 4], 'not four numbers'),
    ([0, 0, math.nan, 4], 'is not finite'),
    ([0, 0, math.inf, 4], 'is not finite'),
    ([3, 1, -2, 2], 'negative width or height'),
    ([6, 0, 2, 2], 'outside the 4x6 image'),
    ([0, -5, 2, 3], 'outside the 4x6 image'),
])
def test_bad_boxes_are_named(bbox, problem):
    assert problem in bbox_problem(bbox, 4, 6)


def test_iscrowd_and_duplicates():
    assert iscrowd_problem(dict(iscrowd=1)) is None
    assert iscrowd_problem(dict()) is None
    for value in (2, 'yes', None, -1):
        assert 'not 0 or 1' in iscrowd_problem(dict(iscrowd=value))
    assert duplicates([3, 1, 3, 2, 1, 3]) == [3, 1]
    assert duplicates([]) == []
