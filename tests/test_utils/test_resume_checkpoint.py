"""Auto-resume says which newer checkpoint it passed over, and why."""
import pytest
import torch
from mmengine.logging import MMLogger

from mmoanet.utils import find_resume_checkpoint


@pytest.fixture
def work_dir(tmp_path):
    """iter_2 and iter_4 complete, iter_6 cut short by a kill."""
    for number in (2, 4, 6):
        torch.save(
            dict(meta=dict(iter=number)), tmp_path / f'iter_{number}.pth')
    cut = tmp_path / 'iter_6.pth'
    cut.write_bytes(cut.read_bytes()[:40])
    return tmp_path


def test_truncated_newest_is_skipped_and_named(work_dir):
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_6.pth'))
    skipped = []
    chosen = find_resume_checkpoint(str(work_dir), skipped=skipped)
    assert chosen == str(work_dir / 'iter_4.pth')
    assert len(skipped) == 1
    assert 'iter_6.pth' in skipped[0] and 'truncated' in skipped[0]
    assert f'resuming from {chosen}' in skipped[0]
    # Nothing is deleted: the cut file stays for inspection.
    assert (work_dir / 'iter_6.pth').exists()


def test_stale_pointer_loses_no_newer_checkpoint(work_dir):
    # Killed after iter_4 was saved but before the pointer was updated.
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_2.pth'))
    skipped = []
    chosen = find_resume_checkpoint(str(work_dir), skipped=skipped)
    assert chosen == str(work_dir / 'iter_4.pth')
    assert any('iter_6.pth: it is truncated' in note for note in skipped)
    assert any('iter_2.pth, named in' in note and 'iter_4.pth is newer' in note
               for note in skipped)


def test_skips_go_to_the_current_log_file(work_dir, tmp_path_factory):
    log_file = tmp_path_factory.mktemp('log') / 'run.log'
    MMLogger.get_instance('resume_skips', log_file=str(log_file))
    assert find_resume_checkpoint(str(work_dir)) == str(work_dir /
                                                        'iter_4.pth')
    assert 'skipped ' + str(work_dir / 'iter_6.pth') in log_file.read_text()


def test_nothing_complete_starts_from_scratch_and_says_so(tmp_path):
    cut = tmp_path / 'iter_2.pth'
    torch.save(dict(meta=dict(iter=2)), cut)
    cut.write_bytes(cut.read_bytes()[:40])
    skipped = []
    assert find_resume_checkpoint(str(tmp_path), skipped=skipped) is None
    assert 'starts from scratch' in skipped[-1]
