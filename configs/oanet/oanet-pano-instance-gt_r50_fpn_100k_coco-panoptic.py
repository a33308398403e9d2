# Table 3, "w/pano-instance GT": the instance branch learns from masks cut
# out of the (non-overlapping) panoptic PNG instead of COCO's instance
# annotations. The paper found it worse (36.1 vs 37.2 PQ).
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

train_dataloader = dict(
    dataset=dict(instance_source='panoptic', ins_ann_file=None))

# Masks cut from the PNG never overlap, so ground truth gives the SRM no
# conflict to learn from: it trains on the detector's predictions instead.
model = dict(panoptic_fusion_head=dict(srm=dict(train_input='pred')))
