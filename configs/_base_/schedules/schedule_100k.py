# OANet's schedule (Sec. 4.2), with our default runtime (mmdet's plus our
# hooks, ../default_runtime.py): 100k iterations of SGD (momentum 0.9,
# weight decay 1e-4), lr 0.02 after a 2k-iteration linear warm-up from
# 0.002, 0.002 after 60k and 0.0002 after 80k iterations, for a batch of 16
# images. A checkpoint and a validation every 10k iterations.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', '../default_runtime.py']

max_iters = 100000
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=10000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[60000, 80000],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
