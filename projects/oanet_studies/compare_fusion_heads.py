"""Fusion heads compared on one trained detector's predictions.

The detector runs once per test image; its instance predictions and
semantic scores (the arguments of its fusion head's ``predict``) then go
through every fusion variant, and the config's test evaluators score each
variant's ``pred_panoptic_seg``. Only the fusion differs between rows:

- ``heuristic``: mmdet's ``HeuristicFusionHead`` (score order, stuff area
  per class, uncovered thing pixels VOID);
- ``score`` / ``srm``: ``SRMFusionHead`` laying instances by detection
  score or by SRM rank, each with ``uncovered_things='stuff'`` and
  ``'void'``; the other fusion settings are the config's
  ``model.test_cfg.panoptic`` (for a stock PanopticFPN config with
  ``stuff_area_mode='class'``, mmdet's rule, unless the config sets it);
- ``srm-void-cls``: ``srm-void`` with ``same_class_order='score'``
  (instances of one class by detection score, in the slots the SRM gives
  their class), whatever the config sets.

Works for mmdet's PanopticFPN (C_st + 1 semantic channels; the SRM comes
from ``--srm-checkpoint``: a StandaloneSRM checkpoint of ``tools/train.py
configs/srm/<config>.py``, or a checkpoint with an SRM inside, e.g. one of
``tools/model_converters/add_srm_to_panoptic_fpn.py``) and for OANet (C_th
+ C_st channels; its own SRM unless ``--srm-checkpoint``). The detections
are those the detector hands its fusion head
(:func:`mmoanet.apis.fusion_inputs`). For the heuristic head OANet's thing
channels are merged into one by their maximum, which keeps "the argmax is a
thing" exact.

    python projects/oanet_studies/compare_fusion_heads.py CONFIG CHECKPOINT \\
        [--srm-checkpoint SRM.pth] [--out results.json]
"""
import argparse
import contextlib
import copy
import json
import re
import time
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.evaluator import Evaluator
from mmengine.runner import Runner
from mmengine.structures import PixelData
from torch import Tensor

from mmoanet.apis import attach_detections, fusion_inputs, init_model
from mmoanet.apis.srm_checkpoint import srm_config_of
from mmoanet.utils import load_checkpoint_safely

#: Evaluators that read instance predictions, not the fusion result.
NOT_FUSION_METRICS = ('OcclusionOrderMetric', )
VARIANTS = ('heuristic', 'score-stuff', 'score-void', 'srm-stuff', 'srm-void',
            'srm-void-cls')
COLUMNS = (
    ('PQ', 'coco_panoptic/PQ'),
    ('SQ', 'coco_panoptic/SQ'),
    ('RQ', 'coco_panoptic/RQ'),
    ('PQ_th', 'coco_panoptic/PQ_th'),
    ('PQ_st', 'coco_panoptic/PQ_st'),
    ('SQ_st', 'coco_panoptic/SQ_st'),
    ('RQ_st', 'coco_panoptic/RQ_st'),
    ('top kept %', 'panoptic_occlusion/top_kept'),
    ('both kept %', 'panoptic_occlusion/both_kept'),
    ('things buried %', 'panoptic_errors/buried'),
    ('things not laid %', 'panoptic_errors/not_laid'),
    ('false things %', 'panoptic_errors/fp_th'),
    ('stuff px voided %', 'panoptic_errors/stuff_voided'),
    ('stuff px confused %', 'panoptic_errors/stuff_confused'),
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the detector\'s config')
    parser.add_argument('checkpoint', help='the detector\'s checkpoint')
    parser.add_argument(
        '--srm-checkpoint',
        help='a StandaloneSRM checkpoint (tools/train.py configs/srm/...) '
        'or a checkpoint holding panoptic_fusion_head.srm.* (needed when '
        'the detector has no SRM)')
    parser.add_argument(
        '--variants',
        nargs='+',
        default=list(VARIANTS),
        choices=VARIANTS,
        help='fusion variants to compare')
    parser.add_argument('--max-images', type=int, help='first N test images')
    parser.add_argument(
        '--overlaps-file',
        help='overlaps_val.json of the synthetic set: also report the '
        'overlapping pairs kept (PanopticOcclusionMetric), unless the '
        'config\'s test_evaluator has it already')
    parser.add_argument('--out', help='write the metrics as JSON here')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings')
    return parser.parse_args(argv)


def merge_thing_channels(seg_preds: Tensor, num_things: int) -> Tensor:
    """C_th + C_st scores (things first) -> C_st + 1 (things last, max).

    Args:
        seg_preds (Tensor): float, shape (C_th + C_st, H, W).
        num_things (int): C_th.

    Returns:
        Tensor: float, shape (C_st + 1, H, W).
    """
    things = seg_preds[:num_things].amax(dim=0, keepdim=True)
    return torch.cat([seg_preds[num_things:], things])


#: Where an SRM's tensors are in a checkpoint: a StandaloneSRM's, then a
#: detector's with an SRMFusionHead.
SRM_PREFIXES = ('srm.', 'panoptic_fusion_head.srm.')


def load_srm_state(path: str) -> dict:
    """The SRM of a checkpoint, read with the safe loader.

    Args:
        path (str): A StandaloneSRM checkpoint (``srm.*``) or one holding
            ``panoptic_fusion_head.srm.*`` (a merged PanopticFPN + SRM, an
            OANet).

    Returns:
        dict: ``state_dict`` (the SRM's tensors, prefix removed) and
        ``srm_cfg`` (from the checkpoint's ``meta``: the merge tool's
        ``meta['srm']['srm_cfg']`` or the training config's ``model.srm``;
        None when it holds neither).

    Raises:
        ValueError: The checkpoint holds no SRM.
    """
    checkpoint = load_checkpoint_safely(path, map_location='cpu')
    tensors = {
        re.sub(r'^module\.', '', key): value
        for key, value in checkpoint.get('state_dict', checkpoint).items()
    }
    meta = checkpoint.get('meta') or {}
    for prefix in SRM_PREFIXES:
        state = {
            key[len(prefix):]: value
            for key, value in tensors.items() if key.startswith(prefix)
        }
        if state:
            srm_cfg = (meta.get('srm') or {}).get('srm_cfg') or \
                srm_config_of(meta)
            return dict(state_dict=state, srm_cfg=srm_cfg)
    raise ValueError(f'{path} holds no SRM (no tensor under '
                     f'{" or ".join(SRM_PREFIXES)})')


def build_variant_heads(model: torch.nn.Module, cfg: Config,
                        srm_state: Optional[dict],
                        variants: Sequence[str]) -> Dict[str, torch.nn.Module]:
    """One fusion head per variant, sharing the detector's settings."""
    head = model.panoptic_fusion_head
    num_things, num_stuff = head.num_things_classes, head.num_stuff_classes
    panoptic_cfg = ConfigDict(cfg.model.test_cfg.get('panoptic', {}))
    if type(head).__name__ == 'HeuristicFusionHead':
        # A stock PanopticFPN: the SRM rows follow mmdet's stuff-area rule
        # too, so that 'heuristic' and 'score-void' are the same fusion.
        panoptic_cfg.setdefault('stuff_area_mode', 'class')
    srm_cfg = dict(cfg.model.panoptic_fusion_head.get('srm', {}))
    if srm_state is not None and srm_state['srm_cfg']:
        srm_cfg = dict(srm_state['srm_cfg'])
    elif not srm_cfg:
        raise ValueError('the detector has no SRM: pass --srm-checkpoint '
                         '(tools/train.py configs/srm/<config>.py)')
    srm_cfg.setdefault('type', 'SpatialRankingModule')
    srm_cfg['num_things_classes'] = num_things
    heads = {}
    for name in variants:
        if name == 'heuristic':
            heads[name] = MODELS.build(
                dict(
                    type='HeuristicFusionHead',
                    num_things_classes=num_things,
                    num_stuff_classes=num_stuff,
                    test_cfg=panoptic_cfg))
            continue
        rank_by, uncovered, *same_class = name.split('-')
        test_cfg = copy.deepcopy(panoptic_cfg)
        test_cfg.update(uncovered_things=uncovered, compare_orders=False)
        if same_class:  # '-cls': one class in score order, in its slots
            test_cfg.update(same_class_order='score')
        variant = MODELS.build(
            dict(
                type='SRMFusionHead',
                num_things_classes=num_things,
                num_stuff_classes=num_stuff,
                srm=srm_cfg,
                rank_by=rank_by,
                test_cfg=test_cfg))
        if srm_state is not None:
            variant.srm.load_state_dict(srm_state['state_dict'])
        else:
            variant.srm.load_state_dict(head.srm.state_dict())
        heads[name] = variant.eval()
    return heads


def add_pair_metric(cfg: Config, overlaps_file: str) -> None:
    """Append PanopticOcclusionMetric to ``cfg.test_evaluator`` (in place),
    reading the panoptic ground truth of its MultiOrderPanopticMetric."""
    metrics = cfg.test_evaluator
    if isinstance(metrics, dict):
        metrics = [metrics]
    types = [m['type'].split('.')[-1] for m in metrics]
    if 'PanopticOcclusionMetric' in types:
        return
    if 'MultiOrderPanopticMetric' not in types:
        raise ValueError('--overlaps-file needs a MultiOrderPanopticMetric '
                         'in test_evaluator (its ann_file and seg_prefix)')
    panoptic = metrics[types.index('MultiOrderPanopticMetric')]
    cfg.test_evaluator = list(metrics) + [
        dict(
            type='PanopticOcclusionMetric',
            overlaps_file=overlaps_file,
            ann_file=panoptic['ann_file'],
            seg_prefix=panoptic['seg_prefix'])
    ]


def fusion_evaluators(cfg: Config, dataset_meta: dict,
                      variants: Sequence[str]) -> Dict[str, Evaluator]:
    """The config's test metrics that read ``pred_panoptic_seg``, per
    variant."""
    metrics = cfg.test_evaluator
    if isinstance(metrics, dict):
        metrics = [metrics]
    metrics = [
        m for m in metrics
        if m['type'].split('.')[-1] not in NOT_FUSION_METRICS
    ]
    evaluators = {}
    for name in variants:
        evaluator = Evaluator(copy.deepcopy(metrics))
        evaluator.dataset_meta = dataset_meta
        evaluators[name] = evaluator
    return evaluators


def compare(model: torch.nn.Module,
            cfg: Config,
            srm_checkpoint: Optional[str] = None,
            variants: Sequence[str] = VARIANTS,
            max_images: Optional[int] = None) -> Dict[str, dict]:
    """Metrics and fusion seconds per image of every variant.

    Args:
        model (nn.Module): A panoptic detector whose ``test_step`` calls
            ``panoptic_fusion_head.predict`` once per batch.
        cfg (Config): Its config (test data, evaluators, fusion settings).
        srm_checkpoint (str, optional): A checkpoint with an SRM
            (:func:`load_srm_state`); by default the detector's own.
        variants (Sequence[str]): Names from :data:`VARIANTS`.
        max_images (int, optional): Stop after this many test images.

    Returns:
        dict[str, dict]: variant -> the evaluators' metrics plus
        ``fusion_s_per_img``.
    """
    register_all_modules(init_default_scope=True)
    srm_state = load_srm_state(srm_checkpoint) if srm_checkpoint \
        else None
    heads = build_variant_heads(model, cfg, srm_state, variants)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluators = fusion_evaluators(cfg, loader.dataset.metainfo, variants)
    seconds = {name: 0.0 for name in variants}
    num_images = 0
    num_things = model.panoptic_fusion_head.num_things_classes
    num_stuff = model.panoptic_fusion_head.num_stuff_classes
    with torch.no_grad(), contextlib.closing(
            fusion_inputs(model, loader, max_images)) as batches:
        for data_batch, samples, inputs in batches:
            num_images += len(samples)
            for name, head in heads.items():
                results, seconds_taken = _fuse(name, head, inputs, num_things,
                                               num_stuff)
                seconds[name] += seconds_taken
                evaluators[name].process(
                    _with_panoptic(samples, results, inputs[0]), data_batch)
    report = {}
    for name in variants:
        metrics = evaluators[name].evaluate(num_images)
        metrics['fusion_s_per_img'] = seconds[name] / max(num_images, 1)
        report[name] = metrics
    return report


def _fuse(name: str, head: torch.nn.Module, inputs: tuple, num_things: int,
          num_stuff: int) -> Tuple[list, float]:
    """Run one variant on a copy of the recorded inputs; (results, s)."""
    masks_list, seg_list, metas = inputs
    masks_list = copy.deepcopy(masks_list)
    start = time.perf_counter()
    if name == 'heuristic':
        if seg_list[0].shape[0] == num_things + num_stuff and num_things > 1:
            seg_list = [merge_thing_channels(s, num_things) for s in seg_list]
        results = head.predict(masks_list, seg_list)
    else:
        results = head.predict(masks_list, seg_list, metas)
    return results, time.perf_counter() - start


def _with_panoptic(samples: list, results: list, detections: list) -> list:
    """Copies of ``samples`` whose only panoptic result is ``results``.

    ``pred_instances`` is set to the detections before fusion where the
    detector does not keep it (mmdet's PanopticFPN), for metrics that tell
    a missed thing from one the fusion dropped.
    """
    variant_samples = [sample.clone() for sample in samples]
    attach_detections(variant_samples, detections)
    for variant, result in zip(variant_samples, results):
        for key in list(variant.keys()):
            if key.startswith('pred_panoptic_seg'):
                delattr(variant, key)
        variant.pred_panoptic_seg = PixelData(sem_seg=result.sem_seg)
    return variant_samples


def markdown_table(report: Dict[str, dict]) -> str:
    """The report as a markdown table, one row per variant."""
    present = [(title, key) for title, key in COLUMNS
               if any(key in metrics for metrics in report.values())]
    lines = [
        '| fusion | ' + ' | '.join(title for title, _ in present) +
        ' | fusion ms/img |', '|---|' + '---:|' * (len(present) + 1)
    ]
    for name, metrics in report.items():
        cells = [
            f'{metrics[key]:.1f}' if key in metrics else '-'
            for _, key in present
        ]
        lines.append(f'| {name} | ' + ' | '.join(cells) +
                     f' | {1000 * metrics["fusion_s_per_img"]:.1f} |')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, dict]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.overlaps_file:
        add_pair_metric(cfg, args.overlaps_file)
    # The checkpoint must fit the model (as tools/test.py requires); a
    # merged SRM is an extra tensor set the stock model ignores.
    model = init_model(cfg, args.checkpoint)
    report = compare(model, cfg, args.srm_checkpoint, args.variants,
                     args.max_images)
    print(markdown_table(report))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    main()
