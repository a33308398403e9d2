# OANet with one fusion rule that is not the paper's: instances of the same
# class are laid in detection-score order, in the slots the SRM order gives
# their class (SRMFusionHead test_cfg.panoptic.same_class_order='score').
# The SRM pastes every instance of a class into one channel, so it cannot
# tell two of them apart; by ranking score, a low-score fragment of an
# object was often laid before the object. A test-time switch: the
# default config's checkpoints test with it unchanged. Measured on the
# synthetic head-to-head (docs/benchmarks.md): tiny OANet at 1,200
# iterations, amodal, seeds 0-2, -1.32 PQ against stock PanopticFPN with
# it and -1.50 without; stock PanopticFPN + SRM gains 0.5-1.1 PQ from it.
_base_ = './oanet_r50_fpn_100k_coco-panoptic.py'

model = dict(test_cfg=dict(panoptic=dict(same_class_order='score')))
