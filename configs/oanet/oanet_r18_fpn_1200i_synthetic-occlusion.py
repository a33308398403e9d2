# A tiny OANet that trains from scratch on the synthetic occlusion set
# (tools/dataset_converters/make_synthetic_occlusion.py) on 2 CPU cores in
# minutes: `make demo` uses it. Not a paper setting; it exists so that the
# whole pipeline, and the SRM-vs-score comparison, runs anywhere.
#
# Changes from oanet_r50_fpn_100k_coco-panoptic.py, each to cut CPU time:
#   ResNet-18 at half width (base_channels=32), random init, nothing frozen
#   (frozen_stages/norm_eval would freeze random weights); 64-channel FPN;
#   160 px images, batch 4; 300 proposals, 128 sampled RoIs, 2-conv mask
#   head; AdamW with a short warm-up instead of the paper's SGD schedule
#   (_base_/schedules/schedule_1200i_adamw.py). The synthetic set is read
#   with its instances JSON (CocoPanopticInstancesDataset), as OANet reads
#   COCO. The backbone, FPN, RPN and RoI sizes, data and schedule are those
#   of the stock baseline,
#   ../panoptic_fpn/panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py.
_base_ = [
    '../_base_/models/oanet_r50_fpn.py',
    '../_base_/datasets/synthetic-occlusion_panoptic.py',
    '../_base_/schedules/schedule_1200i_adamw.py'
]

num_things_classes = _base_.num_things_classes
num_stuff_classes = _base_.num_stuff_classes
fpn_channels = 64

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
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
        feat_channels=32,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True)),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        srm=dict(num_things_classes=num_things_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=600, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(score_thr=0.5, max_per_img=30),
        # Fusion runs at the original image size: 4900 px of a ~480x640
        # COCO image is the share that 400 px is of a 160x160 one.
        panoptic=dict(stuff_area_limit=400, max_per_img=30)))

# OANet's data path: instance masks from the instances JSON (amodal, they
# overlap), so that the SRM sees the conflicts it learns from.
image_size = _base_.image_size
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadPanopticInstanceAnnotations', backend_args=backend_args),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadPanopticInstanceAnnotations', backend_args=backend_args),
    dict(
        type='PackDetInputs',
        # seg_map_path and segments_info let --show-dir draw the ground
        # truth from its PNG.
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'seg_map_path', 'segments_info'))
]
train_dataloader = dict(
    dataset=dict(
        type='CocoPanopticInstancesDataset',
        ins_ann_file='annotations/instances_train.json',
        instance_source='instances',
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type='CocoPanopticInstancesDataset',
        ins_ann_file='annotations/instances_val.json',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Testing also measures how often each order puts the right instance of an
# overlapping pair on top (the synthetic set records the true order).
test_evaluator = [
    _base_.val_evaluator,
    dict(
        type='OcclusionOrderMetric',
        overlaps_file=_base_.data_root + 'annotations/overlaps_val.json',
        ins_ann_file=_base_.data_root + 'annotations/instances_val.json')
]

optim_wrapper = dict(
    # The SRM is a small linear module trained on conflicting pixels only;
    # at lr 1e-3 it is far from converged after 1,200 iterations. Trained
    # alone on ground-truth masks for 1,200 steps it ranked 82.4% of the
    # val pairs of different classes right at lr 1e-3 and 95.9% at lr 1e-2
    # (projects/oanet_studies/srm_alone.py; docs/benchmarks.md, Evidence).
    paramwise_cfg=dict(
        custom_keys={'panoptic_fusion_head.srm': dict(lr_mult=10.0)}))

# One readable picture per image (tools/test.py --show-dir, inference):
# the panoptic result alone, score and SRM order side by side, and the
# ground truth beside them.
visualizer = dict(type='PanopticLocalVisualizer')
