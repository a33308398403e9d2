# The SRM trained on the instance branch's detached predictions instead of
# ground-truth masks (train_input='pred'), on COCO instance annotations as
# the default. The one change between oanet_r50_fpn_100k_coco-panoptic.py
# and oanet-pano-instance-gt_r50_fpn_100k_coco-panoptic.py that is not the
# instance source: with this config, default -> srm-pred -> pano-instance-gt
# changes one thing per step. It costs an extra detection pass per training
# batch.
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

model = dict(panoptic_fusion_head=dict(srm=dict(train_input='pred')))
