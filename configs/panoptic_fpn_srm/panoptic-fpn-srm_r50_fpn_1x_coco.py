# mmdet's PanopticFPN, unchanged, with OANet's Spatial Ranking Module
# (Liu et al., CVPR 2019, Sec. 3.2) as its panoptic fusion head: instances
# are laid by SRM rank score (Eq. 3) instead of detection score. Everything
# else is mmdet's config, so mmdet's released checkpoints run with it once
# an SRM is added to them (configs/oanet/README.md, "SRM in PanopticFPN"):
#
#   python tools/train.py configs/srm/srm_1x7-7x1_15k_coco-panoptic.py
#   python tools/model_converters/add_srm_to_panoptic_fpn.py \
#       panoptic_fpn_r50_fpn_1x_coco_<...>.pth \
#       work_dirs/srm_1x7-7x1_15k_coco-panoptic/iter_15000.pth \
#       panoptic-fpn-srm_r50.pth
#   python tools/test.py configs/panoptic_fpn_srm/<this file> \
#       panoptic-fpn-srm_r50.pth
#
# PanopticFPN's own training does not train the SRM (mmdet's
# TwoStagePanopticSegmentor never calls the fusion head's loss); the SRM is
# trained alone on the annotations (configs/srm/), from the COCO
# *instance* masks of instances_train2017.json: the SRM only learns where
# masks of different classes overlap (Eq. 2), which the panoptic PNG's
# masks never do.
_base_ = 'mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmoanet'], allow_failed_imports=False)

num_things_classes = 80
num_stuff_classes = 53

# Every evaluation shows the SRM and the score order side by side: PQ of
# both from one inference (MultiOrderPanopticMetric scores every order the
# fusion head writes, with mmdet's ann_file and seg_prefix), and pictures
# (--show-dir) of both orders with the ground truth.
val_evaluator = dict(type='MultiOrderPanopticMetric')
test_evaluator = val_evaluator
visualizer = dict(type='PanopticLocalVisualizer')

model = dict(
    panoptic_fusion_head=dict(
        _delete_=True,
        type='SRMFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        # PanopticFPNHead: C_st stuff channels, then one "things" channel.
        seg_layout='stuff_things',
        srm=dict(
            type='SpatialRankingModule',
            num_things_classes=num_things_classes,
            kernel='1x7+7x1',  # large kernel block, best row of Table 5
            train_input='gt'),
        rank_by='srm'),
    # mmdet's fusion rules except the order, so the two heads differ only
    # in it: stuff area per class (4096 px, inherited), and thing pixels
    # that no laid instance covers are VOID (HeuristicFusionHead's rule).
    # The SRM orders instances of different classes; two of one class share
    # its channel, so they keep detection-score order, which lays an object
    # before a low-score fragment of it (same_class_order='score', not in
    # the paper; +0.3 to +1.3 PQ over the paper's 'rank' on the synthetic
    # head-to-head, docs/benchmarks.md).
    test_cfg=dict(
        panoptic=dict(
            stuff_area_mode='class',
            # Also write the score order beside the SRM order.
            compare_orders=True,
            uncovered_things='void',
            same_class_order='score',
            max_per_img=100)))

# The hooks of every mmoanet config (../_base_/default_runtime.py; this
# config inherits mmdet's runtime through mmdet's PanopticFPN config, which
# lists none): refuse a checkpoint of another model, stop at a NaN or
# infinite loss, keep the category ids in checkpoints.
custom_hooks = [
    dict(type='CheckpointMatchHook'),
    dict(type='FiniteLossHook'),
    dict(type='CategoryIdsHook')
]
