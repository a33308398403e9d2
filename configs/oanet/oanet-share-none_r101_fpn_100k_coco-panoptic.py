# Table 4, "no" with ResNet-101: nothing is shared; the stuff branch has
# its own ResNet-101, FPN and 3x3 conv (38.2 PQ in the paper against 38.8
# for oanet_r101_fpn_100k_coco-panoptic.py, score order).
_base_ = './oanet-share-none_r50_fpn_100k_coco-panoptic.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')),
    stuff_backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
