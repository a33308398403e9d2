"""projects/oanet_studies/benchmark_onnx.py: both backends timed side by
side, one record line with its provenance."""
import json
import os.path as osp

from tests.utils import REPO_ROOT, load_script

SCRIPT = 'projects/oanet_studies/benchmark_onnx.py'
CONFIG = osp.join(
    REPO_ROOT, 'configs/panoptic_fpn_srm/'
    'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py')


def test_benchmark_times_both_backends_and_appends_a_record(tmp_path):
    bench = load_script(SCRIPT)
    out = str(tmp_path / 'onnx_speed.jsonl')
    argv = [
        '--model', 'tiny', CONFIG, 'none', '70x90', '--repeats', '1', '--out',
        out
    ]
    record = bench.main(argv)
    with open(out) as f:
        lines = [json.loads(line) for line in f]
    assert lines == [json.loads(json.dumps(record, sort_keys=True))]
    assert record['command'].startswith(f'python {SCRIPT} --model tiny ')
    assert isinstance(record['git_dirty'], bool)
    (row, ) = record['models']
    assert row['weights'] == 'random' and row['image_size'] == [70, 90]
    # The trunk timing's input: the image padded to a multiple of 32.
    assert row['network_input'] == [96, 96]
    assert set(row['median_s']) == {
        'pytorch', 'onnxruntime', 'pytorch_trunk', 'onnxruntime_trunk',
        'pytorch_srm', 'onnxruntime_srm'
    }
    assert all(value > 0 for value in row['median_s'].values())
    table_rows = record['table'].splitlines()
    assert len(table_rows) == 3 and table_rows[2].startswith('| tiny |')
