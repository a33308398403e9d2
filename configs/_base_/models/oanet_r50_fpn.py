# OANet with ResNet-50-FPN, the ablation model of Liu et al., CVPR 2019
# (Sec. 4.2): the model alone. Mask R-CNN instance branch, stuff branch on
# the RPN's 3x3 "skip-connection" convs (Fig. 3) and the Spatial Ranking
# Module (Sec. 3.2), on mmdet's PanopticFPN. Class counts are COCO
# panoptic's (Sec. 4.1); a config for another dataset sets them.
_base_ = './panoptic-fpn_r50_fpn.py'

custom_imports = dict(imports=['mmoanet'], allow_failed_imports=False)

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
        num_things_classes=80,
        num_stuff_classes=53,
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
        num_things_classes=80,
        num_stuff_classes=53,
        srm=dict(
            type='SpatialRankingModule',
            num_things_classes=80,
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
            # (oanet-per-class-nms_r50_fpn_100k_coco-panoptic.py) changed PQ
            # by +0.0 to +0.1 over 3 seeds x 2 annotation styles
            # (docs/benchmarks.md).
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
