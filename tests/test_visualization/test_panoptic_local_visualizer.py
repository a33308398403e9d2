"""PanopticLocalVisualizer: panels, colours, outlines, ground truth."""
import os.path as osp
from itertools import count

import cv2
import numpy as np
import pytest
import torch
from mmdet.registry import VISUALIZERS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from panopticapi.utils import id2rgb

from mmoanet.datasets import SYNTHETIC_OCCLUSION_METAINFO
from mmoanet.visualization import PanopticLocalVisualizer, align_instance_ids

META = SYNTHETIC_OCCLUSION_METAINFO
NUM_CLASSES = len(META['classes'])
VOID = NUM_CLASSES
SKY, TABLE, PERSON = 6, 0, 1  # a stuff and two thing labels
_names = count()


def _visualizer(**kwargs) -> PanopticLocalVisualizer:
    """A visualizer with a fresh name (mmengine keeps one per name)."""
    visualizer = VISUALIZERS.build(
        dict(
            type='PanopticLocalVisualizer',
            name=f'panoptic_test_{next(_names)}',
            **kwargs))
    visualizer.dataset_meta = dict(META)
    return visualizer


def _pixel_data(ids: np.ndarray) -> PixelData:
    return PixelData(sem_seg=torch.from_numpy(ids[None]).int())


def _scene():
    """A 20 x 30 grey image: sky on the right half, a table instance and a
    person instance on the left, VOID in between."""
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    pan = np.full((20, 30), VOID, dtype=np.int64)
    pan[:, 15:] = SKY
    pan[2:18, 1:13] = TABLE + 1000
    pan[4:9, 3:8] = PERSON + 2000
    return image, pan


def test_single_panel_colours_voids_and_outlines(tmp_path):
    image, pan = _scene()
    sample = DetDataSample()
    sample.pred_panoptic_seg = _pixel_data(pan)
    # OANet keeps the stuff map beside: it must not be painted.
    sample.pred_sem_seg = PixelData(
        sem_seg=torch.full((1, 20, 30), SKY + 1, dtype=torch.long))
    visualizer = _visualizer(alpha=1.0, draw_labels=False)
    out_file = str(tmp_path / 'one.png')
    visualizer.add_datasample('one', image, sample, out_file=out_file)
    drawn = visualizer.get_image()
    assert drawn.shape == image.shape
    # VOID keeps the image; sky is its palette colour (RGB), not the
    # colour of the pred_sem_seg class; segment borders are white.
    assert drawn[0, 0].tolist() == [100, 100, 100]
    assert drawn[10, 25].tolist() == list(META['palette'][SKY])
    assert drawn[0, 14].tolist() == [255, 255, 255]
    # Instances of a class get a shifted colour, the same on every call.
    table_color = drawn[15, 10].tolist()
    assert table_color != [100, 100, 100]
    again = _visualizer(alpha=1.0, draw_labels=False)
    again.add_datasample('again', image, sample)
    assert again.get_image()[15, 10].tolist() == table_color
    saved = cv2.imread(out_file)
    assert saved.shape == image.shape
    assert saved[10, 25].tolist() == list(META['palette'][SKY])[::-1]


def test_orders_side_by_side_with_differences_outlined():
    image, score = _scene()
    srm = score.copy()
    # The SRM lays the person first: same detection, other id; the person
    # now also takes a strip of the table.
    srm[score == PERSON + 2000] = PERSON + 1000
    srm[score == TABLE + 1000] = TABLE + 2000
    srm[9:11, 3:8] = PERSON + 1000
    sample = DetDataSample()
    sample.pred_panoptic_seg = _pixel_data(srm)
    sample.pred_panoptic_seg_srm = _pixel_data(srm)
    sample.pred_panoptic_seg_score = _pixel_data(score)
    visualizer = _visualizer(alpha=1.0, draw_labels=False)
    visualizer.add_datasample('orders', image, sample)
    drawn = visualizer.get_image()
    bar = 16  # title bar: max(16, H // 10)
    assert drawn.shape == (20 + bar, 60, 3)
    score_panel, srm_panel = drawn[bar:, :30], drawn[bar:, 30:]
    # Matched instances share their colour across the orders.
    assert score_panel[15, 10].tolist() == srm_panel[15, 10].tolist()
    magenta = [255, 0, 255]
    for panel in (score_panel, srm_panel):
        rows, cols = np.nonzero((panel == magenta).all(axis=-1))
        assert rows.size > 0
        # Only the 2 x 5 strip that changed owner is outlined.
        assert set(rows.tolist()) <= {9, 10}
        assert set(cols.tolist()) <= set(range(3, 8))
    # Drawing the orders can be switched off: one panel, the primary one.
    single = _visualizer(alpha=1.0, draw_labels=False, draw_orders=False)
    single.add_datasample('primary', image, sample)
    assert single.get_image().shape == image.shape


def test_ground_truth_panel_from_png_and_from_masks(tmp_path):
    image, pan = _scene()
    # The PNG: COCO ids, segments_info as mmdet's panoptic datasets parse
    # it ('category' is the label).
    coco_ids = np.zeros((20, 30), dtype=np.int64)
    coco_ids[pan == SKY] = 7
    coco_ids[pan == TABLE + 1000] = 8
    coco_ids[pan == PERSON + 2000] = 9
    png_path = str(tmp_path / 'gt.png')
    cv2.imwrite(png_path, id2rgb(coco_ids)[..., ::-1])
    segments_info = [
        dict(id=7, category=SKY, is_thing=0),
        dict(id=8, category=TABLE, is_thing=1),
        dict(id=9, category=PERSON, is_thing=1)
    ]
    sample = DetDataSample(
        metainfo=dict(seg_map_path=png_path, segments_info=segments_info))
    sample.pred_panoptic_seg = _pixel_data(pan)
    visualizer = _visualizer(alpha=1.0, draw_labels=False)
    gt_ids = visualizer._gt_panoptic(sample, (20, 30), NUM_CLASSES)
    assert (gt_ids % 1000 == pan % 1000).all()
    assert len(np.unique(gt_ids)) == len(np.unique(pan))
    visualizer.add_datasample('gt', image, sample)
    drawn = visualizer.get_image()
    assert drawn.shape == (20 + 16, 60, 3)
    gt_panel, pred_panel = drawn[16:, :30], drawn[16:, 30:]
    assert gt_panel[10, 25].tolist() == pred_panel[10, 25].tolist()
    assert gt_panel[0, 0].tolist() == [100, 100, 100]  # VOID
    # draw_gt=False drops the panel.
    visualizer.add_datasample('no_gt', image, sample, draw_gt=False)
    assert visualizer.get_image().shape == image.shape

    # Without the PNG: gt_sem_seg plus amodal instance masks that overlap;
    # the overlapped pixels go to the smaller instance.
    labels = np.where(pan == VOID, 255, pan % 1000)
    table_mask = np.zeros((20, 30), dtype=bool)
    table_mask[2:18, 1:13] = True  # amodal: also under the person
    person_mask = pan == PERSON + 2000
    masked = DetDataSample()
    masked.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(labels[None]))
    masked.gt_instances = InstanceData(
        masks=torch.from_numpy(np.stack([table_mask, person_mask])),
        labels=torch.tensor([TABLE, PERSON]))
    from_masks = visualizer._gt_panoptic(masked, (20, 30), NUM_CLASSES)
    assert (from_masks[person_mask] == PERSON + 2000).all()
    assert (from_masks[table_mask & ~person_mask] == TABLE + 1000).all()
    assert (from_masks[pan == SKY] == SKY).all()
    assert (from_masks[pan == VOID] == VOID).all()
    # browse_dataset: ground truth only, drawn as one panoptic panel (not
    # mmdet's boxes and masks over the semantic map).
    browse = _visualizer(alpha=1.0, draw_labels=False)
    browse.add_datasample('browse', image, masked.numpy())
    drawn = browse.get_image()
    assert drawn.shape == image.shape
    assert drawn[10, 25].tolist() == list(META['palette'][SKY])
    assert drawn[0, 0].tolist() == [100, 100, 100]


def test_scores_of_segments_and_labels_drawn():
    image, pan = _scene()
    instances = InstanceData(
        masks=torch.from_numpy(
            np.stack([pan == TABLE + 1000, pan == PERSON + 2000])),
        labels=torch.tensor([TABLE, PERSON]),
        scores=torch.tensor([0.9, 0.55]))
    scores = PanopticLocalVisualizer._instance_scores(pan, instances)
    assert scores == pytest.approx({TABLE + 1000: 0.9, PERSON + 2000: 0.55})
    sample = DetDataSample()
    sample.pred_panoptic_seg = _pixel_data(pan)
    sample.pred_instances = instances
    plain = _visualizer(alpha=1.0, draw_labels=False)
    plain.add_datasample('plain', image, sample)
    named = _visualizer(alpha=1.0)
    named.add_datasample('named', image, sample)
    # Names are written (centred on the segments large enough to hold
    # them), so the pictures differ, but not everywhere.
    differ = (plain.get_image() != named.get_image()).any(axis=-1)
    assert differ.any() and not differ.all()
    no_names = _visualizer(alpha=1.0, draw_scores=False)
    no_names.add_datasample('no_scores', image, sample)
    assert (no_names.get_image() != named.get_image()).any()


def test_without_panoptic_result_falls_back_to_mmdet(tmp_path):
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    sample = DetDataSample()
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([[2., 2., 12., 12.]]),
        labels=torch.tensor([TABLE]),
        scores=torch.tensor([0.9]))
    visualizer = _visualizer()
    visualizer.add_datasample('boxes', image, sample, draw_gt=False)
    drawn = visualizer.get_image()
    assert drawn.shape == image.shape and drawn.any()
    with pytest.raises(ValueError, match="dataset_meta\\['classes'\\]"):
        bare = _visualizer()
        bare.dataset_meta = {}
        sample.pred_panoptic_seg = _pixel_data(
            np.full((20, 30), VOID, dtype=np.int64))
        bare.add_datasample('bare', image, sample)


def test_short_palette_is_named():
    image, pan = _scene()
    sample = DetDataSample()
    sample.pred_panoptic_seg = _pixel_data(pan)
    visualizer = _visualizer()
    visualizer.dataset_meta = dict(META, palette=[(0, 0, 0)] * 2)
    with pytest.raises(ValueError, match='2 colours for 10 classes'):
        visualizer.add_datasample('short', image, sample)


def test_align_instance_ids_matches_across_orders():
    score = np.full((12, 12), SKY)
    score[2:10, 2:10] = TABLE + 1000  # laid first, hides the person
    srm = score.copy()
    srm[2:10, 2:10] = TABLE + 2000  # the same table, laid second
    srm[4:7, 4:7] = PERSON + 1000  # the person on top of it
    aligned = align_instance_ids(srm, score)
    expected = score.copy()
    expected[4:7, 4:7] = PERSON + 1000
    assert aligned.tolist() == expected.tolist()


def test_oanet_configs_use_it():
    from mmengine.config import Config
    repo = osp.join(osp.dirname(__file__), osp.pardir, osp.pardir)
    for name in ('oanet_r50_fpn_100k_coco-panoptic.py',
                 'oanet_r18_fpn_1200i_synthetic-occlusion.py'):
        cfg = Config.fromfile(osp.join(repo, 'configs', 'oanet', name))
        assert cfg.visualizer.type == 'PanopticLocalVisualizer'
        meta_keys = cfg.test_dataloader.dataset.pipeline[-1].meta_keys
        assert {'seg_map_path', 'segments_info'} <= set(meta_keys)
