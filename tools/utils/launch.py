"""Shared set-up of ``tools/train.py`` and ``tools/test.py``.

Command-line helpers only the scripts under ``tools/`` use; the runtime
package ``mmoanet`` does not import them.
"""
import argparse
import glob
import os
import os.path as osp
import re
import zipfile
from typing import Optional, Sequence

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict, DictAction

__all__ = [
    'add_launch_args', 'parse_launch_args', 'prepare_cpu_distributed',
    'apply_work_dir', 'check_paths_exist', 'find_resume_checkpoint',
    'EVAL_ALIASES'
]

# mmdet 2.x users type `--eval pq`; mmdet 3.x configures evaluators instead.
EVAL_ALIASES = {
    'pq': 'MultiOrderPanopticMetric',
    'PQ': 'MultiOrderPanopticMetric'
}


def add_launch_args(parser: argparse.ArgumentParser) -> None:
    """The flags ``tools/train.py`` and ``tools/test.py`` share."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.max_iters=100')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(parser: argparse.ArgumentParser,
                      argv: Optional[Sequence[str]] = None):
    """Parse, and give mmengine the local rank the launcher passed."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def prepare_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Let ``--launcher pytorch`` run on machines without CUDA.

    mmengine's launcher pins a CUDA device per process and wraps the model in
    DDP with ``device_ids=[LOCAL_RANK]``; both fail on CPU-only torch. When
    no GPU is visible we start the process group with the gloo backend
    ourselves (the Runner then skips its own start) and build the DDP
    wrapper without device ids. With CUDA this does nothing.

    Args:
        cfg (Config): the full config; ``env_cfg`` and
            ``model_wrapper_cfg`` are updated in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if launcher == 'pytorch' and not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))


def apply_work_dir(cfg: Config, config_path: str,
                   work_dir: Optional[str]) -> None:
    """``--work-dir`` wins, then the config's, then ``work_dirs/<name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(config_path))[0]
        cfg.work_dir = osp.join('./work_dirs', name)


def check_paths_exist(cfg: Config, loader_keys: Sequence[str]) -> None:
    """Fail early, naming the field, when a dataset folder is missing."""
    for key in loader_keys:
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = loader.get('dataset', {})
        root = dataset.get('data_root') or ''
        candidates = [('data_root', root)] if root else []
        if dataset.get('ann_file'):
            candidates.append(('ann_file', osp.join(root,
                                                    dataset['ann_file'])))
        for field, value in (dataset.get('data_prefix') or {}).items():
            if value:
                candidates.append(
                    (f'data_prefix.{field}', osp.join(root, value)))
        for field, path in candidates:
            if path and not osp.exists(path):
                raise FileNotFoundError(
                    f'{key}.dataset.{field} points to {path}, which does '
                    'not exist. Check the data layout in '
                    'docs/training_and_testing.md, fix the path with '
                    f'--cfg-options {key}.dataset.{field}=..., or (for '
                    'the synthetic set) run tools/dataset_converters/'
                    'make_synthetic_occlusion.py first.')


def _is_complete_checkpoint(path: str) -> bool:
    """A torch zip checkpoint cut short by a kill has no central directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint in ``work_dir``, or None.

    mmengine resumes from the file named in ``work_dir/last_checkpoint``,
    which it writes after a checkpoint is saved. A job killed while saving
    leaves either no pointer (and mmengine silently starts from scratch) or
    a truncated file. We follow the pointer when it names a complete file
    and otherwise take the newest complete ``iter_*.pth``/``epoch_*.pth``,
    so a killed run loses at most the work since its last good checkpoint.

    Args:
        work_dir (str): the run's work directory.

    Returns:
        str | None: path of the checkpoint to resume from.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if osp.isfile(named) and _is_complete_checkpoint(named):
            return named
    candidates = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        match = re.fullmatch(r'(iter|epoch)_(\d+)\.pth', osp.basename(path))
        if match:
            candidates.append((int(match.group(2)), path))
    for _, path in sorted(candidates, reverse=True):
        if _is_complete_checkpoint(path):
            return path
    return None
