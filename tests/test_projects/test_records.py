"""Reproducible records: no machine's paths in the repository, and every
record of projects/oanet_studies/results names its commit, whether the tree
was clean, and variants the repository defines."""
import glob
import json
import os
import os.path as osp
import re
import subprocess

import pytest

from tests.utils import IN_GIT_CHECKOUT, REPO_ROOT, load_script

# Folders a machine's absolute paths start with; spelled in parts so that
# this file does not hold them itself.
MACHINE_ROOTS = ('work', 'root', 'home', 'tmp', 'Users', 'mnt', 'scratch')
# A root folder at the start of a path, not inside a URL or a relative
# path (data/tmp/x is fine).
MACHINE_PATH = re.compile(r'(?<![\w.~:/-])/(?:' + '|'.join(MACHINE_ROOTS) +
                          r')/[\w.-][^\s\'",;)]*')
RESULTS = sorted(
    glob.glob(
        osp.join(REPO_ROOT, 'projects', 'oanet_studies', 'results',
                 '*.jsonl')))


def machine_paths(text: str, checkout: str = REPO_ROOT) -> list:
    """The absolute machine paths in ``text``: any under the usual roots,
    and this checkout's own folder wherever it is."""
    found = [match.group(0) for match in MACHINE_PATH.finditer(text)]
    if checkout in text:
        found.append(checkout)
    return found


def tracked_files() -> list:
    """The files git tracks; in CI's copy of them (no git metadata), every
    file of the copy but the links the install made (mmoanet/.mim) and
    caches."""
    if IN_GIT_CHECKOUT:
        listed = subprocess.run(['git', 'ls-files', '-z'],
                                cwd=REPO_ROOT,
                                capture_output=True,
                                check=True).stdout.decode().split('\0')
        return [path for path in listed if path]
    skipped = {'.mim', '__pycache__', '.pytest_cache', '.venv'}
    found = []
    for folder, subfolders, files in os.walk(REPO_ROOT):
        subfolders[:] = [name for name in subfolders if name not in skipped]
        found += [
            osp.relpath(osp.join(folder, name), REPO_ROOT) for name in files
        ]
    return found


def absolute(root: str, rest: str) -> str:
    """``/<root>/<rest>``, written so that this file holds no such path."""
    return '/' + root + '/' + rest


def test_the_scanner_finds_machine_paths_and_only_those():
    assert machine_paths(f'python {absolute("home", "u/x.py")} --out '
                         f'{absolute("tmp", "a")}')
    assert machine_paths(f'"data_root": "{absolute("work", "main/data")}"')
    assert machine_paths('train_dataloader.dataset.data_root=' +
                         absolute('mnt', 'd/'))
    assert machine_paths('see /opt/ckpt', checkout='/opt/ckpt')
    assert not machine_paths('https://example.com/home/page and '
                             'data/tmp/x, work_dirs/home/y, ~/tmp/z')
    assert not machine_paths('osp.join(REPO_ROOT, "tools")')


def test_no_committed_file_holds_a_machine_path():
    problems = []
    for path in tracked_files():
        full = osp.join(REPO_ROOT, path)
        if not osp.isfile(full):  # deleted in the working tree
            continue
        with open(full, 'rb') as f:
            data = f.read()
        if b'\0' in data:  # images, checkpoints
            continue
        text = data.decode('utf-8', errors='replace')
        for number, line in enumerate(text.splitlines(), 1):
            for found in machine_paths(line):
                problems.append(f'{path}:{number}: {found}')
    assert not problems, ('absolute paths of a machine (use paths relative '
                          'to the repository):\n' + '\n'.join(problems))


def test_there_are_records():
    assert RESULTS, 'no projects/oanet_studies/results/*.jsonl'


@pytest.mark.parametrize('path', RESULTS, ids=osp.basename)
def test_each_record_names_its_commit_and_defined_variants(path):
    h2h = load_script('projects/oanet_studies/head_to_head.py')
    variants = h2h.VARIANTS
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    assert records
    for number, record in enumerate(records, 1):
        where = f'{osp.basename(path)}:{number}'
        assert re.fullmatch(r'[0-9a-f]{40}', record['git_commit']), where
        assert isinstance(record['git_dirty'], bool), where
        # a study or tool from the repository root, or the CI entry point
        assert record['command'].startswith(('python ', 'bash .ci/')), where
        name = record.get('variant')
        if name is None or record.get('variant_defined') is False:
            continue
        assert name in variants, f'{where}: variant {name} not defined'
        spec = variants[name]
        if 'study' in spec:  # rows written by another study on a variant
            assert spec['study'] in record['command'], where
            spec = variants[spec['on']]
        if 'reuse' in spec:
            base = variants[spec['reuse']]
            spec = dict(
                config=base['config'],
                train_options=base.get('train_options', {}),
                test_options=spec.get('test_options', {}))
        # The same definition the record was run with: the digest of its
        # config, train options and test options.
        definition = [
            spec['config'],
            spec.get('train_options', {}),
            spec.get('test_options', {})
        ]
        assert record['config'] == spec['config'], where
        assert h2h.digest(definition) == record['variant_digest'], where
