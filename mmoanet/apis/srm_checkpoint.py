"""Add a trained SRM to a PanopticFPN checkpoint.

mmdet's PanopticFPN checkpoints hold no fusion-head weights (its
``HeuristicFusionHead`` has none). With ``SRMFusionHead`` as the fusion
head (``configs/panoptic_fpn_srm/``) the model has one more module,
``panoptic_fusion_head.srm``. The SRM is trained alone
(``configs/srm/``, :class:`~mmoanet.models.StandaloneSRM`, whose
checkpoint keys are ``srm.*``); this module writes one checkpoint that
holds both: every tensor of the detector unchanged, plus the SRM's under
``panoptic_fusion_head.srm.*``.

Both files are read with :func:`~mmoanet.utils.load_checkpoint_safely`
(``weights_only``: a crafted pickle is refused, not run), and the output
is checked before either is read and written atomically
(:mod:`mmoanet.utils.outputs`).
"""
import ast
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch

from ..utils.checkpoint import load_checkpoint_safely
from ..utils.outputs import check_output_file, save_atomic

__all__ = [
    'SRMMergeError', 'add_srm_to_checkpoint', 'merge_srm_state',
    'srm_config_of'
]

#: Prefix of the SRM in a StandaloneSRM checkpoint.
STANDALONE_PREFIX = 'srm.'
#: Prefix of the SRM in a detector with an SRMFusionHead.
DETECTOR_PREFIX = 'panoptic_fusion_head.srm.'
#: One output per thing class plus background in mmdet's box head.
CLASSIFIER_KEY = 'roi_head.bbox_head.fc_cls.weight'
#: Tensors only mmdet's PanopticFPNHead has.
PANOPTIC_FPN_HEAD_PREFIX = 'semantic_head.conv_upsample_layers.'
#: Tensors only OANet has (its stuff head, its own stuff branch).
OANET_PREFIXES = ('semantic_head.level_convs.', 'stuff_conv.', 'stuff_neck.',
                  'stuff_backbone.')


class SRMMergeError(ValueError):
    """Two checkpoints cannot be merged into a PanopticFPN + SRM one."""


def _tensors(checkpoint: object) -> Dict[str, torch.Tensor]:
    """The model tensors of a loaded checkpoint, ``module.`` removed.

    A checkpoint is a dict with ``state_dict`` (what mmengine writes) or
    a bare state dict.
    """
    if not isinstance(checkpoint, dict):
        return {}
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict):
        return {}
    return OrderedDict((re.sub(r'^module\.', '', key), value)
                       for key, value in state.items()
                       if isinstance(value, torch.Tensor))


def _meta(checkpoint: object) -> dict:
    """A copy of a checkpoint's ``meta``, or an empty dict."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def _srm_things(srm_state: Dict[str, torch.Tensor]) -> int:
    """C_th of an SRM: the output channels of its convolutions."""
    return max(value.shape[0] for key, value in srm_state.items()
               if key.endswith('weight') and value.dim() == 4)


def _literal_dict(node: ast.AST) -> object:
    """``dict(a=1, ...)`` / ``{...}`` / a literal, without running code."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == 'dict' and not node.args):
        return {
            keyword.arg: _literal_dict(keyword.value)
            for keyword in node.keywords
        }
    if isinstance(node, ast.Dict):
        return {
            ast.literal_eval(key): _literal_dict(value)
            for key, value in zip(node.keys, node.values)
        }
    return ast.literal_eval(node)


def srm_config_of(meta: dict) -> Optional[dict]:
    """The ``model.srm`` config of a Runner checkpoint's ``meta['cfg']``.

    mmengine stores the config as Python text. It is parsed, never run
    (a checkpoint may come from anywhere): only literal values are read.

    Returns:
        dict | None: The SRM config, or None when there is none to read.
    """
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not isinstance(text, str):
        return None
    try:
        assignments = [
            statement.value for statement in ast.parse(text).body
            if isinstance(statement, ast.Assign) and len(statement.targets) ==
            1 and isinstance(statement.targets[0], ast.Name)
            and statement.targets[0].id == 'model'
        ]
        if not assignments:
            return None
        model = _literal_dict(assignments[-1])  # the one that counts
    except (SyntaxError, ValueError, TypeError):
        return None
    srm = model.get('srm') if isinstance(model, dict) else None
    return dict(srm) if isinstance(srm, dict) else None


def merge_srm_state(detector_ckpt: dict,
                    srm_ckpt: dict,
                    force: bool = False,
                    detector_name: str = 'the detector checkpoint',
                    srm_name: str = 'the SRM checkpoint') -> dict:
    """A PanopticFPN checkpoint with a StandaloneSRM's tensors added.

    Args:
        detector_ckpt (dict): A loaded PanopticFPN checkpoint (mmengine's,
            with ``state_dict`` and usually ``meta``, or a bare state dict).
        srm_ckpt (dict): A loaded StandaloneSRM checkpoint (``srm.*``).
        force (bool): Replace the ``panoptic_fusion_head.srm.*`` tensors
            the detector already holds. Defaults to False.
        detector_name (str): How messages name ``detector_ckpt``.
        srm_name (str): How messages name ``srm_ckpt``.

    Returns:
        dict: ``state_dict`` (the detector's tensors, then the SRM's under
        ``panoptic_fusion_head.srm.``) and ``meta`` (the detector's, plus
        ``srm``: ``num_things_classes``, ``iter``, ``srm_cfg`` when the SRM
        checkpoint's config says it, ``thing_classes`` when its dataset
        meta lists them). Optimiser and other training state are left
        out: the result is for testing or fine-tuning.

    Raises:
        SRMMergeError: Naming the checkpoint at fault, when the SRM
            checkpoint holds no ``srm.*`` tensor or other tensors too, the
            detector holds no tensor, is an SRM checkpoint, an OANet one or
            no PanopticFPN, already holds an SRM (without ``force``), or the
            thing classes differ.
    """
    srm_tensors = _tensors(srm_ckpt)
    srm_state = OrderedDict((key[len(STANDALONE_PREFIX):], value)
                            for key, value in srm_tensors.items()
                            if key.startswith(STANDALONE_PREFIX))
    others = [k for k in srm_tensors if not k.startswith(STANDALONE_PREFIX)]
    if not srm_state or others:
        found = (f'{len(srm_tensors)} tensors, e.g. '
                 f'{(others or list(srm_tensors))[0]}'
                 if srm_tensors else 'no tensors')
        raise SRMMergeError(
            f'{srm_name} is not a StandaloneSRM checkpoint (it holds '
            f'{found}; a StandaloneSRM checkpoint holds srm.* tensors only). '
            'Train the SRM with tools/train.py configs/srm/<config>.py and '
            'pass its work_dirs/<config>/iter_<N>.pth')

    detector_state = _tensors(detector_ckpt)
    if not detector_state:
        raise SRMMergeError(f'{detector_name} holds no detector tensors')
    if all(key.startswith(STANDALONE_PREFIX) for key in detector_state):
        raise SRMMergeError(
            f'{detector_name} holds no detector tensors, only '
            f'{len(detector_state)} srm.* tensors: it is an SRM checkpoint. '
            'Give the PanopticFPN checkpoint first, then the SRM one')
    oanet = [key for key in detector_state if key.startswith(OANET_PREFIXES)]
    if oanet:
        raise SRMMergeError(
            f'{detector_name} is an OANet checkpoint ({oanet[0]}, ...): OANet '
            'has a stuff head and an SRM of its own; only a PanopticFPN '
            'checkpoint takes an SRM this way')
    if (CLASSIFIER_KEY not in detector_state or not any(
            key.startswith(PANOPTIC_FPN_HEAD_PREFIX)
            for key in detector_state)):
        raise SRMMergeError(
            f'{detector_name} is not a PanopticFPN checkpoint: it lacks '
            f'{CLASSIFIER_KEY} or the {PANOPTIC_FPN_HEAD_PREFIX}* tensors '
            'of mmdet\'s PanopticFPNHead')
    present = [
        key for key in detector_state if key.startswith(DETECTOR_PREFIX)
    ]
    if present and not force:
        raise SRMMergeError(
            f'{detector_name} already holds SRM weights ({present[0]}, ...); '
            'pass --force (force=True) to replace them')

    num_things = _srm_things(srm_state)
    detector_things = detector_state[CLASSIFIER_KEY].shape[0] - 1
    if detector_things != num_things:
        raise SRMMergeError(
            f'{detector_name} classifies {detector_things} thing classes '
            f'({CLASSIFIER_KEY}), the SRM of {srm_name} ranks {num_things}')
    detector_meta, srm_meta = _meta(detector_ckpt), _meta(srm_ckpt)
    detector_classes = (detector_meta.get('dataset_meta')
                        or {}).get('thing_classes')
    srm_classes = (srm_meta.get('dataset_meta') or {}).get('thing_classes')
    if (detector_classes is not None and srm_classes is not None
            and list(detector_classes) != list(srm_classes)):
        raise SRMMergeError(
            f'the thing classes differ: {detector_name} has '
            f'{list(detector_classes)}, {srm_name} {list(srm_classes)}; the '
            'SRM\'s channel i must be the detector\'s thing class i')

    merged = OrderedDict((key, value) for key, value in detector_state.items()
                         if not key.startswith(DETECTOR_PREFIX))
    for key, value in srm_state.items():
        merged[DETECTOR_PREFIX + key] = value
    srm_info = dict(num_things_classes=num_things, iter=srm_meta.get('iter'))
    srm_cfg = srm_config_of(srm_meta)
    if srm_cfg is not None:
        srm_info['srm_cfg'] = srm_cfg
    if srm_classes is not None:
        srm_info['thing_classes'] = list(srm_classes)
    detector_meta['srm'] = srm_info
    return dict(state_dict=merged, meta=detector_meta)


def add_srm_to_checkpoint(detector_path: str,
                          srm_path: str,
                          out_path: str,
                          force: bool = False) -> dict:
    """Write ``out_path``: the PanopticFPN of ``detector_path`` with the SRM
    of ``srm_path`` (see :func:`merge_srm_state`).

    The output path is checked before any file is read: it may not be an
    input (not even with ``force``), may not exist unless ``force``, and
    its folder must be writable. The file is written atomically.

    Args:
        detector_path (str): PanopticFPN checkpoint, e.g. one of mmdet's.
        srm_path (str): StandaloneSRM checkpoint of
            ``tools/train.py configs/srm/<config>.py``
            (``work_dirs/<config>/iter_<N>.pth``).
        out_path (str): The merged checkpoint to write.
        force (bool): Replace an existing ``out_path`` and SRM tensors the
            detector already holds. Defaults to False.

    Returns:
        dict: ``out_path``, ``detector_tensors``, ``srm_tensors``,
        ``num_things_classes`` and ``srm_iter``.

    Raises:
        OutputPathError: A bad ``out_path``.
        FileNotFoundError: A missing input.
        UnsafeCheckpointError, CorruptCheckpointError: An input that pickles
            other objects than weights, or cannot be read; nothing of it is
            executed and the message names it.
        SRMMergeError: See :func:`merge_srm_state`.
    """
    check_output_file(
        out_path, inputs=(detector_path, srm_path), force=force, what='out')
    detector_ckpt = load_checkpoint_safely(detector_path, map_location='cpu')
    srm_ckpt = load_checkpoint_safely(srm_path, map_location='cpu')
    merged = merge_srm_state(
        detector_ckpt,
        srm_ckpt,
        force=force,
        detector_name=f'detector checkpoint {detector_path}',
        srm_name=f'SRM checkpoint {srm_path}')
    save_atomic(merged, out_path)
    num_srm = sum(
        key.startswith(DETECTOR_PREFIX) for key in merged['state_dict'])
    return dict(
        out_path=out_path,
        detector_tensors=len(merged['state_dict']) - num_srm,
        srm_tensors=num_srm,
        num_things_classes=merged['meta']['srm']['num_things_classes'],
        srm_iter=merged['meta']['srm']['iter'],
        srm_file=osp.basename(srm_path))
