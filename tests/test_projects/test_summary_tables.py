"""The head-to-head tables of README.md and the model cards are computed
from committed records, and those records ran from clean commits."""
import json
import os.path as osp
import re
import statistics

import pytest
import yaml

from tests.utils import REPO_ROOT, load_script

SCRIPT = 'projects/oanet_studies/summary_tables.py'


def cited_records() -> list:
    summary = load_script(SCRIPT)
    return summary.load_results(osp.join(REPO_ROOT, summary.RESULTS_FILE))


def test_every_record_the_tables_read_ran_from_a_clean_commit():
    records = cited_records()
    assert records
    dirty = [(r['variant'], r['style'], r['seed'], r['max_iters'])
             for r in records if r['git_dirty'] is not False]
    assert not dirty, f'records from a dirty tree: {dirty}'


@pytest.mark.parametrize('name', list(load_script(SCRIPT).TABLES))
def test_each_cited_table_is_the_records_table(name):
    summary = load_script(SCRIPT)
    table = summary.TABLES[name](cited_records())
    assert table, f'no records for table {name}'
    for path in summary.CITED_IN[name]:
        with open(osp.join(REPO_ROOT, path)) as f:
            text = f.read()
        found = re.findall(
            rf'<!-- summary_tables:{name} -->\n(.*?)\n'
            rf'<!-- /summary_tables:{name} -->', text, re.S)
        assert found == [
            table
        ], (f'{path} does not hold table {name!r} as the records give it; '
            f'run `python {SCRIPT} --write`:\n{table}')


def test_a_changed_figure_is_caught():
    summary = load_script(SCRIPT)
    records = cited_records()
    table = summary.TABLES['400'](records)
    stock = next(r for r in records if r['variant'] == 'pfpn-stock'
                 and r['max_iters'] == 400 and r['style'] == 'amodal')
    changed = json.loads(json.dumps(records))
    for record in changed:
        if record == stock:
            record['metrics']['coco_panoptic/PQ'] += 5
    assert summary.TABLES['400'](changed) != table


def test_write_puts_the_table_between_its_marks_only(tmp_path, monkeypatch):
    summary = load_script(SCRIPT)
    records = cited_records()
    doc = tmp_path / 'doc.md'
    doc.write_text('before\n<!-- summary_tables:card -->\nold figures\n'
                   '<!-- /summary_tables:card -->\nafter\n')
    monkeypatch.setattr(summary, 'REPO_ROOT', str(tmp_path))
    monkeypatch.setitem(summary.CITED_IN, 'card', ('doc.md', ))
    assert summary.write_tables(['card'], records) == ['doc.md']
    table = summary.TABLES['card'](records)
    assert doc.read_text() == ('before\n<!-- summary_tables:card -->\n' +
                               table + '\n<!-- /summary_tables:card -->\n'
                               'after\n')
    assert summary.write_tables(['card'], records) == []  # unchanged
    doc.write_text('no marks\n')
    with pytest.raises(SystemExit, match='doc.md: no <!-- summary_tables'):
        summary.write_tables(['card'], records)


def benchmark_rows(section_range=None) -> list:
    """Head-to-head table rows of docs/benchmarks.md (those whose last cell
    counts clean records), optionally only between two ``## N.`` headings."""
    with open(osp.join(REPO_ROOT, 'docs', 'benchmarks.md')) as f:
        text = f.read()
    if section_range:
        first, stop = section_range
        text = text[text.index(f'\n## {first}. '):text.index(f'\n## {stop}. ')]
    return [
        line for line in text.splitlines()
        if re.fullmatch(r'\|.*\| \d+/\d+ \|', line)
    ]


def records_tables(results_file: str) -> str:
    head_to_head = load_script('projects/oanet_studies/head_to_head.py')
    return head_to_head.report(
        head_to_head.load_results(
            osp.join(REPO_ROOT, 'projects', 'oanet_studies', 'results',
                     results_file)), 'pfpn-stock')


def test_benchmarks_page_rows_are_rows_the_records_give():
    clean = records_tables('head_to_head.jsonl').splitlines()
    dirty = records_tables('head_to_head_dirty_tree.jsonl').splitlines()
    rows = benchmark_rows()
    assert len(rows) > 50
    unknown = [row for row in rows if row not in clean and row not in dirty]
    assert not unknown, ('docs/benchmarks.md rows that no record gives: ' +
                         '\n'.join(unknown))
    # sections 1-3 are the clean re-run, every row from clean records only
    clean_sections = benchmark_rows(('1', '4'))
    assert clean_sections
    assert [row for row in clean_sections if row not in clean] == []
    assert all(re.search(r'\| (\d+)/\1 \|$', row) for row in clean_sections)


@pytest.mark.parametrize(
    'folder, name, variant',
    [('panoptic_fpn', 'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion',
      'pfpn-stock'),
     ('panoptic_fpn_srm', 'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion',
      'pfpn-srm-cls')])
def test_metafile_results_are_the_records_means(folder, name, variant):
    """The tiny models' Results: mean over seeds of the clean 1,200-iteration
    records, amodal style; a score order's figures are stock's."""
    summary = load_script(SCRIPT)
    records = cited_records()
    with open(osp.join(REPO_ROOT, 'configs', folder, 'metafile.yml')) as f:
        model = next(
            m for m in yaml.safe_load(f)['Models'] if m['Name'] == name)
    metrics = model['Results'][0]['Metrics']
    for prefix, source in (('', variant), ('score order ', summary.STOCK)):
        runs = summary.runs_of(records, 'amodal', source, 1200)
        assert len(runs) == 3
        for key in ('PQ', 'PQ_th', 'PQ_st'):
            if prefix + key not in metrics:
                assert variant == summary.STOCK
                continue
            mean = statistics.mean(
                summary.values(runs, f'coco_panoptic/{key}'))
            assert f'{metrics[prefix + key]:.1f}' == f'{mean:.1f}', (
                f'configs/{folder}/metafile.yml {name}: {prefix}{key}')
