"""Config names follow mmdet's pattern; every config folder's metafile
lists exactly its configs, by name, and model-index.yml lists every
metafile."""
import glob
import os.path as osp
import re

import pytest
from mmengine.fileio import load

from tests.utils import REPO_ROOT

CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')
CONFIGS = sorted(
    path for path in glob.glob(osp.join(CONFIG_ROOT, '*', '*.py'))
    if osp.basename(osp.dirname(path)) != '_base_')
FOLDERS = sorted({osp.basename(osp.dirname(path)) for path in CONFIGS})
METAFILES = sorted(glob.glob(osp.join(CONFIG_ROOT, '*', 'metafile.yml')))
FIELD = re.compile(r'^[a-z0-9][a-z0-9.+-]*$')
# 1x / 20e / 100k / 1200i, optionally after a training-setting prefix
# (mmdet's ms-3x).
SCHEDULE = re.compile(r'^([a-z0-9]+-)*\d+(x|e|k|i)$')
BACKBONE = re.compile(r'^(r|x)\d+(-[a-z0-9]+)*$')


def config_id(path):
    return osp.relpath(path, CONFIG_ROOT)


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_config_name_follows_mmdet(path):
    """{algorithm}_{backbone}_{neck}_{schedule}_{dataset}.py; a model
    without backbone and neck (the SRM alone) names its own component
    instead: {algorithm}_{component}_{schedule}_{dataset}.py."""
    folder = osp.basename(osp.dirname(path))
    stem = osp.splitext(osp.basename(path))[0]
    fields = stem.split('_')
    assert len(fields) in (4, 5), stem
    assert all(FIELD.match(field) for field in fields), stem
    algorithm = folder.replace('_', '-')
    assert fields[0] == algorithm or fields[0].startswith(algorithm + '-'), \
        f'{stem}: the algorithm field starts with the folder name'
    assert SCHEDULE.match(fields[-2]), f'{stem}: schedule {fields[-2]!r}'
    if len(fields) == 5:
        assert BACKBONE.match(fields[1]), f'{stem}: backbone {fields[1]!r}'
        assert fields[2] == 'fpn', f'{stem}: neck {fields[2]!r}'


def test_name_check_refuses_the_old_names():
    """The pattern rejects what the configs used to be called."""
    for stem in ('oanet_r50_fpn', 'oanet_r50_fpn_share-none',
                 'oanet_r18_fpn_tiny_synthetic-occlusion',
                 'panoptic-fpn_r18_fpn_tiny_synthetic-occlusion'):
        fields = stem.split('_')
        assert len(fields) not in (4, 5) or not SCHEDULE.match(fields[-2])


def test_model_index_lists_every_metafile():
    index = load(osp.join(REPO_ROOT, 'model-index.yml'))
    listed = index['Import']
    assert len(listed) == len(set(listed))
    assert sorted(osp.join(REPO_ROOT, path) for path in listed) == METAFILES
    folders = {osp.basename(osp.dirname(path)) for path in METAFILES}
    assert folders == set(FOLDERS)
    assert {'oanet', 'panoptic_fpn', 'panoptic_fpn_srm', 'srm'} <= folders


@pytest.mark.parametrize('metafile', METAFILES, ids=config_id)
def test_metafile_lists_its_configs_by_name(metafile):
    folder = osp.basename(osp.dirname(metafile))
    content = load(metafile)
    collections = {collection['Name'] for collection in content['Collections']}
    for collection in content['Collections']:
        assert osp.isfile(osp.join(REPO_ROOT, collection['README']))
    names = [model['Name'] for model in content['Models']]
    assert len(names) == len(set(names))
    stems = {
        osp.splitext(osp.basename(path))[0]
        for path in CONFIGS if osp.basename(osp.dirname(path)) == folder
    }
    assert set(names) == stems
    for model in content['Models']:
        assert model['Config'] == f'configs/{folder}/{model["Name"]}.py'
        assert model['In Collection'] in collections
        for result in model.get('Results', []):
            assert result['Task'] and result['Dataset']
            assert result['Metrics'] and all(
                isinstance(value, (int, float))
                for value in result['Metrics'].values())


def test_model_names_are_unique_across_the_index():
    names = [
        model['Name'] for metafile in METAFILES
        for model in load(metafile)['Models']
    ]
    assert len(names) == len(set(names))


def test_panoptic_fpn_srm_metafile_has_the_head_to_head_results():
    """Our best product's card: the tiny model's PQ in both orders (the
    score order is stock PanopticFPN's result), none for the COCO configs,
    which have no checkpoint."""
    models = {
        model['Name']: model
        for model in load(
            osp.join(CONFIG_ROOT, 'panoptic_fpn_srm', 'metafile.yml'))
        ['Models']
    }
    tiny = models['panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion']
    metrics = tiny['Results'][0]['Metrics']
    assert metrics['PQ'] > metrics['score order PQ']
    assert metrics['PQ_st'] == metrics['score order PQ_st']
    stock = load(osp.join(CONFIG_ROOT, 'panoptic_fpn',
                          'metafile.yml'))['Models'][0]['Results'][0]
    for key in ('PQ', 'PQ_th', 'PQ_st'):
        assert metrics[f'score order {key}'] == stock['Metrics'][key]
    for name, model in models.items():
        if name.endswith('_coco'):
            assert 'Results' not in model and 'Weights' not in model


def test_srm_metafile_has_no_results():
    """An SRM alone makes no panoptic prediction: its PQ is that of the
    PanopticFPN + SRM it is merged into, whose metafile holds it."""
    content = load(osp.join(CONFIG_ROOT, 'srm', 'metafile.yml'))
    assert [c['Name'] for c in content['Collections']] == ['SRM']
    for model in content['Models']:
        assert 'Results' not in model and 'Weights' not in model
        assert model['Metadata']['Training Data']
