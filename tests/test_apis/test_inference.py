"""Inference API and ``tools/inference.py`` on a random tiny OANet (CPU)."""
import importlib.util
import json
import os
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from mmoanet.apis import (coco_categories, inference_panoptic, init_model,
                          panoptic_to_coco)
from mmoanet.apis.inference import _inference_pipeline
from mmoanet.datasets import (SYNTHETIC_OCCLUSION_METAINFO,
                              generate_synthetic_occlusion)
from mmoanet.evaluation.functional import load_panoptic_png
from mmoanet.visualization import draw_order_comparison, draw_panoptic_overlay
from mmoanet.visualization.panoptic_overlay import _align_instance_ids

REPO = osp.join(osp.dirname(__file__), osp.pardir, osp.pardir)
CONFIG = osp.join(REPO, 'configs', 'oanet',
                  'oanet_r18_fpn_tiny_synthetic-occlusion.py')
SIZE = 91
NUM_CLASSES = len(SYNTHETIC_OCCLUSION_METAINFO['classes'])
# Category ids of the synthetic set's JSON, in label order.
SYNTHETIC_CAT_IDS = [11, 12, 13, 14, 15, 16, 21, 22, 23, 24]


def _load_cli():
    spec = importlib.util.spec_from_file_location(
        'mmoanet_inference_cli', osp.join(REPO, 'tools', 'inference.py'))
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
    cli_options = [
        '--score-thr', '0', '--cfg-options',
        f'test_dataloader.dataset.data_root={root}/'
    ]
    return SimpleNamespace(
        root=root,
        images=osp.join(root, 'val'),
        checkpoint=checkpoint,
        model=model,
        cli_options=cli_options)


def _check_outputs(result: dict, out_dir: str, overlay_width: int) -> None:
    """PNG ids, areas and boxes agree with the JSON; overlays exist."""
    assert [image['file_name'] for image in result['images']
            ] == ['000000000001.jpg', '000000000002.jpg']
    assert [image['id'] for image in result['images']] == [1, 2]
    cat_ids = {category['id'] for category in result['categories']}
    assert sorted(cat_ids) == SYNTHETIC_CAT_IDS
    with open(osp.join(out_dir, 'panoptic.json')) as f:
        assert json.load(f) == result
    num_segments = 0
    for annotation in result['annotations']:
        ids = load_panoptic_png(
            osp.join(out_dir, 'panoptic', annotation['file_name']))
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
        stem = osp.splitext(annotation['file_name'])[0]
        overlay = cv2.imread(osp.join(out_dir, 'vis', stem + '.jpg'))
        assert overlay is not None
        assert overlay.shape[1] == overlay_width
    # Stuff always covers something; random things come with score_thr 0.
    assert num_segments >= 2


def test_cli_single_order(workspace, tmp_path, capsys):
    out_dir = str(tmp_path / 'out')
    result = cli.main(
        [workspace.images, CONFIG, workspace.checkpoint, '--out-dir', out_dir
         ] + workspace.cli_options)
    _check_outputs(result, out_dir, overlay_width=SIZE)
    assert 'panoptic_val.json' in result['info']['category_ids']
    assert '2/2' in capsys.readouterr().out


def test_cli_compare_orders(workspace, tmp_path):
    out_dir = str(tmp_path / 'out')
    image = osp.join(workspace.images, '000000000002.jpg')
    result = cli.main([
        image, CONFIG, workspace.checkpoint, '--out-dir', out_dir,
        '--compare-orders'
    ] + workspace.cli_options)
    assert len(result['annotations']) == 1
    overlay = cv2.imread(osp.join(out_dir, 'vis', '000000000002.jpg'))
    assert overlay.shape[1] == 2 * SIZE
    assert overlay.shape[0] > SIZE  # the title bar


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


def test_category_ids_fall_back_to_label_plus_one():
    model = SimpleNamespace(dataset_meta=dict(SYNTHETIC_OCCLUSION_METAINFO))
    label2cat, categories, source = coco_categories(model)
    assert label2cat == {label: label + 1 for label in range(NUM_CLASSES)}
    assert 'label + 1' in source
    assert [c['isthing'] for c in categories] == [1] * 6 + [0] * 4
    assert categories[6]['color'] == [150, 200, 240]
    model.dataset_meta['cat_ids'] = SYNTHETIC_CAT_IDS
    assert coco_categories(model)[0][9] == 24


def test_overlays():
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    pan = np.full((20, 30), NUM_CLASSES)  # VOID
    pan[:, 15:] = 6  # sky
    pan[5:15, 2:12] = 1001  # a person
    palette = SYNTHETIC_OCCLUSION_METAINFO['palette']
    classes = SYNTHETIC_OCCLUSION_METAINFO['classes']
    overlay = draw_panoptic_overlay(image, pan, palette, classes, alpha=1.0)
    assert overlay.shape == image.shape and (image == 100).all()
    # VOID keeps the image, sky takes its colour (BGR), borders are white.
    assert overlay[0, 0].tolist() == [100, 100, 100]
    assert overlay[19, 25].tolist() == [240, 200, 150]
    assert overlay[0, 14].tolist() == [255, 255, 255]
    srm_pan = pan.copy()
    srm_pan[5:8, 2:12] = 6
    panel = draw_order_comparison(image, pan, srm_pan, palette, classes)
    assert panel.shape == (20 + 14, 60, 3)
    assert (panel[14:, :30] != panel[14:, 30:]).any()


def test_bad_inputs(workspace, tmp_path):
    base = [CONFIG, workspace.checkpoint, '--out-dir', str(tmp_path / 'o')]
    missing = str(tmp_path / 'nowhere.jpg')
    with pytest.raises(FileNotFoundError, match='nowhere.jpg'):
        cli.main([missing] + base)
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'notes.txt').write_text('no images here')
    with pytest.raises(ValueError, match='no image file'):
        cli.main([str(empty)] + base)
    with pytest.raises(ValueError, match='notes.txt is not an image'):
        cli.main([str(empty / 'notes.txt')] + base)
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    with pytest.raises(ValueError, match='broken.jpg: cannot be decoded'):
        cli.main([str(broken)] + base + workspace.cli_options)
    other_config = tmp_path / 'mask_rcnn.py'
    other_config.write_text("model = dict(type='MaskRCNN')\n")
    image = osp.join(workspace.images, '000000000001.jpg')
    with pytest.raises(ValueError, match='needs an OANet.*MaskRCNN'):
        cli.main([
            image,
            str(other_config), workspace.checkpoint, '--out-dir',
            str(tmp_path), '--compare-orders'
        ])
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        init_model(CONFIG, str(tmp_path / 'absent.pth'))
    assert not os.listdir(tmp_path / 'o' / 'panoptic')


def test_checkpoint_without_meta_and_named_palettes(workspace, tmp_path):
    bare = str(tmp_path / 'bare.pth')
    torch.save(dict(state_dict=workspace.model.state_dict()), bare)
    model = init_model(CONFIG, bare)
    # Class names of the config's dataset, not COCO's 80.
    assert model.dataset_meta['classes'] == tuple(
        SYNTHETIC_OCCLUSION_METAINFO['classes'])
    for weight in model.state_dict():
        assert torch.equal(model.state_dict()[weight],
                           workspace.model.state_dict()[weight])
    assert len(cli.overlay_palette('random', NUM_CLASSES)) == NUM_CLASSES
    colors = ((1, 2, 3), ) * NUM_CLASSES
    assert cli.overlay_palette(colors, NUM_CLASSES)[9] == (1, 2, 3)
    with pytest.raises(ValueError, match='2 colours for 10 classes'):
        cli.overlay_palette([(0, 0, 0)] * 2, NUM_CLASSES)


def test_order_comparison_matches_instances_across_orders():
    sky, table_label, person_label = 6, 0, 1
    score = np.full((12, 12), sky)
    score[2:10, 2:10] = table_label + 1000  # laid first, hides the person
    srm = score.copy()
    srm[2:10, 2:10] = table_label + 2000  # the same table, laid second
    srm[4:7, 4:7] = person_label + 1000  # the person on top of it
    aligned = _align_instance_ids(srm, score)
    expected = score.copy()
    expected[4:7, 4:7] = person_label + 1000
    assert aligned.tolist() == expected.tolist()
    image = np.zeros((12, 12, 3), dtype=np.uint8)
    palette = SYNTHETIC_OCCLUSION_METAINFO['palette']
    classes = SYNTHETIC_OCCLUSION_METAINFO['classes']
    renumbered = np.where(srm == 2000, 3000, srm)
    same = draw_order_comparison(image, srm, renumbered, palette, classes)
    assert (same[14:, :12] == same[14:, 12:]).all()
    differ = draw_order_comparison(
        image, score, srm, palette, classes, titles=('a', 'b'))
    magenta = (differ[14:] == (255, 0, 255)).all(axis=-1)
    # Only the person's 3x3 square differs; its outline is drawn there.
    for panel in (magenta[:, :12], magenta[:, 12:]):
        rows, cols = np.nonzero(panel)
        assert rows.size and cols.size
        assert set(rows.tolist()) <= {4, 5, 6}
        assert set(cols.tolist()) <= {4, 5, 6}
