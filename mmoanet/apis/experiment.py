"""Train a config, evaluate a checkpoint, show the result.

The steps of a train-then-evaluate job (``tools/demo.py``, the studies in
``projects/oanet_studies/``). Training runs ``tools/train.py`` in a child
process: its log streams to the terminal, and a killed run resumes.
Evaluation builds a Runner in this process so the metrics come back as a
dict.
"""
import copy
import glob
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Union

from mmengine.config import Config
from mmengine.runner import Runner

from mmoanet.utils import find_resume_checkpoint

__all__ = [
    'find_train_script', 'run_options', 'run_command', 'train_command',
    'train_in_subprocess', 'build_test_runner', 'evaluate_checkpoint',
    'order_table', 'plot_loss_curve', 'read_training_scalars'
]

# (label, metric key of the primary order's PQ table without prefix)
_PQ_ROWS = [('PQ', 'PQ'), ('SQ', 'SQ'), ('RQ', 'RQ'), ('PQ things', 'PQ_th'),
            ('SQ things', 'SQ_th'), ('RQ things', 'RQ_th'),
            ('PQ stuff', 'PQ_st'), ('SQ stuff', 'SQ_st'),
            ('RQ stuff', 'RQ_st')]

# The tiny config's linear warm-up (param_scheduler[0].end).
WARMUP_ITERS = 50


def run_options(seed: int, max_iters: Optional[int] = None) -> List[str]:
    """``--cfg-options`` of a tiny-config run: its seed and budget.

    A shorter or longer budget also moves the end of the tiny config's
    cosine decay (``param_scheduler[1]``), so every run ends at the final
    learning rate.
    """
    options = [f'randomness.seed={seed}']
    if max_iters is not None:
        if max_iters <= WARMUP_ITERS:
            raise ValueError(
                f'--max-iters {max_iters}: the tiny config warms up for '
                f'{WARMUP_ITERS} iterations, so the budget must be larger')
        options += [
            f'train_cfg.max_iters={max_iters}',
            f'train_cfg.val_interval={max_iters}',
            f'param_scheduler.1.end={max_iters}',
            f'param_scheduler.1.T_max={max_iters - WARMUP_ITERS}'
        ]
    return options


def find_train_script() -> str:
    """``tools/train.py`` beside the installed package.

    The checkout's (an editable install: ``<checkout>/tools``), else the
    copy a wheel ships under ``mmoanet/.mim/tools``.

    Returns:
        str: absolute path of the script.

    Raises:
        FileNotFoundError: neither is there.
    """
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    candidates = [
        osp.join(osp.dirname(package), 'tools', 'train.py'),
        osp.join(package, '.mim', 'tools', 'train.py')
    ]
    for path in candidates:
        if osp.isfile(path):
            return path
    raise FileNotFoundError('tools/train.py not found; looked at ' +
                            ', '.join(candidates))


def run_command(command: Sequence[str],
                log_file: Optional[str] = None,
                cwd: Optional[str] = None) -> None:
    """Run a child process; raise when it fails.

    Args:
        command (Sequence[str]): the command line.
        log_file (str, optional): append the command line and the child's
            output (stdout and stderr) to this file instead of the
            terminal; the error then quotes its last lines.
        cwd (str, optional): working folder of the child process; by
            default this process's.

    Raises:
        RuntimeError: the child exited with an error.
    """
    command = list(command)
    if log_file is None:
        result = subprocess.run(command, cwd=cwd)
        where = 'see the output above'
    else:
        os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
        with open(log_file, 'a') as f:
            f.write(f'\n$ {shlex.join(command)}\n')
            f.flush()
            result = subprocess.run(
                command, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
        with open(log_file) as f:
            tail = ''.join(f.readlines()[-15:])
        where = f'end of {log_file}:\n{tail}'
    if result.returncode != 0:
        raise RuntimeError(f'exit {result.returncode}: '
                           f'{shlex.join(command[:3])}...; {where}')


def train_command(config: str,
                  work_dir: str,
                  cfg_options: Sequence[str] = (),
                  python: str = sys.executable,
                  train_script: Optional[str] = None) -> List[str]:
    """The command line that trains (or resumes) ``config`` in
    ``work_dir`` with ``tools/train.py``.

    Args:
        config (str): config file.
        work_dir (str): work directory; a run found there is resumed.
        cfg_options (Sequence[str]): ``key=value`` overrides.
        python (str): interpreter of the child process.
        train_script (str, optional): the training script; by default
            :func:`find_train_script`.

    Returns:
        list[str]: the command.
    """
    command = [
        python, train_script or find_train_script(), config, '--work-dir',
        work_dir, '--resume'
    ]
    if cfg_options:
        command += ['--cfg-options', *cfg_options]
    return command


def train_in_subprocess(config: str,
                        work_dir: str,
                        cfg_options: Sequence[str] = (),
                        python: str = sys.executable,
                        train_script: Optional[str] = None,
                        cwd: Optional[str] = None,
                        log_file: Optional[str] = None) -> str:
    """Train (or resume) a config in a child process; return the final
    checkpoint's path.

    Args:
        config (str): config file.
        work_dir (str): work directory; a run found there is resumed.
        cfg_options (Sequence[str]): ``key=value`` overrides.
        python (str): interpreter for the child process.
        train_script (str, optional): the training script; by default
            :func:`find_train_script`.
        cwd (str, optional): working folder of the child process (the
            configs' relative data paths are resolved against it); by
            default this process's.
        log_file (str, optional): where the training's console output
            goes (appended); by default the terminal.

    Returns:
        str: the newest complete checkpoint after training.

    Raises:
        RuntimeError: training exited with an error, or left no
            checkpoint.
    """
    command = train_command(config, work_dir, cfg_options, python,
                            train_script)
    try:
        run_command(command, log_file, cwd)
    except RuntimeError as error:
        raise RuntimeError(f'training {config} failed ({error}); its work '
                           f'dir: {work_dir}') from None
    checkpoint = find_resume_checkpoint(work_dir)
    if checkpoint is None:
        raise RuntimeError(f'training wrote no checkpoint to {work_dir}')
    return checkpoint


def build_test_runner(config: Union[str, Config],
                      checkpoint: str,
                      work_dir: str,
                      cfg_options: Optional[dict] = None) -> Runner:
    """A Runner that tests ``checkpoint`` with the config's test loop.

    Args:
        config (str | Config): config file or object (not modified).
        checkpoint (str): the weights, loaded when the test starts.
        work_dir (str): the Runner's work dir (logs).
        cfg_options (dict, optional): config overrides.

    Returns:
        Runner: call ``runner.test()`` for the metrics; ``runner.model`` is
        built already.
    """
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    cfg.launcher = 'none'
    return Runner.from_cfg(cfg)


def evaluate_checkpoint(
        config: Union[str, Config],
        checkpoint: str,
        work_dir: str,
        cfg_options: Optional[dict] = None) -> Dict[str, float]:
    """Run the config's test loop on a checkpoint; return its metrics.

    See :func:`build_test_runner` for the arguments.
    """
    runner = build_test_runner(config, checkpoint, work_dir, cfg_options)
    return dict(runner.test())


def order_table(metrics: Dict[str, float],
                prefix: str = 'coco_panoptic') -> str:
    """Markdown table: SRM order and score order of the same predictions.

    Args:
        metrics (dict): output of a test run with
            ``MultiOrderPanopticMetric`` (orders ``srm`` and ``score``) and,
            optionally, ``OcclusionOrderMetric``.
        prefix (str): the panoptic metric's prefix.

    Returns:
        str: the table, one row per PQ/SQ/RQ split.
    """
    lines = [
        '| metric | SRM order | score order | SRM - score |',
        '|---|---:|---:|---:|'
    ]
    for label, key in _PQ_ROWS:
        srm = metrics.get(f'{prefix}/srm/{key}')
        score = metrics.get(f'{prefix}/score/{key}')
        if srm is None or score is None:
            continue
        lines.append(f'| {label} | {srm:.2f} | {score:.2f} | '
                     f'{srm - score:+.2f} |')
    if 'occlusion/srm_acc' in metrics:
        srm, score = metrics['occlusion/srm_acc'], metrics[
            'occlusion/score_acc']
        lines.append(f'| overlapping pairs ordered right (%) | {srm:.1f} | '
                     f'{score:.1f} | {srm - score:+.1f} |')
        srm, score = metrics['occlusion/srm_acc_diff'], metrics[
            'occlusion/score_acc_diff']
        lines.append(f'| ... pairs of different classes (%) | {srm:.1f} | '
                     f'{score:.1f} | {srm - score:+.1f} |')
    return '\n'.join(lines)


def read_training_scalars(work_dir: str) -> List[dict]:
    """Training scalars of every run in ``work_dir``, resumed ones too.

    Args:
        work_dir (str): a work directory; each run (a resumed one too) left
            ``<timestamp>/vis_data/scalars.json`` in it.

    Returns:
        list[dict]: one record a logged training iteration (``step``,
        ``loss``, ``time``, ...), by step; a later run's record of the same
        step wins.
    """
    records = {}
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record and 'step' in record:
                    records[record['step']] = record  # later runs win
    return [records[step] for step in sorted(records)]


def plot_loss_curve(work_dir: str, out_file: str) -> str:
    """Plot the total loss and each loss term against the iteration.

    Returns:
        str: ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    records = read_training_scalars(work_dir)
    if not records:
        raise FileNotFoundError(f'no training scalars under {work_dir}')
    steps = [r['step'] for r in records]
    keys = sorted(k for k in records[-1] if k.startswith('loss'))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key in keys:
        ax.plot(
            steps, [r.get(key, float('nan')) for r in records],
            label=key,
            linewidth=2.2 if key == 'loss' else 1.0)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_yscale('log')
    ax.set_title(f'training losses ({osp.basename(work_dir.rstrip("/"))})')
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)
    return out_file
