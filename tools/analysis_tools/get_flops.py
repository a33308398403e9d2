"""Parameters and FLOPs of an OANet config, the SRM included.

    python tools/analysis_tools/get_flops.py \\
        configs/oanet/oanet_r50_fpn_100k_coco-panoptic.py \\
        --shape 800 1333 --num-instances 20 --num-classes-present 5

mmdet's ``tools/analysis_tools/get_flops.py`` counts the detector's tensor
mode (``_forward``: trunk, RPN, RoI heads on the proposals, stuff head) on
dataset images; the Spatial Ranking Module runs only inside the fusion
head, so it is left out. This tool counts the same tensor mode with
mmengine's ``FlopAnalyzer`` on a blank image of the given size (no data
set needed), per part, and adds the SRM at N instances:

- ``SRM (dense)``: the ranking convolution over all C_th channels, as
  Eq. 2 writes it (counted by ``FlopAnalyzer`` on the module);
- ``SRM (as run)``: what inference runs with K of the C_th classes present
  (``SpatialRankingModule.forward_present``, exact:
  ``macs_per_cell(K)`` per grid cell), plus Eq. 3's per-instance mean over
  the grid (N h w multiply-adds).

FLOPs are multiply-adds, as mmengine (fvcore) counts them; element-wise
operations, NMS and the laying of masks are not counted. The RoI heads run
on the proposals that tensor mode feeds them (``test_cfg.rpn.max_per_img``
boxes; masks on the first 100), mmdet's convention.
"""
import argparse
import math
from functools import partial
from typing import Dict, Optional, Sequence

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

import mmoanet  # noqa: F401  (registers OANet's components)

#: (report name, attribute of the detector) in forward order.
PARTS = (('backbone', 'backbone'), ('neck (FPN)', 'neck'),
         ('RPN head', 'rpn_head'), ('RoI heads', 'roi_head'),
         ('stuff branch', 'semantic_head'), ('stuff FPN', 'stuff_neck'),
         ('stuff 3x3 conv', 'stuff_conv'), ('stuff backbone',
                                            'stuff_backbone'))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs of an OANet config, with the SRM')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        default=None,
        help="input size after the test pipeline's resize (default: the "
        "test Resize scale, keeping ratio for a 4:3 image if it has one)")
    parser.add_argument(
        '--num-instances',
        type=int,
        default=20,
        help='N, instances the SRM ranks (default 20)')
    parser.add_argument(
        '--num-classes-present',
        type=int,
        default=None,
        help='K, distinct thing classes among them (default: min(N, C_th))')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings')
    args = parser.parse_args(argv)
    if args.num_instances < 1:
        parser.error('--num-instances must be at least 1')
    if args.shape is not None and min(args.shape) < 32:
        parser.error('--shape: H and W must be at least 32')
    return args


def _pad(length: int, divisor: int) -> int:
    return int(math.ceil(length / divisor) * divisor)


def build_inputs(model: torch.nn.Module, shape: Sequence[int]):
    """A blank, padded input batch of one image of ``shape`` (H, W)."""
    divisor = getattr(model.data_preprocessor, 'pad_size_divisor', 1) or 1
    height, width = shape
    padded = (_pad(height, divisor), _pad(width, divisor))
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(height, width),
            ori_shape=(height, width),
            pad_shape=padded,
            batch_input_shape=padded,
            scale_factor=(1.0, 1.0)))
    inputs = torch.zeros(1, 3, *padded)
    inputs[:, :, :height, :width] = torch.randn(1, 3, height, width)
    return inputs, [sample]


def count_detector(model: torch.nn.Module, inputs: torch.Tensor,
                   data_samples: list) -> Dict[str, int]:
    """Tensor-mode FLOPs of the detector, in total and per part."""
    forward = model.forward
    model.forward = partial(forward, data_samples=data_samples, mode='tensor')
    try:
        analyzer = FlopAnalyzer(model, (inputs, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        by_module = analyzer.by_module()
        result = {'detector (tensor mode)': analyzer.total()}
    finally:
        model.forward = forward
    for name, attribute in PARTS:
        if hasattr(model, attribute):
            result[name] = by_module.get(attribute, 0)
    return result


def count_srm(srm: torch.nn.Module, img_shape: Sequence[int],
              num_instances: int,
              num_present: Optional[int]) -> Dict[str, int]:
    """SRM FLOPs on the grid of ``img_shape`` for N instances, K classes.

    Returns:
        dict[str, int]: ``'SRM (dense)'``, counted by ``FlopAnalyzer`` on
        ``srm.forward`` over a (1, C_th, h, w) input, and ``'SRM (as
        run)'``, ``macs_per_cell(K) * h * w + N * h * w``.
    """
    channels = srm.num_things_classes
    if num_present is None:
        num_present = min(num_instances, channels)
    if not 1 <= num_present <= min(num_instances, channels):
        raise ValueError(f'--num-classes-present must lie in [1, '
                         f'{min(num_instances, channels)}], got '
                         f'{num_present}')
    grid_h, grid_w = srm.grid_size(img_shape)
    analyzer = FlopAnalyzer(srm, (torch.zeros(1, channels, grid_h, grid_w), ))
    analyzer.unsupported_ops_warnings(False)
    dense = analyzer.total()
    as_run = (srm.macs_per_cell(num_present) + num_instances) * grid_h * \
        grid_w
    return {'SRM (dense)': dense, 'SRM (as run)': as_run}


def count_params(model: torch.nn.Module) -> Dict[str, int]:
    """Parameters in total, per part and of the SRM."""
    counts = parameter_count(model)
    result = {'model': counts['']}
    for name, attribute in PARTS:
        if hasattr(model, attribute):
            result[name] = counts.get(attribute, 0)
    head = getattr(model, 'panoptic_fusion_head', None)
    if head is not None and hasattr(head, 'srm'):
        result['SRM'] = counts.get('panoptic_fusion_head.srm', 0)
    return result


def default_shape(cfg: Config) -> Sequence[int]:
    """(H, W) a 4:3 (480 x 640) image takes through the test Resize."""
    for transform in cfg.test_dataloader.dataset.pipeline:
        if transform['type'].split('.')[-1] == 'Resize':
            long_side, short_side = max(transform['scale']), min(
                transform['scale'])
            factor = min(short_side / 480, long_side / 640)
            return (int(480 * factor + 0.5), int(640 * factor + 0.5))
    return (480, 640)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Print and return the counts (ints, multiply-adds and parameters)."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None  # nothing to download
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    shape = tuple(args.shape) if args.shape else default_shape(cfg)
    inputs, data_samples = build_inputs(model, shape)
    with torch.no_grad():
        flops = count_detector(model, inputs, data_samples)
        head = getattr(model, 'panoptic_fusion_head', None)
        if head is not None and hasattr(head, 'srm'):
            flops.update(
                count_srm(head.srm, shape, args.num_instances,
                          args.num_classes_present))
            flops['total with SRM (as run)'] = (
                flops['detector (tensor mode)'] + flops['SRM (as run)'])
    params = count_params(model)
    result = dict(
        shape=shape,
        padded_shape=tuple(inputs.shape[-2:]),
        num_instances=args.num_instances,
        flops=flops,
        params=params)
    print(format_report(args.config, result))
    return result


def format_report(config: str, result: dict) -> str:
    """Markdown tables of :func:`main`'s result."""
    lines = [
        f'{config}: input {result["shape"][0]}x{result["shape"][1]} '
        f'(padded {result["padded_shape"][0]}x'
        f'{result["padded_shape"][1]}), SRM at '
        f'{result["num_instances"]} instances', '',
        '| part | FLOPs (multiply-adds) |', '|---|---:|'
    ]
    lines += [
        f'| {name} | {value / 1e9:.3f} G |'
        if value >= 1e8 else f'| {name} | {value / 1e6:.3f} M |'
        for name, value in result['flops'].items()
    ]
    lines += ['', '| part | parameters |', '|---|---:|']
    lines += [
        f'| {name} | {value / 1e6:.3f} M ({value:,}) |'
        for name, value in result['params'].items()
    ]
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
