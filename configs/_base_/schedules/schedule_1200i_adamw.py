# The schedule of the small models on the synthetic occlusion set, with
# our default runtime (mmdet's plus our hooks, ../default_runtime.py):
# 1,200 iterations of AdamW (lr 1e-3, weight decay 1e-4, gradients clipped
# at norm 10), 50 iterations of linear warm-up from 1e-4, then cosine decay
# to 1e-5; batch 4. On 2 CPU cores it trains in
# minutes. One validation at the end, a checkpoint every 300 iterations.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', '../default_runtime.py']

max_iters = 1200
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=50,
        end=max_iters,
        T_max=max_iters - 50,
        eta_min=1e-5)
]
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10.0))
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=300, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
