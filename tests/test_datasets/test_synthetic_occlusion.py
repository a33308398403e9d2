"""The synthetic occlusion generator: layout, consistency, PQ, overlaps."""
import contextlib
import filecmp
import importlib.util
import io
import json
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
    script = osp.join(
        osp.dirname(__file__), '..', '..', 'tools', 'dataset_converters',
        'make_synthetic_occlusion.py')
    spec = importlib.util.spec_from_file_location('make_synthetic', script)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = tmp_path / 'set'
    monkeypatch.setattr(sys, 'argv', [
        'make_synthetic_occlusion.py', '--out',
        str(out), '--num-train', '4', '--num-val', '2', '--size', '64'
    ])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cli.main()
    assert 'train: num_images=4' in printed.getvalue()
    assert len(load_json(str(out), 'instances_val.json')['images']) == 2


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
