"""Every config in configs/ loads, and its model and pipelines build."""
import glob
import os.path as osp

import pytest
from mmdet.registry import DATASETS, MODELS, TRANSFORMS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmoanet  # noqa: F401

CONFIGS = sorted(glob.glob('configs/oanet/*.py'))
register_all_modules()


def without_pretrained(cfg):
    """Drop ImageNet initialisation: tests must not download weights."""
    for key in ('backbone', 'stuff_backbone'):
        if cfg.model.get(key):
            cfg.model[key].init_cfg = None
    return cfg


def test_all_configs_are_found():
    names = {osp.basename(path) for path in CONFIGS}
    assert {
        'oanet_r50_fpn_100k_coco-panoptic.py', 'oanet_r101_fpn_100k_coco-panoptic.py',
        'oanet_r18_fpn_1200i_synthetic-occlusion.py'
    } <= names
    assert len(CONFIGS) >= 16


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = without_pretrained(Config.fromfile(path))
    assert cfg.model.type == 'OANet'
    model = MODELS.build(cfg.model)
    assert model.with_semantic_head and model.with_panoptic_fusion_head
    for loader in ('train_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert DATASETS.get(dataset.type) is not None
        for transform in dataset.pipeline:
            TRANSFORMS.build(transform)
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    assert evaluators[0].type == 'MultiOrderPanopticMetric'


def test_metafile_names_every_config():
    """Model names equal config file names, one entry per config."""
    from mmengine.fileio import load
    models = load('configs/oanet/metafile.yml')['Models']
    names = [model['Name'] for model in models]
    assert sorted(names) == sorted(
        osp.splitext(osp.basename(path))[0] for path in CONFIGS)
    for model in models:
        assert model['Config'] == f'configs/oanet/{model["Name"]}.py'


def test_paper_schedule_and_settings():
    cfg = Config.fromfile('configs/oanet/oanet_r50_fpn_100k_coco-panoptic.py')
    assert cfg.model.stuff_loss_weight == 0.25
    assert cfg.model.share_mode == 'skip'
    assert cfg.model.semantic_head.supervision == 'all'
    assert cfg.model.panoptic_fusion_head.srm.kernel == '1x7+7x1'
    assert cfg.model.test_cfg.rcnn.max_per_img == 100
    assert cfg.model.test_cfg.panoptic.stuff_area_limit == 4900
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum,
            optimizer.weight_decay) == ('SGD', 0.02, 0.9, 1e-4)
    warmup, steps = cfg.param_scheduler
    assert (warmup.start_factor, warmup.end) == (0.1, 2000)
    assert steps.milestones == [60000, 80000] and steps.gamma == 0.1
    assert cfg.train_cfg.max_iters == 100000
    assert cfg.train_dataloader.dataset.instance_source == 'instances'


@pytest.mark.parametrize('name,key,value', [
    ('oanet-lambda-0.5_r50_fpn_100k_coco-panoptic.py', 'model.stuff_loss_weight', 0.5),
    ('oanet-stuff-sc_r50_fpn_100k_coco-panoptic.py', 'model.semantic_head.supervision', 'stuff'),
    ('oanet-share-none_r50_fpn_100k_coco-panoptic.py', 'model.share_mode', 'none'),
    ('oanet-srm-3x3_r50_fpn_100k_coco-panoptic.py', 'model.panoptic_fusion_head.srm.kernel',
     '3x3'),
    ('oanet-score-order_r50_fpn_100k_coco-panoptic.py', 'model.panoptic_fusion_head.rank_by',
     'score'),
    ('oanet-pano-instance-gt_r50_fpn_100k_coco-panoptic.py',
     'train_dataloader.dataset.instance_source', 'panoptic'),
    ('oanet-pano-instance-gt_r50_fpn_100k_coco-panoptic.py',
     'model.panoptic_fusion_head.srm.train_input', 'pred'),
    ('oanet_r101_fpn_100k_coco-panoptic.py', 'model.backbone.depth', 101),
    ('oanet-share-none_r101_fpn_100k_coco-panoptic.py', 'model.share_mode', 'none'),
    ('oanet-share-none_r101_fpn_100k_coco-panoptic.py', 'model.backbone.depth', 101),
    ('oanet-share-none_r101_fpn_100k_coco-panoptic.py', 'model.stuff_backbone.depth', 101),
    ('oanet-per-class-nms_r50_fpn_100k_coco-panoptic.py',
     'model.test_cfg.rcnn.nms.class_agnostic', False),
    ('oanet-srm-pred_r50_fpn_100k_coco-panoptic.py', 'model.panoptic_fusion_head.srm.train_input',
     'pred'),
    ('oanet-same-class-score_r50_fpn_100k_coco-panoptic.py',
     'model.test_cfg.panoptic.same_class_order', 'score'),
])
def test_ablation_changes_one_setting(name, key, value):
    cfg = Config.fromfile(osp.join('configs/oanet', name))
    node = cfg
    for part in key.split('.'):
        node = node[part]
    assert node == value


def test_stock_panoptic_fpn_baseline_builds_as_mmdet_ships_it():
    """The head-to-head anchor is mmdet's PanopticFPN with its own heads and
    data path, at the tiny OANet's size and budget."""
    baseline = Config.fromfile(
        'configs/panoptic_fpn/panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')
    tiny = Config.fromfile(
        'configs/oanet/oanet_r18_fpn_1200i_synthetic-occlusion.py')
    assert baseline.model.type == 'PanopticFPN'
    assert baseline.model.semantic_head.type == 'PanopticFPNHead'
    assert baseline.model.panoptic_fusion_head.type == 'HeuristicFusionHead'
    assert baseline.train_dataloader.dataset.type == 'CocoPanopticDataset'
    assert baseline.model.test_cfg.rcnn.nms.class_agnostic
    for key in ('backbone', 'neck', 'rpn_head'):
        assert baseline.model[key] == tiny.model[key], key
    assert baseline.optim_wrapper.optimizer == tiny.optim_wrapper.optimizer
    assert baseline.param_scheduler == tiny.param_scheduler
    assert baseline.train_cfg.max_iters == tiny.train_cfg.max_iters
    assert (baseline.train_dataloader.batch_size ==
            tiny.train_dataloader.batch_size)
    model = MODELS.build(baseline.model)
    assert model.with_semantic_head and model.with_panoptic_fusion_head
