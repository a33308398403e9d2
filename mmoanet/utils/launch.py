"""Command-line set-up shared by ``tools/train.py`` and ``tools/test.py``.

The flags, the work dir, the CPU fallback of distributed launch, the choice
of the checkpoint to resume from: what a training or testing script does
before and after it builds mmengine's Runner. The package's own runtime code
does not import this module.
"""
import argparse
import collections
import glob
import logging
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Sequence

import mmengine.config.config as mmengine_config
import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log

__all__ = [
    'add_launch_args', 'parse_launch_args', 'prepare_cpu_distributed',
    'finish_distributed', 'apply_work_dir', 'check_paths_exist',
    'find_resume_checkpoint', 'add_checkpoint_match_hook',
    'format_each_config_once', 'EVAL_ALIASES'
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


def finish_distributed() -> None:
    """Close the process group once every rank is done.

    mmengine leaves the group open at exit. With gloo its worker threads are
    then torn down during interpreter shutdown, which now and then aborts a
    finished run with ``terminate called without an active exception`` and a
    non-zero exit status (seen once in CI on a 2-process CPU training). The
    barrier keeps one rank from closing while another still talks to it.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


def format_each_config_once(max_entries: int = 64) -> None:
    """Let mmengine format each config text with yapf only once.

    ``Config.pretty_text`` runs yapf over the whole config (about 1.2 s for
    the tiny OANet config on a 2-core CPU), and a Runner asks for it four
    times (log, dumped config, visualizer, message hub) and once more per
    checkpoint. The same text always formats the same, so remembering the
    result changes no output. Idempotent.

    Args:
        max_entries (int): texts remembered, oldest dropped first.
    """
    original = mmengine_config.FormatCode
    if getattr(original, 'formats_once', False):
        return
    formatted = collections.OrderedDict()

    def format_code(text, style_config=None, **kwargs):
        key = (text, repr(style_config), repr(sorted(kwargs.items())))
        if key not in formatted:
            formatted[key] = original(
                text, style_config=style_config, **kwargs)
            if len(formatted) > max_entries:
                formatted.popitem(last=False)
        return formatted[key]

    format_code.formats_once = True
    format_code.original = original
    mmengine_config.FormatCode = format_code


def apply_work_dir(cfg: Config, config_path: str,
                   work_dir: Optional[str]) -> None:
    """``--work-dir`` wins, then the config's, then ``work_dirs/<name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(config_path))[0]
        cfg.work_dir = osp.join('./work_dirs', name)


def add_checkpoint_match_hook(cfg: Config) -> None:
    """Give the Runner mmoanet's ``CheckpointMatchHook`` if it lacks one.

    The OANet configs list it already; a stock mmdet config (a PanopticFPN
    baseline, say) gets the same refusal of a foreign checkpoint at test
    time and the same log of a warm start's skipped keys.
    """
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(
            str(hook.get('type', '')).split('.')[-1] == 'CheckpointMatchHook'
            for hook in hooks):
        hooks.append(ConfigDict(type='mmdet.CheckpointMatchHook'))
    cfg.custom_hooks = hooks


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


def _checkpoint_number(path: str) -> Optional[int]:
    """N of ``iter_N.pth`` / ``epoch_N.pth``, else None."""
    match = re.fullmatch(r'(iter|epoch)_(\d+)\.pth', osp.basename(path))
    return int(match.group(2)) if match else None


def find_resume_checkpoint(work_dir: str,
                           skipped: Optional[List[str]] = None
                           ) -> Optional[str]:
    """The newest complete checkpoint in ``work_dir``, or None.

    mmengine resumes from the file named in ``work_dir/last_checkpoint``,
    which it writes after a checkpoint is saved. A job killed while saving
    leaves either no pointer (and mmengine silently starts from scratch), a
    pointer to the previous checkpoint, or a truncated file. We take the
    newest complete ``iter_*.pth``/``epoch_*.pth`` or the pointer's file,
    whichever is newer, so a killed run loses at most the work since its
    last good checkpoint; every newer file passed over is reported with the
    reason (truncated, or named by the pointer but missing).

    Args:
        work_dir (str): the run's work directory.
        skipped (list[str], optional): receives one sentence per file passed
            over, for the caller to log once its logger exists (the
            Runner's log file). When None they are logged as warnings to
            mmengine's current logger right away.

    Returns:
        str | None: path of the checkpoint to resume from.
    """
    notes: List[str] = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    reported = set()  # files already passed over, by absolute path
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
        if named is not None:
            reported.add(osp.abspath(named))
        if named is not None and not osp.isfile(named):
            notes.append(f'skipped {named}, named in {pointer}: the file '
                         'does not exist')
            named = None
        elif named is not None and not _is_complete_checkpoint(named):
            notes.append(f'skipped {named}, named in {pointer}: it is '
                         'truncated or unreadable (a job killed while '
                         'saving?)')
            named = None
    named_number = _checkpoint_number(named) if named else None
    candidates = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        number = _checkpoint_number(path)
        if number is not None:
            candidates.append((number, path))
    chosen = named
    for number, path in sorted(candidates, reverse=True):
        if named is not None and (named_number is None
                                  or number <= named_number):
            break
        if osp.abspath(path) in reported:
            continue  # the pointer's truncated file, reported above
        if _is_complete_checkpoint(path):
            if named is not None:
                notes.append(f'skipped {named}, named in {pointer}: the '
                             f'complete {path} is newer')
            chosen = path
            break
        notes.append(f'skipped {path}: it is truncated or unreadable (a '
                     'job killed while saving?)')
    if chosen is not None:
        notes = [f'{note}; resuming from {chosen}' for note in notes]
    elif notes:
        notes.append('no complete checkpoint left: training starts from '
                     'scratch')
    if skipped is not None:
        skipped.extend(notes)
    else:
        for note in notes:
            print_log(note, logger='current', level=logging.WARNING)
    return chosen
