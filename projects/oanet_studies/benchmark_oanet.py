"""Cost of OANet against mmdet's PanopticFPN: inference, training, SRM.

Both detectors are built from their configs with the same ResNet-50 + FPN,
random weights (``init_cfg=None``: nothing is downloaded) and the same
seed. Random weights give an arbitrary number of detections, so both use
one R-CNN test setting (``score_thr=0``, class-agnostic NMS at 0.5,
``max_per_img=100``) and the mask head's logits bias is set to +2: every
kept box then yields a non-empty mask, and both fusion heads lay up to 100
instances. The tool prints how many they fused.

Every comparison runs both models in one process, alternately (A, B, A, B),
after untimed warm-up runs, so that load from other processes on a shared
machine falls on both alike; ratios are per pair, summarised by median and
interquartile range. Peak memory is the kernel's high-water mark of
resident memory (``VmHWM``) of a fresh subprocess per model, reset after a
first inference, so it is the peak of the second inference; the table gives
it and its excess over the resident size just before.

Sections (``--sections``):

- ``infer``: latency per image and a per-stage breakdown (backbone + neck,
  RPN, RoI heads, stuff branch, SRM, the rest of fusion).
- ``memory``: peak RSS of inference, one subprocess per model and size.
- ``train``: forward + backward + SGD step on one batch.
- ``srm``: SRM multiply-adds and time per stride and kernel setting.

Examples:
    python projects/oanet_studies/benchmark_oanet.py --out-dir work_dirs/bm
    python projects/oanet_studies/benchmark_oanet.py --sections srm \\
        --out-dir work_dirs/bm
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.structures import InstanceData, PixelData
from study_utils import REPO_ROOT
from torch import nn

import mmoanet  # noqa: F401  (registers OANet and its heads)

OANET_CONFIG = osp.join(REPO_ROOT, 'configs', 'oanet',
                        'oanet_r50_fpn_100k_coco-panoptic.py')
MMDET_CONFIG = 'mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py'
NUM_THINGS, NUM_STUFF = 80, 53
MODELS_COMPARED = ('panoptic_fpn', 'oanet')
STAGES = ('backbone+neck', 'RPN', 'RoI heads', 'stuff branch', 'SRM',
          'fusion (w/o SRM)', 'other')
SRM_STRIDES = (1, 2, 4, 8)
SRM_KERNELS = ('1x1', '3x3', '1x7+7x1')
# The same R-CNN test setting for both detectors (see the module docstring).
RCNN_TEST_CFG = dict(
    score_thr=0.0,
    nms=dict(type='nms', iou_threshold=0.5, class_agnostic=True),
    max_per_img=100,
    mask_thr_binary=0.5)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', required=True)
    parser.add_argument(
        '--sections',
        nargs='+',
        default=['infer', 'memory', 'train', 'srm'],
        choices=['infer', 'memory', 'train', 'srm'])
    parser.add_argument(
        '--sizes',
        nargs='+',
        default=['800x1333', '320x320'],
        help='inference sizes, HxW')
    parser.add_argument(
        '--images', type=int, default=5, help='timed images per model')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument(
        '--train-sizes',
        nargs='+',
        default=['2x320x320'],
        help='training batches, BxHxW')
    parser.add_argument('--train-steps', type=int, default=5)
    parser.add_argument(
        '--compare-orders',
        action='store_true',
        help="keep OANet's compare_orders=True (lays the canvas twice)")
    parser.add_argument('--srm-stride', type=int, help='override SRM stride')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.0,
        help='R-CNN test score_thr of both models; OANet also uses it in '
        "training to pick the SRM's input instances (config: 0.6)")
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument(
        '--memory-worker', help=argparse.SUPPRESS)  # model:HxW, internal
    return parser.parse_args()


def parse_size(text: str) -> Tuple[int, ...]:
    """'800x1333' -> (800, 1333); '2x320x320' -> (2, 320, 320)."""
    return tuple(int(part) for part in text.split('x'))


# ----------------------------------------------------------------------
# models and inputs
# ----------------------------------------------------------------------
def model_cfg(name: str,
              compare_orders: bool = False,
              srm_stride: Optional[int] = None,
              score_thr: float = 0.0) -> Config:
    """Config of ``name`` in ``MODELS_COMPARED``, random init, fixed N."""
    if name == 'oanet':
        cfg = Config.fromfile(OANET_CONFIG)
    else:
        cfg = get_config(MMDET_CONFIG)
    model = cfg.model
    model.backbone.init_cfg = None
    model.test_cfg.rcnn = copy.deepcopy(RCNN_TEST_CFG)
    model.test_cfg.rcnn.score_thr = score_thr
    if name == 'oanet':
        model.test_cfg.panoptic.compare_orders = compare_orders
        if srm_stride is not None:
            model.panoptic_fusion_head.srm.stride = srm_stride
    return model


def build_model(name: str, **kwargs) -> nn.Module:
    """Build a detector with seed 0 and a mask bias that fills the boxes."""
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(name, **kwargs))
    model.init_weights()
    # Random logits hover around 0 and would give masks of arbitrary
    # size; +2 makes every kept box a non-empty mask in both models.
    nn.init.constant_(model.roi_head.mask_head.conv_logits.bias, 2.0)
    return model


def make_batch(model: nn.Module,
               num_images: int,
               height: int,
               width: int,
               num_gt: int = 10,
               seed: int = 0) -> dict:
    """A preprocessed batch of random images with panoptic ground truth.

    Each image has ``num_gt`` overlapping thing instances (box masks) and a
    semantic map with stuff everywhere else, as ``docs/design.md`` says.

    Returns:
        dict: ``inputs`` float (B, 3, H_pad, W_pad) and ``data_samples``.
    """
    generator = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(
            torch.randint(0, 256, (3, height, width),
                          generator=generator).to(torch.uint8))
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(height, width),
                ori_shape=(height, width),
                scale_factor=(1.0, 1.0)))
        corners = torch.rand((num_gt, 2), generator=generator)
        sizes = 0.1 + 0.4 * torch.rand((num_gt, 2), generator=generator)
        x1 = corners[:, 0] * width * 0.5
        y1 = corners[:, 1] * height * 0.5
        x2 = (x1 + sizes[:, 0] * width).clamp(max=width - 1)
        y2 = (y1 + sizes[:, 1] * height).clamp(max=height - 1)
        bboxes = torch.stack([x1, y1, x2, y2], dim=1)
        labels = torch.randint(0, NUM_THINGS, (num_gt, ), generator=generator)
        masks = np.zeros((num_gt, height, width), dtype=np.uint8)
        sem_seg = torch.randint(
            NUM_THINGS, NUM_THINGS + NUM_STUFF, (1, 1),
            generator=generator).expand(height, width).clone()
        for index, box in enumerate(bboxes.int().tolist()):
            masks[index, box[1]:box[3] + 1, box[0]:box[2] + 1] = 1
            sem_seg[box[1]:box[3] + 1, box[0]:box[2] + 1] = labels[index]
        sample.gt_instances = InstanceData(
            bboxes=bboxes,
            labels=labels,
            masks=BitmapMasks(masks, height, width))
        sample.gt_sem_seg = PixelData(sem_seg=sem_seg[None].to(torch.uint8))
        samples.append(sample)
    data = dict(inputs=inputs, data_samples=samples)
    return model.data_preprocessor(data, training=True)


# ----------------------------------------------------------------------
# timing helpers
# ----------------------------------------------------------------------
class StageTimer:
    """Wall time spent in chosen methods of a model, per call of the model.

    A wrapped method adds its elapsed time to ``times[key]``; nested
    wrapped methods are each counted in full (the breakdown subtracts).
    """

    def __init__(self) -> None:
        self.times: Dict[str, float] = defaultdict(float)

    def wrap(self, owner: object, method: str, key: str) -> None:
        """Time every call of ``owner.method`` under ``key``."""
        original = getattr(owner, method)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.times[key] += time.perf_counter() - start

        setattr(owner, method, timed)

    def pop(self) -> Dict[str, float]:
        """Times gathered since the last call, then reset."""
        times, self.times = dict(self.times), defaultdict(float)
        return times


def instrument(name: str, model: nn.Module) -> StageTimer:
    """Wrap the stage methods of a detector (see :func:`stage_times`)."""
    timer = StageTimer()
    timer.wrap(model.backbone, 'forward', 'backbone')
    timer.wrap(model.neck, 'forward', 'neck')
    timer.wrap(model.roi_head, 'predict', 'roi')
    timer.wrap(model.semantic_head, 'predict', 'stuff')
    timer.wrap(model.panoptic_fusion_head, 'predict', 'fusion')
    if name == 'oanet':
        timer.wrap(model, '_shared_forward', 'shared')
        timer.wrap(model.rpn_head, 'predict_by_feat', 'rpn_post')
        timer.wrap(model.panoptic_fusion_head.srm, 'rank_scores', 'srm')
    else:
        timer.wrap(model.rpn_head, 'predict', 'rpn')
    return timer


def stage_times(raw: Dict[str, float], total: float) -> Dict[str, float]:
    """Additive stages (``STAGES``) from the raw timer keys.

    OANet runs the RPN's 3x3 conv inside ``_shared_forward`` (shared with
    the stuff branch); it is counted as RPN.
    """
    trunk = raw['backbone'] + raw['neck']
    if 'shared' in raw:
        rpn = raw['shared'] - trunk + raw['rpn_post']
    else:
        rpn = raw['rpn']
    srm = raw.get('srm', 0.0)
    stages = {
        'backbone+neck': trunk,
        'RPN': rpn,
        'RoI heads': raw['roi'],
        'stuff branch': raw['stuff'],
        'SRM': srm,
        'fusion (w/o SRM)': raw['fusion'] - srm,
    }
    stages['other'] = total - sum(stages.values())
    return stages


def quartiles(values: Sequence[float]) -> Tuple[float, float, float]:
    """(25th, 50th, 75th) percentiles."""
    q1, median, q3 = np.percentile(np.asarray(values), [25, 50, 75])
    return float(q1), float(median), float(q3)


def alternate(funcs: Dict[str, Callable[[], None]], repeat: int,
              warmup: int) -> Dict[str, List[float]]:
    """Seconds per call of each function, run A, B, A, B, ... ."""
    for _ in range(warmup):
        for func in funcs.values():
            func()
    times = {name: [] for name in funcs}
    for index in range(repeat):
        # Swap who goes first every round: no model always runs on the
        # caches / turbo state left by the other.
        names = list(funcs) if index % 2 == 0 else list(funcs)[::-1]
        for name in names:
            start = time.perf_counter()
            funcs[name]()
            times[name].append(time.perf_counter() - start)
    return times


def ratio_row(label: str, times: Dict[str, List[float]]) -> str:
    """Markdown row: medians (IQR) of both models and of the pair ratio."""
    ref, ours = (np.asarray(times[name]) for name in MODELS_COMPARED)
    cells = []
    for values in (ref, ours, ours / ref):
        q1, median, q3 = quartiles(values)
        cells.append(f'{median:.3f} ({q1:.3f}-{q3:.3f})')
    return f'| {label} | {len(ref)} | ' + ' | '.join(cells) + ' |'


# ----------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------
def bench_inference(args: argparse.Namespace, results: dict) -> None:
    """Latency ratio and per-stage breakdown at every ``--sizes``."""
    models = {
        name:
        build_model(
            name,
            compare_orders=args.compare_orders,
            srm_stride=args.srm_stride,
            score_thr=args.score_thr).eval()
        for name in MODELS_COMPARED
    }
    timers = {name: instrument(name, models[name]) for name in models}
    rows, breakdown_rows = [], []
    for size in args.sizes:
        height, width = parse_size(size)
        batches = [
            make_batch(models['oanet'], 1, height, width, seed=seed)
            for seed in range(args.images + args.warmup)
        ]
        per_stage = {name: defaultdict(list) for name in models}
        num_fused = {name: [] for name in models}
        times = {name: [] for name in models}
        cpu_times = {name: [] for name in models}
        no_fusion = {name: [] for name in models}
        for index, batch in enumerate(batches):
            order = list(models) if index % 2 == 0 else list(models)[::-1]
            for name in order:
                samples = copy.deepcopy(batch['data_samples'])
                timers[name].pop()
                cpu_start = time.process_time()
                start = time.perf_counter()
                with torch.no_grad():
                    out = models[name].predict(batch['inputs'], samples)
                total = time.perf_counter() - start
                cpu_total = time.process_time() - cpu_start
                raw = timers[name].pop()
                if index < args.warmup:
                    continue
                times[name].append(total)
                cpu_times[name].append(cpu_total)
                stages = stage_times(raw, total)
                for stage, value in stages.items():
                    per_stage[name][stage].append(value)
                no_fusion[name].append(total - stages['fusion (w/o SRM)'])
                pan = out[0].pred_panoptic_seg.sem_seg
                num_fused[name].append(
                    int(torch.unique(pan[pan >= 1000] // 1000).numel()))
        rows.append(ratio_row(f'{size}, wall', times))
        rows.append(ratio_row(f'{size}, CPU time', cpu_times))
        rows.append(ratio_row(f'{size}, wall w/o fusion', no_fusion))
        for stage in STAGES:
            medians = [
                float(np.median(per_stage[name][stage])) for name in models
            ]
            shares = [
                median / float(np.median(times[name]))
                for median, name in zip(medians, models)
            ]
            breakdown_rows.append(
                f'| {size} | {stage} | {1e3 * medians[0]:.1f} '
                f'({100 * shares[0]:.1f}%) | {1e3 * medians[1]:.1f} '
                f'({100 * shares[1]:.1f}%) |')
        results.setdefault('inference', {})[size] = dict(
            times=times,
            cpu_times=cpu_times,
            stages={name: dict(per_stage[name])
                    for name in models},
            num_fused=num_fused)
        print(
            f'{size}: instances fused per image (median): ' +
            ', '.join(f'{name} {np.median(num_fused[name]):.0f}'
                      for name in models),
            flush=True)
    print('\n### Inference latency (s per image, one image per batch)\n')
    print('| size HxW, clock | images | PanopticFPN | OANet | ratio OANet / '
          'PanopticFPN |')
    print('|---|---|---|---|---|')
    print('\n'.join(rows))
    print('\nmedian (IQR) over interleaved pairs; ratio per pair. CPU '
          'time: of this process (both threads). "w/o fusion": total minus '
          'the fusion stage (SRM kept), i.e. without mmdet\'s heuristic '
          'fusion on the PanopticFPN side.\n')
    print('### Inference breakdown (median ms per image, share of total)\n')
    print('| size | stage | PanopticFPN | OANet |')
    print('|---|---|---|---|')
    print('\n'.join(breakdown_rows))


def _status_mib(field: str) -> float:
    """A ``VmRSS`` / ``VmHWM`` line of ``/proc/self/status``, in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def memory_worker(spec: str, args: argparse.Namespace) -> None:
    """Print resident memory (MiB) before and at the peak of inference.

    ``ru_maxrss`` is useless here: a child forked from this (large) tool
    inherits the parent's figure. The kernel's per-process high-water mark
    ``VmHWM`` is reset (``clear_refs``) once the model and the input exist,
    so the peak covers inference alone, on top of what is resident.
    """
    name, size = spec.split(':')
    height, width = parse_size(size)
    model = build_model(
        name,
        compare_orders=args.compare_orders,
        srm_stride=args.srm_stride,
        score_thr=args.score_thr).eval()
    batch = make_batch(model, 1, height, width)
    with torch.no_grad():  # first call allocates the lazy state
        model.predict(batch['inputs'], copy.deepcopy(batch['data_samples']))
    built = _status_mib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    with torch.no_grad():
        model.predict(batch['inputs'], copy.deepcopy(batch['data_samples']))
    peak = _status_mib('VmHWM')
    print(json.dumps(dict(built=built, peak=peak)))


def bench_memory(args: argparse.Namespace, results: dict) -> None:
    """Peak RSS of inference, one fresh subprocess per model and size."""
    rows = []
    for size in args.sizes:
        cells = []
        for name in MODELS_COMPARED:
            command = [
                sys.executable,
                osp.abspath(__file__), '--out-dir', args.out_dir, '--threads',
                str(args.threads), '--memory-worker', f'{name}:{size}'
            ]
            if args.compare_orders:
                command.append('--compare-orders')
            if args.srm_stride:
                command += ['--srm-stride', str(args.srm_stride)]
            command += ['--score-thr', str(args.score_thr)]
            output = subprocess.run(
                command, check=True, capture_output=True, text=True).stdout
            usage = json.loads(output.strip().splitlines()[-1])
            results.setdefault('memory', {}).setdefault(size, {})[name] = usage
            cells.append(usage)
        ref, ours = cells
        ref_used = ref['peak'] - ref['built']
        ours_used = ours['peak'] - ours['built']
        rows.append(f'| {size} | {ref["peak"]:.0f} | {ref_used:.0f} | '
                    f'{ours["peak"]:.0f} | {ours_used:.0f} | '
                    f'{ours_used / max(ref_used, 1):.2f}x |')
    print('\n### Peak memory of inference (VmHWM, MiB, fresh process)\n')
    print('| size | PanopticFPN peak | PanopticFPN above resident | OANet '
          'peak | OANet above resident | ratio above resident |')
    print('|---|---|---|---|---|---|')
    print('\n'.join(rows))


def bench_train(args: argparse.Namespace, results: dict) -> None:
    """Forward + backward + SGD step, interleaved, per ``--train-sizes``."""
    models = {
        name:
        build_model(
            name, srm_stride=args.srm_stride,
            score_thr=args.score_thr).train()
        for name in MODELS_COMPARED
    }
    optimizers = {
        name: torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
        for name, model in models.items()
    }
    rows = []
    for spec in args.train_sizes:
        num_images, height, width = parse_size(spec)
        batch = make_batch(models['oanet'], num_images, height, width)

        def step(name: str) -> Callable[[], None]:

            def run() -> None:
                samples = copy.deepcopy(batch['data_samples'])
                losses = models[name].loss(batch['inputs'], samples)
                loss, _ = models[name].parse_losses(losses)
                optimizers[name].zero_grad()
                loss.backward()
                optimizers[name].step()

            return run

        times = alternate({name: step(name)
                           for name in models}, args.train_steps, 1)
        results.setdefault('train', {})[spec] = times
        rows.append(ratio_row(spec, times))
        print(f'train {spec} done', flush=True)
    print('\n### Training step (s, forward + backward + SGD step)\n')
    print('| batch BxHxW | steps | PanopticFPN | OANet | ratio OANet / '
          'PanopticFPN |')
    print('|---|---|---|---|---|')
    print('\n'.join(rows))
    print('\nmedian (IQR) over interleaved pairs after one warm-up step.')


def srm_macs(kernel: str,
             num_classes: int,
             grid_cells: int,
             kernel_size: int = 7) -> float:
    """Multiply-adds of the dense SRM convolution on a grid."""
    per_cell = {
        '1x1': num_classes**2,
        '3x3': 9 * num_classes**2,
        '1x7+7x1': 4 * kernel_size * num_classes**2,
    }[kernel]
    return float(per_cell * grid_cells)


def random_instances(num: int, height: int, width: int,
                     seed: int) -> InstanceData:
    """``num`` box-shaped masks of random classes (10-40% of each side)."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.zeros((num, height, width), dtype=torch.bool)
    sizes = 0.1 + 0.3 * torch.rand((num, 2), generator=generator)
    corners = torch.rand((num, 2), generator=generator) * 0.6
    for index in range(num):
        y1, x1 = int(corners[index, 0] * height), int(corners[index, 1] *
                                                      width)
        y2 = y1 + int(sizes[index, 0] * height)
        x2 = x1 + int(sizes[index, 1] * width)
        masks[index, y1:y2, x1:x2] = True
    labels = torch.randint(0, NUM_THINGS, (num, ), generator=generator)
    return InstanceData(masks=masks, labels=labels)


def bench_srm(args: argparse.Namespace, results: dict) -> None:
    """SRM multiply-adds and rank-score time per stride and kernel."""
    height, width = 800, 1333
    instance_sets = {
        num: random_instances(num, height, width, seed=num)
        for num in (20, 100)
    }
    # Reference for the share: OANet's median inference time at this size
    # from the ``infer`` section when it ran, else none.
    reference = results.get('inference', {}).get(f'{height}x{width}')
    oanet_time = (
        float(np.median(reference['times']['oanet'])) if reference else None)
    rows = []
    for kernel in SRM_KERNELS:
        for stride in SRM_STRIDES:
            torch.manual_seed(0)
            srm = MODELS.build(
                dict(
                    type='SpatialRankingModule',
                    num_things_classes=NUM_THINGS,
                    stride=stride,
                    kernel=kernel)).eval()
            h, w = srm.grid_size((height, width))
            dense = srm_macs(kernel, NUM_THINGS, h * w)
            cells = []
            for num, instances in instance_sets.items():
                present = int(instances.labels.unique().numel())
                used = srm_effective_macs(srm, present, h * w)
                with torch.no_grad():
                    times = alternate(
                        dict(run=lambda: srm.rank_scores(
                            instances, (height, width))),
                        repeat=2 if stride > 1 else 1,
                        warmup=1)['run']
                seconds = float(np.median(times))
                results.setdefault('srm', []).append(
                    dict(
                        kernel=kernel,
                        stride=stride,
                        instances=num,
                        classes=present,
                        dense_gmac=dense / 1e9,
                        gmac=used / 1e9,
                        seconds=seconds))
                share = (f'{100 * seconds / oanet_time:.1f}%'
                         if oanet_time else 'n/a')
                cells.append(f'{used / 1e9:.2f} | {1e3 * seconds:.0f} | '
                             f'{share}')
            rows.append(f'| {kernel} | {stride} | {h}x{w} | '
                        f'{dense / 1e9:.2f} | ' + ' | '.join(cells) +
                        ' | see Evidence |')
            print(f'srm {kernel} stride {stride} done', flush=True)
    print('\n### SRM cost at 800x1333, 80 thing classes\n')
    print('| kernel | stride | grid | dense GMAC | 20 inst: GMAC run | ms '
          '| share of OANet | 100 inst: GMAC run | ms | share of OANet '
          '| PQ effect |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    print('\n'.join(rows))
    print('\n"dense GMAC": the convolution over all 80 channels; "GMAC '
          'run": what the SRM computes for the classes present (see '
          'docs/benchmarks.md). Share: SRM rank-score time over the median '
          'OANet inference time at 800x1333 from the infer section.')


def srm_effective_macs(srm: nn.Module, present: int, cells: int) -> float:
    """Multiply-adds the SRM runs for ``present`` classes on ``cells``.

    Follows :meth:`SpatialRankingModule.forward` when it exposes
    ``macs_per_cell``; otherwise the dense count.
    """
    if hasattr(srm, 'macs_per_cell'):
        return float(srm.macs_per_cell(present) * cells)
    return srm_macs(srm.kernel, srm.num_things_classes, cells, srm.kernel_size)


# ----------------------------------------------------------------------
# output
# ----------------------------------------------------------------------
def plot(results: dict, out_dir: str) -> None:
    """Bar charts of the inference breakdown and of the SRM cost."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    panels = []
    if 'inference' in results:
        panels.append('inference')
    if 'srm' in results:
        panels.append('srm')
    if not panels:
        return
    fig, axes = plt.subplots(
        1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == 'inference':
            labels, bottoms = [], None
            sizes = list(results['inference'])
            columns = [(size, name) for size in sizes
                       for name in MODELS_COMPARED]
            bottoms = np.zeros(len(columns))
            for stage in STAGES:
                heights = np.array([
                    np.median(
                        results['inference'][size]['stages'][name][stage])
                    for size, name in columns
                ])
                ax.bar(
                    range(len(columns)), heights, bottom=bottoms, label=stage)
                bottoms += heights
            labels = [f'{name}\n{size}' for size, name in columns]
            ax.set_xticks(range(len(columns)))
            ax.set_xticklabels(labels, fontsize=7)
            ax.set_ylabel('median s / image')
            ax.set_title('Inference by stage (CPU)')
            ax.legend(fontsize=7)
        else:
            for kernel in SRM_KERNELS:
                points = [
                    row for row in results['srm']
                    if row['kernel'] == kernel and row['instances'] == 100
                ]
                ax.plot([row['stride'] for row in points],
                        [1e3 * row['seconds'] for row in points],
                        marker='o',
                        label=kernel)
            ax.set_xscale('log', base=2)
            ax.set_yscale('log')
            ax.set_xlabel('SRM stride')
            ax.set_ylabel('ms per image (100 instances, 800x1333)')
            ax.set_title('SRM rank-score time')
            ax.legend()
    fig.tight_layout()
    fig.savefig(osp.join(out_dir, 'benchmark_oanet.png'), dpi=120)


def describe_device(threads: int) -> str:
    """CPU model, cores, torch version and threads, for the report."""
    model_name = platform.processor() or 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model_name = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return (f'{model_name}, {os.cpu_count()} cores, torch '
            f'{torch.__version__}, {threads} threads')


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=True)
    if args.memory_worker:
        memory_worker(args.memory_worker, args)
        return
    os.makedirs(args.out_dir, exist_ok=True)
    print(f'Device: {describe_device(args.threads)}\n', flush=True)
    results: dict = dict(device=describe_device(args.threads))
    if 'infer' in args.sections:
        bench_inference(args, results)
    if 'memory' in args.sections:
        bench_memory(args, results)
    if 'train' in args.sections:
        bench_train(args, results)
    if 'srm' in args.sections:
        bench_srm(args, results)
    with open(osp.join(args.out_dir, 'benchmark_oanet.json'), 'w') as f:
        json.dump(results, f, indent=1)
    plot(results, args.out_dir)
    print(
        f'\nWrote {args.out_dir}/benchmark_oanet.json and '
        'benchmark_oanet.png',
        flush=True)


if __name__ == '__main__':
    main()
