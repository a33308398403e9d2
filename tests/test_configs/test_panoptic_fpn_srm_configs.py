"""configs/panoptic_fpn_srm: mmdet's PanopticFPN with only the fusion head
swapped for SRMFusionHead; every config loads and its model builds, and
every evaluation shows the SRM and the score order side by side."""
import glob
import os.path as osp

import mmcv
import mmdet
import pytest
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import Runner

import mmoanet  # noqa: F401
from mmoanet.datasets import generate_synthetic_occlusion
from tests.utils import REPO_ROOT, restored_globals

register_all_modules()
CONFIGS = sorted(
    glob.glob(osp.join(REPO_ROOT, 'configs', 'panoptic_fpn_srm', '*.py')))
TINY = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn_srm',
                'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py')
ORDER_KEYS = ('srm/PQ', 'score/PQ', 'srm/PQ_th', 'score/PQ_th')


def test_configs_are_found():
    names = {osp.basename(path) for path in CONFIGS}
    assert {
        'panoptic-fpn-srm_r50_fpn_1x_coco.py',
        'panoptic-fpn-srm_r101_fpn_1x_coco.py',
        'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py'
    } <= names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_only_the_fusion_head_differs_from_mmdets(path):
    cfg = Config.fromfile(path)
    model_cfg = cfg.model
    assert model_cfg.type == 'PanopticFPN'
    assert model_cfg.semantic_head.type == 'PanopticFPNHead'
    head = model_cfg.panoptic_fusion_head
    assert head.type == 'SRMFusionHead'
    assert head.seg_layout == 'stuff_things'
    assert head.num_things_classes == model_cfg.roi_head.bbox_head.num_classes
    assert head.num_stuff_classes == model_cfg.semantic_head.num_stuff_classes
    if model_cfg.backbone.get('init_cfg'):
        model_cfg.backbone.init_cfg = None  # no download in tests
    model = MODELS.build(model_cfg)
    assert type(model.panoptic_fusion_head).__name__ == 'SRMFusionHead'
    panoptic_cfg = model.panoptic_fusion_head.test_cfg
    assert panoptic_cfg.uncovered_things == 'void'
    assert panoptic_cfg.stuff_area_mode == 'class'


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_every_evaluation_shows_both_orders(path):
    """The README's promise, in each config: both orders written, scored
    and drawn."""
    cfg = Config.fromfile(path)
    assert cfg.model.test_cfg.panoptic.compare_orders
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'MultiOrderPanopticMetric'
    assert cfg.visualizer.type == 'PanopticLocalVisualizer'


def test_coco_config_keeps_mmdets_rules():
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'panoptic_fpn_srm',
                 'panoptic-fpn-srm_r50_fpn_1x_coco.py'))
    stock = Config.fromfile(
        osp.join(
            osp.dirname(mmdet.__file__), '.mim', 'configs', 'panoptic_fpn',
            'panoptic-fpn_r50_fpn_1x_coco.py'))
    for key in ('mask_overlap', 'stuff_area_limit'):
        assert cfg.model.test_cfg.panoptic[key] == \
            stock.model.test_cfg.panoptic[key]
    assert cfg.model.backbone == stock.model.backbone
    for loader in ('train_dataloader', 'test_dataloader'):
        dataset, stock_dataset = cfg[loader].dataset, stock[loader].dataset
        assert dataset.ann_file == stock_dataset.ann_file
        assert [t.type for t in dataset.pipeline
                ] == [t.type for t in stock_dataset.pipeline]
    # mmdet's ground truth files, scored for every order.
    for key in ('ann_file', 'seg_prefix'):
        assert cfg.test_evaluator[key] == stock.test_evaluator[key]


def test_evaluation_reports_and_draws_both_orders(tmp_path):
    """A PanopticFPN + SRM tested through mmengine's Runner with the tiny
    config as it is (random weights, two synthetic images): the metrics hold
    PQ of the SRM and of the score order, and each --show-dir picture has
    three panels (ground truth, score order, SRM order)."""
    data_root = str(tmp_path / 'data') + '/'
    generate_synthetic_occlusion(data_root, num_train=1, num_val=2, seed=0)
    cfg = Config.fromfile(TINY)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = 'panoptic_fpn_srm_orders'
    # Random weights give low scores: keep every box so instances exist.
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_dataloader.dataset.data_root = data_root
    cfg.test_evaluator.update(
        ann_file=data_root + 'annotations/panoptic_val.json',
        seg_prefix=data_root + 'annotations/panoptic_val/')
    cfg.default_hooks.visualization.update(draw=True, test_out_dir='show')
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator'):
        cfg[key] = None
    with restored_globals():
        metrics = Runner.from_cfg(cfg).test()
    for key in ('PQ', ) + ORDER_KEYS:
        assert f'coco_panoptic/{key}' in metrics, key
    pictures = sorted(glob.glob(osp.join(cfg.work_dir, '*', 'show', '*')))
    assert len(pictures) == 2
    for picture in pictures:
        height, width = mmcv.imread(picture).shape[:2]
        assert width == 3 * 160 and height > 160
