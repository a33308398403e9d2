# The heuristic baseline (Table 3, "baseline"): the same network, but the
# fusion lays instances by detection score, as mmdet's PanopticFPN does.
# Evaluating the default config already reports both orders side by side
# (test_cfg.panoptic.compare_orders); this config makes score order the
# primary result, e.g. for the demo overlays or a test-dev submission.
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

model = dict(panoptic_fusion_head=dict(rank_by='score'))
