"""The synthetic occlusion generator: layout, consistency, PQ, overlaps."""
import contextlib
import filecmp
import io
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import DATASETS, METRICS
from panopticapi.evaluation import pq_compute

from mmoanet.datasets import (SYNTHETIC_OCCLUSION_METAINFO,
                              generate_synthetic_occlusion, overlap_statistics)
from mmoanet.datasets.synthetic_occlusion import coco_like_mask
from tests.utils import load_script

MAKE_SYNTHETIC = 'tools/dataset_converters/make_synthetic_occlusion.py'


def load_json(root: str, name: str) -> dict:
    with open(osp.join(root, 'annotations', name)) as file:
        return json.load(file)


def read_ids(png_path: str) -> np.ndarray:
    rgb = cv2.imread(png_path)[..., ::-1].astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def test_layout_and_categories(synthetic_root):
    panoptic = load_json(synthetic_root, 'panoptic_val.json')
    assert len(panoptic['images']) == 6
    for image in panoptic['images']:
        assert osp.isfile(osp.join(synthetic_root, 'val', image['file_name']))
        assert (image['height'], image['width']) == (97, 97)
    for annotation in panoptic['annotations']:
        assert osp.isfile(
            osp.join(synthetic_root, 'annotations', 'panoptic_val',
                     annotation['file_name']))
    categories = panoptic['categories']
    for category in categories:
        assert set(category) >= {
            'id', 'name', 'isthing', 'color', 'supercategory'
        }
    names = tuple(c['name'] for c in categories)
    assert names == SYNTHETIC_OCCLUSION_METAINFO['classes']
    things = tuple(c['name'] for c in categories if c['isthing'])
    assert things == SYNTHETIC_OCCLUSION_METAINFO['thing_classes']
    assert len(SYNTHETIC_OCCLUSION_METAINFO['stuff_classes']) >= 3
    assert len(things) >= 6
    assert len(SYNTHETIC_OCCLUSION_METAINFO['palette']) == len(names)


def test_deterministic(synthetic_root, tmp_path):
    generate_synthetic_occlusion(
        str(tmp_path), num_train=16, num_val=6, size=97, seed=3)
    comparison = filecmp.dircmp(synthetic_root, str(tmp_path))
    assert not comparison.diff_files and not comparison.left_only
    for sub in ('train', 'annotations', 'annotations/panoptic_train'):
        names = sorted(
            f for f in filecmp.dircmp(
                osp.join(synthetic_root, sub), str(tmp_path /
                                                   sub)).common_files)
        _, mismatch, errors = filecmp.cmpfiles(
            osp.join(synthetic_root, sub),
            str(tmp_path / sub),
            names,
            shallow=False)
        assert names and not mismatch and not errors
    other = tmp_path / 'other_seed'
    generate_synthetic_occlusion(
        str(other), num_train=2, num_val=0, size=97, seed=4)
    assert not filecmp.cmp(
        osp.join(synthetic_root, 'train', '000000000001.jpg'),
        str(other / 'train' / '000000000001.jpg'),
        shallow=False)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_panoptic_and_instances_agree(synthetic_root, split):
    panoptic = load_json(synthetic_root, f'panoptic_{split}.json')
    instances = load_json(synthetic_root, f'instances_{split}.json')
    overlaps = load_json(synthetic_root, f'overlaps_{split}.json')
    by_image = {}
    for ann in instances['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    pairs = {i['image_id']: i['pairs'] for i in overlaps['images']}
    for annotation in panoptic['annotations']:
        ids = read_ids(
            osp.join(synthetic_root, 'annotations', f'panoptic_{split}',
                     annotation['file_name']))
        segments = {s['id']: s for s in annotation['segments_info']}
        assert set(np.unique(ids)) == set(segments)  # no VOID, no stray id
        for segment in segments.values():
            assert (ids == segment['id']).sum() == segment['area']
        amodal = {}
        thing_segments = {
            s['id']
            for s in segments.values() if s['category_id'] < 20
        }
        image_anns = by_image.get(annotation['image_id'], [])
        assert {a['panoptic_segment_id'] for a in image_anns} == \
            thing_segments
        for ann in image_anns:
            mask = mask_utils.decode(ann['segmentation']).astype(bool)
            visible = ids == ann['panoptic_segment_id']
            assert mask.sum() == ann['area']
            assert not (visible & ~mask).any()  # modal inside amodal
            assert visible.sum() == ann['visible_area'] >= 20
            assert segments[ann['panoptic_segment_id']]['category_id'] == \
                ann['category_id']
            amodal[ann['id']] = (mask, ann['panoptic_segment_id'])
        for pair in pairs[annotation['image_id']]:
            top, top_segment = amodal[pair['top_id']]
            bottom, bottom_segment = amodal[pair['bottom_id']]
            shared = top & bottom
            assert shared.sum() == pair['overlap_area'] > 0
            assert not (ids[shared] == bottom_segment).any()


def test_ground_truth_against_itself_is_pq_100(synthetic_root):
    gt_json = osp.join(synthetic_root, 'annotations', 'panoptic_val.json')
    gt_folder = osp.join(synthetic_root, 'annotations', 'panoptic_val')
    with contextlib.redirect_stdout(io.StringIO()):
        results = pq_compute(gt_json, gt_json, gt_folder, gt_folder)
    for group in ('All', 'Things', 'Stuff'):
        assert results[group]['pq'] == pytest.approx(1.0)


def test_most_images_have_overlaps(synthetic_root):
    stats = overlap_statistics(synthetic_root, 'train')
    assert stats['num_images'] == 16
    assert stats['images_with_overlap'] >= 0.75
    assert stats['pairs_per_image'] >= 1.5
    # The point of the set: the top instance is mostly the smaller one.
    assert stats['top_smaller'] >= 0.6


@pytest.mark.parametrize('instance_source', ['instances', 'panoptic'])
def test_dataset_loads_synthetic(synthetic_root, instance_source):
    dataset = DATASETS.build(
        dict(
            type='CocoPanopticInstancesDataset',
            data_root=synthetic_root,
            ann_file='annotations/panoptic_train.json',
            ins_ann_file='annotations/instances_train.json',
            instance_source=instance_source,
            data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
            metainfo=SYNTHETIC_OCCLUSION_METAINFO,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadPanopticInstanceAnnotations')
            ]))
    num_things = len(SYNTHETIC_OCCLUSION_METAINFO['thing_classes'])
    overlapping_images = 0
    for index in range(len(dataset)):
        data = dataset[index]
        masks = data['gt_masks'].masks.astype(bool)
        labels = data['gt_bboxes_labels']
        assert len(masks) == len(labels) == len(data['gt_bboxes'])
        assert ((labels >= 0) & (labels < num_things)).all()
        seg_map = data['gt_seg_map']
        assert seg_map.max() < len(SYNTHETIC_OCCLUSION_METAINFO['classes'])
        overlapping_images += int((masks.sum(0) > 1).any())
        # Pixels that only one thing mask covers carry its label.
        only_one = masks.sum(0) == 1
        for mask, label in zip(masks, labels):
            if mask.any() and instance_source == 'panoptic':
                assert (seg_map[mask] == label).all()
            assert (seg_map[mask & only_one] == label).all()
    if instance_source == 'instances':
        assert overlapping_images >= len(dataset) * 3 // 4
    else:
        assert overlapping_images == 0  # "pano-instance GT"


def test_cli(tmp_path, monkeypatch):
    cli = load_script(MAKE_SYNTHETIC)
    out = tmp_path / 'set'
    monkeypatch.setattr(sys, 'argv', [
        'make_synthetic_occlusion.py', '--out',
        str(out), '--num-train', '4', '--num-val', '2', '--size', '64'
    ])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cli.main()
    text = printed.getvalue()
    assert 'train: num_images=4' in text
    assert len(load_json(str(out), 'instances_val.json')['images']) == 2
    # A progress bar per split, counting the images as they are written.
    assert f'train: 4 images -> {out / "train"}' in text
    assert f'val: 2 images -> {out / "val"}' in text
    for done in range(1, 5):
        assert f'] {done}/4, ' in text
    assert '] 2/2, ' in text
    assert text.index('] 4/4, ') < text.index('val: 2 images')


def test_progress_is_off_by_default_and_by_flag(tmp_path, capsys):
    generate_synthetic_occlusion(
        str(tmp_path / 'lib'), num_train=2, num_val=1, size=48, seed=0)
    assert capsys.readouterr().out == ''
    generate_synthetic_occlusion(
        str(tmp_path / 'bar'),
        num_train=2,
        num_val=1,
        size=48,
        seed=0,
        progress=True)
    assert '] 2/2, ' in capsys.readouterr().out
    cli = load_script(MAKE_SYNTHETIC)
    cli.main([
        '--out',
        str(tmp_path / 'quiet'), '--num-train', '2', '--num-val', '1',
        '--size', '48', '--no-progress'
    ])
    text = capsys.readouterr().out
    assert 'train: num_images=2' in text
    assert '/2, ' not in text and 'images ->' not in text


@pytest.mark.parametrize('metric_type',
                         ['CocoPanopticMetric', 'MultiOrderPanopticMetric'])
def test_ground_truth_through_dataset_is_pq_100(synthetic_root, metric_type):
    """Labels -> category ids round trip (ids 11-16, 21-24) in the metrics."""
    assert metric_type in METRICS, f'{metric_type} is not registered'
    dataset = DATASETS.build(
        dict(
            type='CocoPanopticInstancesDataset',
            data_root=synthetic_root,
            ann_file='annotations/panoptic_val.json',
            ins_ann_file='annotations/instances_val.json',
            data_prefix=dict(img='val/', seg='annotations/panoptic_val/'),
            metainfo=SYNTHETIC_OCCLUSION_METAINFO,
            test_mode=True,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadPanopticInstanceAnnotations')
            ]))
    ann_dir = osp.join(synthetic_root, 'annotations')
    metric = METRICS.build(
        dict(
            type=metric_type,
            ann_file=osp.join(ann_dir, 'panoptic_val.json'),
            seg_prefix=osp.join(ann_dir, 'panoptic_val')))
    metric.dataset_meta = dataset.metainfo
    num_classes = len(SYNTHETIC_OCCLUSION_METAINFO['classes'])
    samples = []
    for index in range(len(dataset)):
        data = dataset[index]
        ids = read_ids(data['seg_map_path'])
        panoptic = np.full(ids.shape, num_classes, np.int64)
        for number, segment in enumerate(data['segments_info'], start=1):
            instance = number if segment['is_thing'] else 0
            panoptic[ids == segment['id']] = (
                segment['category'] + instance * INSTANCE_OFFSET)
        samples.append(
            dict(
                img_id=data['img_id'],
                img_path=data['img_path'],
                ori_shape=data['ori_shape'],
                pred_panoptic_seg=dict(
                    sem_seg=torch.from_numpy(panoptic)[None])))
    with contextlib.redirect_stdout(io.StringIO()):
        metric.process({}, samples)
        results = metric.compute_metrics(metric.results)
    for key in ('PQ', 'PQ_th', 'PQ_st'):
        assert results[key] == pytest.approx(100.0)


@pytest.fixture(scope='module')
def styled_roots(tmp_path_factory) -> dict:
    """The same 8 + 3 scenes in each annotation style; do not modify."""
    roots = {}
    for style in ('amodal', 'coco', 'panoptic'):
        root = tmp_path_factory.mktemp(f'style_{style}')
        generate_synthetic_occlusion(
            str(root),
            num_train=8,
            num_val=3,
            size=97,
            seed=5,
            ann_style=style)
        roots[style] = str(root)
    return roots


def decode_instances(root: str, split: str) -> dict:
    """Instance id -> (bool mask, panoptic segment id)."""
    instances = load_json(root, f'instances_{split}.json')
    return {
        ann['id']: (mask_utils.decode(ann['segmentation']).astype(bool),
                    ann['panoptic_segment_id'])
        for ann in instances['annotations']
    }


def test_coco_like_mask_fills_holes_and_keeps_a_band():
    amodal = np.zeros((30, 30), bool)
    amodal[5:25, 5:25] = True
    # An occluder inside the outline (a tie on a shirt): the hole is filled.
    inside = np.zeros_like(amodal)
    inside[12:16, 12:16] = True
    assert (coco_like_mask(amodal, amodal & ~inside, band=0) == amodal).all()
    # An occluder across the right edge: only a band of 2 px under it.
    edge = np.zeros_like(amodal)
    edge[:, 15:] = True
    visible = amodal & ~edge
    mask = coco_like_mask(amodal, visible, band=2)
    assert not (visible & ~mask).any() and not (mask & ~amodal).any()
    hidden_columns = np.nonzero(mask[10] & edge[10])[0]
    assert hidden_columns.tolist() == [15, 16]
    assert (coco_like_mask(amodal, visible, band=0) == visible).all()


def test_styles_share_images_png_and_overlaps(styled_roots):
    amodal = styled_roots['amodal']
    for style in ('coco', 'panoptic'):
        for sub in ('val', 'annotations/panoptic_val'):
            names = sorted(os.listdir(osp.join(amodal, sub)))
            _, mismatch, errors = filecmp.cmpfiles(
                osp.join(amodal, sub),
                osp.join(styled_roots[style], sub),
                names,
                shallow=False)
            assert names and not mismatch and not errors
        for name in ('panoptic_val.json', 'overlaps_val.json'):
            ours = load_json(styled_roots[style], name)
            theirs = load_json(amodal, name)
            assert ours['info'].pop('ann_style') == style
            theirs['info'].pop('ann_style')
            assert ours == theirs
    assert not osp.exists(
        osp.join(styled_roots['panoptic'], 'annotations',
                 'instances_train.json'))
    stats = overlap_statistics(styled_roots['panoptic'], 'train')
    assert stats == overlap_statistics(amodal, 'train')
    assert stats['num_pairs'] > 0


def test_statistics_of_an_old_overlaps_file(tmp_path):
    generate_synthetic_occlusion(
        str(tmp_path), num_train=3, num_val=0, size=97, seed=5)
    path = tmp_path / 'annotations' / 'overlaps_train.json'
    overlaps = json.loads(path.read_text())
    for image in overlaps['images']:
        for pair in image['pairs']:
            del pair['top_area']
    path.write_text(json.dumps(overlaps))
    with pytest.raises(ValueError, match='overlaps_train.json.*regenerate'):
        overlap_statistics(str(tmp_path), 'train')


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_style_overlaps_only_partly(styled_roots, split):
    amodal = decode_instances(styled_roots['amodal'], split)
    coco = decode_instances(styled_roots['coco'], split)
    assert amodal.keys() == coco.keys()
    overlaps = load_json(styled_roots['amodal'], f'overlaps_{split}.json')
    pngs = osp.join(styled_roots['coco'], 'annotations', f'panoptic_{split}')
    amodal_shared = coco_shared = 0
    for image in overlaps['images']:
        ids = read_ids(osp.join(pngs, image['file_name'][:-4] + '.png'))
        for ann_id in {
                p[k]
                for p in image['pairs']
                for k in ('top_id', 'bottom_id')
        }:
            full, segment_id = amodal[ann_id]
            mask, _ = coco[ann_id]
            visible = ids == segment_id
            assert not (visible & ~mask).any() and not (mask & ~full).any()
        for pair in image['pairs']:
            top, bottom = pair['top_id'], pair['bottom_id']
            amodal_shared += int((amodal[top][0] & amodal[bottom][0]).sum())
            coco_shared += int((coco[top][0] & coco[bottom][0]).sum())
    assert 0 < coco_shared < amodal_shared


def test_overlaps_name_panoptic_segments(styled_roots):
    root = styled_roots['panoptic']
    panoptic = load_json(root, 'panoptic_train.json')
    overlaps = load_json(root, 'overlaps_train.json')
    by_image = {a['image_id']: a for a in panoptic['annotations']}
    for image in overlaps['images']:
        annotation = by_image[image['image_id']]
        segments = {s['id']: s for s in annotation['segments_info']}
        ids = read_ids(
            osp.join(root, 'annotations', 'panoptic_train',
                     annotation['file_name']))
        for pair in image['pairs']:
            top = segments[pair['top_segment_id']]
            bottom = segments[pair['bottom_segment_id']]
            assert top['category_id'] == pair['top_category_id']
            assert bottom['category_id'] == pair['bottom_category_id']
            overlap = mask_utils.decode(pair['overlap_rle']).astype(bool)
            assert overlap.sum() == pair['overlap_area'] > 0
            assert not (ids[overlap] == bottom['id']).any()
            assert pair['top_area'] >= (ids == top['id']).sum()


def test_panoptic_style_replaces_an_old_instances_file(tmp_path):
    generate_synthetic_occlusion(
        str(tmp_path), num_train=2, num_val=1, size=64, seed=0)
    assert osp.exists(tmp_path / 'annotations' / 'instances_val.json')
    generate_synthetic_occlusion(
        str(tmp_path),
        num_train=2,
        num_val=1,
        size=64,
        seed=0,
        ann_style='panoptic')
    assert not osp.exists(tmp_path / 'annotations' / 'instances_val.json')
    with pytest.raises(ValueError, match='ann_style'):
        generate_synthetic_occlusion(str(tmp_path), ann_style='modal')
    with pytest.raises(ValueError, match='overlap_image_share'):
        generate_synthetic_occlusion(str(tmp_path), overlap_image_share=1.5)


def test_scene_settings(tmp_path):

    def stats(name, **settings):
        root = str(tmp_path / name)
        generate_synthetic_occlusion(
            root, num_train=24, num_val=0, size=97, seed=1, **settings)
        panoptic = load_json(root, 'panoptic_train.json')
        areas = [
            s['area'] for a in panoptic['annotations']
            for s in a['segments_info'] if s['category_id'] < 20
        ]
        return overlap_statistics(root, 'train'), float(np.mean(areas))

    default, default_area = stats('default')
    apart, _ = stats('apart', overlap_image_share=0.0)
    assert apart['num_pairs'] == 0 and default['num_pairs'] > 0
    half, _ = stats('half', overlap_image_share=0.5)
    assert 0 < half['images_with_overlap'] < default['images_with_overlap']
    spread, _ = stats('spread', on_top_prob=0.0)
    assert spread['pairs_per_image'] < default['pairs_per_image']
    _, small_area = stats('small', thing_scale=0.6)
    assert small_area < 0.6 * default_area


@pytest.mark.parametrize('style,instance_source', [('coco', 'instances'),
                                                   ('panoptic', 'panoptic')])
def test_dataset_loads_each_style(styled_roots, style, instance_source):
    root = styled_roots[style]
    ins_ann_file = ('annotations/instances_train.json'
                    if style != 'panoptic' else None)
    dataset = DATASETS.build(
        dict(
            type='CocoPanopticInstancesDataset',
            data_root=root,
            ann_file='annotations/panoptic_train.json',
            ins_ann_file=ins_ann_file,
            instance_source=instance_source,
            data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
            metainfo=SYNTHETIC_OCCLUSION_METAINFO,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadPanopticInstanceAnnotations')
            ]))
    overlapping = 0
    for index in range(len(dataset)):
        data = dataset[index]
        masks = data['gt_masks'].masks.astype(bool)
        assert len(masks) == len(data['gt_bboxes_labels']) > 0
        overlapping += int((masks.sum(0) > 1).any())
    if style == 'coco':
        assert overlapping > 0
    else:
        assert overlapping == 0


def test_cli_styles(tmp_path):
    cli = load_script(MAKE_SYNTHETIC)
    out = tmp_path / 'set'
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cli.main([
            '--out',
            str(out), '--num-train', '4', '--num-val', '2', '--size', '64',
            '--ann-style', 'panoptic', '--thing-scale', '0.8', '--on-top-prob',
            '0.5', '--overlap-image-share', '0.5', '--num-things', '2', '5'
        ])
    assert 'val: num_images=2' in printed.getvalue()
    assert not osp.exists(out / 'annotations' / 'instances_val.json')
    assert load_json(str(out),
                     'panoptic_val.json')['info']['ann_style'] == 'panoptic'
    with pytest.raises(SystemExit):
        with contextlib.redirect_stderr(io.StringIO()):
            cli.main(['--num-things', '5', '5'])


def test_cli_keeps_an_existing_data_set_unless_forced(tmp_path, capsys):
    cli = load_script(MAKE_SYNTHETIC)
    out = tmp_path / 'set'
    out.mkdir()
    kept = out / 'mine.txt'
    kept.write_text('a data set of the user')
    argv = [
        '--out',
        str(out), '--num-train', '2', '--num-val', '1', '--size', '48',
        '--no-progress'
    ]
    with pytest.raises(ValueError, match='pass --force'):
        cli.main(argv)
    assert sorted(p.name for p in out.iterdir()) == ['mine.txt']
    cli.main(argv + ['--force'])
    assert (out / 'annotations' / 'panoptic_train.json').is_file()
    assert kept.read_text() == 'a data set of the user'
