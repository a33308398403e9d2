"""Checked outputs: refuse a bad output path before the work, write atomically.

Every tool that writes a file (a merged checkpoint, a prediction dump, a
panoptic JSON) calls :func:`check_output_file` (or :func:`check_output_dir`)
before its work starts, so that a missing, unwritable or wrong output is
refused in a second instead of after an hour of inference, and writes with
:func:`atomic_write` (or :func:`save_atomic` for torch objects), so that a
failure half-way (a full disk, a kill) leaves the earlier file or nothing,
never a truncated file.

The convention, the same in every tool: an existing output file is refused
unless ``force`` (the tools' ``--force``) is given, and an output is never
one of the run's own inputs, with or without ``force``.
"""
import contextlib
import os
import os.path as osp
import tempfile
from typing import IO, Iterable, Iterator, Optional

import torch

__all__ = [
    'OutputPathError', 'check_output_file', 'check_output_dir', 'atomic_write',
    'save_atomic'
]


class OutputPathError(ValueError):
    """An output path cannot or must not be written."""


def _same_file(path: str, other: str) -> bool:
    if osp.exists(path) and osp.exists(other):
        return osp.samefile(path, other)
    return osp.realpath(path) == osp.realpath(other)


def _check_writable_dir(folder: str, path: str, what: str) -> None:
    """``folder`` exists (or can be made) and we may write into it."""
    probe = folder
    while not osp.exists(probe):  # the first existing parent decides
        parent = osp.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not osp.isdir(probe):
        raise OutputPathError(
            f'{what} {path}: {probe} is a file, not a folder')
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(
            f'{what} {path}: the folder {probe} is not writable')
    # os.access says yes to root whatever the mount or file system allows;
    # creating a file is the test that holds (atomic_write does the same).
    try:
        fd, probe_file = tempfile.mkstemp(prefix='.write-check.', dir=probe)
    except OSError as error:
        raise OutputPathError(f'{what} {path}: the folder {probe} is not '
                              f'writable ({error.strerror})') from error
    os.close(fd)
    os.remove(probe_file)


def check_output_file(path: str,
                      inputs: Iterable[Optional[str]] = (),
                      force: bool = False,
                      what: str = 'output') -> str:
    """Refuse an output file before any work is done.

    Args:
        path (str): The file the run will write.
        inputs (iterable[str]): Files the run reads; ``path`` may be none
            of them (None entries are skipped).
        force (bool): Allow replacing an existing ``path``. Defaults to
            False.
        what (str): How to name the path in messages, e.g. ``'--out'``.

    Returns:
        str: ``path``, unchanged.

    Raises:
        OutputPathError: When ``path`` is one of ``inputs``, is a folder,
            exists without ``force``, or its folder is not writable.
    """
    for source in inputs:
        if source is not None and _same_file(path, source):
            raise OutputPathError(
                f'{what} {path} is also an input of this run ({source}); '
                'write to another path')
    if osp.isdir(path):
        raise OutputPathError(f'{what} {path} is a folder, not a file')
    if osp.exists(path) and not force:
        raise OutputPathError(
            f'{what} {path} exists; pass --force to replace it')
    _check_writable_dir(osp.dirname(osp.abspath(path)), path, what)
    return path


def check_output_dir(path: str,
                     force: bool = False,
                     what: str = 'output folder') -> str:
    """Refuse an output folder before any work is done.

    A missing folder is fine when it can be made; an existing one must be
    writable, and must be empty unless ``force``.

    Raises:
        OutputPathError: Naming the folder and what is wrong.
    """
    if osp.exists(path) and not osp.isdir(path):
        raise OutputPathError(f'{what} {path} is a file, not a folder')
    if osp.isdir(path) and os.listdir(path) and not force:
        raise OutputPathError(
            f'{what} {path} is not empty; pass --force to write into it')
    _check_writable_dir(osp.abspath(path), path, what)
    return path


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'w') -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` on
    success, delete it on failure.

    Args:
        path (str): The final file.
        mode (str): ``'w'`` (text) or ``'wb'`` (bytes).

    Yields:
        file: The open temporary file.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(
        prefix='.' + osp.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain
        # open() would: the replaced file's, else 0666 less the umask.
        os.chmod(tmp_path, _new_file_mode(path))
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise


def _new_file_mode(path: str) -> int:
    if osp.exists(path):
        return os.stat(path).st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def save_atomic(obj: object, path: str) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    with atomic_write(path, 'wb') as f:
        torch.save(obj, f)
