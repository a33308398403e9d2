"""Every config in configs/ loads, and its model and pipelines build; the
_base_ files hold what the configs share."""
import glob
import os.path as osp

import mmdet
import pytest
from mmdet.registry import DATASETS, MODELS, TRANSFORMS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmoanet  # noqa: F401
from tests.utils import REPO_ROOT

register_all_modules()
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')
BASE_FILES = sorted(
    glob.glob(osp.join(CONFIG_ROOT, '_base_', '**', '*.py'), recursive=True))
CONFIGS = sorted(
    path for path in glob.glob(osp.join(CONFIG_ROOT, '*', '*.py'))
    if osp.relpath(path, CONFIG_ROOT).split(osp.sep)[0] != '_base_')
OANET_CONFIGS = sorted(glob.glob(osp.join(CONFIG_ROOT, 'oanet', '*.py')))
TINY_OANET = osp.join(CONFIG_ROOT, 'oanet',
                      'oanet_r18_fpn_1200i_synthetic-occlusion.py')
TINY_PANOPTIC_FPN = osp.join(
    CONFIG_ROOT, 'panoptic_fpn',
    'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')
TINY_PANOPTIC_FPN_SRM = osp.join(
    CONFIG_ROOT, 'panoptic_fpn_srm',
    'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py')
SYNTHETIC_DATA = osp.join(CONFIG_ROOT, '_base_', 'datasets',
                          'synthetic-occlusion_panoptic.py')
MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')


def config_id(path):
    return osp.relpath(path, CONFIG_ROOT)


def without_pretrained(cfg):
    """Drop ImageNet initialisation: tests must not download weights."""
    for key in ('backbone', 'stuff_backbone'):
        if cfg.model.get(key):
            cfg.model[key].init_cfg = None
    return cfg


def without_scope(node):
    """A resolved config without the ``_scope_`` keys mmengine adds to
    what a config inherits from another package."""
    if isinstance(node, dict):
        return {
            key: without_scope(value)
            for key, value in node.items() if key != '_scope_'
        }
    if isinstance(node, (list, tuple)):
        return type(node)(without_scope(value) for value in node)
    return node


def test_all_configs_are_found():
    names = {config_id(path) for path in CONFIGS}
    assert {
        'oanet/oanet_r50_fpn_100k_coco-panoptic.py',
        'oanet/oanet_r101_fpn_100k_coco-panoptic.py',
        'oanet/oanet_r18_fpn_1200i_synthetic-occlusion.py',
        'panoptic_fpn/panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py',
        'panoptic_fpn_srm/panoptic-fpn-srm_r50_fpn_1x_coco.py',
    } <= names
    assert len(OANET_CONFIGS) >= 16
    assert not any('_base_' in name for name in names)
    assert {config_id(path)
            for path in BASE_FILES} >= {
                '_base_/datasets/synthetic-occlusion_panoptic.py',
                '_base_/schedules/schedule_1200i_adamw.py',
                '_base_/models/oanet_r50_fpn.py',
            }


@pytest.mark.parametrize('path', BASE_FILES, ids=config_id)
def test_base_file_loads_on_its_own(path):
    """A _base_ file is a building block, not a config to train: it loads
    alone and holds one part (a model, data, a schedule or the runtime)."""
    cfg = Config.fromfile(path)
    part = osp.basename(osp.dirname(path))
    parts = dict(
        models='model',
        datasets='test_dataloader',
        schedules='param_scheduler',
        _base_='default_hooks')
    assert part in parts, f'{config_id(path)}: not a mmdet _base_ folder'
    assert parts[part] in cfg
    others = {'model', 'test_dataloader', 'param_scheduler'} - {parts[part]}
    assert not others & set(cfg.keys())


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_config_builds(path):
    cfg = without_pretrained(Config.fromfile(path))
    model = MODELS.build(cfg.model)
    assert isinstance(model, MODELS.get(cfg.model.type))
    loaders = [
        key
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader')
        if cfg.get(key)
    ]
    assert 'train_dataloader' in loaders
    for loader in loaders:
        dataset = cfg[loader].dataset
        assert DATASETS.get(dataset.type) is not None, dataset.type
        for transform in dataset.get('pipeline', []):
            TRANSFORMS.build(transform)


@pytest.mark.parametrize('path', OANET_CONFIGS, ids=config_id)
def test_oanet_config_reports_both_orders(path):
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'OANet'
    assert cfg.model.test_cfg.panoptic.compare_orders
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    assert evaluators[0].type == 'MultiOrderPanopticMetric'
    assert cfg.visualizer.type == 'PanopticLocalVisualizer'


def test_paper_schedule_and_settings():
    cfg = Config.fromfile(
        osp.join(CONFIG_ROOT, 'oanet', 'oanet_r50_fpn_100k_coco-panoptic.py'))
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
    assert cfg.custom_hooks == [
        dict(type='CheckpointMatchHook'),
        dict(type='FiniteLossHook'),
        dict(type='CategoryIdsHook')
    ]


@pytest.mark.parametrize('name,key,value', [
    ('oanet-lambda-0.5_r50_fpn_100k_coco-panoptic.py',
     'model.stuff_loss_weight', 0.5),
    ('oanet-stuff-sc_r50_fpn_100k_coco-panoptic.py',
     'model.semantic_head.supervision', 'stuff'),
    ('oanet-share-none_r50_fpn_100k_coco-panoptic.py', 'model.share_mode',
     'none'),
    ('oanet-srm-3x3_r50_fpn_100k_coco-panoptic.py',
     'model.panoptic_fusion_head.srm.kernel', '3x3'),
    ('oanet-score-order_r50_fpn_100k_coco-panoptic.py',
     'model.panoptic_fusion_head.rank_by', 'score'),
    ('oanet-pano-instance-gt_r50_fpn_100k_coco-panoptic.py',
     'train_dataloader.dataset.instance_source', 'panoptic'),
    ('oanet-pano-instance-gt_r50_fpn_100k_coco-panoptic.py',
     'model.panoptic_fusion_head.srm.train_input', 'pred'),
    ('oanet_r101_fpn_100k_coco-panoptic.py', 'model.backbone.depth', 101),
    ('oanet-share-none_r101_fpn_100k_coco-panoptic.py', 'model.share_mode',
     'none'),
    ('oanet-share-none_r101_fpn_100k_coco-panoptic.py', 'model.backbone.depth',
     101),
    ('oanet-share-none_r101_fpn_100k_coco-panoptic.py',
     'model.stuff_backbone.depth', 101),
    ('oanet-per-class-nms_r50_fpn_100k_coco-panoptic.py',
     'model.test_cfg.rcnn.nms.class_agnostic', False),
    ('oanet-srm-pred_r50_fpn_100k_coco-panoptic.py',
     'model.panoptic_fusion_head.srm.train_input', 'pred'),
    ('oanet-same-class-score_r50_fpn_100k_coco-panoptic.py',
     'model.test_cfg.panoptic.same_class_order', 'score'),
])
def test_ablation_changes_one_setting(name, key, value):
    cfg = Config.fromfile(osp.join(CONFIG_ROOT, 'oanet', name))
    node = cfg
    for part in key.split('.'):
        node = node[part]
    assert node == value


def test_panoptic_fpn_model_base_is_mmdets_model():
    """_base_/models/panoptic-fpn_r50_fpn.py restates mmdet's PanopticFPN
    model only so that it can be paired with another dataset base; it must
    stay exactly mmdet's."""
    ours = Config.fromfile(
        osp.join(CONFIG_ROOT, '_base_', 'models', 'panoptic-fpn_r50_fpn.py'))
    stock = Config.fromfile(
        osp.join(MMDET_CONFIGS, 'panoptic_fpn',
                 'panoptic-fpn_r50_fpn_1x_coco.py'))
    assert without_scope(ours.model.to_dict()) == \
        without_scope(stock.model.to_dict())
    # The hooks come from _base_/default_runtime.py, not the model base.
    assert 'custom_hooks' not in ours and stock.custom_hooks == []
    assert set(ours.keys()) == {'model'}


def same_steps(pipeline):
    """The steps of a pipeline other than loading annotations and packing:
    the same for every model on one dataset."""
    return [
        step for step in pipeline
        if step.type not in ('LoadPanopticAnnotations',
                             'LoadPanopticInstanceAnnotations',
                             'PackDetInputs')
    ]


def test_synthetic_data_and_schedule_are_defined_once():
    """The synthetic-set configs get data and schedule from the same
    _base_ files; what the stock baseline and OANet read differently is
    only how instance masks are loaded."""
    data = Config.fromfile(SYNTHETIC_DATA)
    # Plain top-level variables, for configs that read the set their own
    # way (e.g. an SRM trained alone on its annotations).
    assert data.data_root == 'data/synthetic_occlusion/'
    assert data.metainfo.thing_classes and data.metainfo.stuff_classes
    assert data.num_things_classes == len(data.metainfo.thing_classes)
    schedule = Config.fromfile(
        osp.join(CONFIG_ROOT, '_base_', 'schedules',
                 'schedule_1200i_adamw.py'))
    configs = [
        Config.fromfile(path)
        for path in (TINY_OANET, TINY_PANOPTIC_FPN, TINY_PANOPTIC_FPN_SRM)
    ]
    for cfg in configs:
        for key in ('train_cfg', 'param_scheduler', 'default_hooks',
                    'log_processor', 'auto_scale_lr'):
            assert cfg[key] == schedule[key], key
        assert cfg.optim_wrapper.optimizer == schedule.optim_wrapper.optimizer
        assert cfg.data_root == data.data_root
        for loader in ('train_dataloader', 'val_dataloader'):
            for key in ('batch_size', 'sampler'):
                assert cfg[loader].get(key) == data[loader].get(key), key
            dataset = cfg[loader].dataset
            for key in ('data_root', 'ann_file', 'data_prefix', 'metainfo'):
                assert dataset[key] == data[loader].dataset[key], key
            assert same_steps(dataset.pipeline) == \
                same_steps(data[loader].dataset.pipeline)
        assert cfg.val_evaluator == data.val_evaluator
        assert cfg.model.roi_head.bbox_head.num_classes == \
            data.num_things_classes
    oanet = configs[0]
    assert oanet.train_dataloader.dataset.type == \
        'CocoPanopticInstancesDataset'
    assert oanet.train_dataloader.dataset.ins_ann_file == \
        'annotations/instances_train.json'
    assert oanet.test_evaluator[0] == data.val_evaluator
    assert oanet.test_evaluator[1].type == 'OcclusionOrderMetric'
    assert oanet.test_evaluator[1].overlaps_file.startswith(data.data_root)


def test_stock_panoptic_fpn_baseline_builds_as_mmdet_ships_it():
    """The head-to-head anchor is mmdet's PanopticFPN with its own heads and
    data path, at the tiny OANet's size and budget."""
    baseline = Config.fromfile(TINY_PANOPTIC_FPN)
    tiny = Config.fromfile(TINY_OANET)
    assert baseline.model.type == 'PanopticFPN'
    assert baseline.model.semantic_head.type == 'PanopticFPNHead'
    assert baseline.model.panoptic_fusion_head.type == 'HeuristicFusionHead'
    assert baseline.train_dataloader.dataset.type == 'CocoPanopticDataset'
    assert baseline.model.test_cfg.rcnn.nms.class_agnostic
    for key in ('backbone', 'neck', 'rpn_head', 'train_cfg'):
        assert baseline.model[key] == tiny.model[key], key
    for key in ('bbox_roi_extractor', 'mask_roi_extractor', 'bbox_head',
                'mask_head'):
        assert baseline.model.roi_head[key] == tiny.model.roi_head[key], key
    assert baseline.optim_wrapper.optimizer == tiny.optim_wrapper.optimizer
    assert baseline.param_scheduler == tiny.param_scheduler
    assert baseline.train_cfg.max_iters == tiny.train_cfg.max_iters
    assert (baseline.train_dataloader.batch_size ==
            tiny.train_dataloader.batch_size)
    model = MODELS.build(baseline.model)
    assert model.with_semantic_head and model.with_panoptic_fusion_head
