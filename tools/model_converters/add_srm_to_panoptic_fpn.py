"""Add a trained SRM to a PanopticFPN checkpoint.

mmdet's PanopticFPN checkpoints hold no fusion-head weights (its
``HeuristicFusionHead`` has none). With ``SRMFusionHead`` as the fusion head
(configs/panoptic_fpn_srm/) the model has one more module,
``panoptic_fusion_head.srm``; this tool writes a checkpoint that holds both:
every tensor of the PanopticFPN checkpoint unchanged, plus the SRM of an
SRM-only checkpoint of ``tools/train_srm.py`` under
``panoptic_fusion_head.srm.*``.

    python tools/model_converters/add_srm_to_panoptic_fpn.py \\
        panoptic_fpn_r50_fpn_1x_coco_20210821_101153-9668fd13.pth \\
        work_dirs/panoptic-fpn-srm_r50_fpn_1x_coco/srm_latest.pth \\
        panoptic-fpn-srm_r50_fpn_1x_coco.pth

The thing classes must agree: the SRM has one input channel per thing class,
the detector's box classifier one output per thing class plus background.
"""
import argparse
import os.path as osp
import sys
from collections import OrderedDict
from typing import Optional, Sequence

import torch

# tools.*: helpers of the scripts, found from the checkout's root.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from tools.train_srm import load_srm_checkpoint

SRM_PREFIX = 'panoptic_fusion_head.srm.'
CLASSIFIER_KEY = 'roi_head.bbox_head.fc_cls.weight'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('detector', help='PanopticFPN checkpoint')
    parser.add_argument('srm', help='SRM checkpoint of tools/train_srm.py')
    parser.add_argument('out', help='output checkpoint')
    parser.add_argument(
        '--force',
        action='store_true',
        help='replace SRM weights the detector checkpoint already has')
    return parser.parse_args(argv)


def add_srm(detector_ckpt: dict, srm_ckpt: dict, force: bool = False) -> dict:
    """A copy of ``detector_ckpt`` with the SRM's tensors added.

    Args:
        detector_ckpt (dict): A loaded mmengine checkpoint (``state_dict``
            and, usually, ``meta``) or a bare state dict.
        srm_ckpt (dict): A loaded checkpoint of :func:`save_srm_checkpoint`.
        force (bool): Overwrite ``panoptic_fusion_head.srm.*`` tensors that
            ``detector_ckpt`` already holds. Defaults to False.

    Returns:
        dict: ``state_dict`` (detector tensors, then the SRM's) and ``meta``
        (the detector's, plus ``srm`` describing the SRM). Optimiser and
        other training state are left out: the result is for testing or
        fine-tuning, not for resuming the detector's training.

    Raises:
        ValueError: When the SRM is already there (without ``force``) or
            the numbers of thing classes differ.
    """
    if 'state_dict' in detector_ckpt:
        state_dict = detector_ckpt['state_dict']
        meta = dict(detector_ckpt.get('meta') or {})
    else:
        state_dict, meta = detector_ckpt, {}
    present = [key for key in state_dict if key.startswith(SRM_PREFIX)]
    if present and not force:
        raise ValueError(f'the detector checkpoint already holds SRM weights '
                         f'({present[0]}, ...); pass --force to replace them')
    srm_meta = srm_ckpt['meta']
    num_things = srm_meta['srm_cfg']['num_things_classes']
    if CLASSIFIER_KEY in state_dict:
        detector_things = state_dict[CLASSIFIER_KEY].shape[0] - 1
        if detector_things != num_things:
            raise ValueError(
                f'the detector classifies {detector_things} thing classes '
                f'({CLASSIFIER_KEY}), the SRM ranks {num_things}')
    merged = OrderedDict((key, value) for key, value in state_dict.items()
                         if not key.startswith(SRM_PREFIX))
    for key, value in srm_ckpt['state_dict'].items():
        merged[SRM_PREFIX + key] = value
    meta['srm'] = {
        key: srm_meta[key]
        for key in ('srm_cfg', 'thing_classes', 'iter', 'config')
        if key in srm_meta
    }
    return dict(state_dict=merged, meta=meta)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    detector_ckpt = torch.load(
        args.detector, map_location='cpu', weights_only=False)
    srm_ckpt = load_srm_checkpoint(args.srm)
    merged = add_srm(detector_ckpt, srm_ckpt, args.force)
    torch.save(merged, args.out)
    num_srm = len(srm_ckpt['state_dict'])
    print(f'{args.out}: {len(merged["state_dict"]) - num_srm} detector '
          f'tensors + {num_srm} SRM tensors ({SRM_PREFIX}*)')


if __name__ == '__main__':
    main()
