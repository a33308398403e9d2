# Table 5: a 3x3 convolution in the Spatial Ranking Module instead of the
# large-kernel 1x7 + 7x1 block (the default, best in the paper).
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

model = dict(panoptic_fusion_head=dict(srm=dict(kernel='3x3')))
