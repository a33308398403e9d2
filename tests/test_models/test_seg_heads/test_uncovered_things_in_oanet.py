"""The VOID rule through OANet's own predict: the stuff head's things
channel reaches the fusion head, and the switch is test-time only."""
import os.path as osp

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmoanet  # noqa: F401
from tests.utils import REPO_ROOT

register_all_modules()
CONFIG = osp.join(REPO_ROOT, 'configs', 'oanet',
                  'oanet_r18_fpn_1200i_synthetic-occlusion.py')


def test_same_weights_give_void_or_stuff_where_things_win():
    cfg = Config.fromfile(CONFIG)
    cfg.model.test_cfg.rcnn.score_thr = 1.01  # no instance is laid
    cfg.model.test_cfg.panoptic.stuff_area_limit = 0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    head = model.semantic_head
    num_things = head.num_things_classes
    # The first thing class wins on every pixel of the stuff head.
    head.conv_logits.weight.data.zero_()
    head.conv_logits.bias.data.zero_()
    head.conv_logits.bias.data[0] = 5.
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(61, 64),
            ori_shape=(61, 64),
            pad_shape=(64, 64),
            batch_input_shape=(64, 64),
            scale_factor=(1., 1.)))
    inputs = torch.randn(1, 3, 64, 64)
    fusion = model.panoptic_fusion_head
    results = {}
    for rule in ('stuff', 'void'):
        fusion.test_cfg.uncovered_things = rule
        with torch.no_grad():
            results[rule] = model.predict(inputs, [sample.clone()])[0]
    void = fusion.num_classes
    stuff_seg = results['stuff'].pred_panoptic_seg.sem_seg
    void_seg = results['void'].pred_panoptic_seg.sem_seg
    assert stuff_seg.shape == void_seg.shape == (1, 61, 64)
    assert ((stuff_seg >= num_things) & (stuff_seg < void)).all()
    assert (void_seg == void).all()
    # pred_sem_seg stays the stuff argmax under either rule.
    assert torch.equal(results['stuff'].pred_sem_seg.sem_seg,
                       results['void'].pred_sem_seg.sem_seg)
