from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks, PolygonMasks
from mmengine.structures import InstanceData, PixelData

from mmoanet.models.seg_heads import SpatialRankingModule

IGNORE = 255


def box_mask(size, top, left, bottom, right):
    """bool (H, W) mask, True in rows top..bottom-1, cols left..right-1."""
    mask = torch.zeros(size, dtype=torch.bool)
    mask[top:bottom, left:right] = True
    return mask


def make_sample(masks, labels, sem_seg, batch_input_shape=None):
    """DetDataSample with gt instances (bool tensor masks) and gt_sem_seg."""
    metainfo = {}
    if batch_input_shape is not None:
        metainfo['batch_input_shape'] = batch_input_shape
    sample = DetDataSample(metainfo=metainfo)
    sample.gt_instances = InstanceData(
        masks=BitmapMasks(masks.numpy().astype(np.uint8), *masks.shape[-2:]),
        labels=torch.as_tensor(labels, dtype=torch.long))
    sample.gt_sem_seg = PixelData(sem_seg=sem_seg[None].long())
    return sample


def occlusion_scene(size=8):
    """Class 0 square (rows/cols 0-5) over which a class 1 square (2-3) lies.

    The semantic map has the class 1 square on top, so its 4 pixels are the
    conflicts, labelled 1; the rest of the square is class 0, the rest
    stuff (class 2).
    """
    big = box_mask((size, size), 0, 0, 6, 6)
    small = box_mask((size, size), 2, 2, 4, 4)
    sem_seg = torch.full((size, size), 2)
    sem_seg[big] = 0
    sem_seg[small] = 1
    return torch.stack([big, small]), [0, 1], sem_seg


@pytest.mark.parametrize('kernel', ['1x1', '3x3', '1x7+7x1'])
@pytest.mark.parametrize('stride', [1, 4])
def test_kernels_and_strides_give_grid_shape(kernel, stride):
    srm = SpatialRankingModule(
        num_things_classes=3, stride=stride, kernel=kernel, kernel_size=5)
    masks = box_mask((13, 18), 0, 0, 5, 5)[None]
    pasted = srm.paste(
        [masks, masks[:0]],
        [torch.tensor([2]), torch.zeros(0).long()], (13, 18))
    expected = (2, 3, -(-13 // stride), -(-18 // stride))
    assert pasted.shape == expected
    assert srm(pasted).shape == expected
    assert pasted[1].sum() == 0  # no instance in the second image


def test_large_kernel_is_sum_of_two_separable_paths():
    srm = SpatialRankingModule(num_things_classes=1, kernel='1x7+7x1')
    assert srm.left_kx1.kernel_size == (7, 1)
    assert srm.left_1xk.kernel_size == (1, 7)
    for conv in (srm.left_kx1, srm.left_1xk, srm.right_1xk, srm.right_kx1):
        torch.nn.init.ones_(conv.weight)
    torch.nn.init.zeros_(srm.left_1xk.bias)
    point = torch.zeros(1, 1, 15, 15)
    point[0, 0, 7, 7] = 1
    # Each path spreads the point over a 7x7 square: the sum is 2 there.
    expected = torch.zeros(1, 1, 15, 15)
    expected[0, 0, 4:11, 4:11] = 2
    assert torch.equal(srm(point), expected)


def test_paste_samples_top_left_pixel_of_each_cell():
    srm = SpatialRankingModule(num_things_classes=2, stride=2)
    # 3x5 mask on a 4x6 canvas: the last row/col are padding.
    masks = torch.tensor([[[1, 1, 0, 0, 1], [1, 1, 0, 0, 1], [0, 0, 1, 0, 1]]],
                         dtype=torch.bool)
    same_class = masks.clone()
    same_class[0, 2, 2] = False
    pasted = srm.paste([torch.cat([masks, same_class])],
                       [torch.tensor([1, 1])], (4, 6))
    # Cells sample pixels (0, 0), (0, 2), (0, 4), (2, 0), (2, 2), (2, 4).
    assert torch.equal(pasted[0, 0], torch.zeros(2, 3))
    assert torch.equal(pasted[0, 1], torch.tensor([[1., 0, 1], [0, 1, 1]]))


def test_paste_accepts_bitmap_and_polygon_masks():
    srm = SpatialRankingModule(num_things_classes=2, stride=1)
    dense = box_mask((6, 6), 1, 1, 4, 4)[None]
    bitmap = BitmapMasks(dense.numpy().astype(np.uint8), 6, 6)
    polygon = PolygonMasks([[np.array([1., 1, 4, 1, 4, 4, 1, 4])]], 6, 6)
    labels = [torch.tensor([0])]
    expected = srm.paste([dense], labels, (6, 6))
    assert torch.equal(srm.paste([bitmap], labels, (6, 6)), expected)
    assert srm.paste([polygon], labels, (6, 6))[0, 0].sum() > 0
    empty = PolygonMasks([], 6, 6)
    assert srm.paste([empty], [torch.zeros(0).long()], (6, 6)).sum() == 0


def test_conflict_labels_follow_eq2():
    srm = SpatialRankingModule(num_things_classes=3, stride=1)
    masks, labels, sem_seg = occlusion_scene()
    # A second class 0 instance overlapping the first: not a conflict.
    twin = box_mask((8, 8), 4, 4, 8, 8)
    # A class 2 square over the class 0 one, labelled as stuff (3): ignored.
    third = box_mask((8, 8), 0, 4, 2, 6)
    sem_seg[0:2, 4:6] = 3
    all_masks = torch.cat([masks, twin[None], third[None]])
    pasted = srm.paste([all_masks], [torch.tensor(labels + [0, 2])], (8, 8))
    sample = make_sample(all_masks, labels + [0, 2], sem_seg, (8, 8))
    target = srm.conflict_labels(pasted, srm.sample_sem_seg([sample], (8, 8)))
    expected = torch.full((1, 8, 8), IGNORE)
    expected[0, 2:4, 2:4] = 1
    assert torch.equal(target, expected)


def test_sem_seg_is_padded_with_ignore():
    srm = SpatialRankingModule(num_things_classes=1, stride=2)
    sample = DetDataSample()
    sample.gt_sem_seg = PixelData(sem_seg=torch.zeros(1, 3, 3).long())
    grid = srm.sample_sem_seg([sample], (6, 4))
    assert torch.equal(grid, torch.tensor([[[0, 0], [0, 0], [IGNORE,
                                                             IGNORE]]]))


def test_loss_reaches_weights():
    srm = SpatialRankingModule(
        num_things_classes=3, stride=1, train_input='gt', loss_weight=2.)
    masks, labels, sem_seg = occlusion_scene()
    losses = srm.loss(None, [make_sample(masks, labels, sem_seg, (8, 8))])
    assert losses['loss_srm'] > 0
    losses['loss_srm'].backward()
    for param in srm.parameters():
        assert param.grad is not None
    assert srm.left_kx1.weight.grad.abs().sum() > 0


def test_loss_is_mean_over_conflicts_times_weight():
    srm = SpatialRankingModule(
        num_things_classes=3,
        stride=1,
        kernel='1x1',
        train_input='gt',
        loss_weight=2.)
    torch.nn.init.zeros_(srm.score_conv.weight)
    torch.nn.init.zeros_(srm.score_conv.bias)
    masks, labels, sem_seg = occlusion_scene()
    loss = srm.loss(None, [make_sample(masks, labels, sem_seg, (8, 8))])
    # Uniform logits over 3 classes: CE = log 3 at each of the 4 conflicts.
    assert torch.isclose(loss['loss_srm'],
                         torch.tensor(2 * np.log(3.), dtype=torch.float))


def test_no_conflict_gives_zero_loss_that_backpropagates():
    srm = SpatialRankingModule(num_things_classes=3, stride=4)
    masks, _, sem_seg = occlusion_scene(size=16)
    apart = box_mask((16, 16), 10, 10, 16, 16)
    pred = InstanceData(
        masks=torch.stack([masks[0], apart]), labels=torch.tensor([0, 1]))
    sample = make_sample(pred.masks, [0, 1], sem_seg, (16, 16))
    empty = InstanceData(
        masks=torch.zeros(0, 16, 16, dtype=torch.bool),
        labels=torch.zeros(0).long())
    loss = srm.loss([pred, empty],
                    [sample, make_sample(empty.masks, [], sem_seg)])
    loss = loss['loss_srm']
    assert loss == 0 and not torch.isnan(loss)
    loss.backward()
    grad = srm.left_kx1.weight.grad
    assert grad is not None and torch.all(grad == 0)


def test_train_inputs_pred_gt_both():
    masks, labels, sem_seg = occlusion_scene()
    sample = make_sample(masks, labels, sem_seg, (8, 8))
    # Predictions cover less: the class 1 square misses one conflict pixel.
    pred_masks = masks.clone()
    pred_masks[1, 3, 3] = False
    preds = [InstanceData(masks=pred_masks, labels=torch.tensor(labels))]
    losses = {}
    for train_input in ('pred', 'gt', 'both'):
        torch.manual_seed(0)
        srm = SpatialRankingModule(
            num_things_classes=3, stride=1, train_input=train_input)
        losses[train_input] = srm.loss(preds, [sample])['loss_srm']
    assert not torch.isclose(losses['pred'], losses['gt'])
    assert torch.isclose(losses['both'], (losses['pred'] + losses['gt']) / 2)


def test_pred_masks_at_img_shape_are_padded_to_the_batch_canvas():
    srm = SpatialRankingModule(num_things_classes=3, stride=2)
    masks, labels, sem_seg = occlusion_scene()
    pasted = srm.paste([masks[:, :7, :7]], [torch.tensor(labels)], (10, 12))
    assert pasted.shape == (1, 3, 5, 6)
    assert torch.equal(pasted[0, 0, :3, :3], torch.ones(3, 3))
    assert pasted[0, :, 3:].sum() == 0 and pasted[0, :, :, 3:].sum() == 0


def set_1x1_weights(srm, weight, bias):
    with torch.no_grad():
        srm.score_conv.weight.copy_(torch.tensor(weight)[..., None, None])
        srm.score_conv.bias.copy_(torch.tensor(bias))


def test_rank_scores_follow_eq3():
    srm = SpatialRankingModule(num_things_classes=2, stride=1, kernel='1x1')
    # Logits (1, 0) where only class 0 is active, (1, 5) at conflicts.
    set_1x1_weights(srm, [[1., 0], [0, 5]], [0., 0])
    masks, labels, _ = occlusion_scene()
    instances = InstanceData(masks=masks, labels=torch.tensor(labels))
    scores = srm.rank_scores(instances, (8, 8))
    p_alone = torch.tensor([1., 0]).softmax(0)[0]
    p_conflict = torch.tensor([1., 5]).softmax(0)
    expected_big = (32 * p_alone + 4 * p_conflict[0]) / 36
    assert torch.allclose(scores, torch.stack([expected_big, p_conflict[1]]))

    srm.rank_region = 'conflict'
    lone = InstanceData(
        masks=torch.cat([masks, box_mask((8, 8), 7, 7, 8, 8)[None]]),
        labels=torch.tensor([0, 1, 1]))
    scores = srm.rank_scores(lone, (8, 8))
    assert torch.allclose(scores[:2], p_conflict)
    # No conflict: falls back to the whole mask.
    assert torch.isclose(scores[2], torch.tensor([0., 5]).softmax(0)[1])

    empty = InstanceData(
        masks=torch.zeros(0, 8, 8, dtype=torch.bool),
        labels=torch.zeros(0).long())
    assert srm.rank_scores(empty, (8, 8)).shape == (0, )


def test_rank_scores_rescale_masks_to_img_shape():
    srm = SpatialRankingModule(num_things_classes=2, stride=2)
    masks, labels, _ = occlusion_scene()
    at_input = InstanceData(
        masks=masks.repeat_interleave(2, 1).repeat_interleave(2, 2),
        labels=torch.tensor(labels))
    at_original = InstanceData(masks=masks, labels=torch.tensor(labels))
    assert torch.allclose(
        srm.rank_scores(at_original, (16, 16)),
        srm.rank_scores(at_input, (16, 16)))


def test_instance_missed_by_the_grid_still_gets_a_score():
    srm = SpatialRankingModule(num_things_classes=2, stride=4, kernel='1x1')
    set_1x1_weights(srm, [[0., 0], [0, 0]], [0., 3.])
    thin = box_mask((8, 8), 5, 5, 6, 6)  # no pixel sampled at stride 4
    scores = srm.rank_scores(
        InstanceData(masks=thin[None], labels=torch.tensor([1])), (8, 8))
    assert torch.isclose(scores[0], torch.tensor([0., 3]).softmax(0)[1])


def random_scene(generator, size=48):
    """Large class 0 square with a small class 1 square on top of it."""
    big_side = int(torch.randint(20, 30, (1, ), generator=generator))
    top, left = torch.randint(0, size - big_side, (2, ), generator=generator)
    small_side = int(torch.randint(5, 9, (1, ), generator=generator))
    small_top, small_left = torch.randint(
        0, big_side - small_side, (2, ), generator=generator)
    big = box_mask((size, size), top, left, top + big_side, left + big_side)
    small = box_mask((size, size), top + small_top, left + small_left,
                     top + small_top + small_side,
                     left + small_left + small_side)
    sem_seg = torch.full((size, size), 3)
    sem_seg[big] = 0
    sem_seg[small] = 1
    return make_sample(
        torch.stack([big, small]), [0, 1], sem_seg, (size, ) * 2)


def test_srm_learns_class_order_from_pasted_masks():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    srm = SpatialRankingModule(
        num_things_classes=3, stride=4, train_input='gt')
    optimizer = torch.optim.Adam(srm.parameters(), lr=0.01)
    for _ in range(200):
        batch = [random_scene(generator) for _ in range(4)]
        loss = srm.loss(None, batch)['loss_srm']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    held_out = random_scene(torch.Generator().manual_seed(1234))
    instances = InstanceData(
        masks=held_out.gt_instances.masks.to_tensor(torch.bool, 'cpu'),
        labels=held_out.gt_instances.labels)
    with torch.no_grad():
        scores = srm.rank_scores(instances, (48, 48))
    assert scores[1] > scores[0]
    assert scores[1] > 0.9


@pytest.mark.parametrize('kernel', ['1x1', '3x3', '1x7+7x1'])
@pytest.mark.parametrize('num_present', [2, 60])
def test_forward_present_equals_dense_forward(kernel, num_present):
    """Reading only the present channels (and, for few classes, folding
    the two large-kernel paths into one k x k kernel) changes no logit."""
    torch.manual_seed(0)
    srm = SpatialRankingModule(num_things_classes=80, kernel=kernel)
    for param in srm.parameters():  # non-zero biases too
        nn.init.normal_(param, std=0.1)
    present = torch.randperm(80)[:num_present].sort().values
    instance_tensor = torch.zeros((1, 80, 13, 17))
    instance_tensor[:, present] = (torch.rand((1, num_present, 13, 17))
                                   > 0.5).float()
    with torch.no_grad():
        expected = srm(instance_tensor)
        actual = srm.forward_present(instance_tensor, present)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    if kernel == '1x7+7x1':
        # Folding pays off below 32 of 80 classes (49 K < 14 (K + 80)).
        assert srm._fold_paths(num_present) == (num_present < 32)
        assert srm.macs_per_cell(num_present) < srm.macs_per_cell()


def dense_reference_loss(srm, instance_tensor, target, num_sources):
    """Eq. 2 the direct way: the dense forward, then a cross-entropy per
    source averaged over its conflicting cells, then over the sources."""
    losses = []
    for logits, source_target in zip(
            srm(instance_tensor).chunk(num_sources),
            target.chunk(num_sources)):
        loss_sum = torch.nn.functional.cross_entropy(
            logits, source_target, ignore_index=IGNORE, reduction='sum')
        losses.append(loss_sum / (source_target != IGNORE).sum().clamp(min=1))
    return srm.loss_weight * sum(losses) / len(losses)


def random_boxes_scene(num_classes, num_images, size, generator):
    """Images of random overlapping boxes of a few classes."""
    samples, preds = [], []
    for _ in range(num_images):
        boxes = torch.randint(0, size, (5, 4), generator=generator)
        masks = torch.stack([
            box_mask((size, size), min(y0, y1), min(x0, x1),
                     max(y0, y1) + 3,
                     max(x0, x1) + 3) for y0, x0, y1, x1 in boxes.tolist()
        ])
        labels = torch.randint(0, num_classes, (5, ), generator=generator)
        sem_seg = torch.full((size, size), num_classes)
        for mask, label in zip(masks, labels):
            sem_seg[mask] = label
        samples.append(
            make_sample(masks, labels.tolist(), sem_seg, (size, size)))
        preds.append(InstanceData(masks=masks[1:], labels=labels[1:]))
    return samples, preds


@pytest.mark.parametrize('kernel', ['1x1', '3x3', '1x7+7x1'])
@pytest.mark.parametrize('train_input', ['gt', 'both'])
@pytest.mark.parametrize('dense', [False, True])
def test_loss_at_conflicts_equals_dense_loss(kernel, train_input, dense,
                                             monkeypatch):
    """The loss from the logits at the conflicting cells only (present
    classes, folded kernel) equals the dense forward's, and so do the
    gradients of every weight, to float rounding; ``dense`` forces the
    dense fallback of conflict_logits."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    srm = SpatialRankingModule(
        num_things_classes=20,
        stride=2,
        kernel=kernel,
        train_input=train_input,
        loss_weight=1.5)
    for param in srm.parameters():  # non-zero biases too
        nn.init.normal_(param, std=0.1)
    if dense:
        monkeypatch.setattr(srm, 'macs_per_cell', lambda *args: 0)
    samples, preds = random_boxes_scene(4, 3, 24, generator)
    loss = srm.loss(preds, samples)['loss_srm']
    loss.backward()
    grads = [param.grad.clone() for param in srm.parameters()]
    srm.zero_grad()

    size = srm._canvas_size(samples)
    sources = [preds] if train_input == 'both' else []
    sources.append([sample.gt_instances for sample in samples])
    instance_tensor = torch.cat([
        srm.paste([inst.masks
                   for inst in instances], [inst.labels
                                            for inst in instances], size)
        for instances in sources
    ])
    target = srm.conflict_labels(
        instance_tensor,
        srm.sample_sem_seg(samples, size).repeat(len(sources), 1, 1))
    assert (target != IGNORE).sum() > 8  # a real test: conflicts
    expected = dense_reference_loss(srm, instance_tensor, target, len(sources))
    expected.backward()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    for grad, param in zip(grads, srm.parameters()):
        assert grad.abs().sum() > 0
        torch.testing.assert_close(grad, param.grad, rtol=1e-4, atol=1e-6)


def test_conflict_logits_equal_dense_logits_at_the_cells():
    torch.manual_seed(0)
    srm = SpatialRankingModule(num_things_classes=30, kernel_size=5)
    for param in srm.parameters():
        nn.init.normal_(param, std=0.1)
    instance_tensor = torch.zeros((2, 30, 9, 11))
    instance_tensor[:, [3, 17]] = (torch.rand((2, 2, 9, 11)) > 0.5).float()
    # Corners and edges too: the zero padding of both paths is kept.
    cells = torch.tensor([[0, 0, 0], [0, 8, 10], [1, 4, 0], [1, 0, 7],
                          [1, 5, 5]])
    with torch.no_grad():
        expected = srm(instance_tensor)[cells[:, 0], :, cells[:, 1], cells[:,
                                                                           2]]
        actual = srm.conflict_logits(instance_tensor, cells)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    assert srm.conflict_logits(instance_tensor, cells[:0]).shape == (0, 30)


def test_conflict_logits_fall_back_to_the_dense_forward_for_memory():
    """With conflicts everywhere the receptive fields of 6 classes would
    outgrow 4 instance tensors (25 * 6 > 4 * 30 per cell): the dense
    forward answers, with the same logits; a few cells are gathered."""
    torch.manual_seed(0)
    srm = SpatialRankingModule(num_things_classes=30, kernel_size=5)
    for param in srm.parameters():
        nn.init.normal_(param, std=0.1)
    instance_tensor = torch.zeros((2, 30, 9, 11))
    instance_tensor[:, :6] = (torch.rand((2, 6, 9, 11)) > 0.5).float()
    every = torch.stack(
        torch.meshgrid(*(torch.arange(n) for n in (2, 9, 11)), indexing='ij'),
        -1).reshape(-1, 3)
    with torch.no_grad():
        dense = srm(instance_tensor).permute(0, 2, 3, 1).reshape(-1, 30)
        with mock.patch.object(srm, 'forward', wraps=srm.forward) as spy:
            actual = srm.conflict_logits(instance_tensor, every)
            assert spy.call_count == 1
            few = srm.conflict_logits(instance_tensor, every[::50])
            assert spy.call_count == 1
    torch.testing.assert_close(actual, dense)
    torch.testing.assert_close(few, dense[::50], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('num_classes', [80, 300])
def test_conflict_labels_count_active_classes_exactly(num_classes):
    """The uint8 count of active classes (int32 from 256 classes) marks the
    same conflicts as an int64 count, with every class active somewhere."""
    generator = torch.Generator().manual_seed(0)
    srm = SpatialRankingModule(num_things_classes=num_classes)
    instance_tensor = (torch.rand((2, num_classes, 6, 7), generator=generator)
                       < torch.linspace(0, 1, 6)[:, None]).float()
    instance_tensor[0, :, 0, 0] = 1  # all classes on one cell
    sem_grid = torch.randint(
        0, num_classes + 5, (2, 6, 7), generator=generator)
    target = srm.conflict_labels(instance_tensor, sem_grid)
    active = instance_tensor > 0
    keep = (
        (active.long().sum(1) >= 2) & (sem_grid < num_classes)
        & active.gather(1,
                        sem_grid.clamp(max=num_classes - 1)[:, None])[:, 0])
    expected = torch.where(keep, sem_grid, torch.full_like(sem_grid, IGNORE))
    assert torch.equal(target, expected)
    assert keep[0, 0, 0] == (sem_grid[0, 0, 0] < num_classes)
    assert keep.any() and not keep.all()
