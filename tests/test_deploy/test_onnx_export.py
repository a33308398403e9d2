"""ONNX export and onnxruntime inference against the PyTorch model.

onnx and onnxruntime are imported plainly: without them (``make test``
installs requirements/deploy.txt) these tests fail, they do not skip.
"""
import json
import os.path as osp

import numpy as np
import onnx
import onnxruntime  # noqa: F401  (a missing install fails here)
import pytest
import torch

from mmoanet.apis import inference_panoptic, init_model
from mmoanet.datasets.synthetic_occlusion import generate_synthetic_occlusion
from mmoanet.deploy import ORTPanopticModel, export_onnx, read_manifest
from tests.utils import REPO_ROOT, load_script, run_main

CONFIGS = dict(
    panoptic_fpn_srm='configs/panoptic_fpn_srm/'
    'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py',
    oanet='configs/oanet/oanet_r18_fpn_1200i_synthetic-occlusion.py')
# Random weights score near 1 / num_classes: no score threshold, so that
# every image has instances to lay (30 per image, the configs' max).
TEST_OPTIONS = {
    'model.test_cfg.rcnn.score_thr': 0.0,
    'model.test_cfg.panoptic.compare_orders': True
}
PANOPTIC_KEYS = ('sem_seg', 'sem_seg_srm', 'sem_seg_score')
# (H, W) of the test images: the pipeline resizes the longer side to 160,
# so the network sees 160x160, 128x160, 160x128 and 32x160 (padded).
IMAGE_SHAPES = ((160, 160), (97, 131), (203, 150), (41, 300))


@pytest.fixture(scope='module', params=sorted(CONFIGS))
def exported(request, tmp_path_factory):
    """A randomly initialised model, its checkpoint and its export."""
    config = osp.join(REPO_ROOT, CONFIGS[request.param])
    folder = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(0)
    model = init_model(config, cfg_options=TEST_OPTIONS)
    checkpoint = str(folder / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
    out_dir = str(folder / 'onnx')
    manifest = export_onnx(
        config,
        checkpoint,
        out_dir,
        shape=(160, 160),
        cfg_options=TEST_OPTIONS)
    # Another seed: were any torch weight of the onnxruntime model used,
    # its random values would differ from the exported ones.
    torch.manual_seed(1)
    return model, out_dir, manifest


def panoptic_maps(sample):
    """Each fusion order of a prediction, as int arrays (H, W)."""
    # mmdet's PanopticFPN keeps the fusion head's PixelData whole; OANet
    # splits it into data-sample keys. Read both ways.
    pixel_data = sample.pred_panoptic_seg
    maps = {
        key: pixel_data.get(key)
        for key in PANOPTIC_KEYS if key in pixel_data
    }
    for order in ('srm', 'score'):
        key = f'pred_panoptic_seg_{order}'
        if key in sample:
            maps[f'sem_seg_{order}'] = sample.get(key).sem_seg
    return {key: value[0].numpy() for key, value in maps.items()}


def test_export_writes_valid_graphs(exported):
    _, out_dir, manifest = exported
    assert set(
        manifest['graphs']) == {'trunk', 'bbox_head', 'mask_head', 'srm'}
    assert read_manifest(out_dir) == manifest
    for graph in manifest['graphs'].values():
        model = onnx.load(osp.join(out_dir, graph['file']))
        onnx.checker.check_model(model)
        ops = {node.op_type for node in model.graph.node}
        assert 'ATen' not in ops  # no fallback to torch operators
        assert [o.name for o in model.graph.output] == graph['outputs']
    trunk = onnx.load(osp.join(out_dir, 'trunk.onnx'))
    dims = trunk.graph.input[0].type.tensor_type.shape.dim
    assert [dim.dim_param for dim in dims] == ['batch', '', 'height', 'width']
    assert len(trunk.graph.output) == 3 * manifest['num_levels'] + 1


def test_onnxruntime_matches_pytorch(exported):
    model, out_dir, _ = exported
    ort_model = ORTPanopticModel(out_dir, num_threads=1)
    rng = np.random.RandomState(0)
    for shape in IMAGE_SHAPES:
        image = rng.randint(0, 256, shape + (3, ), dtype=np.uint8)
        expected = inference_panoptic(model, image)
        result = ort_model(image)
        expected_maps = panoptic_maps(expected)
        result_maps = panoptic_maps(result)
        # The SRM order, the score order and the one in pred_panoptic_seg.
        assert len(expected_maps) == 3
        assert result_maps.keys() == expected_maps.keys()
        for key, expected_map in expected_maps.items():
            assert expected_map.shape == shape
            agreement = (result_maps[key] == expected_map).mean()
            assert agreement >= 0.999, (shape, key, agreement)
        # Instances were laid: the maps hold thing ids, not only stuff.
        assert (expected_maps['sem_seg'] >= 1000).any()
        if 'pred_instances' in expected:  # OANet
            torch.testing.assert_close(
                result.pred_instances.rank_scores,
                expected.pred_instances.rank_scores,
                atol=1e-4,
                rtol=1e-4)


def test_graph_outputs_match_torch_modules(exported):
    """The network parts alone, at a size the trace did not see."""
    model, out_dir, manifest = exported
    ort_model = ORTPanopticModel(out_dir, num_threads=1)
    inputs = torch.randn(2, 3, 96, 224)
    with torch.no_grad():
        if hasattr(model, '_shared_forward'):
            feats, (rpn_cls, _), stuff_feats = model._shared_forward(inputs)
        else:
            feats = model.extract_feat(inputs)
            rpn_cls, _ = model.rpn_head(feats)
            stuff_feats = feats
        seg_preds = model.semantic_head(stuff_feats)['seg_preds']
        srm = model.panoptic_fusion_head.srm
        instance_tensor = (torch.rand(2, srm.num_things_classes, 24, 56)
                           > 0.5).float()
        rank_logits = srm(instance_tensor)
    outputs = ort_model.graphs['trunk'](inputs)
    levels = manifest['num_levels']
    for index, expected in enumerate(feats):
        torch.testing.assert_close(
            outputs[index], expected, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(
        outputs[levels], rpn_cls[0], atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(outputs[-1], seg_preds, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(
        ort_model.graphs['srm'](instance_tensor)[0],
        rank_logits,
        atol=1e-4,
        rtol=1e-3)


def test_manifest_checks(tmp_path):
    with pytest.raises(FileNotFoundError, match='not an ONNX export'):
        read_manifest(str(tmp_path))
    (tmp_path / 'deploy.json').write_text(json.dumps(dict(format='other')))
    with pytest.raises(ValueError, match='not an mmoanet ONNX manifest'):
        read_manifest(str(tmp_path))
    (tmp_path / 'deploy.json').write_text('{"format": ')
    with pytest.raises(ValueError, match='deploy.json is not valid JSON'):
        read_manifest(str(tmp_path))


def test_export_refuses_non_empty_folder(tmp_path):
    (tmp_path / 'old.txt').write_text('x')
    with pytest.raises(ValueError, match='pass --force'):
        export_onnx(osp.join(REPO_ROOT, CONFIGS['oanet']), None, str(tmp_path))


def test_tools_export_and_evaluate(tmp_path):
    """export_onnx.py then test_onnx.py on a 3-image synthetic val set."""
    data_root = str(tmp_path / 'data') + '/'
    generate_synthetic_occlusion(data_root, num_train=1, num_val=3)
    export = load_script('tools/deployment/export_onnx.py')
    out_dir = str(tmp_path / 'onnx')
    config = osp.join(REPO_ROOT, CONFIGS['panoptic_fpn_srm'])
    manifest = run_main(
        export.main, [config, 'none', out_dir, '--shape', '96', '128'],
        runner=False)
    assert manifest['trace_shape'] == [96, 128]
    assert manifest['checkpoint'] is None
    evaluate = load_script('tools/deployment/test_onnx.py')
    metrics = run_main(evaluate.main, [
        out_dir, '--work-dir',
        str(tmp_path / 'work'), '--num-threads', '1', '--cfg-options',
        f'test_dataloader.dataset.data_root={data_root}',
        f'test_evaluator.ann_file={data_root}annotations/panoptic_val.json',
        f'test_evaluator.seg_prefix={data_root}annotations/panoptic_val/'
    ])
    pq = [value for key, value in metrics.items() if key.endswith('/PQ')]
    assert pq and all(0 <= value <= 100 for value in pq)
