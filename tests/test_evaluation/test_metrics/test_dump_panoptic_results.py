"""DumpPanopticResults: compact, lossless ``--out`` pickles."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from pycocotools import mask as mask_util

from mmoanet.evaluation import DumpPanopticResults, load_panoptic_dump


def _sample(seed: int) -> DetDataSample:
    rng = np.random.default_rng(seed)
    height, width = 120, 160
    # Blocky maps, like real panoptic results: 20 x 20 cells.
    cells = rng.integers(0, 6, size=(6, 8))
    stuff = np.kron(cells, np.ones((20, 20), dtype=np.int64)) + 80
    pan = stuff.copy()
    pan[10:50, 20:90] = 3 + 1000
    pan[30:70, 60:120] = 0 + 2000  # label 0, instance 2
    srm = pan.copy()
    srm[30:50, 60:90] = 3 + 1000
    masks = np.zeros((2, height, width), dtype=bool)
    masks[0, 10:50, 20:90] = True
    masks[1, 30:70, 60:120] = True
    sample = DetDataSample(
        metainfo=dict(
            img_id=seed,
            img_path=f'{seed}.jpg',
            ori_shape=(height, width),
            img_shape=(height, width),
            scale_factor=(1.0, 1.0)))
    for key, ids in (('pred_panoptic_seg', srm), ('pred_panoptic_seg_srm',
                                                  srm),
                     ('pred_panoptic_seg_score', pan)):
        setattr(sample, key,
                PixelData(sem_seg=torch.from_numpy(ids[None]).int()))
    sample.pred_sem_seg = PixelData(sem_seg=torch.from_numpy(stuff[None]))
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([[20., 10., 90., 50.], [60., 30., 120., 70.]]),
        labels=torch.tensor([3, 0]),
        scores=torch.tensor([0.9, 0.8]),
        rank_scores=torch.tensor([0.7, 0.2]),
        masks=torch.from_numpy(masks))
    sample.gt_instances = InstanceData(labels=torch.tensor([1]))
    return sample


def test_dump_is_lossless_and_small(tmp_path):
    path = str(tmp_path / 'out.pkl')
    metric = DumpPanopticResults(out_file_path=path)
    samples = [_sample(seed) for seed in range(3)]
    metric.process({}, [sample.to_dict() for sample in samples])
    metric.compute_metrics(metric.results)
    records = load_panoptic_dump(path)
    assert len(records) == 3
    for record, sample in zip(records, samples):
        assert record['img_id'] == sample.img_id
        assert 'gt_instances' not in record
        for key in ('pred_panoptic_seg', 'pred_panoptic_seg_srm',
                    'pred_panoptic_seg_score', 'pred_sem_seg'):
            expected = sample.get(key).sem_seg[0].numpy()
            assert np.array_equal(record[key]['sem_seg'], expected), key
        instances = record['pred_instances']
        assert instances['rank_scores'].tolist() == pytest.approx([0.7, 0.2])
        decoded = mask_util.decode(instances['masks']).transpose(2, 0, 1)
        assert np.array_equal(
            decoded.astype(bool), sample.pred_instances.masks.numpy())
    # Raw maps are 3 x int32 + int64 per pixel; the dump is far smaller.
    raw_bytes = 3 * (3 * 4 + 8) * 120 * 160
    assert osp.getsize(path) < raw_bytes / 20
    with open(path, 'rb') as f:
        assert isinstance(pickle.load(f)[0]['pred_panoptic_seg']['png'], bytes)


def test_out_of_range_ids_are_refused():
    from mmoanet.evaluation.metrics.dump_panoptic_results import encode_id_map
    with pytest.raises(ValueError, match='2\\*\\*24'):
        encode_id_map(np.full((2, 2), 256**3))


class _Marker:
    """A pickle that would create a file when loaded."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_crafted_dump_is_refused_not_run(tmp_path):
    marker = tmp_path / 'marker'
    path = tmp_path / 'crafted.pkl'
    with open(path, 'wb') as f:
        pickle.dump([dict(img_id=1, payload=_Marker(str(marker)))], f)
    with pytest.raises(
            pickle.UnpicklingError,
            match=r'crafted\.pkl: (io|builtins)\.open is not allowed in a '
            'prediction dump'):
        load_panoptic_dump(str(path))
    assert not marker.exists()


def test_dump_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / 'out.pkl'
    metric = DumpPanopticResults(out_file_path=str(path))
    metric.process({}, [_sample(0).to_dict()])
    metric.compute_metrics(metric.results)
    before = path.read_bytes()

    def full_disk(obj, f, protocol=None):
        f.write(b'\x80\x05partial')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(
        'mmoanet.evaluation.metrics.dump_panoptic_results.pickle.dump',
        full_disk)
    with pytest.raises(OSError, match='No space left'):
        metric.compute_metrics(metric.results)
    assert path.read_bytes() == before  # the earlier dump, whole
    assert [p.name for p in tmp_path.iterdir()] == ['out.pkl']
