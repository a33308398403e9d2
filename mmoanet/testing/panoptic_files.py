"""File-to-file panoptic quality through hotcoco, in panopticapi's shape.

For COCO panoptic JSON + PNG folders on disk, hotcoco's Rust evaluator
(``pip install mmoanet[fast-pq]``) is the engine: it decodes the PNGs and
scores them about 7x faster than decoding them with OpenCV and scoring them
with :func:`~mmoanet.evaluation.functional.panoptic_stats_single`, and zlib
inflation of the PNG data alone already costs more than its whole run
(``projects/oanet_studies/benchmark_pq.py``). Predictions that are in memory,
as in :class:`~mmoanet.evaluation.metrics.MultiOrderPanopticMetric`, are
scored by mmoanet's own engine, which needs no PNG written.
"""
from typing import Optional

__all__ = ['pq_compute_files']

INSTALL_HINT = ('file-to-file PQ needs hotcoco: pip install '
                '"mmoanet[fast-pq]" (or hotcoco>=1.3.0,<1.4)')
GROUPS = ('All', 'Things', 'Stuff')


def pq_compute_files(gt_json_file: str,
                     pred_json_file: str,
                     gt_folder: Optional[str] = None,
                     pred_folder: Optional[str] = None) -> dict:
    """Evaluate COCO panoptic files, like panopticapi's ``pq_compute``.

    Runs ``hotcoco.panoptic.PanopticEval`` without printing and returns
    exactly what panopticapi's ``pq_compute`` returns.

    Args:
        gt_json_file (str): COCO panoptic ground truth JSON (``annotations``
            and ``categories`` with ``isthing``).
        pred_json_file (str): Prediction JSON with ``annotations``.
        gt_folder (str, optional): Folder of the ground truth PNGs. Defaults
            to the JSON path without ``.json``.
        pred_folder (str, optional): Folder of the predicted PNGs. Defaults
            to the JSON path without ``.json``.

    Returns:
        dict: ``'All'``, ``'Things'``, ``'Stuff'``, each ``{'pq', 'sq',
        'rq', 'n'}`` (fractions), and ``'per_class'``, category id to
        ``{'pq', 'sq', 'rq'}``, 0 for a category without any segment.

    Raises:
        ImportError: hotcoco is not installed.
        ValueError: The inputs are ones panopticapi refuses (an image without
            prediction, a segment in the JSON but not the PNG or the other
            way round, an unknown category, maps of different sizes), or
            hotcoco would depart from panopticapi on them (for example
            categories without ``isthing``).
    """
    try:
        from hotcoco.panoptic import PanopticEval
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    evaluator = PanopticEval(
        gt_json_file,
        pred_json_file,
        gt_folder=gt_folder or gt_json_file.replace('.json', ''),
        pred_folder=pred_folder or pred_json_file.replace('.json', ''))
    deviations = evaluator.reference_deviations()
    if deviations:
        raise ValueError('hotcoco would not compute what panopticapi does: ' +
                         '; '.join(map(str, deviations)))
    evaluator.evaluate()
    raw = evaluator.results()
    results = {
        group: dict(_scores(raw[group]), n=int(raw[group]['n']))
        for group in GROUPS
    }
    results['per_class'] = {
        int(cat_id): _scores(values)
        for cat_id, values in raw['per_class'].items()
    }
    return results


def _scores(values: dict) -> dict:
    """PQ, SQ, RQ of a hotcoco result, its -1 (nothing averaged) as 0."""
    return {
        field: max(float(values[field]), 0.0)
        for field in ('pq', 'sq', 'rq')
    }
