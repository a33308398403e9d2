"""Add a trained SRM to a PanopticFPN checkpoint.

Writes OUT: every tensor of the PanopticFPN checkpoint DETECTOR unchanged,
plus the SRM of SRM (a checkpoint of ``tools/train.py configs/srm/...``)
under ``panoptic_fusion_head.srm.*``, for the configs of
``configs/panoptic_fpn_srm/``:

    python tools/train.py configs/srm/srm_1x7-7x1_15k_coco-panoptic.py
    python tools/model_converters/add_srm_to_panoptic_fpn.py \\
        panoptic_fpn_r50_fpn_1x_coco_20210821_101153-9668fd13.pth \\
        work_dirs/srm_1x7-7x1_15k_coco-panoptic/iter_15000.pth \\
        panoptic-fpn-srm_r50_fpn_1x_coco.pth

Both inputs are read with the package's safe loader. An existing OUT is
refused unless ``--force`` (which also replaces SRM weights DETECTOR
already holds); OUT may never be one of the inputs. See
:func:`mmoanet.apis.add_srm_to_checkpoint`.
"""
import argparse
from typing import Optional, Sequence

from mmoanet.apis import add_srm_to_checkpoint


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('detector', help='PanopticFPN checkpoint')
    parser.add_argument(
        'srm', help='SRM checkpoint (work_dirs/<srm config>/iter_<N>.pth)')
    parser.add_argument('out', help='merged checkpoint to write')
    parser.add_argument(
        '--force',
        action='store_true',
        help='replace an existing OUT and SRM weights the detector '
        'checkpoint already holds')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    summary = add_srm_to_checkpoint(
        args.detector, args.srm, args.out, force=args.force)
    print(f'{summary["out_path"]}: {summary["detector_tensors"]} detector '
          f'tensors + {summary["srm_tensors"]} SRM tensors '
          f'(panoptic_fusion_head.srm.*, {summary["num_things_classes"]} '
          f'thing classes, iteration {summary["srm_iter"]})')
    return summary


if __name__ == '__main__':
    main()
