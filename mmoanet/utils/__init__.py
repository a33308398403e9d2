from .checkpoint import (CheckpointMismatchError, CorruptCheckpointError,
                         UnsafeCheckpointError, check_checkpoint_matches,
                         load_checkpoint_safely, mmengine_checkpoint_globals,
                         register_safe_checkpoint_loader)
from .dependencies import SUPPORTED_VERSIONS, check_dependencies
from .launch import (EVAL_ALIASES, add_checkpoint_match_hook, add_launch_args,
                     apply_work_dir, check_paths_exist, find_resume_checkpoint,
                     finish_distributed, format_each_config_once,
                     parse_launch_args, prepare_cpu_distributed)
from .outputs import (OutputPathError, atomic_write, check_output_dir,
                      check_output_file, save_atomic)

__all__ = [
    'CheckpointMismatchError', 'CorruptCheckpointError',
    'UnsafeCheckpointError', 'check_checkpoint_matches',
    'load_checkpoint_safely', 'mmengine_checkpoint_globals',
    'register_safe_checkpoint_loader', 'SUPPORTED_VERSIONS',
    'check_dependencies', 'OutputPathError', 'atomic_write',
    'check_output_dir', 'check_output_file', 'save_atomic', 'EVAL_ALIASES',
    'add_checkpoint_match_hook', 'add_launch_args', 'apply_work_dir',
    'check_paths_exist', 'find_resume_checkpoint', 'finish_distributed',
    'format_each_config_once', 'parse_launch_args', 'prepare_cpu_distributed'
]
