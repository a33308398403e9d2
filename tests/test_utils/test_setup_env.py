"""tools/misc/setup_env.sh stops with advice, not a traceback."""
import os
import subprocess
import sys

from tests.utils import REPO_ROOT


def run_setup(**env):
    return subprocess.run(['bash', 'tools/misc/setup_env.sh'],
                          cwd=REPO_ROOT,
                          env=dict(os.environ, **env),
                          capture_output=True,
                          text=True,
                          timeout=120)


def test_missing_python_says_what_to_install(tmp_path):
    result = run_setup(
        PYTHON='/nonexistent/python3.11', VENV=str(tmp_path / 'venv'))
    assert result.returncode == 1
    assert 'no Python interpreter' in result.stderr
    assert 'PYTHON=' in result.stderr
    # The versions come from requirements/python_versions.txt.
    assert 'Install Python 3.10 or 3.11' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'venv').exists()


def test_too_old_python_is_refused(tmp_path):
    fake = tmp_path / 'python3'
    fake.write_text('#!/bin/sh\nexit 1\n')  # fails the version check
    fake.chmod(0o755)
    result = run_setup(PYTHON=str(fake), VENV=str(tmp_path / 'venv'))
    assert result.returncode == 1
    assert 'unsupported Python version' in result.stderr
    assert 'supports Python 3.10 and 3.11' in result.stderr


def test_interpreter_outside_the_stated_versions_is_refused(tmp_path):
    """A Python that runs but is not listed is refused before any venv."""
    fake = tmp_path / 'python3'
    # Answers the version check as Python 3.12 would.
    fake.write_text('#!/bin/sh\nexec "%s" -c "import sys; sys.version_info '
                    '= (3, 12, 0); exec(sys.stdin.read())" "$@"\n' %
                    sys.executable)
    fake.chmod(0o755)
    result = run_setup(PYTHON=str(fake), VENV=str(tmp_path / 'venv'))
    assert result.returncode == 1
    assert 'unsupported Python version' in result.stderr
    assert not (tmp_path / 'venv').exists()


def test_requirements_check_tells_missing_and_wrong_versions():
    script = 'tools/misc/requirements_satisfied.py'
    ok = subprocess.run([sys.executable, script, 'pytest>=1'],
                        cwd=REPO_ROOT,
                        capture_output=True,
                        text=True)
    missing = subprocess.run(
        [sys.executable, script, 'surely-not-installed-pkg'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True)
    wrong = subprocess.run([sys.executable, script, 'pytest<1'],
                           cwd=REPO_ROOT,
                           capture_output=True,
                           text=True)
    assert ok.returncode == 0
    assert missing.returncode == 1 and 'missing' in missing.stdout
    assert wrong.returncode == 1 and 'wrong version' in wrong.stdout
