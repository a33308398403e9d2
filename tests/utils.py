"""Paths and helpers shared by the tests."""
import contextlib
import glob
import importlib.util
import itertools
import logging
import os
import os.path as osp
import random
import subprocess
import sys
from types import ModuleType
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmengine.utils import ManagerMixin

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# CI runs the suite twice: in the clone, and from a copy of its files with
# no git metadata. Records written in the copy name no commit: their
# provenance says 'unknown' and dirty, which the tests accept only there.
IN_GIT_CHECKOUT = subprocess.run(['git', 'rev-parse', '--git-dir'],
                                 cwd=REPO_ROOT,
                                 capture_output=True).returncode == 0
COMMIT_PATTERN = r'[0-9a-f]{40}' if IN_GIT_CHECKOUT else r'unknown'
# Two real COCO val2017 images with their panoptic ground truth, kept in the
# repository (see tests/data/coco_panoptic_sample/README.md for the licences).
SAMPLE_DIR = osp.join(REPO_ROOT, 'tests', 'data', 'coco_panoptic_sample')
# The tiny configs of the synthetic occlusion set, which most tests shrink
# further: OANet, mmdet's stock PanopticFPN, PanopticFPN + SRM and the SRM
# trained alone.
_CONFIGS = osp.join(REPO_ROOT, 'configs')
TINY_OANET_CONFIG = osp.join(_CONFIGS, 'oanet',
                             'oanet_r18_fpn_1200i_synthetic-occlusion.py')
TINY_PFPN_CONFIG = osp.join(
    _CONFIGS, 'panoptic_fpn',
    'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')
TINY_PFPN_SRM_CONFIG = osp.join(
    _CONFIGS, 'panoptic_fpn_srm',
    'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py')
TINY_SRM_CONFIG = osp.join(_CONFIGS, 'srm',
                           'srm_1x7-7x1_1200i_synthetic-occlusion.py')

_run_numbers = itertools.count()
_scripts: Dict[str, ModuleType] = {}


def load_script(path: str) -> ModuleType:
    """Import a script of the repository by its file, once per session.

    The scripts under ``tools/`` and ``projects/`` are not packages: each
    runs as ``python <path>``, with its own folder first on ``sys.path``
    (a study imports its sibling modules from there). Here a test gets the
    same module a run would execute, under a name of its own
    (``script_<path>``); the script's folder is on ``sys.path`` while it is
    imported, as in a run.

    Args:
        path (str): the script's path relative to the repository root,
            e.g. ``'tools/train.py'``.

    Returns:
        ModuleType: the executed module.
    """
    if path not in _scripts:
        name = 'script_' + osp.splitext(path)[0].replace('/', '_').replace(
            '-', '_')
        spec = importlib.util.spec_from_file_location(
            name, osp.join(REPO_ROOT, path))
        module = importlib.util.module_from_spec(spec)
        folder = osp.dirname(osp.join(REPO_ROOT, path))
        sys.path.insert(0, folder)
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(folder)
        _scripts[path] = module
    return _scripts[path]


def run_tool(*args, timeout=300, env=None) -> subprocess.CompletedProcess:
    """Run a tool in a fresh interpreter, as a user would.

    About 4 s of imports per call: keep it for what only a command line
    shows (exit status, console output, a kill, several processes).
    """
    return subprocess.run([sys.executable, *args],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def _managed_classes() -> List[type]:
    """ManagerMixin and its subclasses (MMLogger, MessageHub, ...)."""
    classes, stack = [], [ManagerMixin]
    while stack:
        cls = stack.pop()
        if cls not in classes:
            classes.append(cls)
            stack.extend(cls.__subclasses__())
    return classes


@contextlib.contextmanager
def restored_globals() -> Iterator[None]:
    """Undo what a Runner leaves behind in this process.

    A Runner registers its logger (with a file handler into its work dir),
    message hub, visualizer and default scope as the process-wide current
    instances, seeds the random generators, and the tools set LOCAL_RANK.
    A tool run in a fresh interpreter leaves none of it; here every
    instance created inside the block is dropped again (the loggers' files
    closed), so later tests log where they did before, and the random
    states and the environment come back as they were.
    """
    names = {cls: set(cls._instance_dict) for cls in _managed_classes()}
    environ = dict(os.environ)
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    try:
        yield
    finally:
        for cls in _managed_classes():
            for name in set(cls._instance_dict) - names.get(cls, set()):
                instance = cls._instance_dict.pop(name)
                for handler in getattr(instance, 'handlers', []):
                    if isinstance(handler, logging.FileHandler):
                        handler.close()
        for key in set(os.environ) - set(environ):
            del os.environ[key]
        os.environ.update(environ)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def run_main(main: Callable, argv: Sequence[str], runner: bool = True):
    """Call a tool's ``main(argv)`` in this process; return what it returns.

    Exceptions propagate (the command line would exit with a traceback).
    With ``runner`` (tools/train.py, tools/test.py), the run gets an
    experiment name of its own: mmengine names the Runner's global logger,
    message hub and visualizer ``<config stem>_<timestamp to the second>``,
    so two runs of same-named configs within a second would share them
    (and the second would log into the first one's work dir).
    """
    argv = list(argv)
    if runner:
        argv += [
            '--cfg-options', f'experiment_name=test_run{next(_run_numbers)}'
        ]
    with restored_globals():
        return main(argv)


def log_sizes(work_dir: str) -> Dict[str, int]:
    """Size of every Runner log file under ``work_dir``, by path."""
    return {
        path: osp.getsize(path)
        for path in glob.glob(osp.join(work_dir, '*', '*.log'))
    }


def log_text(work_dir: str, since: Optional[Dict[str, int]] = None) -> str:
    """The Runner's log files under ``work_dir``, all of them, or only what
    was written after ``since`` (from :func:`log_sizes`) when given."""
    since = since or {}
    text = ''
    for path, size in sorted(log_sizes(work_dir).items()):
        with open(path) as f:
            f.seek(since.get(path, 0))
            text += f.read()
    assert text, f'no log under {work_dir}'
    return text
