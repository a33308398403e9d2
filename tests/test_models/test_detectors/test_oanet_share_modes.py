"""Table 4's share modes differ only in what they share, not in depth.

In ``'skip'`` the stuff head reads ``relu(rpn_conv(P_l))``; ``'backbone'``
and ``'none'`` put a private 3x3 conv + ReLU of the same shape between their
own FPN and the stuff head. These tests follow the tensors of a forward
pass to show that exactly one 3x3 conv (then a ReLU) lies between the FPN
output the stuff branch reads and the stuff head's input in every mode.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmoanet.utils import check_checkpoint_matches
from .test_oanet import build, make_batch, small_model_cfg

SHARE_MODES = ['skip', 'backbone', 'none']


def trace_stuff_path(model):
    """Run tensor mode; return the stuff FPN's levels, conv calls and the
    stuff head's input.

    Returns:
        tuple: ``(fpn_levels, conv_calls, head_inputs)``: the tuple the FPN
        feeding the stuff branch returned, a list of ``(name, module,
        input, output)`` for every ``nn.Conv2d`` call, and the tuple of
        levels the stuff head received.
    """
    fpn = model.neck if model.share_mode == 'skip' else model.stuff_neck
    record = {}
    conv_calls = []

    # Hooks must return None, or they replace the module's input/output.
    def keep_fpn_output(module, args, out):
        record['fpn'] = out

    def keep_head_input(module, args):
        record['head'] = args[0]

    def keep_conv_call(name):

        def hook(module, args, out):
            conv_calls.append((name, module, args[0], out))

        return hook

    handles = [
        fpn.register_forward_hook(keep_fpn_output),
        model.semantic_head.register_forward_pre_hook(keep_head_input)
    ]
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(keep_conv_call(name)))
    model.eval()
    with torch.no_grad():
        model(**make_batch(model, training=False), mode='tensor')
    for handle in handles:
        handle.remove()
    return record['fpn'], conv_calls, record['head']


@pytest.mark.parametrize('share_mode', SHARE_MODES)
def test_stuff_path_has_one_conv_and_relu_in_every_mode(share_mode):
    model = build(small_model_cfg(share_mode))
    fpn_levels, conv_calls, head_inputs = trace_stuff_path(model)
    head = model.semantic_head
    expected_name = 'rpn_head.rpn_conv' if share_mode == 'skip' \
        else 'stuff_conv'
    assert len(head_inputs) == len(fpn_levels)
    for level in range(head.start_level, head.end_level):
        # Exactly one conv reads this FPN level ...
        readers = [(name, module, out) for name, module, inp, out in conv_calls
                   if inp is fpn_levels[level]]
        assert [name for name, _, _ in readers] == [expected_name]
        _, conv, conv_out = readers[0]
        assert conv.kernel_size == (3, 3) and conv.padding == (1, 1)
        # ... and the stuff head reads its ReLU, nothing deeper or shallower.
        assert head_inputs[level] is not fpn_levels[level]
        assert torch.equal(head_inputs[level], F.relu(conv_out))


def test_private_conv_matches_the_shared_one():
    """Same shape and initialisation in every mode; skip has none."""
    shapes = {}
    for share_mode in SHARE_MODES:
        model = build(small_model_cfg(share_mode))
        assert hasattr(model, 'stuff_conv') == (share_mode != 'skip')
        conv = model.rpn_head.rpn_conv if share_mode == 'skip' \
            else model.stuff_conv
        assert conv is not model.rpn_head.rpn_conv or share_mode == 'skip'
        shapes[share_mode] = (tuple(conv.weight.shape), tuple(conv.bias.shape))
        # N(0, 0.01) weights and zero bias, as RPNHead initialises rpn_conv;
        # init_weights() of the detector keeps it.
        assert 0.005 < float(conv.weight.detach().std()) < 0.02
        assert float(conv.bias.detach().abs().max()) == 0
    assert len(set(shapes.values())) == 1, shapes


@pytest.mark.parametrize('share_mode', ['backbone', 'none'])
def test_stuff_loss_trains_the_private_conv_only(share_mode):
    model = build(small_model_cfg(share_mode))
    model.train()
    losses = model(**make_batch(model), mode='loss')
    losses['loss_seg'].backward()
    assert model.stuff_conv.weight.grad.abs().sum() > 0
    assert model.rpn_head.rpn_conv.weight.grad is None


def test_old_checkpoints_of_private_modes_miss_the_conv():
    """A state dict from before ``stuff_conv`` lacks exactly its weights."""
    model = build(small_model_cfg('backbone'))
    old_state = {
        key: value
        for key, value in model.state_dict().items()
        if not key.startswith('stuff_conv.')
    }
    result = model.load_state_dict(old_state, strict=False)
    assert sorted(
        result.missing_keys) == ['stuff_conv.bias', 'stuff_conv.weight']
    with pytest.raises(RuntimeError, match='stuff_conv'):
        model.load_state_dict(old_state)
    # The checkpoint check of tools/test.py and init_model refuses it.
    with pytest.raises(ValueError, match='stuff_conv'):
        check_checkpoint_matches(
            model, dict(state_dict=old_state), source='old.pth')
