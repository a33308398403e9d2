"""projects/oanet_studies/compare_fusion_heads.py: one detector's predictions
through mmdet's heuristic fusion and the SRM head's variants."""
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmoanet.apis import add_srm_to_checkpoint
from mmoanet.datasets import generate_synthetic_occlusion
from tests.utils import REPO_ROOT, load_script

compare_fusion_heads = load_script(
    'projects/oanet_studies/compare_fusion_heads.py')
register_all_modules()
STOCK_CONFIG = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn',
                        'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')
SRM_CONFIG = osp.join(REPO_ROOT, 'configs', 'srm',
                      'srm_1x7-7x1_1200i_synthetic-occlusion.py')


class OracleDetector(torch.nn.Module):
    """Hands its fusion head predictions made from the ground truth, with
    the largest instance of each image missed, as a detector's test_step
    would: semantic scores one-hot in PanopticFPNHead's C_st + 1 layout."""

    def __init__(self, fusion_head):
        super().__init__()
        self.panoptic_fusion_head = fusion_head

    def test_step(self, data_batch):
        samples = data_batch['data_samples']
        head = self.panoptic_fusion_head
        mask_results_list, seg_preds_list = [], []
        for sample in samples:
            gt = sample.gt_instances
            masks = gt.masks.to_tensor(torch.bool, 'cpu')
            keep = masks.flatten(1).sum(1).argsort()[:-1]  # miss the largest
            mask_results_list.append(
                InstanceData(
                    masks=masks[keep],
                    labels=gt.labels[keep],
                    bboxes=gt.bboxes.tensor[keep],
                    scores=torch.linspace(0.9, 0.5, len(keep))))
            sem_seg = sample.gt_sem_seg.sem_seg[0].long()
            channel = torch.where(sem_seg < head.num_things_classes,
                                  head.num_stuff_classes,
                                  sem_seg - head.num_things_classes)
            channel[sem_seg == 255] = 0
            seg_preds_list.append(
                F.one_hot(channel,
                          head.num_stuff_classes + 1).permute(2, 0, 1).float())
        results = head.predict(mask_results_list, seg_preds_list)
        for sample, result in zip(samples, results):
            sample.pred_panoptic_seg = result
        return samples


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Stock PanopticFPN config on 3 synthetic val images at their own
    size, and a StandaloneSRM checkpoint with random weights (its config
    in ``meta['cfg']``, as mmengine's Runner saves it)."""
    root = tmp_path_factory.mktemp('synthetic')
    generate_synthetic_occlusion(
        str(root), num_train=1, num_val=3, size=67, seed=2)
    work = tmp_path_factory.mktemp('work')
    config = work / 'stock.py'
    config.write_text(
        f'_base_ = {STOCK_CONFIG!r}\n'
        f'data_root = {str(root) + "/"!r}\n'
        'val_dataloader = dict(num_workers=0, persistent_workers=False, '
        'dataset=dict(data_root=data_root, pipeline=['
        "dict(type='LoadImageFromFile'), "
        "dict(type='LoadPanopticAnnotations'), "
        "dict(type='PackDetInputs')]))\n"
        'test_dataloader = val_dataloader\n'
        "test_evaluator = dict(ann_file=data_root + "
        "'annotations/panoptic_val.json', seg_prefix=data_root + "
        "'annotations/panoptic_val/')\n")
    cfg = Config.fromfile(str(config))
    srm_cfg = Config.fromfile(SRM_CONFIG)
    torch.manual_seed(0)
    srm = MODELS.build(srm_cfg.model)
    srm.init_weights()
    srm_path = str(work / 'srm.pth')
    torch.save(
        dict(
            state_dict=srm.state_dict(),
            meta=dict(cfg=srm_cfg.pretty_text, iter=1)), srm_path)
    detector = OracleDetector(
        MODELS.build(
            dict(
                cfg.model.panoptic_fusion_head,
                test_cfg=cfg.model.test_cfg.panoptic)))
    return cfg, detector, srm_path


def test_every_variant_is_scored_on_the_same_predictions(setup):
    cfg, detector, srm_path = setup
    report = compare_fusion_heads.compare(detector, cfg, srm_path)
    assert set(report) == set(compare_fusion_heads.VARIANTS)
    for metrics in report.values():
        assert metrics['fusion_s_per_img'] > 0
    heuristic = report['heuristic']
    assert heuristic['coco_panoptic/PQ'] > 50
    # Score order with mmdet's rules is mmdet's heuristic fusion.
    for key in ('PQ', 'SQ', 'RQ', 'PQ_th', 'PQ_st'):
        assert (report['score-void'][f'coco_panoptic/{key}'] ==
                heuristic[f'coco_panoptic/{key}'])
    # The missed instances: painted as stuff they spoil the stuff segments
    # around them; left VOID they do not.
    assert (report['score-void']['coco_panoptic/SQ_st']
            > report['score-stuff']['coco_panoptic/SQ_st'])
    # The same-class rule only reorders things: on the oracle's instances
    # (ground-truth masks) it leaves every stuff segment of 'srm-void'.
    assert (report['srm-void-cls']['coco_panoptic/PQ_st'] == report['srm-void']
            ['coco_panoptic/PQ_st'])
    assert 0 < report['srm-void-cls']['coco_panoptic/PQ_th'] <= 100
    table = compare_fusion_heads.markdown_table(report)
    assert table.count('\n') == len(report) + 1
    assert '| srm-void |' in table and '| srm-void-cls |' in table


def test_srm_from_a_standalone_or_a_merged_checkpoint(setup, tmp_path):
    """The SRM's tensors and config, from the training's checkpoint and
    from the merge tool's PanopticFPN + SRM checkpoint alike."""
    cfg, _, srm_path = setup
    torch.manual_seed(0)
    checkpoint = str(tmp_path / 'stock.pth')
    torch.save(
        dict(state_dict=MODELS.build(cfg.model).state_dict()), checkpoint)
    merged = str(tmp_path / 'merged.pth')
    add_srm_to_checkpoint(checkpoint, srm_path, merged)
    standalone = compare_fusion_heads.load_srm_state(srm_path)
    inside = compare_fusion_heads.load_srm_state(merged)
    assert standalone['srm_cfg']['kernel'] == '1x7+7x1'
    assert inside['srm_cfg'] == standalone['srm_cfg']
    assert standalone['state_dict'].keys() == inside['state_dict'].keys()
    for key, value in standalone['state_dict'].items():
        assert torch.equal(value, inside['state_dict'][key])
    with pytest.raises(ValueError, match='holds no SRM'):
        compare_fusion_heads.load_srm_state(checkpoint)


def test_command_line_on_a_merged_checkpoint(setup, tmp_path):
    """The script path srm_on_stock_pfpn.py takes: the stock config, the
    merged checkpoint as detector and as SRM, a subset of variants and
    images."""
    cfg, _, srm_path = setup
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    checkpoint = str(tmp_path / 'stock.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    merged = str(tmp_path / 'merged.pth')
    add_srm_to_checkpoint(checkpoint, srm_path, merged)
    out = str(tmp_path / 'report.json')
    report = compare_fusion_heads.main([
        cfg.filename, merged, '--srm-checkpoint', merged, '--variants',
        'heuristic', 'srm-void', '--max-images', '1', '--out', out,
        '--overlaps-file',
        osp.join(cfg.data_root, 'annotations', 'overlaps_val.json')
    ])
    assert set(report) == {'heuristic', 'srm-void'}
    assert 'coco_panoptic/PQ' in report['srm-void']
    assert 'panoptic_occlusion/both_kept' in report['heuristic']
    with open(out) as f:
        assert json.load(f).keys() == report.keys()


def test_a_detector_without_srm_needs_an_srm_checkpoint(setup):
    cfg, detector, _ = setup
    with pytest.raises(ValueError, match='--srm-checkpoint'):
        compare_fusion_heads.compare(detector, cfg)


def test_merging_thing_channels_keeps_the_thing_argmax():
    seg = torch.randn(5, 7, 6)  # 3 things, 2 stuff
    merged = compare_fusion_heads.merge_thing_channels(seg, 3)
    assert merged.shape == (3, 7, 6)
    assert torch.equal(merged.argmax(0) == 2, seg.argmax(0) < 3)
