"""Panoptic segmentation of images, with mmdet's image_demo.py arguments.

    python tools/inference.py IMAGE_OR_FOLDER CONFIG --weights CHECKPOINT
    python tools/inference.py demo/ CONFIG --weights CHECKPOINT \\
        --out-dir outputs --batch-size 4 --device cuda:0 --on-error stop
    python tools/inference.py demo/ oanet_r50_fpn_100k_coco-panoptic \\
        --weights CHECKPOINT          # a model name of model-index.yml

Runs :class:`mmoanet.apis.PanopticInferencer` (mmdet's ``DetInferencer``
with COCO panoptic output) and writes, for every image NAME.EXT (a folder
is read without recursion):

    OUT_DIR/vis/NAME.EXT                       the picture of
                                               PanopticLocalVisualizer: both
                                               fusion orders side by side
                                               when the model predicts them
    OUT_DIR/preds/NAME_panoptic_seg.png        COCO panoptic PNG (primary
                                               order; _srm / _score too)
    OUT_DIR/preds/NAME.json                    instances (RLE) and
                                               segments_info, as mmdet
    OUT_DIR/panoptic.json                      COCO panoptic file of all
                                               images (panoptic_srm.json,
                                               panoptic_score.json too)

An image that cannot be read is reported and skipped (``--on-error skip``,
the default) or stops the run (``--on-error stop``); the COCO JSON of what
was written is always written (atomically: a full disk leaves the earlier
file or none), and the exit status is 1 if any image failed.

Refused before the model is built: an input folder without an image, a
``--pred-score-thr`` outside [0, 1], an ``--out-dir`` that is not empty
(unless ``--force``) or cannot be written, a model name that the model
index does not list; and before anything is predicted, COCO files whose
category ids cannot be known (``--ann-file`` gives them). When the
threshold leaves no instance in any image, a warning says so.
"""
import argparse
import logging
import os.path as osp
import sys
from typing import Optional, Sequence

from mmdet.apis.det_inferencer import IMG_EXTENSIONS
from mmengine.config import Config, DictAction
from mmengine.fileio import list_dir_or_file
from mmengine.logging import print_log

import mmoanet  # noqa: F401  (registers components, safe checkpoints)
from mmoanet.apis import (InputError, PanopticInferencer, inference_summary,
                          model_index_entry)
from mmoanet.utils import OutputPathError, check_output_dir

# The names and meanings of mmdet's demo/image_demo.py (mmdet 3.3); the
# options that only text-prompted models use are left out.
PALETTES = ['coco', 'voc', 'citys', 'random', 'none']


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Panoptic segmentation of images: pictures, COCO '
        'panoptic PNG + JSON')
    parser.add_argument(
        'inputs', type=str, help='input image file or folder path')
    parser.add_argument(
        'model',
        type=str,
        help='config file, a model name of model-index.yml (e.g. '
        'oanet_r50_fpn_100k_coco-panoptic, as mmdet\'s image_demo.py takes '
        'one), or a .pth checkpoint that holds its config (then it is also '
        'the weights)')
    parser.add_argument('--weights', default=None, help='checkpoint file')
    parser.add_argument(
        '--out-dir',
        type=str,
        default='outputs',
        help='output directory of pictures and predictions')
    parser.add_argument(
        '--force',
        action='store_true',
        help='write into an --out-dir that is not empty (files of the same '
        'name are replaced)')
    parser.add_argument(
        '--ann-file',
        default=None,
        help='COCO (panoptic) JSON of the training set, for the category '
        "ids of the COCO files when the checkpoint's dataset_meta has none "
        'and the config\'s annotation file is not on disk')
    parser.add_argument(
        '--device',
        default=None,
        help='device used for inference, e.g. cpu or cuda:0 (default: '
        'cuda:0 when available, else cpu)')
    parser.add_argument(
        '--pred-score-thr',
        type=float,
        default=None,
        help='keep instances scoring at least this (sets '
        'model.test_cfg.rcnn.score_thr, which the panoptic result is made '
        "from; default: the config's)")
    parser.add_argument(
        '--batch-size', type=int, default=1, help='inference batch size')
    parser.add_argument(
        '--show', action='store_true', help='display each picture')
    parser.add_argument(
        '--no-save-vis', action='store_true', help='do not save pictures')
    parser.add_argument(
        '--no-save-pred',
        action='store_true',
        help='do not save PNG and JSON predictions')
    parser.add_argument(
        '--print-result', action='store_true', help='print the results')
    parser.add_argument(
        '--palette',
        default='none',
        choices=PALETTES,
        help="colour palette of the pictures (default: the dataset's)")
    parser.add_argument(
        '--on-error',
        choices=['skip', 'stop'],
        default='skip',
        help='an unreadable image is reported and skipped (default), or '
        'stops the run; what was written is kept either way')
    parser.add_argument(
        '--compare-orders',
        action='store_true',
        help='also predict (and draw) the detection-score and the SRM '
        'order (test_cfg.panoptic.compare_orders; on in the OANet configs)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.test_cfg.panoptic.'
        'stuff_area_limit=64 visualizer.alpha=0.7')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be at least 1, got '
                     f'{args.batch_size}')
    if args.pred_score_thr is not None and not (0 <= args.pred_score_thr <= 1):
        parser.error(f'--pred-score-thr must be in [0, 1] (a detection '
                     f'score), got {args.pred_score_thr}')
    args.config = None
    if args.model.endswith('.pth'):
        if args.weights is None:
            args.weights = args.model
    elif osp.isfile(args.model):
        args.config = args.model
    elif args.model.endswith('.py') or osp.sep in args.model:
        parser.error(f'model: config {args.model} not found')
    else:
        try:
            args.config, published = model_index_entry(args.model)
        except ValueError as error:
            parser.error(f'model: {error}')
        if args.weights is None:
            args.weights = published
        if args.weights is None:
            parser.error(f'model {args.model}: the model index publishes no '
                         'checkpoint for it; pass the one you trained with '
                         '--weights (e.g. work_dirs/<config name>/iter_N.pth)')
    if args.weights is not None and '://' not in args.weights and \
            not osp.isfile(args.weights):
        parser.error(f'--weights: checkpoint {args.weights} not found')
    if args.ann_file is not None and not osp.isfile(args.ann_file):
        parser.error(f'--ann-file {args.ann_file} not found')
    if not osp.exists(args.inputs):
        parser.error(f'inputs: {args.inputs}: no such file or folder')
    if osp.isdir(args.inputs):
        images = list(
            list_dir_or_file(
                args.inputs, list_dir=False, suffix=IMG_EXTENSIONS))
        if not images:
            parser.error(f'inputs: the folder {args.inputs} holds no image '
                         f'(files ending in {", ".join(IMG_EXTENSIONS)}; '
                         'sub-folders are not read)')
    if not (args.no_save_vis and args.no_save_pred):
        try:
            check_output_dir(args.out_dir, args.force, '--out-dir')
        except OutputPathError as error:
            parser.error(str(error))
    return args


def build_model_config(args: argparse.Namespace):
    """The config (or None for a .pth model) with the overrides merged."""
    if args.config is None:
        if args.cfg_options or args.pred_score_thr is not None or \
                args.compare_orders:
            raise ValueError('--cfg-options, --pred-score-thr and '
                             '--compare-orders need a config file as model')
        return None
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.pred_score_thr is not None:
        cfg.merge_from_dict(
            {'model.test_cfg.rcnn.score_thr': args.pred_score_thr})
    if args.compare_orders:
        head = cfg.model.get('panoptic_fusion_head', {})
        if head.get('type') != 'SRMFusionHead':
            raise ValueError(
                f'--compare-orders needs an SRMFusionHead (it computes both '
                f'orders), but {args.model} has {head.get("type")!r}')
        cfg.merge_from_dict({'model.test_cfg.panoptic.compare_orders': True})
    # The weights come from the checkpoint; never fetch pretrained ones.
    if 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the command line; returns the inferencer's results, with
    ``failures`` (a list of ``(input, message)``) and ``json_files``."""
    args = parse_args(argv)
    if args.no_save_vis and args.no_save_pred:
        args.out_dir = ''
    inferencer = PanopticInferencer(
        model=build_model_config(args),
        weights=args.weights,
        device=args.device,
        palette=args.palette,
        ann_file=args.ann_file)
    try:
        results = inferencer(
            args.inputs,
            batch_size=args.batch_size,
            on_error=args.on_error,
            out_dir=args.out_dir,
            show=args.show,
            no_save_vis=args.no_save_vis,
            no_save_pred=args.no_save_pred,
            print_result=args.print_result)
    except InputError:
        # --on-error stop: the inferencer has written the JSON of what
        # was predicted before the failure, and lists the failure.
        results = dict(predictions=None, visualization=None)
        results['failures'] = list(inferencer.failures)
    results['json_files'] = getattr(inferencer, 'json_files', [])
    if results['predictions'] is not None:
        print_log(
            inference_summary(results, results['json_files']),
            logger='current')
    elif results['json_files']:
        print_log(
            'stopped; the predictions written before are listed in '
            f'{", ".join(results["json_files"])}',
            logger='current')
    for _, message in results['failures']:
        print_log(f'failed: {message}', logger='current', level=logging.ERROR)
    warn_if_no_instance(results, args, inferencer)
    return results


def warn_if_no_instance(results: dict, args: argparse.Namespace,
                        inferencer: PanopticInferencer) -> None:
    """Say so when no image kept a single instance.

    Every pixel is then stuff or VOID: with a threshold set too high (or a
    model that detects nothing) the panoptic files look plausible but hold
    no thing at all.
    """
    predictions = results.get('predictions') or []
    if not predictions or any(len(p.get('labels', [])) for p in predictions):
        return
    threshold = args.pred_score_thr
    if threshold is None:
        test_cfg = inferencer.cfg.model.get('test_cfg') or {}
        threshold = (test_cfg.get('rcnn') or {}).get('score_thr')
    results['warnings'] = [
        f'no instance scored at least {threshold} in any of the '
        f'{len(predictions)} image(s): every pixel is stuff or VOID; lower '
        '--pred-score-thr (model.test_cfg.rcnn.score_thr)'
    ]
    print_log(results['warnings'][0], logger='current', level=logging.WARNING)


if __name__ == '__main__':
    sys.exit(1 if main()['failures'] else 0)
