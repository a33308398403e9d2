from .category_ids_hook import CategoryIdsHook, dataset_category_ids
from .checkpoint_match_hook import CheckpointMatchHook
from .finite_loss_hook import FiniteLossHook, NonFiniteLossError

__all__ = [
    'CategoryIdsHook', 'CheckpointMatchHook', 'FiniteLossHook',
    'NonFiniteLossError', 'dataset_category_ids'
]
