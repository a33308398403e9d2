"""The OpenMMLab stack that `make test` builds works as mmoanet needs."""
import pytest
import torch
from mmengine.config import Config

import mmoanet


def test_nms_suppresses_the_overlapping_box():
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    # IoU of the first two boxes is 81 / 119 > 0.5: the second goes.
    assert keep.tolist() == [0, 2]
    torch.testing.assert_close(dets[:, 4], torch.tensor([0.9, 0.7]))


def test_roi_align_matches_a_hand_computed_average():
    from mmcv.ops import RoIAlign

    # f(x, y) = x + 10 y is linear, so bilinear sampling is exact and each
    # bin's average is f at the bin centre.
    ys, xs = torch.meshgrid(torch.arange(8.), torch.arange(8.), indexing='ij')
    feature = (xs + 10 * ys)[None, None]
    # Box from (1, 2) to (5, 6) in the aligned (pixel-centre) convention.
    rois = torch.tensor([[0., 1.5, 2.5, 5.5, 6.5]])
    roi_align = RoIAlign((2, 2),
                         spatial_scale=1.,
                         sampling_ratio=2,
                         aligned=True)
    out = roi_align(feature, rois)[0, 0]
    centres_x = torch.tensor([2., 4.])
    centres_y = torch.tensor([3., 5.])
    expected = centres_x[None, :] + 10 * centres_y[:, None]
    torch.testing.assert_close(out, expected)


def test_mmdet_prefix_resolves_a_base_config():
    cfg = Config.fromfile('configs/oanet/oanet_r50_fpn_100k_coco-panoptic.py')
    # Inherited from mmdet's package through the `mmdet::` prefix.
    assert cfg.model.backbone.type == 'ResNet'
    assert cfg.model.type == 'OANet'


def test_public_names_exist():
    for name in mmoanet.__all__:
        assert hasattr(mmoanet, name), name


@pytest.mark.parametrize('registry_name,names', [
    ('MODELS',
     ['OANet', 'OANetStuffHead', 'SpatialRankingModule', 'SRMFusionHead']),
    ('DATASETS', ['CocoPanopticInstancesDataset']),
    ('TRANSFORMS', ['LoadPanopticInstanceAnnotations']),
    ('METRICS', ['MultiOrderPanopticMetric']),
])
def test_components_are_in_mmdet_registries(registry_name, names):
    import mmdet.registry
    registry = getattr(mmdet.registry, registry_name)
    ours = {
        name
        for name, cls in registry.module_dict.items()
        if cls.__module__.startswith('mmoanet.')
    }
    assert set(names) <= ours
    for name in ours:
        # Found through mmdet's registry, as a config with type=name is.
        assert registry.get(name).__module__.startswith('mmoanet.')
