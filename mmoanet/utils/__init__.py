from .checkpoint import (CheckpointMismatchError, CorruptCheckpointError,
                         UnsafeCheckpointError, check_checkpoint_matches,
                         load_checkpoint_safely, mmengine_checkpoint_globals,
                         register_safe_checkpoint_loader)
from .dependencies import SUPPORTED_VERSIONS, check_dependencies
from .outputs import (OutputPathError, atomic_write, check_output_dir,
                      check_output_file, save_atomic)

__all__ = [
    'CheckpointMismatchError', 'CorruptCheckpointError',
    'UnsafeCheckpointError', 'check_checkpoint_matches',
    'load_checkpoint_safely', 'mmengine_checkpoint_globals',
    'register_safe_checkpoint_loader', 'SUPPORTED_VERSIONS',
    'check_dependencies', 'OutputPathError', 'atomic_write',
    'check_output_dir', 'check_output_file', 'save_atomic'
]
