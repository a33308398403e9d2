"""Write a trained detector's instance predictions as COCO results.

For an SRM trained on a detector's predictions (OANet's
``train_input='pred'``), e.g. on a set with panoptic annotations only:

    python tools/analysis_tools/dump_instance_predictions.py \\
        CONFIG CHECKPOINT \\
        --out data/coco/annotations/instances_train2017_pred.json
    python tools/train.py configs/srm/srm-pred_1x7-7x1_15k_coco-panoptic.py

See :func:`mmoanet.apis.dump_instance_predictions`.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

from mmengine.config import DictAction

from mmoanet.apis import SPLITS, NoPredictionsError, dump_instance_predictions
from mmoanet.utils import OutputPathError


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the detector\'s config')
    parser.add_argument('checkpoint', help='the detector\'s checkpoint')
    parser.add_argument(
        '--out', required=True, help='COCO results JSON to write')
    parser.add_argument(
        '--split',
        choices=SPLITS,
        default='train',
        help='whose images: the config\'s train_dataloader.dataset (with '
        'the test pipeline), val_dataloader or test_dataloader (default: '
        'train)')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.0,
        help='keep predictions scored at least this, in [0, 1] (default: '
        '0, all the config\'s test_cfg.rcnn gives)')
    parser.add_argument(
        '--device',
        help='where the detector runs (default: cuda when there is one, '
        'else cpu)')
    parser.add_argument(
        '--workers',
        type=int,
        default=0,
        help='image loading workers (default: 0, in this process)')
    parser.add_argument(
        '--max-images', type=int, help='only the first N images (a check)')
    parser.add_argument(
        '--force', action='store_true', help='replace an existing --out')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.test_cfg.rcnn.score_thr'
        '=0.5')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config {args.config} not found')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint} not found')
    if not 0 <= args.score_thr <= 1:
        parser.error(f'--score-thr {args.score_thr} is outside [0, 1]')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    try:
        stats = dump_instance_predictions(
            args.config,
            args.checkpoint,
            args.out,
            split=args.split,
            score_thr=args.score_thr,
            device=args.device,
            workers=args.workers,
            max_images=args.max_images,
            cfg_options=args.cfg_options,
            force=args.force)
    except (OutputPathError, NoPredictionsError) as error:
        sys.exit(f'dump_instance_predictions.py: {error}')
    print(f'{stats["predictions"]} predictions on {stats["images"]} '
          f'{args.split} images in {stats["seconds"]:.1f} s = '
          f'{stats["s_per_img"]:.3f} s per image; written to {args.out}')
    return stats


if __name__ == '__main__':
    main()
