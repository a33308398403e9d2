"""configs/panoptic_fpn_srm: mmdet's PanopticFPN with only the fusion head
swapped for SRMFusionHead; every config loads and its model builds."""
import glob
import os.path as osp

import mmdet
import pytest
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmoanet  # noqa: F401
from tests.utils import REPO_ROOT

register_all_modules()
CONFIGS = sorted(
    glob.glob(osp.join(REPO_ROOT, 'configs', 'panoptic_fpn_srm', '*.py')))


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
    assert cfg.srm_train.ins_ann_file
    if model_cfg.backbone.get('init_cfg'):
        model_cfg.backbone.init_cfg = None  # no download in tests
    model = MODELS.build(model_cfg)
    assert type(model.panoptic_fusion_head).__name__ == 'SRMFusionHead'
    panoptic_cfg = model.panoptic_fusion_head.test_cfg
    assert panoptic_cfg.uncovered_things == 'void'
    assert panoptic_cfg.stuff_area_mode == 'class'


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
