"""What the studies of this folder share: paths, records, tables.

The study scripts import this module as a sibling (their own folder is on
``sys.path`` when run as ``python projects/oanet_studies/<study>.py``).

A record (one JSON line of ``results/*.jsonl``) is reproducible from the
repository: its paths are relative to the repository root, a command names
the interpreter ``python``, and it holds the commit it ran from and whether
the tracked files differed from it (``git_dirty``).
"""
import datetime
import json
import os
import os.path as osp
import shlex
import statistics
import subprocess
import sys
import threading
from typing import Dict, List, Optional, Sequence, Tuple

#: The checkout: configs' relative data paths and tools/ are found from it.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: This folder and its files, relative to REPO_ROOT.
STUDY_DIR = osp.join('projects', 'oanet_studies')
RESULTS_DIR = osp.join(STUDY_DIR, 'results')
VARIANTS_FILE = osp.join(STUDY_DIR, 'variants.json')

_print_lock = threading.Lock()
_results_lock = threading.Lock()


def log(message: str) -> None:
    """Timestamped progress line, flushed (studies run under nohup)."""
    stamp = datetime.datetime.now().strftime('%H:%M:%S')
    with _print_lock:
        print(f'[{stamp}] {message}', flush=True)


def mean_sd(values: Sequence[float],
            fmt: str = '{:.2f}',
            signed: bool = False) -> str:
    """``mean ± sd`` of ``values`` (sd over seeds, checkpoints...).

    Args:
        values (Sequence[float]): the numbers; None entries are left out.
        fmt (str): format of each number. Defaults to two decimals.
        signed (bool): a ``+`` before a positive mean (a difference).

    Returns:
        str: ``'-'`` for no value, the value alone for one, else
        ``'<mean> ± <sd>'``.
    """
    values = [value for value in values if value is not None]
    if not values:
        return '-'
    mean = fmt.format(statistics.mean(values))
    if signed and not mean.startswith('-'):
        mean = '+' + mean
    if len(values) == 1:
        return mean
    return f'{mean} ± {fmt.format(statistics.stdev(values))}'


def repo_relative(text: str) -> str:
    """``text`` with every path inside the checkout made relative to it."""
    return text.replace(REPO_ROOT + os.sep, '')


def portable_command(command: Sequence[str]) -> str:
    """A command line as a record keeps it: runnable from the checkout.

    The interpreter becomes ``python`` and paths inside the checkout
    (also inside ``key=value`` options) become relative to it.
    """
    words = []
    for word in command:
        word = str(word)
        if word == sys.executable or (osp.isabs(word) and
                                      osp.basename(word).startswith('python')):
            word = 'python'
        words.append(repo_relative(word))
    return shlex.join(words)


def git_state() -> Tuple[str, bool]:
    """Commit of the checkout and whether tracked files differ from it."""
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'],
                                cwd=REPO_ROOT,
                                capture_output=True,
                                text=True,
                                check=True).stdout.strip()
        dirty = bool(
            subprocess.run(['git', 'status', '--porcelain', '-uno'],
                           cwd=REPO_ROOT,
                           capture_output=True,
                           text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return 'unknown', True
    return commit, dirty


def provenance(argv: Optional[Sequence[str]] = None) -> dict:
    """``command``, ``git_commit``, ``git_dirty`` and ``date`` of a record.

    Args:
        argv (Sequence[str], optional): the study's arguments; by default
            ``sys.argv``.
    """
    commit, dirty = git_state()
    argv = list(sys.argv if argv is None else argv)
    return dict(
        command=portable_command([sys.executable] + argv),
        git_commit=commit,
        git_dirty=dirty,
        date=datetime.datetime.now().isoformat(timespec='seconds'))


def load_results(path: str) -> List[dict]:
    """Records of a results file (a missing file has none)."""
    if not osp.isfile(path):
        return []
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a killed run
                    log(f'{path}:{number}: unreadable line skipped')
    return records


def value_of(record: dict, key: str) -> Optional[float]:
    """A record field, or else one of its metrics (None when absent)."""
    if key in record:
        return record[key]
    metrics = record.get('metrics', {})
    if key == 'rank_order_acc':  # records written before the field
        score = any(
            o.endswith('rank_by=score')
            for o in record.get('test_options', []))
        return metrics.get(f'occlusion/{"score" if score else "srm"}_acc')
    return metrics.get(key)


def paired(runs: List[dict], base_runs: List[dict], key: str,
           ratio: bool) -> List[float]:
    """Per-seed differences (or ratios) of ``key`` against the baseline."""
    base = {r['seed']: value_of(r, key) for r in base_runs}
    values = []
    for run in runs:
        value, reference = value_of(run, key), base.get(run['seed'])
        if value is None or reference is None:
            continue
        values.append(value / reference if ratio else value - reference)
    return values


def append_result(path: str, record: dict) -> None:
    """Append one record as a JSON line, flushed to disk at once."""
    with _results_lock:
        os.makedirs(osp.dirname(path) or '.', exist_ok=True)
        with open(path, 'a') as f:
            f.write(json.dumps(record, sort_keys=True) + '\n')
            f.flush()
            os.fsync(f.fileno())


def read_variants(path: str) -> Dict[str, dict]:
    """The variants of a JSON file ``{name: definition}``.

    A definition is ``{config, train_options, test_options}`` (a model
    head_to_head.py trains), ``{reuse, test_options}`` (the checkpoints of
    another variant, tested otherwise), or ``{study, ...}`` (rows another
    study writes, e.g. ``srm_on_stock_pfpn.py``, with its settings).
    """
    with open(path) as f:
        variants = json.load(f)
    if not isinstance(variants, dict):
        raise ValueError(f'{path}: expected {{name: definition}}')
    for name, spec in variants.items():
        if not isinstance(spec, dict) or not ({'config', 'reuse', 'study'}
                                              & set(spec)):
            raise ValueError(f'{path}: variant {name} needs config, reuse '
                             'or study')
    return variants
