"""Write the synthetic occlusion dataset in the COCO panoptic layout.

A progress bar per split counts the images written (``--no-progress``
turns it off).

Example::

    python tools/dataset_converters/make_synthetic_occlusion.py \
        --out data/synthetic_occlusion --num-train 200 --num-val 50 \
        --size 160 --seed 0

Annotation styles and scene settings (see
``mmoanet/datasets/synthetic_occlusion/coco_writer.py``)::

    # COCO-like instance masks that overlap only partly
    python tools/dataset_converters/make_synthetic_occlusion.py \
        --out data/synthetic_occlusion_coco --ann-style coco
    # panoptic PNG + JSON only (configs: instance_source='panoptic')
    python tools/dataset_converters/make_synthetic_occlusion.py \
        --out data/synthetic_occlusion_panoptic --ann-style panoptic
    # half the images without overlaps, smaller things
    python tools/dataset_converters/make_synthetic_occlusion.py \
        --out data/synthetic_occlusion_sparse --overlap-image-share 0.5 \
        --thing-scale 0.7
"""
import argparse
from typing import Optional, Sequence

from mmoanet.datasets.synthetic_occlusion import (ANN_STYLES,
                                                  generate_synthetic_occlusion,
                                                  overlap_statistics)
from mmoanet.utils import check_output_dir


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
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
    parser.add_argument(
        '--ann-style',
        choices=ANN_STYLES,
        default='amodal',
        help='instance masks: amodal (full objects, overlapping), coco '
        '(visible part + filled holes + a band across occluder edges, '
        'overlapping partly) or panoptic (no instances file)')
    parser.add_argument(
        '--coco-band',
        type=int,
        default=3,
        help='--ann-style coco: pixels a mask reaches across an occluder')
    parser.add_argument(
        '--on-top-prob',
        type=float,
        default=0.8,
        help='chance that a thing is centred on a lower one (more '
        'overlapping pairs when higher)')
    parser.add_argument(
        '--overlap-image-share',
        type=float,
        default=1.0,
        help='share of images whose things may overlap; the others have '
        'things placed apart')
    parser.add_argument(
        '--thing-scale',
        type=float,
        default=1.0,
        help='factor on all thing sizes (object size range)')
    parser.add_argument(
        '--num-things',
        type=int,
        nargs=2,
        default=(3, 7),
        metavar=('MIN', 'MAX'),
        help='things sampled per image, MAX excluded, before hidden ones '
        'are removed')
    parser.add_argument(
        '--force',
        action='store_true',
        help='write into a non-empty --out folder (its files of the same '
        'names are replaced, others stay)')
    parser.add_argument(
        '--no-progress',
        action='store_true',
        help='no progress bar (for logs of scripted runs)')
    args = parser.parse_args(argv)
    if args.num_things[0] >= args.num_things[1]:
        parser.error('--num-things: MIN must be below MAX')
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Generate both splits and print their overlap statistics."""
    args = parse_args(argv)
    # Refused before any image is drawn: a data set already there is kept.
    check_output_dir(args.out, force=args.force, what='--out')
    generate_synthetic_occlusion(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.size,
        seed=args.seed,
        ann_style=args.ann_style,
        coco_band=args.coco_band,
        overlap_image_share=args.overlap_image_share,
        depth_noise=args.depth_noise,
        min_visible_area=args.min_visible_area,
        on_top_prob=args.on_top_prob,
        thing_scale=args.thing_scale,
        num_things=tuple(args.num_things),
        progress=not args.no_progress)
    for split in ('train', 'val'):
        stats = overlap_statistics(args.out, split)
        summary = ', '.join(f'{key}={value:.3g}'
                            for key, value in stats.items())
        print(f'{split}: {summary}')


if __name__ == '__main__':
    main()
