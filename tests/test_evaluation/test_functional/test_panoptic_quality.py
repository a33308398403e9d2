import contextlib
import io
import json
import os
import os.path as osp
import shutil
import sys

import numpy as np
import pytest
from panopticapi.evaluation import pq_compute
from PIL import Image

from mmoanet.evaluation.functional import (PanopticStats, bgr_to_id, id_to_rgb,
                                           load_panoptic_png, merge_stats,
                                           panoptic_stats_single, pq_average,
                                           pq_summary, rgb_to_id)
from mmoanet.testing import (pq_compute_files, random_categories,
                             random_panoptic_pair, write_random_panoptic_set)
from tests.utils import SAMPLE_DIR

CATEGORIES = {
    1: dict(id=1, name='person', isthing=1),
    2: dict(id=2, name='car', isthing=1),
    3: dict(id=3, name='sky', isthing=0),
    4: dict(id=4, name='boat', isthing=1),  # absent from both sides
}


def hand_case():
    """8x8 case; expected numbers are worked out in the test below."""
    gt = np.zeros((8, 8), dtype=np.int64)
    gt[0:2] = 10  # sky
    gt[2:5, 0:4] = 20  # person
    gt[2:5, 4:8] = 30  # person crowd
    gt[5:8, 0:4] = 40  # car; rows 5-7, cols 4-7 stay VOID
    gt_segments = [
        dict(id=10, category_id=3, iscrowd=0),
        dict(id=20, category_id=1, iscrowd=0),
        dict(id=30, category_id=1, iscrowd=1),
        dict(id=40, category_id=2, iscrowd=0),
    ]
    pred = np.zeros((8, 8), dtype=np.int64)
    pred[0:2] = 1  # sky, also over 8 VOID pixels below
    pred[5:7, 4:8] = 1
    pred[2:5, 0:3] = 2  # person, IoU 9 / 12
    pred[2:5, 3:8] = 3  # person, 12 of 15 pixels on the crowd: ignored
    pred[5:8, 2:4] = 4  # car, IoU 6 / 12 = 0.5: no match, FP
    pred[7, 4:8] = 5  # car, all on VOID: ignored
    pred_segments = [
        dict(id=1, category_id=3),
        dict(id=2, category_id=1),
        dict(id=3, category_id=1),
        dict(id=4, category_id=2),
        dict(id=5, category_id=2),
    ]
    return gt, gt_segments, pred, pred_segments


def write_coco_files(out_dir, images, categories):
    """Write (gt, gt_segments, pred, pred_segments) tuples as COCO files."""
    for sub in ('gt', 'pred'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    gt_anns, pred_anns = [], []
    for image_id, (gt, gt_segments, pred, pred_segments) in enumerate(images):
        name = f'{image_id}.png'
        Image.fromarray(id_to_rgb(gt)).save(osp.join(out_dir, 'gt', name))
        Image.fromarray(id_to_rgb(pred)).save(osp.join(out_dir, 'pred', name))
        area = dict(zip(*np.unique(gt, return_counts=True)))
        gt_segments = [
            dict(seg, area=int(area.get(seg['id'], 0))) for seg in gt_segments
        ]
        gt_anns.append(
            dict(image_id=image_id, file_name=name, segments_info=gt_segments))
        pred_anns.append(
            dict(
                image_id=image_id,
                file_name=name,
                segments_info=[dict(seg) for seg in pred_segments]))
    paths = dict(
        gt_json=osp.join(out_dir, 'gt.json'),
        pred_json=osp.join(out_dir, 'pred.json'),
        gt_folder=osp.join(out_dir, 'gt'),
        pred_folder=osp.join(out_dir, 'pred'))
    with open(paths['gt_json'], 'w') as f:
        json.dump(
            dict(annotations=gt_anns, categories=list(categories.values())), f)
    with open(paths['pred_json'], 'w') as f:
        json.dump(dict(annotations=pred_anns), f)
    return paths


def reference_pq(paths):
    with contextlib.redirect_stdout(io.StringIO()):
        return pq_compute(paths['gt_json'], paths['pred_json'],
                          paths['gt_folder'], paths['pred_folder'])


def assert_same_results(reference, ours):
    for group in ('All', 'Things', 'Stuff'):
        assert ours[group]['n'] == reference[group]['n']
        for field in ('pq', 'sq', 'rq'):
            assert abs(ours[group][field] - reference[group][field]) < 1e-9
    assert ours['per_class'].keys() == reference['per_class'].keys()
    for cat_id, values in reference['per_class'].items():
        for field in ('pq', 'sq', 'rq'):
            assert abs(ours['per_class'][cat_id][field] - values[field]) < 1e-9


def test_hand_case_exact_numbers(tmp_path):
    stats = panoptic_stats_single(*hand_case(), categories=CATEGORIES)
    # sky: TP with IoU 1 (VOID left out of the union).
    np.testing.assert_allclose(stats.get(3), [1, 0, 0, 1.0])
    # person: TP with IoU 0.75; the crowd is no FN, the crowd-covering
    # prediction no FP.
    np.testing.assert_allclose(stats.get(1), [1, 0, 0, 0.75])
    # car: IoU exactly 0.5 does not match -> FP + FN; the prediction on
    # VOID is ignored.
    np.testing.assert_allclose(stats.get(2), [0, 1, 1, 0.0])
    assert 4 not in stats.per_category

    results = pq_summary(stats, CATEGORIES)
    assert results['All']['n'] == 3
    assert results['All']['pq'] == pytest.approx((1 + 0.75) / 3, abs=1e-12)
    assert results['All']['sq'] == pytest.approx((1 + 0.75) / 3, abs=1e-12)
    assert results['All']['rq'] == pytest.approx(2 / 3, abs=1e-12)
    assert results['Things']['n'] == 2
    assert results['Things']['pq'] == pytest.approx(0.375, abs=1e-12)
    assert results['Things']['rq'] == pytest.approx(0.5, abs=1e-12)
    assert results['Stuff'] == dict(pq=1.0, sq=1.0, rq=1.0, n=1)
    assert results['per_class'][4] == dict(pq=0.0, sq=0.0, rq=0.0)

    paths = write_coco_files(str(tmp_path), [hand_case()], CATEGORIES)
    assert_same_results(reference_pq(paths), results)


def test_perfect_and_empty_prediction():
    gt, gt_segments, _, _ = hand_case()
    pred_segments = [
        dict(id=seg['id'], category_id=seg['category_id'])
        for seg in gt_segments
    ]
    perfect = pq_summary(
        panoptic_stats_single(gt, gt_segments, gt, pred_segments), CATEGORIES)
    for group in ('All', 'Things', 'Stuff'):
        assert perfect[group]['pq'] == 1.0
        assert perfect[group]['sq'] == 1.0
        assert perfect[group]['rq'] == 1.0

    empty = panoptic_stats_single(gt, gt_segments, np.zeros_like(gt), [])
    assert empty.get(1).tolist() == [0, 0, 1, 0]
    assert empty.get(2).tolist() == [0, 0, 1, 0]
    assert pq_summary(empty, CATEGORIES)['All'] == dict(
        pq=0.0, sq=0.0, rq=0.0, n=3)


def test_half_overlap_fails_match():
    gt = np.zeros((4, 8), dtype=np.int64)
    gt[:, :4] = 7
    pred = np.zeros((4, 8), dtype=np.int64)
    pred[:, 2:6] = 9  # 8 of 16 pixels shared: IoU 8 / 24
    stats = panoptic_stats_single(gt, [dict(id=7, category_id=1)], pred,
                                  [dict(id=9, category_id=1)])
    assert stats.get(1).tolist() == [0, 1, 1, 0]


def mmoanet_pq(paths):
    """Our in-memory engine on files: PNGs decoded, scored per image."""
    with open(paths['gt_json']) as f:
        gt_json = json.load(f)
    with open(paths['pred_json']) as f:
        pred_by_image = {
            ann['image_id']: ann
            for ann in json.load(f)['annotations']
        }
    categories = {cat['id']: cat for cat in gt_json['categories']}
    stats = PanopticStats()
    for gt_ann in gt_json['annotations']:
        pred_ann = pred_by_image[gt_ann['image_id']]
        stats += panoptic_stats_single(
            load_panoptic_png(
                osp.join(paths['gt_folder'],
                         gt_ann['file_name'])), gt_ann['segments_info'],
            load_panoptic_png(
                osp.join(paths['pred_folder'], pred_ann['file_name'])),
            pred_ann['segments_info'], categories)
    return pq_summary(stats, categories)


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_random_cases_equal_panopticapi(tmp_path, seed):
    """Both engines (ours in memory, hotcoco on files) give panopticapi's
    numbers, per class too, on sets where every PQ rule occurs."""
    paths = write_random_panoptic_set(
        str(tmp_path), num_images=12, size=(48, 56), seed=seed)
    reference = reference_pq(paths)
    assert_same_results(reference, mmoanet_pq(paths))
    hotcoco = pq_compute_files(**paths_args(paths))
    assert_same_results(reference, hotcoco)
    assert hotcoco.keys() == reference.keys()


def test_hand_case_files_equal_panopticapi(tmp_path):
    paths = write_coco_files(str(tmp_path), [hand_case()], CATEGORIES)
    reference = reference_pq(paths)
    assert reference['Things']['pq'] == pytest.approx(0.375)
    for results in (mmoanet_pq(paths), pq_compute_files(**paths_args(paths))):
        assert_same_results(reference, results)
        # boat (id 4) has no segment: 0 as panopticapi, not hotcoco's -1.
        assert results['per_class'][4] == dict(pq=0.0, sq=0.0, rq=0.0)


def test_pq_compute_files_refuses_what_panopticapi_would_not_do(tmp_path):
    paths = write_coco_files(str(tmp_path), [hand_case()], CATEGORIES)
    with open(paths['gt_json']) as f:
        gt_json = json.load(f)
    for cat in gt_json['categories']:
        del cat['isthing']
    no_isthing = str(tmp_path / 'no_isthing.json')
    with open(no_isthing, 'w') as f:
        json.dump(gt_json, f)
    with pytest.raises(ValueError, match='isthing'):
        pq_compute_files(no_isthing, paths['pred_json'], paths['gt_folder'],
                         paths['pred_folder'])
    empty = str(tmp_path / 'empty.json')
    with open(empty, 'w') as f:
        json.dump(dict(annotations=[]), f)
    with pytest.raises(ValueError, match='no prediction'):
        pq_compute_files(paths['gt_json'], empty, paths['gt_folder'],
                         paths['pred_folder'])


def test_pq_compute_files_names_the_extra_without_hotcoco(monkeypatch):
    monkeypatch.setitem(sys.modules, 'hotcoco.panoptic', None)
    with pytest.raises(ImportError, match=r'mmoanet\[fast-pq\]'):
        pq_compute_files('gt.json', 'pred.json')


def paths_args(paths):
    return dict(
        gt_json_file=paths['gt_json'],
        pred_json_file=paths['pred_json'],
        gt_folder=paths['gt_folder'],
        pred_folder=paths['pred_folder'])


def test_stats_merge_and_pickle():
    import pickle
    a = panoptic_stats_single(*hand_case())
    gt, gt_segments, _, _ = hand_case()
    b = panoptic_stats_single(gt, gt_segments, np.zeros_like(gt), [])
    total = merge_stats([a, b])
    assert total == a + b
    np.testing.assert_allclose(total.get(2), [0, 1, 2, 0])
    assert pickle.loads(pickle.dumps(total)) == total
    assert a.get(2).tolist() == [0, 1, 1, 0]  # merge did not mutate a


def test_no_category_with_segments_gives_zero():
    summary, per_class = pq_average(PanopticStats(), CATEGORIES, True)
    assert summary == dict(pq=0.0, sq=0.0, rq=0.0, n=0)
    assert set(per_class) == {1, 2, 4}


def test_invalid_predictions_raise():
    gt, gt_segments, pred, pred_segments = hand_case()
    with pytest.raises(KeyError, match='not in its segments info'):
        panoptic_stats_single(gt, gt_segments, pred, pred_segments[:-1])
    with pytest.raises(KeyError, match='no pixel'):
        panoptic_stats_single(gt, gt_segments, pred,
                              pred_segments + [dict(id=99, category_id=1)])
    with pytest.raises(KeyError, match='unknown category_id'):
        panoptic_stats_single(gt, gt_segments, pred,
                              pred_segments[:-1] + [dict(id=5, category_id=9)],
                              CATEGORIES)


def test_rgb_id_round_trip():
    ids = np.array([[0, 1, 256], [65536, 16777215, 1234567]])
    assert np.array_equal(rgb_to_id(id_to_rgb(ids)), ids)
    assert id_to_rgb(ids)[1, 0].tolist() == [0, 0, 1]  # 65536 = 256**2 B
    with pytest.raises(ValueError):
        id_to_rgb(np.array([1 << 24]))
    with pytest.raises(ValueError):
        id_to_rgb(np.array([-1]))


def test_codec_equals_panopticapi():
    """Our OpenCV codec gives panopticapi's colours and ids, faster."""
    from panopticapi.utils import id2rgb, rgb2id
    ids = np.random.default_rng(0).integers(0, 1 << 24, size=(37, 53))
    rgb = id_to_rgb(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (37, 53, 3)
    assert np.array_equal(rgb, id2rgb(ids))
    assert np.array_equal(rgb_to_id(rgb), rgb2id(rgb))
    # BGR as OpenCV reads it, and a non-contiguous (flipped) view.
    assert np.array_equal(bgr_to_id(rgb[..., ::-1]), ids)
    assert np.array_equal(rgb_to_id(rgb[:, ::-1]), ids[:, ::-1])
    assert np.array_equal(
        id_to_rgb(ids.T), id2rgb(np.ascontiguousarray(ids.T)))


def test_real_sample_ground_truth_as_prediction(tmp_path):
    shutil.copytree(SAMPLE_DIR, tmp_path / 'sample')
    root = tmp_path / 'sample'
    with open(root / 'panoptic_examples.json') as f:
        gt_json = json.load(f)
    categories = {cat['id']: cat for cat in gt_json['categories']}
    stats = PanopticStats()
    for ann in gt_json['annotations']:
        ids = load_panoptic_png(
            str(root / 'panoptic_examples' / ann['file_name']))
        pred_segments = [
            dict(id=seg['id'], category_id=seg['category_id'])
            for seg in ann['segments_info']
        ]
        stats += panoptic_stats_single(ids, ann['segments_info'], ids,
                                       pred_segments, categories)
    results = pq_summary(stats, categories)
    paths = dict(
        gt_json=str(root / 'panoptic_examples.json'),
        pred_json=str(root / 'panoptic_examples.json'),
        gt_folder=str(root / 'panoptic_examples'),
        pred_folder=str(root / 'panoptic_examples'))
    reference = reference_pq(paths)
    assert_same_results(reference, results)
    assert_same_results(reference, pq_compute_files(**paths_args(paths)))
    assert results['All']['pq'] == pytest.approx(1.0, abs=1e-12)
    assert results['All']['sq'] == pytest.approx(1.0, abs=1e-12)
    assert results['All']['rq'] == pytest.approx(1.0, abs=1e-12)
    assert results['Things']['n'] > 0 and results['Stuff']['n'] > 0


def test_random_pairs_cover_every_rule():
    """The generator makes crowd, VOID, empty and unmatched predictions."""
    rng = np.random.default_rng(0)
    seen = dict(crowd=0, gt_void=0, pred_void=0, empty=0, fp_or_fn=0)
    for _ in range(60):
        gt, gt_segments, pred, pred_segments = random_panoptic_pair(
            40, 48, rng)
        seen['crowd'] += any(seg['iscrowd'] for seg in gt_segments)
        seen['gt_void'] += bool((gt == 0).any())
        seen['pred_void'] += bool((pred == 0).any())
        seen['empty'] += not pred_segments
        stats = panoptic_stats_single(gt, gt_segments, pred, pred_segments)
        seen['fp_or_fn'] += any(values[1] + values[2] > 0
                                for values in stats.per_category.values())
    assert all(count > 0 for count in seen.values()), seen
    categories = random_categories()
    assert {cat['isthing'] for cat in categories} == {0, 1}
