"""Inference API, ``PanopticInferencer`` and ``tools/inference.py`` on a
random tiny OANet (CPU)."""
import importlib.util
import json
import logging
import os
import os.path as osp
import re
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.apis import DetInferencer
from mmengine.config import Config
from mmengine.registry import INFERENCERS

from mmoanet.apis import (InputError, PanopticInferencer,
                          UnknownCategoryIdsError, coco_categories,
                          inference_panoptic, init_model, panoptic_to_coco)
from mmoanet.apis.inference import _inference_pipeline
from mmoanet.datasets import (SYNTHETIC_OCCLUSION_METAINFO,
                              generate_synthetic_occlusion)
from mmoanet.evaluation.functional import load_panoptic_png

REPO = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir, osp.pardir))
CONFIG = osp.join(REPO, 'configs', 'oanet',
                  'oanet_r18_fpn_1200i_synthetic-occlusion.py')
TOOL = osp.join(REPO, 'tools', 'inference.py')
SIZE = 91
NUM_CLASSES = len(SYNTHETIC_OCCLUSION_METAINFO['classes'])
# Category ids of the synthetic set's JSON, in label order.
SYNTHETIC_CAT_IDS = [11, 12, 13, 14, 15, 16, 21, 22, 23, 24]
# The argument names of mmdet 3.3's demo/image_demo.py that apply to
# models without text prompts.
IMAGE_DEMO_ARGS = ('inputs', 'model', '--weights', '--out-dir', '--device',
                   '--pred-score-thr', '--batch-size', '--show',
                   '--no-save-vis', '--no-save-pred', '--print-result',
                   '--palette')


def _load_cli():
    spec = importlib.util.spec_from_file_location('mmoanet_inference_cli',
                                                  TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli = _load_cli()


@pytest.fixture(scope='module')
def workspace(tmp_path_factory) -> SimpleNamespace:
    """Two synthetic 91 px images and a checkpoint of a random model."""
    root = str(tmp_path_factory.mktemp('inference'))
    generate_synthetic_occlusion(
        root, num_train=0, num_val=2, size=SIZE, seed=5)
    # Point the config's test set at our JSON, so category ids come from it.
    cfg_options = {
        'model.test_cfg.rcnn.score_thr': 0.0,
        'test_dataloader.dataset.data_root': root + '/'
    }
    torch.manual_seed(0)
    model = init_model(CONFIG, cfg_options=cfg_options)
    checkpoint = osp.join(root, 'random.pth')
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(SYNTHETIC_OCCLUSION_METAINFO))),
        checkpoint)
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(cfg_options)
    cli_options = [
        '--pred-score-thr', '0', '--device', 'cpu', '--cfg-options',
        f'test_dataloader.dataset.data_root={root}/'
    ]
    return SimpleNamespace(
        root=root,
        images=osp.join(root, 'val'),
        checkpoint=checkpoint,
        model=model,
        cfg=cfg,
        cli_options=cli_options)


def _check_coco_outputs(out_dir: str,
                        names,
                        json_name='panoptic.json',
                        numeric_ids=True):
    """The COCO JSON lists the images; PNG ids, areas and boxes agree."""
    with open(osp.join(out_dir, json_name)) as f:
        coco = json.load(f)
    assert [image['file_name'] for image in coco['images']] == names
    image_ids = [image['id'] for image in coco['images']]
    assert [a['image_id'] for a in coco['annotations']] == image_ids
    if numeric_ids:  # numeric stems are the ids, as in COCO
        assert image_ids == [int(osp.splitext(name)[0]) for name in names]
    assert len(set(image_ids)) == len(image_ids)
    cat_ids = {category['id'] for category in coco['categories']}
    assert sorted(cat_ids) == SYNTHETIC_CAT_IDS
    assert 'panoptic_val.json' in coco['info']['category_ids']
    num_segments = 0
    for annotation in coco['annotations']:
        ids = load_panoptic_png(
            osp.join(out_dir, 'preds', annotation['file_name']))
        assert ids.shape == (SIZE, SIZE)
        segments = annotation['segments_info']
        listed = {segment['id'] for segment in segments}
        assert len(listed) == len(segments)
        assert set(np.unique(ids).tolist()) - {0} == listed
        for segment in segments:
            mask = ids == segment['id']
            assert segment['area'] == int(mask.sum())
            assert segment['category_id'] in cat_ids
            assert segment['iscrowd'] == 0
            x, y, w, h = segment['bbox']
            rows, cols = np.nonzero(mask)
            assert (x, y) == (cols.min(), rows.min())
            assert (w, h) == (cols.max() + 1 - x, rows.max() + 1 - y)
        num_segments += len(segments)
    # Stuff always covers something; random things come with score_thr 0.
    assert num_segments >= 2
    return coco


def test_inferencer_writes_coco_panoptic(workspace, tmp_path):
    """mmdet's DetInferencer interface on an OANet config: PNG + JSON with
    segments_info, both fusion orders, one picture per image."""
    assert INFERENCERS.get('PanopticInferencer') is PanopticInferencer
    inferencer = PanopticInferencer(
        model=workspace.cfg,
        weights=workspace.checkpoint,
        device='cpu',
        show_progress=False)
    assert isinstance(inferencer, DetInferencer)
    out_dir = str(tmp_path / 'out')
    results = inferencer(
        workspace.images, batch_size=2, out_dir=out_dir, no_save_pred=False)
    assert results['failures'] == []
    names = ['000000000001.jpg', '000000000002.jpg']
    coco = _check_coco_outputs(out_dir, names)
    for order in ('srm', 'score'):
        _check_coco_outputs(out_dir, names, f'panoptic_{order}.json')
    prediction = results['predictions'][0]
    assert prediction['segments_info'] == coco['annotations'][0][
        'segments_info']
    assert set(prediction['orders']) == {'srm', 'score'}
    assert len(prediction['rank_scores']) == len(prediction['scores'])
    with open(osp.join(out_dir, 'preds', '000000000001.json')) as f:
        per_image = json.load(f)
    assert per_image['segments_info'] == prediction['segments_info']
    assert osp.isfile(per_image['panoptic_seg_path'])
    assert {'labels', 'scores', 'bboxes', 'masks'} <= set(per_image)
    # The picture: score order | SRM order, with titles.
    picture = cv2.imread(osp.join(out_dir, 'vis', names[0]))
    assert picture.shape[1] == 2 * SIZE and picture.shape[0] > SIZE
    # Without out_dir nothing is written and the PNG comes back as an array.
    arrays = inferencer(
        cv2.imread(osp.join(workspace.images, names[0])),
        return_datasamples=False)
    png = arrays['predictions'][0]['panoptic_seg']
    assert png.shape == (SIZE, SIZE, 3) and png.dtype == np.uint8


def test_inferencer_skips_or_stops_at_unreadable_images(workspace, tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    for name in ('000000000001.jpg', '000000000002.jpg'):
        (folder / name).write_bytes(
            open(osp.join(workspace.images, name), 'rb').read())
    # Sorted between the two good ones.
    (folder / '000000000001b.jpg').write_bytes(b'not a jpeg')
    inferencer = PanopticInferencer(
        model=workspace.cfg,
        weights=workspace.checkpoint,
        device='cpu',
        show_progress=False)
    out_dir = str(tmp_path / 'skip')
    results = inferencer(
        str(folder), out_dir=out_dir, no_save_pred=False, on_error='skip')
    assert len(results['predictions']) == 2
    [(failed, message)] = results['failures']
    assert failed.endswith('000000000001b.jpg')
    assert '000000000001b.jpg' in message
    with open(osp.join(out_dir, 'panoptic.json')) as f:
        coco = json.load(f)
    assert len(coco['annotations']) == 2
    assert coco['info']['failed_inputs'] == [message]

    out_dir = str(tmp_path / 'stop')
    with pytest.raises(InputError, match='000000000001b.jpg'):
        inferencer(
            str(folder), out_dir=out_dir, no_save_pred=False, on_error='stop')
    # What was predicted before the bad image is in the JSON.
    with open(osp.join(out_dir, 'panoptic.json')) as f:
        coco = json.load(f)
    assert [image['file_name']
            for image in coco['images']] == ['000000000001.jpg']
    assert osp.isfile(
        osp.join(out_dir, 'preds', '000000000001_panoptic_seg.png'))
    with pytest.raises(ValueError, match='on_error'):
        inferencer(str(folder), on_error='ignore')


def test_cli_takes_image_demo_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(['--help'])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    for name in IMAGE_DEMO_ARGS + ('--on-error', '--cfg-options'):
        assert name in usage, name


def test_cli_folder_with_an_undecodable_image(workspace, tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    for name in ('000000000001.jpg', '000000000002.jpg'):
        (folder / name).write_bytes(
            open(osp.join(workspace.images, name), 'rb').read())
    (folder / '000000000001b.jpg').write_bytes(b'not a jpeg')
    out_dir = str(tmp_path / 'out')
    results = cli.main([
        str(folder), CONFIG, '--weights', workspace.checkpoint, '--out-dir',
        out_dir, '--batch-size', '2'
    ] + workspace.cli_options)
    assert len(results['failures']) == 1
    assert results['json_files'][0] == osp.join(out_dir, 'panoptic.json')
    _check_coco_outputs(
        out_dir, ['000000000001.jpg', '000000000002.jpg'], numeric_ids=False)
    # --on-error stop: the first image's results stay, with their JSON.
    out_dir = str(tmp_path / 'stop')
    results = cli.main([
        str(folder), CONFIG, '--weights', workspace.checkpoint, '--out-dir',
        out_dir, '--on-error', 'stop'
    ] + workspace.cli_options)
    assert results['predictions'] is None
    assert len(results['failures']) == 1
    with open(osp.join(out_dir, 'panoptic.json')) as f:
        assert len(json.load(f)['annotations']) == 1
    # As a command (one run, as a user would): exit status 1 when an image
    # failed; 0 otherwise, i.e. when main() lists no failure.
    argv = [
        str(folder), CONFIG, '--weights', workspace.checkpoint, '--out-dir',
        str(tmp_path / 'command'), '--no-save-vis'
    ] + workspace.cli_options
    env = dict(os.environ, OMP_NUM_THREADS='1')
    failed = subprocess.run(
        [sys.executable, TOOL] + argv,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True)
    assert failed.returncode == 1, failed.stderr
    assert '000000000001b.jpg' in failed.stdout + failed.stderr
    os.remove(folder / '000000000001b.jpg')
    # The same --out-dir again: refused without --force (issue 18).
    with pytest.raises(SystemExit):
        cli.main(argv)
    results = cli.main(argv + ['--force'])
    assert results['failures'] == []
    assert len(results['predictions']) == 2


def test_cli_bad_arguments(workspace, tmp_path, capsys):
    image = osp.join(workspace.images, '000000000001.jpg')
    cases = [
        ([str(tmp_path / 'nowhere.jpg'), CONFIG], 'nowhere.jpg'),
        ([image, str(tmp_path / 'absent.py')], 'absent.py'),
        ([image, CONFIG, '--weights',
          str(tmp_path / 'absent.pth')], 'absent.pth'),
        ([image, CONFIG, '--batch-size', '0'], '--batch-size'),
    ]
    for argv, expected in cases:
        with pytest.raises(SystemExit) as exit_info:
            cli.parse_args(argv)
        assert exit_info.value.code == 2
        assert expected in capsys.readouterr().err
    other_config = tmp_path / 'mask_rcnn.py'
    other_config.write_text("model = dict(type='MaskRCNN')\n")
    with pytest.raises(ValueError, match='needs an SRMFusionHead'):
        cli.main([image, str(other_config), '--compare-orders'])


def test_inference_strips_annotation_loading(workspace):
    pipeline_types = [
        type(transform).__name__ for transform in _inference_pipeline(
            workspace.model.cfg, False).transforms
    ]
    assert pipeline_types[0] == 'LoadImageFromFile'
    assert 'LoadPanopticInstanceAnnotations' not in pipeline_types
    image_file = osp.join(workspace.images, '000000000001.jpg')
    samples = inference_panoptic(workspace.model, [image_file])
    assert len(samples) == 1
    pan = samples[0].pred_panoptic_seg.sem_seg
    assert pan.shape == (1, SIZE, SIZE)
    # Every label is a class or VOID (label NUM_CLASSES).
    assert int((pan % 1000).max()) <= NUM_CLASSES
    from_array = inference_panoptic(workspace.model, cv2.imread(image_file))
    assert torch.equal(from_array.pred_panoptic_seg.sem_seg, pan)


def test_panoptic_to_coco_by_hand():
    void, sky, table = NUM_CLASSES, 6, 0
    pan = np.array([[sky, sky, void, 1000 + table],
                    [sky, table, table, 1000 + table],
                    [2000 + 4, 2000 + 4, void, void]])
    label2cat = dict(enumerate(SYNTHETIC_CAT_IDS))
    png, segments = panoptic_to_coco(pan, label2cat, NUM_CLASSES)
    ids = png[..., 0].astype(int) + 256 * png[..., 1] + 65536 * png[..., 2]
    # Label 0 instance 0 would be id 0 (VOID): it gets a fresh id (2005).
    assert ids.tolist() == [[6, 6, 0, 1000], [6, 2005, 2005, 1000],
                            [2004, 2004, 0, 0]]
    assert segments == [
        dict(id=6, category_id=21, area=3, bbox=[0, 0, 2, 2], iscrowd=0),
        dict(id=1000, category_id=11, area=2, bbox=[3, 0, 1, 2], iscrowd=0),
        dict(id=2004, category_id=15, area=2, bbox=[0, 2, 2, 1], iscrowd=0),
        dict(id=2005, category_id=11, area=2, bbox=[1, 1, 2, 1], iscrowd=0),
    ]


def test_category_ids_are_never_guessed(tmp_path):
    # Issue 18: without cat_ids and without the annotation file, label + 1
    # was written, and panopticapi then failed on the JSON.
    model = SimpleNamespace(dataset_meta=dict(SYNTHETIC_OCCLUSION_METAINFO))
    model.dataset_meta['ann_file'] = str(tmp_path / 'moved' / 'pan.json')
    with pytest.raises(
            UnknownCategoryIdsError,
            match=r"category ids of the labels are unknown: the checkpoint's "
            r'dataset_meta has no cat_ids .* and the annotation file '
            r'.*moved/pan\.json is not on disk\. Pass the annotation file '
            r'of the training set \(tools/inference\.py --ann-file'):
        coco_categories(model)
    label2cat, categories, _ = coco_categories(model, strict=False)
    assert set(label2cat.values()) == {None}
    assert [c['isthing'] for c in categories] == [1] * 6 + [0] * 4
    assert categories[6]['color'] == [150, 200, 240]
    # An explicit annotation file gives them, by class name.
    ann_file = tmp_path / 'categories.json'
    ann_file.write_text(
        json.dumps(
            dict(categories=[
                dict(id=cat_id, name=name) for cat_id, name in zip(
                    SYNTHETIC_CAT_IDS, SYNTHETIC_OCCLUSION_METAINFO['classes'])
            ])))
    label2cat, _, source = coco_categories(model, ann_file=str(ann_file))
    assert [label2cat[label]
            for label in range(NUM_CLASSES)] == SYNTHETIC_CAT_IDS
    assert 'categories.json' in source
    # A file without every class is refused, naming the missing ones.
    ann_file.write_text(json.dumps(dict(categories=[dict(id=1, name='x')])))
    with pytest.raises(UnknownCategoryIdsError, match=r'lack the classes'):
        coco_categories(model, ann_file=str(ann_file))
    # A checkpoint's cat_ids win.
    model.dataset_meta['cat_ids'] = SYNTHETIC_CAT_IDS
    assert coco_categories(model)[0][9] == 24


def test_inferencer_refuses_to_write_unknown_category_ids(workspace, tmp_path):
    moved = workspace.cfg.copy()
    moved.merge_from_dict(
        {'test_dataloader.dataset.data_root': str(tmp_path / 'moved') + '/'})
    inferencer = PanopticInferencer(
        model=moved,
        weights=workspace.checkpoint,
        device='cpu',
        show_progress=False)
    out_dir = tmp_path / 'out'
    with pytest.raises(
            UnknownCategoryIdsError,
            match=r'random\.pth: the COCO category ids of the labels are '
            r'unknown.*--no-save-pred'):
        inferencer(workspace.images, out_dir=str(out_dir), no_save_pred=False)
    assert not out_dir.exists()  # refused before predicting anything
    # Pictures only: no COCO file, so no id is needed.
    results = inferencer(workspace.images, out_dir=str(out_dir))
    assert len(results['predictions']) == 2
    assert not (out_dir / 'panoptic.json').exists()
    # With the annotation file named, the ids are right.
    inferencer = PanopticInferencer(
        model=moved,
        weights=workspace.checkpoint,
        device='cpu',
        show_progress=False,
        ann_file=osp.join(workspace.root, 'annotations', 'panoptic_val.json'))
    inferencer(workspace.images, out_dir=str(out_dir), no_save_pred=False)
    with open(out_dir / 'panoptic.json') as f:
        cat_ids = sorted(c['id'] for c in json.load(f)['categories'])
    assert cat_ids == SYNTHETIC_CAT_IDS


def test_panoptic_json_is_written_atomically(workspace, tmp_path, monkeypatch):
    inferencer = PanopticInferencer(
        model=workspace.cfg,
        weights=workspace.checkpoint,
        device='cpu',
        show_progress=False)
    out_dir = tmp_path / 'out'
    image = osp.join(workspace.images, '000000000001.jpg')
    inferencer(image, out_dir=str(out_dir), no_save_pred=False)
    before = (out_dir / 'panoptic.json').read_bytes()
    real_dump = json.dump

    def full_disk(obj, f, **kwargs):
        if 'categories' in obj:  # the COCO JSON, not a per-image file
            f.write('{"info": ')  # part of it reaches the disk
            raise OSError(28, 'No space left on device')
        return real_dump(obj, f, **kwargs)

    monkeypatch.setattr('mmoanet.apis.panoptic_inferencer.json.dump',
                        full_disk)
    with pytest.raises(OSError, match='No space left'):
        inferencer(workspace.images, out_dir=str(out_dir), no_save_pred=False)
    # The earlier file is intact and no temporary file is left.
    assert (out_dir / 'panoptic.json').read_bytes() == before
    assert json.loads(before)['images'][0]['file_name'] == '000000000001.jpg'
    assert not [p for p in os.listdir(out_dir) if p.endswith('.tmp')]
    # In a fresh folder the failed write leaves nothing, never 0 bytes.
    fresh = tmp_path / 'fresh'
    with pytest.raises(OSError, match='No space left'):
        inferencer(image, out_dir=str(fresh), no_save_pred=False)
    assert not (fresh / 'panoptic.json').exists()


def test_checkpoint_without_meta(workspace, tmp_path):
    bare = str(tmp_path / 'bare.pth')
    torch.save(dict(state_dict=workspace.model.state_dict()), bare)
    model = init_model(CONFIG, bare)
    # Class names of the config's dataset, not COCO's 80.
    assert model.dataset_meta['classes'] == tuple(
        SYNTHETIC_OCCLUSION_METAINFO['classes'])
    for weight in model.state_dict():
        assert torch.equal(model.state_dict()[weight],
                           workspace.model.state_dict()[weight])
    inferencer = PanopticInferencer(
        model=workspace.cfg, weights=bare, device='cpu')
    assert inferencer.model.dataset_meta['classes'] == tuple(
        SYNTHETIC_OCCLUSION_METAINFO['classes'])
    assert [
        list(color) for color in inferencer.model.dataset_meta['palette']
    ] == [list(color) for color in SYNTHETIC_OCCLUSION_METAINFO['palette']]
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        init_model(CONFIG, str(tmp_path / 'absent.pth'))
    # A checkpoint of another model is refused, naming file and tensor.
    state = dict(workspace.model.state_dict())
    state['panoptic_fusion_head.srm.left_kx1.weight'] = torch.zeros(6, 6, 1, 1)
    other = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=state), other)
    with pytest.raises(Exception, match='other.pth.*srm.left_kx1'):
        PanopticInferencer(model=workspace.cfg, weights=other, device='cpu')


# ---------------------------------------------------- issue 17 item 7, 18


def test_cli_takes_a_model_index_name(workspace, tmp_path):
    """As mmdet's image_demo.py: a metafile model name instead of a config
    file, resolved through model-index.yml."""
    image = osp.join(workspace.images, '000000000001.jpg')
    out_dir = str(tmp_path / 'by_name')
    results = cli.main([
        image, 'oanet_r18_fpn_1200i_synthetic-occlusion', '--weights',
        workspace.checkpoint, '--out-dir', out_dir, '--no-save-vis'
    ] + workspace.cli_options)
    assert results['failures'] == []
    _check_coco_outputs(out_dir, ['000000000001.jpg'])
    args = cli.parse_args([
        image, 'OANet_R18_FPN_1200I_Synthetic-Occlusion', '--weights',
        workspace.checkpoint
    ])
    assert args.config == CONFIG


@pytest.mark.parametrize(
    'argv,message', [
        (['{image}', 'oanet_r50_fpn'], r"model: oanet_r50_fpn is neither a "
         r"file nor a model name of mmoanet's model index .*did you mean "
         r'oanet_r50_fpn_100k_coco-panoptic'),
        (['{image}', 'oanet_r50_fpn_100k_coco-panoptic'
          ], r'publishes no checkpoint for it; pass the one you trained with '
         r'--weights'),
        (['{image}', '{config}', '--pred-score-thr', '5'],
         r'--pred-score-thr must be in \[0, 1\] \(a detection score\), got '
         r'5\.0'),
        (['{image}', '{config}', '--pred-score-thr', '-0.1'
          ], r'--pred-score-thr must be in \[0, 1\]'),
        (['{empty}', '{config}'], r'inputs: the folder .*empty holds no '
         r'image \(files ending in \.jpg'),
        (['{image}', '{config}', '--out-dir', '{used}'
          ], r'--out-dir .*used is not empty; pass --force'),
        (['{image}', '{config}', '--out-dir', '{image}'
          ], r'--out-dir .*000000000001\.jpg is a file, not a folder'),
        (['{image}', '{config}', '--ann-file', '{empty}/x.json'
          ], r'--ann-file .*x\.json not found'),
    ],
    ids=[
        'unknown-name', 'name-without-weights', 'thr-5', 'thr-negative',
        'empty-folder', 'out-dir-used', 'out-dir-file', 'ann-file-missing'
    ])
def test_cli_refuses_meaningless_input(workspace, tmp_path, capsys, argv,
                                       message):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('not an image')
    (tmp_path / 'used').mkdir()
    (tmp_path / 'used' / 'panoptic.json').write_text('{}')
    values = dict(
        image=osp.join(workspace.images, '000000000001.jpg'),
        config=CONFIG,
        empty=str(tmp_path / 'empty'),
        used=str(tmp_path / 'used'))
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args([arg.format(**values) for arg in argv])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert (tmp_path / 'used' / 'panoptic.json').read_text() == '{}'


def test_cli_warns_when_the_threshold_drops_every_instance(
        workspace, tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(
        cli,
        'print_log',
        lambda message, logger=None, level=None: logged.append(
            (message, level)))
    results = cli.main([
        workspace.images, CONFIG, '--weights', workspace.checkpoint,
        '--out-dir',
        str(tmp_path / 'out'), '--no-save-vis', '--pred-score-thr', '1'
    ] + workspace.cli_options[2:])
    assert len(results['predictions']) == 2
    assert all(not p['labels'] for p in results['predictions'])
    message = ('no instance scored at least 1.0 in any of the 2 image(s): '
               'every pixel is stuff or VOID')
    assert results['warnings'][0].startswith(message)
    assert (results['warnings'][0], logging.WARNING) in logged
    # With instances kept, no such warning.
    results = cli.main([
        workspace.images, CONFIG, '--weights', workspace.checkpoint,
        '--out-dir',
        str(tmp_path / 'kept'), '--no-save-vis'
    ] + workspace.cli_options)
    assert 'warnings' not in results


def test_cli_full_disk_keeps_the_earlier_panoptic_json(workspace, tmp_path,
                                                       monkeypatch):
    out_dir = tmp_path / 'out'
    argv = [
        workspace.images, CONFIG, '--weights', workspace.checkpoint,
        '--out-dir',
        str(out_dir), '--no-save-vis'
    ] + workspace.cli_options
    cli.main(argv)
    before = (out_dir / 'panoptic.json').read_bytes()
    real_dump = json.dump

    def full_disk(obj, f, **kwargs):
        if 'categories' in obj:
            f.write('{"info": ')
            raise OSError(28, 'No space left on device')
        return real_dump(obj, f, **kwargs)

    monkeypatch.setattr('mmoanet.apis.panoptic_inferencer.json.dump',
                        full_disk)
    with pytest.raises(OSError, match='No space left on device'):
        cli.main(argv + ['--force'])
    assert (out_dir / 'panoptic.json').read_bytes() == before
    assert len(json.loads(before)['annotations']) == 2


def test_an_srm_config_is_refused_with_the_way_to_merge():
    """configs/srm/ trains the SRM alone: inference names the merge tool
    instead of failing inside the dataset look-up."""
    config = osp.join(REPO, 'configs', 'srm',
                      'srm_1x7-7x1_1200i_synthetic-occlusion.py')
    with pytest.raises(ValueError, match='add_srm_to_panoptic_fpn'):
        init_model(config)
