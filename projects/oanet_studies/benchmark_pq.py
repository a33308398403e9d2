"""PQ engines side by side: panopticapi, hotcoco and mmoanet's own.

Every engine scores the same COCO panoptic files in one process, on one core
(panopticapi's ``pq_compute_single_core``, ``RAYON_NUM_THREADS=1`` for
hotcoco, OpenCV limited to one thread), and every PQ / SQ / RQ number (All,
Things, Stuff and per class) must agree to 1e-9 and to every printed digit,
otherwise the script exits with an error. Times are CPU seconds of this
process (``time.process_time``, all threads), best of ``--repeat`` rounds
that alternate between the engines, so that other processes on a shared
machine distort them less than wall time.

Two paths:

- files to numbers: the ground truth and prediction PNGs are on disk.
  panopticapi's single core; hotcoco through
  :func:`mmoanet.testing.pq_compute_files`; mmoanet's engine
  (:func:`~mmoanet.evaluation.functional.panoptic_stats_single` on maps
  decoded by OpenCV). Two floor rows time what any engine that decodes the
  PNGs with Python's libraries pays before scoring: OpenCV's PNG decoding
  alone, and zlib's inflation of the PNG data alone.
- metric path: the predictions are in memory, as in
  ``MultiOrderPanopticMetric``, which scores ``--orders`` fusion orders per
  image (the same maps stand for every order, so the work is the same).
  panopticapi after writing each order's PNGs with PIL (what mmdet's
  ``CocoPanopticMetric`` does); hotcoco after writing them with PIL, and
  after writing them with the cheapest PNG writer we have (unfiltered rows,
  zlib level 1); mmoanet's engine, which decodes each ground truth PNG once
  and scores every order's map without encoding it.

The table is printed (markdown) and the record appended to
``projects/oanet_studies/results/benchmark_pq.jsonl`` (repository-relative
paths, the commit and whether the tracked files differed from it).

Examples:
    python projects/oanet_studies/benchmark_pq.py --num-images 300 \\
        --size 480x640 --repeat 3
    python projects/oanet_studies/benchmark_pq.py --gt-json gt.json \\
        --gt-folder gt/ --pred-json pred.json --pred-folder pred/
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import platform
import struct
import tempfile
import time
import zlib
from importlib.metadata import version
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np
from panopticapi import evaluation as panopticapi_evaluation
from PIL import Image
from study_utils import (REPO_ROOT, RESULTS_DIR, append_result, provenance,
                         repo_relative)

from mmoanet.evaluation.functional import (PanopticStats, id_to_rgb,
                                           load_panoptic_png,
                                           panoptic_stats_single, pq_summary)
from mmoanet.testing import pq_compute_files, write_random_panoptic_set

TOLERANCE = 1e-9
GROUPS = ('All', 'Things', 'Stuff')
RECORD = osp.join(RESULTS_DIR, 'benchmark_pq.jsonl')
Pairs = List[Tuple[dict, dict]]
Inputs = Tuple[str, str, str, str]
Runner = Callable[[], List[dict]]

FILE_ROWS = (
    ('panopticapi', 'panopticapi, single core'),
    ('hotcoco', 'hotcoco 1.3 (mmoanet.testing.pq_compute_files)'),
    ('mmoanet', 'mmoanet engine, PNGs decoded by OpenCV'),
    ('floor_cv2', 'floor: OpenCV PNG decoding alone, no PQ'),
    ('floor_zlib', 'floor: zlib inflation of the PNG data alone, no PQ'),
)
MEMORY_ROWS = (
    ('panopticapi', 'PIL writes PNGs + panopticapi, single core'),
    ('hotcoco_pil', 'PIL writes PNGs + hotcoco'),
    ('hotcoco_fast', 'minimal PNG writer (zlib level 1) + hotcoco'),
    ('mmoanet', 'mmoanet engine: GT PNG decoded once, maps in memory'),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=300)
    parser.add_argument(
        '--size',
        default='480x640',
        help='mean image size in pixels: a side (160) or HxW (480x640)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--repeat', type=int, default=3, help='timed rounds; the best counts')
    parser.add_argument(
        '--orders',
        type=int,
        default=2,
        help='fusion orders scored per image on the metric path')
    parser.add_argument('--gt-json')
    parser.add_argument('--gt-folder')
    parser.add_argument('--pred-json')
    parser.add_argument('--pred-folder')
    parser.add_argument(
        '--no-record',
        action='store_true',
        help=f'print the table only, do not append to {RECORD}')
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


def panopticapi_single_core(inputs: Inputs) -> dict:
    """panopticapi's evaluation on one core, shaped like ``pq_compute``."""
    gt_json_file, pred_json_file, gt_folder, pred_folder = inputs
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


def mmoanet_files(inputs: Inputs) -> dict:
    """mmoanet's engine on files: both PNGs decoded by OpenCV."""
    gt_json_file, pred_json_file, gt_folder, pred_folder = inputs
    pairs, categories = load_pairs(gt_json_file, pred_json_file)
    stats = PanopticStats()
    for gt, pred in pairs:
        stats += panoptic_stats_single(
            load_panoptic_png(osp.join(gt_folder,
                                       gt['file_name'])), gt['segments_info'],
            load_panoptic_png(osp.join(pred_folder, pred['file_name'])),
            pred['segments_info'], categories)
    return pq_summary(stats, categories)


def png_paths(inputs: Inputs) -> List[str]:
    gt_json_file, pred_json_file, gt_folder, pred_folder = inputs
    pairs, _ = load_pairs(gt_json_file, pred_json_file)
    return ([osp.join(gt_folder, gt['file_name']) for gt, _ in pairs] +
            [osp.join(pred_folder, pred['file_name']) for _, pred in pairs])


def decode_only(paths: List[str]) -> list:
    """OpenCV's decoding of every PNG (what mmoanet's engine reads with)."""
    for path in paths:
        cv2.imread(path, cv2.IMREAD_COLOR)
    return []  # no PQ numbers


def inflate_only(paths: List[str]) -> list:
    """zlib inflation of every PNG's image data, nothing else."""
    for path in paths:
        with open(path, 'rb') as f:
            data = f.read()
        chunks, pos = [], 8
        while pos < len(data):
            length, kind = struct.unpack('>I4s', data[pos:pos + 8])
            if kind == b'IDAT':
                chunks.append(data[pos + 8:pos + 8 + length])
            pos += 12 + length
        zlib.decompress(b''.join(chunks))
    return []  # no PQ numbers


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack('>I', len(payload)) + kind + payload +
            struct.pack('>I', zlib.crc32(kind + payload)))


def write_png_minimal(path: str, ids: np.ndarray) -> None:
    """A COCO panoptic PNG of unfiltered rows at zlib level 1.

    The cheapest PNG we can write from Python (about 4x faster than PIL or
    OpenCV on these maps); any PNG reader decodes it.
    """
    height, width = ids.shape
    rows = np.zeros((height, 3 * width + 1), np.uint8)  # filter byte 0
    rows[:, 1:] = id_to_rgb(ids).reshape(height, -1)
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header) +
                _png_chunk(b'IDAT', zlib.compress(rows.tobytes(), 1)) +
                _png_chunk(b'IEND', b''))


def write_png_pil(path: str, ids: np.ndarray) -> None:
    """What mmdet's CocoPanopticMetric does per prediction."""
    Image.fromarray(id_to_rgb(ids)).save(path)


def file_runners(inputs: Inputs) -> Dict[str, Runner]:
    paths = png_paths(inputs)
    return dict(
        panopticapi=lambda: [panopticapi_single_core(inputs)],
        hotcoco=lambda: [pq_compute_files(*inputs)],
        mmoanet=lambda: [mmoanet_files(inputs)],
        floor_cv2=lambda: decode_only(paths),
        floor_zlib=lambda: inflate_only(paths))


def memory_runners(inputs: Inputs, out_dir: str,
                   num_orders: int) -> Dict[str, Runner]:
    """The metric path with every order's predicted ids in memory."""
    gt_json_file, pred_json_file, gt_folder, pred_folder = inputs
    pairs, categories = load_pairs(gt_json_file, pred_json_file)
    pred_ids = {
        pred['file_name']:
        load_panoptic_png(osp.join(pred_folder, pred['file_name']))
        for _, pred in pairs
    }
    folders = [
        osp.join(out_dir, f'order_{order}') for order in range(num_orders)
    ]
    for folder in folders:
        os.makedirs(folder, exist_ok=True)

    def write_then(writer: Callable[[str, np.ndarray], None],
                   evaluate: Callable[[Inputs], dict]) -> Runner:

        def run() -> List[dict]:
            results = []
            for folder in folders:
                for file_name, ids in pred_ids.items():
                    writer(osp.join(folder, file_name), ids)
                results.append(
                    evaluate(
                        (gt_json_file, pred_json_file, gt_folder, folder)))
            return results

        return run

    def mmoanet() -> List[dict]:
        pairs, categories = load_pairs(gt_json_file, pred_json_file)
        stats = [PanopticStats() for _ in folders]
        for gt, pred in pairs:
            gt_ids = load_panoptic_png(osp.join(gt_folder, gt['file_name']))
            for order_stats in stats:
                order_stats += panoptic_stats_single(
                    gt_ids, gt['segments_info'], pred_ids[pred['file_name']],
                    pred['segments_info'], categories)
        return [pq_summary(order_stats, categories) for order_stats in stats]

    return dict(
        panopticapi=write_then(write_png_pil, panopticapi_single_core),
        hotcoco_pil=write_then(write_png_pil,
                               lambda inputs: pq_compute_files(*inputs)),
        hotcoco_fast=write_then(write_png_minimal,
                                lambda inputs: pq_compute_files(*inputs)),
        mmoanet=mmoanet)


def best_times(funcs: Dict[str, Runner],
               repeat: int) -> Tuple[Dict[str, float], Dict[str, list]]:
    """Fewest CPU seconds of each function over ``repeat`` rounds.

    Rounds alternate between the functions so that a change of machine load
    hits all alike.
    """
    best = {name: float('inf') for name in funcs}
    results = {}
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.process_time()
            results[name] = func()
            best[name] = min(best[name], time.process_time() - start)
    return best, results


def numbers(results: dict) -> Dict[str, float]:
    """Every PQ / SQ / RQ number of a result, by a flat name."""
    flat = {}
    for group in GROUPS:
        flat[f'{group}/n'] = results[group]['n']
        for field in ('pq', 'sq', 'rq'):
            flat[f'{group}/{field}'] = results[group][field]
    for cat_id, values in results['per_class'].items():
        for field in ('pq', 'sq', 'rq'):
            flat[f'{cat_id}/{field}'] = values[field]
    return flat


def check_same(reference: dict, other: dict, name: str) -> float:
    """Largest difference from the reference; raises unless it is within
    ``TOLERANCE`` and every number prints the same to three decimals."""
    ref, oth = numbers(reference), numbers(other)
    if ref.keys() != oth.keys():
        raise AssertionError(f'{name}: other categories than panopticapi')
    worst = max(abs(ref[key] - oth[key]) for key in ref)
    printed = [
        key for key in ref
        if f'{100 * ref[key]:.3f}' != f'{100 * oth[key]:.3f}'
    ]
    if worst > TOLERANCE or printed:
        raise AssertionError(f'{name}: PQ numbers differ from panopticapi by '
                             f'{worst:.3g} ({printed[:5]})')
    return worst


def table_rows(setting: str, labels: tuple, times: Dict[str, float],
               results: Dict[str, list], num_images: int) -> List[dict]:
    rows = []
    for name, label in labels:
        row = dict(
            setting=setting,
            engine=name,
            label=label,
            cpu_s=round(times[name], 4),
            ms_per_image=round(1e3 * times[name] / num_images, 3),
            speedup_vs_panopticapi=round(times['panopticapi'] / times[name],
                                         2))
        if results[name]:
            summary = results[name][0]['All']
            row.update({
                field: round(100 * summary[field], 3)
                for field in ('pq', 'sq', 'rq')
            })
        else:
            row.update({field: None for field in ('pq', 'sq', 'rq')})
        rows.append(row)
    return rows


def markdown(rows: List[dict]) -> str:
    lines = [
        '| path | engine | CPU s | ms / image | vs panopticapi | PQ | SQ | '
        'RQ |', '|---|---|---|---|---|---|---|---|'
    ]
    for row in rows:
        scores = ' | '.join('-' if row[field] is None else f'{row[field]:.3f}'
                            for field in ('pq', 'sq', 'rq'))
        lines.append(f'| {row["setting"]} | {row["label"]} | '
                     f'{row["cpu_s"]:.3f} | {row["ms_per_image"]:.2f} | '
                     f'{row["speedup_vs_panopticapi"]:.2f}x | {scores} |')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    # One core: OpenCV's threads, and hotcoco's pool, which reads this
    # variable when it starts (at its first evaluation).
    cv2.setNumThreads(1)
    os.environ['RAYON_NUM_THREADS'] = '1'
    with tempfile.TemporaryDirectory() as tmp_dir:
        if args.gt_json:
            inputs = (args.gt_json, args.pred_json, args.gt_folder,
                      args.pred_folder)
            data = dict(
                gt_json=repo_relative(osp.abspath(args.gt_json)),
                pred_json=repo_relative(osp.abspath(args.pred_json)))
        else:
            size = tuple(int(side) for side in args.size.split('x'))
            size = size * 2 if len(size) == 1 else size
            paths = write_random_panoptic_set(
                osp.join(tmp_dir, 'data'), args.num_images, size, args.seed)
            inputs = (paths['gt_json'], paths['pred_json'], paths['gt_folder'],
                      paths['pred_folder'])
            data = dict(
                generator='mmoanet.testing.write_random_panoptic_set',
                num_images=args.num_images,
                size=list(size),
                seed=args.seed)
        num_images = len(load_pairs(inputs[0], inputs[1])[0])
        file_times, file_results = best_times(
            file_runners(inputs), args.repeat)
        memory_times, memory_results = best_times(
            memory_runners(inputs, tmp_dir, args.orders), args.repeat)

    reference = file_results['panopticapi'][0]
    worst = 0.0
    for results in (file_results, memory_results):
        for name, outputs in results.items():
            for order, result in enumerate(outputs):
                worst = max(worst,
                            check_same(reference, result, f'{name} {order}'))
    rows = (
        table_rows('files to numbers', FILE_ROWS, file_times, file_results,
                   num_images) +
        table_rows(f'metric path, {args.orders} orders in memory', MEMORY_ROWS,
                   memory_times, memory_results, num_images))
    table = markdown(rows)
    print(f'Data: {data}; {num_images} images; CPU time, best of '
          f'{args.repeat} rounds, one core.\n')
    print(table)
    print(f'\nLargest difference from panopticapi over all PQ/SQ/RQ numbers '
          f'(All, Things, Stuff, per class): {worst:.2g} (tolerance '
          f'{TOLERANCE:g}); every printed digit equal.')
    if args.no_record:
        return
    record = dict(
        provenance(),
        study='benchmark_pq',
        data=data,
        num_images=num_images,
        repeat=args.repeat,
        orders=args.orders,
        clock='time.process_time, best of the rounds',
        threads=dict(rayon=1, opencv=1, panopticapi='single core'),
        versions=dict(
            hotcoco=version('hotcoco'),
            numpy=np.__version__,
            opencv=cv2.__version__,
            python=platform.python_version()),
        cpu=platform.processor() or platform.machine(),
        max_difference=worst,
        rows=rows)
    append_result(osp.join(REPO_ROOT, RECORD), record)
    print(f'record appended to {RECORD}')


if __name__ == '__main__':
    main()
