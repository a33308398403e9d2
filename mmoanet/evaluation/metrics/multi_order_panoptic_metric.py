"""PQ / SQ / RQ of several panoptic fusion orders, side by side.

OANet's fusion head can lay the same instances out by SRM rank and by
detection score (Sec. 3.2, Table 3 of the paper compares them). With
``test_cfg.compare_orders=True`` the detector puts each order on the data
sample; this metric scores all of them in one evaluation pass, so the
comparison costs one inference instead of one per order.

Shape shorthand:

    H, W: original image size (``ori_shape``)
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.datasets.api_wrappers import COCOPanoptic
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import dump, get, get_local_path
from mmengine.logging import MMLogger, print_log
from PIL import Image
from terminaltables import AsciiTable

from ...datasets.annotation_checks import naming_json_errors
from ...models.seg_heads.panoptic_fusion_heads.srm_fusion_head import \
    SAMPLE_KEYS
from ...utils.outputs import atomic_write
from ...visualization.per_class_pq import write_per_class_pq
from ..functional import (PanopticStats, decode_panoptic_png,
                          fusion_ids_to_coco, id_to_rgb, merge_stats,
                          panoptic_stats_single, pq_summary)
from .input_paths import check_input_path

PRIMARY_KEY = 'pred_panoptic_seg'
# Order key on a data sample -> the PixelData field that carries the same
# map inside ``pred_panoptic_seg`` when SRMFusionHead runs in mmdet's own
# PanopticFPN, whose detector keeps only that key.
ORDER_FIELDS = {
    key: field
    for field, key in SAMPLE_KEYS.items() if field.startswith('sem_seg_')
}
SUMMARY_ROWS = (('', 'All'), ('_th', 'Things'), ('_st', 'Stuff'))
NO_GT_MESSAGE = ('this dataset has no panoptic ground truth; use '
                 'format_only=True with an outfile_prefix to write the '
                 'predictions for a test server submission')


def _expose_orders(data_sample: dict) -> None:
    """Give the orders a fusion head put beside the contract their own keys.

    OANet's detector writes ``pred_panoptic_seg_srm`` / ``_score`` on the
    data sample itself; mmdet's ``PanopticFPN`` with an ``SRMFusionHead``
    keeps only ``pred_panoptic_seg``, where the other orders ride as the
    fields ``sem_seg_srm`` / ``sem_seg_score``. Keys already present win.
    """
    primary = data_sample.get(PRIMARY_KEY)
    if not isinstance(primary, dict):
        return
    for key, field in ORDER_FIELDS.items():
        if key not in data_sample and field in primary:
            data_sample[key] = dict(sem_seg=primary[field])


@METRICS.register_module()
class MultiOrderPanopticMetric(BaseMetric):
    """COCO panoptic quality for the primary and the alternative orders.

    The primary prediction ``pred_panoptic_seg`` is reported as
    ``coco_panoptic/PQ``, ``coco_panoptic/PQ_th``, ... (the names mmdet's
    ``CocoPanopticMetric`` uses, so checkpoint selection by
    ``coco_panoptic/PQ`` keeps working) and every order in ``orders`` found on
    the data samples as ``coco_panoptic/{name}/PQ`` etc. Numbers equal
    panopticapi's ``pq_compute`` (see
    :mod:`mmoanet.evaluation.functional.panoptic_quality`), but evaluation
    happens in memory per image, so only small per-category statistics are
    gathered across ranks; no PNG is written unless ``outfile_prefix`` is set.

    Labels map to category ids as in mmdet: with ``ann_file``, class names
    are looked up in its categories (``get_cat_ids(cat_names=classes)``, the
    dataset's ``cat_ids``), otherwise the category id is the label and
    ``isthing`` comes from ``thing_classes``.

    Args:
        ann_file (str, optional): COCO panoptic JSON. Ground truth segments
            (with their JSON ``area``) and categories come from it. Without
            it, they come from the data samples (``segments_info`` and
            ``seg_map_path`` in their meta keys). Defaults to None.
        seg_prefix (str, optional): Folder of the ground truth PNGs; when
            None, each data sample's ``seg_map_path`` is read. Defaults to
            None.
        orders (dict[str, str], optional): Report name to data sample key of
            the alternative orders. An order missing from a data sample is
            skipped. Defaults to ``dict(srm='pred_panoptic_seg_srm',
            score='pred_panoptic_seg_score')``.
        classwise (bool): Log per-class PQ / SQ / RQ of every order, and
            write them as a table and a plot (see ``classwise_out_dir``).
            Defaults to False.
        classwise_out_dir (str, optional): Folder for the per-class table
            (``per_class_pq.csv``, ``per_class_pq.md``) and the PQ bar chart
            of every order (``per_class_pq.png``, needs matplotlib). When
            None, ``classwise=True`` writes them beside the log file of the
            run (``work_dir/<timestamp>/``). Defaults to None.
        format_only (bool): Only write the primary predictions in COCO
            panoptic format (for test-dev), no evaluation. Needs
            ``outfile_prefix``. Defaults to False.
        outfile_prefix (str, optional): Writes ``{prefix}.panoptic/*.png``
            and ``{prefix}.panoptic.json``. Should be on storage shared by
            all ranks. Defaults to None (nothing written).
        backend_args (dict, optional): mmengine file backend arguments for
            reading ``ann_file`` and the ground truth PNGs. Defaults to None.
        collect_device (str): 'cpu' or 'gpu', used to gather the results of
            all ranks. Defaults to 'cpu'.
        prefix (str, optional): Metric name prefix. Defaults to
            ``'coco_panoptic'``.
        collect_dir (str, optional): Folder for gathering with
            ``collect_device='cpu'``. Defaults to None.
    """
    default_prefix: Optional[str] = 'coco_panoptic'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 seg_prefix: Optional[str] = None,
                 orders: Optional[Dict[str, str]] = None,
                 classwise: bool = False,
                 classwise_out_dir: Optional[str] = None,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        if orders is None:
            orders = dict(
                srm='pred_panoptic_seg_srm', score='pred_panoptic_seg_score')
        for name in orders:
            if not name or '/' in name:
                raise ValueError(f'order name {name!r} must be a non-empty '
                                 "string without '/'")
        if format_only and outfile_prefix is None:
            raise ValueError('format_only=True needs an outfile_prefix to '
                             'write the predictions to')
        self.orders = dict(orders)
        self.classwise = classwise
        self.classwise_out_dir = classwise_out_dir
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix
        self.seg_prefix = seg_prefix
        self.backend_args = backend_args
        self._coco_api = None
        check_input_path(ann_file, 'ann_file', backend_args=backend_args)
        if not format_only:  # the ground truth PNGs are read per image
            check_input_path(
                seg_prefix,
                'seg_prefix',
                folder=True,
                backend_args=backend_args)
        if ann_file is not None:
            with get_local_path(
                    ann_file, backend_args=backend_args) as local_path, \
                    naming_json_errors(ann_file):
                self._coco_api = COCOPanoptic(local_path)
            if not format_only and 'annotations' not in self._coco_api.dataset:
                raise ValueError(f'{ann_file}: {NO_GT_MESSAGE}')
        self._categories: Optional[Dict[int, dict]] = None
        self._label2cat: Optional[Dict[int, int]] = None

    # ------------------------------------------------------------------
    # categories
    # ------------------------------------------------------------------
    def _init_categories(self) -> None:
        """Build the category dict and the label to category id map."""
        if self._categories is not None:
            return
        if self.dataset_meta is None:
            raise RuntimeError('dataset_meta must be set before evaluation')
        classes = self.dataset_meta['classes']
        if self._coco_api is not None:
            self._categories = dict(self._coco_api.cats)
            cat_ids = self._coco_api.get_cat_ids(cat_names=classes)
        else:
            thing_classes = set(self.dataset_meta.get('thing_classes', ()))
            self._categories = {
                label:
                dict(id=label, name=name, isthing=int(name in thing_classes))
                for label, name in enumerate(classes)
            }
            cat_ids = list(range(len(classes)))
        if len(cat_ids) != len(classes):
            raise ValueError(f'{len(classes)} classes but {len(cat_ids)} of '
                             'them were found among the categories')
        names = [self._categories[cat_id]['name'] for cat_id in cat_ids]
        if names != list(classes):
            # mmdet's datasets number labels in the ann file's category
            # order too, so this mirrors training; still worth a word.
            print_log(
                'dataset classes are not in the order of the ann_file '
                'categories; labels follow the ann_file order, as in '
                "mmdet's CocoPanopticDataset",
                logger='current',
                level=logging.WARNING)
        self._label2cat = dict(enumerate(cat_ids))

    # ------------------------------------------------------------------
    # per image
    # ------------------------------------------------------------------
    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score every order of each data sample and keep its statistics.

        Args:
            data_batch (dict): Unused.
            data_samples (Sequence[dict]): Data samples as dicts with
                ``img_id``, ``img_path``, ``ori_shape``,
                ``pred_panoptic_seg`` (``sem_seg`` int (1, H, W), ids
                ``label + instance_id * INSTANCE_OFFSET``, label
                ``num_classes`` is VOID), optional order keys, and without
                ``ann_file`` ``segments_info`` and ``seg_map_path``.
        """
        self._init_categories()
        for data_sample in data_samples:
            if hasattr(data_sample, 'to_dict'):
                data_sample = data_sample.to_dict()
            _expose_orders(data_sample)
            segm_file = self._segm_file(data_sample)
            result = dict(img_id=data_sample['img_id'])
            if self.outfile_prefix is not None:
                pred_ids, pred_segments = self._convert_prediction(
                    data_sample[PRIMARY_KEY])
                self._write_prediction(pred_ids, segm_file)
                result['annotation'] = dict(
                    image_id=data_sample['img_id'],
                    file_name=segm_file,
                    segments_info=pred_segments)
            if not self.format_only:
                gt_ids, gt_segments = self._load_ground_truth(
                    data_sample, segm_file)
                result['stats'] = self._score_orders(data_sample, gt_ids,
                                                     gt_segments)
            self.results.append(result)

    def _score_orders(self, data_sample: dict, gt_ids: np.ndarray,
                      gt_segments: List[dict]) -> Dict[str, PanopticStats]:
        """Statistics of every order on one image, keyed by report name.

        Orders whose map equals one already scored (e.g. the primary when
        ``rank_by`` is that order) reuse its statistics.
        """
        keys = {'': PRIMARY_KEY}
        keys.update((name, key) for name, key in self.orders.items()
                    if key in data_sample)
        scored: List[Tuple[np.ndarray, PanopticStats]] = []
        stats_of_order = {}
        for name, key in keys.items():
            pan = _panoptic_array(data_sample[key])
            stats = next((done for done_pan, done in scored
                          if np.array_equal(done_pan, pan)), None)
            if stats is None:
                pred_ids, pred_segments = self._convert_prediction(
                    data_sample[key], pan)
                if pred_ids.shape != gt_ids.shape:
                    raise ValueError(
                        f'image {data_sample["img_id"]}: {key} has shape '
                        f'{pred_ids.shape} but the ground truth has '
                        f'{gt_ids.shape}; predict with rescale=True')
                stats = panoptic_stats_single(gt_ids, gt_segments, pred_ids,
                                              pred_segments, self._categories,
                                              str(data_sample['img_id']))
                scored.append((pan, stats))
            stats_of_order[name] = stats
        return stats_of_order

    def _segm_file(self, data_sample: dict) -> str:
        """PNG name of an image (the image name with ``.png``)."""
        if self._coco_api is not None:
            image = self._coco_api.imgs.get(data_sample['img_id'])
            if image is not None:
                return image['segm_file']
        return osp.splitext(osp.basename(data_sample['img_path']))[0] + '.png'

    def _convert_prediction(
            self,
            pred: dict,
            pan: Optional[np.ndarray] = None) -> Tuple[np.ndarray, List[dict]]:
        """Panoptic ids of a fusion head to COCO ids and segments.

        Args:
            pred (dict): ``sem_seg`` int (1, H, W), ids ``label + instance_id
                * INSTANCE_OFFSET``; labels ``num_classes`` and the optional
                ``ignore_index`` are VOID.
            pan (np.ndarray, optional): ``pred['sem_seg']`` already read by
                :func:`_panoptic_array`, int64 (H, W). Defaults to None.

        Returns:
            tuple[np.ndarray, list[dict]]: ids int64 (H, W) with VOID 0, and
            segments (``id``, ``category_id``, ``isthing``, ``area``).
        """
        if pan is None:
            pan = _panoptic_array(pred)
        num_classes = len(self.dataset_meta['classes'])
        ids, segments = fusion_ids_to_coco(pan, self._label2cat, num_classes,
                                           pred.get('ignore_index'))
        for segment in segments:
            category = self._categories[segment['category_id']]
            segment['isthing'] = int(category['isthing'])
        return ids, segments

    def _load_ground_truth(self, data_sample: dict,
                           segm_file: str) -> Tuple[np.ndarray, List[dict]]:
        """Ground truth ids (uint32 (H, W)) and segments of one image."""
        if self._coco_api is not None:
            segments = self._coco_api.imgToAnns.get(data_sample['img_id'], [])
        elif 'segments_info' in data_sample:
            segments = []
            for seg in data_sample['segments_info']:
                cat_id = self._label2cat[seg['category']]
                isthing = self._categories[cat_id]['isthing']
                segments.append(
                    dict(
                        id=seg['id'],
                        category_id=cat_id,
                        iscrowd=int(bool(isthing) and not seg['is_thing'])))
        else:
            raise ValueError(NO_GT_MESSAGE + " (no 'segments_info' on the "
                             'data samples and no ann_file)')
        if self.seg_prefix is not None:
            path = osp.join(self.seg_prefix, segm_file)
        elif data_sample.get('seg_map_path'):
            path = data_sample['seg_map_path']
        else:
            raise ValueError(NO_GT_MESSAGE + ' (no seg_prefix and no '
                             "'seg_map_path' on the data samples)")
        gt_ids = decode_panoptic_png(get(path, backend_args=self.backend_args))
        return gt_ids, segments

    def _write_prediction(self, pred_ids: np.ndarray, segm_file: str) -> None:
        """Save COCO ids (int64 (H, W)) as ``{prefix}.panoptic/{file}``."""
        out_dir = f'{self.outfile_prefix}.panoptic'
        os.makedirs(out_dir, exist_ok=True)
        Image.fromarray(id_to_rgb(pred_ids)).save(osp.join(out_dir, segm_file))

    # ------------------------------------------------------------------
    # summary
    # ------------------------------------------------------------------
    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Merge the statistics of all images and report every order.

        Args:
            results (list): Per-image dicts made by :meth:`process`.

        Returns:
            dict[str, float]: ``PQ``, ``SQ``, ``RQ`` with ``_th`` / ``_st``
            variants in percent, unprefixed for the primary order and
            prefixed with ``{name}/`` for the others; empty with
            ``format_only``.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if self.outfile_prefix is not None:
            json_path = f'{self.outfile_prefix}.panoptic.json'
            text = dump(
                dict(annotations=[result['annotation'] for result in results]),
                file_format='json')
            with atomic_write(json_path) as f:  # never a truncated JSON
                f.write(text)
            logger.info(f'panoptic predictions written to {json_path} and '
                        f'{self.outfile_prefix}.panoptic/')
        if self.format_only:
            return dict()
        self._init_categories()
        names = [''] + [
            name for name in self.orders if any(name in result['stats']
                                                for result in results)
        ]
        summaries = {}
        for name in names:
            with_order = [
                result['stats'][name] for result in results
                if name in result['stats']
            ]
            if len(with_order) != len(results):
                logger.warning(f'order {name!r} is on {len(with_order)} of '
                               f'{len(results)} images; its numbers cover '
                               'those images only')
            summaries[name] = pq_summary(
                merge_stats(with_order), self._categories)
        self._log_tables(summaries)
        if self.classwise or self.classwise_out_dir:
            self._write_classwise(summaries)
        metrics = {}
        for name, summary in summaries.items():
            key_prefix = f'{name}/' if name else ''
            for suffix, group in SUMMARY_ROWS:
                for field in ('pq', 'sq', 'rq'):
                    metrics[f'{key_prefix}{field.upper()}{suffix}'] = (
                        100 * summary[group][field])
        return metrics

    def _log_tables(self, summaries: Dict[str, dict]) -> None:
        """Log one row per order, and per-class rows with ``classwise``."""
        header = ['order'] + [
            f'{field}{suffix}' for suffix, _ in SUMMARY_ROWS
            for field in ('PQ', 'SQ', 'RQ')
        ] + ['n_th', 'n_st']
        rows = [header]
        for name, summary in summaries.items():
            row = [name or f'primary ({PRIMARY_KEY})']
            for _, group in SUMMARY_ROWS:
                row += [
                    f'{100 * summary[group][field]:.3f}'
                    for field in ('pq', 'sq', 'rq')
                ]
            row += [summary['Things']['n'], summary['Stuff']['n']]
            rows.append(row)
        print_log(
            'Panoptic quality per fusion order:\n' + AsciiTable(rows).table,
            logger='current')
        if not self.classwise:
            return
        header = ['category'] + [
            f'{name or "primary"} {field}' for name in summaries
            for field in ('PQ', 'SQ', 'RQ')
        ]
        rows = [header]
        for cat_id, info in self._categories.items():
            row = [info['name']]
            for summary in summaries.values():
                row += [
                    f'{100 * summary["per_class"][cat_id][field]:.3f}'
                    for field in ('pq', 'sq', 'rq')
                ]
            rows.append(row)
        print_log(
            'Per-class panoptic quality:\n' + AsciiTable(rows).table,
            logger='current')

    def _write_classwise(self, summaries: Dict[str, dict]) -> None:
        """Write the per-class table and plot of every named order (the
        primary alone when there is none)."""
        logger: MMLogger = MMLogger.get_current_instance()
        out_dir = self.classwise_out_dir
        if out_dir is None:
            log_file = getattr(logger, 'log_file', None)
            if not log_file:
                logger.warning('classwise=True: no log file to write the '
                               'per-class table beside; set '
                               'classwise_out_dir')
                return
            out_dir = osp.dirname(log_file)
        named = {name: s for name, s in summaries.items() if name}
        try:
            files = write_per_class_pq(named or {'primary': summaries['']},
                                       self._categories, out_dir)
        except ImportError as error:
            files = write_per_class_pq(
                named or {'primary': summaries['']},
                self._categories,
                out_dir,
                plot=False)
            logger.warning(f'{error}; wrote the tables only')
        logger.info(f'per-class PQ: {", ".join(files)}')


def _panoptic_array(pred: dict) -> np.ndarray:
    """``sem_seg`` (1, H, W) of a prediction as an int64 (H, W) array."""
    sem_seg = pred['sem_seg']
    if hasattr(sem_seg, 'detach'):
        sem_seg = sem_seg.detach().cpu().numpy()
    sem_seg = np.asarray(sem_seg)
    if sem_seg.ndim == 3:
        sem_seg = sem_seg[0]
    return sem_seg.astype(np.int64)
