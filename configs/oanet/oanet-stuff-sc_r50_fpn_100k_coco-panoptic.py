# Table 2, "Stuff-SC": the stuff branch is supervised on the 53 stuff
# classes only (thing pixels ignored) instead of all 133 classes (Object-SC,
# the default; 0.5 PQ better in the paper).
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

model = dict(semantic_head=dict(supervision='stuff'))
