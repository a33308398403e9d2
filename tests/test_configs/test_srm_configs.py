"""configs/srm: the SRM trained alone; each config builds its model and
dataset class, has the SRM of its PanopticFPN + SRM config and the
schedule of the old tools/train_srm.py."""
import glob
import os.path as osp

import pytest
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config

import mmoanet  # noqa: F401
from tests.utils import REPO_ROOT

SRM_DIR = osp.join(REPO_ROOT, 'configs', 'srm')
CONFIGS = sorted(glob.glob(osp.join(SRM_DIR, '*.py')))
# SRM config -> the PanopticFPN + SRM config whose SRM it trains.
DETECTOR_OF = {
    'srm_1x7-7x1_1200i_synthetic-occlusion.py':
    'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py',
    'srm_1x7-7x1_15k_coco-panoptic.py': 'panoptic-fpn-srm_r50_fpn_1x_coco.py',
    'srm-pred_1x7-7x1_15k_coco-panoptic.py':
    'panoptic-fpn-srm_r50_fpn_1x_coco.py',
}


def test_configs_are_found():
    assert {osp.basename(path) for path in CONFIGS} == set(DETECTOR_OF)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_builds_the_srm_of_its_detector(path):
    cfg = Config.fromfile(path)
    detector = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'panoptic_fpn_srm',
                 DETECTOR_OF[osp.basename(path)]))
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'StandaloneSRM'
    expected = detector.model.panoptic_fusion_head.srm
    for key, value in expected.items():
        assert cfg.model.srm[key] == value, key
    assert model.srm.num_things_classes == \
        detector.model.roi_head.bbox_head.num_classes
    dataset = cfg.train_dataloader.dataset
    assert DATASETS.get(dataset.type).__name__ == 'SRMAnnotationDataset'
    assert dataset.ins_ann_file and dataset.data_prefix.seg


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_schedule_of_train_srm(path):
    cfg = Config.fromfile(path)
    max_iters = cfg.train_cfg.max_iters
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.val_cfg is None and cfg.val_dataloader is None
    assert cfg.test_cfg is None
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == \
        ('AdamW', 1e-2, 1e-4)
    scheduler, = cfg.param_scheduler
    assert scheduler.type == 'CosineAnnealingLR' and not scheduler.by_epoch
    assert (scheduler.begin, scheduler.end, scheduler.T_max) == \
        (0, max_iters, max_iters)
    assert scheduler.eta_min == pytest.approx(optimizer.lr / 100)
    sampler = cfg.train_dataloader.sampler
    assert sampler.type == 'InfiniteSampler' and sampler.shuffle
    assert cfg.randomness.seed == 0
    assert max_iters % cfg.default_hooks.checkpoint.interval == 0
    expected = dict(synthetic=(1200, 4), coco=(15000, 8))
    key = 'synthetic' if 'synthetic' in path else 'coco'
    assert (max_iters, cfg.train_dataloader.batch_size) == expected[key]
