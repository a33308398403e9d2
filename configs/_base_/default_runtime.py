# mmdet's default runtime plus the hooks every mmoanet config trains and
# tests with (mmoanet.engine.hooks):
# - CheckpointMatchHook: mmengine loads checkpoints non-strictly; refuse one
#   of another model when testing or resuming, log every skipped key of a
#   warm start to the log file (allow_partial_load = True relaxes it);
# - FiniteLossHook: stop at the first NaN or infinite loss term, naming the
#   iteration and the term, and never save a checkpoint of non-finite
#   weights (mmdet's CheckInvalidLossHook checks the total every 50
#   iterations only);
# - CategoryIdsHook: keep the training set's COCO category ids in every
#   checkpoint's dataset_meta, for the COCO files written at inference.
# The configs that inherit this file import mmoanet (custom_imports) through
# their model base or themselves.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_hooks = [
    dict(type='CheckpointMatchHook'),
    dict(type='FiniteLossHook'),
    dict(type='CategoryIdsHook')
]
