"""Panoptic inference on images for users: model, predictions, COCO files.

:func:`init_model` builds a detector from a config and a checkpoint,
:func:`inference_panoptic` runs it on image files or arrays without any
annotation, and :func:`panoptic_to_coco` turns a predicted panoptic map into
a COCO panoptic PNG and its ``segments_info``; :func:`coco_categories` says
which COCO category id each label gets, and refuses to guess one.

Shape shorthand:

    H, W: original image size
    C: thing plus stuff classes (``len(dataset_meta['classes'])``)
"""
import copy
import difflib
import json
import logging
import os.path as osp
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch.nn as nn
from mmcv.transforms import Compose
from mmdet.apis import inference_detector
from mmdet.registry import DATASETS, MODELS
from mmdet.structures import DetDataSample, SampleList
from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config, ConfigDict
from mmengine.infer import BaseInferencer
from mmengine.logging import print_log
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

# ``mmoanet`` (imported as the parent package) has registered its components
# and the weights_only checkpoint loader before anything here runs.
from ..datasets.annotation_checks import naming_json_errors
from ..evaluation.functional import fusion_ids_to_coco, id_to_rgb
from ..utils.checkpoint import check_checkpoint_matches

#: Transforms that read ground truth; inference has none, so they go.
ANNOTATION_LOADERS = ('LoadAnnotations', 'LoadPanopticAnnotations',
                      'LoadPanopticInstanceAnnotations')

ImageType = Union[str, np.ndarray]
ImagesType = Union[ImageType, Sequence[ImageType]]


def model_index_entry(name: str) -> Tuple[str, Optional[str]]:
    """Config file and published weights of a model of our model index.

    The way mmdet's ``DetInferencer`` (hence ``demo/image_demo.py``) takes
    a model name: mmengine finds the package's ``model-index.yml`` (the
    checkout's, or ``mmoanet/.mim/`` of an installed wheel) and the
    metafiles it imports, and matches ``Name`` or ``Alias``, ignoring case.

    Args:
        name (str): A model name, e.g. ``'oanet_r50_fpn_100k_coco-panoptic'``
            (the config's file name without ``.py``).

    Returns:
        tuple[str, str | None]: The config file, and the ``Weights`` of the
        metafile entry (None when it publishes none, as ours do: train, then
        pass the checkpoint).

    Raises:
        ValueError: No model of that name, naming the closest ones.
    """
    root = BaseInferencer._get_repo_or_mim_dir('mmoanet')
    names = []
    for model in BaseInferencer._get_models_from_metafile(root):
        aliases = model.get('Alias', [])
        if isinstance(aliases, str):
            aliases = [aliases]
        names.append(model['Name'])
        if name.lower() in [
                alias.lower() for alias in [model['Name'], *aliases]
        ]:
            weights = model.get('Weights')
            if isinstance(weights, (list, tuple)):
                weights = weights[0] if weights else None
            return osp.join(root, model['Config']), weights
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f'; did you mean {", ".join(close)}?' if close else ''
    raise ValueError(f'{name} is neither a file nor a model name of '
                     f'mmoanet\'s model index ({len(names)} models, '
                     f'{osp.join(root, "model-index.yml")}){hint}')


def _config_dataset_meta(cfg: Config) -> Tuple[dict, Optional[str]]:
    """Metainfo and annotation file of the config's test dataset.

    The dataset is built with ``lazy_init=True``, which reads no file.

    Returns:
        tuple[dict, str | None]: A copy of its ``metainfo`` and its
        ``ann_file`` joined with ``data_root`` (None if it has none).
    """
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset_cfg['lazy_init'] = True
    dataset = DATASETS.build(dataset_cfg)
    return copy.deepcopy(dataset.metainfo), getattr(dataset, 'ann_file', None)


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a detector for inference and load its weights.

    Like mmdet's ``init_detector``, with two differences that matter for
    non-COCO models: when the checkpoint has no ``meta['dataset_meta']`` (or
    there is no checkpoint), the class names come from the config's test
    dataset, not from COCO's 80 classes; and a palette missing from the
    checkpoint is also taken from there. Checkpoints are read by mmengine's
    ``load_checkpoint``, which ``import mmoanet`` routes through the safe
    ``weights_only`` loader (:mod:`mmoanet.utils.checkpoint`).

    Args:
        config (str | Path | Config): Config file or object; not modified.
        checkpoint (str, optional): Checkpoint path or URL. None keeps the
            freshly built (random or ``init_cfg``-less) weights. Defaults to
            None.
        device (str): Device to put the model on. Defaults to 'cpu'.
        cfg_options (dict, optional): Config overrides, as ``--cfg-options``
            gives them (``{'model.test_cfg.rcnn.score_thr': 0.3}``).

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` (the merged config)
        and ``dataset_meta`` (``classes``, ``thing_classes``,
        ``stuff_classes``, ``palette`` and, when known, ``ann_file``).

    Raises:
        FileNotFoundError: No file at a local ``checkpoint`` path.
        ValueError: The checkpoint or the class names do not fit the model.
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif isinstance(config, Config):
        config = copy.deepcopy(config)
    else:
        raise TypeError('config must be a file name or a Config, got '
                        f'{type(config).__name__}')
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    # The weights come from the checkpoint; never fetch pretrained ones.
    if 'init_cfg' in config.model.get('backbone', {}):
        config.model.backbone.init_cfg = None
    init_default_scope(config.get('default_scope', 'mmdet'))
    if config.model.get(
            'type') == 'StandaloneSRM' or not config.get('test_dataloader'):
        # An SRM config (configs/srm/) trains the SRM alone: it makes no
        # panoptic prediction and has no test set.
        raise ValueError(
            f'{config.filename}: {config.model.get("type")} is not a '
            'panoptic detector (no test_dataloader); merge the SRM into a '
            'PanopticFPN checkpoint (tools/model_converters/'
            'add_srm_to_panoptic_fpn.py) and run the PanopticFPN + SRM '
            'config (configs/panoptic_fpn_srm/) instead')

    model = revert_sync_batchnorm(MODELS.build(config.model))
    dataset_meta, ann_file = _config_dataset_meta(config)
    if checkpoint is not None:
        if '://' not in checkpoint:
            if not osp.isfile(checkpoint):
                raise FileNotFoundError(f'checkpoint {checkpoint} not found')
            # mmengine loads with strict=False: refuse a foreign checkpoint
            # instead of predicting with random weights (unless the config
            # sets allow_partial_load=True).
            check_checkpoint_matches(
                model,
                checkpoint,
                allow_partial=config.get('allow_partial_load', False))
        loaded = load_checkpoint(model, checkpoint, map_location='cpu')
        saved_meta = loaded.get('meta', {}).get('dataset_meta')
        if saved_meta:
            saved_meta = {
                key.lower(): value
                for key, value in saved_meta.items()
            }
            saved_meta.setdefault('palette', dataset_meta.get('palette'))
            dataset_meta = saved_meta
        else:
            print_log(
                f'{checkpoint} has no meta["dataset_meta"]; class names '
                'come from the test dataset of the config',
                logger='current',
                level=logging.WARNING)
    if ann_file is not None:
        dataset_meta.setdefault('ann_file', ann_file)
    _check_classes(model, dataset_meta, checkpoint)
    model.dataset_meta = dataset_meta
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def _check_classes(model: nn.Module, dataset_meta: dict,
                   checkpoint: Optional[str]) -> None:
    """Fail early when the class names cannot be the model's classes."""
    head = getattr(model, 'panoptic_fusion_head', None)
    if head is None or not hasattr(head, 'num_classes'):
        return
    classes = dataset_meta.get('classes') or ()
    if len(classes) != head.num_classes:
        source = checkpoint or 'the config'
        raise ValueError(f'{source}: {len(classes)} class names in the '
                         f'dataset meta, but the model predicts '
                         f'{head.num_classes} classes')


def _inference_pipeline(cfg: Config, from_array: bool) -> Compose:
    """The config's test pipeline without the annotation loaders.

    Args:
        cfg (Config): Model config.
        from_array (bool): Images come as arrays, not file names.

    Returns:
        Compose: Image in (``img_path`` or ``img``), packed inputs out.
    """
    pipeline_cfg = copy.deepcopy(get_test_pipeline_cfg(cfg))
    pipeline_cfg = [
        transform for transform in pipeline_cfg
        if transform['type'].split('.')[-1] not in ANNOTATION_LOADERS
    ]
    if not pipeline_cfg or not pipeline_cfg[0]['type'].endswith(
            'LoadImageFromFile'):
        raise ValueError('the test pipeline must start with '
                         'LoadImageFromFile, got '
                         f'{[t["type"] for t in pipeline_cfg[:1]]}')
    if from_array:
        pipeline_cfg[0] = ConfigDict(type='mmdet.LoadImageFromNDArray')
    return Compose(pipeline_cfg)


def inference_panoptic(model: nn.Module,
                       images: ImagesType) -> Union[DetDataSample, SampleList]:
    """Predict panoptic segmentations of images that have no annotations.

    The config's test pipeline is used without its annotation loaders
    (``LoadPanopticInstanceAnnotations`` and mmdet's ``Load*Annotations``),
    then mmdet's ``inference_detector`` runs the model one image at a time.

    Args:
        model (nn.Module): From :func:`init_model`.
        images (str | np.ndarray | Sequence): Image files, or images as uint8
            (H, W, 3) BGR arrays (as ``mmcv.imread`` gives them); one kind
            per call.

    Returns:
        DetDataSample | list[DetDataSample]: One per image (a list when
        ``images`` is a list or tuple), with ``pred_panoptic_seg``
        (``sem_seg`` int (1, H, W), ids ``label + instance_id * 1000``,
        label C is VOID) and whatever else the detector predicts (OANet:
        ``pred_instances``, ``pred_sem_seg`` and, with
        ``test_cfg.panoptic.compare_orders``, ``pred_panoptic_seg_srm`` and
        ``pred_panoptic_seg_score``).
    """
    is_batch = isinstance(images, (list, tuple))
    image_list = list(images) if is_batch else [images]
    if not image_list:
        return []
    array_flags = {isinstance(image, np.ndarray) for image in image_list}
    if len(array_flags) > 1:
        raise TypeError('pass either image files or arrays, not both')
    pipeline = _inference_pipeline(model.cfg, array_flags.pop())
    results = inference_detector(model, image_list, test_pipeline=pipeline)
    return results if is_batch else results[0]


class UnknownCategoryIdsError(ValueError):
    """The COCO category ids of a model's labels cannot be known."""


def coco_categories(model: nn.Module,
                    ann_file: Optional[str] = None,
                    strict: bool = True
                    ) -> Tuple[Dict[int, Optional[int]], List[dict], str]:
    """COCO category ids of the model's labels.

    mmdet's panoptic datasets number labels in the order of the annotation
    file's categories; the ids themselves are in ``dataset_meta['cat_ids']``
    of checkpoints trained with mmoanet (its dataset and
    :class:`~mmoanet.engine.CategoryIdsHook` keep them). They are taken, in
    this order, from there, from ``ann_file``, or from the categories of
    the config's annotation file when it is on disk and holds every class
    name. Nothing else can tell them: ``label + 1`` is right for no COCO
    file (COCO panoptic's ids run 1..200 with gaps), so it is never
    guessed.

    Args:
        model (nn.Module): Model with ``dataset_meta``.
        ann_file (str, optional): A COCO (panoptic) JSON whose categories
            hold every class name of the model, e.g. the training set's.
            Defaults to None.
        strict (bool): Raise when the ids are unknown. Otherwise each label
            maps to None, for callers that write no COCO file. Defaults to
            True.

    Returns:
        tuple[dict[int, int | None], list[dict], str]: Label to category
        id; COCO ``categories`` (``id``, ``name``, ``isthing``, ``color``);
        and a sentence saying where the ids came from.

    Raises:
        UnknownCategoryIdsError: With ``strict``, when no source gives the
            ids, naming what to pass; or when ``ann_file`` lacks a class.
    """
    meta = model.dataset_meta
    classes = list(meta['classes'])
    thing_classes = set(meta.get('thing_classes', classes))
    cat_ids = meta.get('cat_ids')
    source = 'dataset_meta cat_ids of the checkpoint'
    if cat_ids is not None and len(cat_ids) != len(classes):
        raise UnknownCategoryIdsError(
            f'dataset_meta has {len(cat_ids)} cat_ids for {len(classes)} '
            'classes')
    if cat_ids is None and ann_file is not None:
        cat_ids, source = _ann_file_cat_ids(ann_file, classes)
        if cat_ids is None:
            raise UnknownCategoryIdsError(f'{ann_file}: {source}')
    if cat_ids is None:
        config_ann_file = meta.get('ann_file')
        cat_ids, source = _ann_file_cat_ids(config_ann_file, classes)
    if cat_ids is None:
        source = (
            'the COCO category ids of the labels are unknown: the '
            "checkpoint's dataset_meta has no cat_ids (it was trained "
            'before mmoanet kept them, or without a checkpoint), and '
            f'{source}. Pass the annotation file of the training set '
            '(tools/inference.py --ann-file, PanopticInferencer(ann_file=)), '
            'or point the config at it (--cfg-options '
            'test_dataloader.dataset.data_root=...)')
        if strict:
            raise UnknownCategoryIdsError(source)
        cat_ids = [None] * len(classes)
    palette = meta.get('palette')
    categories = []
    for label, (cat_id, name) in enumerate(zip(cat_ids, classes)):
        category = dict(
            id=None if cat_id is None else int(cat_id),
            name=name,
            isthing=int(name in thing_classes))
        if isinstance(palette, (list, tuple)) and label < len(palette):
            category['color'] = [int(value) for value in palette[label]]
        categories.append(category)
    return ({
        label: category['id']
        for label, category in enumerate(categories)
    }, categories, source)


def _ann_file_cat_ids(ann_file: Optional[str],
                      classes: List[str]) -> Tuple[Optional[list], str]:
    """Category ids of ``classes`` in a local COCO JSON.

    Returns:
        tuple[list[int] | None, str]: The ids, or None; where they came
        from, or why there are none.
    """
    if not ann_file:
        return None, 'the config names no annotation file'
    if not osp.isfile(ann_file):
        return None, f'the annotation file {ann_file} is not on disk'
    with naming_json_errors(ann_file), open(ann_file) as f:
        categories = json.load(f).get('categories', [])
    id_of_name = {category['name']: category['id'] for category in categories}
    missing = [name for name in classes if name not in id_of_name]
    if missing:
        return None, (f'the categories of {ann_file} lack the classes '
                      f'{missing[:5]} of the model')
    return [id_of_name[name] for name in classes], \
        f'category ids from the class names in {ann_file}'


def panoptic_to_coco(pan_ids: np.ndarray, label2cat: Dict[int, int],
                     num_classes: int) -> Tuple[np.ndarray, List[dict]]:
    """A predicted panoptic map as a COCO panoptic PNG and its segments.

    Args:
        pan_ids (np.ndarray): int, shape (H, W), ids ``label + instance_id *
            INSTANCE_OFFSET``; the label ``num_classes`` is VOID.
        label2cat (dict[int, int | None]): Label to COCO category id
            (None where unknown, see :func:`coco_categories`).
        num_classes (int): C.

    Returns:
        tuple[np.ndarray, list[dict]]: The PNG, uint8 (H, W, 3) RGB with
        segment id ``R + 256 * G + 256**2 * B`` (0 on VOID); and COCO
        ``segments_info``: per segment ``id``, ``category_id``, ``area``
        (pixels), ``bbox`` ([x, y, w, h], ints) and ``iscrowd`` (0).
    """
    pan_ids = np.asarray(pan_ids)
    if pan_ids.ndim == 3 and pan_ids.shape[0] == 1:
        pan_ids = pan_ids[0]
    coco_ids, segments = fusion_ids_to_coco(
        pan_ids.astype(np.int64), label2cat, num_classes)
    for segment in segments:
        mask = coco_ids == segment['id']
        rows_with = np.flatnonzero(mask.any(axis=1))
        cols_with = np.flatnonzero(mask.any(axis=0))
        x, y = int(cols_with[0]), int(rows_with[0])
        segment['bbox'] = [
            x, y, int(cols_with[-1]) + 1 - x,
            int(rows_with[-1]) + 1 - y
        ]
        segment['iscrowd'] = 0
    return id_to_rgb(coco_ids), segments
