"""mmoanet installs like an OpenMMLab package (setup.py, wheel, configs).

One wheel is built per session, from a copy of the repository's files in a
temporary folder so that the build leaves nothing in the checkout.
"""
import email
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
from mmengine.config import Config
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import mmoanet
from mmoanet.utils import SUPPORTED_VERSIONS
from tests.utils import REPO_ROOT

# What the wheel is built from: everything a source distribution holds, and
# tests/ and tools/, which must stay out of the wheel.
BUILD_INPUTS = ('setup.py', 'setup.cfg', 'MANIFEST.in', 'README.md', 'LICENSE',
                'model-index.yml', 'requirements', 'configs', 'mmoanet',
                'tests', 'tools')
USER_CONFIG = """_base_ = 'mmoanet::oanet/oanet_r50_fpn_100k_coco-panoptic.py'
model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))
"""


def read_lines(path):
    with open(osp.join(REPO_ROOT, path)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def python_versions():
    return read_lines('requirements/python_versions.txt')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """Path of a freshly built mmoanet wheel."""
    source = tmp_path_factory.mktemp('source') / 'mmoanet'
    source.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '.mim', '*.egg-info')
    for name in BUILD_INPUTS:
        src = osp.join(REPO_ROOT, name)
        if osp.isdir(src):
            shutil.copytree(src, source / name, ignore=ignore)
        else:
            shutil.copy(src, source / name)
    out = tmp_path_factory.mktemp('wheelhouse')
    result = subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '--disable-pip-version-check', '-q', '-w',
        str(out),
        str(source)
    ],
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(out.glob('mmoanet-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


def wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist()
                    if n.endswith('.dist-info/METADATA'))
        return email.message_from_bytes(archive.read(name))


def test_wheel_ships_configs_and_model_index_but_no_tests(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    version = osp.basename(wheel).split('-')[1]
    tops = {name.split('/')[0] for name in names}
    assert tops == {'mmoanet', f'mmoanet-{version}.dist-info'}
    for path in ('configs/oanet/oanet_r50_fpn_100k_coco-panoptic.py',
                 'configs/oanet/oanet_r18_fpn_1200i_synthetic-occlusion.py',
                 'configs/oanet/metafile.yml', 'model-index.yml'):
        assert f'mmoanet/.mim/{path}' in names, path
    repo_configs = {
        osp.relpath(osp.join(d, f), REPO_ROOT)
        for d, _, files in os.walk(osp.join(REPO_ROOT, 'configs'))
        for f in files if f.endswith(('.py', '.yml'))
    }
    shipped = {
        n[len('mmoanet/.mim/'):]
        for n in names if n.startswith('mmoanet/.mim/configs/')
    }
    assert repo_configs <= shipped
    assert not any(n.startswith(('tests/', 'tools/')) for n in names)
    assert not any('/tests/' in n or '__pycache__' in n for n in names)
    assert 'mmoanet/testing/random_panoptic.py' in names
    licence = [n for n in names if n.endswith('.dist-info/licenses/LICENSE')]
    assert licence, 'LICENSE is not in the wheel'


def test_wheel_metadata_states_supported_pythons_and_extras(wheel):
    meta = wheel_metadata(wheel)
    versions = python_versions()
    assert versions == ['3.10', '3.11']
    requires_python = SpecifierSet(meta['Requires-Python'])
    for minor in range(6, 15):
        version = f'3.{minor}'
        assert (version in requires_python) == (version in versions), version
    classifiers = meta.get_all('Classifier')
    listed = {
        c.rsplit(' :: ', 1)[1]
        for c in classifiers
        if re.fullmatch(r'Programming Language :: Python :: 3\.\d+', c)
    }
    assert listed == set(versions)
    # setuptools>=77 may write the SPDX expression to either field.
    assert 'Apache-2.0' in (meta['License-Expression'], meta['License'])

    requires = [Requirement(r) for r in meta.get_all('Requires-Dist')]
    plain = {r.name for r in requires if r.marker is None}
    extras = {}
    for r in requires:
        if r.marker is not None:
            extra = re.search(r'extra == "(\w+)"', str(r.marker)).group(1)
            extras.setdefault(extra, set()).add(r.name)
    # mmcv is a prerequisite: pip must never build it (without its ops).
    assert 'mmcv' not in plain and not any('mmcv' in e
                                           for e in extras.values())
    assert {'mmengine', 'mmdet', 'pycocotools', 'numpy'} <= plain
    # Only the tests (reference PQ) and the plots need these.
    for name in ('scipy', 'matplotlib', 'panopticapi-lite', 'pytest'):
        assert name not in plain, name
    assert {'scipy', 'pytest', 'panopticapi-lite'} <= extras['tests']
    assert extras['demo'] == {'matplotlib'}


def test_requirement_ranges_equal_the_import_guard():
    specs = {}
    for path in ('requirements/runtime.txt', 'requirements/mmcv.txt'):
        for line in read_lines(path):
            req = Requirement(line)
            specs[req.name] = req.specifier
    for package, (lowest, first_bad) in SUPPORTED_VERSIONS.items():
        assert specs[package] == SpecifierSet(
            f'>={lowest},<{first_bad}'), package


def test_docs_name_the_supported_pythons():
    with open(osp.join(REPO_ROOT, 'docs', 'installation.md')) as f:
        text = f.read()
    versions = python_versions()
    stated = re.search(r'Python ([\d.]+(?: (?:or|and) [\d.]+)*)', text)
    assert stated, 'docs/installation.md does not state the Python versions'
    assert re.findall(r'\d+\.\d+', stated.group(1)) == versions


def run_outside(cfg_dir, code, pythonpath=None):
    env = dict(os.environ)
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join(
            [pythonpath] + [p for p in [env.get('PYTHONPATH')] if p])
    return subprocess.run([sys.executable, '-c', code],
                          cwd=cfg_dir,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=120)


LOAD_USER_CONFIG = """
import os.path as osp
import mmoanet
from mmengine.config import Config
cfg = Config.fromfile('user_config.py')
print(osp.dirname(mmoanet.__file__))
print(cfg.model.type, cfg.model.backbone.type,
      cfg.model.roi_head.bbox_head.num_classes)
"""


def test_wheel_config_inherits_mmoanet_prefix_from_another_folder(
        wheel, tmp_path):
    site = tmp_path / 'site'
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    user = tmp_path / 'my_project'
    user.mkdir()
    (user / 'user_config.py').write_text(USER_CONFIG)
    result = run_outside(user, LOAD_USER_CONFIG, pythonpath=str(site))
    assert result.returncode == 0, result.stderr
    package_dir, line = result.stdout.strip().splitlines()[-2:]
    # The wheel's copy was imported and its configs were used.
    assert package_dir == str(site / 'mmoanet')
    assert line == 'OANet ResNet 3'


def test_installed_mmoanet_resolves_its_prefix(tmp_path):
    """The environment's own install (editable in .venv) resolves it too."""
    (tmp_path / 'user_config.py').write_text(USER_CONFIG)
    cfg = Config.fromfile(str(tmp_path / 'user_config.py'))
    assert cfg.model.type == 'OANet'
    assert cfg.model.roi_head.bbox_head.num_classes == 3
    # Inherited dicts carry the scope 'mmoanet', which mmoanet.registry
    # defines below mmdet's registries: they build without a fallback.
    from mmdet.registry import TRANSFORMS
    from mmengine.registry import TRANSFORMS as ROOT_TRANSFORMS
    from mmengine.registry import init_default_scope
    loader = next(t for t in cfg.test_pipeline
                  if t['type'] == 'LoadPanopticInstanceAnnotations')
    assert loader['_scope_'] == 'mmoanet'
    init_default_scope('mmdet')
    built = TRANSFORMS.build(loader)
    assert type(built).__name__ == 'LoadPanopticInstanceAnnotations'
    scope_registry = ROOT_TRANSFORMS._search_child('mmoanet')
    assert scope_registry is not None and scope_registry.parent is TRANSFORMS
    # The file mmengine read is the package's, i.e. this checkout's configs.
    shipped = osp.join(
        osp.dirname(mmoanet.__file__), '.mim', 'configs', 'oanet',
        'oanet_r50_fpn_100k_coco-panoptic.py')
    assert osp.samefile(
        shipped, osp.join(REPO_ROOT, 'configs', 'oanet', 'oanet_r50_fpn_100k_coco-panoptic.py'))


def test_prefix_without_import_says_what_mmengine_says(tmp_path):
    """Without ``import mmoanet`` mmengine refuses the prefix (documented)."""
    (tmp_path / 'user_config.py').write_text(USER_CONFIG)
    result = run_outside(
        tmp_path, 'from mmengine.config import Config\n'
        "Config.fromfile('user_config.py')")
    assert result.returncode != 0
    assert 'does not support to load mmoanet config' in result.stderr


def test_package_imports_only_its_install_requires():
    """panopticapi, scipy and matplotlib are extras: mmoanet/ never needs them
    at import (matplotlib only inside functions that plot)."""
    pattern = re.compile(r'^(?:from|import) (panopticapi|scipy|matplotlib)\b',
                         re.MULTILINE)
    offenders = []
    for folder, _, files in os.walk(osp.join(REPO_ROOT, 'mmoanet')):
        for name in files:
            if name.endswith('.py'):
                path = osp.join(folder, name)
                with open(path) as f:
                    found = pattern.findall(f.read())
                offenders += [
                    f'{osp.relpath(path, REPO_ROOT)}: {m}' for m in found
                ]
    assert not offenders, offenders
