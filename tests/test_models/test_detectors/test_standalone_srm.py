"""StandaloneSRM: the SRM alone as an mmengine model (loss, tensor, predict).

Its loss is exactly the SRM's Eq. 2 loss on the batch's ground truth, as
the old training loop of tools/train_srm.py computed it: data samples
without ``batch_input_shape``, the canvas the largest image of the batch.
"""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData, PixelData

from mmoanet.datasets import SYNTHETIC_OCCLUSION_METAINFO
from mmoanet.models import StandaloneSRM
from tests.utils import REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'configs', 'srm',
                  'srm_1x7-7x1_1200i_synthetic-occlusion.py')
NUM_THINGS = len(SYNTHETIC_OCCLUSION_METAINFO['thing_classes'])


def build_model():
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CONFIG).model)
    model.init_weights()
    return model


def sample(height, width, num_instances, seed, num_things=NUM_THINGS):
    """Overlapping boxes as masks; the top one's class in the semantic map
    (stuff elsewhere), as the dataset gives them."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.zeros((num_instances, height, width), dtype=torch.bool)
    labels = torch.randint(
        num_things, (num_instances, ), generator=generator, dtype=torch.long)
    sem_seg = torch.full((1, height, width), num_things, dtype=torch.long)
    for index in range(num_instances):
        y0 = int(torch.randint(height // 2, (1, ), generator=generator))
        x0 = int(torch.randint(width // 2, (1, ), generator=generator))
        masks[index, y0:y0 + height // 2, x0:x0 + width // 2] = True
        sem_seg[0][masks[index]] = labels[index]
    sem_seg[0, :2, :3] = 255
    data_sample = DetDataSample()
    data_sample.gt_instances = InstanceData(masks=masks, labels=labels)
    data_sample.gt_sem_seg = PixelData(sem_seg=sem_seg)
    return data_sample


def batch():
    # Odd sizes of different shapes: the canvas is 53 x 61, padded.
    return [sample(53, 47, 5, seed=1), sample(41, 61, 4, seed=2)]


def test_state_dict_is_the_srm_under_srm():
    model = build_model()
    assert isinstance(model, StandaloneSRM)
    keys = list(model.state_dict())
    assert keys and all(key.startswith('srm.') for key in keys)
    assert set(key[len('srm.'):]
               for key in keys) == set(model.srm.state_dict())
    assert model.srm.num_things_classes == NUM_THINGS


def test_loss_is_the_srm_loss_of_the_old_training_loop():
    model = build_model()
    samples = batch()
    # The reference: SpatialRankingModule.loss called directly, as
    # tools/train_srm.py did, on fresh samples of the same data.
    reference_samples = copy.deepcopy(samples)
    expected = model.srm.loss([s.gt_instances for s in reference_samples],
                              reference_samples)['loss_srm']
    losses = model(None, samples, mode='loss')
    assert set(losses) == {'loss_srm'}
    assert losses['loss_srm'].item() > 0
    torch.testing.assert_close(losses['loss_srm'], expected, rtol=0, atol=0)
    # Through the Runner's path: collate, preprocess (device), train_step.
    data = pseudo_collate([
        dict(inputs=None, data_samples=data_sample)
        for data_sample in copy.deepcopy(samples)
    ])
    optimizer = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    log_vars = model.train_step(data, optimizer)
    assert log_vars['loss_srm'].item() == pytest.approx(expected.item())
    assert any(not torch.equal(before[key], value)
               for key, value in model.state_dict().items())


def test_no_instances_gives_a_zero_loss_with_gradients():
    model = build_model()
    samples = [sample(31, 29, 0, seed=3), sample(27, 33, 0, seed=4)]
    loss = model(None, samples, mode='loss')['loss_srm']
    assert loss.item() == 0
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_tensor_mode_gives_the_ranking_logits_of_the_canvas():
    model = build_model()
    logits = model(None, batch(), mode='tensor')
    stride = model.srm.stride
    assert logits.shape == (2, NUM_THINGS, -(-53 // stride), -(-61 // stride))


def test_predict_mode_says_what_to_use_instead():
    model = build_model()
    with pytest.raises(
            NotImplementedError,
            match='add_srm_to_panoptic_fpn.*tools/test.py'):
        model(None, batch(), mode='predict')
    with pytest.raises(ValueError, match='mode'):
        model(None, batch(), mode='features')
