"""PanopticOcclusionMetric and PanopticErrorMetric on hand-made 10x10 maps.

Ground truth: sky everywhere, a table (rows 2-8, columns 1-8) and a cup
(rows 4-5, columns 4-5) lying on it; the cup is the top of the one
overlapping pair.
"""
import json
import os.path as osp

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from PIL import Image

from mmoanet.datasets import (SYNTHETIC_OCCLUSION_METAINFO,
                              generate_synthetic_occlusion)
from mmoanet.evaluation.functional import id_to_rgb, rgb_to_id
from mmoanet.evaluation.metrics import (MultiOrderPanopticMetric,
                                        PanopticErrorMetric,
                                        PanopticOcclusionMetric)
from mmoanet.evaluation.metrics.panoptic_error_metric import detections_finding

META = dict(
    classes=('table', 'cup', 'sky', 'grass'),
    thing_classes=('table', 'cup'),
    stuff_classes=('sky', 'grass'))
TABLE, CUP, SKY, GRASS, VOID = 0, 1, 2, 3, 4
SKY_ID, TABLE_ID, CUP_ID = 1, 2, 3

TABLE_AMODAL = np.zeros((10, 10), bool)
TABLE_AMODAL[2:9, 1:9] = True
CUP_MASK = np.zeros((10, 10), bool)
CUP_MASK[4:6, 4:6] = True
BIG_CUP = np.zeros((10, 10), bool)
BIG_CUP[3:7, 3:7] = True


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('errors')
    ids = np.full((10, 10), SKY_ID, np.int64)
    ids[TABLE_AMODAL] = TABLE_ID
    ids[CUP_MASK] = CUP_ID
    (root / 'png').mkdir()
    Image.fromarray(id_to_rgb(ids)).save(root / 'png' / '1.png')
    segments = [
        dict(id=i, category_id=c, area=int((ids == i).sum()), iscrowd=0)
        for i, c in ((SKY_ID, 21), (TABLE_ID, 12), (CUP_ID, 11))
    ]
    panoptic = dict(
        images=[dict(id=1, file_name='1.jpg', height=10, width=10)],
        annotations=[
            dict(image_id=1, file_name='1.png', segments_info=segments)
        ],
        categories=[
            dict(id=12, name='table', isthing=1, supercategory='thing'),
            dict(id=11, name='cup', isthing=1, supercategory='thing'),
            dict(id=21, name='sky', isthing=0, supercategory='stuff'),
            dict(id=22, name='grass', isthing=0, supercategory='stuff'),
        ])
    overlap = mask_utils.encode(np.asfortranarray(CUP_MASK, np.uint8))
    overlap['counts'] = overlap['counts'].decode('ascii')
    overlaps = dict(images=[
        dict(
            image_id=1,
            pairs=[
                dict(
                    top_id=2,
                    bottom_id=1,
                    top_category_id=11,
                    bottom_category_id=12,
                    overlap_area=4,
                    top_segment_id=CUP_ID,
                    bottom_segment_id=TABLE_ID,
                    top_area=4,
                    bottom_area=56,
                    overlap_rle=overlap)
            ])
    ])
    for name, content in (('panoptic.json', panoptic), ('overlaps.json',
                                                        overlaps)):
        with open(root / name, 'w') as f:
            json.dump(content, f)
    return dict(
        ann_file=str(root / 'panoptic.json'),
        seg_prefix=str(root / 'png'),
        overlaps_file=str(root / 'overlaps.json'))


def prediction(table=None, cup=None, sky_label=SKY, detections=None):
    """A data sample; ``table``/``cup`` are bool maps laid in that order."""
    pan = np.full((10, 10), sky_label, np.int64)
    if table is not None:
        pan[table] = TABLE + INSTANCE_OFFSET
    if cup is not None:
        pan[cup] = CUP + 2 * INSTANCE_OFFSET
    sample = dict(
        img_id=1,
        ori_shape=(10, 10),
        pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pan)[None]))
    if detections is not None:
        masks, labels = zip(*detections) if detections else ((), ())
        sample['pred_instances'] = dict(
            masks=torch.from_numpy(np.stack(masks)) if masks else torch.zeros(
                (0, 10, 10), dtype=torch.bool),
            labels=torch.tensor(labels, dtype=torch.long))
    return sample


def evaluate(metric, *samples):
    metric.dataset_meta = META
    metric.process({}, list(samples))
    return metric.compute_metrics(metric.results)


BOTH_DETECTED = [(TABLE_AMODAL, TABLE), (CUP_MASK, CUP)]


def test_occlusion_metric_right_order(files):
    metrics = evaluate(
        PanopticOcclusionMetric(**files), prediction(TABLE_AMODAL, CUP_MASK))
    assert metrics == dict(
        pairs=1.0,
        top_kept=100.0,
        bottom_kept=100.0,
        both_kept=100.0,
        order_acc=100.0)


def test_occlusion_metric_top_buried(files):
    # The table laid over the cup: the table still matches (IoU 52/56),
    # the cup is gone.
    metrics = evaluate(
        PanopticOcclusionMetric(**files), prediction(TABLE_AMODAL))
    assert metrics['top_kept'] == 0 and metrics['bottom_kept'] == 100
    assert metrics['both_kept'] == 0 and metrics['order_acc'] == 0


def test_occlusion_metric_needs_segment_ids(files, tmp_path):
    with open(files['overlaps_file']) as f:
        overlaps = json.load(f)
    del overlaps['images'][0]['pairs'][0]['top_segment_id']
    old = tmp_path / 'old_overlaps.json'
    old.write_text(json.dumps(overlaps))
    with pytest.raises(ValueError, match='regenerate'):
        PanopticOcclusionMetric(**dict(files, overlaps_file=str(old)))


def test_detections_finding_leaves_out_pixels_under_occluders():
    ids = np.zeros((10, 10), np.int64)
    ids[TABLE_AMODAL] = TABLE_ID
    ids[CUP_MASK] = CUP_ID
    things, labels = [TABLE_ID, CUP_ID], [TABLE, CUP]
    on_top = np.array([[False, True], [False, False]])  # the cup on the table
    ids[BIG_CUP] = CUP_ID  # a 16 px cup: the table keeps 40 px
    found = detections_finding(TABLE_AMODAL[None], np.array([TABLE]), ids,
                               things, labels, 0.5)
    assert found.tolist() == [True, False]  # plain IoU 40 / 56
    # Columns 1-5 of the amodal table: 35 px, 12 under the cup. Plain IoU
    # 23 / 52; without the pixels under the occluder 23 / 40.
    half = TABLE_AMODAL.copy()
    half[2:9, 6:9] = False
    assert not detections_finding(half[None], np.array([TABLE]), ids, things,
                                  labels, 0.5).any()
    assert detections_finding(half[None], np.array([TABLE]), ids, things,
                              labels, 0.5, on_top).tolist() == [True, False]
    # A cup-labelled table mask does not find the cup: the table is not on
    # top of the cup, so its pixels stay in the union.
    assert not detections_finding(TABLE_AMODAL[None], np.array([CUP]), ids,
                                  things, labels, 0.5, on_top).any()


@pytest.mark.parametrize(
    'sample,kind',
    [
        # The cup is detected but the table is laid over it.
        (prediction(TABLE_AMODAL, None, detections=BOTH_DETECTED), 'buried'),
        # The cup is detected but not laid: its pixels stay sky.
        (prediction(TABLE_AMODAL & ~CUP_MASK, None,
                    detections=BOTH_DETECTED), 'not_laid'),
        # No cup detection at all.
        (prediction(TABLE_AMODAL, None, detections=BOTH_DETECTED[:1]), 'missed'
         ),
        # A cup segment four times too large (IoU 1/4).
        (prediction(TABLE_AMODAL, BIG_CUP,
                    detections=BOTH_DETECTED), 'bad_mask'),
    ])
def test_error_kinds(files, sample, kind):
    metrics = evaluate(PanopticErrorMetric(**files), sample)
    assert metrics['fn_th'] == 50.0  # the cup of two things
    for other in ('missed', 'buried', 'not_laid', 'bad_mask'):
        assert metrics[other] == (50.0 if other == kind else 0.0), other
    assert metrics['pair_top_buried'] == (100.0 if kind == 'buried' else 0)
    assert metrics['cup/PQ'] == 0 and metrics['table/RQ'] == 100
    assert metrics['RQ_th'] == pytest.approx(50.0)


def test_perfect_prediction_has_no_errors_and_pq_100(files):
    sample = prediction(TABLE_AMODAL, CUP_MASK, detections=BOTH_DETECTED)
    metrics = evaluate(PanopticErrorMetric(**files), sample)
    for key in ('PQ_th', 'PQ_st', 'cup/PQ', 'table/PQ', 'sky/PQ'):
        assert metrics[key] == pytest.approx(100.0), key
    for key in ('fn_th', 'missed', 'buried', 'fp_th', 'stuff_voided',
                'stuff_confused', 'pair_top_buried'):
        assert metrics[key] == 0.0, key


def test_stuff_pixels_voided_and_confused(files):
    # Sky (44 px) predicted VOID except two rows as grass; the table covers
    # one more sky row (row 9, columns 1-8).
    table = TABLE_AMODAL.copy()
    table[9, 1:9] = True
    sample = prediction(table, CUP_MASK, sky_label=VOID, detections=[])
    pan = sample['pred_panoptic_seg']['sem_seg'][0]
    pan[0:2] = GRASS
    metrics = evaluate(PanopticErrorMetric(**files), sample)
    assert metrics['stuff_as_thing'] == pytest.approx(100 * 8 / 44)
    assert metrics['stuff_as_stuff'] == pytest.approx(100 * 20 / 44)
    assert metrics['stuff_voided'] == pytest.approx(100 * 16 / 44)
    assert metrics['stuff_confused'] == pytest.approx(100 * 28 / 44)


def test_without_detections_missed_is_not_reported(files):
    metrics = evaluate(PanopticErrorMetric(**files), prediction(TABLE_AMODAL))
    assert 'missed' not in metrics
    assert metrics['buried'] == 50.0


def test_pq_agrees_with_the_panoptic_metric(files):
    sample = prediction(
        TABLE_AMODAL & ~CUP_MASK,
        np.roll(CUP_MASK, 1, axis=1),
        detections=BOTH_DETECTED)
    errors = evaluate(PanopticErrorMetric(**files), sample)
    panoptic = evaluate(
        MultiOrderPanopticMetric(
            ann_file=files['ann_file'], seg_prefix=files['seg_prefix']),
        sample)
    for key in ('PQ_th', 'SQ_th', 'RQ_th', 'PQ_st', 'SQ_st', 'RQ_st'):
        assert errors[key] == pytest.approx(panoptic[key]), key


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic_errors'))
    generate_synthetic_occlusion(root, num_train=0, num_val=6, size=97, seed=4)
    return root


def laid_predictions(root, wrong_order):
    """Stuff from the PNG, amodal things laid bottom-up (right) or top-down.

    Laid bottom-up, the canvas equals the ground truth; laid top-down,
    every bottom thing covers the things lying on it.
    """
    from pycocotools.coco import COCO
    meta = SYNTHETIC_OCCLUSION_METAINFO
    coco = COCO(osp.join(root, 'annotations', 'instances_val.json'))
    with open(osp.join(root, 'annotations', 'panoptic_val.json')) as f:
        panoptic = json.load(f)
    names = {c['id']: c['name'] for c in panoptic['categories']}
    samples = []
    for annotation in panoptic['annotations']:
        ids = rgb_to_id(
            np.asarray(
                Image.open(
                    osp.join(root, 'annotations', 'panoptic_val',
                             annotation['file_name'])).convert('RGB')))
        pan = np.full(ids.shape, len(meta['classes']), np.int64)
        for segment in annotation['segments_info']:
            name = names[segment['category_id']]
            if name in meta['stuff_classes']:
                pan[ids == segment['id']] = meta['classes'].index(name)
        anns = sorted(
            coco.loadAnns(coco.getAnnIds(imgIds=[annotation['image_id']])),
            key=lambda a: a['depth'],
            reverse=wrong_order)
        masks, labels = [], []
        for number, ann in enumerate(anns, start=1):
            mask = coco.annToMask(ann).astype(bool)
            label = meta['classes'].index(names[ann['category_id']])
            pan[mask] = label + number * INSTANCE_OFFSET
            masks.append(mask)
            labels.append(label)
        samples.append(
            dict(
                img_id=annotation['image_id'],
                pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pan)[None]),
                pred_instances=dict(
                    masks=torch.from_numpy(np.stack(masks)),
                    labels=torch.tensor(labels))))
    return samples


@pytest.mark.parametrize('wrong_order', [False, True])
def test_metrics_on_the_synthetic_set(synthetic, wrong_order):
    ann = osp.join(synthetic, 'annotations')
    files = dict(
        ann_file=osp.join(ann, 'panoptic_val.json'),
        seg_prefix=osp.join(ann, 'panoptic_val'),
        overlaps_file=osp.join(ann, 'overlaps_val.json'))
    samples = laid_predictions(synthetic, wrong_order)
    meta = SYNTHETIC_OCCLUSION_METAINFO
    errors = PanopticErrorMetric(**files)
    errors.dataset_meta = meta
    errors.process({}, samples)
    errors = errors.compute_metrics(errors.results)
    pairs = PanopticOcclusionMetric(**files)
    pairs.dataset_meta = meta
    pairs.process({}, samples)
    pairs = pairs.compute_metrics(pairs.results)
    assert pairs['pairs'] > 10
    kinds = sum(errors[k]
                for k in ('missed', 'buried', 'not_laid', 'bad_mask'))
    assert kinds == pytest.approx(errors['fn_th'])
    assert errors['missed'] == 0  # every thing has its amodal detection
    if not wrong_order:
        assert errors['PQ_th'] == pytest.approx(100.0)
        assert errors['fn_th'] == 0 and errors['fp_th'] == 0
        assert pairs['top_kept'] == pairs['both_kept'] == 100.0
        assert pairs['order_acc'] == 100.0
    else:
        assert pairs['top_kept'] < 70 and errors['buried'] > 10
        assert errors['pair_top_buried'] > 30
        assert errors['PQ_th'] < 80
