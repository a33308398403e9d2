# The SRM trained on the instance branch's detached predictions instead of
# ground-truth masks (train_input='pred'), on COCO instance annotations as
# the default. The one change between oanet_r50_fpn.py and
# oanet_r50_fpn_pano-instance-gt.py that is not the instance source: with
# this config, default -> srm-pred -> pano-instance-gt changes one thing
# per step. It costs an extra detection pass per training batch.
_base_ = './oanet_r50_fpn.py'

model = dict(panoptic_fusion_head=dict(srm=dict(train_input='pred')))
