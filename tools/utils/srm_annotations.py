"""What the SRM learns from, read from a dataset's annotation files.

Used by ``tools/train_srm.py``: the ground truth that OANet feeds its
Spatial Ranking Module under ``train_input='gt'`` (instance masks and
labels of a COCO instances JSON, the semantic map of the COCO panoptic
PNGs), without loading a single image.
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
        ins_ann_file (str, optional): Overrides the config's instances JSON.

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
            'overlap, and the SRM learns only where masks overlap (Eq. 2).')
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

    Args:
        panoptic_json (str): COCO panoptic JSON.
        png_dir (str): Folder of its PNGs.
        instances_json (str): COCO instances JSON of the same images.
        classes (list[str]): Class names, things first; label = index.
        thing_classes (list[str]): The thing class names.
        max_images (int, optional): Keep only the first N images.
    """

    def __init__(self,
                 panoptic_json: str,
                 png_dir: str,
                 instances_json: str,
                 classes: List[str],
                 thing_classes: List[str],
                 max_images: Optional[int] = None) -> None:
        for path in (panoptic_json, instances_json, png_dir):
            if not osp.exists(path):
                raise FileNotFoundError(f'SRM training data: {path} does '
                                        'not exist')
        with open(panoptic_json) as f:
            panoptic = json.load(f)
        with open(instances_json) as f:
            instances = json.load(f)
        self.png_dir = png_dir
        label_of_name = {name: label for label, name in enumerate(classes)}
        self.num_things = len(thing_classes)
        self.pan_labels = self._category_labels(panoptic['categories'],
                                                label_of_name, panoptic_json)
        ins_labels = self._category_labels(instances['categories'],
                                           label_of_name, instances_json)
        by_image: Dict[int, List[dict]] = {}
        for ann in instances['annotations']:
            label = ins_labels[ann['category_id']]
            if ann.get('iscrowd', 0):
                continue
            if label >= self.num_things:
                continue  # stuff in a detection-format export
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
