import os.path as osp

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from mmoanet.datasets import (SYNTHETIC_OCCLUSION_METAINFO,
                              generate_synthetic_occlusion)
from mmoanet.evaluation.metrics import OcclusionOrderMetric
from mmoanet.evaluation.metrics.occlusion_order_metric import match_instances


def test_match_instances_one_to_one_by_class_and_iou():
    gt = np.zeros((2, 4, 4), bool)
    gt[0, :2] = True  # top half, class 0
    gt[1, 2:] = True  # bottom half, class 1
    pred = np.stack([gt[1], gt[0], gt[0]])
    labels = np.array([1, 0, 1])  # the third has the wrong class
    scores = np.array([0.5, 0.9, 0.99])
    matches = match_instances(
        gt, np.array([0, 1]), pred, labels, scores, iou_thr=0.5)
    assert matches.tolist() == [1, 0]
    shifted = np.roll(gt[:1], 1, axis=1)  # IoU 1/3 with gt[0]
    assert match_instances(gt, np.array([0, 1]), shifted, np.array([0]),
                           np.array([1.]), 0.5).tolist() == [-1, -1]


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('occ'))
    generate_synthetic_occlusion(root, num_train=1, num_val=5, size=96, seed=2)
    return root


def oracle_samples(root, drop_every=0):
    """Predictions equal to the ground truth: depth gives the true order."""
    coco = COCO(osp.join(root, 'annotations/instances_val.json'))
    names = list(SYNTHETIC_OCCLUSION_METAINFO['thing_classes'])
    samples = []
    for image_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        if drop_every:
            anns = anns[::drop_every]
        masks = np.stack([coco.annToMask(a) > 0 for a in anns])
        depth = torch.tensor([a['depth'] for a in anns])
        labels = [
            names.index(coco.loadCats(a['category_id'])[0]['name'])
            for a in anns
        ]
        samples.append(
            dict(
                img_id=image_id,
                pred_instances=dict(
                    masks=torch.from_numpy(masks),
                    labels=torch.tensor(labels),
                    # Larger depth is nearer the viewer (on top): SRM is
                    # right everywhere, the score order wrong everywhere.
                    rank_scores=depth,
                    scores=-depth)))
    return samples


def make_metric(root):
    metric = OcclusionOrderMetric(
        overlaps_file=osp.join(root, 'annotations/overlaps_val.json'),
        ins_ann_file=osp.join(root, 'annotations/instances_val.json'))
    metric.dataset_meta = SYNTHETIC_OCCLUSION_METAINFO
    return metric


def test_orders_are_scored_against_the_true_top(synthetic):
    metric = make_metric(synthetic)
    metric.process({}, oracle_samples(synthetic))
    result = metric.evaluate(5)
    assert result['occlusion/pairs'] > 0
    assert result['occlusion/matched'] == 100.0
    assert result['occlusion/srm_acc'] == 100.0
    assert result['occlusion/score_acc'] == 0.0
    assert result['occlusion/srm_acc_diff'] == 100.0
    assert result['occlusion/score_acc_diff'] == 0.0


def test_pairs_with_an_undetected_instance_do_not_count(synthetic):
    metric = make_metric(synthetic)
    metric.process({}, oracle_samples(synthetic, drop_every=2))
    result = metric.evaluate(5)
    assert 0 < result['occlusion/matched'] < 100
    assert result['occlusion/srm_acc'] == 100.0


def test_missing_rank_scores_is_explained(synthetic):
    metric = make_metric(synthetic)
    sample = oracle_samples(synthetic)[0]
    del sample['pred_instances']['rank_scores']
    with pytest.raises(KeyError, match='rank_scores'):
        metric.process({}, [sample])
