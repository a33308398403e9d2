"""The PQ benchmark: every engine on both paths, same numbers or an
error."""
import copy
import sys

import pytest

from tests.utils import load_script

SCRIPT = 'projects/oanet_studies/benchmark_pq.py'


def test_every_engine_on_both_paths_gives_panopticapis_numbers(
        monkeypatch, capsys):
    bench = load_script(SCRIPT)
    # main() sets it for hotcoco; restored after the test.
    monkeypatch.setenv('RAYON_NUM_THREADS', '1')
    monkeypatch.setattr(sys, 'argv', [
        SCRIPT, '--num-images', '3', '--size', '40', '--repeat', '1',
        '--no-record'
    ])
    bench.main()
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert len(rows) == 1 + len(bench.FILE_ROWS) + len(bench.MEMORY_ROWS)
    assert sum('| files to numbers |' in row for row in rows) == 5
    assert sum('2 orders in memory' in row for row in rows) == 4
    assert 'every printed digit equal' in out


def test_a_differing_number_is_an_error():
    bench = load_script(SCRIPT)
    reference = {
        group: dict(pq=0.5, sq=0.75, rq=2 / 3, n=2)
        for group in bench.GROUPS
    }
    reference['per_class'] = {1: dict(pq=0.5, sq=0.75, rq=2 / 3)}
    assert bench.check_same(reference, copy.deepcopy(reference), 'x') == 0
    other = copy.deepcopy(reference)
    other['per_class'][1]['sq'] += 1e-6
    with pytest.raises(AssertionError, match='differ from panopticapi'):
        bench.check_same(reference, other, 'x')
    other = copy.deepcopy(reference)
    other['per_class'][2] = dict(pq=0.0, sq=0.0, rq=0.0)
    with pytest.raises(AssertionError, match='other categories'):
        bench.check_same(reference, other, 'x')
