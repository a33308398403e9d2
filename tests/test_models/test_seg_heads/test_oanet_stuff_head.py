"""OANetStuffHead: shapes, Object-SC / Stuff-SC targets, predict."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import PixelData

import mmoanet  # noqa: F401  (registers the head)
from mmoanet.models.seg_heads import OANetStuffHead

NUM_THINGS, NUM_STUFF = 3, 2
CHANNELS = 8
# Stride-4..64 levels of a 128 x 128 padded input.
LEVEL_SIZES = ((32, 32), (16, 16), (8, 8), (4, 4), (2, 2))


def make_head(supervision='all', **kwargs):
    torch.manual_seed(0)
    head = OANetStuffHead(
        num_things_classes=NUM_THINGS,
        num_stuff_classes=NUM_STUFF,
        in_channels=CHANNELS,
        feat_channels=CHANNELS,
        supervision=supervision,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        **kwargs)
    head.init_weights()
    return head


def make_feats(batch_size=2):
    return tuple(
        torch.randn(batch_size, CHANNELS, h, w) for h, w in LEVEL_SIZES)


def sample_with_sem_seg(sem_seg):
    sample = DetDataSample()
    sample.gt_sem_seg = PixelData(sem_seg=sem_seg[None])
    return sample


@pytest.mark.parametrize('supervision,channels',
                         [('all', NUM_THINGS + NUM_STUFF),
                          ('stuff', NUM_STUFF)])
def test_forward_gives_stride_4_logits(supervision, channels):
    head = make_head(supervision)
    out = head(make_feats())
    assert out['seg_preds'].shape == (2, channels, 32, 32)
    assert out['seg_feats'].shape == (2, CHANNELS, 32, 32)


def test_forward_uses_levels_start_to_end():
    head = make_head(start_level=1, end_level=3)
    assert len(head.level_convs) == 2
    # Output still at the size of feats[0] (stride 4).
    assert head(make_feats())['seg_preds'].shape[-2:] == (32, 32)
    with pytest.raises(ValueError):
        make_head(end_level=5)(make_feats()[:4])


def test_unknown_supervision_is_rejected():
    with pytest.raises(ValueError):
        make_head('things')


def test_targets_object_sc_keep_all_classes():
    # things 0..2, stuff 3..4, ignore 255; already at stride 4 size.
    sem_seg = torch.tensor([[0, 2], [3, 255]], dtype=torch.uint8)
    targets = make_head('all')._targets([sample_with_sem_seg(sem_seg)], (2, 2))
    assert targets.tolist() == [[[0, 2], [3, 255]]]


def test_targets_stuff_sc_ignore_things_and_shift_stuff():
    sem_seg = torch.tensor([[0, 2], [4, 255]], dtype=torch.uint8)
    targets = make_head('stuff')._targets([sample_with_sem_seg(sem_seg)],
                                          (2, 2))
    assert targets.tolist() == [[[255, 255], [1, 255]]]


def test_targets_are_sampled_nearest_at_stride_4():
    sem_seg = torch.full((8, 8), 3, dtype=torch.uint8)
    sem_seg[:4, :4] = 1
    targets = make_head('all')._targets([sample_with_sem_seg(sem_seg)], (2, 2))
    assert targets.tolist() == [[[1, 3], [3, 3]]]


def test_stuff_sc_loss_is_zero_on_an_all_thing_image():
    head = make_head('stuff')
    sem_seg = torch.randint(0, NUM_THINGS, (128, 128), dtype=torch.uint8)
    losses = head.loss(make_feats(1), [sample_with_sem_seg(sem_seg)])
    assert losses['loss_seg'].item() == 0
    assert torch.isfinite(losses['loss_seg'])


def test_object_sc_loss_is_positive_and_backpropagates():
    head = make_head('all')
    sem_seg = torch.randint(
        0, NUM_THINGS + NUM_STUFF, (128, 128), dtype=torch.uint8)
    loss = head.loss(make_feats(1), [sample_with_sem_seg(sem_seg)])
    assert loss['loss_seg'].item() > 0
    loss['loss_seg'].backward()
    assert head.level_convs[0][0].conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('supervision', ['all', 'stuff'])
def test_predict_gives_stuff_and_one_things_channel(supervision):
    """Object-SC: C_st stuff probabilities and, last, one channel for the
    best thing logit (PanopticFPNHead's layout); Stuff-SC: C_st."""
    head = make_head(supervision)
    # Logits from the bias only: things win an argmax over all channels,
    # the last stuff class wins among the stuff channels.
    torch.nn.init.zeros_(head.conv_logits.weight)
    bias = torch.full((head.num_classes, ), -5.)
    bias[:-NUM_STUFF] = torch.arange(head.num_classes - NUM_STUFF) + 8.
    # (Object-SC: thing logits 8, 9, 10)
    bias[-1] = 1.  # the last stuff class
    head.conv_logits.bias.data.copy_(bias)
    if supervision == 'all':
        channels = NUM_STUFF + 1
        expected = torch.tensor([-5., 1., 10.]).softmax(dim=0)
    else:
        channels = NUM_STUFF
        expected = torch.tensor([-5., 1.]).softmax(dim=0)
    img_metas = [
        dict(
            batch_input_shape=(128, 128),
            img_shape=(128, 127),
            ori_shape=(64, 63)),
        dict(
            batch_input_shape=(128, 128),
            img_shape=(91, 92),
            ori_shape=(91, 92))
    ]
    probs_list = head.predict(make_feats(), img_metas, rescale=True)
    assert [p.shape for p in probs_list] == [(channels, 64, 63),
                                             (channels, 91, 92)]
    for probs in probs_list:
        torch.testing.assert_close(
            probs.sum(dim=0), torch.ones(probs.shape[1:]))
        torch.testing.assert_close(probs[:, 5, 7], expected)
        assert (probs[:NUM_STUFF].argmax(dim=0) == NUM_STUFF - 1).all()

    unscaled = head.predict(make_feats(), img_metas, rescale=False)
    assert [p.shape for p in unscaled] == [(channels, 128, 127),
                                           (channels, 91, 92)]


def test_things_channel_marks_where_a_thing_is_the_argmax():
    """At the logits' resolution the things channel wins exactly where
    the argmax over all C_th + C_st classes is a thing."""
    head = make_head('all')
    torch.manual_seed(3)
    head.conv_logits.weight.data.normal_(0, 1)
    head.conv_logits.bias.data.normal_(0, 1)  # no ties between channels
    feats = make_feats(1)
    img_metas = [
        dict(
            batch_input_shape=(32, 32), img_shape=(32, 32), ori_shape=(32, 32))
    ]
    # A 32 x 32 "input" keeps the stride-4 logits' own 32 x 32 grid
    # (the stride-4 level is 32 x 32): no resampling blurs the maximum.
    logits = head(feats)['seg_preds'][0]
    probs = head.predict(feats, img_metas)[0]
    thing_wins = logits.argmax(dim=0) < NUM_THINGS
    assert 0 < thing_wins.float().mean() < 1
    assert torch.equal(probs.argmax(dim=0) == NUM_STUFF, thing_wins)
