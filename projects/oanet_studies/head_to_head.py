"""Head-to-head: mmdet's stock PanopticFPN against OANet, same data and budget.

Every variant is trained on the same synthetic data, with the same number of
iterations and the same learning-rate schedule, over several seeds, for
each annotation style of the generator (``--styles``) and scene setting
(``--scene``). Each model is then scored by the same metrics: PQ / SQ / RQ
(:class:`MultiOrderPanopticMetric`), what becomes of overlapping pairs
(:class:`PanopticOcclusionMetric`, read from ``pred_panoptic_seg`` alone)
and, for OANet, how its orders rank them (:class:`OcclusionOrderMetric`).

Each training (``tools/train.py``) and each evaluation runs in a child
process, one at a time by default (``--jobs``), so a crash loses one run.
A finished evaluation is appended at once, as one JSON line, to the results
file (``projects/oanet_studies/results/head_to_head.jsonl``), with paths
relative to the repository, the commit and whether the tree was clean; a
rerun skips every run already there, and a trained checkpoint in the work
dir is reused. The variants are those of ``variants.json`` beside this
script, plus ``--variant`` / ``--variants-file``. Variants that only change
the test config (``oanet-score``) reuse the checkpoint of the variant they
name.

    # the study, in the background (progress in the log)
    nohup python projects/oanet_studies/head_to_head.py \\
        --styles amodal coco panoptic --seeds 0 1 2 --max-iters 600 \\
        > work_dirs/head_to_head.log 2>&1 &
    # the table of everything finished so far
    python projects/oanet_studies/head_to_head.py --table-only
    # one more variant: train options, or test options on a trained one
    python projects/oanet_studies/head_to_head.py \\
        --variants oanet oanet-wide \\
        --variant oanet-wide=configs/oanet/oanet_r18_fpn_1200i_synthetic-\\
occlusion.py:model.semantic_head.feat_channels=64 \\
        --variant oanet-ovl3=@oanet:model.test_cfg.panoptic.mask_overlap=0.3

Budget: the tool sets ``max_iters`` and a schedule of a linear warm-up
(``min(50, max_iters // 10)`` iterations) and a cosine decay to 1e-5 for
every variant. Training seconds per iteration are the mean of mmengine's
``time`` records (``vis_data/scalars.json``) after that warm-up; inference
seconds per image time ``model.test_step`` alone (no data loading, no
metric), after ``--warmup-images`` images.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

from study_utils import (REPO_ROOT, RESULTS_DIR, VARIANTS_FILE, append_result,
                         load_results, log, mean_sd, paired, portable_command,
                         provenance, read_variants, repo_relative, value_of)

TINY_OANET = 'configs/oanet/oanet_r18_fpn_1200i_synthetic-occlusion.py'
# name -> config (repository-relative), train options (key -> value, as
# --cfg-options), test options; or reuse (a trained variant) + test
# options; or study (rows another study writes).
VARIANTS: Dict[str, dict] = read_variants(osp.join(REPO_ROOT, VARIANTS_FILE))
DEFAULT_VARIANTS = ('pfpn-stock', 'oanet', 'oanet-score')
RESULTS_FILE = osp.join(RESULTS_DIR, 'head_to_head.jsonl')
# (column title, record key or metric key, decimals)
COLUMNS = [
    ('PQ', 'coco_panoptic/PQ', 1),
    ('SQ', 'coco_panoptic/SQ', 1),
    ('RQ', 'coco_panoptic/RQ', 1),
    ('PQ_th', 'coco_panoptic/PQ_th', 1),
    ('SQ_th', 'coco_panoptic/SQ_th', 1),
    ('RQ_th', 'coco_panoptic/RQ_th', 1),
    ('PQ_st', 'coco_panoptic/PQ_st', 1),
    ('SQ_st', 'coco_panoptic/SQ_st', 1),
    ('RQ_st', 'coco_panoptic/RQ_st', 1),
    # OANet's instance order (OcclusionOrderMetric, its rank_by order) on
    # pairs with both things detected; '-' for models without one.
    ('instance order right %', 'rank_order_acc', 1),
    # Of the pairs with both kept: overlap given to the top (any model).
    ('overlap to top %', 'panoptic_occlusion/order_acc', 1),
    ('both kept %', 'panoptic_occlusion/both_kept', 1),
    ('top kept %', 'panoptic_occlusion/top_kept', 1),
    ('train s/iter', 'train_s_per_iter', 3),
    ('infer s/img', 'infer_s_per_img', 3),
]
# Where PQ is lost (PanopticErrorMetric): shares of ground-truth things,
# of predicted things (fp) and of ground-truth stuff pixels.
ERROR_COLUMNS = [
    ('PQ_th', 'panoptic_errors/PQ_th', 1),
    ('SQ_th', 'panoptic_errors/SQ_th', 1),
    ('RQ_th', 'panoptic_errors/RQ_th', 1),
    ('PQ_st', 'panoptic_errors/PQ_st', 1),
    ('SQ_st', 'panoptic_errors/SQ_st', 1),
    ('RQ_st', 'panoptic_errors/RQ_st', 1),
    ('things unmatched %', 'panoptic_errors/fn_th', 1),
    ('missed %', 'panoptic_errors/missed', 1),
    ('buried %', 'panoptic_errors/buried', 1),
    ('not laid %', 'panoptic_errors/not_laid', 1),
    ('bad mask %', 'panoptic_errors/bad_mask', 1),
    ('pair top buried %', 'panoptic_errors/pair_top_buried', 1),
    ('pair bottom not laid %', 'panoptic_errors/pair_bottom_not_laid', 1),
    ('false things %', 'panoptic_errors/fp_th', 1),
    ('stuff px voided %', 'panoptic_errors/stuff_voided', 1),
    ('stuff px confused %', 'panoptic_errors/stuff_confused', 1),
]
# Fields that make two runs the same run (the skip key).
RUN_KEY = ('variant', 'variant_digest', 'style', 'scene', 'scene_digest',
           'seed', 'max_iters', 'data_size', 'num_train', 'num_val',
           'data_seed')
GROUP_KEY = ('style', 'scene', 'max_iters', 'data_size', 'num_train',
             'num_val')
_run_dir_locks: Dict[str, threading.Lock] = {}
# Two threads must agree on a run's folder and on the run counter.
_plan_lock = threading.Lock()
# mmengine's config loading (pkg_resources for 'mmdet::' bases) is not
# thread-safe; with --jobs > 1 configs are read one at a time.
_config_lock = threading.Lock()


# ----------------------------------------------------------------------
# variants and scene settings
# ----------------------------------------------------------------------
def split_options(text: str) -> Dict[str, object]:
    """``k=v,k=[1,2],k=v`` -> dict; commas inside brackets stay in a value.

    Values are parsed as mmengine's ``--cfg-options`` parses them.
    """
    from mmengine.config import DictAction
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in '([':
            depth += 1
        elif char in ')]':
            depth -= 1
        elif char == ',' and depth == 0:
            items.append(text[start:index])
            start = index + 1
    items.append(text[start:])
    options = {}
    for item in filter(None, (i.strip() for i in items)):
        if '=' not in item:
            raise ValueError(f'option {item!r} is not key=value')
        key, value = item.split('=', 1)
        options[key.strip()] = DictAction._parse_iterable(value.strip())
    return options


def parse_variant(spec: str) -> Tuple[str, dict]:
    """``NAME=CONFIG[:k=v,...]`` or ``NAME=@TRAINED[:k=v,...]``.

    The first form trains ``CONFIG`` with the options; the second evaluates
    the checkpoints of the variant ``TRAINED`` with the options applied to
    the test config only.
    """
    if '=' not in spec:
        raise ValueError(f'--variant {spec}: expected NAME=CONFIG[:k=v,...] '
                         'or NAME=@VARIANT[:k=v,...]')
    name, body = spec.split('=', 1)
    target, _, options = body.partition(':')
    if target.startswith('@'):
        return name, dict(
            reuse=target[1:], test_options=split_options(options))
    return name, dict(config=target, train_options=split_options(options))


def resolve_variants(names: Sequence[str], extra: Dict[str, dict]) -> dict:
    """Full definitions of the chosen variants and the ones they reuse."""
    table = dict(VARIANTS)
    table.update(extra)
    chosen = {}
    for name in names:
        if name not in table:
            raise KeyError(f'unknown variant {name!r}; known: '
                           f'{sorted(table)} (add one with --variant)')
        spec = dict(table[name])
        if 'study' in spec:
            raise ValueError(f'variant {name} is written by '
                             f'{spec["study"]}.py, not by this study')
        base = spec.get('reuse')
        if base is not None:
            if base not in table or table[base].get('reuse'):
                raise ValueError(f'variant {name} reuses {base!r}, which is '
                                 'not a variant that trains')
            spec['config'] = table[base]['config']
            spec['train_options'] = table[base].get('train_options', {})
        spec.setdefault('train_options', {})
        spec.setdefault('test_options', {})
        if not osp.isfile(osp.join(REPO_ROOT, spec['config'])):
            raise FileNotFoundError(
                f'variant {name}: config {spec["config"]} not found')
        spec['train_name'] = base or name
        spec['train_digest'] = digest([spec['config'], spec['train_options']])
        spec['digest'] = digest(
            [spec['config'], spec['train_options'], spec['test_options']])
        # The merged config's content: an edited config (or base) makes
        # earlier results and checkpoints of the variant stale.
        spec['config_digest'] = config_digest(spec['config'],
                                              spec['train_options'])
        chosen[name] = spec
    return chosen


def config_digest(config: str, options: Dict[str, object]) -> str:
    """Hash of a config with its bases merged and ``options`` applied."""
    from mmengine.config import Config
    with _config_lock:
        cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    cfg.merge_from_dict(options)
    return digest(cfg.to_dict())


def digest(obj) -> str:
    """Short stable hash of a JSON-able object."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def parse_scene(spec: str) -> Tuple[str, dict]:
    """``NAME=k=v,...`` -> settings of the generator (see its CLI)."""
    name, _, options = spec.partition('=')
    settings = split_options(options)
    known = {
        'on_top_prob', 'overlap_image_share', 'thing_scale', 'num_things',
        'depth_noise', 'min_visible_area', 'coco_band'
    }
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f'--scene {spec}: unknown settings '
                         f'{sorted(unknown)}; use {sorted(known)}')
    return name, settings


# ----------------------------------------------------------------------
# data and run configs
# ----------------------------------------------------------------------
def data_root_of(args, style: str, scene: str) -> str:
    """Repository-relative folder of one style and scene setting."""
    return osp.join(
        args.data_dir, f'{style}_{scene}_{args.data_size}px_'
        f'{args.num_train}-{args.num_val}_seed{args.data_seed}')


def ensure_data(args, style: str, scene: str, settings: dict) -> str:
    """Generate the data of a style and scene unless it is complete."""
    from mmoanet.datasets import generate_synthetic_occlusion
    root = data_root_of(args, style, scene)
    stamp = osp.join(REPO_ROOT, root, 'head_to_head.json')
    expected = dict(
        style=style,
        settings=settings,
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.data_size,
        seed=args.data_seed)
    if osp.isfile(stamp):
        with open(stamp) as f:
            if json.load(f) == json.loads(json.dumps(expected)):
                return root
    log(f'generating {root}')
    settings = dict(settings)
    if 'num_things' in settings:
        settings['num_things'] = tuple(settings['num_things'])
    generate_synthetic_occlusion(
        osp.join(REPO_ROOT, root),
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.data_size,
        seed=args.data_seed,
        ann_style=style,
        **settings)
    with open(stamp, 'w') as f:
        json.dump(expected, f)
    return root


def evaluators(root: str, style: str, with_orders: bool) -> List[dict]:
    """The same metrics for every model, plus OANet's order metric."""
    ann = osp.join(root, 'annotations')
    panoptic = dict(
        ann_file=osp.join(ann, 'panoptic_val.json'),
        seg_prefix=osp.join(ann, 'panoptic_val') + '/')
    metrics = [
        dict(type='MultiOrderPanopticMetric', **panoptic),
        dict(
            type='PanopticOcclusionMetric',
            overlaps_file=osp.join(ann, 'overlaps_val.json'),
            **panoptic),
        dict(
            type='PanopticErrorMetric',
            overlaps_file=osp.join(ann, 'overlaps_val.json'),
            **panoptic),
    ]
    if with_orders and style != 'panoptic':
        metrics.append(
            dict(
                type='OcclusionOrderMetric',
                overlaps_file=osp.join(ann, 'overlaps_val.json'),
                ins_ann_file=osp.join(ann, 'instances_val.json')))
    return metrics


def trains_on_png_only(variant: dict, style: str) -> bool:
    """Whether the variant's training never reads the instances file."""
    from mmengine.config import Config
    with _config_lock:
        cfg = Config.fromfile(osp.join(REPO_ROOT, variant['config']))
    cfg.merge_from_dict(variant['train_options'])
    dataset = cfg.train_dataloader.dataset
    if dataset.type != 'CocoPanopticInstancesDataset':
        return True  # mmdet's datasets cut instances from the PNG
    return style == 'panoptic' or dataset.get('instance_source') == 'panoptic'


def warmup_iters(max_iters: int) -> int:
    """Linear warm-up length of every run (the tiny configs use 50)."""
    return max(1, min(50, max_iters // 10))


def dataset_overrides(dataset_type: str, root: str, style: str,
                      split: str) -> dict:
    """Point a config's dataset at ``root``; pick the instance source."""
    overrides = dict(data_root=root + '/')
    if dataset_type == 'CocoPanopticInstancesDataset':
        if style == 'panoptic':
            overrides.update(instance_source='panoptic', ins_ann_file=None)
        else:
            overrides.update(
                instance_source='instances',
                ins_ann_file=f'annotations/instances_{split}.json')
    return overrides


def write_run_config(path: str, variant: dict, root: str, style: str,
                     max_iters: int, seed: int) -> dict:
    """Write the config of one run: the variant's config plus data and budget.

    Returns:
        dict: ``dataset_type``, ``fusion_head`` and ``resize`` of the config.
    """
    from mmengine.config import Config
    base = osp.join(REPO_ROOT, variant['config'])
    with _config_lock:
        cfg = Config.fromfile(base)
        test_cfg = Config.fromfile(base)
    cfg.merge_from_dict(variant['train_options'])
    dataset_type = cfg.train_dataloader.dataset.type
    test_cfg.merge_from_dict(variant['train_options'])
    test_cfg.merge_from_dict(variant['test_options'])
    fusion_cfg = test_cfg.model.get('panoptic_fusion_head', {})
    fusion_head = fusion_cfg.get('type')
    resize = next((t.get('scale')
                   for t in cfg.train_dataloader.dataset.get('pipeline', [])
                   if t.get('type') == 'Resize'), None)
    warmup = warmup_iters(max_iters)
    log_interval = max(1, min(20, max_iters // 10))
    absolute_root = osp.join(REPO_ROOT, root)
    body = dict(
        train_dataloader=dict(
            dataset=dataset_overrides(dataset_type, absolute_root, style,
                                      'train')),
        test_dataloader=dict(
            dataset=dataset_overrides(test_cfg.test_dataloader.dataset.type,
                                      absolute_root, style, 'val')),
        test_evaluator=evaluators(absolute_root, style,
                                  fusion_head == 'SRMFusionHead'),
        train_cfg=dict(max_iters=max_iters, val_interval=max_iters),
        param_scheduler=[
            dict(
                type='LinearLR',
                start_factor=0.1,
                by_epoch=False,
                begin=0,
                end=warmup),
            dict(
                type='CosineAnnealingLR',
                by_epoch=False,
                begin=warmup,
                end=max_iters,
                T_max=max(max_iters - warmup, 1),
                eta_min=1e-5)
        ],
        default_hooks=dict(
            logger=dict(interval=log_interval),
            checkpoint=dict(by_epoch=False, interval=min(300, max_iters))),
        # One 'time' record per logger interval, not a sliding mean.
        log_processor=dict(by_epoch=False, window_size=log_interval),
        randomness=dict(seed=seed))
    lines = [
        '# Written by projects/oanet_studies/head_to_head.py: the '
        'variant\'s config on', '# the head-to-head data, budget and metrics.',
        f'_base_ = [{base!r}]',
        '# Validation off during training: the test run scores the model.',
        'val_dataloader = None', 'val_cfg = None', 'val_evaluator = None'
    ]
    lines += [f'{key} = {value!r}' for key, value in body.items()]
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return dict(
        dataset_type=dataset_type,
        fusion_head=fusion_head,
        rank_by=fusion_cfg.get('rank_by'),
        resize=list(resize) if resize else None,
        warmup=warmup)


# ----------------------------------------------------------------------
# one run
# ----------------------------------------------------------------------
def option_list(options: Dict[str, object]) -> List[str]:
    """dict -> ``key=value`` strings for ``--cfg-options``.

    A dict value (from a variants file) becomes one dotted key per leaf,
    since ``--cfg-options`` cannot spell a dict.
    """
    out = []
    for key, value in options.items():
        if isinstance(value, dict):
            out += option_list({f'{key}.{k}': v for k, v in value.items()})
            continue
        if isinstance(value, (list, tuple)):
            value = '[' + ','.join(str(v) for v in value) + ']'
        out.append(f'{key}={value}')
    return out


def training_seconds_per_iter(work_dir: str, skip_until: int) -> float:
    """Mean logged ``time`` of the iterations after ``skip_until``."""
    from mmoanet.apis import read_training_scalars
    times = {
        record['step']: record['time']
        for record in read_training_scalars(work_dir) if 'time' in record
    }
    kept = [t for step, t in times.items() if step > skip_until]
    if not kept:
        kept = list(times.values())
    if not kept:
        raise RuntimeError(f'no training time records under {work_dir}')
    return statistics.mean(kept)


def train(args, variant: dict, run_dir: str, run_config: str,
          info: dict) -> Tuple[str, dict]:
    """Train unless the final checkpoint exists; return it and timings."""
    checkpoint = osp.join(run_dir, f'iter_{args.max_iters}.pth')
    timing_file = osp.join(run_dir, 'train_timing.json')
    if osp.isfile(checkpoint) and osp.isfile(timing_file):
        with open(timing_file) as f:
            return checkpoint, json.load(f)
    from mmoanet.apis import train_command, train_in_subprocess
    options = option_list(variant['train_options'])
    train_script = osp.join(REPO_ROOT, 'tools', 'train.py')
    start = time.perf_counter()
    train_in_subprocess(
        run_config,
        run_dir,
        options,
        train_script=train_script,
        cwd=REPO_ROOT,
        log_file=osp.join(run_dir, 'train.log'))
    wall = time.perf_counter() - start
    if not osp.isfile(checkpoint):
        raise RuntimeError(f'training ended without {checkpoint}')
    timing = dict(
        train_s_per_iter=training_seconds_per_iter(run_dir, info['warmup']),
        train_wall_s=wall,
        train_command=portable_command(
            train_command(
                run_config, run_dir, options, train_script=train_script)))
    with open(timing_file, 'w') as f:
        json.dump(timing, f)
    return checkpoint, timing


def evaluate(args, name: str, variant: dict, run_dir: str, run_config: str,
             checkpoint: str, style: str) -> dict:
    """Evaluate a checkpoint in a child process; return its output."""
    tag = f'{name}_{style}'
    out = osp.join(run_dir, f'eval_{tag}_{variant["digest"]}.json')
    if osp.isfile(out):
        with open(out) as f:
            return json.load(f)
    spec = dict(
        config=run_config,
        checkpoint=checkpoint,
        work_dir=osp.join(run_dir, f'test_{tag}'),
        # The trained model's own options first (a wider head must be
        # built wider to load), then the test-time ones.
        cfg_options=option_list(variant['train_options']) +
        option_list(variant['test_options']),
        warmup_images=args.warmup_images,
        out=out)
    spec_file = osp.join(run_dir, f'eval_{tag}_spec.json')
    with open(spec_file, 'w') as f:
        json.dump(spec, f, indent=1)
    command = [
        sys.executable,
        osp.abspath(__file__), '--evaluate-one', spec_file
    ]
    from mmoanet.apis import run_command
    run_command(command, osp.join(run_dir, f'eval_{tag}.log'), REPO_ROOT)
    with open(out) as f:
        result = json.load(f)
    result['test_command'] = portable_command(command)
    return result


def evaluate_one(spec_file: str) -> None:
    """Child process: test one checkpoint, time ``test_step``, dump JSON."""
    from mmengine.config import DictAction

    from mmoanet.apis import build_test_runner, keep_detections
    with open(spec_file) as f:
        spec = json.load(f)
    options = {}
    for item in spec['cfg_options']:
        key, value = item.split('=', 1)
        options[key] = DictAction._parse_iterable(value)
    runner = build_test_runner(spec['config'], spec['checkpoint'],
                               spec['work_dir'], options)
    model = runner.model
    keep_detections(model)
    times: List[Tuple[float, int]] = []
    test_step = model.test_step

    def timed_test_step(data):
        start = time.perf_counter()
        outputs = test_step(data)
        times.append((time.perf_counter() - start, len(outputs)))
        return outputs

    model.test_step = timed_test_step
    metrics = runner.test()
    kept = times[spec['warmup_images']:] or times
    result = dict(
        metrics={
            k: float(v)
            for k, v in metrics.items()
        },
        infer_s_per_img=sum(t for t, _ in kept) / sum(n for _, n in kept),
        num_test_images=sum(n for _, n in times))
    with open(spec['out'], 'w') as f:
        json.dump(result, f, indent=1)


# ----------------------------------------------------------------------
# results file and table
# ----------------------------------------------------------------------
def run_key(record: dict) -> tuple:
    return tuple(json.dumps(record.get(k), sort_keys=True) for k in RUN_KEY)


def finished_runs(records: List[dict]) -> Dict[tuple, set]:
    """Run key -> config digests it was run with (None: not recorded)."""
    done: Dict[tuple, set] = {}
    for record in records:
        done.setdefault(run_key(record),
                        set()).add(record.get('config_digest'))
    return done


def is_done(done: Dict[tuple, set], record: dict, config: str) -> bool:
    """Whether the results hold this run with this config content.

    Records written before config digests were kept count as matching.
    """
    digests = done.get(run_key(record), set())
    return None in digests or config in digests


def current_run_dir(run_dir: str, config: str) -> str:
    """The work dir of a run for this config content.

    ``config_digest.txt`` in a work dir names the content it was trained
    with; if the config changed since, a fresh sibling folder is used, so a
    stale checkpoint is never resumed or reused.
    """
    stamp = osp.join(run_dir, 'config_digest.txt')
    if osp.isfile(stamp):
        with open(stamp) as f:
            if f.read().strip() != config:
                return current_run_dir(f'{run_dir}-cfg{config}', config)
        return run_dir
    os.makedirs(run_dir, exist_ok=True)
    with open(stamp, 'w') as f:
        f.write(config)
    return run_dir


def is_clean(record: dict) -> bool:
    """Whether a record ran from a commit with no change to tracked
    files (``git_dirty`` false)."""
    return record.get('git_dirty') is False


def class_columns(records: List[dict]) -> List[tuple]:
    """Per-class PQ columns found in the records' error metrics."""
    names = []
    for record in records:
        for key in record.get('metrics', {}):
            if key.startswith('panoptic_errors/') and key.endswith('/PQ'):
                name = key.split('/')[1]
                if name not in names:
                    names.append(name)
    return [(f'{n} PQ', f'panoptic_errors/{n}/PQ', 1) for n in names]


def tables(records: List[dict],
           columns=COLUMNS,
           title: str = 'head-to-head') -> str:
    """One markdown table per style, scene and budget; a row per variant.

    ``columns`` may be a list of (title, key, decimals) or a function of
    the group's records returning one.
    """
    groups = group_records(records)
    out = []
    for group in sorted(groups, key=lambda g: json.dumps(g)):
        style, scene, iters, size, num_train, num_val = group
        group_columns = columns
        if callable(columns):
            group_columns = columns(
                [r for runs in groups[group].values() for r in runs])
        out.append(f'\n### {title}: {style} annotations, scene {scene}, '
                   f'{iters} iterations, {size} px, {num_train} train / '
                   f'{num_val} val images\n')
        out.append('| variant | n seeds | ' +
                   ' | '.join(c[0]
                              for c in group_columns) + ' | clean commit |')
        out.append('|---|---:|' + '---:|' * len(group_columns) + '---:|')
        for label, runs in groups[group].items():
            cells = []
            for _, key, decimals in group_columns:
                values = [value_of(r, key) for r in runs]
                cells.append(mean_sd(values, f'{{:.{decimals}f}}'))
            cells.append(f'{sum(is_clean(r) for r in runs)}/{len(runs)}')
            out.append(f'| {label} | {len(runs)} | ' + ' | '.join(cells) +
                       ' |')
    return '\n'.join(out) if out else 'no finished runs yet'


def group_records(records: List[dict]) -> Dict[tuple, Dict[str, List[dict]]]:
    """Group -> row label -> runs; rows in a stable order.

    The stock baseline comes first, then the default variants, then the
    rest by name. A variant whose definition changed between runs gets one
    row per definition, labelled ``name@digest``.
    """
    groups: Dict[tuple, Dict[tuple, List[dict]]] = {}
    for record in records:
        group = tuple(record.get(k) for k in GROUP_KEY)
        row = (record['variant'], record.get('variant_digest'))
        groups.setdefault(group, {}).setdefault(row, []).append(record)
    for group, rows in groups.items():
        for (name, variant_digest), runs in list(rows.items()):
            contents = {r.get('config_digest') for r in runs} - {None}
            if len(contents) > 1:  # the config was edited between runs
                del rows[(name, variant_digest)]
                for run in runs:
                    content = run.get('config_digest')
                    rows.setdefault(
                        (name, f'{variant_digest}/{content or "?"}'),
                        []).append(run)
    order = {name: i for i, name in enumerate(DEFAULT_VARIANTS)}
    labelled = {}
    for group, rows in groups.items():
        names = [name for name, _ in rows]
        labelled[group] = {}
        for name, variant_digest in sorted(
                rows, key=lambda r: (order.get(r[0], len(order)), r)):
            label = name if names.count(name) == 1 else \
                f'{name}@{variant_digest}'
            labelled[group][label] = rows[(name, variant_digest)]
    return labelled


def comparison(records: List[dict], baseline: str) -> str:
    """Each variant minus the baseline, paired by seed (mean ± sd, n)."""
    keys = [('PQ', 'coco_panoptic/PQ', False, 2),
            ('PQ_th', 'coco_panoptic/PQ_th', False, 2),
            ('PQ_st', 'coco_panoptic/PQ_st', False, 2),
            ('train step x', 'train_s_per_iter', True, 2),
            ('inference x', 'infer_s_per_img', True, 2)]
    out = []
    groups = group_records(records)
    for group in sorted(groups, key=lambda g: json.dumps(g)):
        rows = groups[group]
        if baseline not in rows or len(rows) < 2:
            continue
        style, scene, iters, size, num_train, num_val = group
        out.append(f'\n### against {baseline} (same seed; difference, '
                   f'time ratio): {style} annotations, scene {scene}, '
                   f'{iters} iterations, {size} px, {num_train} train / '
                   f'{num_val} val images\n')
        out.append('| variant | n pairs | ' +
                   ' | '.join(f'Δ {k[0]}' if not k[2] else k[0]
                              for k in keys) + ' | clean commit |')
        out.append('|---|---:|' + '---:|' * len(keys) + '---:|')
        clean_seeds = {r['seed'] for r in rows[baseline] if is_clean(r)}
        for label, runs in rows.items():
            if label == baseline:
                continue
            cells, count = [], 0
            for _, key, ratio, decimals in keys:
                values = paired(runs, rows[baseline], key, ratio)
                count = max(count, len(values))
                cells.append(
                    mean_sd(values, f'{{:.{decimals}f}}', signed=not ratio))
            # Pairs whose two records both ran from a clean commit.
            clean = sum(is_clean(r) and r['seed'] in clean_seeds for r in runs)
            cells.append(f'{clean}/{count}')
            out.append(f'| {label} | {count} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(out)


def report(records: List[dict], baseline: str = 'pfpn-stock') -> str:
    """The head-to-head tables, then where each variant loses PQ."""
    return '\n'.join([
        tables(records),
        comparison(records, baseline),
        tables(records, ERROR_COLUMNS, 'where PQ is lost'),
        tables(records, class_columns, 'PQ per class')
    ])


# ----------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------
def plan(args, variants: dict, scenes: Dict[str, dict]) -> List[dict]:
    """Training units: (style, scene, seed, trained variant) + evaluations.

    Seeds are the outer loop: a study stopped early has every style and
    scene for its first seeds, not three seeds of one style.
    """
    units = []
    for seed in args.seeds:
        for style in args.styles:
            for scene in scenes:
                trained = {}
                for name, spec in variants.items():
                    trained.setdefault(spec['train_name'], []).append(name)
                for train_name, names in trained.items():
                    units.append(
                        dict(
                            style=style,
                            scene=scene,
                            seed=seed,
                            train_name=train_name,
                            evaluations=names))
    return units


def describe_plan(args, units: List[dict], variants: dict, scenes: dict,
                  done: Dict[tuple, set]) -> str:
    """What a study would run, and what the results file already has."""
    lines, trainings = [], set()
    for unit in units:
        pending = [
            name for name in unit['evaluations'] if
            not is_done(done, unit_record(args, unit, name, variants, scenes),
                        variants[name]['config_digest'])
        ]
        spec = variants[unit['evaluations'][0]]
        shared = trains_on_png_only(spec, unit['style'])
        train_id = (unit['train_name'], unit['scene'], unit['seed'],
                    None if shared else unit['style'])
        status = 'done' if not pending else (
            'evaluate only (trained for another style)'
            if train_id in trainings else 'train + evaluate')
        if pending:
            trainings.add(train_id)
        lines.append(f'{unit["style"]}/{unit["scene"]} seed {unit["seed"]} '
                     f'{unit["train_name"]}: {status}; evaluations: '
                     f'{", ".join(pending) or "-"}')
    needed = sum(1 for line in lines if 'train + evaluate' in line)
    lines.append(f'{needed} trainings of {args.max_iters} iterations to run')
    return '\n'.join(lines)


def unit_record(args, unit: dict, name: str, variants: dict,
                scenes: dict) -> dict:
    """The skip-key fields of one evaluation of a unit."""
    return dict(
        variant=name,
        variant_digest=variants[name]['digest'],
        style=unit['style'],
        scene=unit['scene'],
        scene_digest=digest(scenes[unit['scene']]),
        seed=unit['seed'],
        max_iters=args.max_iters,
        data_size=args.data_size,
        num_train=args.num_train,
        num_val=args.num_val,
        data_seed=args.data_seed)


def run_unit(args, unit: dict, variants: dict, scenes: dict,
             done: Dict[tuple, set], counter: dict) -> List[str]:
    """Train one model and evaluate every variant that uses it."""
    style, scene, seed = unit['style'], unit['scene'], unit['seed']
    settings = scenes[scene]
    pending = []
    for name in unit['evaluations']:
        record = unit_record(args, unit, name, variants, scenes)
        if is_done(done, record, variants[name]['config_digest']):
            log(f'skip {name} {style}/{scene} seed {seed}: in the results')
        else:
            pending.append((name, record))
    if not pending:
        return []
    train_spec = variants[pending[0][0]]
    root = data_root_of(args, style, scene)
    train_digest = train_spec['train_digest']
    # Images and PNGs are the same in every style: a model that never reads
    # the instances file is trained once for all styles.
    shared = trains_on_png_only(train_spec, style)
    run_dir = osp.join(REPO_ROOT, args.work_dir,
                       f'{"png-masks" if shared else style}_{scene}',
                       f'{unit["train_name"]}_{train_digest}',
                       f'iters{args.max_iters}_seed{seed}')
    with _plan_lock:
        run_dir = current_run_dir(run_dir, train_spec['config_digest'])
    # Not at the top of the work dir, where the Runner dumps its config
    # under the same file name.
    run_config = osp.join(run_dir, 'h2h_configs', 'train.py')
    failures = []
    with _plan_lock:
        counter['started'] += 1
        number = counter['started']
    log(f'[{number}/{counter["total"]}] train {unit["train_name"]} on '
        f'{style}/{scene}, seed {seed}, {args.max_iters} iterations '
        f'({run_dir})')
    try:
        with _run_dir_locks.setdefault(run_dir, threading.Lock()):
            if not osp.isfile(run_config):
                write_run_config(run_config, train_spec, root, style,
                                 args.max_iters, seed)
            checkpoint, timing = train(
                args, train_spec, run_dir, run_config,
                dict(warmup=warmup_iters(args.max_iters)))
        log(f'trained {unit["train_name"]} {style}/{scene} seed {seed}: '
            f'{timing["train_s_per_iter"]:.3f} s/iter, '
            f'{timing["train_wall_s"] / 60:.1f} min')
    except Exception as error:  # one run's failure must not stop the rest
        log(f'FAILED training {unit["train_name"]} {style}/{scene} seed '
            f'{seed}: {error}')
        return [f'train {unit["train_name"]} {style}/{scene}/{seed}']
    origin = provenance()
    for name, record in pending:
        variant = variants[name]
        try:
            config = osp.join(run_dir, 'h2h_configs',
                              f'test_{name}_{style}.py')
            info = write_run_config(config, variant, root, style,
                                    args.max_iters, seed)
            result = evaluate(args, name, variant, run_dir, config, checkpoint,
                              style)
        except Exception as error:
            log(f'FAILED evaluating {name} {style}/{scene} seed {seed}: '
                f'{error}')
            failures.append(f'evaluate {name} {style}/{scene}/{seed}')
            continue
        record.update(
            config=variant['config'],
            train_options=option_list(variant['train_options']),
            test_options=option_list(variant['test_options']),
            scene_settings=settings,
            data_root=repo_relative(root),
            trained_for_all_styles=shared,
            config_digest=variant['config_digest'],
            resize=info['resize'],
            fusion_head=info['fusion_head'],
            rank_by=info['rank_by'],
            rank_order_acc=result['metrics'].get(
                f'occlusion/{info["rank_by"]}_acc'),
            metrics=result['metrics'],
            infer_s_per_img=result['infer_s_per_img'],
            num_test_images=result['num_test_images'],
            train_s_per_iter=timing['train_s_per_iter'],
            train_wall_s=timing['train_wall_s'],
            train_command=timing['train_command'],
            test_command=result.get('test_command'),
            host=platform.node(),
            work_dir=repo_relative(run_dir),
            **origin)
        append_result(osp.join(REPO_ROOT, args.results), record)
        done.setdefault(run_key(record), set()).add(record['config_digest'])
        metrics = result['metrics']
        log(f'done {name} {style}/{scene} seed {seed}: PQ '
            f'{metrics.get("coco_panoptic/PQ", float("nan")):.2f}, '
            f'{result["infer_s_per_img"]:.3f} s/img -> {args.results}')
    return failures


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument(
        '--variants',
        nargs='+',
        default=list(DEFAULT_VARIANTS),
        help='variants to run (names of VARIANTS or of --variant)')
    parser.add_argument(
        '--variant',
        action='append',
        default=[],
        help='define a variant: NAME=CONFIG[:k=v,...] (trained) or '
        'NAME=@VARIANT[:k=v,...] (test options on its checkpoints)')
    parser.add_argument(
        '--variants-file',
        help='more variants, a JSON file {name: {config, train_options, '
        'test_options} or {reuse, test_options}} (those of variants.json '
        'are always there)')
    parser.add_argument(
        '--styles',
        nargs='+',
        default=['amodal'],
        choices=['amodal', 'coco', 'panoptic'])
    parser.add_argument(
        '--scene',
        action='append',
        default=[],
        help='scene setting NAME=k=v,... (on_top_prob, overlap_image_share, '
        'thing_scale, num_things=[MIN,MAX], ...); default: "default"')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--max-iters', type=int, default=600)
    parser.add_argument('--num-train', type=int, default=300)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument(
        '--data-size', type=int, default=160, help='image side of the data')
    parser.add_argument('--data-seed', type=int, default=0)
    parser.add_argument('--data-dir', default=osp.join('data', 'head_to_head'))
    parser.add_argument(
        '--work-dir', default=osp.join('work_dirs', 'head_to_head'))
    parser.add_argument(
        '--results',
        default=RESULTS_FILE,
        help='JSON-lines file the finished runs are appended to')
    parser.add_argument(
        '--jobs', type=int, default=1, help='runs at once (2 cores: 1)')
    parser.add_argument(
        '--warmup-images',
        type=int,
        default=5,
        help='test images left out of the inference time')
    parser.add_argument(
        '--table-only',
        action='store_true',
        help='print the table of the results file and exit')
    parser.add_argument(
        '--baseline',
        default='pfpn-stock',
        help='variant the others are compared with, seed by seed')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='print what would be trained and evaluated, then exit')
    parser.add_argument('--evaluate-one', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.evaluate_one:
        evaluate_one(args.evaluate_one)
        return 0
    results = osp.join(REPO_ROOT, args.results)
    if args.table_only:
        print(report(load_results(results), args.baseline))
        return 0
    extra = {}
    if args.variants_file:
        with open(args.variants_file) as f:
            extra.update(json.load(f))
    extra.update(parse_variant(spec) for spec in args.variant)
    variants = resolve_variants(args.variants, extra)
    scenes = dict(parse_scene(spec) for spec in args.scene) or {'default': {}}
    done = finished_runs(load_results(results))
    units = plan(args, variants, scenes)
    if args.dry_run:
        print(describe_plan(args, units, variants, scenes, done))
        return 0
    for style in args.styles:
        for scene, settings in scenes.items():
            ensure_data(args, style, scene, settings)
    counter = dict(started=0, total=len(units))
    log(f'{len(units)} trainings planned ({len(variants)} variants, '
        f'{len(args.styles)} styles, {len(scenes)} scenes, '
        f'{len(args.seeds)} seeds); results -> {args.results}')
    failures = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for unit_failures in pool.map(
                lambda unit: run_unit(args, unit, variants, scenes, done,
                                      counter), units):
            failures += unit_failures
    print(report(load_results(results), args.baseline), flush=True)
    if failures:
        log(f'{len(failures)} failed: ' + '; '.join(failures))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
