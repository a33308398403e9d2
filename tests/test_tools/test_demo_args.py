"""tools/demo.py without its 15 minutes: arguments, plan, steps, table."""
import json
import os
import os.path as osp
import sys

import pytest

from tests.utils import REPO_ROOT as ROOT
from tests.utils import load_script

demo = load_script('tools/demo.py')


@pytest.mark.parametrize('flag', ['--max-iters', '--srm-iters'])
def test_a_budget_below_one_is_refused_before_any_work(tmp_path, monkeypatch,
                                                       capsys, flag):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        demo.main([flag, '0', '--work-dir', 'out'])
    assert info.value.code == 2
    assert f'{flag} 0: must be at least 1' in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_dry_run_prints_the_product_path_and_writes_nothing(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    demo.main(['--dry-run', '--work-dir', 'wd', '--seed', '3'])
    # Tools and configs are named relative to the working folder.
    out = capsys.readouterr().out.replace(
        osp.relpath(ROOT, tmp_path) + os.sep, '')
    lines = dict(line.split(': ', 1) for line in out.splitlines())
    assert os.listdir(tmp_path) == []
    assert list(lines) == [
        'data', 'train_stock', 'test_stock', 'train_srm', 'merge',
        'test_pfpn_srm', 'train_oanet', 'test_oanet', 'overlays_pfpn_srm',
        'overlays_oanet'
    ]
    # The head-to-head's data: amodal, 160 px, 300 train / 100 val.
    assert lines['data'].endswith(
        'make_synthetic_occlusion.py --out data/synthetic_occlusion '
        '--ann-style amodal --num-train 300 --num-val 100 --size 160 '
        '--seed 0 --force')
    # Its standard budget: 400 iterations, warm-up 40, cosine to the end.
    for network in ('train_stock', 'train_oanet'):
        for option in ('train_cfg.max_iters=400', 'val_cfg=None',
                       'param_scheduler.0.end=40',
                       'param_scheduler.1.begin=40',
                       'param_scheduler.1.end=400',
                       'param_scheduler.1.T_max=360', 'randomness.seed=3'):
            assert f' {option}' in lines[network]
    stock = 'configs/panoptic_fpn/panoptic-fpn_r18_fpn_1200i_' \
        'synthetic-occlusion.py'
    assert f'tools/train.py {stock} --work-dir wd/stock' in lines[
        'train_stock']
    assert f'tools/test.py {stock} wd/stock/iter_400.pth --eval pq' in lines[
        'test_stock']
    # PanopticFPN + SRM as a user gets it: train, merge, test.
    assert ('tools/train.py configs/srm/srm_1x7-7x1_1200i_synthetic-'
            'occlusion.py --work-dir wd/srm --resume --cfg-options '
            'randomness.seed=3') in lines['train_srm']
    assert ('tools/model_converters/add_srm_to_panoptic_fpn.py '
            'wd/stock/iter_400.pth') in lines['merge']
    assert lines['merge'].endswith('wd/pfpn_srm/panoptic-fpn-srm.pth --force')
    assert ('tools/test.py configs/panoptic_fpn_srm/panoptic-fpn-srm_r18_'
            'fpn_1200i_synthetic-occlusion.py wd/pfpn_srm/panoptic-fpn-srm.pth'
            ' --eval pq') in lines['test_pfpn_srm']
    assert 'tools/test.py configs/oanet/oanet_r18_fpn_1200i_synthetic-' \
        'occlusion.py wd/oanet/iter_400.pth --eval pq' in lines['test_oanet']


def test_a_short_budget_keeps_a_warm_up_and_the_srm_steps():
    options = demo.budget(30, 0)
    assert 'param_scheduler.0.end=3' in options
    assert 'param_scheduler.1.T_max=27' in options
    assert 'default_hooks.checkpoint.interval=30' in options
    assert 'param_scheduler.0.end=1' in demo.budget(1, 0)
    steps = demo.plan(demo.parse_args(['--srm-iters', '7']))
    assert steps['train_srm'][-5:] == [
        'randomness.seed=0', 'train_cfg.max_iters=7',
        'param_scheduler.0.end=7', 'param_scheduler.0.T_max=7',
        'default_hooks.checkpoint.interval=7'
    ]


def test_every_tool_and_config_of_the_plan_exists():
    steps = demo.plan(demo.parse_args([]))
    paths = [
        arg for command in steps.values() for arg in command[1:]
        if arg.endswith('.py')
    ]
    assert len(paths) == 18
    for path in paths:
        assert osp.isfile(path), path


def test_a_step_runs_once_then_is_skipped(tmp_path, capsys):
    counter = tmp_path / 'runs.txt'
    command = [sys.executable, '-c', f'open({str(counter)!r}, "a").write("x")']
    first = demo.run_step('count', command, str(tmp_path / 'steps'))
    again = demo.run_step('count', command, str(tmp_path / 'steps'))
    assert counter.read_text() == 'x'
    assert again == first
    assert 'skipped' in capsys.readouterr().out
    demo.run_step('count', command + ['--'], str(tmp_path / 'steps'))
    assert counter.read_text() == 'xx'  # another command runs again
    with pytest.raises(SystemExit, match='step fail failed'):
        demo.run_step('fail', [sys.executable, '-c', 'raise SystemExit(3)'],
                      str(tmp_path / 'steps'))
    assert not (tmp_path / 'steps' / 'fail.json').exists()


def test_metrics_of_the_newest_test_run(tmp_path):
    for stamp, pq in (('20261204_070000', 1.0), ('20261204_080000', 2.0)):
        os.makedirs(tmp_path / stamp / 'vis_data')
        with open(tmp_path / stamp / f'{stamp}.json', 'w') as f:
            json.dump({'coco_panoptic/PQ': pq}, f)
        with open(tmp_path / stamp / 'vis_data' / 'scalars.json', 'w') as f:
            json.dump({'coco_panoptic/PQ': -1}, f)
    assert demo.newest_test_metrics(str(tmp_path)) == {'coco_panoptic/PQ': 2.0}
    with pytest.raises(FileNotFoundError, match='no metrics'):
        demo.newest_test_metrics(str(tmp_path / 'none'))


def test_table_and_line_from_the_numbers():

    def family(prefix, pq, th, st):
        return {
            f'{prefix}/PQ': pq,
            f'{prefix}/PQ_th': th,
            f'{prefix}/PQ_st': st
        }

    records = dict(
        test_stock=dict(metrics=family('coco_panoptic', 77.0, 66.0, 91.0)),
        test_pfpn_srm=dict(metrics=family('coco_panoptic', 79.7, 70.5, 91.0)),
        test_oanet=dict(
            metrics=dict(
                family('coco_panoptic/srm', 74.1, 65.0, 89.0),
                **family('coco_panoptic/score', 64.3, 49.0, 89.0))))
    table = demo.final_table(records).splitlines()
    assert table[0] == '| model | PQ | PQ_th | PQ_st | ΔPQ vs stock |'
    assert table[2] == '| stock PanopticFPN | 77.00 | 66.00 | 91.00 | - |'
    assert table[3] == '| PanopticFPN + SRM | 79.70 | 70.50 | 91.00 | +2.70 |'
    assert table[4] == ('| full OANet, SRM order | 74.10 | 65.00 | 89.00 | '
                        '-2.90 |')
    assert table[5] == ('| full OANet, score order | 64.30 | 49.00 | 89.00 '
                        '| -12.70 |')
    line = demo.summary_line(records)
    assert line == ('The same stock detections laid in SRM order: +2.70 PQ '
                    '(PQ_th +4.50, PQ_st +0.00); OANet\'s SRM order: +9.80 PQ '
                    'over its own score order, -2.90 against stock '
                    'PanopticFPN.')


def test_a_folder_the_demo_did_not_make_is_never_deleted(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'notes.txt').write_text('keep')
    with pytest.raises(SystemExit, match='not a work dir of the demo'):
        demo.main(['--work-dir', 'mine', '--fresh'])
    assert (tmp_path / 'mine' / 'notes.txt').read_text() == 'keep'


def test_main_runs_every_step_then_reuses_the_data(tmp_path, monkeypatch,
                                                   capsys):
    """The orchestration alone: each step's run is faked."""
    monkeypatch.chdir(tmp_path)
    val = tmp_path / 'data' / 'synthetic_occlusion' / 'val'
    val.mkdir(parents=True)
    for index in range(8):
        (val / f'{index:012d}.jpg').write_bytes(b'jpg')
    families = ('coco_panoptic', 'coco_panoptic/srm', 'coco_panoptic/score')
    metrics = {
        f'{family}/{key}': value
        for family in families
        for key, value in (('PQ', 70.0), ('PQ_th', 60.0), ('PQ_st', 90.0))
    }
    calls = []

    def fake_run_step(name, command, done_dir):
        assert osp.isdir(done_dir)
        calls.append((name, command))
        if name == 'train_srm':
            (tmp_path / 'wd' / 'srm').mkdir(parents=True)
            (tmp_path / 'wd' / 'srm' / 'last_checkpoint').write_text(
                str(tmp_path / 'wd' / 'srm' / 'iter_1200.pth'))
        record = dict(command=command, seconds=1.0)
        if name.startswith('test_'):
            record['metrics'] = dict(metrics)
        return record

    monkeypatch.setattr(demo, 'run_step', fake_run_step)
    monkeypatch.setattr(demo, 'plot_loss_curve', lambda run, out: out)
    demo.main(['--work-dir', 'wd'])
    assert [name for name, _ in calls] == list(demo.plan(demo.parse_args([])))
    merge = dict(calls)['merge']
    assert merge[2:] == [
        osp.join('wd', 'stock', 'iter_400.pth'),
        osp.join('wd', 'srm', 'iter_1200.pth'),
        osp.join('wd', 'pfpn_srm', 'panoptic-fpn-srm.pth'), '--force'
    ]
    assert len(os.listdir(tmp_path / 'wd' / 'overlay_inputs')) == 6
    out = capsys.readouterr().out
    assert '| PanopticFPN + SRM | 70.00 | 60.00 | 90.00 | +0.00 |' in out
    assert 'total' in out and 'train_oanet 0 s' in out
    with open(tmp_path / 'wd' / 'demo_results.json') as f:
        results = json.load(f)
    assert results['max_iters'] == 400 and results['seed'] == 0
    assert set(results['step_seconds']) == set(dict(calls))
    assert results['data'] == dict(demo.DATA_ARGS, root=demo.DATA_ROOT)
    assert {'commit', 'clean'} <= set(results)

    # Same data settings: the data is reused, the work dir kept.
    calls.clear()
    monkeypatch.setattr(
        demo, 'run_step', lambda name, command, done:
        (calls.append(name) or dict(
            command=command, seconds=0.0, metrics=dict(metrics))))
    demo.main(['--work-dir', 'wd'])
    assert calls == list(demo.plan(demo.parse_args([])))[1:]
    assert 'holds the demo\'s data, reused' in capsys.readouterr().out

    # Other data settings: the models trained on the old data go.
    stamp = tmp_path / 'data' / 'synthetic_occlusion' / 'mmoanet_demo.json'
    stamp.write_text(json.dumps(dict(demo.DATA_ARGS, num_train=1)))
    calls.clear()
    with pytest.raises(FileNotFoundError):  # no SRM trained this time
        demo.main(['--work-dir', 'wd'])
    assert 'removing wd' in capsys.readouterr().out
    assert calls[0] == 'data'
    assert not (tmp_path / 'wd' / 'srm').exists()
    assert json.loads(stamp.read_text()) == demo.DATA_ARGS


def merged_config(command):
    """The config a ``tools/train.py`` command of the plan trains."""
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(osp.join(ROOT, osp.relpath(command[2])))
    options = {}
    for item in command[command.index('--cfg-options') + 1:]:
        key, value = item.split('=', 1)
        options[key] = DictAction._parse_iterable(value)
    cfg.merge_from_dict(options)
    return cfg


@pytest.mark.parametrize('step', ['train_stock', 'train_oanet'])
def test_the_budget_lands_on_the_configs_schedule(step, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = merged_config(demo.plan(demo.parse_args([]))[step])
    assert cfg.train_cfg.max_iters == 400
    assert cfg.val_cfg is None and cfg.val_dataloader is None
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end) == ('LinearLR', 0, 40)
    assert (cosine.type, cosine.begin, cosine.end, cosine.T_max,
            cosine.eta_min) == ('CosineAnnealingLR', 40, 400, 360, 1e-5)
    assert cfg.randomness.seed == 0
    assert cfg.train_dataloader.dataset.data_root.rstrip('/') == \
        demo.DATA_ROOT


def test_srm_iters_land_on_the_srm_schedule(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = merged_config(
        demo.plan(demo.parse_args(['--srm-iters', '7']))['train_srm'])
    assert cfg.model.type == 'StandaloneSRM'
    assert cfg.train_cfg.max_iters == 7
    (cosine, ) = cfg.param_scheduler
    assert (cosine.end, cosine.T_max) == (7, 7)
    assert cfg.train_dataloader.dataset.data_root.rstrip('/') == \
        demo.DATA_ROOT
