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
disk goes through it. ``import mmoanet`` calls it. A file that cannot be read
at all (truncated by a killed job, say) raises
:class:`CorruptCheckpointError` naming it.

mmengine then loads weights with ``strict=False`` and prints what did not
fit to the console only. :func:`check_checkpoint_matches` compares a
checkpoint with a model first: for evaluation and inference any missing
tensor or shape mismatch is refused (a half-random model would be scored
without a word), unless a partial load is asked for; for warm starts every
skipped or missing key is written to the run's log file.
"""
import collections
import logging
import os.path as osp
import pickle
import re
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner import CheckpointLoader

__all__ = [
    'UnsafeCheckpointError', 'CorruptCheckpointError',
    'CheckpointMismatchError', 'mmengine_checkpoint_globals',
    'load_checkpoint_safely', 'register_safe_checkpoint_loader',
    'check_checkpoint_matches'
]

# numpy dtypes whose classes appear in pickled HistoryBuffers and scalars.
_NUMPY_DTYPE_NAMES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                      'uint16', 'uint32', 'uint64', 'float16', 'float32',
                      'float64', 'str', 'object')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object outside the allowed types."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file cannot be read: truncated, damaged or no checkpoint.

    A ``RuntimeError``, as torch's own error for a damaged archive is.
    """


class CheckpointMismatchError(ValueError):
    """A checkpoint lacks tensors of the model or holds them at other
    shapes."""


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
        CorruptCheckpointError: the file cannot be read (truncated,
            damaged, not a checkpoint); the message names it.
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
        if found is None and 'Weights only load failed' not in str(error):
            # A cut pickle stream ("pickle data was truncated"), not a
            # refused type.
            raise _corrupt(filename, error) from error
        offending = found.group(1) if found else 'an unsupported object'
        raise UnsafeCheckpointError(
            f'refusing to load checkpoint {filename}: it contains the '
            f'pickled type {offending}, which is neither a tensor nor one '
            'of the types mmengine checkpoints hold. Nothing from the file '
            'was executed. Load it only if you trust its origin, and then '
            'convert it to a plain state dict.') from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        # torch: "PytorchStreamReader failed reading zip archive: failed
        # finding central directory" and kin; none of them names the file.
        raise _corrupt(filename, error) from error


def _corrupt(filename: str, error: Exception) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f'checkpoint {filename} cannot be read ({type(error).__name__}: '
        f'{str(error).strip().splitlines()[0] if str(error) else ""}); it is '
        'truncated (a job killed while saving?), damaged or not a PyTorch '
        'checkpoint')


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


#: How many keys an error message names; the log gets all of them.
NUM_KEYS_SHOWN = 5


def _state_dict_of(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """Model weights of a checkpoint, keys as the bare model names them.

    mmengine loads ``checkpoint['state_dict']`` (or the dict itself) after
    removing a ``module.`` prefix left by a DDP wrapper; the same here.
    """
    state = checkpoint.get('state_dict', checkpoint)
    return {
        re.sub(r'^module\.', '', key): value
        for key, value in state.items()
    }


def check_checkpoint_matches(model: torch.nn.Module,
                             checkpoint: Union[str, dict],
                             allow_partial: bool = False,
                             logger: Union[str, logging.Logger] = 'current',
                             source: Optional[str] = None) -> Dict[str, list]:
    """Compare a checkpoint with a model before mmengine loads it.

    mmengine loads weights with ``strict=False`` and prints what did not fit
    to the console only, so a checkpoint of another model (5 thing classes
    instead of 6, another SRM kernel, a narrower FPN) is evaluated as a
    partly random model without a word. Here every tensor of the model must
    be in the checkpoint with the same shape (BatchNorm's
    ``num_batches_tracked`` excepted, as in mmengine); extra tensors of the
    checkpoint are only logged.

    With ``allow_partial=True`` (a warm start from another architecture,
    or ``--allow-partial-load`` / the config key ``allow_partial_load``)
    nothing is refused, and every missing or skipped key is written to
    ``logger``, which by default is mmengine's current logger: inside a
    Runner that is the log file of the work dir, not only the console.

    Args:
        model (nn.Module): The built model (a DDP wrapper is unwrapped).
        checkpoint (str | dict): Path of a local checkpoint, or a loaded one.
        allow_partial (bool): Log instead of raising. Defaults to False.
        logger (str | logging.Logger): Where the key lists go, as for
            :func:`mmengine.logging.print_log`. Defaults to 'current'.
        source (str, optional): Name of a loaded checkpoint in messages.
            Defaults to the path, or 'the checkpoint'.

    Returns:
        dict[str, list]: ``missing`` (model keys absent from the
        checkpoint), ``wrong_shape`` (``(key, checkpoint_shape,
        model_shape)``) and ``unexpected`` (checkpoint keys the model lacks).

    Raises:
        CheckpointMismatchError: A model tensor is missing or has another
            shape, and ``allow_partial`` is False. The message names the
            file, the counts and the first keys with both shapes.
    """
    model = getattr(model, 'module', model)
    if isinstance(checkpoint, str):
        source = source or checkpoint
        checkpoint = load_checkpoint_safely(checkpoint, map_location='cpu')
    source = source or 'the checkpoint'
    state = _state_dict_of(checkpoint)
    expected = model.state_dict()
    missing = [
        key for key in expected
        if key not in state and not key.endswith('num_batches_tracked')
    ]
    wrong_shape = [(key, tuple(state[key].shape), tuple(value.shape))
                   for key, value in expected.items()
                   if key in state and hasattr(state[key], 'shape')
                   and tuple(state[key].shape) != tuple(value.shape)]
    unexpected = [key for key in state if key not in expected]
    report = dict(
        missing=missing, wrong_shape=wrong_shape, unexpected=unexpected)
    name = type(model).__name__
    if unexpected:
        print_log(
            f'{source}: {len(unexpected)} tensors of the checkpoint are not '
            f'in the model {name} and are ignored:\n' +
            '\n'.join(f'  {key}' for key in unexpected),
            logger=logger,
            level=logging.WARNING)
    if not missing and not wrong_shape:
        return report
    if not allow_partial:
        shown_missing = ', '.join(missing[:NUM_KEYS_SHOWN])
        shown_shapes = ', '.join(
            f'{key} (checkpoint {ckpt_shape}, model {model_shape})'
            for key, ckpt_shape, model_shape in wrong_shape[:NUM_KEYS_SHOWN])
        problems = []
        if wrong_shape:
            problems.append(f'{len(wrong_shape)} have another shape, e.g. '
                            f'{shown_shapes}')
        if missing:
            problems.append(f'{len(missing)} are missing from it, e.g. '
                            f'{shown_missing}')
        raise CheckpointMismatchError(
            f'checkpoint {source} does not fit the model {name} of this '
            f'config: of its {len(expected)} tensors, '
            f'{"; ".join(problems)}. Pass the checkpoint trained with this '
            'config; to load only the matching tensors anyway, use '
            'tools/test.py --allow-partial-load or the config key '
            'allow_partial_load=True.')
    lines = [
        f'{source}: partial load into {name}: {len(wrong_shape)} tensors '
        f'skipped for their shape and {len(missing)} missing from the '
        f'checkpoint (of {len(expected)}); they keep their initial values.'
    ]
    lines += [
        f'  skipped {key}: checkpoint {ckpt_shape}, model {model_shape}'
        for key, ckpt_shape, model_shape in wrong_shape
    ]
    lines += [f'  missing {key}' for key in missing]
    print_log('\n'.join(lines), logger=logger, level=logging.WARNING)
    return report
