from .hooks import (CategoryIdsHook, CheckpointMatchHook, FiniteLossHook,
                    NonFiniteLossError, dataset_category_ids)

__all__ = [
    'CategoryIdsHook', 'CheckpointMatchHook', 'FiniteLossHook',
    'NonFiniteLossError', 'dataset_category_ids'
]
