# OANet with ResNet-50-FPN, the ablation model of Liu et al., CVPR 2019
# (Sec. 4.2). Mask R-CNN instance branch, stuff branch on the RPN's 3x3
# "skip-connection" convs (Fig. 3) and the Spatial Ranking Module (Sec. 3.2).
#
# Data: COCO panoptic 2017 for stuff and SRM labels, with the instance
# branch trained on COCO's instance annotations (overlapping masks), as the
# paper does; oanet-pano-instance-gt_r50_fpn_100k_coco-panoptic.py is Table 3's alternative.
# Expected layout (docs/training_and_testing.md):
#   data/coco/{train2017,val2017}/
#   data/coco/annotations/panoptic_{train,val}2017.json + PNG folders
#   data/coco/annotations/instances_{train,val}2017.json
# The schedule is iteration-based, as in the paper.
_base_ = 'mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmoanet'], allow_failed_imports=False)

num_things_classes = 80  # COCO panoptic (Sec. 4.1)
num_stuff_classes = 53

model = dict(
    type='OANet',
    # Table 4: sharing backbone + skip-connection convs is best (37.2 PQ).
    share_mode='skip',
    # lambda in Eq. 1; Table 1: 0.25 is best, 1.0 did not converge.
    stuff_loss_weight=0.25,
    # "ResNet-50 pretrained on ImageNet" (Sec. 4.2).
    backbone=dict(
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    semantic_head=dict(
        _delete_=True,
        type='OANetStuffHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        in_channels=256,  # rpn_head.feat_channels: it reads the RPN convs
        feat_channels=128,
        start_level=0,  # P2..P5, upsampled to stride 4 and concatenated
        end_level=4,
        # Table 2: supervising all 133 classes (Object-SC) beats 53 stuff
        # classes (Stuff-SC) by 0.5 PQ.
        supervision='all',
        # Not in the paper; GN as in PanopticFPN (2 images per GPU).
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        # lambda is applied by OANet, so the head's weight stays 1.0.
        loss_seg=dict(
            type='CrossEntropyLoss',
            ignore_index=255,
            avg_non_ignore=True,
            loss_weight=1.0)),
    panoptic_fusion_head=dict(
        _delete_=True,
        type='SRMFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        srm=dict(
            type='SpatialRankingModule',
            num_things_classes=num_things_classes,
            kernel='1x7+7x1',  # large kernel block, best row of Table 5
            # Sec. 4.2: ground-truth masks (COCO instances overlap) during
            # training, the instance branch's predictions at inference.
            train_input='gt'),
        # Lay instances by SRM rank score (Eq. 3) into 'pred_panoptic_seg'.
        rank_by='srm'),
    test_cfg=dict(
        rcnn=dict(
            # Not in the paper; PanopticFPN's value, keeps confident
            # instances for the canvas.
            score_thr=0.6,
            # PanopticFPN's class-agnostic NMS; Mask R-CNN's per-class NMS
            # (oanet-per-class-nms_r50_fpn_100k_coco-panoptic.py) changed PQ by +0.0 to +0.1
            # over 3 seeds x 2 annotation styles (docs/benchmarks.md).
            nms=dict(type='nms', iou_threshold=0.5, class_agnostic=True),
            max_per_img=100,  # "max number of boxes ... to 100" (Sec. 4.2)
            mask_thr_binary=0.5),
        panoptic=dict(
            mask_overlap=0.5,
            stuff_area_limit=4900,  # "min area of a connected stuff area"
            stuff_area_mode='connected',
            # A pixel no laid instance covers, whose stuff-branch argmax is
            # a thing, is VOID (mmdet's rule), not the best stuff class:
            # +1.5 to +2.2 PQ_st on the same weights, PQ_th unchanged
            # (head-to-head seed 0, three annotation styles;
            # docs/benchmarks.md).
            uncovered_things='void',
            max_per_img=100,
            # Also write the SRM and the detection-score orders, to compare
            # both from one model (Table 3).
            compare_orders=True)))

data_root = 'data/coco/'
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadPanopticInstanceAnnotations', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadPanopticInstanceAnnotations', backend_args=backend_args),
    dict(
        type='PackDetInputs',
        # seg_map_path and segments_info let --show-dir draw the ground
        # truth from its PNG.
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'seg_map_path', 'segments_info'))
]
# Batch 16 = 8 GPUs x 2 images (Sec. 4.2).
train_dataloader = dict(
    batch_size=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CocoPanopticInstancesDataset',
        data_root=data_root,
        ann_file='annotations/panoptic_train2017.json',
        ins_ann_file='annotations/instances_train2017.json',
        instance_source='instances',
        data_prefix=dict(
            img='train2017/', seg='annotations/panoptic_train2017/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type='CocoPanopticInstancesDataset',
        data_root=data_root,
        ann_file='annotations/panoptic_val2017.json',
        ins_ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# PQ/SQ/RQ for SRM order and score order of the same predictions.
val_evaluator = dict(
    _delete_=True,
    type='MultiOrderPanopticMetric',
    ann_file=data_root + 'annotations/panoptic_val2017.json',
    seg_prefix=data_root + 'annotations/panoptic_val2017/')
test_evaluator = val_evaluator

# Sec. 4.2: 100k iterations; lr 0.02 after a 2k-iteration linear warm-up
# from 0.002, 0.002 after 60k and 0.0002 after 80k iterations.
max_iters = 100000
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=10000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[60000, 80000],
        gamma=0.1)
]
# SGD, momentum 0.9, weight decay 1e-4 (Sec. 4.2).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10000))
# mmengine loads checkpoints non-strictly: refuse one of another model when
# testing or resuming, log every skipped key of a warm start to the log file
# (allow_partial_load = True relaxes the refusal).
custom_hooks = [dict(type='CheckpointMatchHook')]
# One readable picture per image (tools/test.py --show-dir, inference):
# the panoptic result alone, score and SRM order side by side, and the
# ground truth beside them.
visualizer = dict(type='PanopticLocalVisualizer')
log_processor = dict(by_epoch=False)
