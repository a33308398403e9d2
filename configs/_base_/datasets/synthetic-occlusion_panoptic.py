# The synthetic occlusion set (tools/dataset_converters/
# make_synthetic_occlusion.py): COCO-format panoptic annotations of 160 px
# scenes whose instances overlap, with amodal instance masks and the true
# occlusion order beside them:
#   data/synthetic_occlusion/{train,val}/
#   data/synthetic_occlusion/annotations/panoptic_{train,val}.json + PNGs
#   data/synthetic_occlusion/annotations/instances_{train,val}.json
#   data/synthetic_occlusion/annotations/overlaps_val.json
# Read here as mmdet reads COCO panoptic (CocoPanopticDataset, instance
# masks cut from the PNG); OANet's configs read the instances JSON too.
# Evaluation scores every order a model writes (MultiOrderPanopticMetric),
# so that stock PanopticFPN and OANet are measured by the same code.
_base_ = 'mmdet::_base_/datasets/coco_panoptic.py'

from mmoanet.datasets import SYNTHETIC_OCCLUSION_METAINFO as metainfo  # noqa

num_things_classes = len(metainfo['thing_classes'])
num_stuff_classes = len(metainfo['stuff_classes'])
data_root = 'data/synthetic_occlusion/'
image_size = 160
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
        metainfo=metainfo,
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
        metainfo=metainfo,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='MultiOrderPanopticMetric',
    ann_file=data_root + 'annotations/panoptic_val.json',
    seg_prefix=data_root + 'annotations/panoptic_val/')
test_evaluator = val_evaluator
