# OANet with a ResNeXt-101 (32x4d) backbone: not in the paper; shows a
# backbone swap by inheritance.
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=101,
        groups=32,
        base_width=4,
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://resnext101_32x4d')))
