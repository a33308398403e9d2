"""OANet built from the shipped config, shrunk to a depth-18 CPU model."""
import os.path as osp
from unittest import mock

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.structures import PixelData

import mmoanet  # noqa: F401  (registers OANet and its heads)

CONFIG = osp.join(
    osp.dirname(__file__), *[osp.pardir] * 3, 'configs', 'oanet',
    'oanet_r50_fpn_100k_coco-panoptic.py')
NUM_THINGS, NUM_STUFF = 80, 53
INSTANCE_OFFSET = 1000
# Odd sizes; ori_shape differs from img_shape to exercise rescaling.
IMG_SHAPES = [(3, 128, 127), (3, 91, 92)]
ORI_SHAPES = [(64, 63), (91, 92)]
LOSS_KEYS = {
    'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask',
    'loss_seg', 'loss_srm'
}


def small_model_cfg(share_mode='skip', **panoptic_overrides):
    """The shipped model config with a depth-18 backbone and 32 channels."""
    model = Config.fromfile(CONFIG).model
    chs = 32
    model.backbone.update(depth=18, init_cfg=None)
    model.neck.update(in_channels=[64, 128, 256, 512], out_channels=chs)
    model.rpn_head.update(in_channels=chs, feat_channels=chs)
    roi = model.roi_head
    roi.bbox_roi_extractor.out_channels = chs
    roi.bbox_head.update(in_channels=chs, fc_out_channels=64)
    roi.mask_roi_extractor.out_channels = chs
    roi.mask_head.update(num_convs=1, in_channels=chs, conv_out_channels=chs)
    model.semantic_head.update(
        in_channels=chs,
        feat_channels=16,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
    # Fewer proposals and RoI samples: the images are tiny anyway.
    model.train_cfg.rpn_proposal.max_per_img = 100
    model.train_cfg.rcnn.sampler.num = 64
    model.test_cfg.rpn.max_per_img = 100
    model.share_mode = share_mode
    if share_mode != 'skip':
        model.stuff_neck = model.neck.copy()
    if share_mode == 'none':
        model.stuff_backbone = model.backbone.copy()
    model.test_cfg.panoptic.update(panoptic_overrides)
    return model


def build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def make_batch(model, num_items=(3, 2), training=True):
    """Two images with overlapping masks and a panoptic-style sem seg."""
    data = demo_mm_inputs(
        batch_size=2,
        image_shapes=IMG_SHAPES,
        num_items=list(num_items),
        num_classes=NUM_THINGS,
        with_mask=True)
    generator = torch.Generator().manual_seed(0)
    for sample, ori_shape in zip(data['data_samples'], ORI_SHAPES):
        img_h, img_w = sample.img_shape
        sample.set_metainfo(
            dict(
                ori_shape=ori_shape,
                scale_factor=(img_w / ori_shape[1], img_h / ori_shape[0])))
        # Stuff everywhere, then the (non-overlapping) thing pixels on
        # top, a corner of ignore: the convention of docs/design.md.
        sem_seg = torch.randint(
            NUM_THINGS,
            NUM_THINGS + NUM_STUFF, (img_h, img_w),
            generator=generator)
        instances = sample.gt_instances
        masks = torch.as_tensor(instances.masks.masks, dtype=torch.bool)
        for mask, label in zip(masks, instances.labels):
            sem_seg[mask] = label
        sem_seg[:4, :4] = 255
        sample.gt_sem_seg = PixelData(sem_seg=sem_seg[None].to(torch.uint8))
    return model.data_preprocessor(data, training=training)


def assert_finite(losses):
    """Every loss of Eq. 1 is present and finite (RPN ones per level)."""
    assert LOSS_KEYS <= set(losses)
    for name in LOSS_KEYS:
        value = losses[name]
        if isinstance(value, list):
            value = sum(value)
        assert torch.isfinite(value), name


def count_rpn_conv_calls(model):
    calls = []
    handle = model.rpn_head.rpn_conv.register_forward_hook(
        lambda *args: calls.append(1))
    return calls, handle


def test_config_is_the_paper_setting():
    cfg = Config.fromfile(CONFIG)
    assert cfg.custom_imports.imports == ['mmoanet']
    assert cfg.model.type == 'OANet'
    assert cfg.model.backbone.depth == 50
    assert cfg.model.backbone.init_cfg.checkpoint == 'torchvision://resnet50'
    assert cfg.model.stuff_loss_weight == 0.25
    assert cfg.model.share_mode == 'skip'
    assert cfg.model.semantic_head.supervision == 'all'
    assert cfg.model.panoptic_fusion_head.srm.type == 'SpatialRankingModule'
    assert cfg.model.test_cfg.rcnn.max_per_img == 100
    assert cfg.model.test_cfg.panoptic.stuff_area_limit == 4900
    assert cfg.model.test_cfg.panoptic.compare_orders
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == 100000
    assert 'max_epochs' not in cfg.train_cfg
    warmup, steps = cfg.param_scheduler
    assert (warmup.start_factor, warmup.end) == (0.1, 2000)
    assert steps.milestones == [60000, 80000] and steps.gamma == 0.1
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001)
    assert cfg.train_dataloader.batch_size * 8 == 16
    model = MODELS.build(cfg.model)  # the full R-50 model builds
    assert model.semantic_head.conv_logits.out_channels == 133


def test_share_mode_is_checked():
    with pytest.raises(ValueError, match='share_mode'):
        MODELS.build(small_model_cfg(share_mode='fpn'))
    cfg = small_model_cfg(share_mode='none')
    cfg.stuff_backbone = None
    with pytest.raises(ValueError, match='stuff_backbone'):
        MODELS.build(cfg)


@pytest.mark.parametrize('share_mode', ['skip', 'backbone', 'none'])
def test_loss_predict_and_tensor_modes(share_mode):
    model = build(small_model_cfg(share_mode))
    assert model.share_mode == share_mode
    assert hasattr(model, 'stuff_neck') == (share_mode != 'skip')
    assert hasattr(model, 'stuff_backbone') == (share_mode == 'none')
    calls, handle = count_rpn_conv_calls(model)

    model.train()
    losses = model(**make_batch(model), mode='loss')
    assert_finite(losses)
    # The RPN conv runs once per FPN level, even when the stuff branch
    # reads its output.
    assert len(calls) == 5

    # Gradient of the stuff loss reaches the RPN conv only when shared.
    losses['loss_seg'].backward()
    rpn_grad = model.rpn_head.rpn_conv.weight.grad
    assert (rpn_grad is not None) == (share_mode == 'skip')
    # (the residual branches start at zero: zero_init_residual)
    backbone_grad = model.backbone.layer4[0].downsample[0].weight.grad
    if share_mode == 'none':
        assert backbone_grad is None
    else:
        assert backbone_grad.abs().sum() > 0

    model.eval()
    calls.clear()
    with torch.no_grad():
        samples = model(**make_batch(model, training=False), mode='predict')
    assert len(calls) == 5
    assert samples[1].pred_panoptic_seg.sem_seg.shape == (1, 91, 92)

    calls.clear()
    with torch.no_grad():
        outs = model(**make_batch(model, training=False), mode='tensor')
    assert len(calls) == 5
    assert outs[-1].shape == (2, NUM_THINGS + NUM_STUFF, 32, 32)
    cls_scores, bbox_preds = outs[:2]
    assert [s.shape[-2:] for s in cls_scores] == [(32, 32), (16, 16), (8, 8),
                                                  (4, 4), (2, 2)]
    handle.remove()


def test_predict_keeps_instances_stuff_and_every_order():
    cfg = small_model_cfg()
    cfg.test_cfg.rcnn.score_thr = 0.0  # an untrained model: keep boxes
    model = build(cfg).eval()
    with torch.no_grad():
        samples = model(**make_batch(model, training=False), mode='predict')
    for sample, ori_shape in zip(samples, ORI_SHAPES):
        for key in ('pred_panoptic_seg', 'pred_panoptic_seg_srm',
                    'pred_panoptic_seg_score'):
            assert sample.get(key).sem_seg.shape == (1, *ori_shape), key
        instances = sample.pred_instances
        num = len(instances)
        assert 0 < num <= 100
        assert instances.bboxes.shape == (num, 4)
        assert instances.masks.shape == (num, *ori_shape)
        assert instances.rank_scores.shape == (num, )
        assert ((instances.rank_scores >= 0) &
                (instances.rank_scores <= 1)).all()
        sem_seg = sample.pred_sem_seg.sem_seg
        assert sem_seg.shape == (1, *ori_shape)
        assert sem_seg.min() >= NUM_THINGS
        assert sem_seg.max() < NUM_THINGS + NUM_STUFF


def test_predict_without_detections_gives_stuff_only():
    cfg = small_model_cfg(stuff_area_limit=0)
    cfg.test_cfg.rcnn.score_thr = 1.0
    model = build(cfg).eval()
    with torch.no_grad():
        samples = model(**make_batch(model, training=False), mode='predict')
    for sample, ori_shape in zip(samples, ORI_SHAPES):
        assert len(sample.pred_instances) == 0
        assert sample.pred_instances.rank_scores.shape == (0, )
        ids = sample.pred_panoptic_seg.sem_seg
        assert ids.shape == (1, *ori_shape)
        assert (ids < INSTANCE_OFFSET).all()  # no instance ids
        assert (ids >= NUM_THINGS).all()  # stuff labels or VOID


def test_loss_with_empty_ground_truth():
    model = build(small_model_cfg()).train()
    data = make_batch(model, num_items=(0, 0))
    losses = model(**data, mode='loss')
    assert_finite(losses)
    assert losses['loss_mask'].item() == 0
    assert losses['loss_srm'].item() == 0


def test_lambda_is_applied_exactly_once():
    model = build(small_model_cfg()).train()
    data = make_batch(model)
    seg_losses = []
    for weight in (0.25, 0.5):
        model.stuff_loss_weight = weight
        torch.manual_seed(1)  # same proposals and RoI samples
        seg_losses.append(model(**data, mode='loss')['loss_seg'])
    torch.testing.assert_close(seg_losses[1], 2 * seg_losses[0])
    stuff_feats = model._shared_forward(data['inputs'])[2]
    head_loss = model.semantic_head.loss(stuff_feats, data['data_samples'])
    torch.testing.assert_close(seg_losses[0], 0.25 * head_loss['loss_seg'])


@pytest.mark.parametrize('supervision,channels',
                         [('all', NUM_THINGS + NUM_STUFF),
                          ('stuff', NUM_STUFF)])
def test_stuff_supervision_modes(supervision, channels):
    cfg = small_model_cfg()
    cfg.semantic_head.supervision = supervision
    model = build(cfg).train()
    assert model.semantic_head.conv_logits.out_channels == channels
    losses = model(**make_batch(model), mode='loss')
    assert losses['loss_seg'].item() > 0


@pytest.mark.parametrize('train_input', ['pred', 'gt'])
def test_srm_training_input(train_input):
    cfg = small_model_cfg()
    cfg.panoptic_fusion_head.srm.train_input = train_input
    cfg.test_cfg.rcnn.score_thr = 0.0  # untrained: keep predictions
    model = build(cfg).train()
    data = make_batch(model)
    fusion_head = model.panoptic_fusion_head
    with mock.patch.object(
            fusion_head, 'loss', wraps=fusion_head.loss) as srm_loss:
        losses = model(**data, mode='loss')
    srm_loss.assert_called_once()
    instances_list = srm_loss.call_args.args[0]
    if train_input == 'gt':
        for instances, sample in zip(instances_list, data['data_samples']):
            assert instances is sample.gt_instances
            assert isinstance(instances.masks, BitmapMasks)
    else:
        for instances, sample in zip(instances_list, data['data_samples']):
            assert 0 < len(instances) <= 100
            # Masks at the resized-input scale, detached.
            assert instances.masks.shape[1:] == sample.img_shape
            assert not instances.masks.requires_grad
            assert not instances.scores.requires_grad
    assert torch.isfinite(losses['loss_srm'])
    losses['loss_srm'].backward()
    srm_grads = [p.grad for p in fusion_head.srm.parameters()]
    assert all(grad is not None for grad in srm_grads)
    # The SRM is trained on its own; nothing flows back into Mask R-CNN.
    assert model.roi_head.mask_head.conv_logits.weight.grad is None
