"""projects/oanet_studies/head_to_head.py without training: variants, run
configs, the results file, skipping, timing and the table."""
import contextlib
import copy
import io
import json
import os
import os.path as osp
import re

import pytest
from mmengine.config import Config

import mmoanet.apis
from tests.utils import COMMIT_PATTERN, REPO_ROOT, load_script

CONFIGS = osp.join(REPO_ROOT, 'configs')
# Config.fromfile of this process, whatever a test patches.
PARSE = Config.fromfile
# The repository's configs as parsed once in this module, by file state.
_parsed_configs = {}


@pytest.fixture(scope='module')
def h2h():
    return load_script('projects/oanet_studies/head_to_head.py')


@pytest.fixture(autouse=True)
def parse_repository_configs_once(monkeypatch):
    """A study reads the same two or three configs of configs/ some twenty
    times (digests, run configs, the plan), a quarter of a second each; here
    each is parsed once and every read gets a deep copy. The files do not
    change during the tests (the key holds their size and mtime); other
    files, the run configs the tool writes, are parsed every time."""

    def fromfile(filename, *args, **kwargs):
        path = osp.abspath(str(filename))
        if not path.startswith(CONFIGS + os.sep):
            return PARSE(filename, *args, **kwargs)
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size, args,
               tuple(sorted(kwargs.items())))
        if key not in _parsed_configs:
            _parsed_configs[key] = PARSE(filename, *args, **kwargs)
        return copy.deepcopy(_parsed_configs[key])

    monkeypatch.setattr(Config, 'fromfile', staticmethod(fromfile))


def test_options_and_variant_specs(h2h):
    options = h2h.split_options('a.b=1,c=[1,2],d=x')
    assert options == {'a.b': 1, 'c': [1, 2], 'd': 'x'}
    name, spec = h2h.parse_variant('wide=configs/x.py:model.w=64')
    assert name == 'wide' and spec == dict(
        config='configs/x.py', train_options={'model.w': 64})
    name, spec = h2h.parse_variant('ovl=@oanet:model.test_cfg.t=0.3')
    assert spec == dict(reuse='oanet', test_options={'model.test_cfg.t': 0.3})
    assert h2h.option_list({
        'a': [1, 2],
        'b': {
            'c': 'x',
            'd': {
                'e': 0.5
            }
        }
    }) == ['a=[1,2]', 'b.c=x', 'b.d.e=0.5']
    with pytest.raises(ValueError, match='key=value'):
        h2h.split_options('novalue')
    with pytest.raises(ValueError, match='NAME='):
        h2h.parse_variant('just-a-name')


def test_resolve_variants(h2h):
    variants = h2h.resolve_variants(h2h.DEFAULT_VARIANTS, {})
    assert variants['oanet-score']['config'] == variants['oanet']['config']
    assert variants['oanet-score']['train_name'] == 'oanet'
    assert variants['oanet-score']['digest'] != variants['oanet']['digest']
    assert variants['pfpn-stock']['train_name'] == 'pfpn-stock'
    # The config digest follows the merged config's content and options.
    wide = h2h.resolve_variants(
        ['w'], {'w': dict(config=h2h.TINY_OANET, train_options={'a': 1})})
    assert wide['w']['config_digest'] != variants['oanet']['config_digest']
    assert variants['oanet-score']['config_digest'] == \
        variants['oanet']['config_digest']
    with pytest.raises(KeyError, match='unknown variant'):
        h2h.resolve_variants(['nope'], {})
    with pytest.raises(ValueError, match='not a variant that trains'):
        h2h.resolve_variants(['b'], {
            'a': dict(reuse='oanet'),
            'b': dict(reuse='a')
        })
    with pytest.raises(FileNotFoundError, match='missing.py'):
        h2h.resolve_variants(['m'], {'m': dict(config='missing.py')})


@pytest.mark.parametrize('name,style', [('oanet', 'amodal'),
                                        ('oanet', 'panoptic'),
                                        ('pfpn-stock', 'coco')])
def test_run_config(h2h, tmp_path, name, style):
    variant = h2h.resolve_variants([name], {})[name]
    path = str(tmp_path / 'run.py')
    info = h2h.write_run_config(path, variant, 'data/x', style, 40, 3)
    cfg = Config.fromfile(path)
    root = osp.join(h2h.REPO_ROOT, 'data/x') + '/'
    assert cfg.train_dataloader.dataset.data_root == root
    assert cfg.test_dataloader.dataset.data_root == root
    assert cfg.val_dataloader is None and cfg.val_cfg is None
    assert cfg.train_cfg.max_iters == 40 and cfg.randomness.seed == 3
    assert cfg.param_scheduler[0].end == 4
    assert cfg.param_scheduler[1].end == 40
    types = [metric.type for metric in cfg.test_evaluator]
    assert types[:3] == [
        'MultiOrderPanopticMetric', 'PanopticOcclusionMetric',
        'PanopticErrorMetric'
    ]
    orders = name == 'oanet' and style != 'panoptic'
    assert ('OcclusionOrderMetric' in types) == orders
    dataset = cfg.train_dataloader.dataset
    if name == 'oanet':
        assert info['fusion_head'] == 'SRMFusionHead'
        expected = 'panoptic' if style == 'panoptic' else 'instances'
        assert dataset.instance_source == expected
        assert (dataset.ins_ann_file is None) == (style == 'panoptic')
    else:  # stock: masks from the PNG whatever the style
        assert dataset.type == 'CocoPanopticDataset'
        assert 'ins_ann_file' not in dataset
        assert info['fusion_head'] == 'HeuristicFusionHead'


def record(h2h, variant='oanet', seed=0, pq=50.0, **extra):
    base = dict(
        variant=variant,
        variant_digest='d',
        style='amodal',
        scene='default',
        scene_digest='s',
        seed=seed,
        max_iters=20,
        data_size=64,
        num_train=2,
        num_val=1,
        data_seed=0,
        metrics={'coco_panoptic/PQ': pq},
        train_s_per_iter=1.0,
        infer_s_per_img=0.5)
    base.update(extra)
    return base


def test_results_file_and_table(h2h, tmp_path):
    path = str(tmp_path / 'results' / 'r.jsonl')
    assert h2h.load_results(path) == []
    h2h.append_result(path, record(h2h, seed=0, pq=11.0))
    h2h.append_result(path, record(h2h, seed=1, pq=13.0))
    with open(path, 'a') as f:
        f.write('{"variant": "cut by a kill')  # no newline, not JSON
    records = h2h.load_results(path)
    assert [r['seed'] for r in records] == [0, 1]
    assert h2h.run_key(records[0]) == h2h.run_key(record(h2h, seed=0))
    assert h2h.run_key(records[0]) != h2h.run_key(record(h2h, seed=1))
    table = h2h.tables(records)
    row = next(line for line in table.splitlines() if '| oanet |' in line)
    assert row.startswith('| oanet | 2 | 12.0 ± 1.4 |')
    assert '1.000 ± 0.000' in row
    assert '| - |' in row  # a metric the records lack
    # How many of the row's records ran from a clean commit.
    assert row.endswith('| 0/2 |')
    clean = [dict(r, git_dirty=False) for r in records]
    clean_row = next(
        line for line in h2h.tables(clean).splitlines() if '| oanet |' in line)
    assert clean_row.endswith('| 2/2 |')
    srm = record(h2h, metrics={'occlusion/srm_acc': 90.0})
    score = record(
        h2h,
        metrics={'occlusion/score_acc': 60.0},
        test_options=['model.panoptic_fusion_head.rank_by=score'])
    # Paired against the baseline, seed by seed; a changed definition
    # gets a row of its own.
    records += [
        record(h2h, 'pfpn-stock', seed=0, pq=10.0, train_s_per_iter=0.5),
        record(h2h, 'pfpn-stock', seed=1, pq=10.0, train_s_per_iter=0.5),
        record(h2h, seed=2, pq=30.0, variant_digest='e')
    ]
    compared = h2h.comparison(records, 'pfpn-stock')
    row = next(line for line in compared.splitlines()
               if line.startswith('| oanet@d |'))
    assert row.startswith('| oanet@d | 2 | +2.00 ± 1.41 | - | - | '
                          '2.00 ± 0.00 |')
    assert '| oanet@e | 0 |' in compared
    table = h2h.tables(records)
    assert table.index('| pfpn-stock |') < table.index('| oanet@d |')
    assert h2h.value_of(srm, 'rank_order_acc') == 90.0
    assert h2h.value_of(score, 'rank_order_acc') == 60.0


def test_training_time_skips_warmup(h2h, tmp_path):
    vis = tmp_path / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    with open(vis / 'scalars.json', 'w') as f:
        for step, seconds in ((2, 9.0), (4, 1.0), (6, 3.0)):
            f.write(json.dumps(dict(step=step, time=seconds, loss=1.0)) + '\n')
        f.write(json.dumps(dict(step=6, coco_panoptic_PQ=3.0)) + '\n')
    assert h2h.training_seconds_per_iter(str(tmp_path), 2) == 2.0
    with pytest.raises(RuntimeError, match='no training time'):
        h2h.training_seconds_per_iter(str(tmp_path / 'none'), 2)


def test_study_trains_once_per_model_and_skips_finished(
        h2h, tmp_path, monkeypatch):
    trained, evaluated = [], []

    def fake_train(args, variant, run_dir, run_config, info):
        trained.append((variant['config'], run_dir))
        assert osp.isfile(run_config)
        return osp.join(run_dir, 'iter_2.pth'), dict(
            train_s_per_iter=0.5, train_wall_s=1.0, train_command='train')

    def fake_evaluate(args, name, variant, run_dir, config, checkpoint, style):
        evaluated.append((name, checkpoint))
        return dict(
            metrics={'coco_panoptic/PQ': 40.0 + len(evaluated)},
            infer_s_per_img=0.1,
            num_test_images=1)

    monkeypatch.setattr(h2h, 'train', fake_train)
    monkeypatch.setattr(h2h, 'evaluate', fake_evaluate)
    results = tmp_path / 'results.jsonl'
    argv = [
        '--styles', 'panoptic', '--max-iters', '2', '--num-train', '2',
        '--num-val', '1', '--data-size', '64', '--seeds', '0', '--results',
        str(results), '--work-dir',
        str(tmp_path / 'work'), '--data-dir',
        str(tmp_path / 'data'), '--scene', 'apart=overlap_image_share=0.0'
    ]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert h2h.main(argv) == 0
    assert len(trained) == 2  # pfpn-stock and oanet; oanet-score reuses
    checkpoints = dict(evaluated)
    assert checkpoints['oanet-score'] == checkpoints['oanet']
    records = h2h.load_results(str(results))
    assert sorted(r['variant']
                  for r in records) == sorted(h2h.DEFAULT_VARIANTS)
    for r in records:
        assert r['scene'] == 'apart' and r['style'] == 'panoptic'
        assert r['scene_settings'] == {'overlap_image_share': 0.0}
        assert r['git_commit'] and r['date'] and r['command']
        # Runnable from any checkout: no path of this one, the commit and
        # whether the tree was clean.
        assert re.fullmatch(COMMIT_PATTERN, r['git_commit'])
        assert isinstance(r['git_dirty'], bool)
        assert r['command'].startswith('python ')
        assert REPO_ROOT not in json.dumps(r)
    data_root = tmp_path / 'data' / 'panoptic_apart_64px_2-1_seed0'
    assert not (data_root / 'annotations' / 'instances_train.json').exists()
    assert '| oanet-score | 1 |' in printed.getvalue()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert h2h.main(argv + ['--dry-run', '--seeds', '0', '1']) == 0
    plan = printed.getvalue()
    assert 'panoptic/apart seed 0 oanet: done' in plan
    assert 'panoptic/apart seed 1 oanet: train + evaluate; evaluations: ' \
        'oanet, oanet-score' in plan
    assert '2 trainings of 2 iterations to run' in plan
    # A rerun finds every run in the results file and trains nothing.
    with contextlib.redirect_stdout(io.StringIO()):
        assert h2h.main(argv) == 0
    assert len(trained) == 2 and len(evaluated) == 3
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        h2h.main(['--table-only', '--results', str(results)])
    assert 'where PQ is lost' in printed.getvalue()


def test_failed_training_is_reported_and_others_go_on(h2h, tmp_path,
                                                      monkeypatch):

    def failing_train(args, variant, run_dir, run_config, info):
        if 'panoptic_fpn/' in variant['config']:
            raise RuntimeError('exit 1')
        return 'ckpt', dict(
            train_s_per_iter=0.5, train_wall_s=1.0, train_command='train')

    monkeypatch.setattr(h2h, 'train', failing_train)
    monkeypatch.setattr(
        h2h, 'evaluate',
        lambda *a: dict(metrics={}, infer_s_per_img=0.1, num_test_images=1))
    results = tmp_path / 'results.jsonl'
    with contextlib.redirect_stdout(io.StringIO()):
        code = h2h.main([
            '--max-iters', '2', '--num-train', '2', '--num-val', '1',
            '--data-size', '64', '--results',
            str(results), '--work-dir',
            str(tmp_path / 'work'), '--data-dir',
            str(tmp_path / 'data')
        ])
    assert code == 1
    assert sorted(r['variant'] for r in h2h.load_results(str(results))) == [
        'oanet', 'oanet-score'
    ]


def test_png_only_models_train_once_for_all_styles(h2h, tmp_path, monkeypatch):
    trained, evaluated = [], []

    def fake_train(args, variant, run_dir, run_config, info):
        trained.append(run_dir)
        return run_dir + '/iter_2.pth', dict(
            train_s_per_iter=0.5, train_wall_s=1.0, train_command='train')

    def fake_evaluate(args, name, variant, run_dir, config, checkpoint, style):
        evaluated.append((name, style, checkpoint))
        with h2h._config_lock:  # threads under --jobs 2
            cfg = Config.fromfile(config)
        assert style in cfg.test_dataloader.dataset.data_root
        return dict(metrics={}, infer_s_per_img=0.1, num_test_images=1)

    monkeypatch.setattr(h2h, 'train', fake_train)
    monkeypatch.setattr(h2h, 'evaluate', fake_evaluate)
    with contextlib.redirect_stdout(io.StringIO()):
        assert h2h.main([
            '--jobs', '2', '--styles', 'amodal', 'coco', '--variants',
            'pfpn-stock', 'oanet', '--max-iters', '2', '--num-train', '2',
            '--num-val', '1', '--data-size', '64', '--results',
            str(tmp_path / 'r.jsonl'), '--work-dir',
            str(tmp_path / 'work'), '--data-dir',
            str(tmp_path / 'data')
        ]) == 0
    # pfpn-stock never reads the instances file: one training, two
    # evaluations; oanet trains per style.
    pfpn = [d for d in trained if 'pfpn-stock' in d]
    assert len(pfpn) == 2 and pfpn[0] == pfpn[1] and 'png-masks' in pfpn[0]
    assert len({d for d in trained if 'oanet' in d}) == 2
    assert sorted(
        (n, s) for n, s, _ in evaluated) == [('oanet', 'amodal'),
                                             ('oanet', 'coco'),
                                             ('pfpn-stock', 'amodal'),
                                             ('pfpn-stock', 'coco')]


def test_an_edited_config_is_a_new_run(h2h, tmp_path):
    run_dir = str(tmp_path / 'run')
    assert h2h.current_run_dir(run_dir, 'aaa') == run_dir
    assert h2h.current_run_dir(run_dir, 'aaa') == run_dir
    assert h2h.current_run_dir(run_dir, 'bbb') == run_dir + '-cfgbbb'
    old, new = record(h2h), record(h2h, config_digest='bbb')
    done = h2h.finished_runs([new])
    assert h2h.is_done(done, old, 'bbb')
    assert not h2h.is_done(done, old, 'ccc')
    # A record without a digest (older results) matches any content.
    assert h2h.is_done(h2h.finished_runs([old]), old, 'ccc')
    # Results of two contents of one variant are two rows.
    rows = h2h.group_records([
        record(h2h, config_digest='bbb'),
        record(h2h, seed=1, config_digest='ccc'),
        record(h2h, 'pfpn-stock')
    ])
    labels = list(next(iter(rows.values())))
    assert labels == ['pfpn-stock', 'oanet@d/bbb', 'oanet@d/ccc']


def test_evaluation_builds_the_model_the_variant_trained(
        h2h, tmp_path, monkeypatch):
    # A variant that widens a head must be evaluated with the wider head,
    # or its checkpoint does not load; test options come last and win.
    name, variant = h2h.parse_variant(
        'wide=configs/x.py:model.semantic_head.feat_channels=128,'
        'model.w=1')
    variant.update(test_options={'model.w': 2}, digest='d', reuse=None)
    children = []

    def fake_child(command, log_file, cwd):
        children.append(command)
        with open(tmp_path / 'eval_wide_amodal_spec.json') as f:
            spec = json.load(f)
        with open(spec['out'], 'w') as f:
            json.dump(dict(metrics={}, cfg_options=spec['cfg_options']), f)

    monkeypatch.setattr(mmoanet.apis, 'run_command', fake_child)

    class Args:
        warmup_images = 0

    result = h2h.evaluate(Args, name, variant, str(tmp_path), 'run.py',
                          'ckpt.pth', 'amodal')
    assert len(children) == 1
    assert result['cfg_options'] == [
        'model.semantic_head.feat_channels=128', 'model.w=1', 'model.w=2'
    ]


def test_evaluate_one_keeps_stock_detections_and_times_inference(
        h2h, tmp_path):
    """The child process of an evaluation, run here: the package's test
    Runner on a (random) stock PanopticFPN, its detections kept for the
    error metric (mmdet drops them after fusion), test_step timed."""
    import torch
    from mmdet.registry import MODELS

    from mmoanet.datasets import generate_synthetic_occlusion
    root = str(tmp_path / 'data')
    generate_synthetic_occlusion(root, num_train=1, num_val=2, size=48, seed=1)
    variant = h2h.resolve_variants(['pfpn-stock'], {})['pfpn-stock']
    config = str(tmp_path / 'run.py')
    h2h.write_run_config(config, variant, root, 'amodal', 2, 0)
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    checkpoint = str(tmp_path / 'iter_2.pth')
    torch.save(
        dict(state_dict=MODELS.build(cfg.model).state_dict()), checkpoint)
    out = str(tmp_path / 'eval.json')
    spec = tmp_path / 'spec.json'
    spec.write_text(
        json.dumps(
            dict(
                config=config,
                checkpoint=checkpoint,
                work_dir=str(tmp_path / 'test'),
                cfg_options=[
                    'model.test_cfg.rcnn.score_thr=0.0',
                    'test_dataloader.num_workers=0',
                    'test_dataloader.persistent_workers=False'
                ],
                warmup_images=1,
                out=out)))
    h2h.evaluate_one(str(spec))
    with open(out) as f:
        result = json.load(f)
    assert result['num_test_images'] == 2
    assert result['infer_s_per_img'] > 0
    # Only with the detections kept does the error metric tell missed
    # things from buried ones.
    assert 'panoptic_errors/missed' in result['metrics']
    assert 'coco_panoptic/PQ' in result['metrics']
