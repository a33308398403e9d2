"""CocoPanopticInstancesDataset on the real COCO sample and on bad input."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmdet.datasets import CocoPanopticDataset
from mmdet.evaluation import CocoPanopticMetric
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import DATASETS
from mmengine.logging import MMLogger

from mmoanet.datasets import (SYNTHETIC_OCCLUSION_METAINFO,
                              CocoPanopticInstancesDataset, DatasetItemError,
                              PanopticAnnotationError,
                              PanopticFileNotFoundError,
                              generate_synthetic_occlusion)

LOADING = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticInstanceAnnotations')
]
MMDET_LOADING = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations')
]
NUM_SEGMENTS = {142238: 18, 439180: 32}
NUM_CROWD = {142238: 1, 439180: 2}


def build_sample(root: str, **kwargs) -> CocoPanopticInstancesDataset:
    """The real sample as our dataset (instances from the RLE export)."""
    cfg = dict(
        type='CocoPanopticInstancesDataset',
        data_root=root,
        ann_file='panoptic_examples.json',
        ins_ann_file='panoptic_coco_detection_format.json',
        data_prefix=dict(img='input_images/', seg='panoptic_examples/'),
        pipeline=LOADING)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_panoptic_source_equals_mmdet(sample_root):
    ours = build_sample(sample_root, instance_source='panoptic')
    theirs = CocoPanopticDataset(
        data_root=sample_root,
        ann_file='panoptic_examples.json',
        data_prefix=dict(img='input_images/', seg='panoptic_examples/'),
        pipeline=MMDET_LOADING)
    assert len(ours) == 2
    for index in range(2):
        got, expected = ours[index], theirs[index]
        img_id = got['img_id']
        assert len(got['segments_info']) == NUM_SEGMENTS[img_id]
        crowd = [
            s for s in got['segments_info']
            if not s['is_thing'] and s['category'] < 80
        ]
        assert len(crowd) == NUM_CROWD[img_id]  # crowd: no instance
        assert not got['gt_ignore_flags'].any()
        np.testing.assert_array_equal(got['gt_seg_map'],
                                      expected['gt_seg_map'])
        np.testing.assert_array_equal(got['gt_masks'].masks,
                                      expected['gt_masks'].masks)
        np.testing.assert_array_equal(got['gt_bboxes_labels'],
                                      expected['gt_bboxes_labels'])
        assert torch.equal(got['gt_bboxes'].tensor,
                           expected['gt_bboxes'].tensor)
        assert got['gt_seg_map'].dtype == np.uint8
        assert set(np.unique(got['gt_seg_map'])) <= set(range(133)) | {255}


def as_keys(masks: np.ndarray, labels: np.ndarray) -> list:
    """(label, mask bytes) pairs, sorted: compares masks in any order."""
    return sorted(
        (int(label), mask.tobytes()) for mask, label in zip(masks, labels))


def test_instances_source_on_real_sample(sample_root):
    pano = build_sample(sample_root, instance_source='panoptic')
    ins = build_sample(sample_root, instance_source='instances')
    for index in range(2):
        got, reference = ins[index], pano[index]
        img_id = got['img_id']
        # Crowd comes back as an ignored instance, as mmdet's CocoDataset.
        assert got['gt_ignore_flags'].sum() == NUM_CROWD[img_id]
        assert len(got['gt_masks']) == len(got['gt_bboxes'])
        kept = ~got['gt_ignore_flags']

        # The export holds the PNG's segments, so non-crowd masks agree.
        assert as_keys(got['gt_masks'].masks[kept],
                       got['gt_bboxes_labels'][kept]) == as_keys(
                           reference['gt_masks'].masks,
                           reference['gt_bboxes_labels'])
        np.testing.assert_array_equal(got['gt_seg_map'],
                                      reference['gt_seg_map'])


def test_pipeline_with_augmentations(sample_root):
    pipeline = LOADING + [
        dict(type='Resize', scale=(333, 201), keep_ratio=True),
        dict(type='RandomFlip', prob=1.0),
        dict(type='PackDetInputs')
    ]
    dataset = build_sample(sample_root, pipeline=pipeline)
    for index in range(2):
        packed = dataset[index]
        sample = packed['data_samples']
        height, width = packed['inputs'].shape[1:]
        assert sample.gt_sem_seg.sem_seg.shape == (1, height, width)
        assert sample.gt_instances.masks.masks.shape[1:] == (height, width)
        assert len(sample.gt_instances) == len(sample.gt_instances.masks)
        assert len(sample.ignored_instances) == NUM_CROWD[sample.img_id]


def ground_truth_as_prediction(data_info: dict) -> torch.Tensor:
    """Panoptic ids ``label + k * INSTANCE_OFFSET`` of the GT, crowd VOID."""
    seg_map = data_info['gt_seg_map'].astype(np.int64)
    panoptic = np.full(seg_map.shape, 133, np.int64)  # VOID = num_classes
    png = cv2.imread(data_info['seg_map_path'])[..., ::-1].astype(np.int64)
    ids = png[..., 0] + 256 * png[..., 1] + 65536 * png[..., 2]
    for number, segment in enumerate(data_info['segments_info'], start=1):
        region = ids == segment['id']
        if segment['is_thing']:
            panoptic[region] = segment['category'] + number * INSTANCE_OFFSET
        elif segment['category'] >= 80:  # stuff; crowd stays VOID
            panoptic[region] = segment['category']
    return torch.from_numpy(panoptic)[None]


def test_ground_truth_scores_pq_100(sample_root):
    dataset = build_sample(sample_root)
    metric = CocoPanopticMetric(
        seg_prefix=osp.join(sample_root, 'panoptic_examples'))
    metric.dataset_meta = dataset.metainfo
    samples = []
    for index in range(2):
        data_info = dataset[index]
        samples.append(
            dict(
                img_id=data_info['img_id'],
                img_path=data_info['img_path'],
                ori_shape=data_info['ori_shape'],
                segments_info=data_info['segments_info'],
                seg_map_path=data_info['seg_map_path'],
                pred_panoptic_seg=dict(
                    sem_seg=ground_truth_as_prediction(data_info))))
    metric.process({}, samples)
    results = metric.compute_metrics(metric.results)
    assert results['PQ'] == pytest.approx(100.0)
    assert results['PQ_th'] == pytest.approx(100.0)
    assert results['PQ_st'] == pytest.approx(100.0)


# ---------------------------------------------------------------- bad input


@pytest.fixture
def small_root(tmp_path) -> str:
    """Three fresh 64-pixel synthetic images that a test may corrupt."""
    generate_synthetic_occlusion(
        str(tmp_path), num_train=3, num_val=0, size=64, seed=11)
    return str(tmp_path)


def build_small(root: str, **kwargs) -> CocoPanopticInstancesDataset:
    """The small synthetic train split as our dataset."""
    cfg = dict(
        type='CocoPanopticInstancesDataset',
        data_root=root,
        ann_file='annotations/panoptic_train.json',
        ins_ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
        metainfo=SYNTHETIC_OCCLUSION_METAINFO,
        pipeline=LOADING)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def edit_json(path: str, edit) -> None:
    """Apply ``edit`` to the JSON file at ``path`` in place."""
    with open(path) as file:
        content = json.load(file)
    edit(content)
    with open(path, 'w') as file:
        json.dump(content, file)


def panoptic_json(root: str) -> str:
    return osp.join(root, 'annotations', 'panoptic_train.json')


def test_missing_image(small_root):
    os.remove(osp.join(small_root, 'train', '000000000002.jpg'))
    with pytest.raises(
            PanopticFileNotFoundError, match=r'000000000002\.jpg of image 2'):
        build_small(small_root)


def test_missing_png(small_root):
    os.remove(
        osp.join(small_root, 'annotations', 'panoptic_train',
                 '000000000003.png'))
    with pytest.raises(
            PanopticFileNotFoundError, match=r'000000000003\.png of image 3'):
        build_small(small_root)
    # Found late too when the start-up check is off.
    dataset = build_small(small_root, check_files=False)
    with pytest.raises(
            PanopticFileNotFoundError, match=r'000000000003\.png of image 3'):
        dataset[2]


def test_png_id_missing_from_json(small_root):
    removed = {}

    def drop_segment(content):
        removed['id'] = content['annotations'][0]['segments_info'].pop()['id']

    edit_json(panoptic_json(small_root), drop_segment)
    dataset = build_small(small_root)
    with pytest.raises(
            PanopticAnnotationError,
            match=rf"000000000001\.png of image 1 .*\[{removed['id']}\]"):
        dataset[0]


def test_json_segment_missing_from_png(small_root):

    def add_segment(content):
        content['annotations'][1]['segments_info'].append(
            dict(
                id=4242, category_id=21, area=5, bbox=[0, 0, 2, 3], iscrowd=0))

    edit_json(panoptic_json(small_root), add_segment)
    dataset = build_small(small_root)
    with pytest.raises(
            PanopticAnnotationError,
            match=r'\[4242\] of image 2 .*000000000002\.png'):
        dataset[1]


def test_unknown_category(small_root):

    def set_category(content):
        segment = content['annotations'][0]['segments_info'][0]
        segment['category_id'] = 999
        set_category.segment_id = segment['id']

    edit_json(panoptic_json(small_root), set_category)
    with pytest.raises(
            PanopticAnnotationError,
            match=rf'panoptic_train\.json: segment {set_category.segment_id} '
            r'of image 1 has category id 999'):
        build_small(small_root)


def test_image_size_disagrees_with_png(small_root):
    png_path = osp.join(small_root, 'annotations', 'panoptic_train',
                        '000000000001.png')
    png = cv2.imread(png_path)
    cv2.imwrite(png_path, png[:60])
    dataset = build_small(small_root)
    with pytest.raises(
            PanopticAnnotationError,
            match=r'000000000001\.png of image 1 is 60x64'):
        dataset[0]


def test_instances_of_unknown_image(small_root):

    def add_annotation(content):
        extra = dict(content['annotations'][0], id=777, image_id=99)
        content['annotations'].append(extra)

    edit_json(
        osp.join(small_root, 'annotations', 'instances_train.json'),
        add_annotation)
    with pytest.raises(
            PanopticAnnotationError,
            match=r'instances_train\.json: annotation 777 refers to image 99'):
        build_small(small_root)
    # The panoptic source does not read the instances file at all.
    assert len(build_small(small_root, instance_source='panoptic')) == 3


def test_class_order_must_match_json(small_root):
    meta = dict(SYNTHETIC_OCCLUSION_METAINFO)
    meta['classes'] = (meta['classes'][1], meta['classes'][0],
                       *meta['classes'][2:])
    with pytest.raises(PanopticAnnotationError, match='JSON order'):
        build_small(small_root, metainfo=meta)


def test_instances_source_needs_file(small_root):
    with pytest.raises(ValueError, match='ins_ann_file'):
        build_small(small_root, ins_ann_file=None)


@pytest.mark.parametrize('instance_source', ['instances', 'panoptic'])
def test_image_without_things(tmp_path, instance_source):
    generate_synthetic_occlusion(
        str(tmp_path), num_train=2, num_val=0, size=48, num_things=(0, 1))
    pipeline = LOADING + [dict(type='PackDetInputs')]
    dataset = build_small(
        str(tmp_path), instance_source=instance_source, pipeline=pipeline)
    for index in range(2):
        sample = dataset[index]['data_samples']
        assert len(sample.gt_instances) == 0
        assert sample.gt_instances.masks.masks.shape == (0, 48, 48)
        labels = sample.gt_sem_seg.sem_seg.unique().tolist()
        assert labels and min(labels) >= 6  # stuff only


# ----------------------------------------- issue 11: sizes, parsing, empties


def instances_json(root: str) -> str:
    return osp.join(root, 'annotations', 'instances_train.json')


@pytest.mark.parametrize('instance_source', ['instances', 'panoptic'])
def test_image_size_disagrees_with_json(small_root, instance_source):
    # The JSON entry and the PNG say 64x64; the image file is 60x64.
    img_path = osp.join(small_root, 'train', '000000000001.jpg')
    cv2.imwrite(img_path, cv2.imread(img_path)[:60])
    dataset = build_small(small_root, instance_source=instance_source)
    with pytest.raises(
            PanopticAnnotationError,
            match=r'000000000001\.jpg of image 1 is 60x64, but its JSON '
            r'entry says 64x64'):
        dataset[0]
    # The other images still load.
    assert len(dataset[1]['gt_masks']) == len(dataset[1]['gt_bboxes'])


def first_annotation(root: str, edit) -> dict:
    """Apply ``edit`` to the first instance annotation; return it."""
    changed = {}

    def apply(content):
        ann = content['annotations'][0]
        edit(ann)
        changed.update(ann)

    edit_json(instances_json(root), apply)
    return changed


def test_rle_of_wrong_size_fails_at_start_up(small_root):

    def grow(ann):
        ann['segmentation']['size'] = [80, 64]

    ann = first_annotation(small_root, grow)
    with pytest.raises(
            PanopticAnnotationError,
            match=rf'instances_train\.json: annotation {ann["id"]} of image '
            rf'{ann["image_id"]} .*RLE is 80x64 .* image is 64x64'):
        build_small(small_root)


def test_uncompressed_rle_with_wrong_counts(small_root):

    def uncompress(ann):
        ann['segmentation'] = dict(size=[64, 64], counts=[100, 50, 10])

    ann = first_annotation(small_root, uncompress)
    with pytest.raises(
            PanopticAnnotationError,
            match=rf'annotation {ann["id"]} of image {ann["image_id"]} .*'
            r'sum to 160, not height x width = 4096'):
        build_small(small_root)


@pytest.mark.parametrize(
    'polygons,problem',
    [([[10, 10, 90, 10, 90, 40]], r'polygon 0 reaches x 10\.\.90'),
     ([[10, 10, 20, 10, 20]], 'odd number of coordinates'),
     ([[10, 10], 'x'], 'polygon 1 is not a flat list of numbers'),
     ('abc', 'neither polygons')])
def test_bad_polygon_fails_at_start_up(small_root, polygons, problem):

    def set_polygon(ann):
        ann['segmentation'] = polygons

    ann = first_annotation(small_root, set_polygon)
    with pytest.raises(
            PanopticAnnotationError,
            match=rf'instances_train\.json: annotation {ann["id"]} of image '
            rf'{ann["image_id"]} .*{problem}'):
        build_small(small_root)


def test_polygon_on_the_border_passes(small_root):
    # COCO polygons run along the border, x = width: not an error.
    def set_polygon(ann):
        ann['segmentation'] = [[0, 0, 64, 0, 64, 64.5, 0, 64]]

    first_annotation(small_root, set_polygon)
    dataset = build_small(small_root)
    assert len(dataset[0]['gt_masks']) == len(dataset[0]['gt_bboxes'])


@pytest.mark.parametrize('name',
                         ['panoptic_train.json', 'instances_train.json'])
def test_corrupt_json_names_the_file(small_root, name):
    path = osp.join(small_root, 'annotations', name)
    with open(path) as file:
        text = file.read()
    with open(path, 'w') as file:
        file.write(text[:len(text) // 2])  # cut short, as a failed copy
    with pytest.raises(
            PanopticAnnotationError,
            match=rf'{name} is not valid JSON: .*line 1 column \d+'):
        build_small(small_root)


@pytest.mark.parametrize('content', [b'', b'not a jpeg at all'])
def test_undecodable_image_names_the_file(small_root, content):
    with open(osp.join(small_root, 'train', '000000000002.jpg'), 'wb') as f:
        f.write(content)
    dataset = build_small(small_root)
    assert len(dataset[0]['gt_masks']) > 0  # the others are unaffected
    with pytest.raises(
            DatasetItemError,
            match=r'000000000002\.jpg \(image id 2, index 1 of the dataset'):
        dataset[1]


def test_undecodable_png_names_the_file(small_root):
    with open(
            osp.join(small_root, 'annotations', 'panoptic_train',
                     '000000000003.png'), 'wb') as file:
        file.write(b'\x89PNG broken')
    dataset = build_small(small_root)
    with pytest.raises(
            PanopticAnnotationError,
            match=r'000000000003\.png of image 3 cannot be decoded'):
        dataset[2]


def test_instances_file_without_things(small_root):

    def drop_annotations(content):
        content['annotations'] = []

    edit_json(instances_json(small_root), drop_annotations)
    with pytest.raises(
            PanopticAnnotationError,
            match=r'instances_train\.json has no thing annotation of the 3 '
            r'images, but .*panoptic_train\.json lists \d+ thing segments '
            r'in 3 of them'):
        build_small(small_root)
    # An explicit opt-out loads, and the images have no instance.
    dataset = build_small(small_root, allow_empty_instances=True)
    assert len(dataset[0]['gt_bboxes']) == 0


def test_some_images_without_instances_only_warn(small_root, tmp_path):

    def drop_first_image(content):
        content['annotations'] = [
            ann for ann in content['annotations'] if ann['image_id'] != 1
        ]

    edit_json(instances_json(small_root), drop_first_image)
    log_file = tmp_path / 'run.log'
    MMLogger.get_instance(
        'some_images_without_instances',
        log_file=str(log_file))  # the current logger
    dataset = build_small(small_root)
    assert len(dataset) == 3
    assert len(dataset[0]['gt_bboxes']) == 0
    assert len(dataset[1]['gt_bboxes']) > 0
    log = log_file.read_text()
    assert 'instances_train.json: 1 of 3 images have thing segments' in log
    assert 'image ids [1]' in log


# ------------------------------------------ issue 18: what a broken file has


def test_rle_counts_of_another_size_fail_at_start_up(small_root):
    from pycocotools import mask as mask_utils
    other = mask_utils.encode(np.ones((80, 64), np.uint8, order='F'))

    def wrong_counts(ann):
        ann['segmentation'] = dict(
            size=[64, 64], counts=other['counts'].decode())

    ann = first_annotation(small_root, wrong_counts)
    with pytest.raises(
            PanopticAnnotationError,
            match=rf'annotation {ann["id"]} of image {ann["image_id"]} .*'
            r'compressed RLE sum to 5120, not height x width = 4096: the '
            r'counts encode another size'):
        build_small(small_root)


def test_duplicate_annotation_ids_fail(small_root):

    def duplicate(content):
        content['annotations'][1]['id'] = content['annotations'][0]['id']
        duplicate.ann_id = content['annotations'][0]['id']

    edit_json(instances_json(small_root), duplicate)
    with pytest.raises(
            PanopticAnnotationError,
            match=rf'instances_train\.json: annotation ids '
            rf'\[{duplicate.ann_id}\] are not unique'):
        build_small(small_root)


@pytest.mark.parametrize(
    'edit,problem', [
        (lambda ann: ann.update(bbox=[1, 2, float('nan'), 4]),
         r'bbox \[1, 2, nan, 4\] is not finite'),
        (lambda ann: ann.update(bbox=[10, 10, -5, 8]),
         'negative width or height'),
        (lambda ann: ann.update(bbox=[70, 10, 5, 8]),
         'outside the 64x64 image'),
        (lambda ann: ann.update(bbox=[1, 2, 3]), 'not four numbers'),
        (lambda ann: ann.update(iscrowd=2), 'iscrowd is 2, not 0 or 1'),
        (lambda ann: ann.update(iscrowd='yes'), 'not 0 or 1'),
        (lambda ann: ann.update(area='12'), "area is '12', not a number"),
        (lambda ann: ann.pop('bbox'), r"has no \['bbox'\]"),
        (lambda ann: ann.pop('category_id'), r"has no \['category_id'\]"),
    ],
    ids=[
        'nan-bbox', 'negative-bbox', 'bbox-outside', 'bbox-3-numbers',
        'iscrowd-2', 'iscrowd-yes', 'area-string', 'no-bbox', 'no-category'
    ])
def test_bad_instance_fields_fail_at_start_up(small_root, edit, problem):
    ann = first_annotation(small_root, edit)
    with pytest.raises(
            PanopticAnnotationError,
            match=rf'instances_train\.json: annotation {ann.get("id")} of '
            rf'image {ann["image_id"]}.*{problem}'):
        build_small(small_root)


def edit_panoptic(root: str, edit) -> None:
    edit_json(panoptic_json(root), edit)


def _duplicate_segment(content):
    segments = content['annotations'][0]['segments_info']
    segments.append(dict(segments[0]))


def _segment_id_zero(content):
    content['annotations'][0]['segments_info'][0]['id'] = 0


def _duplicate_image(content):
    content['images'].append(dict(content['images'][0]))


def _duplicate_entry(content):
    content['annotations'].append(dict(content['annotations'][0]))


def _entry_of_unlisted_image(content):
    content['annotations'].append(dict(content['annotations'][0], image_id=99))


def _image_without_entry(content):
    content['annotations'].pop()


def _duplicate_category(content):
    content['categories'].append(dict(content['categories'][0]))


def _png_name_differs(content):
    content['annotations'][0]['file_name'] = 'elsewhere.png'


def _zero_height(content):
    content['images'][0]['height'] = 0


def _segment_nan_bbox(content):
    content['annotations'][0]['segments_info'][0]['bbox'] = [0, 0, None, 1]


def _segment_iscrowd(content):
    content['annotations'][0]['segments_info'][0]['iscrowd'] = 3


def _no_segments_info(content):
    del content['annotations'][0]['segments_info']


def _no_images(content):
    content['images'], content['annotations'] = [], []


PANOPTIC_JSON_CASES = [
    (_duplicate_segment, r'image 1: segment ids \[\d+\] are listed more '
     'than once'),
    (_segment_id_zero, r'image 1: segment ids \[0\] cannot be PNG ids'),
    (_duplicate_image, r'image ids \[1\] are listed more than once'),
    (_duplicate_entry, r'images \[1\] have more than one entry'),
    (_entry_of_unlisted_image, r'annotations of images \[99\], which '
     'images does not list'),
    (_image_without_entry, r'images \[3\] have no entry in annotations'),
    (_duplicate_category, r'category ids \[\d+\] are listed more than '
     'once'),
    (_png_name_differs, r"image 1 \(000000000001\.jpg\) names its PNG "
     r"'elsewhere\.png', but mmdet reads .*'000000000001\.png'"),
    (_zero_height, r'image 1 has height x width 0 x 64, not two '
     'positive integers'),
    (_segment_nan_bbox, r'image 1, segment \d+: its bbox .* not four '
     'numbers'),
    (_segment_iscrowd, r'image 1, segment \d+: its iscrowd is 3'),
    (_no_segments_info, r'not a COCO panoptic annotation file: '
     "KeyError: 'segments_info'"),
    (_no_images, 'lists no image'),
]


@pytest.mark.parametrize(
    'edit,problem',
    PANOPTIC_JSON_CASES,
    ids=[edit.__name__.strip('_') for edit, _ in PANOPTIC_JSON_CASES])
def test_bad_panoptic_json_fails_at_start_up(small_root, edit, problem):
    edit_panoptic(small_root, edit)
    with pytest.raises(
            PanopticAnnotationError,
            match=rf'panoptic_train\.json.*{problem}'):
        build_small(small_root, instance_source='panoptic')


def test_category_ids_are_kept_in_the_metainfo(small_root):
    dataset = build_small(small_root)
    assert dataset.metainfo['cat_ids'] == [
        11, 12, 13, 14, 15, 16, 21, 22, 23, 24
    ]
