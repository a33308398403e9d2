"""Unknown keys in the configs of our fusion head and SRM are refused.

mmdet reads ``test_cfg`` keys with defaults, so a misspelt key is ignored
and the run silently takes the default; ours name the key and the closest
known one.
"""
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmoanet  # noqa: F401
from mmoanet.models.seg_heads.panoptic_fusion_heads.srm_fusion_head import \
    DEFAULT_TEST_CFG
from mmoanet.utils.config_keys import UnknownConfigKeyError, check_known_keys
from tests.utils import REPO_ROOT

register_all_modules()
OANET = osp.join(REPO_ROOT, 'configs', 'oanet',
                 'oanet_r18_fpn_1200i_synthetic-occlusion.py')
STOCK = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn',
                 'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')


def head_cfg(**kwargs) -> dict:
    cfg = dict(
        type='SRMFusionHead',
        num_things_classes=3,
        num_stuff_classes=2,
        srm=dict(type='SpatialRankingModule'))
    cfg.update(kwargs)
    return cfg


def test_typo_in_test_cfg_panoptic_of_a_shipped_config():
    cfg = Config.fromfile(OANET)
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.panoptic.same_class_ordr = 'score'
    with pytest.raises(UnknownConfigKeyError) as error:
        MODELS.build(cfg.model)
    message = str(error.value)
    assert ("model.test_cfg.panoptic (SRMFusionHead): unknown key "
            "'same_class_ordr' (did you mean 'same_class_order'?)") in message
    assert 'the known keys are ' + ', '.join(
        sorted(DEFAULT_TEST_CFG)) in message


@pytest.mark.parametrize(
    'cfg,message', [
        (head_cfg(test_cfg=dict(mask_overlpa=0.5, max_per_image=3)),
         r"model\.test_cfg\.panoptic \(SRMFusionHead\): unknown keys "
         r"'mask_overlpa' \(did you mean 'mask_overlap'\?\), "
         r"'max_per_image' \(did you mean 'max_per_img'\?\)"),
        (head_cfg(rank_bi='score'),
         r"model\.panoptic_fusion_head \(SRMFusionHead\): unknown key "
         r"'rank_bi' \(did you mean 'rank_by'\?\); the known keys are "
         r'init_cfg, num_stuff_classes, num_things_classes, rank_by, '
         r'seg_layout, srm, test_cfg'),
        (head_cfg(srm=dict(type='SpatialRankingModule', kernal='3x3')),
         r"the SRM config \(SpatialRankingModule\): unknown key 'kernal' "
         r"\(did you mean 'kernel'\?\)"),
        (dict(type='SpatialRankingModule', train_inptu='pred'),
         r"unknown key 'train_inptu' \(did you mean 'train_input'\?\)"),
        (head_cfg(test_cfg=dict(zzz=1)), r"unknown key 'zzz'; the known"),
    ],
    ids=['test-cfg', 'head-kwargs', 'srm-in-head', 'srm', 'no-close-match'])
def test_unknown_keys_are_refused(cfg, message):
    with pytest.raises(UnknownConfigKeyError, match=message):
        MODELS.build(cfg)


def test_known_and_stock_mmdet_keys_pass():
    # Every key of our defaults, and the keys of mmdet's own PanopticFPN
    # config (HeuristicFusionHead's), which a user keeps when swapping in
    # our head.
    head = MODELS.build(
        head_cfg(test_cfg=dict(DEFAULT_TEST_CFG, stuff_area_limit=4096)))
    assert head.test_cfg.stuff_area_limit == 4096
    stock = Config.fromfile(STOCK)
    stock_keys = dict(stock.model.test_cfg.panoptic)
    assert stock_keys and set(stock_keys) <= set(DEFAULT_TEST_CFG)
    MODELS.build(head_cfg(test_cfg=stock_keys))


def test_check_known_keys_helper():
    check_known_keys({}, ['a'], 'x')
    check_known_keys(dict(a=1), ['a', 'b'], 'x')
    with pytest.raises(
            UnknownConfigKeyError,
            match=r"^x: unknown key 'c'; "
            'the known keys are a, b$'):
        check_known_keys(dict(c=1), ['b', 'a'], 'x')
