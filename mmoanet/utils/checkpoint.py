"""Load mmengine checkpoints under ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` unpickles with ``weights_only=True`` by
default: only tensors, containers and primitive types are rebuilt, so a
checkpoint cannot run code while it is read. mmengine 0.10.7's ``Runner``
writes a few more types into its checkpoints (the message hub's
``HistoryBuffer`` objects, numpy arrays, scalars and dtypes), so ``--resume``,
``load_from`` and ``tools/test.py CHECKPOINT`` fail to read them.

We keep ``weights_only=True`` and allow exactly those extra types, and only
for the duration of one load. Any other pickled global (a function, a class
with a ``__reduce__`` payload, ...) is refused before anything in the file is
executed, with an error that names the file and the offending type.

``register_safe_checkpoint_loader()`` installs :func:`load_checkpoint_safely`
as mmengine's loader for local paths, so every checkpoint mmengine reads from
disk goes through it. ``import mmoanet`` calls it.
"""
import collections
import os.path as osp
import pickle
import re
from typing import Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

__all__ = [
    'UnsafeCheckpointError', 'mmengine_checkpoint_globals',
    'load_checkpoint_safely', 'register_safe_checkpoint_loader',
    'check_checkpoint_matches'
]

# numpy dtypes whose classes appear in pickled HistoryBuffers and scalars.
_NUMPY_DTYPE_NAMES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                      'uint16', 'uint32', 'uint64', 'float16', 'float32',
                      'float64', 'str', 'object')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object outside the allowed types."""


def _numpy_core():
    # numpy 2 renamed ``numpy.core`` to ``numpy._core``; pickles written by
    # either version name the one they were written with.
    modules = []
    for name in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        try:
            modules.append(__import__(name, fromlist=['_reconstruct']))
        except ImportError:
            pass
    return modules


def _history_buffer_method(owner: type, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while a checkpoint is read.

    A ``HistoryBuffer`` pickles its statistics methods (``min``, ``max``,
    ``mean``, ``current``) as ``getattr(HistoryBuffer, 'min')``. A general
    ``getattr`` would let a crafted file walk from any allowed object to
    ``os.system``, so only public methods of ``HistoryBuffer`` are handed out.
    """
    if owner is HistoryBuffer and not name.startswith('_'):
        method = getattr(HistoryBuffer, name, None)
        if callable(method):
            return method
    owner_name = getattr(owner, '__name__', type(owner).__name__)
    raise UnsafeCheckpointError(
        f'GLOBAL builtins.getattr({owner_name}, {name!r})')


SafeGlobal = Union[Callable, Tuple[Callable, str]]


def mmengine_checkpoint_globals() -> List[SafeGlobal]:
    """The non-tensor types that mmengine's ``Runner`` pickles.

    Returns:
        list: entries for ``torch.serialization.safe_globals``:
        ``HistoryBuffer`` and the look-up of its statistics methods (in place
        of ``builtins.getattr``), ``collections.Counter`` (``MultiStepLR``
        milestones), numpy's array reconstruction (``ndarray``,
        ``_reconstruct``), numpy scalars (``scalar``) and dtypes (``dtype``
        and its per-type subclasses).
    """
    allowed: List[SafeGlobal] = [
        HistoryBuffer, (_history_buffer_method, 'builtins.getattr'),
        collections.Counter, np.ndarray, np.dtype
    ]
    for multiarray in _numpy_core():
        allowed += [multiarray._reconstruct, multiarray.scalar]
    allowed += [type(np.dtype(name)) for name in _NUMPY_DTYPE_NAMES]
    # Deduplicate while keeping order (dtype classes coincide on old numpy).
    return list(dict.fromkeys(allowed))


_GLOBAL_IN_MESSAGE = re.compile(r'GLOBAL ([\w.]+(\([^)]*\))?)')


def load_checkpoint_safely(
        filename: str,
        map_location: Optional[Union[str, Callable]] = None) -> dict:
    """Read a local checkpoint with ``weights_only=True``.

    Args:
        filename (str): path of the checkpoint file.
        map_location (str | callable, optional): as for ``torch.load``.

    Returns:
        dict: the checkpoint (``state_dict``, ``meta``, ``message_hub``,
        ``optimizer``, ``param_schedulers`` as mmengine wrote them).

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UnsafeCheckpointError: the file pickles a type that is not a weight
            or one of :func:`mmengine_checkpoint_globals`. Nothing in the file
            is executed.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    try:
        with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = _GLOBAL_IN_MESSAGE.search(str(error))
        offending = found.group(1) if found else 'an unsupported object'
        raise UnsafeCheckpointError(
            f'refusing to load checkpoint {filename}: it contains the '
            f'pickled type {offending}, which is neither a tensor nor one '
            'of the types mmengine checkpoints hold. Nothing from the file '
            'was executed. Load it only if you trust its origin, and then '
            'convert it to a plain state dict.') from None


def register_safe_checkpoint_loader() -> None:
    """Make :func:`load_checkpoint_safely` mmengine's loader of local paths.

    ``load_from``, ``--resume`` and ``tools/test.py CHECKPOINT`` all read
    local files through ``CheckpointLoader``'s scheme ``''``.
    """
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_safely, force=True)


def load_from_local_safely(
        filename: str,
        map_location: Optional[Union[str, Callable]] = None) -> dict:
    """mmengine's loader for local paths (it logs the name after
    ``load_from_``: "Loads checkpoint by local_safely backend")."""
    return load_checkpoint_safely(filename, map_location)


def check_checkpoint_matches(model: torch.nn.Module,
                             checkpoint: str,
                             min_fraction: float = 0.5) -> None:
    """Refuse a checkpoint written for another model.

    mmengine loads with ``strict=False`` and only logs the missing keys, so a
    wrong checkpoint silently evaluates a randomly initialised model. We
    require that at least ``min_fraction`` of the model's parameters are in
    the checkpoint with the same shape.

    Args:
        model (nn.Module): the built model (a DDP wrapper is unwrapped).
        checkpoint (str): path of the checkpoint.
        min_fraction (float): share of the model's tensors that must match.

    Raises:
        ValueError: naming the file and giving examples of the mismatch.
    """
    model = getattr(model, 'module', model)
    state = load_checkpoint_safely(checkpoint, map_location='cpu')
    state = state.get('state_dict', state)
    state = {
        k[len('module.'):] if k.startswith('module.') else k: v
        for k, v in state.items()
    }
    expected = model.state_dict()
    matched = [
        k for k, v in expected.items()
        if k in state and tuple(state[k].shape) == tuple(v.shape)
    ]
    if len(matched) >= min_fraction * len(expected):
        return
    missing = [k for k in expected if k not in state][:3]
    wrong_shape = [
        f'{k} {tuple(state[k].shape)} vs {tuple(v.shape)}'
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ][:3]
    raise ValueError(
        f'checkpoint {checkpoint} does not fit the model '
        f'{type(model).__name__} of this config: only {len(matched)} of '
        f'{len(expected)} tensors match (missing e.g. {missing}; wrong '
        f'shape e.g. {wrong_shape}). Pass the checkpoint trained with this '
        'config.')
