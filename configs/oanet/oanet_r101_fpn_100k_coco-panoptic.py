# OANet with ResNet-101-FPN (Table 3, Table 4 and the test-dev entry of
# Table 6 use this backbone). Only the backbone differs from R-50.
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
