# mmdet's stock PanopticFPN, shrunk to exactly the size and budget of the
# tiny OANet (configs/oanet/oanet_r18_fpn_1200i_synthetic-occlusion.py), as
# the baseline of the head-to-head benchmark
# (projects/oanet_studies/head_to_head.py). Everything that makes it
# PanopticFPN stays as mmdet ships it:
#   - instance masks cut from the panoptic PNG (mmdet's
#     CocoPanopticDataset + LoadPanopticAnnotations), so they never overlap;
#   - PanopticFPNHead (C_st + 1 channels, loss weight 0.5);
#   - HeuristicFusionHead (instances laid by detection score), score_thr
#     0.6 and class-agnostic NMS.
# What is shared with the tiny OANet, so that only the method differs:
# backbone, FPN width, RPN/RoI sizes, image size, optimizer, schedule,
# batch size, data (the last three from the same _base_ files).
# stuff_area_limit is mmdet's 4096 px scaled by the same image-area ratio
# as the tiny OANet's 4900 -> 400.
_base_ = [
    '../_base_/models/panoptic-fpn_r50_fpn.py',
    '../_base_/datasets/synthetic-occlusion_panoptic.py',
    '../_base_/schedules/schedule_1200i_adamw.py'
]

custom_imports = dict(imports=['mmoanet'], allow_failed_imports=False)

num_things_classes = _base_.num_things_classes
num_stuff_classes = _base_.num_stuff_classes
fpn_channels = 64

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
