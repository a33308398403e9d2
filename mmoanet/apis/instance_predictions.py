"""A trained detector's instance predictions as a COCO results file.

The Spatial Ranking Module learns where instance masks overlap (OANet Sec.
3.2, Eq. 2). A dataset with panoptic annotations only has no overlapping
masks: those cut from its PNGs never overlap. OANet's own answer is
``train_input='pred'``: take the instance branch's predictions, which do
overlap, with the targets at the conflicting pixels from the panoptic
ground truth. :func:`dump_instance_predictions` does this once for a
trained detector (mmdet's PanopticFPN or OANet): it runs the detector over
a split, by default the training images with the test pipeline (no
augmentation), and writes a COCO instance *results* file, which
:class:`~mmoanet.datasets.SRMAnnotationDataset` reads as ``ins_ann_file``
in place of an instances JSON.

The predictions are those the detector hands its fusion head
(:mod:`mmoanet.apis.fusion_inputs`): ``roi_head.predict`` after the
config's ``model.test_cfg.rcnn`` (``score_thr``, NMS, ``max_per_img``,
``mask_thr_binary``), masks at the original image size.
"""
import contextlib
import copy
import json
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner
from pycocotools import mask as mask_utils

from ..datasets.annotation_checks import naming_json_errors
from ..utils.outputs import atomic_write, check_output_file
from .fusion_inputs import fusion_inputs
from .inference import init_model

__all__ = [
    'SPLITS', 'NoPredictionsError', 'split_dataloader', 'thing_category_ids',
    'encode_masks', 'collect_instance_predictions', 'dump_instance_predictions'
]

SPLITS = ('train', 'val', 'test')


class NoPredictionsError(RuntimeError):
    """No prediction reached the score threshold: nothing to write."""


def split_dataloader(cfg: Config, split: str, workers: int = 0) -> dict:
    """The dataloader config of ``split``: in order, without augmentation.

    Args:
        cfg (Config): The detector's config.
        split (str): ``'train'`` (``train_dataloader.dataset``, unwrapped
            from RepeatDataset and kin, with the test pipeline and in test
            mode, so no image is filtered out), ``'val'`` or ``'test'``.
        workers (int): DataLoader workers. Defaults to 0.

    Returns:
        dict: A config for ``Runner.build_dataloader``.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    loader = copy.deepcopy(cfg.get(f'{split}_dataloader'))
    if not loader:
        raise ValueError(f'{cfg.filename} has no {split}_dataloader')
    if split == 'train':
        test_loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
        if not test_loader:
            raise ValueError(f'{cfg.filename}: no test_dataloader whose '
                             'pipeline the training images could go through')
        dataset = loader.dataset
        while 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset...
            dataset = dataset.dataset
        dataset = copy.deepcopy(dataset)
        dataset.pipeline = copy.deepcopy(test_loader.dataset.pipeline)
        dataset.test_mode = True
        loader = copy.deepcopy(test_loader)
        loader.dataset = dataset
    loader.num_workers = workers
    loader.persistent_workers = workers > 0
    loader.sampler = ConfigDict(type='DefaultSampler', shuffle=False)
    loader.pop('batch_sampler', None)
    return loader


def thing_category_ids(panoptic_json: str,
                       thing_classes: Sequence[str]) -> List[int]:
    """The panoptic JSON's category id of each thing label, by name.

    Args:
        panoptic_json (str): COCO panoptic JSON of the split.
        thing_classes (Sequence[str]): Thing class names; label = index.

    Returns:
        list[int]: ``category_id`` of label 0, 1, ...

    Raises:
        ValueError: A thing class has no category of that name.
    """
    with open(panoptic_json) as f, naming_json_errors(panoptic_json):
        categories = json.load(f)['categories']
    id_of_name = {category['name']: category['id'] for category in categories}
    missing = [name for name in thing_classes if name not in id_of_name]
    if missing:
        raise ValueError(f'{panoptic_json}: no category named {missing} '
                         '(thing classes of the config)')
    return [id_of_name[name] for name in thing_classes]


def encode_masks(masks: torch.Tensor) -> List[Dict[str, object]]:
    """Compressed RLEs of masks, ``counts`` as str.

    Args:
        masks (Tensor): bool, shape (N, H, W).

    Returns:
        list[dict]: N RLEs ``{size: [H, W], counts: str}``.
    """
    if not len(masks):
        return []
    masks = masks.detach().cpu().numpy().astype(np.uint8)
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
    return [
        dict(
            size=[int(n) for n in rle['size']],
            counts=rle['counts'].decode('ascii')) for rle in rles
    ]


def collect_instance_predictions(model: torch.nn.Module,
                                 loader,
                                 category_ids: Sequence[int],
                                 max_images: Optional[int] = None,
                                 score_thr: float = 0.0,
                                 progress: bool = True) -> List[dict]:
    """COCO results of ``model``'s instance predictions on ``loader``.

    Args:
        model (nn.Module): A panoptic detector (see
            :func:`~mmoanet.apis.fusion_inputs`).
        loader (DataLoader): Its images; samples carry ``img_id``.
        category_ids (Sequence[int]): Category id of each thing label.
        max_images (int, optional): Stop after this many images.
        score_thr (float): Keep predictions scored at least this.
            Defaults to 0 (all the detector gives).
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        list[dict]: ``image_id``, ``category_id``, ``segmentation``
        (compressed RLE at the original image size) and ``score`` of every
        kept prediction, image by image.
    """
    results = []
    with torch.no_grad(), contextlib.closing(
            fusion_inputs(model, loader, max_images, progress)) as batches:
        for _, samples, (instances_list, _, _) in batches:
            for sample, instances in zip(samples, instances_list):
                image_id = sample.metainfo['img_id']
                height, width = sample.metainfo['ori_shape'][:2]
                instances = instances[instances.scores >= score_thr]
                masks = instances.masks
                if len(masks) and tuple(masks.shape[1:]) != (height, width):
                    raise RuntimeError(
                        f'image {image_id}: masks of shape '
                        f'{tuple(masks.shape[1:])}, not its original size '
                        f'{(height, width)}')
                for rle, label, score in zip(
                        encode_masks(masks), instances.labels.tolist(),
                        instances.scores.tolist()):
                    results.append(
                        dict(
                            image_id=image_id,
                            category_id=category_ids[label],
                            segmentation=rle,
                            score=round(float(score), 5)))
    return results


def dump_instance_predictions(config: str,
                              checkpoint: str,
                              out: str,
                              split: str = 'train',
                              score_thr: float = 0.0,
                              device: Optional[str] = None,
                              workers: int = 0,
                              max_images: Optional[int] = None,
                              cfg_options: Optional[dict] = None,
                              force: bool = False,
                              progress: bool = True) -> dict:
    """Write a detector's instance predictions on a split as COCO results.

    Each prediction becomes one entry ``{image_id, category_id,
    segmentation, score}``: the image id of the dataset, the panoptic
    JSON's id of the thing class (matched by name), the mask as compressed
    RLE (``counts`` a str). ``out`` is checked before the detector is built
    (not an input, not existing unless ``force``, in a writable folder) and
    written atomically.

    Args:
        config (str): The detector's config.
        checkpoint (str): Its checkpoint, read with the safe loader and
            refused when it does not fit the model (as ``tools/test.py``
            refuses it).
        out (str): The COCO results JSON to write.
        split (str): ``'train'`` (the training images with the test
            pipeline), ``'val'`` or ``'test'``. Defaults to 'train'.
        score_thr (float): Keep predictions scored at least this, in
            [0, 1]. Defaults to 0 (all the config's ``test_cfg.rcnn``
            gives).
        device (str, optional): Where the detector runs. Defaults to cuda
            when there is one, else cpu.
        workers (int): Image loading workers. Defaults to 0.
        max_images (int, optional): Only the first N images (a check).
        cfg_options (dict, optional): Config overrides.
        force (bool): Replace an existing ``out``. Defaults to False.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        dict: ``out``, ``images``, ``predictions``, ``seconds`` and
        ``s_per_img``.

    Raises:
        ValueError: ``score_thr`` outside [0, 1], or a bad ``split``.
        OutputPathError: A bad ``out``.
        NoPredictionsError: No prediction scored ``score_thr`` or more;
            nothing is written.
    """
    if not 0 <= score_thr <= 1:
        raise ValueError(f'score_thr {score_thr} is outside [0, 1]')
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    check_output_file(out, inputs=(config, checkpoint), force=force)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = init_model(cfg, checkpoint, device=device)
    loader = Runner.build_dataloader(split_dataloader(cfg, split, workers))
    dataset = loader.dataset
    category_ids = thing_category_ids(dataset.ann_file,
                                      dataset.metainfo['thing_classes'])
    start = time.perf_counter()
    results = collect_instance_predictions(model, loader, category_ids,
                                           max_images, score_thr, progress)
    seconds = time.perf_counter() - start
    num_images = len(dataset)
    if max_images is not None:
        num_images = min(num_images, max_images)
    if not results:
        raise NoPredictionsError(
            f'{checkpoint} predicted no instance scored {score_thr} or more '
            f'on the {num_images} {split} images of {dataset.ann_file}; '
            f'{out} was not written. Check that the checkpoint is trained, '
            'or lower the threshold (score_thr, or '
            'model.test_cfg.rcnn.score_thr of the config)')
    with atomic_write(out) as f:
        json.dump(results, f)
    return dict(
        out=out,
        images=num_images,
        predictions=len(results),
        seconds=seconds,
        s_per_img=seconds / max(num_images, 1))
