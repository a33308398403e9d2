"""What the SRM learns from, read from a dataset's annotation files.

Used by ``tools/train_srm.py``: the ground truth that OANet feeds its
Spatial Ranking Module under ``train_input='gt'`` (instance masks and
labels of a COCO instances JSON, the semantic map of the COCO panoptic
PNGs), without loading a single image. For a dataset with panoptic
annotations only, the instance masks can instead be a detector's
predictions, a COCO results file of
``tools/analysis_tools/dump_instance_predictions.py`` (OANet's
``train_input='pred'``, with the predictions made once).
"""
import json
import os.path as osp
import sys
from typing import Dict, Iterator, List, Optional

import numpy as np
import torch
from mmdet.registry import DATASETS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset, Sampler

from mmoanet.datasets.annotation_checks import (naming_json_errors,
                                                segmentation_problem)
from mmoanet.evaluation.functional import load_panoptic_png
from mmoanet.utils.constants import IGNORE_INDEX


def _resolve(data_root: str, path: str) -> str:
    """``path`` relative to ``data_root`` unless it is absolute."""
    return path if osp.isabs(path) else osp.join(data_root, path)


def dataset_settings(cfg: Config,
                     ins_ann_file: Optional[str] = None) -> Dict[str, object]:
    """Where the annotations of ``cfg``'s training set are, and its classes.

    Args:
        cfg (Config): A detector config with ``train_dataloader.dataset``.
        ins_ann_file (str, optional): Overrides the config's instances JSON
            (or COCO results file).

    Returns:
        dict: ``panoptic_json``, ``png_dir``, ``instances_json`` (paths) and
        ``classes``, ``thing_classes`` (lists of names, things first).

    Raises:
        ValueError: Naming the missing config key.
    """
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset...
        dataset = dataset.dataset
    data_root = dataset.get('data_root') or ''
    ins_ann_file = (
        ins_ann_file or dataset.get('ins_ann_file')
        or cfg.get('srm_train', {}).get('ins_ann_file'))
    if not ins_ann_file:
        raise ValueError(
            f'{cfg.filename}: no COCO instances JSON for the SRM: set '
            'srm_train.ins_ann_file (or the dataset\'s ins_ann_file), or '
            'pass --ins-ann-file. Masks cut from the panoptic PNG never '
            'overlap, and the SRM learns only where masks overlap (Eq. 2). '
            'With panoptic annotations only, pass a trained detector\'s '
            'predictions (tools/analysis_tools/'
            'dump_instance_predictions.py).')
    seg_prefix = (dataset.get('data_prefix') or {}).get('seg')
    if not dataset.get('ann_file') or not seg_prefix:
        raise ValueError(f'{cfg.filename}: train_dataloader.dataset needs '
                         'ann_file and data_prefix.seg (panoptic JSON and '
                         'PNG folder)')
    metainfo = dict(DATASETS.get(dataset.type).METAINFO)
    metainfo.update(dataset.get('metainfo') or {})
    classes = list(metainfo['classes'])
    thing_classes = list(metainfo['thing_classes'])
    if classes[:len(thing_classes)] != thing_classes:
        raise ValueError(f'{cfg.filename}: metainfo.classes must list the '
                         'thing_classes first, in the same order')
    return dict(
        panoptic_json=_resolve(data_root, dataset.ann_file),
        png_dir=_resolve(data_root, seg_prefix),
        instances_json=_resolve(data_root, ins_ann_file),
        classes=classes,
        thing_classes=thing_classes)


class SRMAnnotations(Dataset):
    """What the SRM learns from, per image, read from annotation files.

    Each item is the ground truth OANet feeds the SRM under
    ``train_input='gt'``: the instance masks and labels of the COCO
    instances JSON (crowd annotations left out, as mmdet's loaders put them
    aside) and the semantic map of the panoptic PNG (things 0..C_th-1,
    stuff C_th.., 255 unlabelled). Images are matched by ``image_id``;
    images with no panoptic entry are left out.

    ``instances_json`` may instead be a COCO instance *results* file, a
    JSON list of ``{image_id, category_id, segmentation, score}`` (a
    detector's predictions, ``dump_instance_predictions.py``): its image
    ids and category ids are the panoptic JSON's, and an image without
    predictions has no instances. An id the panoptic JSON does not list is
    an error, as is any mask (of either kind of file) whose RLE ``size``
    is not its image's size in the panoptic JSON.

    Args:
        panoptic_json (str): COCO panoptic JSON.
        png_dir (str): Folder of its PNGs.
        instances_json (str): COCO instances JSON of the same images, or a
            COCO results file on them.
        classes (list[str]): Class names, things first; label = index.
        thing_classes (list[str]): The thing class names.
        max_images (int, optional): Keep only the first N images.
        min_score (float): Leave out results scored below this. Defaults
            to 0 (keep all); ground-truth annotations are all kept.

    Attributes:
        from_results (bool): ``instances_json`` is a results file.
        num_instances (int): Instance masks over the kept images.
    """

    def __init__(self,
                 panoptic_json: str,
                 png_dir: str,
                 instances_json: str,
                 classes: List[str],
                 thing_classes: List[str],
                 max_images: Optional[int] = None,
                 min_score: float = 0.0) -> None:
        for path in (panoptic_json, instances_json, png_dir):
            if not osp.exists(path):
                raise FileNotFoundError(f'SRM training data: {path} does '
                                        'not exist')
        with open(panoptic_json) as f, naming_json_errors(panoptic_json):
            panoptic = json.load(f)
        with open(instances_json) as f, naming_json_errors(instances_json):
            instances = json.load(f)
        self.png_dir = png_dir
        label_of_name = {name: label for label, name in enumerate(classes)}
        self.num_things = len(thing_classes)
        self.pan_labels = self._category_labels(panoptic['categories'],
                                                label_of_name, panoptic_json)
        self.from_results = isinstance(instances, list)
        if self.from_results:
            annotations = self._check_results(instances, instances_json,
                                              panoptic, panoptic_json,
                                              min_score)
            ins_labels = self.pan_labels
        else:
            if not isinstance(instances, dict) or any(
                    key not in instances
                    for key in ('annotations', 'categories')):
                raise ValueError(
                    f'{instances_json}: neither a COCO instances JSON (a '
                    'dict with images, annotations, categories) nor a COCO '
                    'results list')
            annotations = instances['annotations']
            ins_labels = self._category_labels(instances['categories'],
                                               label_of_name, instances_json)
        sizes = {
            image['id']: [image['height'], image['width']]
            for image in panoptic['images']
            if 'height' in image and 'width' in image
        }
        by_image: Dict[int, List[dict]] = {}
        for ann in annotations:
            label = ins_labels[ann['category_id']]
            if ann.get('iscrowd', 0):
                continue
            if label >= self.num_things:
                continue  # stuff in a detection-format export
            self._check_segmentation(ann, sizes, instances_json, panoptic_json)
            by_image.setdefault(ann['image_id'], []).append(
                dict(segmentation=ann['segmentation'], label=label))
        self.items = []
        for ann in panoptic['annotations']:
            image_id = ann['image_id']
            self.items.append(
                dict(
                    png=ann['file_name'],
                    segments=[(s['id'], self.pan_labels[s['category_id']])
                              for s in ann['segments_info']],
                    instances=by_image.get(image_id, [])))
        if max_images is not None:
            self.items = self.items[:max_images]
        self.num_instances = sum(len(item['instances']) for item in self.items)

    @staticmethod
    def _check_results(results: List[dict], source: str, panoptic: dict,
                       panoptic_json: str, min_score: float) -> List[dict]:
        """The results of ``source`` scored ``min_score`` or more.

        Raises:
            ValueError: Naming ``source`` and the id, for an entry that is
                not a result, or whose image or category the panoptic JSON
                does not list.
        """
        image_ids = {image['id'] for image in panoptic['images']}
        category_ids = {category['id'] for category in panoptic['categories']}
        kept = []
        for index, result in enumerate(results):
            if not isinstance(result, dict) or any(
                    key not in result
                    for key in ('image_id', 'category_id', 'segmentation')):
                raise ValueError(
                    f'{source}: entry {index} is not a COCO result with '
                    'image_id, category_id and segmentation')
            if result['image_id'] not in image_ids:
                raise ValueError(
                    f'{source}: entry {index} has image_id '
                    f'{result["image_id"]}, an image {panoptic_json} does '
                    'not list (results must be on the images of the '
                    'panoptic JSON)')
            if result['category_id'] not in category_ids:
                raise ValueError(
                    f'{source}: entry {index} (image_id '
                    f'{result["image_id"]}) has category_id '
                    f'{result["category_id"]}, which is not a category of '
                    f'{panoptic_json}')
            if result.get('score', 1.0) >= min_score:
                kept.append(result)
        return kept

    @staticmethod
    def _check_segmentation(ann: dict, sizes: Dict[int, List[int]],
                            source: str, panoptic_json: str) -> None:
        """A mask must fit its image's size in the panoptic JSON
        (:func:`~mmoanet.datasets.annotation_checks.segmentation_problem`,
        the check the datasets run on their annotations)."""
        size = sizes.get(ann['image_id'])
        if size is None:
            return
        problem = segmentation_problem(ann['segmentation'], *size)
        if problem is not None:
            raise ValueError(
                f'{source}: a mask of image_id {ann["image_id"]} (annotation '
                f'{ann.get("id", "without id")}): {problem} (image size '
                f'from {panoptic_json})')

    @staticmethod
    def _category_labels(categories: List[dict], label_of_name: Dict[str, int],
                         source: str) -> Dict[int, int]:
        """Category id -> label, by name; an unknown name fails loudly."""
        unknown = [
            c['name'] for c in categories if c['name'] not in label_of_name
        ]
        if unknown:
            raise ValueError(f'{source}: categories {unknown} are not '
                             'classes of the config (metainfo.classes)')
        return {c['id']: label_of_name[c['name']] for c in categories}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Dict[str, object]:
        """One image's ground truth.

        Returns:
            dict: ``instances`` (InstanceData: ``masks`` bool (N, H, W),
            ``labels`` long (N,)) and ``sem_seg`` long (1, H, W).
        """
        item = self.items[index]
        ids = load_panoptic_png(osp.join(self.png_dir, item['png']))
        height, width = ids.shape
        sem_seg = np.full(ids.shape, IGNORE_INDEX, dtype=np.int64)
        for segment_id, label in item['segments']:
            sem_seg[ids == segment_id] = label
        masks = np.zeros((len(item['instances']), height, width), dtype=bool)
        for mask, ann in zip(masks, item['instances']):
            mask[...] = self._decode(ann['segmentation'], height, width)
        labels = [ann['label'] for ann in item['instances']]
        return dict(
            instances=InstanceData(
                masks=torch.from_numpy(masks),
                labels=torch.tensor(labels, dtype=torch.long)),
            sem_seg=torch.from_numpy(sem_seg)[None])

    @staticmethod
    def _decode(segmentation, height: int, width: int) -> np.ndarray:
        """bool (H, W) mask of a COCO polygon / RLE segmentation."""
        if isinstance(segmentation, list):
            rles = mask_utils.frPyObjects(segmentation, height, width)
            rle = mask_utils.merge(rles)
        elif isinstance(segmentation['counts'], list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        return mask_utils.decode(rle).astype(bool)


def as_data_samples(batch: List[Dict[str, object]]) -> List[DetDataSample]:
    """Data samples as ``SpatialRankingModule.loss`` reads them.

    No ``batch_input_shape``: the SRM's canvas is then the largest image of
    the batch, smaller ones padded at the bottom and right as mmdet pads.
    """
    samples = []
    for item in batch:
        sample = DetDataSample()
        sample.gt_instances = item['instances']
        sample.gt_sem_seg = PixelData(sem_seg=item['sem_seg'])
        samples.append(sample)
    return samples


class EpochSampler(Sampler):
    """Endless shuffled epochs, resumable from any position.

    Epoch ``e`` is a permutation seeded with ``seed + e``, so the index at
    position ``p`` of the stream depends on (seed, p) alone and a resumed
    run sees the images it would have seen.

    Args:
        num_items (int): Dataset length.
        seed (int): Base seed of the permutations.
        start (int): Position of the first index yielded.
    """

    def __init__(self, num_items: int, seed: int = 0, start: int = 0) -> None:
        self.num_items = num_items
        self.seed = seed
        self.start = start

    def __iter__(self) -> Iterator[int]:
        epoch, offset = divmod(self.start, self.num_items)
        while True:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.num_items, generator=generator)
            yield from order[offset:].tolist()
            epoch, offset = epoch + 1, 0

    def __len__(self) -> int:  # endless; a length for DataLoader only
        return sys.maxsize


def collate_items(batch: List[Dict[str, object]]) -> List[Dict[str, object]]:
    return batch
