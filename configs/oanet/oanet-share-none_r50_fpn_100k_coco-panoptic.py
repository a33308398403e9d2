# Table 4, "no": the stuff branch has its own ResNet-50, FPN and 3x3 conv +
# ReLU (OANet.stuff_conv, as deep as the default's shared RPN conv); nothing
# is shared (36.5 PQ in the paper vs 37.2 for the default, score order).
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

model = dict(
    share_mode='none',
    stuff_backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    stuff_neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=5))
