"""What the Spatial Ranking Module learns from, read from annotation files.

Under ``train_input='gt'`` the SRM (OANet Sec. 3.2) shares no parameter
with a network: its input is a set of instance masks with their classes,
its target the panoptic label where masks of different classes overlap
(Eq. 2). So it trains from annotation files alone, without a single image
going through a network (:class:`~mmoanet.models.StandaloneSRM`).

Shape shorthand: N instances of one image, H x W its size.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmdet.datasets import CocoPanopticDataset
from mmdet.registry import DATASETS
from mmdet.structures import DetDataSample
from mmengine.dataset import BaseDataset
from mmengine.structures import InstanceData, PixelData
from pycocotools import mask as mask_utils

from ..evaluation.functional import load_panoptic_png
from ..utils.constants import IGNORE_INDEX
from .annotation_checks import (duplicates, naming_json_errors, rle_run_totals,
                                segmentation_problem)
from .exceptions import PanopticAnnotationError


@DATASETS.register_module()
class SRMAnnotationDataset(BaseDataset):
    """Instance masks and semantic maps of a COCO-style panoptic set.

    Each item is the ground truth OANet feeds the SRM under
    ``train_input='gt'``: the instance masks and labels of a COCO instances
    JSON (crowd annotations left out, as mmdet's loaders put them aside)
    and the semantic map of the panoptic PNG (things 0..C_th-1, stuff
    C_th.., 255 unlabelled). Images are those of the panoptic JSON, matched
    to instances by ``image_id``; instances of other images are ignored.

    Masks cut from a panoptic PNG never overlap, so the SRM cannot learn
    from them. For a set with panoptic annotations only, ``ins_ann_file``
    may instead be a COCO instance *results* file, a JSON list of
    ``{image_id, category_id, segmentation, score}`` (a detector's
    predictions on the training images, OANet's ``train_input='pred'``
    made once): its ids are the panoptic JSON's, an image without
    predictions has no instances, and the targets still come from the PNGs.

    Categories are matched to ``metainfo['classes']`` by name; stuff
    categories of a detection-format export are skipped. A mask whose size
    does not fit its image in the panoptic JSON is an error, as are
    duplicate annotation ids, ids the panoptic JSON does not know, and a
    set with no instance at all (the SRM would train on nothing).

    Built on mmengine's ``BaseDataset`` (``lazy_init``, ``get_data_info``,
    ``metainfo``, ``max_refetch`` and a ``pipeline`` applied to each item);
    its items are not image dicts but ready ``inputs`` / ``data_samples``
    pairs, so :meth:`prepare_data` builds them before the pipeline, which
    is empty by default.

    Args:
        ann_file (str): COCO panoptic JSON, relative to ``data_root``.
        ins_ann_file (str): COCO instances JSON of the same images, or a
            COCO results list on them, relative to ``data_root``.
        data_root (str): Root of the relative paths. Defaults to ''.
        data_prefix (dict): ``seg``, the folder of the panoptic PNGs.
        metainfo (dict, optional): ``classes`` (things first),
            ``thing_classes``; label = index in ``classes``. Defaults to
            COCO panoptic's (``CocoPanopticDataset.METAINFO``).
        min_score (float): Leave out results scored below this; only for a
            results file, in [0, 1]. Defaults to 0 (keep all).
        max_images (int, optional): Keep only the first N images of the
            panoptic JSON (a quick check or a timing).
        **kwargs: Other ``BaseDataset`` arguments (``lazy_init``,
            ``pipeline``, ``indices``, ...).

    Attributes:
        from_results (bool): ``ins_ann_file`` is a results file (after
            loading).
        num_instances (int): Instance masks over the kept images (after
            loading).
    """

    METAINFO = CocoPanopticDataset.METAINFO

    def __init__(self,
                 ann_file: str,
                 ins_ann_file: str,
                 data_root: str = '',
                 data_prefix: dict = dict(seg=''),
                 metainfo: Optional[dict] = None,
                 min_score: float = 0.0,
                 max_images: Optional[int] = None,
                 **kwargs) -> None:
        if not 0 <= min_score <= 1:
            raise ValueError(f'SRMAnnotationDataset ({ins_ann_file}): '
                             f'min_score {min_score} is outside [0, 1]')
        if not ins_ann_file:
            raise ValueError(
                'SRMAnnotationDataset needs ins_ann_file, a COCO instances '
                'JSON or a detector\'s COCO results on the images of '
                f'{ann_file}: masks cut from the panoptic PNG never overlap, '
                'and the SRM learns only where masks overlap (Eq. 2)')
        if not (data_prefix or {}).get('seg'):
            raise ValueError('SRMAnnotationDataset needs data_prefix=dict('
                             'seg=<folder of the panoptic PNGs>)')
        if data_root and not osp.isabs(ins_ann_file):
            ins_ann_file = osp.join(data_root, ins_ann_file)
        self.ins_ann_file = ins_ann_file
        self.min_score = min_score
        self.max_images = max_images
        self.from_results = False
        self.num_instances = 0
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            metainfo=metainfo,
            **kwargs)

    # ------------------------------------------------------------------
    # annotations
    # ------------------------------------------------------------------

    def load_data_list(self) -> List[dict]:
        """One entry per image of the panoptic JSON.

        Returns:
            list[dict]: ``img_id``, ``seg_map_path``, ``segments`` (list of
            (segment id, label)) and ``instances`` (list of dicts with
            ``segmentation`` and ``label``).
        """
        png_dir = self.data_prefix['seg']
        for path in (self.ann_file, self.ins_ann_file, png_dir):
            if not osp.exists(path):
                raise FileNotFoundError(f'SRM training data: {path} does '
                                        'not exist')
        classes = list(self.metainfo['classes'])
        thing_classes = list(self.metainfo['thing_classes'])
        if classes[:len(thing_classes)] != thing_classes:
            raise ValueError('SRMAnnotationDataset: metainfo classes must '
                             'list the thing_classes first, in order')
        num_things = len(thing_classes)
        label_of_name = {name: label for label, name in enumerate(classes)}
        panoptic = _read_json(self.ann_file)
        instances = _read_json(self.ins_ann_file)
        pan_labels = _category_labels(panoptic['categories'], label_of_name,
                                      self.ann_file)
        self.from_results = isinstance(instances, list)
        if self.from_results:
            annotations = self._check_results(instances, panoptic)
            ins_labels = pan_labels
        else:
            annotations = self._check_instances(instances)
            ins_labels = _category_labels(instances['categories'],
                                          label_of_name, self.ins_ann_file)
        sizes = {
            image['id']: [image['height'], image['width']]
            for image in panoptic['images']
            if 'height' in image and 'width' in image
        }
        kept = [
            (ann, ins_labels[ann['category_id']]) for ann in annotations
            # crowd, or stuff in a detection-format export
            if not ann.get('iscrowd', 0)
            and ins_labels[ann['category_id']] < num_things
        ]
        rle_totals = self._rle_totals([ann for ann, _ in kept])
        by_image: Dict[int, List[dict]] = {}
        for index, (ann, label) in enumerate(kept):
            self._check_segmentation(ann, sizes, rle_totals.get(index))
            by_image.setdefault(ann['image_id'], []).append(
                dict(segmentation=ann['segmentation'], label=label))
        data_list = []
        for ann in panoptic['annotations']:
            data_list.append(
                dict(
                    img_id=ann['image_id'],
                    seg_map_path=osp.join(png_dir, ann['file_name']),
                    segments=[(s['id'], pan_labels[s['category_id']])
                              for s in ann['segments_info']],
                    instances=by_image.get(ann['image_id'], [])))
        if self.max_images is not None:
            data_list = data_list[:self.max_images]
        self.num_instances = sum(len(item['instances']) for item in data_list)
        if self.num_instances == 0:
            raise PanopticAnnotationError(
                f'{self.ins_ann_file}: no instance mask of a thing class on '
                f'the {len(data_list)} images used of {self.ann_file} '
                '(crowd annotations and stuff categories are left out); '
                'the SRM would train on nothing')
        return data_list

    def _check_instances(self, instances: object) -> List[dict]:
        """The annotations of a COCO instances JSON, ids checked."""
        source = self.ins_ann_file
        if not isinstance(instances, dict) or any(
                key not in instances for key in ('annotations', 'categories')):
            raise PanopticAnnotationError(
                f'{source}: neither a COCO instances JSON (a dict with '
                'images, annotations, categories) nor a COCO results list')
        annotations = instances['annotations']
        repeated = duplicates(ann['id'] for ann in annotations
                              if ann.get('id') is not None)
        if repeated:
            raise PanopticAnnotationError(
                f'{source}: annotation ids {repeated[:10]} are used more '
                'than once; COCO annotation ids must be unique')
        category_ids = {c['id'] for c in instances['categories']}
        for ann in annotations:
            missing = [
                key for key in ('image_id', 'category_id', 'segmentation')
                if key not in ann
            ]
            if missing:
                raise PanopticAnnotationError(
                    f'{source}: annotation {ann.get("id")} has no {missing}')
            if ann['category_id'] not in category_ids:
                raise PanopticAnnotationError(
                    f'{source}: annotation {ann.get("id")} (image_id '
                    f'{ann["image_id"]}) has category_id '
                    f'{ann["category_id"]}, which its categories do not '
                    'list')
        return annotations

    def _check_results(self, results: List[object],
                       panoptic: dict) -> List[dict]:
        """The results scored ``min_score`` or more, ids checked.

        Raises:
            PanopticAnnotationError: Naming the file and the entry, for an
                entry that is not a result, whose image or category the
                panoptic JSON does not list, and when no result is left.
        """
        source, panoptic_json = self.ins_ann_file, self.ann_file
        image_ids = {image['id'] for image in panoptic['images']}
        category_ids = {category['id'] for category in panoptic['categories']}
        kept = []
        for index, result in enumerate(results):
            if not isinstance(result, dict) or any(
                    key not in result
                    for key in ('image_id', 'category_id', 'segmentation')):
                raise PanopticAnnotationError(
                    f'{source}: entry {index} is not a COCO result with '
                    'image_id, category_id and segmentation')
            if result['image_id'] not in image_ids:
                raise PanopticAnnotationError(
                    f'{source}: entry {index} has image_id '
                    f'{result["image_id"]}, an image {panoptic_json} does '
                    'not list (results must be on the images of the '
                    'panoptic JSON)')
            if result['category_id'] not in category_ids:
                raise PanopticAnnotationError(
                    f'{source}: entry {index} (image_id '
                    f'{result["image_id"]}) has category_id '
                    f'{result["category_id"]}, which is not a category of '
                    f'{panoptic_json}')
            if result.get('score', 1.0) >= self.min_score:
                kept.append(result)
        if not kept:
            best = max((r.get('score', 1.0) for r in results), default=None)
            raise PanopticAnnotationError(
                f'{source}: none of its {len(results)} predictions scores '
                f'>= min_score {self.min_score}' +
                (f' (the highest scores {best})' if best is not None else '') +
                '; the SRM would train on nothing')
        return kept

    @staticmethod
    def _rle_totals(annotations: List[dict]) -> Dict[int, int]:
        """Run-length totals of the compressed RLEs, by index in
        ``annotations``, in one vectorised pass (:func:`rle_run_totals`;
        a results file holds one RLE per prediction)."""
        compressed = [
            index for index, ann in enumerate(annotations)
            if isinstance(ann['segmentation'], dict)
            and isinstance(ann['segmentation'].get('counts'), (str, bytes))
        ]
        totals = rle_run_totals(
            [annotations[i]['segmentation']['counts'] for i in compressed])
        return {index: int(total) for index, total in zip(compressed, totals)}

    def _check_segmentation(self, ann: dict, sizes: Dict[int, List[int]],
                            rle_total: Optional[int]) -> None:
        """A mask must fit its image's size in the panoptic JSON
        (:func:`~mmoanet.datasets.annotation_checks.segmentation_problem`,
        the check the other datasets run on their annotations)."""
        size = sizes.get(ann['image_id'])
        if size is None:
            return
        problem = segmentation_problem(
            ann['segmentation'], *size, rle_total=rle_total)
        if problem is not None:
            raise PanopticAnnotationError(
                f'{self.ins_ann_file}: a mask of image_id {ann["image_id"]} '
                f'(annotation {ann.get("id", "without id")}): {problem} '
                f'(image size from {self.ann_file})')

    # ------------------------------------------------------------------
    # items
    # ------------------------------------------------------------------

    def prepare_data(self, idx: int) -> dict:
        """One image's ground truth, ready for ``pseudo_collate``.

        Returns:
            dict: ``inputs`` (None: the SRM reads no image) and
            ``data_samples``, a ``DetDataSample`` with ``gt_instances``
            (``masks`` bool (N, H, W), ``labels`` long (N,)) and
            ``gt_sem_seg.sem_seg`` long (1, H, W). Its metainfo holds
            ``img_id``, ``seg_map_path`` and ``ori_shape`` but no
            ``batch_input_shape``: the SRM's canvas is then the largest
            image of the batch, smaller ones padded at the bottom and right
            as mmdet pads.
        """
        info = self.get_data_info(idx)
        ids = load_panoptic_png(info['seg_map_path'])
        height, width = ids.shape
        sem_seg = np.full(ids.shape, IGNORE_INDEX, dtype=np.int64)
        for segment_id, label in info['segments']:
            sem_seg[ids == segment_id] = label
        masks = np.zeros((len(info['instances']), height, width), dtype=bool)
        for mask, ann in zip(masks, info['instances']):
            mask[...] = _decode(ann['segmentation'], height, width)
        labels = [ann['label'] for ann in info['instances']]
        sample = DetDataSample(
            metainfo=dict(
                img_id=info['img_id'],
                seg_map_path=info['seg_map_path'],
                ori_shape=(height, width)))
        sample.gt_instances = InstanceData(
            masks=torch.from_numpy(masks),
            labels=torch.tensor(labels, dtype=torch.long))
        sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem_seg)[None])
        return self.pipeline(dict(inputs=None, data_samples=sample))


def _read_json(path: str) -> object:
    with open(path) as f, naming_json_errors(path):
        return json.load(f)


def _category_labels(categories: Sequence[dict], label_of_name: Dict[str, int],
                     source: str) -> Dict[int, int]:
    """Category id -> label, by name; an unknown name fails loudly."""
    unknown = [c['name'] for c in categories if c['name'] not in label_of_name]
    if unknown:
        raise PanopticAnnotationError(
            f'{source}: categories {unknown} are not classes of the '
            'dataset (metainfo classes)')
    return {c['id']: label_of_name[c['name']] for c in categories}


def _decode(segmentation, height: int, width: int) -> np.ndarray:
    """bool (H, W) mask of a COCO polygon / RLE segmentation."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(
            mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation['counts'], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(bool)
