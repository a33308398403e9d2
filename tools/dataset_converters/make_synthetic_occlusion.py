"""Write the synthetic occlusion dataset in the COCO panoptic layout.

Example::

    python tools/dataset_converters/make_synthetic_occlusion.py \
        --out data/synthetic_occlusion --num-train 200 --num-val 50 \
        --size 160 --seed 0
"""
import argparse

from mmoanet.datasets.synthetic_occlusion import (generate_synthetic_occlusion,
                                                  overlap_statistics)


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Generate synthetic occlusion scenes (COCO panoptic '
        'layout plus overlapping COCO instances).')
    parser.add_argument(
        '--out', default='data/synthetic_occlusion', help='output folder')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument(
        '--size', type=int, default=160, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--depth-noise',
        type=float,
        default=0.5,
        help='std of the noise on the class depth rank')
    parser.add_argument(
        '--min-visible-area',
        type=int,
        default=20,
        help='things with fewer visible pixels are removed')
    return parser.parse_args()


def main() -> None:
    """Generate both splits and print their overlap statistics."""
    args = parse_args()
    generate_synthetic_occlusion(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.size,
        seed=args.seed,
        depth_noise=args.depth_noise,
        min_visible_area=args.min_visible_area)
    for split in ('train', 'val'):
        stats = overlap_statistics(args.out, split)
        summary = ', '.join(f'{key}={value:.3g}'
                            for key, value in stats.items())
        print(f'{split}: {summary}')


if __name__ == '__main__':
    main()
