import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData
from scipy import ndimage

import mmoanet  # noqa: F401  (registers the heads)
from mmoanet.models.seg_heads.panoptic_fusion_heads import srm_fusion_head

# 2 thing classes (0 person, 1 tie), 2 stuff classes (labels 2 and 3),
# VOID is 4 and INSTANCE_OFFSET is 1000.
PERSON, TIE, STUFF_A, STUFF_B, VOID = 0, 1, 2, 3, 4


def build_head(rank_by='srm', **test_cfg):
    test_cfg.setdefault('stuff_area_limit', 0)
    head = MODELS.build(
        dict(
            type='SRMFusionHead',
            num_things_classes=2,
            num_stuff_classes=2,
            srm=dict(type='SpatialRankingModule', stride=1, kernel='1x1'),
            rank_by=rank_by,
            test_cfg=test_cfg))
    # Tie channel active -> tie logit 5; person channel -> person logit 1.
    with torch.no_grad():
        head.srm.score_conv.weight.copy_(
            torch.tensor([[1., 0], [0, 5]])[..., None, None])
        head.srm.score_conv.bias.zero_()
    return head


def box_mask(top, left, bottom, right, size=(8, 8)):
    mask = torch.zeros(size, dtype=torch.bool)
    mask[top:bottom, left:right] = True
    return mask


def stuff_probs(stuff_map):
    """(2, H, W) one-hot probabilities from a map of stuff labels 2/3."""
    return torch.stack([stuff_map == STUFF_A, stuff_map == STUFF_B]).float()


def person_and_tie():
    """Person rows/cols 0-5 (score .9) with a tie 2-3 on it (score .6)."""
    return InstanceData(
        masks=torch.stack([box_mask(0, 0, 6, 6),
                           box_mask(2, 2, 4, 4)]),
        labels=torch.tensor([PERSON, TIE]),
        scores=torch.tensor([0.9, 0.6]),
        bboxes=torch.tensor([[0., 0, 6, 6], [2, 2, 4, 4]]))


def all_stuff_a(size=(8, 8)):
    return stuff_probs(torch.full(size, STUFF_A))


def predict_one(head, mask_results, seg_preds, img_shape=(8, 8)):
    results = head.predict([mask_results], [seg_preds],
                           [dict(img_shape=img_shape)])
    assert len(results) == 1
    return results[0]


def test_score_order_buries_the_tie():
    result = predict_one(build_head('score'), person_and_tie(), all_stuff_a())
    panoptic_seg = result['pred_panoptic_seg'].sem_seg
    expected = torch.full((8, 8), STUFF_A)
    expected[:6, :6] = PERSON + 1 * 1000
    assert panoptic_seg.dtype == torch.int32
    assert panoptic_seg.shape == (1, 8, 8)
    assert torch.equal(panoptic_seg[0], expected.int())
    assert set(result) == {'pred_panoptic_seg'}


def test_srm_order_keeps_the_tie_on_top():
    mask_results = person_and_tie()
    result = predict_one(build_head('srm'), mask_results, all_stuff_a())
    expected = torch.full((8, 8), STUFF_A)
    expected[:6, :6] = PERSON + 2 * 1000
    expected[2:4, 2:4] = TIE + 1 * 1000
    assert torch.equal(result['pred_panoptic_seg'].sem_seg[0], expected.int())
    assert mask_results.rank_scores[TIE] > mask_results.rank_scores[PERSON]


def test_compare_orders_gives_both_from_one_srm_forward():
    head = build_head('srm', compare_orders=True)
    calls = []
    head.srm.register_forward_hook(lambda *args: calls.append(1))
    mask_results = person_and_tie()
    result = predict_one(head, mask_results, all_stuff_a())
    assert len(calls) == 1
    assert set(result) == {
        'pred_panoptic_seg', 'pred_panoptic_seg_srm', 'pred_panoptic_seg_score'
    }
    srm_seg = result['pred_panoptic_seg_srm'].sem_seg
    score_seg = result['pred_panoptic_seg_score'].sem_seg
    assert torch.equal(result['pred_panoptic_seg'].sem_seg, srm_seg)
    assert srm_seg[0, 2, 2] == TIE + 1000
    assert score_seg[0, 2, 2] == PERSON + 1000
    assert mask_results.rank_scores.shape == (2, )
    p_conflict = torch.tensor([1., 5]).softmax(0)
    assert torch.isclose(mask_results.rank_scores[TIE], p_conflict[1])


def test_mask_overlap_skips_only_beyond_the_threshold():
    mask_results = InstanceData(
        masks=torch.stack([
            box_mask(0, 0, 4, 4),  # laid first
            box_mask(2, 0, 6, 4),  # half covered: laid, lower half only
            box_mask(0, 0, 5, 6),  # 20 of 30 covered: skipped
        ]),
        labels=torch.tensor([PERSON, TIE, TIE]),
        scores=torch.tensor([0.9, 0.8, 0.7]))
    result = predict_one(
        build_head('score', mask_overlap=0.5), mask_results, all_stuff_a())
    expected = torch.full((8, 8), STUFF_A)
    expected[0:4, 0:4] = PERSON + 1000
    expected[4:6, 0:4] = TIE + 2000
    assert torch.equal(result['pred_panoptic_seg'].sem_seg[0], expected.int())


def test_max_per_img_limits_laid_instances():
    mask_results = InstanceData(
        masks=torch.stack([
            box_mask(0, 0, 2, 2),
            box_mask(4, 4, 6, 6),
            box_mask(0, 4, 2, 6),
            box_mask(6, 6, 6, 6),  # empty mask: never laid, takes no id
        ]),
        labels=torch.tensor([PERSON, TIE, PERSON, TIE]),
        scores=torch.tensor([0.5, 0.9, 0.7, 1.0]))
    result = predict_one(
        build_head('score', max_per_img=2), mask_results, all_stuff_a())
    expected = torch.full((8, 8), STUFF_A)
    expected[4:6, 4:6] = TIE + 1000
    expected[0:2, 4:6] = PERSON + 2000
    assert torch.equal(result['pred_panoptic_seg'].sem_seg[0], expected.int())


def two_regions_of_stuff_b():
    """Stuff B in a 2x2 corner and, apart from it, in the bottom 3 rows."""
    stuff_map = torch.full((8, 8), STUFF_A)
    stuff_map[0:2, 6:8] = STUFF_B
    stuff_map[5:8, :] = STUFF_B
    return stuff_map


def no_instances():
    return InstanceData(
        masks=torch.zeros(0, 8, 8, dtype=torch.bool),
        labels=torch.zeros(0, dtype=torch.long),
        scores=torch.zeros(0),
        bboxes=torch.zeros(0, 4))


def test_small_connected_stuff_region_becomes_void():
    stuff_map = two_regions_of_stuff_b()
    mask_results = no_instances()
    result = predict_one(
        build_head(stuff_area_limit=10), mask_results, stuff_probs(stuff_map))
    expected = stuff_map.clone()
    expected[0:2, 6:8] = VOID  # 4 pixels; the 24-pixel region stays
    assert torch.equal(result['pred_panoptic_seg'].sem_seg[0], expected.int())
    assert mask_results.rank_scores.shape == (0, )


def test_class_area_mode_counts_the_whole_class():
    stuff_map = two_regions_of_stuff_b()
    head = build_head(stuff_area_limit=10, stuff_area_mode='class')
    result = predict_one(head, no_instances(), stuff_probs(stuff_map))
    assert torch.equal(result['pred_panoptic_seg'].sem_seg[0], stuff_map.int())
    head = build_head(stuff_area_limit=29, stuff_area_mode='class')
    result = predict_one(head, no_instances(), stuff_probs(stuff_map))
    expected = torch.where(stuff_map == STUFF_B, VOID, STUFF_A)
    assert torch.equal(result['pred_panoptic_seg'].sem_seg[0], expected.int())


def test_instances_split_stuff_into_connected_regions():
    # A wall of instance pixels cuts stuff A into a 6-pixel strip (void)
    # and a large region; the instance is never voided.
    mask_results = InstanceData(
        masks=box_mask(0, 1, 8, 2)[None],
        labels=torch.tensor([PERSON]),
        scores=torch.tensor([0.9]))
    stuff_map = torch.full((8, 8), STUFF_A)
    stuff_map[6:8, :] = STUFF_B
    result = predict_one(
        build_head(stuff_area_limit=7), mask_results, stuff_probs(stuff_map))
    expected = stuff_map.clone()
    expected[:6, 0] = VOID
    expected[6:8, 0] = VOID  # 2 pixels of stuff B left of the wall
    expected[:, 1] = PERSON + 1000
    assert torch.equal(result['pred_panoptic_seg'].sem_seg[0], expected.int())


def test_srm_sees_masks_at_img_shape():
    head = build_head('srm')
    head.srm.stride = 2
    mask_results = person_and_tie()
    # Masks at the original 8x8 size, network input twice as large.
    result = predict_one(head, mask_results, all_stuff_a(), (16, 16))
    assert result['pred_panoptic_seg'].sem_seg[0, 2, 2] == TIE + 1000
    assert torch.isclose(mask_results.rank_scores[TIE],
                         torch.tensor([1., 5]).softmax(0)[1])


def test_loss_delegates_to_the_srm():
    head = build_head()
    head.srm.train_input = 'gt'
    masks = person_and_tie().masks
    sample = DetDataSample(metainfo=dict(batch_input_shape=(8, 8)))
    sample.gt_instances = InstanceData(
        masks=BitmapMasks(masks.numpy().astype(np.uint8), 8, 8),
        labels=torch.tensor([PERSON, TIE]))
    sem_seg = torch.full((1, 8, 8), STUFF_A)
    sem_seg[0, :6, :6] = PERSON
    sem_seg[0, 2:4, 2:4] = TIE
    sample.gt_sem_seg = PixelData(sem_seg=sem_seg)
    losses = head.loss(None, [sample])
    assert set(losses) == {'loss_srm'}
    losses['loss_srm'].backward()
    assert head.srm.score_conv.weight.grad.abs().sum() > 0


def test_build_with_default_config():
    head = MODELS.build(dict(type='SRMFusionHead'))
    assert head.srm.num_things_classes == 80
    assert head.srm.kernel == '1x7+7x1' and head.srm.stride == 4
    assert head.test_cfg.stuff_area_limit == 4900
    assert head.test_cfg.stuff_area_mode == 'connected'
    assert head.num_classes == 133


def test_with_stuff_labels_returns_the_stuff_argmax_once():
    """The detector takes ``pred_sem_seg`` from the fusion head instead of
    a second argmax; without the flag the keys are unchanged."""
    head = build_head('srm')
    stuff_map = torch.full((8, 8), STUFF_A)
    stuff_map[5:, :] = STUFF_B
    result = head.predict([person_and_tie()], [stuff_probs(stuff_map)],
                          [dict(img_shape=(8, 8))],
                          with_stuff_labels=True)[0]
    assert set(result) == {'pred_panoptic_seg', 'pred_sem_seg'}
    sem_seg = result['pred_sem_seg'].sem_seg
    assert sem_seg.shape == (1, 8, 8)
    # Stuff labels everywhere, also under the instances.
    assert torch.equal(sem_seg[0], stuff_map)
    plain = predict_one(
        build_head('srm'), person_and_tie(), stuff_probs(stuff_map))
    assert set(plain) == {'pred_panoptic_seg'}


def test_lay_instances_matches_a_full_image_reference():
    """Laying on each mask's bounding box gives the ids of the plain
    full-image rule on random overlapping masks, in any order."""
    generator = torch.Generator().manual_seed(0)
    head = build_head('score', mask_overlap=0.3, max_per_img=12)
    masks = torch.zeros((15, 37, 41), dtype=torch.bool)
    for index in range(14):  # the last mask stays empty
        top, left = torch.randint(0, 30, (2, ), generator=generator).tolist()
        height, width = torch.randint(
            1, 20, (2, ), generator=generator).tolist()
        masks[index, top:top + height, left:left + width] = True
    masks[3, 0, 40] = True  # a second, far part of a mask
    keys = torch.rand(15, generator=generator)

    expected = torch.zeros((37, 41), dtype=torch.long)
    laid = []
    for index in torch.argsort(keys, descending=True).tolist():
        area = int(masks[index].sum())
        free = masks[index] & (expected == 0)
        if len(laid) == 12 or area == 0 or int(free.sum()) == 0:
            continue
        if area - int(free.sum()) > 0.3 * area:
            continue
        laid.append(index)
        expected[free] = len(laid)

    instance_ids, laid_index = head._lay_instances(masks, keys)
    assert torch.equal(instance_ids, expected)
    assert laid_index.tolist() == laid


def test_one_pass_components_equal_per_class_labelling():
    """Regions of equal value found in one pass are exactly the 4-connected
    components a per-class scipy labelling finds (same pixel partition)."""
    rng = np.random.default_rng(0)
    value_map = rng.integers(0, 4, (23, 31))
    value_map[5:15, 3:20] = 2  # a large region next to noise
    components = srm_fusion_head._equal_value_components(value_map)
    assert ((components == 0) == (value_map == 0)).all()
    expected = np.zeros(value_map.shape, dtype=np.int64)
    offset = 0
    for value in range(1, 4):
        labels, num = ndimage.label(value_map == value)
        expected[labels > 0] = labels[labels > 0] + offset
        offset += num
    # Same partition: a one-to-one map between the two labellings.
    pairs = np.unique(np.stack([components.ravel(), expected.ravel()]), axis=1)
    assert len(pairs[0]) == len(np.unique(pairs[0])) == len(
        np.unique(pairs[1])) == offset + 1
