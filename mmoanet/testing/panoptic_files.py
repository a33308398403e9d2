"""File-to-file panoptic quality, the way panopticapi's ``pq_compute`` works.

The package evaluates in memory (:class:`MultiOrderPanopticMetric`); these
helpers read a ground truth and a prediction folder from disk. The tests
compare them with panopticapi, and ``tools/analysis_tools/benchmark_pq.py``
times them.
"""
import json
import os.path as osp
from typing import List, Optional, Tuple

from ..evaluation.functional.panoptic_io import load_panoptic_png
from ..evaluation.functional.panoptic_quality import (CategoryDict,
                                                      PanopticStats,
                                                      panoptic_stats_single,
                                                      pq_summary)

__all__ = ['pq_compute_files', 'stats_from_annotations']


def pq_compute_files(gt_json_file: str,
                     pred_json_file: str,
                     gt_folder: Optional[str] = None,
                     pred_folder: Optional[str] = None) -> dict:
    """Evaluate COCO panoptic files, like panopticapi's ``pq_compute``.

    Args:
        gt_json_file (str): COCO panoptic ground truth JSON (``annotations``
            and ``categories``).
        pred_json_file (str): Prediction JSON with ``annotations``.
        gt_folder (str, optional): Folder of the ground truth PNGs. Defaults
            to the JSON path without ``.json``.
        pred_folder (str, optional): Folder of the predicted PNGs. Defaults
            to the JSON path without ``.json``.

    Returns:
        dict: As :func:`pq_summary`.
    """
    with open(gt_json_file) as f:
        gt_json = json.load(f)
    with open(pred_json_file) as f:
        pred_json = json.load(f)
    gt_folder = gt_folder or gt_json_file.replace('.json', '')
    pred_folder = pred_folder or pred_json_file.replace('.json', '')
    categories = {cat['id']: cat for cat in gt_json['categories']}
    pred_by_image = {ann['image_id']: ann for ann in pred_json['annotations']}

    pairs = []
    for gt_ann in gt_json['annotations']:
        pred_ann = pred_by_image.get(gt_ann['image_id'])
        if pred_ann is None:
            raise KeyError(f'no prediction for image {gt_ann["image_id"]}')
        pairs.append((gt_ann, pred_ann))
    stats = stats_from_annotations(pairs, gt_folder, pred_folder, categories)
    return pq_summary(stats, categories)


def stats_from_annotations(
        pairs: List[Tuple[dict, dict]],
        gt_folder: str,
        pred_folder: str,
        categories: Optional[CategoryDict] = None) -> PanopticStats:
    """Statistics over matched (ground truth, prediction) annotations.

    Args:
        pairs (list[tuple[dict, dict]]): COCO panoptic annotation dicts
            (``file_name``, ``segments_info``) of the same image.
        gt_folder (str): Folder of the ground truth PNGs.
        pred_folder (str): Folder of the predicted PNGs.
        categories (dict[int, dict], optional): Known categories.

    Returns:
        PanopticStats: Their summed statistics.
    """
    stats = PanopticStats()
    for gt_ann, pred_ann in pairs:
        stats += panoptic_stats_single(
            load_panoptic_png(osp.join(gt_folder, gt_ann['file_name'])),
            gt_ann['segments_info'],
            load_panoptic_png(osp.join(pred_folder, pred_ann['file_name'])),
            pred_ann['segments_info'], categories,
            str(gt_ann.get('image_id', gt_ann['file_name'])))
    return stats
