# mmdet's stock PanopticFPN, shrunk to exactly the size and budget of the
# tiny OANet (configs/oanet/oanet_r18_fpn_1200i_synthetic-occlusion.py), as
# the baseline of the head-to-head benchmark
# (tools/analysis_tools/head_to_head.py). Everything that makes it
# PanopticFPN stays as mmdet ships it:
#   - instance masks cut from the panoptic PNG (mmdet's
#     CocoPanopticDataset + LoadPanopticAnnotations), so they never overlap;
#   - PanopticFPNHead (C_st + 1 channels, loss weight 0.5);
#   - HeuristicFusionHead (instances laid by detection score), score_thr
#     0.6 and class-agnostic NMS.
# What is shared with the tiny OANet, so that only the method differs:
# backbone, FPN width, RPN/RoI sizes, image size, optimizer, schedule,
# batch size, data. stuff_area_limit is mmdet's 4096 px scaled by the same
# image-area ratio as the tiny OANet's 4900 -> 400.
_base_ = 'mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmoanet'], allow_failed_imports=False)

from mmoanet.datasets import SYNTHETIC_OCCLUSION_METAINFO  # noqa: E402

num_things_classes = len(SYNTHETIC_OCCLUSION_METAINFO['thing_classes'])
num_stuff_classes = len(SYNTHETIC_OCCLUSION_METAINFO['stuff_classes'])
image_size = 160
fpn_channels = 64
max_iters = 1200

model = dict(
    backbone=dict(
        depth=18,
        base_channels=32,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=fpn_channels),
    rpn_head=dict(
        in_channels=fpn_channels,
        feat_channels=fpn_channels,
        anchor_generator=dict(scales=[4], strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(
            in_channels=fpn_channels,
            fc_out_channels=256,
            num_classes=num_things_classes),
        mask_roi_extractor=dict(out_channels=fpn_channels),
        mask_head=dict(
            num_convs=2,
            in_channels=fpn_channels,
            conv_out_channels=fpn_channels,
            num_classes=num_things_classes)),
    semantic_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        in_channels=fpn_channels,
        inner_channels=32,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True)),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=600, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=30),
        panoptic=dict(stuff_area_limit=334)))

data_root = 'data/synthetic_occlusion/'
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(
        type='LoadPanopticAnnotations',
        with_bbox=True,
        with_mask=True,
        with_seg=True,
        backend_args=backend_args),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type='CocoPanopticDataset',
        data_root=data_root,
        ann_file='annotations/panoptic_train.json',
        data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
        metainfo=SYNTHETIC_OCCLUSION_METAINFO,
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        type='CocoPanopticDataset',
        data_root=data_root,
        ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='val/', seg='annotations/panoptic_val/'),
        metainfo=SYNTHETIC_OCCLUSION_METAINFO,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# The same PQ code as every OANet evaluation (it scores any model's
# 'pred_panoptic_seg'), so the head-to-head compares models, not metrics.
val_evaluator = dict(
    _delete_=True,
    type='MultiOrderPanopticMetric',
    ann_file=data_root + 'annotations/panoptic_val.json',
    seg_prefix=data_root + 'annotations/panoptic_val/')
test_evaluator = val_evaluator

train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=50,
        end=max_iters,
        T_max=max_iters - 50,
        eta_min=1e-5)
]
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10.0))
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=300, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
