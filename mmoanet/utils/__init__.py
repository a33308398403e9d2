from .checkpoint import (CheckpointMismatchError, CorruptCheckpointError,
                         UnsafeCheckpointError, check_checkpoint_matches,
                         load_checkpoint_safely, mmengine_checkpoint_globals,
                         register_safe_checkpoint_loader)
from .dependencies import SUPPORTED_VERSIONS, check_dependencies

__all__ = [
    'CheckpointMismatchError', 'CorruptCheckpointError',
    'UnsafeCheckpointError', 'check_checkpoint_matches',
    'load_checkpoint_safely', 'mmengine_checkpoint_globals',
    'register_safe_checkpoint_loader', 'SUPPORTED_VERSIONS',
    'check_dependencies'
]
