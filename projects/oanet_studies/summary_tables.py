"""The head-to-head tables that README.md and the model cards cite.

Each summary table of the head-to-head in README.md,
configs/oanet/README.md, configs/panoptic_fpn/README.md and
configs/panoptic_fpn_srm/README.md is the
output of this script, pasted verbatim, and
``tests/test_projects/test_summary_tables.py`` checks that each file still
holds it. So every figure of those tables is computed from the records of
``results/head_to_head.jsonl``, and that test also checks that each of
those records ran from a clean commit.

In those files each table sits between ``<!-- summary_tables:NAME -->``
and ``<!-- /summary_tables:NAME -->``; ``--write`` replaces what is between
the marks with the table the records give.

Examples:
    python projects/oanet_studies/summary_tables.py            # every table
    python projects/oanet_studies/summary_tables.py --table 400
    python projects/oanet_studies/summary_tables.py --write    # into the docs
"""
import argparse
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence

from study_utils import (REPO_ROOT, RESULTS_DIR, load_results, mean_sd, paired,
                         value_of)

RESULTS_FILE = osp.join(RESULTS_DIR, 'head_to_head.jsonl')
STOCK = 'pfpn-stock'
PQ, PQ_TH, PQ_ST = ('coco_panoptic/PQ', 'coco_panoptic/PQ_th',
                    'coco_panoptic/PQ_st')
TOP_KEPT, BOTH_KEPT = ('panoptic_occlusion/top_kept',
                       'panoptic_occlusion/both_kept')

# Row labels of each variant; the SRM upgrade of each style is in bold.
LABELS = {
    'pfpn-stock': 'stock PanopticFPN',
    'pfpn-srm-cls': '**PanopticFPN + SRM from annotations**',
    'pfpn-srm-pred-cls': '**PanopticFPN + SRM from its own predictions**',
    'pfpn-srm': 'same, paper\'s rule within a class',
    'pfpn-srm-pred': 'same, paper\'s rule within a class',
    'oanet-void': 'full OANet (SRM order)',
    'oanet-score-void': 'full OANet, score order',
    'oanet-void-cls': 'full OANet, same-class rule',
    'oanet-pred-void': 'full OANet, SRM trained on its predictions',
    'oanet-pred-void-cls': 'same, same-class rule',
}
# The variants of each annotation style, in the tables' order.
ROWS = {
    'amodal': ('pfpn-stock', 'pfpn-srm-cls', 'pfpn-srm', 'oanet-void',
               'oanet-score-void', 'oanet-void-cls'),
    'coco': ('pfpn-stock', 'pfpn-srm-cls', 'pfpn-srm', 'oanet-void',
             'oanet-score-void', 'oanet-void-cls'),
    'panoptic': ('pfpn-stock', 'pfpn-srm-pred-cls', 'pfpn-srm-pred',
                 'oanet-pred-void', 'oanet-pred-void-cls'),
}
UPGRADE = {
    'amodal': 'pfpn-srm-cls',
    'coco': 'pfpn-srm-cls',
    'panoptic': 'pfpn-srm-pred-cls'
}
#: The file each table is pasted in (checked by the test).
CITED_IN = {
    '400': ('README.md', ),
    '1200': ('README.md', ),
    'scenes': ('README.md', ),
    'card': ('configs/oanet/README.md', ),
    'rules': ('configs/panoptic_fpn_srm/README.md', ),
    'orders': ('configs/oanet/README.md', ),
    'stock': ('configs/panoptic_fpn/README.md', ),
}


def runs_of(records: List[dict],
            style: str,
            variant: str,
            iters: int,
            scene: str = 'default') -> List[dict]:
    """Records of one variant, style, scene and budget, by seed."""
    return sorted(
        (r for r in records if r['variant'] == variant and r['style'] == style
         and r['scene'] == scene and r['max_iters'] == iters),
        key=lambda r: r['seed'])


def values(runs: List[dict], key: str) -> List[float]:
    return [value_of(run, key) for run in runs]


def delta_cell(runs: List[dict],
               stock: List[dict],
               key: str = PQ,
               per_seed: bool = False) -> str:
    """``mean ± sd`` of the differences against stock on the same seed,
    then each seed's difference when ``per_seed``."""
    found = paired(runs, stock, key, ratio=False)
    cell = mean_sd(found, '{:.2f}', signed=True)
    if per_seed and len(found) > 1:
        cell += ' (' + ', '.join(f'{d:+.2f}' for d in found) + ')'
    return cell


def markdown(head: str, rule: str, lines: List[str]) -> Optional[str]:
    """A markdown table of the rows, or None when there is none."""
    return '\n'.join([head, rule] + lines) if lines else None


def seeds_note(records) -> str:
    seeds = sorted({r['seed'] for r in records})
    return ', '.join(str(s) for s in seeds)


def table_by_style(records: List[dict], iters: int,
                   columns: Sequence[tuple]) -> Optional[str]:
    """Rows per style and variant: the columns, then ΔPQ vs stock."""
    lines = []
    for style, variants in ROWS.items():
        stock = runs_of(records, style, STOCK, iters)
        if not stock:
            continue
        for variant in variants:
            runs = runs_of(records, style, variant, iters)
            if not runs:
                continue
            cells = [
                mean_sd(values(runs, key), '{:.1f}') for _, key in columns
            ]
            change = ('-' if variant == STOCK else delta_cell(
                runs, stock, per_seed=True))
            lines.append(f'| {style} | {LABELS[variant]} | ' +
                         ' | '.join(cells) + f' | {change} |')
    seeds = seeds_note([r for r in records if r['max_iters'] == iters])
    head = ('| annotations | model | ' + ' | '.join(t for t, _ in columns) +
            f' | ΔPQ vs stock (seeds {seeds}) |')
    return markdown(head, '|---|---|' + '---:|' * (len(columns) + 1), lines)


def table_400(records: List[dict]) -> Optional[str]:
    return table_by_style(records, 400, [('PQ', PQ), ('PQ_th', PQ_TH),
                                         ('PQ_st', PQ_ST),
                                         ('top instance kept %', TOP_KEPT),
                                         ('both kept %', BOTH_KEPT)])


def table_1200(records: List[dict]) -> Optional[str]:
    return table_by_style(records, 1200, [('PQ', PQ), ('PQ_th', PQ_TH),
                                          ('PQ_st', PQ_ST)])


def table_scenes(records: List[dict]) -> Optional[str]:
    """The SRM upgrade against stock on every scene but the default."""
    scenes = sorted({r['scene'] for r in records} - {'default'})
    lines = []
    for scene in scenes:
        for style, upgrade in UPGRADE.items():
            stock = runs_of(records, style, STOCK, 400, scene)
            runs = runs_of(records, style, upgrade, 400, scene)
            if not stock or not runs:
                continue
            lines.append(
                f'| {scene} | {style} | {LABELS[upgrade].strip("*")} | '
                f'{mean_sd(values(stock, PQ), "{:.1f}")} | '
                f'{mean_sd(values(runs, PQ), "{:.1f}")} | '
                f'{delta_cell(runs, stock, per_seed=True)} | '
                f'{delta_cell(runs, stock, PQ_ST)} |')
    seeds = seeds_note([r for r in records if r['scene'] != 'default'])
    return markdown(
        '| scene | annotations | upgrade | stock PQ | upgraded PQ | '
        f'ΔPQ (seeds {seeds}) | ΔPQ_st |', '|---|---|---|---:|---:|---:|---:|',
        lines)


def table_card(records: List[dict]) -> Optional[str]:
    """The model cards' short table: the upgrade and full OANet, 400
    iterations, against stock on the same seed."""
    lines = []
    for style, upgrade in UPGRADE.items():
        stock = runs_of(records, style, STOCK, 400)
        if not stock:
            continue
        oanet = 'oanet-pred-void' if style == 'panoptic' else 'oanet-void'
        for variant in (upgrade, oanet):
            runs = runs_of(records, style, variant, 400)
            if not runs:
                continue
            lines.append(f'| {style} | {LABELS[variant].strip("*")} | '
                         f'{mean_sd(values(runs, PQ), "{:.1f}")} | '
                         f'{delta_cell(runs, stock)} | '
                         f'{delta_cell(runs, stock, PQ_TH)} | '
                         f'{delta_cell(runs, stock, PQ_ST)} |')
    return markdown('| annotations | model | PQ | ΔPQ | ΔPQ_th | ΔPQ_st |',
                    '|---|---|---:|---:|---:|---:|', lines)


def table_orders(records: List[dict]) -> Optional[str]:
    """Full OANet's two orders of the same predictions (one evaluation
    fuses both): PQ, and how often each order puts the top instance of a
    detected overlapping pair above the other."""
    lines = []
    for iters in (400, 1200):
        for style in ROWS:
            variant = ('oanet-pred-void'
                       if style == 'panoptic' else 'oanet-void')
            runs = runs_of(records, style, variant, iters)
            if not runs:
                continue
            for order in ('srm', 'score'):
                cells = [
                    mean_sd(
                        values(runs, f'coco_panoptic/{order}/{key}'), '{:.1f}')
                    for key in ('PQ', 'PQ_th', 'PQ_st')
                ] + [
                    mean_sd(
                        values(runs, f'occlusion/{order}_acc{suffix}'),
                        '{:.1f}') for suffix in ('', '_diff')
                ]
                gains = [
                    value_of(run, 'coco_panoptic/srm/PQ') -
                    value_of(run, 'coco_panoptic/score/PQ') for run in runs
                ]
                gain = ('-' if order == 'score' else mean_sd(
                    gains, '{:.2f}', signed=True))
                lines.append(f'| {iters} | {style} | {order} | '
                             f'{seeds_note(runs)} | ' + ' | '.join(cells) +
                             f' | {gain} |')
    return markdown(
        '| iterations | annotations | order | seeds | PQ | PQ_th | PQ_st | '
        'pairs right % | different-class pairs right % | ΔPQ, SRM - score '
        '(same run) |', '|---:|---|---|---|---:|---:|---:|---:|---:|---:|',
        lines)


def table_rules(records: List[dict]) -> Optional[str]:
    """The SRM upgrade under both rules within a class, per budget: ΔPQ
    against stock on the same seed."""
    paper = {'pfpn-srm-cls': 'pfpn-srm', 'pfpn-srm-pred-cls': 'pfpn-srm-pred'}
    source = {
        'amodal':
        'amodal instance masks',
        'coco':
        'COCO-like instance masks',
        'panoptic':
        'panoptic PNG only: the detector\'s own train-split '
        'predictions'
    }
    lines = []
    for iters in (400, 1200):
        for style, upgrade in UPGRADE.items():
            stock = runs_of(records, style, STOCK, iters)
            ours = runs_of(records, style, upgrade, iters)
            if not stock or not ours:
                continue
            theirs = runs_of(records, style, paper[upgrade], iters)
            lines.append(f'| {source[style]} | {iters} | {seeds_note(ours)} | '
                         f'{delta_cell(ours, stock)} | '
                         f'{delta_cell(theirs, stock)} | '
                         f'{delta_cell(ours, stock, PQ_ST)} |')
    return markdown(
        '| annotations the SRM learns from | iterations | seeds | ΔPQ, '
        '`same_class_order=\'score\'` (these configs) | ΔPQ, `\'rank\'` '
        '(paper) | ΔPQ_st, `\'score\'` |', '|---|---:|---|---:|---:|---:|',
        lines)


def table_stock(records: List[dict]) -> Optional[str]:
    """The stock baseline config's card: 1,200 iterations, as it ships
    (its records are the same in every annotation style)."""
    runs = runs_of(records, 'amodal', STOCK, 1200)
    config = 'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py'
    cells = [
        mean_sd(values(runs, key), '{:.1f}') for key in (PQ, PQ_TH, PQ_ST)
    ]
    rows = [
        f'| [{config}](./{config}) | {seeds_note(runs)} | ' +
        ' | '.join(cells) + ' |'
    ] if runs else []
    return markdown('| config | seeds | PQ | PQ_th | PQ_st |',
                    '|---|---|---:|---:|---:|', rows)


TABLES = {
    '400': table_400,
    '1200': table_1200,
    'scenes': table_scenes,
    'card': table_card,
    'orders': table_orders,
    'rules': table_rules,
    'stock': table_stock,
}


def write_tables(names: List[str], records: List[dict]) -> List[str]:
    """Replace each named table between its marks in the files that cite
    it; the files changed."""
    changed = []
    for name in names:
        table = TABLES[name](records) or 'no records'
        for path in CITED_IN[name]:
            full = osp.join(REPO_ROOT, path)
            with open(full) as f:
                text = f.read()
            marks = re.compile(
                rf'(<!-- summary_tables:{name} -->\n)'
                rf'.*?(\n<!-- /summary_tables:{name} -->)', re.S)
            if not marks.search(text):
                raise SystemExit(f'{path}: no <!-- summary_tables:{name} --> '
                                 f'marks to write table {name!r} between')
            new = marks.sub(lambda m: m.group(1) + table + m.group(2), text)
            if new != text:
                with open(full, 'w') as f:
                    f.write(new)
                changed.append(path)
    return changed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--results', default=RESULTS_FILE)
    parser.add_argument(
        '--table', choices=list(TABLES), nargs='+', default=list(TABLES))
    parser.add_argument(
        '--write',
        action='store_true',
        help='write each table between its marks in the files citing it')
    args = parser.parse_args()
    records = load_results(osp.join(REPO_ROOT, args.results))
    if args.write:
        changed = write_tables(args.table, records)
        print('updated: ' + (', '.join(changed) or 'nothing'))
        return
    for name in args.table:
        print(f'<!-- {name}: in {", ".join(CITED_IN[name])} -->')
        print(TABLES[name](records) or 'no records')
        print()


if __name__ == '__main__':
    main()
