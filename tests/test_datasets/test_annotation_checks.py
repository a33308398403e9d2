"""segmentation_problem: what is wrong with a COCO mask, without decoding."""
import pytest

from mmoanet.datasets.annotation_checks import segmentation_problem


@pytest.mark.parametrize(
    'segmentation',
    [
        dict(size=[4, 6], counts='abc'),
        dict(size=[4, 6], counts=[3, 20, 1]),
        [[0, 0, 6, 0, 6, 4, 0, 4]],
        [[-0.5, 0, 6.9, 0, 6, 4.9]],
        [[1, 1, 2, 2]],  # under three points: mmdet ignores the instance
    ])
def test_valid_segmentations_pass(segmentation):
    assert segmentation_problem(segmentation, 4, 6) is None


@pytest.mark.parametrize('segmentation,problem', [
    (dict(size=[6, 4], counts='abc'), 'RLE is 6x4 (size [height, width]) '
     'but the image is 4x6'),
    (dict(counts='abc'), 'no valid size'),
    (dict(size=[4, 6], counts=[3, 20]), 'sum to 23, not height x width = 24'),
    (dict(size=[4, 6], counts=5), 'RLE counts are a int'),
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
