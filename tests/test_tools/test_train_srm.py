"""tools/train_srm.py on a tiny synthetic set: annotations in, SRM
checkpoint out, resumable. (The merge tool now takes configs/srm/
checkpoints: tests/test_apis/test_srm_checkpoint.py.)"""
import json
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmdet.utils import register_all_modules
from mmengine.config import Config
from pycocotools import mask as mask_utils

from mmoanet.datasets import generate_synthetic_occlusion
from tests.utils import REPO_ROOT
from tools.train_srm import (SRMAnnotations, build_srm, coco_extrapolation,
                             dataset_settings, load_srm_checkpoint)
from tools.train_srm import main as train_srm_main

register_all_modules()
SRM_CONFIG = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn_srm',
                      'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py')
STOCK_CONFIG = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn',
                        'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    generate_synthetic_occlusion(
        str(root), num_train=6, num_val=2, size=67, seed=5)
    return str(root)


@pytest.fixture(scope='module')
def config_path(data_root, tmp_path_factory):
    """The tiny SRM config pointed at the test's data."""
    path = tmp_path_factory.mktemp('cfg') / 'srm_cfg.py'
    path.write_text(f'_base_ = {SRM_CONFIG!r}\n'
                    'train_dataloader = dict(dataset=dict('
                    f'data_root={data_root + "/"!r}))\n')
    return str(path)


def test_annotations_give_overlapping_masks_and_matching_labels(config_path):
    cfg = Config.fromfile(config_path)
    settings = dataset_settings(cfg)
    assert settings['instances_json'].endswith('instances_train.json')
    dataset = SRMAnnotations(settings['panoptic_json'], settings['png_dir'],
                             settings['instances_json'], settings['classes'],
                             settings['thing_classes'])
    assert len(dataset) == 6
    num_things = len(settings['thing_classes'])
    overlaps = 0
    for index in range(len(dataset)):
        item = dataset[index]
        masks = item['instances'].masks
        labels = item['instances'].labels
        sem_seg = item['sem_seg']
        assert masks.dtype == torch.bool and sem_seg.shape == (1, 67, 67)
        assert masks.shape[1:] == (67, 67) and len(labels) == len(masks)
        assert (labels < num_things).all()
        valid = sem_seg[sem_seg != 255]
        assert (valid < len(settings['classes'])).all()
        cover = masks.sum(dim=0)
        overlaps += int((cover >= 2).sum())
        # Where one amodal mask alone covers a pixel, nothing hides it:
        # the panoptic label there is that instance's class.
        for mask, label in zip(masks, labels):
            alone = mask & (cover == 1)
            assert (sem_seg[0][alone] == label).all()
    assert overlaps > 0


def results_of_ground_truth(settings, tmp_path, edit=None):
    """The instances JSON's masks as a COCO results file: categories by
    the panoptic JSON's ids, scores 0.2 and 0.9 in turn, and the first
    image without a single prediction; ``edit`` may change the list."""
    with open(settings['instances_json']) as f:
        instances = json.load(f)
    with open(settings['panoptic_json']) as f:
        panoptic = json.load(f)
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
    path = str(tmp_path / 'results.json')
    with open(path, 'w') as f:
        json.dump(results, f)
    return path, results


def srm_annotations(settings, instances_json, **kwargs):
    return SRMAnnotations(settings['panoptic_json'], settings['png_dir'],
                          instances_json, settings['classes'],
                          settings['thing_classes'], **kwargs)


def test_a_results_file_gives_the_same_masks_as_the_annotations(
        config_path, tmp_path):
    settings = dataset_settings(Config.fromfile(config_path))
    path, results = results_of_ground_truth(settings, tmp_path)
    truth = srm_annotations(settings, settings['instances_json'])
    predicted = srm_annotations(settings, path)
    assert predicted.from_results and not truth.from_results
    assert len(predicted) == len(truth) == 6
    assert predicted.num_instances == len(results) > 0
    assert len(predicted[0]['instances']) == 0  # an image without results
    assert len(truth[0]['instances']) > 0
    for index in range(1, len(truth)):
        expected, item = truth[index], predicted[index]
        assert torch.equal(item['sem_seg'], expected['sem_seg'])
        assert torch.equal(item['instances'].masks,
                           expected['instances'].masks)
        assert torch.equal(item['instances'].labels,
                           expected['instances'].labels)
    kept = srm_annotations(settings, path, min_score=0.5)
    assert kept.num_instances == sum(r['score'] >= 0.5 for r in results)
    assert 0 < kept.num_instances < len(results)


def test_a_results_file_with_a_foreign_image_or_size_is_refused(
        config_path, tmp_path):
    settings = dataset_settings(Config.fromfile(config_path))

    def foreign_image(results):
        results[1]['image_id'] = 999

    path, _ = results_of_ground_truth(settings, tmp_path, foreign_image)
    with pytest.raises(ValueError, match=re.escape(path) + '.*image_id 999'):
        srm_annotations(settings, path)

    def wrong_size(results):
        rle = mask_utils.encode(np.zeros((67, 66), dtype=np.uint8, order='F'))
        results[-1]['segmentation'] = dict(
            size=rle['size'], counts=rle['counts'].decode())

    path, results = results_of_ground_truth(settings, tmp_path, wrong_size)
    image_id = results[-1]['image_id']
    with pytest.raises(
            ValueError,
            match=re.escape(path) + f'.*image_id {image_id} .*RLE is 67x66'):
        srm_annotations(settings, path)


def test_missing_instances_file_is_explained(config_path):
    cfg = Config.fromfile(config_path)
    del cfg.srm_train['ins_ann_file']
    with pytest.raises(ValueError, match='srm_train.ins_ann_file'):
        dataset_settings(cfg)


def run(config_path, work_dir, *extra):
    return train_srm_main([
        config_path, '--work-dir',
        str(work_dir), '--batch-size', '2', '--workers', '0',
        '--save-interval', '3', '--log-interval', '1', *extra
    ])


def test_training_writes_checkpoints_and_resumes_exactly(
        config_path, tmp_path):
    straight = tmp_path / 'straight'
    stats = run(config_path, straight, '--iters', '6')
    assert stats['images'] == 12 and np.isfinite(stats['last_loss'])
    assert stats['images_per_second'] > 0 and stats['mean_pixels'] == 67**2
    for name in ('srm_iter_3.pth', 'srm_iter_6.pth', 'srm_latest.pth'):
        assert osp.exists(straight / name)
    log = [json.loads(line) for line in open(straight / 'train_srm.log.json')]
    assert [entry['iter'] for entry in log] == list(range(1, 7))
    final = load_srm_checkpoint(str(straight / 'srm_latest.pth'))
    assert final['meta']['iter'] == 6
    torch.manual_seed(0)  # as the tool seeds before building the SRM
    initial = build_srm(Config.fromfile(config_path)).state_dict()
    assert set(final['state_dict']) == set(initial)
    assert any(not torch.equal(final['state_dict'][key], value)
               for key, value in initial.items())

    # Stopped after step 3 of 6 (its checkpoint holds the optimiser and
    # the 6-step schedule), then resumed elsewhere: the very same weights.
    stats = run(config_path, tmp_path / 'resumed', '--iters', '6', '--resume',
                str(straight / 'srm_iter_3.pth'))
    assert stats['start_iter'] == 3 and stats['images'] == 6
    resumed = load_srm_checkpoint(str(tmp_path / 'resumed' / 'srm_latest.pth'))
    assert resumed['meta']['iter'] == 6
    for key, value in final['state_dict'].items():
        torch.testing.assert_close(
            resumed['state_dict'][key], value, rtol=0, atol=0)

    # A finished run resumes to nothing; a missing checkpoint is named.
    stats = run(config_path, straight, '--iters', '6', '--resume')
    assert stats['images'] == 0 and stats['start_iter'] == 6
    with pytest.raises(FileNotFoundError, match='--resume'):
        run(config_path, tmp_path / 'empty', '--iters', '6', '--resume')


def test_coco_extrapolation_is_plain_arithmetic():
    same_size, scaled = coco_extrapolation(100.0, 307200 / 4, 307200)
    assert '118,287 images / 100.00 images/s = 19.7 min' in same_size
    assert 'x 4.00' in scaled and '78.9 min' in scaled
