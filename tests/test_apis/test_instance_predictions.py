"""mmoanet.apis.dump_instance_predictions and its CLI
tools/analysis_tools/dump_instance_predictions.py: a detector's instance
predictions as a COCO results file, what the SRM trains on under OANet's
train_input='pred' for a dataset with panoptic annotations only.

Randomly initialised tiny models on a tiny synthetic set, with
``score_thr=0`` so that a random detector keeps ``max_per_img`` predictions
per image."""
import json
import os.path as osp
import re

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import Runner
from pycocotools import mask as mask_utils

from mmoanet.apis import (NoPredictionsError, dump_instance_predictions,
                          init_model, split_dataloader)
from mmoanet.datasets import generate_synthetic_occlusion
from mmoanet.utils import (CheckpointMismatchError, CorruptCheckpointError,
                           OutputPathError)
from tests.utils import REPO_ROOT, load_script

dump = load_script('tools/analysis_tools/dump_instance_predictions.py')

register_all_modules()
STOCK_CONFIG = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn',
                        'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')
OANET_CONFIG = osp.join(REPO_ROOT, 'configs', 'oanet',
                        'oanet_r18_fpn_1200i_synthetic-occlusion.py')
SIZE = 67  # the synthetic images' side; the test pipeline resizes to 160
MAX_PER_IMG = 4


def keep_all(max_per_img=MAX_PER_IMG):
    return [
        '--cfg-options', 'model.test_cfg.rcnn.score_thr=0.0',
        f'model.test_cfg.rcnn.max_per_img={max_per_img}'
    ]


def write_config(path, base, data_root):
    path.write_text(
        f'_base_ = {base!r}\n'
        f'data_root = {data_root + "/"!r}\n'
        'train_dataloader = dict(dataset=dict(data_root=data_root))\n'
        'val_dataloader = dict(num_workers=0, persistent_workers=False, '
        'dataset=dict(data_root=data_root))\n'
        'test_dataloader = val_dataloader\n')
    return str(path)


def random_checkpoint(config, path):
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    torch.save(dict(state_dict=model.state_dict()), str(path))
    return str(path)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Synthetic data, the tiny stock PanopticFPN on it with random
    weights, and its predictions on the 3 training images."""
    root = str(tmp_path_factory.mktemp('synthetic'))
    generate_synthetic_occlusion(
        root, num_train=3, num_val=2, size=SIZE, seed=3)
    work = tmp_path_factory.mktemp('work')
    config = write_config(work / 'stock.py', STOCK_CONFIG, root)
    checkpoint = random_checkpoint(config, work / 'stock.pth')
    out = str(work / 'pred.json')
    stats = dump.main([config, checkpoint, '--out', out, '--device', 'cpu'] +
                      keep_all())
    with open(out) as f:
        results = json.load(f)
    with open(osp.join(root, 'annotations', 'panoptic_train.json')) as f:
        panoptic = json.load(f)
    return dict(
        root=root,
        work=work,
        config=config,
        checkpoint=checkpoint,
        out=out,
        stats=stats,
        results=results,
        panoptic=panoptic)


def test_results_are_coco_results_on_the_panoptic_images(setup):
    results, panoptic = setup['results'], setup['panoptic']
    images = {image['id']: image for image in panoptic['images']}
    things = {c['id'] for c in panoptic['categories'] if c['isthing']}
    assert isinstance(results, list)
    # One entry per prediction the detector keeps: max_per_img of them.
    assert setup['stats']['images'] == len(images) == 3
    assert len(results) == setup['stats']['predictions'] == 3 * MAX_PER_IMG
    per_image = {}
    for result in results:
        assert set(result) == {
            'image_id', 'category_id', 'segmentation', 'score'
        }
        image = images[result['image_id']]
        per_image[result['image_id']] = per_image.get(result['image_id'],
                                                      0) + 1
        assert result['category_id'] in things
        assert 0 <= result['score'] <= 1
        rle = result['segmentation']
        assert isinstance(rle['counts'], str)
        assert rle['size'] == [image['height'], image['width']]
        mask = mask_utils.decode(dict(rle, counts=rle['counts'].encode()))
        assert mask.shape == (image['height'], image['width']) == (SIZE, SIZE)
    assert per_image == {image_id: MAX_PER_IMG for image_id in images}


def test_masks_and_classes_are_the_roi_heads_at_the_original_size(setup):
    """The first image's entries against the detector's RoI head, run here
    directly with ``rescale=True``: same masks (not transposed, not at the
    network's 160 px), same scores, label -> the panoptic JSON's id."""
    cfg = Config.fromfile(setup['config'])
    cfg.merge_from_dict({
        'model.test_cfg.rcnn.score_thr': 0.0,
        'model.test_cfg.rcnn.max_per_img': MAX_PER_IMG
    })
    model = init_model(cfg, setup['checkpoint'])
    loader = Runner.build_dataloader(split_dataloader(cfg, 'train'))
    batch = next(iter(loader))
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        feats = model.extract_feat(data['inputs'])
        proposals = model.rpn_head.predict(
            feats, data['data_samples'], rescale=False)
        expected = model.roi_head.predict(
            feats, proposals, data['data_samples'], rescale=True)[0]
    image_id = data['data_samples'][0].metainfo['img_id']
    entries = [r for r in setup['results'] if r['image_id'] == image_id]
    id_of_name = {c['name']: c['id'] for c in setup['panoptic']['categories']}
    thing_classes = loader.dataset.metainfo['thing_classes']
    assert len(entries) == len(expected) == MAX_PER_IMG
    assert expected.masks.shape[1:] == (SIZE, SIZE)
    for entry, mask, label, score in zip(entries, expected.masks,
                                         expected.labels, expected.scores):
        rle = dict(entry['segmentation'])
        rle['counts'] = rle['counts'].encode()
        decoded = torch.from_numpy(mask_utils.decode(rle).astype(bool))
        assert torch.equal(decoded, mask.cpu())
        assert entry['category_id'] == id_of_name[thing_classes[label]]
        assert entry['score'] == pytest.approx(float(score), abs=1e-5)


def test_oanet_on_the_val_split(setup, tmp_path):
    config = write_config(tmp_path / 'oanet.py', OANET_CONFIG, setup['root'])
    checkpoint = random_checkpoint(config, tmp_path / 'oanet.pth')
    out = str(tmp_path / 'val.json')
    stats = dump.main([
        config, checkpoint, '--out', out, '--split', 'val', '--device', 'cpu'
    ] + keep_all(2))
    with open(osp.join(setup['root'], 'annotations',
                       'panoptic_val.json')) as f:
        val_ids = {image['id'] for image in json.load(f)['images']}
    with open(out) as f:
        results = json.load(f)
    assert stats['images'] == 2 and len(results) == 2 * 2
    assert {r['image_id'] for r in results} == val_ids
    assert all(r['segmentation']['size'] == [SIZE, SIZE] for r in results)

    # An OANet checkpoint does not fit the PanopticFPN config: refused,
    # naming the file, before a single image is read.
    with pytest.raises(CheckpointMismatchError, match=re.escape(checkpoint)):
        dump.main([setup['config'], checkpoint, '--out', out + '.2'])
    assert not osp.exists(out + '.2')


def test_unreadable_or_missing_files_are_named(setup, tmp_path, capsys):
    broken = tmp_path / 'broken.pth'  # cut short, as by a killed job
    with open(setup['checkpoint'], 'rb') as f:
        broken.write_bytes(f.read()[:4096])
    out = str(tmp_path / 'x.json')
    with pytest.raises(CorruptCheckpointError, match=re.escape(str(broken))):
        dump.main([setup['config'], str(broken), '--out', out])
    missing = str(tmp_path / 'missing.pth')
    with pytest.raises(SystemExit):
        dump.main([setup['config'], missing, '--out', out])
    assert f'checkpoint {missing} not found' in capsys.readouterr().err
    assert not osp.exists(out)


def test_score_threshold_keeps_what_reaches_it(setup, tmp_path):
    """score_thr drops the predictions scored lower, and only those."""
    threshold = sorted(r['score']
                       for r in setup['results'])[len(setup['results']) // 2]
    out = str(tmp_path / 'kept.json')
    stats = dump_instance_predictions(
        setup['config'],
        setup['checkpoint'],
        out,
        score_thr=threshold,
        device='cpu',
        progress=False,
        cfg_options={
            'model.test_cfg.rcnn.score_thr': 0.0,
            'model.test_cfg.rcnn.max_per_img': MAX_PER_IMG
        })
    with open(out) as f:
        kept = json.load(f)
    # Scores are rounded to 5 decimals in the file.
    expected = [r for r in setup['results'] if r['score'] >= threshold - 1e-5]
    assert 0 < stats['predictions'] == len(kept) < len(setup['results'])
    assert abs(len(kept) - len(expected)) <= 1
    assert min(r['score'] for r in kept) >= threshold - 1e-5


@pytest.mark.parametrize('threshold', [-0.1, 1.5])
def test_threshold_outside_0_1_is_refused(setup, tmp_path, threshold, capsys):
    out = str(tmp_path / 'never.json')
    with pytest.raises(ValueError, match='outside'):
        dump_instance_predictions(
            setup['config'], setup['checkpoint'], out, score_thr=threshold)
    with pytest.raises(SystemExit):
        dump.main([
            setup['config'], setup['checkpoint'], '--out', out, '--score-thr',
            str(threshold)
        ])
    assert f'--score-thr {threshold} is outside [0, 1]' in \
        capsys.readouterr().err
    assert not osp.exists(out)


def test_no_prediction_above_the_threshold_is_refused(setup, tmp_path):
    """A random detector never scores 1: nothing to write, and it says so
    instead of writing an empty file the SRM would train on."""
    out = str(tmp_path / 'empty.json')
    with pytest.raises(NoPredictionsError) as info:
        dump_instance_predictions(
            setup['config'],
            setup['checkpoint'],
            out,
            score_thr=1.0,
            device='cpu',
            progress=False)
    message = str(info.value)
    assert 'no instance scored 1.0 or more' in message
    assert 'on the 3 train images' in message
    assert f'{out} was not written' in message
    assert not osp.exists(out)
    with pytest.raises(SystemExit) as exit_info:
        dump.main([
            setup['config'], setup['checkpoint'], '--out', out, '--score-thr',
            '1', '--device', 'cpu'
        ])
    assert 'no instance scored 1.0 or more' in str(exit_info.value.code)
    assert not osp.exists(out)


def test_output_is_checked_before_the_detector_runs(setup, tmp_path):
    """An existing --out needs --force; an input is never the output. Both
    are refused before the (here unreadable) checkpoint is even read."""
    broken = tmp_path / 'broken.pth'  # cut short, as by a killed job
    with open(setup['checkpoint'], 'rb') as f:
        broken.write_bytes(f.read()[:4096])
    existing = tmp_path / 'existing.json'
    existing.write_text('[]')
    with pytest.raises(OutputPathError, match='pass --force'):
        dump_instance_predictions(setup['config'], str(broken), str(existing))
    with pytest.raises(OutputPathError, match='also an input'):
        dump_instance_predictions(
            setup['config'], str(broken), str(broken), force=True)
    with pytest.raises(SystemExit) as exit_info:
        dump.main([setup['config'], str(broken), '--out', str(existing)])
    assert 'exists; pass --force' in str(exit_info.value.code)
    assert existing.read_text() == '[]'
    # With --force the run goes on and meets the unreadable checkpoint.
    with pytest.raises(CorruptCheckpointError):
        dump.main(
            [setup['config'],
             str(broken), '--out',
             str(existing), '--force'])
    assert existing.read_text() == '[]'
