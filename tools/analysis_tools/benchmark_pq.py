"""Compare our vectorised PQ with panopticapi's, for numbers and speed.

Both sides read the same COCO panoptic JSON + PNG files from disk, decode the
PNGs themselves and run on one core (panopticapi's
``pq_compute_single_core``). Every PQ / SQ / RQ number (All, Things, Stuff
and per class) must agree to 1e-9, otherwise the script exits with an error.

Examples:
    python tools/analysis_tools/benchmark_pq.py --num-images 300
    python tools/analysis_tools/benchmark_pq.py --gt-json gt.json \\
        --gt-folder gt/ --pred-json pred.json --pred-folder pred/
"""
import argparse
import contextlib
import io
import json
import tempfile
import time
from typing import Callable, Dict, Tuple

from panopticapi.evaluation import pq_compute_single_core

from mmoanet.evaluation.functional import pq_compute_files
from mmoanet.evaluation.functional.random_panoptic import \
    write_random_panoptic_set

TOLERANCE = 1e-9
GROUPS = ('All', 'Things', 'Stuff')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=300)
    parser.add_argument(
        '--size', type=int, default=160, help='mean image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--repeat', type=int, default=3, help='timed runs; the best counts')
    parser.add_argument('--gt-json')
    parser.add_argument('--gt-folder')
    parser.add_argument('--pred-json')
    parser.add_argument('--pred-folder')
    return parser.parse_args()


def panopticapi_single_core(gt_json_file: str, pred_json_file: str,
                            gt_folder: str, pred_folder: str) -> dict:
    """panopticapi's evaluation on one core, shaped like ``pq_compute``."""
    with open(gt_json_file) as f:
        gt_json = json.load(f)
    with open(pred_json_file) as f:
        pred_json = json.load(f)
    categories = {cat['id']: cat for cat in gt_json['categories']}
    pred_by_image = {ann['image_id']: ann for ann in pred_json['annotations']}
    pairs = [(ann, pred_by_image[ann['image_id']])
             for ann in gt_json['annotations']]
    with contextlib.redirect_stdout(io.StringIO()):
        stats = pq_compute_single_core(0, pairs, gt_folder, pred_folder,
                                       categories)
    results = {}
    for name, isthing in zip(GROUPS, (None, True, False)):
        results[name], per_class = stats.pq_average(categories, isthing)
        if isthing is None:
            results['per_class'] = per_class
    return results


def best_time(func: Callable[[], dict], repeat: int) -> Tuple[float, dict]:
    """Fastest wall time (s) of ``repeat`` calls and the last result."""
    best = float('inf')
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


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
    with tempfile.TemporaryDirectory() as tmp_dir:
        if args.gt_json:
            paths: Dict[str, str] = dict(
                gt_json=args.gt_json,
                gt_folder=args.gt_folder,
                pred_json=args.pred_json,
                pred_folder=args.pred_folder)
            source = args.gt_json
        else:
            paths = write_random_panoptic_set(tmp_dir, args.num_images,
                                              (args.size, args.size),
                                              args.seed)
            source = (f'{args.num_images} random images, ~{args.size} px, '
                      f'seed {args.seed}')
        inputs = (paths['gt_json'], paths['pred_json'], paths['gt_folder'],
                  paths['pred_folder'])
        reference_s, reference = best_time(
            lambda: panopticapi_single_core(*inputs), args.repeat)
        ours_s, ours = best_time(lambda: pq_compute_files(*inputs),
                                 args.repeat)
        with open(paths['gt_json']) as f:
            num_images = len(json.load(f)['annotations'])

    difference = max_difference(reference, ours)
    if difference > TOLERANCE:
        raise AssertionError(f'PQ numbers differ by {difference:.3g}')
    print(f'Data: {source}; best of {args.repeat} runs, PNG decoding '
          'included on both sides, one core.\n')
    print('| implementation | time (s) | ms / image | PQ | SQ | RQ |')
    print('|---|---|---|---|---|---|')
    for name, seconds, result in (('panopticapi pq_compute_single_core',
                                   reference_s, reference),
                                  ('mmoanet pq_compute_files', ours_s, ours)):
        print(f'| {name} | {seconds:.3f} | {1e3 * seconds / num_images:.2f} '
              f'| {100 * result["All"]["pq"]:.3f} '
              f'| {100 * result["All"]["sq"]:.3f} '
              f'| {100 * result["All"]["rq"]:.3f} |')
    print(f'\nSpeed-up: {reference_s / ours_s:.2f}x; largest difference '
          f'over all PQ/SQ/RQ numbers: {difference:.2g} (tolerance '
          f'{TOLERANCE:g}).')


if __name__ == '__main__':
    main()
