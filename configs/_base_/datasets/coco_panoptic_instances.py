# COCO panoptic 2017 for stuff and SRM labels, with the instance branch
# trained on COCO's instance annotations (overlapping masks), as OANet's
# paper does (CocoPanopticInstancesDataset, instance_source='instances').
# Expected layout (docs/training_and_testing.md):
#   data/coco/{train2017,val2017}/
#   data/coco/annotations/panoptic_{train,val}2017.json + PNG folders
#   data/coco/annotations/instances_{train,val}2017.json
# Evaluation reports PQ/SQ/RQ of every order the model writes
# (MultiOrderPanopticMetric): SRM and score order side by side.
_base_ = 'mmdet::_base_/datasets/coco_panoptic.py'

num_things_classes = 80  # COCO panoptic (Sec. 4.1)
num_stuff_classes = 53

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
