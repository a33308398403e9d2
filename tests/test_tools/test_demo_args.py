"""The demo refuses a budget shorter than its warm-up before it starts."""
import os.path as osp
import subprocess
import sys

from tests.utils import REPO_ROOT


def test_demo_refuses_a_budget_inside_the_warm_up(tmp_path):
    work_dir = tmp_path / 'demo'
    result = subprocess.run([
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'demo.py'), '--max-iters', '40',
        '--work-dir',
        str(work_dir)
    ],
                            cwd=str(tmp_path),
                            capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert '--max-iters 40' in result.stderr
    assert 'warms up for 50 iterations' in result.stderr
    assert not work_dir.exists()
