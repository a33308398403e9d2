# The tiny stock PanopticFPN of the head-to-head benchmark
# (configs/panoptic_fpn/panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py) with
# the SRM as its fusion head, for the synthetic occlusion set. Its SRM:
#   python tools/train.py configs/srm/srm_1x7-7x1_1200i_synthetic-occlusion.py
_base_ = '../panoptic_fpn/panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py'

num_things_classes = _base_.num_things_classes
num_stuff_classes = _base_.num_stuff_classes

# The two orders side by side, as in every evaluation of OANet: PQ of the
# SRM and of the score order from one inference (MultiOrderPanopticMetric,
# from the dataset base), and pictures (--show-dir) of both orders with
# the ground truth (PanopticLocalVisualizer).
visualizer = dict(type='PanopticLocalVisualizer')

model = dict(
    panoptic_fusion_head=dict(
        _delete_=True,
        type='SRMFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        seg_layout='stuff_things',
        srm=dict(
            type='SpatialRankingModule',
            num_things_classes=num_things_classes,
            train_input='gt'),
        rank_by='srm'),
    test_cfg=dict(
        panoptic=dict(
            stuff_area_mode='class',
            # Also write the score order beside the SRM order.
            compare_orders=True,
            uncovered_things='void',
            same_class_order='score',  # see panoptic-fpn-srm_r50_fpn_1x_coco
            max_per_img=30)))
