"""mmoanet.utils.outputs: output paths refused before the work, atomic
writes."""
import os
import stat

import pytest
import torch

from mmoanet.utils import (OutputPathError, atomic_write, check_output_dir,
                           check_output_file, save_atomic)


def test_check_output_file(tmp_path):
    target = tmp_path / 'new' / 'deeper' / 'out.json'
    assert check_output_file(str(target)) == str(target)  # can be made
    (tmp_path / 'a_file').write_text('x')
    existing = tmp_path / 'existing.json'
    existing.write_text('{}')
    cases = [
        (str(tmp_path / 'a_file' / 'out.json'), {}, 'a_file is a file, not '
         'a folder'),
        (str(existing), {}, 'exists; pass --force to replace it'),
        (str(existing), dict(inputs=[str(existing)],
                             force=True), 'is also an input of this run'),
        (str(tmp_path), dict(force=True), 'is a folder, not a file'),
        ('/sys/out.json', {}, 'the folder /sys is not writable'),
    ]
    for path, kwargs, message in cases:
        with pytest.raises(OutputPathError, match=message):
            check_output_file(path, what='--out', **kwargs)
    check_output_file(str(existing), force=True)
    # An input reached through a link is the same file.
    link = tmp_path / 'link.json'
    link.symlink_to(existing)
    with pytest.raises(OutputPathError, match='also an input'):
        check_output_file(str(link), inputs=[str(existing)], force=True)


def test_check_output_dir(tmp_path):
    check_output_dir(str(tmp_path / 'new'))
    check_output_dir(str(tmp_path))  # empty
    (tmp_path / 'x').write_text('x')
    with pytest.raises(OutputPathError, match='is not empty; pass --force'):
        check_output_dir(str(tmp_path))
    check_output_dir(str(tmp_path), force=True)
    with pytest.raises(OutputPathError, match='is a file, not a folder'):
        check_output_dir(str(tmp_path / 'x'), force=True)
    with pytest.raises(OutputPathError, match='not writable'):
        check_output_dir('/sys/new_folder')


def test_atomic_write_keeps_the_earlier_file_on_failure(tmp_path):
    path = tmp_path / 'out.json'
    with atomic_write(str(path)) as f:
        f.write('first')
    with pytest.raises(OSError, match='No space'):
        with atomic_write(str(path)) as f:
            f.write('half of the sec')
            raise OSError(28, 'No space left on device')
    assert path.read_text() == 'first'
    assert os.listdir(tmp_path) == ['out.json']  # no temporary file left
    fresh = tmp_path / 'fresh.json'
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(str(fresh)) as f:
            raise KeyboardInterrupt
    assert not fresh.exists()


def test_atomic_write_gives_a_plain_file_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        path = tmp_path / 'out.json'
        with atomic_write(str(path)) as f:
            f.write('x')
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's
        os.chmod(path, 0o640)
        save_atomic(dict(a=torch.ones(1)), str(path))
        assert stat.S_IMODE(path.stat().st_mode) == 0o640  # kept
    finally:
        os.umask(umask)
