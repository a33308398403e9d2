# Table 1: lambda = 1.0 in Eq. 1 (the stuff-loss weight; 0.25 is best).
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

model = dict(stuff_loss_weight=1.0)
# The paper reports that training did not converge with lambda = 1 under
# the default learning-rate policy.
