# ResNet-101 PanopticFPN with the SRM fusion head, as mmdet's
# panoptic-fpn_r101_fpn_1x_coco.py is to its R-50 config. mmdet's ms-3x
# checkpoints have the same model (only the training schedule and scales
# differ), so they test with this config and its R-50 sibling too.
_base_ = './panoptic-fpn-srm_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
