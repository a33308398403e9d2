"""Helpers of the stuff-branch benchmark: conv multiply-adds and profile
shares."""
import pytest
import torch

from mmoanet.models.seg_heads import OANetStuffHead
from tests.utils import load_script

SCRIPT = 'projects/oanet_studies/benchmark_stuff_branch.py'


def small_head():
    return OANetStuffHead(
        num_things_classes=3,
        num_stuff_classes=2,
        in_channels=8,
        feat_channels=32,
        end_level=2)


def test_conv_macs_count_every_conv_of_the_head():
    bench = load_script(SCRIPT)
    feats = (torch.rand(1, 8, 16, 20), torch.rand(1, 8, 8, 10))
    macs = bench.conv_macs(small_head(), feats)
    cells = {0: 16 * 20, 1: 8 * 10}
    expected = {
        'level_convs.0.0.conv': cells[0] * 32 * 8 * 9,
        'level_convs.0.1.conv': cells[0] * 32 * 32 * 9,
        'level_convs.1.0.conv': cells[1] * 32 * 8 * 9,
        'level_convs.1.1.conv': cells[1] * 32 * 32 * 9,
        'fuse_conv.conv': cells[0] * 32 * 64 * 9,
        'conv_logits': cells[0] * 5 * 32,
    }
    assert macs == expected


def test_profile_shares_sum_to_one_and_find_the_convolutions():
    bench = load_script(SCRIPT)
    head = small_head()
    feats = tuple(
        torch.rand(1, 8, 16 // s, 20 // s, requires_grad=True) for s in (1, 2))

    def step():
        head(feats)['seg_preds'].sum().backward()

    shares = bench.profile_shares(step)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares['convolution'] > 0.1
    assert shares['bilinear upsampling'] > 0 and shares['group norm'] > 0
