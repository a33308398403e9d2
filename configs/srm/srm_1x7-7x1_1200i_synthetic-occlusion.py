# The SRM of configs/panoptic_fpn_srm/
# panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py, trained alone from
# the synthetic set's amodal instance annotations (they overlap where
# objects occlude each other; the panoptic PNG gives the true class there).
# No image goes through a network.
#
#   python tools/train.py configs/srm/srm_1x7-7x1_1200i_synthetic-occlusion.py
#   -> work_dirs/srm_1x7-7x1_1200i_synthetic-occlusion/iter_1200.pth
#
# Schedule: AdamW at lr 1e-2 with cosine decay to lr / 100, 1,200 steps of
# 4 images (what the SRM alone needed on this set). No validation loop: the
# SRM is evaluated inside a PanopticFPN + SRM (configs/srm/README.md).
# Our default runtime: mmdet's plus the hooks of every mmoanet config.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/datasets/synthetic-occlusion_panoptic.py'
]

custom_imports = dict(imports=['mmoanet'], allow_failed_imports=False)

max_iters = 1200
lr = 1e-2

model = dict(
    type='StandaloneSRM',
    srm=dict(
        type='SpatialRankingModule',
        num_things_classes=_base_.num_things_classes,
        kernel='1x7+7x1',
        train_input='gt'))

# The set's data root and classes (_base_), read as the SRM reads them.
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='SRMAnnotationDataset',
        data_root=_base_.data_root,
        ann_file='annotations/panoptic_train.json',
        data_prefix=dict(seg='annotations/panoptic_train/'),
        ins_ann_file='annotations/instances_train.json',
        metainfo=_base_.metainfo))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=1e-4))
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        T_max=max_iters,
        eta_min=lr / 100)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
