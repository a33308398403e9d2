"""The SRM training benchmark's two loss paths: the same loss, timed part
by part."""
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData

from mmoanet.models.seg_heads import SpatialRankingModule
from tests.utils import load_script

SCRIPT = 'projects/oanet_studies/benchmark_srm_train.py'


def overlapping_boxes(generator, size=32, num_classes=4):
    masks = torch.zeros((6, size, size), dtype=torch.bool)
    labels = torch.randint(0, num_classes, (6, ), generator=generator)
    sem_seg = torch.full((size, size), num_classes)
    for mask, label in zip(masks, labels):
        top, left = torch.randint(0, size // 2, (2, ), generator=generator)
        mask[top:top + size // 2, left:left + size // 2] = True
        sem_seg[mask] = label
    sample = DetDataSample(metainfo=dict(batch_input_shape=(size, size)))
    sample.gt_instances = InstanceData(
        masks=BitmapMasks(masks.numpy().astype(np.uint8), size, size),
        labels=labels)
    sample.gt_sem_seg = PixelData(sem_seg=sem_seg[None])
    return sample


def test_before_and_after_give_the_same_loss_part_by_part():
    bench = load_script(SCRIPT)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    srm = SpatialRankingModule(num_things_classes=20, stride=2)
    for param in srm.parameters():
        torch.nn.init.normal_(param, std=0.1)
    samples = [overlapping_boxes(generator) for _ in range(3)]
    clock = bench.Clock()
    before = bench.loss_before(srm, samples, clock)
    after, num_cells = bench.loss_after(srm, samples, clock)
    assert num_cells > 0
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(after, srm.loss(None, samples)['loss_srm'])
    parts = {name.split(': ')[1] for name in clock.seconds}
    assert {'paste', 'conflict labels', 'cross-entropy'} <= parts
    assert 'ranking conv (dense)' in parts
    assert 'ranking conv (conflict cells)' in parts
