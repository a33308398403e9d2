# Table 1: lambda = 0.33 in Eq. 1 (the stuff-loss weight; 0.25 is best).
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

model = dict(stuff_loss_weight=0.33)
