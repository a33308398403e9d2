"""Per-class panoptic quality of several fusion orders, as table and plot.

Written by ``MultiOrderPanopticMetric(classwise_out_dir=...)``: one row per
category with PQ, SQ and RQ of every order, as CSV (for spreadsheets),
markdown (for reports) and a bar chart of PQ (for eyes).
"""
import csv
import os
import os.path as osp
from typing import Dict, List

#: File names written into the output folder.
CSV_NAME = 'per_class_pq.csv'
MARKDOWN_NAME = 'per_class_pq.md'
PLOT_NAME = 'per_class_pq.png'


def _rows(summaries: Dict[str, dict], categories: Dict[int,
                                                       dict]) -> List[list]:
    """Header plus one row per category: name, thing/stuff, then PQ, SQ,
    RQ (percent) of each order."""
    header = ['category', 'kind']
    for name in summaries:
        header += [f'{name} {field}' for field in ('PQ', 'SQ', 'RQ')]
    rows = [header]
    for cat_id, category in categories.items():
        row = [category['name'], 'thing' if category['isthing'] else 'stuff']
        for summary in summaries.values():
            per_class = summary['per_class'][cat_id]
            row += [
                round(100 * per_class[field], 2)
                for field in ('pq', 'sq', 'rq')
            ]
        rows.append(row)
    return rows


def write_per_class_pq(summaries: Dict[str, dict],
                       categories: Dict[int, dict],
                       out_dir: str,
                       plot: bool = True) -> List[str]:
    """Write the per-class table (CSV, markdown) and the PQ bar chart.

    Args:
        summaries (dict[str, dict]): Order name (e.g. ``'srm'``,
            ``'score'``) to a ``pq_summary`` result, whose ``per_class``
            maps category id to ``pq``, ``sq``, ``rq`` in [0, 1].
        categories (dict[int, dict]): Category id to ``name`` and
            ``isthing``, in the order of the rows.
        out_dir (str): Folder to write into (created if needed).
        plot (bool): Also draw ``per_class_pq.png`` (needs matplotlib).
            Defaults to True.

    Returns:
        list[str]: The files written.
    """
    os.makedirs(out_dir, exist_ok=True)
    rows = _rows(summaries, categories)
    csv_path = osp.join(out_dir, CSV_NAME)
    with open(csv_path, 'w', newline='') as f:
        csv.writer(f).writerows(rows)
    md_path = osp.join(out_dir, MARKDOWN_NAME)
    with open(md_path, 'w') as f:
        f.write('| ' + ' | '.join(rows[0]) + ' |\n')
        f.write('|---|---|' + '---:|' * (len(rows[0]) - 2) + '\n')
        for row in rows[1:]:
            f.write('| ' + ' | '.join(
                f'{value:.2f}' if isinstance(value, float) else str(value)
                for value in row) + ' |\n')
    written = [csv_path, md_path]
    if plot:
        written.append(_plot(summaries, categories, out_dir))
    return written


def _plot(summaries: Dict[str, dict], categories: Dict[int, dict],
          out_dir: str) -> str:
    """Horizontal bars of PQ per category, one bar per order."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError('the per-class PQ plot needs matplotlib (pip '
                          'install matplotlib); the CSV and markdown '
                          'tables need nothing') from error
    import numpy as np

    cat_ids = list(categories)
    names = [
        f'{categories[cat_id]["name"]}'
        f'{"" if categories[cat_id]["isthing"] else " (stuff)"}'
        for cat_id in cat_ids
    ]
    num_orders = len(summaries)
    bar = 0.8 / max(num_orders, 1)
    positions = np.arange(len(cat_ids))
    fig, ax = plt.subplots(
        figsize=(7, max(2.5, 0.28 * len(cat_ids) * max(num_orders, 1))))
    for index, (order, summary) in enumerate(summaries.items()):
        values = [100 * summary['per_class'][c]['pq'] for c in cat_ids]
        offsets = positions + (index - (num_orders - 1) / 2) * bar
        ax.barh(offsets, values, height=bar, label=f'{order} order')
    ax.set_yticks(positions)
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel('PQ (%)')
    ax.set_xlim(0, 100)
    ax.set_title('Per-class panoptic quality')
    ax.grid(axis='x', alpha=0.3)
    # Below the axes, where it hides no bar.
    ax.legend(
        fontsize=8,
        loc='upper center',
        bbox_to_anchor=(0.5, -0.08 - 0.6 / fig.get_figheight()),
        ncol=max(num_orders, 1),
        frameon=False)
    fig.tight_layout()
    path = osp.join(out_dir, PLOT_NAME)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
