import contextlib
import io
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmengine.structures import PixelData
from panopticapi.evaluation import pq_compute
from PIL import Image

from mmoanet.evaluation.functional import id_to_rgb, load_panoptic_png
from mmoanet.evaluation.metrics import MultiOrderPanopticMetric
from tests.utils import SAMPLE_DIR

META = dict(
    classes=('person', 'dog', 'sky', 'grass'),
    thing_classes=('person', 'dog'),
    stuff_classes=('sky', 'grass'))
VOID_LABEL = len(META['classes'])
FIELDS = [
    f'{field}{suffix}' for suffix in ('', '_th', '_st')
    for field in ('PQ', 'SQ', 'RQ')
]


def scene_images():
    """Two ground truth id maps, their segments and three orders each.

    Orders map ground truth ids to fusion head ids ``label + 1000 * inst``.
    Image 2's first person is label 0 with instance 0, i.e. id 0, which the
    metric must not confuse with COCO's VOID.
    """
    gt1 = np.full((10, 12), 200)
    gt1[:4] = 100
    gt1[5:9, 1:5] = 300
    gt1[5:9, 7:11] = 400
    gt1[9, 0:3] = 0
    segments1 = [
        dict(id=100, category=2, is_thing=False),
        dict(id=200, category=3, is_thing=False),
        dict(id=300, category=0, is_thing=True),
        dict(id=400, category=1, is_thing=False),  # crowd dogs
    ]
    primary1 = {100: 2, 200: 3, 300: 1000, 400: 2001, 0: VOID_LABEL}
    score1 = {**primary1, 300: 3}  # person lost under grass
    gt2 = np.full((9, 7), 200)
    gt2[2:6, 1:4] = 500
    gt2[2:6, 4:7] = 600
    gt2[8] = 0
    segments2 = [
        dict(id=200, category=3, is_thing=False),
        dict(id=500, category=0, is_thing=True),
        dict(id=600, category=0, is_thing=True),
    ]
    primary2 = {200: 3, 500: 0, 600: 2000, 0: VOID_LABEL}
    score2 = {**primary2, 500: 1000, 600: 1000}  # persons merged
    return [(gt1, segments1, primary1, score1),
            (gt2, segments2, primary2, score2)]


def relabel(gt, mapping):
    pan = np.zeros_like(gt)
    for gt_id, pan_id in mapping.items():
        pan[gt == gt_id] = pan_id
    return torch.from_numpy(pan[None].astype(np.int32))


def build_samples(root, with_gt=True, orders=('srm', 'score')):
    """Data samples as the evaluator passes them (``to_dict()``)."""
    os.makedirs(osp.join(root, 'gt'), exist_ok=True)
    samples = []
    for img_id, (gt, segments, primary, score) in enumerate(scene_images(), 1):
        seg_map_path = osp.join(root, 'gt', f'img{img_id}.png')
        Image.fromarray(id_to_rgb(gt)).save(seg_map_path)
        sample = DetDataSample(
            metainfo=dict(
                img_id=img_id,
                img_path=osp.join(root, 'images', f'img{img_id}.jpg'),
                ori_shape=gt.shape))
        if with_gt:
            sample.set_metainfo(
                dict(seg_map_path=seg_map_path, segments_info=segments))
        primary_seg = PixelData(sem_seg=relabel(gt, primary))
        sample.pred_panoptic_seg = primary_seg
        if 'srm' in orders:  # rank_by='srm': the very same object
            sample.pred_panoptic_seg_srm = primary_seg
        if 'score' in orders:
            sample.pred_panoptic_seg_score = PixelData(
                sem_seg=relabel(gt, score))
        samples.append(sample.to_dict())
    return samples


def write_gt_json(root):
    """The scene's ground truth as a label-space COCO panoptic JSON."""
    categories = [
        dict(id=label, name=name, isthing=int(name in META['thing_classes']))
        for label, name in enumerate(META['classes'])
    ]
    annotations = []
    for img_id, (gt, segments, _, _) in enumerate(scene_images(), 1):
        annotations.append(
            dict(
                image_id=img_id,
                file_name=f'img{img_id}.png',
                segments_info=[
                    dict(
                        id=seg['id'],
                        category_id=seg['category'],
                        iscrowd=int(categories[seg['category']]['isthing']
                                    and not seg['is_thing']),
                        area=int((gt == seg['id']).sum())) for seg in segments
                ]))
    path = osp.join(root, 'gt.json')
    with open(path, 'w') as f:
        json.dump(dict(annotations=annotations, categories=categories), f)
    return path


def evaluate(samples, **kwargs):
    metric = METRICS.build(dict(type='MultiOrderPanopticMetric', **kwargs))
    metric.dataset_meta = META
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_reports_every_order(tmp_path):
    results = evaluate(build_samples(str(tmp_path)), classwise=True)
    expected_keys = {
        f'coco_panoptic/{order}{field}'
        for order in ('', 'srm/', 'score/')
        for field in FIELDS
    }
    assert set(results) == expected_keys

    # Primary: perfect, the id-0 person included; crowd dogs count nowhere.
    for field in FIELDS:
        assert results[f'coco_panoptic/{field}'] == pytest.approx(100.0)
        # srm is the primary itself (rank_by='srm').
        assert (results[f'coco_panoptic/srm/{field}'] ==
                results[f'coco_panoptic/{field}'])

    # Score order by hand: sky TP (IoU 1); grass TP twice (IoU 37/53 with
    # the lost person, then 1); persons 0 TP, 1 FP, 3 FN.
    grass = (37 / 53 + 1) / 2
    assert results['coco_panoptic/score/PQ'] == pytest.approx(
        100 * (1 + grass + 0) / 3)
    assert results['coco_panoptic/score/RQ'] == pytest.approx(100 * 2 / 3)
    assert results['coco_panoptic/score/PQ_th'] == pytest.approx(0.0)
    assert results['coco_panoptic/score/PQ_st'] == pytest.approx(
        100 * (1 + grass) / 2)
    assert results['coco_panoptic/score/SQ_st'] == pytest.approx(
        100 * (1 + grass) / 2)


def test_only_primary_order(tmp_path):
    results = evaluate(build_samples(str(tmp_path), orders=()))
    assert set(results) == {f'coco_panoptic/{field}' for field in FIELDS}


@pytest.mark.parametrize('order', ['', 'score'])
def test_format_only_round_trip(tmp_path, order):
    root = str(tmp_path)
    samples = build_samples(root)
    expected = evaluate(samples)
    if order:
        for sample in samples:
            sample['pred_panoptic_seg'] = sample[f'pred_panoptic_seg_{order}']
    prefix = osp.join(root, 'out', 'results')
    assert evaluate(samples, format_only=True, outfile_prefix=prefix) == {}

    with open(f'{prefix}.panoptic.json') as f:
        annotations = json.load(f)['annotations']
    file_names = [ann['file_name'] for ann in annotations]
    assert file_names == ['img1.png', 'img2.png']
    ids = load_panoptic_png(osp.join(f'{prefix}.panoptic', 'img2.png'))
    assert ids.shape == (9, 7) and (ids[8] == 0).all()  # VOID written as 0
    with contextlib.redirect_stdout(io.StringIO()):
        reference = pq_compute(
            write_gt_json(root), f'{prefix}.panoptic.json',
            osp.join(root, 'gt'), f'{prefix}.panoptic')
    key_prefix = f'coco_panoptic/{order}/' if order else 'coco_panoptic/'
    for suffix, group in (('', 'All'), ('_th', 'Things'), ('_st', 'Stuff')):
        for field in ('pq', 'sq', 'rq'):
            assert expected[f'{key_prefix}{field.upper()}{suffix}'] == (
                pytest.approx(100 * reference[group][field], abs=1e-9))


def test_no_ground_truth_error(tmp_path):
    samples = build_samples(str(tmp_path), with_gt=False)
    with pytest.raises(ValueError, match='no panoptic ground truth'):
        evaluate(samples)
    # Writing a submission needs no ground truth.
    prefix = osp.join(str(tmp_path), 'sub')
    assert evaluate(samples, format_only=True, outfile_prefix=prefix) == {}
    with pytest.raises(ValueError, match='outfile_prefix'):
        MultiOrderPanopticMetric(format_only=True)

    image_info = osp.join(str(tmp_path), 'image_info.json')
    with open(image_info, 'w') as f:
        json.dump(dict(images=[], categories=[]), f)
    with pytest.raises(ValueError, match='no panoptic ground truth'):
        MultiOrderPanopticMetric(ann_file=image_info)


def test_real_sample_with_ann_file(tmp_path):
    """Ground truth as prediction through ann_file and seg_prefix: PQ 100."""
    root = tmp_path / 'sample'
    shutil.copytree(SAMPLE_DIR, root)
    with open(root / 'panoptic_examples.json') as f:
        coco = json.load(f)
    # As in mmdet's dataset, label i is the i-th category of the JSON
    # (ids 1..200 with gaps, so labels differ from category ids).
    categories = coco['categories']
    meta = dict(
        classes=tuple(cat['name'] for cat in categories),
        thing_classes=tuple(cat['name'] for cat in categories
                            if cat['isthing']))
    label_of_cat = {cat['id']: label for label, cat in enumerate(categories)}
    isthing = {cat['id']: cat['isthing'] for cat in categories}
    samples = []
    for ann in coco['annotations']:
        ids = load_panoptic_png(
            str(root / 'panoptic_examples' / ann['file_name']))
        pan = np.full(ids.shape, len(categories), dtype=np.int32)
        for instance, seg in enumerate(ann['segments_info'], 1):
            label = label_of_cat[seg['category_id']]
            instance *= isthing[seg['category_id']]  # stuff: instance 0
            pan[ids == seg['id']] = label + 1000 * instance
        sample = DetDataSample(
            metainfo=dict(
                img_id=ann['image_id'],
                img_path=str(root / 'input_images' /
                             ann['file_name'].replace('.png', '.jpg')),
                ori_shape=ids.shape))
        sample.pred_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(pan[None]))
        samples.append(sample.to_dict())
    metric = MultiOrderPanopticMetric(
        ann_file=str(root / 'panoptic_examples.json'),
        seg_prefix=str(root / 'panoptic_examples'),
        classwise=True)
    metric.dataset_meta = meta
    metric.process({}, samples)
    results = metric.evaluate(len(samples))
    for field in FIELDS:
        assert results[f'coco_panoptic/{field}'] == pytest.approx(100.0)


def test_orders_inside_the_primary_result(tmp_path):
    """mmdet's PanopticFPN with an SRMFusionHead keeps only
    ``pred_panoptic_seg``; the other orders ride in it as fields."""
    separate = evaluate(build_samples(str(tmp_path)))
    samples = build_samples(str(tmp_path))
    for sample in samples:
        primary = sample['pred_panoptic_seg']
        primary['sem_seg_srm'] = sample.pop('pred_panoptic_seg_srm')['sem_seg']
        primary['sem_seg_score'] = sample.pop(
            'pred_panoptic_seg_score')['sem_seg']
    inside = evaluate(samples)
    assert inside == separate
    assert inside['coco_panoptic/score/PQ'] < inside['coco_panoptic/srm/PQ']
