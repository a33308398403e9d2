# The SRM of configs/panoptic_fpn_srm/panoptic-fpn-srm_r{50,101}_fpn_1x_coco.py
# (80 thing classes), trained alone from COCO train2017's *instance* masks
# (they overlap; the panoptic PNGs give the true class there). No image goes
# through a network.
#
#   python tools/train.py configs/srm/srm_1x7-7x1_15k_coco-panoptic.py
#   -> work_dirs/srm_1x7-7x1_15k_coco-panoptic/iter_15000.pth
#
# 15,000 steps of 8 images are about one pass over train2017's 118,287
# images; AdamW at lr 1e-2 with cosine decay to lr / 100, not tuned on COCO
# (the synthetic set needed 1,200 steps of 4).
# The model and optimiser are the synthetic config's; the data, the batch
# and the schedule length differ.
_base_ = './srm_1x7-7x1_1200i_synthetic-occlusion.py'

num_things_classes = 80
max_iters = 15000
lr = 1e-2

model = dict(srm=dict(num_things_classes=num_things_classes))

data_root = 'data/coco/'
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        _delete_=True,
        type='SRMAnnotationDataset',
        data_root=data_root,
        ann_file='annotations/panoptic_train2017.json',
        data_prefix=dict(seg='annotations/panoptic_train2017/'),
        ins_ann_file='annotations/instances_train2017.json'))

train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        T_max=max_iters,
        eta_min=lr / 100)
]
default_hooks = dict(checkpoint=dict(interval=5000, max_keep_ckpts=2))
