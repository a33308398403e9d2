"""Speed of onnxruntime against PyTorch on CPU, per image, side by side.

For each ``--model NAME CONFIG CHECKPOINT SIZE`` (CHECKPOINT ``none``:
random weights, with ``score_thr=0`` so that every image carries the
config's ``max_per_img`` instances through the post-processing, the most
expensive case), the model is exported, then one image of SIZE (``HxW``,
random pixels) is predicted in turn by the PyTorch model and by the
onnxruntime model, ``--repeats`` times after a warm-up, with the same
number of threads. Both run the same pre- and post-processing code; the
network-only time (the trunk: backbone, FPN, RPN head, stuff head) is
timed too, on the image as given, normalised and padded (no resize: give
a SIZE the test pipeline keeps, e.g. 800x1333 for the COCO configs).
Appends one record to ``results/onnx_speed.jsonl`` and prints a Markdown
table::

    python projects/oanet_studies/benchmark_onnx.py \\
        --model pfpn-srm-r50 \\
            configs/panoptic_fpn_srm/panoptic-fpn-srm_r50_fpn_1x_coco.py \\
            none 800x1333 \\
        --model oanet-r50 configs/oanet/oanet_r50_fpn_100k_coco-panoptic.py \\
            none 800x1333
"""
import argparse
import os.path as osp
import statistics
import tempfile
import time
from typing import Callable, List, Optional, Sequence

import numpy as np
import onnxruntime
import torch
from study_utils import RESULTS_DIR, append_result, provenance, repo_relative

from mmoanet.apis import inference_panoptic, init_model
from mmoanet.deploy import ORTPanopticModel, export_onnx, run_trunk

RANDOM_WEIGHT_OPTIONS = {'model.test_cfg.rcnn.score_thr': 0.0}
#: Classes present in the SRM-only timing (an image holds a few).
SRM_CLASSES = 5


def timed(function: Callable, repeats: int) -> List[float]:
    """Seconds of each of ``repeats`` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def benchmark_model(name: str, config: str, checkpoint: Optional[str],
                    size: Sequence[int], work_dir: str, repeats: int,
                    num_threads: int) -> dict:
    options = dict(RANDOM_WEIGHT_OPTIONS) if checkpoint is None else {}
    export_dir = f'{work_dir}/{name}'
    export_onnx(
        config, checkpoint, export_dir, shape=size, cfg_options=options)
    torch_model = init_model(config, checkpoint, cfg_options=options)
    ort_model = ORTPanopticModel(
        export_dir, num_threads=num_threads, cfg_options=options)
    image = np.random.RandomState(0).randint(
        0, 256, (*size, 3), dtype=np.uint8)
    num_instances = len(
        inference_panoptic(torch_model,
                           image).pred_panoptic_seg.sem_seg[0].unique())
    with torch.no_grad():
        data = torch_model.data_preprocessor(
            dict(
                inputs=[torch.from_numpy(image).permute(2, 0, 1)],
                data_samples=None), False)
    inputs = data['inputs']

    def torch_trunk():
        with torch.no_grad():
            run_trunk(torch_model, inputs)

    def ort_trunk():
        ort_model.graphs['trunk'](inputs)

    results = dict(
        pytorch=timed(lambda: inference_panoptic(torch_model, image), repeats),
        onnxruntime=timed(lambda: ort_model(image), repeats),
        pytorch_trunk=timed(torch_trunk, repeats),
        onnxruntime_trunk=timed(ort_trunk, repeats))
    srm = getattr(torch_model.panoptic_fusion_head, 'srm', None)
    if srm is not None:
        # The SRM convolution alone on the grid of this input, with
        # SRM_CLASSES classes present: PyTorch reads only those channels
        # (forward_present), the graph is dense.
        grid = srm.grid_size(inputs.shape[-2:])
        present = torch.arange(min(SRM_CLASSES, srm.num_things_classes))
        instance_tensor = torch.zeros((1, srm.num_things_classes, *grid))
        instance_tensor[:, present] = (torch.rand((1, len(present), *grid))
                                       > 0.8).float()

        def torch_srm():
            with torch.no_grad():
                srm(instance_tensor, present)

        results.update(
            pytorch_srm=timed(torch_srm, repeats),
            onnxruntime_srm=timed(
                lambda: ort_model.graphs['srm'](instance_tensor), repeats))
    return dict(
        name=name,
        config=repo_relative(config),
        checkpoint=None if checkpoint is None else repo_relative(checkpoint),
        weights='random' if checkpoint is None else 'trained',
        image_size=list(size),
        network_input=list(inputs.shape[-2:]),
        panoptic_segments=num_instances,
        seconds={
            key: [round(t, 4) for t in value]
            for key, value in results.items()
        },
        median_s={
            key: round(statistics.median(value), 4)
            for key, value in results.items()
        })


def table(rows: List[dict]) -> str:
    lines = [
        '| model | weights | image | PyTorch s/img | onnxruntime s/img | '
        'speed-up | trunk PyTorch s | trunk onnxruntime s | '
        'SRM conv PyTorch ms | SRM conv onnxruntime ms |',
        '|---|---|---|---|---|---|---|---|---|---|'
    ]
    for row in rows:
        median = row['median_s']
        lines.append(
            f'| {row["name"]} | {row["weights"]} | '
            f'{row["image_size"][0]}x{row["image_size"][1]} | '
            f'{median["pytorch"]:.3f} | {median["onnxruntime"]:.3f} | '
            f'{median["pytorch"] / median["onnxruntime"]:.2f}x | '
            f'{median["pytorch_trunk"]:.3f} | '
            f'{median["onnxruntime_trunk"]:.3f} | '
            f'{1000 * median.get("pytorch_srm", float("nan")):.1f} | '
            f'{1000 * median.get("onnxruntime_srm", float("nan")):.1f} |')
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--model',
        nargs=4,
        action='append',
        required=True,
        metavar=('NAME', 'CONFIG', 'CHECKPOINT', 'HxW'))
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument(
        '--num-threads',
        type=int,
        default=1,
        help='threads of both PyTorch and onnxruntime')
    parser.add_argument(
        '--out',
        default=osp.join(RESULTS_DIR, 'onnx_speed.jsonl'),
        help='results file; the record is appended as one JSON line')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.num_threads)
    record = dict(
        study='onnx_speed',
        **provenance(None if argv is None else [__file__, *argv]))
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for name, config, checkpoint, size in args.model:
            height, width = (int(side) for side in size.lower().split('x'))
            rows.append(
                benchmark_model(
                    name, config,
                    None if checkpoint.lower() == 'none' else checkpoint,
                    (height, width), work_dir, args.repeats, args.num_threads))
            print(table(rows[-1:]))
    record.update(
        num_threads=args.num_threads,
        repeats=args.repeats,
        torch_version=torch.__version__,
        onnxruntime_version=onnxruntime.__version__,
        models=rows,
        table=table(rows))
    append_result(args.out, record)
    print(record['table'])
    return record


if __name__ == '__main__':
    main()
