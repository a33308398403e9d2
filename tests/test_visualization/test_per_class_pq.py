"""Per-class PQ table and plot of several fusion orders."""
import csv

import cv2

from mmoanet.visualization.per_class_pq import write_per_class_pq

CATEGORIES = {
    11: dict(name='table', isthing=1),
    21: dict(name='sky', isthing=0)
}


def _summary(table_pq: float, sky_pq: float) -> dict:
    return dict(
        per_class={
            11: dict(pq=table_pq, sq=0.8, rq=table_pq / 0.8),
            21: dict(pq=sky_pq, sq=0.9, rq=sky_pq / 0.9)
        })


def test_tables_and_plot(tmp_path):
    summaries = dict(srm=_summary(0.6, 0.72), score=_summary(0.4, 0.72))
    files = write_per_class_pq(summaries, CATEGORIES, str(tmp_path / 'pq'))
    csv_file, md_file, png_file = files
    with open(csv_file) as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        'category', 'kind', 'srm PQ', 'srm SQ', 'srm RQ', 'score PQ',
        'score SQ', 'score RQ'
    ]
    assert rows[1][:3] == ['table', 'thing', '60.0']
    assert rows[1][5] == '40.0'
    assert rows[2][:2] == ['sky', 'stuff']
    with open(md_file) as f:
        lines = f.read().splitlines()
    assert lines[2] == ('| table | thing | 60.00 | 80.00 | 75.00 | 40.00 | '
                        '80.00 | 50.00 |')
    plot = cv2.imread(png_file)
    assert plot is not None and plot.shape[0] > 100 and plot.shape[1] > 300
    only_tables = write_per_class_pq(
        summaries, CATEGORIES, str(tmp_path / 'tables'), plot=False)
    assert [f.rsplit('.', 1)[1] for f in only_tables] == ['csv', 'md']
