"""SRMFusionHead as the fusion head of mmdet's unchanged PanopticFPN.

The shrunk stock baseline and its SRM variant (configs/panoptic_fpn_srm/)
are built with random weights and run through mmdet's own
``TwoStagePanopticSegmentor.predict``.
"""
import os.path as osp

import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.models.detectors import PanopticFPN
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmoanet  # noqa: F401
from tests.utils import REPO_ROOT

register_all_modules()
STOCK = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn',
                 'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')
SRM = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn_srm',
               'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py')


def build(path, **panoptic_cfg):
    cfg = Config.fromfile(path)
    # Random weights give low scores: keep every box so instances exist.
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    cfg.model.test_cfg.panoptic.update(panoptic_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def inputs(sizes=((91, 92), (64, 63))):
    """Two images of odd sizes, padded to a multiple of 32."""
    samples = [
        DetDataSample(
            metainfo=dict(
                img_shape=size,
                ori_shape=size,
                pad_shape=(96, 96),
                batch_input_shape=(96, 96),
                scale_factor=(1.0, 1.0))) for size in sizes
    ]
    torch.manual_seed(1)
    return torch.randn(len(sizes), 3, 96, 96), samples


def test_srm_config_keeps_mmdets_detector():
    model = build(SRM)
    assert type(model) is PanopticFPN
    head = model.panoptic_fusion_head
    assert type(head).__name__ == 'SRMFusionHead'
    assert head.seg_layout == 'stuff_things'
    assert head.test_cfg.uncovered_things == 'void'
    assert head.test_cfg.stuff_area_mode == 'class'
    # mmdet's PanopticFPNHead: C_st + 1 channels.
    assert model.semantic_head.num_classes == head.num_stuff_classes + 1


def test_predict_through_mmdets_panoptic_fpn():
    model = build(SRM, compare_orders=True)
    batch_inputs, samples = inputs()
    with torch.no_grad():
        results = model.predict(batch_inputs, samples)
    num_classes = model.panoptic_fusion_head.num_classes
    num_things = model.panoptic_fusion_head.num_things_classes
    laid = 0
    for result, size in zip(results, ((91, 92), (64, 63))):
        panoptic = result.pred_panoptic_seg
        assert panoptic.sem_seg.dtype == torch.int32
        assert panoptic.sem_seg.shape == (1, ) + size
        ids = panoptic.sem_seg
        labels = ids % INSTANCE_OFFSET
        is_instance = ids >= INSTANCE_OFFSET
        assert (labels <= num_classes).all()
        assert (labels[is_instance] < num_things).all()
        assert (labels[~is_instance] >= num_things).all()
        laid += len(torch.unique(ids[is_instance]))
        # The second order rides beside mmdet's field.
        assert panoptic.sem_seg_score.shape == panoptic.sem_seg.shape
        assert torch.equal(panoptic.sem_seg_srm, panoptic.sem_seg)
    assert laid > 0


@pytest.mark.parametrize('seed', [0, 1])
def test_score_order_equals_stock_heuristic_fusion(seed):
    """Same weights, same input: SRMFusionHead in score order with the
    config's mmdet rules gives exactly stock PanopticFPN's panoptic ids;
    in SRM order it may differ only where instances overlap."""
    stock = build(STOCK)
    # The "things" channel wins on about half of the pixels, so that
    # uncovered thing pixels (VOID) occur.
    stock.semantic_head.conv_logits.bias.data[-1] = 0.35
    srm_score = build(SRM, compare_orders=True)
    missing, unexpected = srm_score.load_state_dict(
        stock.state_dict(), strict=False)
    assert not unexpected
    assert all(key.startswith('panoptic_fusion_head.srm.') for key in missing)
    srm_score.panoptic_fusion_head.rank_by = 'score'
    batch_inputs, samples = inputs()
    batch_inputs += seed
    with torch.no_grad():
        expected = stock.predict(batch_inputs, [s.clone() for s in samples])
        results = srm_score.predict(batch_inputs, [s.clone() for s in samples])
    void = srm_score.panoptic_fusion_head.num_classes
    for result, reference in zip(results, expected):
        reference_ids = reference.pred_panoptic_seg.sem_seg
        assert (reference_ids >= INSTANCE_OFFSET).any()
        assert (reference_ids == void).any()
        assert torch.equal(result.pred_panoptic_seg.sem_seg, reference_ids)
        assert torch.equal(result.pred_panoptic_seg.sem_seg_score,
                           reference.pred_panoptic_seg.sem_seg)
