# OANet with ResNet-50-FPN, the ablation model of Liu et al., CVPR 2019
# (Sec. 4.2), trained as the paper does: 100k iterations, batch 16, on COCO
# panoptic 2017 with COCO's instance annotations for the instance branch
# (oanet-pano-instance-gt_r50_fpn_100k_coco-panoptic.py is Table 3's
# alternative). The parts:
#   _base_/models/oanet_r50_fpn.py: the model (on mmdet's PanopticFPN);
#   _base_/datasets/coco_panoptic_instances.py: data and evaluation;
#   _base_/schedules/schedule_100k.py: the paper's SGD schedule.
_base_ = [
    '../_base_/models/oanet_r50_fpn.py',
    '../_base_/datasets/coco_panoptic_instances.py',
    '../_base_/schedules/schedule_100k.py'
]

# One readable picture per image (tools/test.py --show-dir, inference):
# the panoptic result alone, score and SRM order side by side, and the
# ground truth beside them.
visualizer = dict(type='PanopticLocalVisualizer')
