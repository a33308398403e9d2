"""Parity of the onnxruntime path with PyTorch on a trained model.

For each ``--model NAME CONFIG CHECKPOINT``: export it
(:func:`mmoanet.deploy.export_onnx`), evaluate PQ on the config's test set
with PyTorch (``tools/test.py``'s Runner) and with onnxruntime
(:func:`mmoanet.deploy.evaluate_onnx`), and compare the panoptic maps pixel
by pixel on every test image, in both fusion orders, at the original size
and resized to odd sizes (the network then sees other padded sizes than
the trace). Appends one record to ``results/onnx_parity.jsonl``
(repository-relative paths, ``git_commit``, ``git_dirty``)::

    python projects/oanet_studies/onnx_parity.py \\
        --model panoptic_fpn_srm configs/panoptic_fpn_srm/\\
panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py \\
            work_dirs/pfpn_srm.pth \\
        --model oanet configs/oanet/\\
oanet_r18_fpn_1200i_synthetic-occlusion.py work_dirs/oanet/iter_200.pth
"""
import argparse
import glob
import hashlib
import json
import os.path as osp
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from study_utils import RESULTS_DIR, append_result, provenance, repo_relative

from mmoanet.apis import evaluate_checkpoint, inference_panoptic, init_model
from mmoanet.deploy import ORTPanopticModel, evaluate_onnx, export_onnx

COMPARE_ORDERS = {'model.test_cfg.panoptic.compare_orders': True}
#: (H, W) the test images are also resized to; the pipeline then resizes
#: them to fit 160 px, so the network sees 128x160, 160x96 and 160x160.
ODD_SIZES = ((117, 173), (241, 131), (97, 97))


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def panoptic_maps(sample) -> Dict[str, np.ndarray]:
    """Every fusion order of one prediction: name -> int (H, W)."""
    pixel_data = sample.pred_panoptic_seg
    maps = {'pred': pixel_data.sem_seg}
    for order in ('srm', 'score'):
        key = f'pred_panoptic_seg_{order}'
        if key in sample:  # OANet: one data-sample key per order
            maps[order] = sample.get(key).sem_seg
        elif f'sem_seg_{order}' in pixel_data:  # PanopticFPN + SRM
            maps[order] = pixel_data.get(f'sem_seg_{order}')
    return {name: value[0].numpy() for name, value in maps.items()}


def pixel_agreement(torch_model, ort_model,
                    image_files: Sequence[str]) -> dict:
    """Share of equal panoptic ids, per order, over images and sizes."""
    equal: Dict[str, int] = {}
    total: Dict[str, int] = {}
    worst = 1.0
    sizes = set()
    for path in image_files:
        image = cv2.imread(path)
        variants = [image] + [
            cv2.resize(image, (width, height)) for height, width in ODD_SIZES
        ]
        for variant in variants:
            sizes.add(variant.shape[:2])
            expected = panoptic_maps(inference_panoptic(torch_model, variant))
            result = panoptic_maps(ort_model(variant))
            for name, expected_map in expected.items():
                same = int((result[name] == expected_map).sum())
                equal[name] = equal.get(name, 0) + same
                total[name] = total.get(name, 0) + expected_map.size
                worst = min(worst, same / expected_map.size)
    return dict(
        agreement={name: equal[name] / total[name]
                   for name in equal},
        worst_image_agreement=worst,
        num_predictions=len(image_files) * (1 + len(ODD_SIZES)),
        image_sizes=sorted([list(size) for size in sizes]))


def pq_of(metrics: Dict[str, float]) -> Dict[str, float]:
    """The PQ, SQ and RQ entries of a metrics dict, rounded."""
    return {
        key: round(float(value), 4)
        for key, value in metrics.items()
        if key.rsplit('/', 1)[-1].startswith(('PQ', 'SQ', 'RQ'))
    }


def study_model(name: str, config: str, checkpoint: str, data_root: str,
                work_dir: str, num_threads: int) -> dict:
    # The config's own data paths (relative to the working folder); the
    # record names the data root whose val images are compared.
    options = dict(COMPARE_ORDERS)
    export_dir = osp.join(work_dir, f'{name}_onnx')
    start = time.time()
    manifest = export_onnx(
        config, checkpoint, export_dir, cfg_options=options, force=True)
    export_s = time.time() - start
    torch_metrics = evaluate_checkpoint(config, checkpoint,
                                        osp.join(work_dir, f'{name}_torch'),
                                        options)
    ort_metrics = evaluate_onnx(
        export_dir,
        osp.join(work_dir, f'{name}_ort'),
        cfg_options=options,
        num_threads=num_threads)
    torch_pq, ort_pq = pq_of(torch_metrics), pq_of(ort_metrics)
    torch_model = init_model(config, checkpoint, cfg_options=options)
    ort_model = ORTPanopticModel(
        export_dir, num_threads=num_threads, cfg_options=options)
    images = sorted(glob.glob(osp.join(data_root, 'val', '*')))
    pixels = pixel_agreement(torch_model, ort_model, images)
    return dict(
        config=repo_relative(config),
        checkpoint=dict(
            path=repo_relative(checkpoint), sha256=sha256(checkpoint)),
        detector=manifest['detector'],
        fusion_head=manifest['fusion_head'],
        graphs=sorted(manifest['graphs']),
        export_seconds=round(export_s, 1),
        pq_pytorch=torch_pq,
        pq_onnxruntime=ort_pq,
        pq_abs_diff={
            key: round(abs(ort_pq[key] - torch_pq[key]), 4)
            for key in torch_pq if key in ort_pq
        },
        **pixels)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--model',
        nargs=3,
        action='append',
        required=True,
        metavar=('NAME', 'CONFIG', 'CHECKPOINT'))
    parser.add_argument(
        '--data-root',
        default='data/synthetic_occlusion/',
        help='the data root of the configs (their test set is read from '
        'their own paths); its val/ images are compared pixel by pixel')
    parser.add_argument(
        '--out',
        default=osp.join(RESULTS_DIR, 'onnx_parity.jsonl'),
        help='results file; the record is appended as one JSON line')
    parser.add_argument(
        '--work-dir', help='exports and logs (default: a temporary folder)')
    parser.add_argument('--num-threads', type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    data_root = args.data_root.rstrip('/') + '/'
    record = dict(
        study='onnx_parity',
        **provenance(None if argv is None else [__file__, *argv]))
    with tempfile.TemporaryDirectory() as scratch:
        work_dir = args.work_dir or scratch
        models: List[dict] = []
        for name, config, checkpoint in args.model:
            result = study_model(name, config, checkpoint, data_root, work_dir,
                                 args.num_threads)
            models.append(dict(name=name, **result))
            print(json.dumps(models[-1], indent=1))
    record.update(
        data_root=repo_relative(data_root),
        num_threads=args.num_threads,
        odd_sizes=[list(size) for size in ODD_SIZES],
        models=models)
    append_result(args.out, record)
    return record


if __name__ == '__main__':
    main()
