"""Evaluator inputs checked when the metric is built, not at the first
image."""
import os.path as osp
from typing import Optional

__all__ = ['check_input_path']


def check_input_path(path: Optional[str],
                     what: str,
                     folder: bool = False,
                     backend_args: Optional[dict] = None) -> None:
    """Raise if a local evaluator input is missing.

    The Runner builds the evaluator before the test loop runs, so a wrong
    ``seg_prefix`` (read only when the first image is scored) or
    ``ann_file`` then stops the run in its first seconds, with the config
    key and the path in the message. Paths on other backends (a URL, a
    ``backend_args`` store) are left to the backend.

    Args:
        path (str, optional): The path; None is not checked.
        what (str): The argument's name, e.g. ``'seg_prefix'``.
        folder (bool): The path must be a folder (else a file). Defaults to
            False.
        backend_args (dict, optional): File backend arguments; when given,
            nothing is checked. Defaults to None.

    Raises:
        FileNotFoundError: Naming ``what`` and ``path``.
    """
    if path is None or backend_args is not None or '://' in str(path):
        return
    exists = osp.isdir(path) if folder else osp.isfile(path)
    if not exists:
        kind = 'folder' if folder else 'file'
        found = ' (it is a file)' if folder and osp.isfile(path) else ''
        raise FileNotFoundError(
            f'evaluator {what}: no {kind} {path}{found}; check the '
            'data root of the evaluator in the config (val_evaluator / '
            'test_evaluator)')
