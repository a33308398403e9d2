"""Head-to-head rows for stock PanopticFPN upgraded with an SRM.

For every stock PanopticFPN run already in the head-to-head results file
(``head_to_head.py``, variant ``pfpn-stock``) of the asked styles and
seeds, this does what a user with a trained PanopticFPN checkpoint does
(configs/panoptic_fpn_srm/README.md), through the same commands:

1. train the SRM alone from the style's train-split instance annotations:
   ``tools/train.py configs/srm/srm_1x7-7x1_1200i_synthetic-occlusion.py``
   with the run's data and seed (``--cfg-options``);
2. merge it into the unchanged detector's checkpoint:
   ``tools/model_converters/add_srm_to_panoptic_fpn.py``;
3. score the merged checkpoint's predictions through ``SRMFusionHead``
   (``compare_fusion_heads.py``; SRM order, uncovered thing pixels VOID as
   in mmdet), with mmdet's heuristic fusion of the same predictions beside
   it.

The network is not retrained, so its training step is the stock one; the
SRM's own training time is recorded beside it (``srm_train_wall_s``).
Each result is appended to the same results file as variant ``pfpn-srm``,
so ``head_to_head.py --table-only`` shows it against the stock model on
the same seed.

    python projects/oanet_studies/srm_on_stock_pfpn.py --styles amodal coco \\
        --seeds 0 1 2

With ``--srm-input pred`` the SRM learns from the stock detector's own
predictions on the train split instead of the instance annotations, as
OANet's ``train_input='pred'`` does: the detector runs once over the train
images (``tools/analysis_tools/dump_instance_predictions.py``, a COCO
results file) and the SRM is trained on those masks, its targets still
from the panoptic PNGs. This works without instance annotations, so for
the ``panoptic`` style too; its rows are variant ``pfpn-srm-pred``. Under
``--srm-input gt`` styles without instance annotations (``panoptic``)
have no overlapping masks to learn from and are refused.

    python projects/oanet_studies/srm_on_stock_pfpn.py --srm-input pred \\
        --styles panoptic amodal coco --seeds 0 1 2

``--same-class-order score`` (the default) lays instances of one class by
detection score, in the slots the SRM gives that class
(``test_cfg.panoptic.same_class_order``); its rows are ``pfpn-srm-cls`` /
``pfpn-srm-pred-cls``. ``rank`` is the paper's rule, every instance by its
ranking score (rows ``pfpn-srm`` / ``pfpn-srm-pred``). An SRM, a merged
checkpoint or a prediction file already in the run's folder is reused, so
the two rules are compared on the same SRM. The rows' variants are defined
in ``variants.json``.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time

from srm_utils import MERGE_SCRIPT, srm_train_options, train_srm
from study_utils import (REPO_ROOT, RESULTS_DIR, append_result, load_results,
                         portable_command, provenance, repo_relative)

RESULTS_FILE = osp.join(RESULTS_DIR, 'head_to_head.jsonl')
DUMP_SCRIPT = osp.join(REPO_ROOT, 'tools', 'analysis_tools',
                       'dump_instance_predictions.py')
COMPARE_SCRIPT = osp.join(REPO_ROOT, 'projects', 'oanet_studies',
                          'compare_fusion_heads.py')
VARIANTS = {'gt': 'pfpn-srm', 'pred': 'pfpn-srm-pred'}
#: --same-class-order -> suffix of the variant name.
ORDER_SUFFIXES = {'rank': '', 'score': '-cls'}
FUSION = 'srm-void'  # compare_fusion_heads row: SRM order, VOID rule


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--styles', nargs='+', default=['amodal', 'coco'])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--results', default=RESULTS_FILE)
    parser.add_argument('--work-dir', default='work_dirs/srm_on_stock_pfpn')
    parser.add_argument(
        '--srm-iters',
        type=int,
        default=1200,
        help='SRM training steps (train_cfg.max_iters of the SRM config)')
    parser.add_argument(
        '--srm-input',
        choices=sorted(VARIANTS),
        default='gt',
        help='what the SRM learns from: the instance annotations (gt) or '
        'the stock detector\'s predictions on the train split (pred)')
    parser.add_argument(
        '--same-class-order',
        choices=sorted(ORDER_SUFFIXES),
        default='score',
        help='test_cfg.panoptic.same_class_order of SRMFusionHead: order '
        'instances of one class by detection score (default) or by their '
        'ranking scores (the paper)')
    return parser.parse_args()


def variant_name(args) -> str:
    """The results-file variant of these options."""
    return VARIANTS[args.srm_input] + ORDER_SUFFIXES[args.same_class_order]


def upgrade(args, stock: dict) -> dict:
    """Train an SRM for one stock run, merge it, score it; its record."""
    from mmoanet.apis import run_command
    style, seed = stock['style'], stock['seed']
    # One folder per stock run: style, scene, seed and training length.
    name = f'{style}_{stock["scene"]}_s{seed}'
    if stock['max_iters'] != 400:  # folders of the 400-iteration runs
        name += f'_iters{stock["max_iters"]}'
    if args.srm_input == 'pred':
        name += '_pred'
    work_dir = osp.join(REPO_ROOT, args.work_dir, name)
    os.makedirs(work_dir, exist_ok=True)
    data_root = osp.join(REPO_ROOT, stock['data_root'])
    python = sys.executable
    # The stock run's own evaluation config: same data, metrics, test cfg.
    spec_file = osp.join(REPO_ROOT, stock['work_dir'],
                         f'eval_pfpn-stock_{style}_spec.json')
    with open(spec_file) as f:
        spec = json.load(f)
    config = osp.join(REPO_ROOT, spec['config'])
    checkpoint = osp.join(REPO_ROOT, spec['checkpoint'])
    predictions = None
    dump_seconds = None
    if args.srm_input == 'pred':
        predictions = osp.join(work_dir, 'train_predictions.json')
        if not osp.isfile(predictions):  # else reused, see the docstring
            start = time.perf_counter()
            run_command([
                python, DUMP_SCRIPT, config, checkpoint, '--split', 'train',
                '--out', predictions
            ], osp.join(work_dir, 'dump.log'), REPO_ROOT)
            dump_seconds = time.perf_counter() - start
    srm_dir = osp.join(work_dir, 'srm')
    reused = osp.isfile(osp.join(srm_dir, 'last_checkpoint'))
    start = time.perf_counter()
    srm_checkpoint, srm_command = train_srm(
        srm_dir,
        srm_train_options(
            data_root,
            seed,
            args.srm_iters,
            workers=1,
            ins_ann_file=predictions),
        log_file=osp.join(work_dir, 'train_srm.log'))
    srm_seconds = time.perf_counter() - start
    merged = osp.join(work_dir, 'pfpn_srm.pth')
    merge_command = [
        python, MERGE_SCRIPT, checkpoint, srm_checkpoint, merged, '--force'
    ]
    run_command(merge_command, osp.join(work_dir, 'merge.log'), REPO_ROOT)
    out_file = osp.join(work_dir, f'fusion_heads_{args.same_class_order}.json')
    compare_command = [
        python, COMPARE_SCRIPT, config, merged, '--srm-checkpoint', merged,
        '--out', out_file, '--cfg-options', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        f'model.test_cfg.panoptic.same_class_order={args.same_class_order}'
    ]
    run_command(compare_command, osp.join(work_dir, 'compare.log'), REPO_ROOT)
    with open(out_file) as f:
        fusion = json.load(f)
    record = copy.deepcopy(stock)
    record.update(
        variant=variant_name(args),
        same_class_order=args.same_class_order,
        fusion_head='SRMFusionHead',
        srm_input=args.srm_input,
        dump_wall_s=dump_seconds,
        metrics=fusion[FUSION],
        stock_metrics_same_run=fusion['heuristic'],
        srm_train_command=portable_command(srm_command),
        # A reused SRM was trained (and timed) for an earlier row.
        srm_train_wall_s=None if reused else srm_seconds,
        srm_reused=reused,
        srm_checkpoint=repo_relative(srm_checkpoint),
        srm_merge_command=portable_command(merge_command),
        test_command=portable_command(compare_command),
        **provenance())
    record.pop('infer_s_per_img', None)  # not timed by compare_fusion_heads
    return record


def main():
    args = parse_args()
    variant = variant_name(args)
    if args.srm_input == 'gt' and 'panoptic' in args.styles:
        raise SystemExit('style "panoptic" has no instance annotations: '
                         'the SRM has no overlapping masks to learn from; '
                         'use --srm-input pred')
    results = osp.join(REPO_ROOT, args.results)
    records = load_results(results)
    done = {(r['style'], r['scene'], r['seed'], r['max_iters'])
            for r in records if r['variant'] == variant}
    stock_runs = [
        r for r in records if r['variant'] == 'pfpn-stock'
        and r['style'] in args.styles and r['seed'] in args.seeds
    ]
    if not stock_runs:
        raise SystemExit(f'no pfpn-stock run of styles {args.styles} and '
                         f'seeds {args.seeds} in {args.results}; run '
                         'head_to_head.py first')
    for stock in stock_runs:
        key = (stock['style'], stock['scene'], stock['seed'],
               stock['max_iters'])
        if key in done:
            print(f'skip {key}: already in {args.results}', flush=True)
            continue
        record = upgrade(args, stock)
        append_result(results, record)
        srm_seconds = record['srm_train_wall_s']
        srm_note = ('SRM reused' if srm_seconds is None else
                    f'SRM trained in {srm_seconds:.0f} s')
        print(
            f'{variant} {key}: PQ {record["metrics"]["coco_panoptic/PQ"]:.2f}'
            f' (stock {stock["metrics"]["coco_panoptic/PQ"]:.2f}), '
            f'{srm_note}',
            flush=True)


if __name__ == '__main__':
    main()
