"""OANet's training step against PanopticFPN's, and where the difference sits.

Both R-50 FPN models (``configs/oanet/oanet_r50_fpn_100k_coco-panoptic.py``
and mmdet's ``panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py``, random
weights, seed 0) train on the same random batch (uint8 image, box-shaped
ground-truth instances, stuff elsewhere), alternately, one thread, CPU time
(``time.process_time``), after one warm-up step each:

- the whole step (forward, backward, SGD step);
- each model's semantic head alone, forward and backward, on the same FPN
  features (requiring grad, as in training);
- the multiply-adds of every conv of both semantic heads (forward);
- a ``torch.profiler`` table of OANet's stuff head, its self CPU time
  grouped by kind of operator.

The table is printed and the record appended to
``projects/oanet_studies/results/benchmark_stuff_branch.jsonl``.

Example:
    python projects/oanet_studies/benchmark_stuff_branch.py --size 800x1333 \\
        --steps 2
"""
import argparse
import copy
import os.path as osp
import platform
import statistics
import time
from typing import Callable, Dict, List

import numpy as np
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.structures import InstanceData, PixelData
from study_utils import REPO_ROOT, RESULTS_DIR, append_result, provenance
from torch.profiler import ProfilerActivity, profile

CONFIGS = dict(
    panoptic_fpn='mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py',
    oanet=osp.join(REPO_ROOT, 'configs', 'oanet',
                   'oanet_r50_fpn_100k_coco-panoptic.py'))
RECORD = osp.join(RESULTS_DIR, 'benchmark_stuff_branch.jsonl')
NUM_THINGS, NUM_STUFF = 80, 53
#: Operator kinds of the profile, by a part of the aten operator's name.
KINDS = (('convolution', ('conv', )), ('bilinear upsampling', ('upsample', )),
         ('group norm', ('group_norm', )), ('concatenation', ('aten::cat', )),
         ('ReLU', ('relu', 'threshold', 'clamp_min')),
         ('loss (log-softmax, NLL)', ('log_softmax', 'nll_loss')))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', default='800x1333', help='HxW of the image')
    parser.add_argument(
        '--steps', type=int, default=2, help='timed steps per model')
    parser.add_argument('--num-gt', type=int, default=10)
    parser.add_argument(
        '--no-record',
        action='store_true',
        help=f'print the tables only, do not append to {RECORD}')
    return parser.parse_args()


def build_model(name: str) -> nn.Module:
    """A detector of ``CONFIGS`` with random weights, seed 0."""
    cfg = (
        Config.fromfile(CONFIGS[name])
        if name == 'oanet' else get_config(CONFIGS[name]))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.train()


def make_batch(model: nn.Module,
               height: int,
               width: int,
               num_gt: int,
               seed: int = 0) -> dict:
    """One preprocessed image with box instances and stuff elsewhere."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, height, width), generator=generator)
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(height, width),
            ori_shape=(height, width),
            scale_factor=(1.0, 1.0)))
    corners = torch.rand((num_gt, 2), generator=generator) * 0.5
    sides = 0.1 + 0.4 * torch.rand((num_gt, 2), generator=generator)
    boxes = torch.cat([corners, (corners + sides).clamp(max=1)], dim=1)
    boxes *= torch.tensor([width - 1, height - 1] * 2)
    labels = torch.randint(0, NUM_THINGS, (num_gt, ), generator=generator)
    masks = np.zeros((num_gt, height, width), dtype=np.uint8)
    sem_seg = torch.full((height, width), NUM_THINGS + 3)
    for index, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
        masks[index, y1:y2 + 1, x1:x2 + 1] = 1
        sem_seg[y1:y2 + 1, x1:x2 + 1] = labels[index]
    sample.gt_instances = InstanceData(
        bboxes=boxes, labels=labels, masks=BitmapMasks(masks, height, width))
    sample.gt_sem_seg = PixelData(sem_seg=sem_seg[None].to(torch.uint8))
    data = dict(inputs=[image.to(torch.uint8)], data_samples=[sample])
    return model.data_preprocessor(data, training=True)


def alternate(funcs: Dict[str, Callable[[], None]],
              steps: int) -> Dict[str, List[float]]:
    """CPU seconds of each function, one warm-up then ``steps`` rounds."""
    for func in funcs.values():
        func()
    times: Dict[str, List[float]] = {name: [] for name in funcs}
    for _ in range(steps):
        for name, func in funcs.items():
            start = time.process_time()
            func()
            times[name].append(time.process_time() - start)
    return times


def conv_macs(head: nn.Module, feats: tuple) -> Dict[str, int]:
    """Forward multiply-adds of every Conv2d of a head, by module name."""
    macs: Dict[str, int] = {}
    handles = []
    for name, module in head.named_modules():
        if isinstance(module, nn.Conv2d):

            def hook(mod, inputs, output, key=name):
                kernel = mod.kernel_size[0] * mod.kernel_size[1]
                macs[key] = (
                    macs.get(key, 0) +
                    output.numel() * mod.in_channels // mod.groups * kernel)

            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        head(feats)
    for handle in handles:
        handle.remove()
    return macs


def profile_shares(step: Callable[[], None]) -> Dict[str, float]:
    """Share of the self CPU time of one step per operator kind."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    totals = {kind: 0.0 for kind, _ in KINDS}
    totals['other'] = 0.0
    for event in prof.key_averages():
        if not event.key.startswith('aten::'):
            continue
        for kind, parts in KINDS:
            if any(part in event.key for part in parts):
                totals[kind] += event.self_cpu_time_total
                break
        else:
            totals['other'] += event.self_cpu_time_total
    whole = sum(totals.values())
    return {kind: value / whole for kind, value in totals.items()}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    register_all_modules(init_default_scope=True)
    height, width = (int(side) for side in args.size.split('x'))
    models = {name: build_model(name) for name in CONFIGS}
    optimizers = {
        name: torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
        for name, model in models.items()
    }
    batch = make_batch(models['oanet'], height, width, args.num_gt)

    def train_step(name: str) -> Callable[[], None]:

        def run() -> None:
            samples = copy.deepcopy(batch['data_samples'])
            losses = models[name].loss(batch['inputs'], samples)
            loss, _ = models[name].parse_losses(losses)
            optimizers[name].zero_grad()
            loss.backward()
            optimizers[name].step()

        return run

    with torch.no_grad():
        fpn = models['panoptic_fpn'].extract_feat(batch['inputs'])
    # OANet's head reads relu(rpn_conv(P_l)) (share_mode='skip'): the same
    # shapes, so both heads get the same features here.
    feats = tuple(level.clone().requires_grad_() for level in fpn)

    def head_step(name: str) -> Callable[[], None]:

        def run() -> None:
            samples = copy.deepcopy(batch['data_samples'])
            loss = models[name].semantic_head.loss(feats, samples)
            loss['loss_seg'].backward()

        return run

    steps = alternate({name: train_step(name) for name in models}, args.steps)
    heads = alternate({name: head_step(name)
                       for name in models}, args.steps + 1)
    macs = {
        name: conv_macs(model.semantic_head, feats)
        for name, model in models.items()
    }
    shares = profile_shares(head_step('oanet'))

    median = {
        f'{kind} {name}': statistics.median(times)
        for kind, results in (('step', steps), ('head', heads))
        for name, times in results.items()
    }
    ratios = [
        oanet / pfpn
        for oanet, pfpn in zip(steps['oanet'], steps['panoptic_fpn'])
    ]
    step_gap = median['step oanet'] - median['step panoptic_fpn']
    head_gap = median['head oanet'] - median['head panoptic_fpn']
    total_macs = {name: sum(values.values()) for name, values in macs.items()}
    print(f'R-50 FPN, one {height}x{width} image, one thread, CPU seconds '
          f'(median of {args.steps} interleaved steps after a warm-up).\n')
    print('| | PanopticFPN | OANet | OANet / PanopticFPN |')
    print('|---|---|---|---|')
    print(f'| training step | {median["step panoptic_fpn"]:.2f} | '
          f'{median["step oanet"]:.2f} | '
          f'{statistics.median(ratios):.3f} (pairs: '
          f'{", ".join(f"{r:.3f}" for r in ratios)}) |')
    print(f'| semantic head alone, forward + backward | '
          f'{median["head panoptic_fpn"]:.2f} | {median["head oanet"]:.2f} '
          f'| {median["head oanet"] / median["head panoptic_fpn"]:.2f} |')
    print(f'| semantic head convs, GMAC forward | '
          f'{total_macs["panoptic_fpn"] / 1e9:.1f} | '
          f'{total_macs["oanet"] / 1e9:.1f} | '
          f'{total_macs["oanet"] / total_macs["panoptic_fpn"]:.2f} |')
    print(f'\nStep difference {step_gap:.2f} s; semantic heads alone differ '
          f'by {head_gap:.2f} s.\n')
    print('| OANet stuff head conv | GMAC forward |')
    print('|---|---|')
    for name, value in sorted(macs['oanet'].items(), key=lambda kv: -kv[1]):
        print(f'| {name} | {value / 1e9:.2f} |')
    print('\n| OANet stuff head, operator kind | share of self CPU time |')
    print('|---|---|')
    for kind, share in shares.items():
        print(f'| {kind} | {100 * share:.1f}% |')
    if args.no_record:
        return
    record = dict(
        provenance(),
        study='benchmark_stuff_branch',
        size=[height, width],
        configs={
            name: (osp.relpath(path, REPO_ROOT) if osp.isabs(path) else path)
            for name, path in CONFIGS.items()
        },
        clock='time.process_time, one thread',
        versions=dict(
            torch=torch.__version__, python=platform.python_version()),
        step_seconds=steps,
        step_ratios=ratios,
        head_seconds=heads,
        conv_macs=macs,
        stuff_head_profile_shares=shares)
    append_result(osp.join(REPO_ROOT, RECORD), record)
    print(f'\nrecord appended to {RECORD}')


if __name__ == '__main__':
    main()
