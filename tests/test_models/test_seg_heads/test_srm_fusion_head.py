import numpy as np
import pytest
import torch
from mmdet.models.detectors import TwoStagePanopticSegmentor
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData
from scipy import ndimage

import mmoanet  # noqa: F401  (registers the heads)
from mmoanet.models.seg_heads.panoptic_fusion_heads import (
    fusion_utils, panoptic_sample_fields, same_class_by_score)

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
    """One image through ``predict``, as data-sample key -> PixelData."""
    results = head.predict([mask_results], [seg_preds],
                           [dict(img_shape=img_shape)])
    assert len(results) == 1 and isinstance(results[0], PixelData)
    return panoptic_sample_fields(results[0])


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
    result = panoptic_sample_fields(
        head.predict([person_and_tie()], [stuff_probs(stuff_map)],
                     [dict(img_shape=(8, 8))],
                     with_stuff_labels=True)[0])
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
    components = fusion_utils.equal_value_components(value_map)
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


# --- uncovered thing pixels: 'stuff' (old rule) or 'void' (mmdet's) ------


def semantic_scores(layout):
    """Semantic scores of one 8x8 image in the given channel layout.

    Stuff A everywhere except: stuff B in row 7; the person's class wins
    on rows 0-5, cols 0-5 (its detected mask) and on rows 0-1, cols 6-7
    (missed by its mask); the tie's class wins on rows 5-6, cols 6-7 (a
    missed tie). In the merged layout both things are the one "things"
    channel. Scores are one-hot: 1 for the winner, 0 elsewhere.
    """
    best = torch.full((8, 8), STUFF_A)
    best[7, :] = STUFF_B
    best[0:6, 0:6] = PERSON
    best[0:2, 6:8] = PERSON
    best[5:7, 6:8] = TIE
    if layout == 'things_stuff':  # PERSON, TIE, STUFF_A, STUFF_B
        return torch.stack([best == label for label in range(4)]).float()
    is_thing = best < STUFF_A
    # STUFF_A, STUFF_B, things (PanopticFPNHead)
    return torch.stack([best == STUFF_A, best == STUFF_B, is_thing]).float()


def person_only():
    return InstanceData(
        masks=box_mask(0, 0, 6, 6)[None],
        labels=torch.tensor([PERSON]),
        scores=torch.tensor([0.9]))


@pytest.mark.parametrize('layout', ['things_stuff', 'stuff_things'])
def test_uncovered_thing_pixels_become_void_or_stuff(layout):
    seg_preds = semantic_scores(layout)
    stuff_rule = predict_one(
        build_head(uncovered_things='stuff'), person_only(), seg_preds)
    void_rule = predict_one(
        build_head(uncovered_things='void'), person_only(), seg_preds)
    # 'stuff': the best stuff class. Thing pixels have stuff scores 0 for
    # both stuff classes, so the argmax over stuff is the first: A.
    expected = torch.full((8, 8), STUFF_A)
    expected[7, :] = STUFF_B
    expected[0:6, 0:6] = PERSON + 1000
    assert torch.equal(stuff_rule['pred_panoptic_seg'].sem_seg[0],
                       expected.int())
    expected[0:2, 6:8] = VOID  # person's class, no mask there
    expected[5:7, 6:8] = VOID  # the missed tie
    assert torch.equal(void_rule['pred_panoptic_seg'].sem_seg[0],
                       expected.int())


def test_void_rule_applies_to_instances_skipped_by_mask_overlap():
    """The tie, a quarter under the person, is skipped (mask_overlap 0.2);
    where the semantic scores show its class, its free pixels become VOID
    instead of stuff A."""
    mask_results = InstanceData(
        masks=torch.stack([box_mask(0, 0, 6, 6),
                           box_mask(4, 4, 8, 8)]),
        labels=torch.tensor([PERSON, TIE]),
        scores=torch.tensor([0.9, 0.6]))
    best = torch.full((8, 8), STUFF_A)
    best[0:6, 0:6] = PERSON
    best[6:8, 6:8] = TIE
    seg_preds = torch.stack([best == label for label in range(4)]).float()
    head = build_head('score', mask_overlap=0.2, uncovered_things='void')
    result = predict_one(head, mask_results, seg_preds)
    expected = torch.full((8, 8), STUFF_A)
    expected[0:6, 0:6] = PERSON + 1000
    expected[6:8, 6:8] = VOID
    assert torch.equal(result['pred_panoptic_seg'].sem_seg[0], expected.int())


def test_void_pixels_are_not_stuff_area():
    """A VOID strip cuts stuff A into a 4-pixel corner (voided by the
    area limit) and the rest; under 'stuff' the strip joins them."""
    best = torch.full((8, 8), STUFF_A)
    best[:, 2] = TIE  # a full-height missed tie
    best[2:8, 0:2] = TIE
    seg_preds = torch.stack([best == label for label in range(4)]).float()
    void_rule = predict_one(
        build_head(uncovered_things='void', stuff_area_limit=5),
        no_instances(), seg_preds)
    expected = torch.full((8, 8), STUFF_A)
    expected[best == TIE] = VOID
    expected[0:2, 0:2] = VOID  # 4 pixels of stuff A left of the strip
    assert torch.equal(void_rule['pred_panoptic_seg'].sem_seg[0],
                       expected.int())
    stuff_rule = predict_one(
        build_head(stuff_area_limit=5), no_instances(), seg_preds)
    assert (stuff_rule['pred_panoptic_seg'].sem_seg == STUFF_A).all()


def test_ties_follow_argmax_over_all_channels():
    """Equal thing and stuff scores: the lower channel wins, as argmax
    over all channels: the thing when things come first, the stuff when
    PanopticFPN's things channel comes last."""
    head = build_head(uncovered_things='void')
    things_first = torch.full((4, 8, 8), 0.25)
    stuff_first = torch.full((3, 8, 8), 1 / 3)
    void_seg = predict_one(head, no_instances(), things_first)
    stuff_seg = predict_one(head, no_instances(), stuff_first)
    assert (void_seg['pred_panoptic_seg'].sem_seg == VOID).all()
    assert (stuff_seg['pred_panoptic_seg'].sem_seg == STUFF_A).all()


def test_seg_layout_errors_name_the_setting():
    with pytest.raises(ValueError, match='uncovered_things'):
        predict_one(
            build_head(uncovered_things='void'), person_only(), all_stuff_a())
    with pytest.raises(ValueError, match='uncovered_things'):
        build_head(uncovered_things='black')
    head = build_head()
    head.seg_layout = 'things_stuff'
    with pytest.raises(ValueError, match='expects 4 channels'):
        predict_one(head, person_only(), semantic_scores('stuff_things'))
    with pytest.raises(ValueError, match='seg_layout'):
        predict_one(build_head(), person_only(), torch.rand(5, 8, 8))
    with pytest.raises(ValueError, match='seg_layout'):
        build_head_with_layout('merged')


def test_one_thing_class_reads_the_things_channel_last():
    """C_th = 1: C_th + C_st == C_st + 1 channels; 'auto' reads them as
    mmdet's and OANet's stuff heads give them (things last)."""
    head = MODELS.build(
        dict(
            type='SRMFusionHead',
            num_things_classes=1,
            num_stuff_classes=2,
            srm=dict(type='SpatialRankingModule', stride=1, kernel='1x1'),
            test_cfg=dict(uncovered_things='void', stuff_area_limit=0)))
    seg_preds = torch.zeros(3, 8, 8)
    seg_preds[0] = 1  # stuff A (label 1) everywhere
    seg_preds[2, :4] = 2  # the things channel wins on the top half
    result = head.predict([no_instances()], [seg_preds])[0].sem_seg[0]
    assert (result[:4] == 3).all()  # VOID = num_classes
    assert (result[4:] == 1).all()


def build_head_with_layout(seg_layout):
    return MODELS.build(
        dict(
            type='SRMFusionHead',
            num_things_classes=2,
            num_stuff_classes=2,
            seg_layout=seg_layout))


# --- mmdet's BasePanopticFusionHead contract --------------------------------


def test_predict_keeps_mmdets_contract_with_extras_beside_it():
    """``predict(mask_results_list, seg_preds_list)`` as mmdet's
    TwoStagePanopticSegmentor calls it: one PixelData per image whose
    ``sem_seg`` is the panoptic result; the second order travels as
    further fields of the same PixelData."""
    head = build_head('srm', compare_orders=True)
    seg_preds = semantic_scores('stuff_things')
    results = head.predict([person_and_tie(), no_instances()],
                           [seg_preds, seg_preds])
    assert len(results) == 2
    assert all(isinstance(result, PixelData) for result in results)
    first = results[0]
    assert set(first.keys()) == {'sem_seg', 'sem_seg_srm', 'sem_seg_score'}
    assert first.sem_seg.dtype == torch.int32
    assert first.sem_seg.shape == (1, 8, 8)
    assert first.sem_seg[0, 2, 2] == TIE + 1000  # SRM order on top
    assert first.sem_seg_score[0, 2, 2] == PERSON + 1000
    assert torch.equal(first.sem_seg, first.sem_seg_srm)
    # What mmdet's detector does with it.
    samples = TwoStagePanopticSegmentor.add_pred_to_datasample(
        None, [DetDataSample(), DetDataSample()], results)
    assert torch.equal(samples[0].pred_panoptic_seg.sem_seg, first.sem_seg)
    plain = build_head('srm').predict([person_and_tie()], [seg_preds])[0]
    assert set(plain.keys()) == {'sem_seg'}


def test_padded_seg_preds_are_cropped_to_the_masks():
    """mmdet's semantic heads without ``rescale`` give the padded batch
    size; the padding is at the bottom and right."""
    head = build_head('score', uncovered_things='void')
    seg_preds = semantic_scores('things_stuff')
    padded = torch.zeros((4, 11, 9))
    padded[:, :8, :8] = seg_preds
    padded[0, 8:, :] = 1  # person wins in the padding, which must go
    result = head.predict([person_only()], [padded])[0]
    expected = head.predict([person_only()], [seg_preds])[0]
    assert torch.equal(result.sem_seg, expected.sem_seg)
    with pytest.raises(ValueError, match='smaller than'):
        head.predict([person_only()], [seg_preds[:, :7]])


def random_predictions(generator, num_instances=12, size=(37, 41)):
    masks = torch.zeros((num_instances, ) + size, dtype=torch.bool)
    for index in range(num_instances):
        top, left = torch.randint(0, 30, (2, ), generator=generator).tolist()
        height, width = torch.randint(
            2, 20, (2, ), generator=generator).tolist()
        masks[index, top:top + height, left:left + width] = True
    boxes = torch.rand((num_instances, 4), generator=generator)
    return InstanceData(
        masks=masks,
        bboxes=boxes,
        labels=torch.randint(0, 2, (num_instances, ), generator=generator),
        # distinct scores: mmdet's argsort is not stable
        scores=torch.randperm(num_instances, generator=generator).float())


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_score_order_with_mmdets_rules_equals_heuristic_fusion(seed):
    """On PanopticFPN's C_st + 1 channels, score order + the VOID rule +
    per-class stuff area is exactly mmdet's HeuristicFusionHead, so in a
    PanopticFPN the two heads differ only in the order."""
    generator = torch.Generator().manual_seed(seed)
    test_cfg = dict(mask_overlap=0.5, stuff_area_limit=30)
    heuristic = MODELS.build(
        dict(
            type='HeuristicFusionHead',
            num_things_classes=2,
            num_stuff_classes=2,
            test_cfg=ConfigDict(test_cfg)))
    srm_head = build_head(
        'score',
        uncovered_things='void',
        stuff_area_mode='class',
        max_per_img=100,
        **test_cfg)
    mask_results = random_predictions(generator)
    seg_logits = torch.randn((3, 37, 41), generator=generator)
    expected = heuristic.predict([mask_results.clone()], [seg_logits])[0]
    result = srm_head.predict([mask_results], [seg_logits])[0]
    assert (expected.sem_seg == VOID).any()
    assert (expected.sem_seg >= 1000).any()
    assert torch.equal(result.sem_seg, expected.sem_seg)


def person_with_fragment_and_tie():
    """A person (rows/cols 0-5, score .9), a low-score fragment of it
    (rows 0-1, score .65) and a tie on the person (score .6)."""
    return InstanceData(
        masks=torch.stack(
            [box_mask(0, 0, 6, 6),
             box_mask(0, 0, 2, 6),
             box_mask(2, 2, 4, 4)]),
        labels=torch.tensor([PERSON, PERSON, TIE]),
        scores=torch.tensor([0.9, 0.65, 0.6]),
        bboxes=torch.tensor([[0., 0, 6, 6], [0, 0, 2, 6], [2, 2, 4, 4]]))


def test_same_class_by_score_keeps_class_slots_and_reorders_within():
    rank = torch.tensor([0.2, 0.9, 0.5, 0.7, 0.1])
    labels = torch.tensor([0, 0, 1, 0, 1])
    scores = torch.tensor([0.99, 0.6, 0.7, 0.8, 0.95])
    keys = same_class_by_score(rank, scores, labels)
    order = torch.argsort(keys, descending=True).tolist()
    # Rank order: 1, 3, 2, 0, 4 -> class slots 0, 0, 1, 0, 1. Class 0 takes
    # its slots by score (0, 3, 1), class 1 by score (4, 2).
    assert order == [0, 3, 4, 1, 2]
    # One instance per class: the rank order itself.
    one_each = same_class_by_score(rank[:3], scores[:3], torch.arange(3))
    assert torch.argsort(one_each, descending=True).tolist() == \
        torch.argsort(rank[:3], descending=True).tolist()


def test_same_class_order_score_lets_the_object_cover_its_fragment():
    expected_tie = TIE + 1 * 1000
    by_rank = predict_one(
        build_head('srm'), person_with_fragment_and_tie(), all_stuff_a())
    by_score = predict_one(
        build_head('srm', same_class_order='score'),
        person_with_fragment_and_tie(), all_stuff_a())
    rank_seg = by_rank['pred_panoptic_seg'].sem_seg[0]
    score_seg = by_score['pred_panoptic_seg'].sem_seg[0]
    # The tie is on top either way: the SRM still orders the classes.
    assert rank_seg[2, 2] == expected_tie and score_seg[2, 2] == expected_tie
    # Both person masks read the same SRM channel; the fragment, clear of
    # the tie, has the higher mean, so ranking scores alone lay it before
    # the whole person (16 of 36 pixels covered, laid too): two person
    # segments. By score the whole person comes first and the fragment,
    # fully covered, is skipped.
    assert len({
        int(v)
        for v in rank_seg.unique() if v % 1000 == PERSON and v >= 1000
    }) == 2
    person_ids = {
        int(v)
        for v in score_seg.unique() if v % 1000 == PERSON and v >= 1000
    }
    assert len(person_ids) == 1
    assert (score_seg == person_ids.pop()).sum() == 36 - 4


def test_same_class_order_error_names_the_setting():
    with pytest.raises(ValueError, match='same_class_order'):
        build_head('srm', same_class_order='area')
