from .checkpoint import (UnsafeCheckpointError, load_checkpoint_safely,
                         mmengine_checkpoint_globals,
                         register_safe_checkpoint_loader)
from .dependencies import SUPPORTED_VERSIONS, check_dependencies

__all__ = [
    'UnsafeCheckpointError', 'load_checkpoint_safely',
    'mmengine_checkpoint_globals', 'register_safe_checkpoint_loader',
    'SUPPORTED_VERSIONS', 'check_dependencies'
]
