"""SRMAnnotationDataset: what the SRM learns from, on a tiny synthetic set.

Overlapping instance masks with their labels and the panoptic semantic map
per image, from an instances JSON or a COCO results list; every empty or
inconsistent input is refused with the file named.
"""
import json
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS
from mmdet.structures import DetDataSample
from mmengine.dataset import pseudo_collate
from pycocotools import mask as mask_utils

from mmoanet.datasets import (SYNTHETIC_OCCLUSION_METAINFO,
                              PanopticAnnotationError, SRMAnnotationDataset,
                              generate_synthetic_occlusion)

SIZE = 67
NUM_TRAIN = 6


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    generate_synthetic_occlusion(
        str(root), num_train=NUM_TRAIN, num_val=2, size=SIZE, seed=5)
    return str(root)


def build(data_root, **kwargs):
    cfg = dict(
        type='SRMAnnotationDataset',
        data_root=data_root,
        ann_file='annotations/panoptic_train.json',
        data_prefix=dict(seg='annotations/panoptic_train/'),
        ins_ann_file='annotations/instances_train.json',
        metainfo=SYNTHETIC_OCCLUSION_METAINFO)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def load(path):
    with open(path) as f:
        return json.load(f)


def write(tmp_path, name, content):
    path = str(tmp_path / name)
    with open(path, 'w') as f:
        json.dump(content, f)
    return path


def test_items_are_overlapping_masks_with_matching_labels(data_root):
    dataset = build(data_root)
    assert isinstance(dataset, SRMAnnotationDataset)
    assert len(dataset) == NUM_TRAIN and not dataset.from_results
    assert dataset.metainfo['thing_classes'] == \
        SYNTHETIC_OCCLUSION_METAINFO['thing_classes']
    num_things = len(SYNTHETIC_OCCLUSION_METAINFO['thing_classes'])
    overlaps = instances = 0
    for index in range(len(dataset)):
        item = dataset[index]
        assert item['inputs'] is None
        sample = item['data_samples']
        assert isinstance(sample, DetDataSample)
        assert 'batch_input_shape' not in sample.metainfo
        masks, labels = sample.gt_instances.masks, sample.gt_instances.labels
        sem_seg = sample.gt_sem_seg.sem_seg
        assert masks.dtype == torch.bool and labels.dtype == torch.long
        assert sem_seg.dtype == torch.long and sem_seg.shape == (1, SIZE, SIZE)
        assert masks.shape == (len(labels), SIZE, SIZE)
        assert (labels < num_things).all()
        cover = masks.sum(dim=0)
        overlaps += int((cover >= 2).sum())
        instances += len(labels)
        # Where one amodal mask alone covers a pixel nothing hides it: the
        # panoptic label there is that instance's class.
        for mask, label in zip(masks, labels):
            assert (sem_seg[0][mask & (cover == 1)] == label).all()
    assert overlaps > 0 and instances == dataset.num_instances


def test_crowd_and_stuff_annotations_are_left_out(data_root, tmp_path):
    instances = load(osp.join(data_root, 'annotations/instances_train.json'))
    full = build(data_root)
    instances['annotations'][0]['iscrowd'] = 1
    # A detection-format export that lists a stuff category too.
    stuff_name = SYNTHETIC_OCCLUSION_METAINFO['stuff_classes'][0]
    instances['categories'].append(dict(id=999, name=stuff_name))
    stuff = dict(instances['annotations'][1], id=10**6, category_id=999)
    instances['annotations'].append(stuff)
    path = write(tmp_path, 'instances.json', instances)
    dataset = build(data_root, ins_ann_file=path)
    assert dataset.num_instances == full.num_instances - 1


def test_batches_collate_for_the_runner(data_root):
    dataset = build(data_root)
    batch = pseudo_collate([dataset[0], dataset[1]])
    assert batch['inputs'] == [None, None]
    assert len(batch['data_samples']) == 2
    assert all(
        isinstance(sample, DetDataSample) for sample in batch['data_samples'])


def test_lazy_init_and_max_images(data_root):
    dataset = build(data_root, lazy_init=True)
    assert not dataset._fully_initialized
    dataset.full_init()
    assert len(dataset) == NUM_TRAIN
    assert len(build(data_root, max_images=2)) == 2
    first = build(data_root, max_images=2).get_data_info(1)
    assert first['img_id'] == dataset.get_data_info(1)['img_id']


def results_of_ground_truth(data_root, tmp_path, edit=None):
    """The instances JSON's masks as a COCO results list: categories by
    the panoptic JSON's ids, scores 0.2 and 0.9 in turn, and the first
    image without a single prediction; ``edit`` may change the list."""
    instances = load(osp.join(data_root, 'annotations/instances_train.json'))
    panoptic = load(osp.join(data_root, 'annotations/panoptic_train.json'))
    name_of = {c['id']: c['name'] for c in instances['categories']}
    id_of = {c['name']: c['id'] for c in panoptic['categories']}
    first_image = panoptic['annotations'][0]['image_id']
    results = [
        dict(
            image_id=ann['image_id'],
            category_id=id_of[name_of[ann['category_id']]],
            segmentation=ann['segmentation'],
            score=0.2 if index % 2 else 0.9)
        for index, ann in enumerate(instances['annotations'])
        if ann['image_id'] != first_image and not ann.get('iscrowd', 0)
    ]
    if edit is not None:
        edit(results)
    return write(tmp_path, 'results.json', results), results


def test_a_results_list_gives_the_same_masks_as_the_annotations(
        data_root, tmp_path):
    path, results = results_of_ground_truth(data_root, tmp_path)
    truth = build(data_root)
    predicted = build(data_root, ins_ann_file=path)
    assert predicted.from_results
    assert len(predicted) == len(truth) == NUM_TRAIN
    assert predicted.num_instances == len(results) > 0
    empty = predicted[0]['data_samples'].gt_instances
    assert len(empty) == 0 and empty.masks.shape == (0, SIZE, SIZE)
    assert len(truth[0]['data_samples'].gt_instances) > 0
    for index in range(1, len(truth)):
        expected = truth[index]['data_samples']
        sample = predicted[index]['data_samples']
        assert torch.equal(sample.gt_sem_seg.sem_seg,
                           expected.gt_sem_seg.sem_seg)
        assert torch.equal(sample.gt_instances.masks,
                           expected.gt_instances.masks)
        assert torch.equal(sample.gt_instances.labels,
                           expected.gt_instances.labels)
    kept = build(data_root, ins_ann_file=path, min_score=0.5)
    assert kept.num_instances == sum(r['score'] >= 0.5 for r in results)
    assert 0 < kept.num_instances < len(results)


def test_a_results_list_with_a_foreign_image_or_size_is_refused(
        data_root, tmp_path):

    def foreign_image(results):
        results[1]['image_id'] = 999

    path, _ = results_of_ground_truth(data_root, tmp_path, foreign_image)
    with pytest.raises(ValueError, match=re.escape(path) + '.*image_id 999'):
        build(data_root, ins_ann_file=path)

    def foreign_category(results):
        results[2]['category_id'] = 12345

    path, _ = results_of_ground_truth(data_root, tmp_path, foreign_category)
    with pytest.raises(ValueError, match=re.escape(path) + '.*12345'):
        build(data_root, ins_ann_file=path)

    def wrong_size(results):
        rle = mask_utils.encode(
            np.zeros((SIZE, SIZE - 1), dtype=np.uint8, order='F'))
        results[-1]['segmentation'] = dict(
            size=rle['size'], counts=rle['counts'].decode())

    path, results = results_of_ground_truth(data_root, tmp_path, wrong_size)
    image_id = results[-1]['image_id']
    with pytest.raises(
            PanopticAnnotationError,
            match=re.escape(path) +
            f'.*image_id {image_id} .*RLE is {SIZE}x{SIZE - 1}'):
        build(data_root, ins_ann_file=path)

    def counts_of_another_size(results):
        rle = mask_utils.encode(
            np.ones((SIZE, SIZE - 1), dtype=np.uint8, order='F'))
        results[0]['segmentation'] = dict(
            size=[SIZE, SIZE], counts=rle['counts'].decode())

    path, results = results_of_ground_truth(data_root, tmp_path,
                                            counts_of_another_size)
    with pytest.raises(
            PanopticAnnotationError,
            match=re.escape(path) + f'.*image_id {results[0]["image_id"]} '
            '.*run lengths'):
        build(data_root, ins_ann_file=path)


def test_no_prediction_above_min_score_is_refused(data_root, tmp_path):
    path, _ = results_of_ground_truth(data_root, tmp_path)
    with pytest.raises(
            PanopticAnnotationError,
            match=re.escape(path) + '.*none of its .* predictions scores '
            '>= min_score 0.95 .*highest scores 0.9'):
        build(data_root, ins_ann_file=path, min_score=0.95)
    empty = write(tmp_path, 'empty_results.json', [])
    with pytest.raises(PanopticAnnotationError, match=re.escape(empty)):
        build(data_root, ins_ann_file=empty)


@pytest.mark.parametrize('min_score', [-0.1, 1.5])
def test_min_score_outside_0_1_is_refused(data_root, min_score):
    with pytest.raises(ValueError, match=f'min_score {min_score} .*0, 1'):
        build(data_root, min_score=min_score)


def test_no_annotations_is_refused(data_root, tmp_path):
    instances = load(osp.join(data_root, 'annotations/instances_train.json'))
    instances['annotations'] = []
    path = write(tmp_path, 'no_annotations.json', instances)
    with pytest.raises(
            PanopticAnnotationError,
            match=re.escape(path) + '.*no instance mask.*train on nothing'):
        build(data_root, ins_ann_file=path)
    # Only crowd annotations: nothing left either.
    instances = load(osp.join(data_root, 'annotations/instances_train.json'))
    for ann in instances['annotations']:
        ann['iscrowd'] = 1
    path = write(tmp_path, 'crowd_only.json', instances)
    with pytest.raises(PanopticAnnotationError, match='no instance mask'):
        build(data_root, ins_ann_file=path)


def test_duplicate_annotation_ids_are_refused(data_root, tmp_path):
    instances = load(osp.join(data_root, 'annotations/instances_train.json'))
    duplicate = instances['annotations'][0]['id']
    instances['annotations'][3]['id'] = duplicate
    path = write(tmp_path, 'duplicates.json', instances)
    with pytest.raises(
            PanopticAnnotationError,
            match=re.escape(path) + rf'.*annotation ids \[{duplicate}\] are '
            'used more than once'):
        build(data_root, ins_ann_file=path)


def test_unknown_category_is_refused(data_root, tmp_path):
    instances = load(osp.join(data_root, 'annotations/instances_train.json'))
    original = instances['annotations'][2]['category_id']
    instances['annotations'][2]['category_id'] = 4242
    path = write(tmp_path, 'unknown_category.json', instances)
    with pytest.raises(
            PanopticAnnotationError,
            match=re.escape(path) + '.*category_id 4242'):
        build(data_root, ins_ann_file=path)
    instances['annotations'][2]['category_id'] = original
    instances['categories'][0]['name'] = 'unicorn'
    path = write(tmp_path, 'unknown_name.json', instances)
    with pytest.raises(
            PanopticAnnotationError, match=re.escape(path) + '.*unicorn'):
        build(data_root, ins_ann_file=path)


def test_bad_json_and_missing_files_are_named(data_root, tmp_path):
    path = str(tmp_path / 'truncated.json')
    with open(osp.join(data_root, 'annotations/instances_train.json')) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text[:len(text) // 2])
    with pytest.raises(
            PanopticAnnotationError,
            match=re.escape(path) + ' is not valid JSON'):
        build(data_root, ins_ann_file=path)
    missing = str(tmp_path / 'missing.json')
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        build(data_root, ins_ann_file=missing)
    with pytest.raises(ValueError, match='ins_ann_file'):
        build(data_root, ins_ann_file='')
