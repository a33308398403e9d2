"""The demo refuses a budget shorter than its warm-up before it starts."""
import sys

import pytest

from tests.utils import load_script

demo = load_script('tools/demo.py')


def test_demo_refuses_a_budget_inside_the_warm_up(tmp_path, monkeypatch,
                                                  capsys):
    work_dir = tmp_path / 'demo'
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        sys, 'argv',
        ['tools/demo.py', '--max-iters', '40', '--work-dir',
         str(work_dir)])
    with pytest.raises(SystemExit) as info:
        demo.main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert '--max-iters 40' in err
    assert 'warms up for 50 iterations' in err
    assert not work_dir.exists()
