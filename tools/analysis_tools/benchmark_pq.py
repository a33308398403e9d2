"""Compare our vectorised PQ with panopticapi's, for numbers and speed.

Both sides read the same COCO panoptic JSON + PNG files from disk, decode the
PNGs themselves and run on one core (panopticapi's
``pq_compute_single_core``; OpenCV limited to one thread). A second pair of
rows times the PQ computation alone, with every PNG decoded beforehand on
both sides (panopticapi then still converts the cached uint8 arrays to ids).
Times are CPU seconds of this process (``time.process_time``), best of
``--repeat`` alternating rounds, so that load from other processes on a
shared machine distorts them less than wall time.

A third pair of rows times the path of an evaluation during testing, where
the predictions are in memory: mmdet's ``CocoPanopticMetric`` writes each
prediction as a PNG and panopticapi reads it back (reference: PNG encoding
with PIL, then ``pq_compute_single_core`` on the files), while
``MultiOrderPanopticMetric`` scores the in-memory map and decodes only the
ground truth PNG (ours). Every PQ / SQ / RQ number
(All, Things, Stuff and per class) must agree to 1e-9, otherwise the script
exits with an error.

Examples:
    python tools/analysis_tools/benchmark_pq.py --num-images 300
    python tools/analysis_tools/benchmark_pq.py --num-images 100 \\
        --size 480x640
    python tools/analysis_tools/benchmark_pq.py --gt-json gt.json \\
        --gt-folder gt/ --pred-json pred.json --pred-folder pred/
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import tempfile
import time
from typing import Callable, Dict, List, Tuple
from unittest import mock

import cv2
import numpy as np
from panopticapi import evaluation as panopticapi_evaluation
from PIL import Image

from mmoanet.evaluation.functional import (PanopticStats, id_to_rgb,
                                           load_panoptic_png,
                                           panoptic_stats_single, pq_summary)
from mmoanet.testing import pq_compute_files, write_random_panoptic_set

TOLERANCE = 1e-9
GROUPS = ('All', 'Things', 'Stuff')
Pairs = List[Tuple[dict, dict]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=300)
    parser.add_argument(
        '--size',
        default='160',
        help='mean image size in pixels: a side (160) or HxW (480x640)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--repeat', type=int, default=5, help='timed rounds; the best counts')
    parser.add_argument('--gt-json')
    parser.add_argument('--gt-folder')
    parser.add_argument('--pred-json')
    parser.add_argument('--pred-folder')
    return parser.parse_args()


def load_pairs(gt_json_file: str,
               pred_json_file: str) -> Tuple[Pairs, Dict[int, dict]]:
    """Matched (ground truth, prediction) annotations and the categories."""
    with open(gt_json_file) as f:
        gt_json = json.load(f)
    with open(pred_json_file) as f:
        pred_json = json.load(f)
    pred_by_image = {ann['image_id']: ann for ann in pred_json['annotations']}
    pairs = [(ann, pred_by_image[ann['image_id']])
             for ann in gt_json['annotations']]
    return pairs, {cat['id']: cat for cat in gt_json['categories']}


def panopticapi_single_core(gt_json_file: str, pred_json_file: str,
                            gt_folder: str, pred_folder: str) -> dict:
    """panopticapi's evaluation on one core, shaped like ``pq_compute``."""
    pairs, categories = load_pairs(gt_json_file, pred_json_file)
    with contextlib.redirect_stdout(io.StringIO()):
        stats = panopticapi_evaluation.pq_compute_single_core(
            0, pairs, gt_folder, pred_folder, categories)
    results = {}
    for name, isthing in zip(GROUPS, (None, True, False)):
        results[name], per_class = stats.pq_average(categories, isthing)
        if isthing is None:
            results['per_class'] = per_class
    return results


def compute_only_runners(
        inputs: Tuple[str, str, str, str]) -> Dict[str, Callable[[], dict]]:
    """Both evaluations with every PNG decoded before timing starts."""
    gt_json_file, pred_json_file, gt_folder, pred_folder = inputs
    pairs, categories = load_pairs(gt_json_file, pred_json_file)
    paths = [osp.join(gt_folder, gt['file_name']) for gt, _ in pairs]
    paths += [osp.join(pred_folder, pred['file_name']) for _, pred in pairs]
    rgb_cache = {path: np.asarray(Image.open(path)) for path in paths}
    id_cache = {path: load_panoptic_png(path) for path in paths}

    def reference() -> dict:
        cached_image = mock.Mock(open=rgb_cache.__getitem__)
        with mock.patch.object(panopticapi_evaluation, 'Image', cached_image):
            return panopticapi_single_core(*inputs)

    def ours() -> dict:
        pairs, categories = load_pairs(gt_json_file, pred_json_file)
        stats = panoptic_stats_single(
            np.zeros((1, 1), np.uint32), [], np.zeros((1, 1), np.uint32), [])
        for gt, pred in pairs:
            stats += panoptic_stats_single(
                id_cache[osp.join(gt_folder, gt['file_name'])],
                gt['segments_info'], id_cache[osp.join(pred_folder,
                                                       pred['file_name'])],
                pred['segments_info'], categories)
        return pq_summary(stats, categories)

    return dict(reference=reference, ours=ours)


def in_memory_runners(inputs: Tuple[str, str, str, str],
                      out_dir: str) -> Dict[str, Callable[[], dict]]:
    """Both metric paths with the predicted id maps already in memory."""
    gt_json_file, pred_json_file, gt_folder, pred_folder = inputs
    pairs, categories = load_pairs(gt_json_file, pred_json_file)
    pred_ids = {
        pred['file_name']:
        load_panoptic_png(osp.join(pred_folder, pred['file_name']))
        for _, pred in pairs
    }
    written_folder = osp.join(out_dir, 'written_predictions')
    os.makedirs(written_folder, exist_ok=True)

    def reference() -> dict:
        # What mmdet's CocoPanopticMetric does per image, then at the end.
        for file_name, ids in pred_ids.items():
            Image.fromarray(id_to_rgb(ids)).save(
                osp.join(written_folder, file_name))
        return panopticapi_single_core(gt_json_file, pred_json_file, gt_folder,
                                       written_folder)

    def ours() -> dict:
        pairs, categories = load_pairs(gt_json_file, pred_json_file)
        stats = PanopticStats()
        for gt, pred in pairs:
            stats += panoptic_stats_single(
                load_panoptic_png(osp.join(gt_folder, gt['file_name'])),
                gt['segments_info'], pred_ids[pred['file_name']],
                pred['segments_info'], categories)
        return pq_summary(stats, categories)

    return dict(reference=reference, ours=ours)


def best_times(funcs: Dict[str, Callable[[], dict]],
               repeat: int) -> Tuple[Dict[str, float], Dict[str, dict]]:
    """Fewest CPU seconds of each function over ``repeat`` rounds.

    Rounds alternate between the functions so that a change of machine load
    hits both alike.
    """
    best = {name: float('inf') for name in funcs}
    results = {}
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.process_time()
            results[name] = func()
            best[name] = min(best[name], time.process_time() - start)
    return best, results


def max_difference(reference: dict, ours: dict) -> float:
    """Largest absolute difference over every PQ / SQ / RQ number."""
    worst = 0.0
    for group in GROUPS:
        if reference[group]['n'] != ours[group]['n']:
            raise AssertionError(f'{group}: {reference[group]["n"]} vs '
                                 f'{ours[group]["n"]} categories')
        for field in ('pq', 'sq', 'rq'):
            worst = max(worst,
                        abs(reference[group][field] - ours[group][field]))
    for cat_id, values in reference['per_class'].items():
        for field in ('pq', 'sq', 'rq'):
            worst = max(worst,
                        abs(values[field] - ours['per_class'][cat_id][field]))
    return worst


def main() -> None:
    args = parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp_dir:
        if args.gt_json:
            paths: Dict[str, str] = dict(
                gt_json=args.gt_json,
                gt_folder=args.gt_folder,
                pred_json=args.pred_json,
                pred_folder=args.pred_folder)
            source = args.gt_json
        else:
            size = tuple(int(side) for side in args.size.split('x'))
            size = size * 2 if len(size) == 1 else size
            paths = write_random_panoptic_set(tmp_dir, args.num_images, size,
                                              args.seed)
            source = (f'{args.num_images} random images, ~{size[0]}x'
                      f'{size[1]} px, seed {args.seed}')
        inputs = (paths['gt_json'], paths['pred_json'], paths['gt_folder'],
                  paths['pred_folder'])
        end_to_end = best_times(
            dict(
                reference=lambda: panopticapi_single_core(*inputs),
                ours=lambda: pq_compute_files(*inputs)), args.repeat)
        compute_only = best_times(compute_only_runners(inputs), args.repeat)
        in_memory = best_times(in_memory_runners(inputs, tmp_dir), args.repeat)
        num_images = len(load_pairs(*inputs[:2])[0])

    rows = []
    worst = 0.0
    settings = (('files to numbers, PNG decoding included', end_to_end),
                ('PNGs decoded beforehand (compute only)', compute_only),
                ('metric path, predictions in memory', in_memory))
    for setting, (times, results) in settings:
        worst = max(worst, max_difference(results['reference'],
                                          results['ours']))
        labels = (('reference', 'panopticapi single core'), ('ours',
                                                             'mmoanet'))
        if setting.startswith('metric'):
            labels = (('reference', 'write PNG + panopticapi single core'),
                      ('ours', 'mmoanet, GT PNG decoded, prediction in '
                       'memory'))
        for name, label in labels:
            summary = results[name]['All']
            rows.append(f'| {setting} | {label} | {times[name]:.3f} | '
                        f'{1e3 * times[name] / num_images:.2f} | '
                        f'{times["reference"] / times[name]:.2f}x | '
                        f'{100 * summary["pq"]:.3f} | '
                        f'{100 * summary["sq"]:.3f} | '
                        f'{100 * summary["rq"]:.3f} |')
    if worst > TOLERANCE:
        raise AssertionError(f'PQ numbers differ by {worst:.3g}')
    print(f'Data: {source}; CPU time, best of {args.repeat} rounds, one '
          'core.\n')
    print('| setting | implementation | CPU s | ms / image | speed-up | PQ | '
          'SQ | RQ |')
    print('|---|---|---|---|---|---|---|---|')
    print('\n'.join(rows))
    print(f'\nLargest difference over all PQ/SQ/RQ numbers (All, Things, '
          f'Stuff, per class): {worst:.2g} (tolerance {TOLERANCE:g}).')


if __name__ == '__main__':
    main()
