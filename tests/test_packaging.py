"""mmoanet installs like an OpenMMLab package (setup.py, wheel, configs).

One wheel is built per session, from a copy of the repository's files in a
temporary folder so that the build leaves nothing in the checkout.
"""
import contextlib
import email
import io
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
from mmengine.config import Config
from mmengine.utils import get_installed_path
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import mmoanet
from mmoanet.utils import SUPPORTED_VERSIONS
from tests.utils import REPO_ROOT, load_script

# What the wheel is built from: everything a source distribution holds
# (tools/ among it, shipped as mmoanet/.mim/tools), and tests/, which must
# stay out of the wheel.
BUILD_INPUTS = ('setup.py', 'setup.cfg', 'MANIFEST.in', 'README.md', 'LICENSE',
                'model-index.yml', 'requirements', 'configs', 'mmoanet',
                'tests', 'tools', 'projects')
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
def dist(tmp_path_factory):
    """Folder with a fresh sdist and the wheel built from it.

    ``python -m build`` as a user runs it (sdist first, wheel from the
    sdist, so MANIFEST.in decides what reaches the wheel), without build
    isolation so that it needs no network.
    """
    source = tmp_path_factory.mktemp('source') / 'mmoanet'
    source.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '.mim', '*.egg-info')
    for name in BUILD_INPUTS:
        src = osp.join(REPO_ROOT, name)
        if osp.isdir(src):
            shutil.copytree(src, source / name, ignore=ignore)
        elif osp.exists(src):
            shutil.copy(src, source / name)
    out = tmp_path_factory.mktemp('dist')
    result = subprocess.run([
        sys.executable, '-m', 'build', '--no-isolation', '--outdir',
        str(out),
        str(source)
    ],
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope='module')
def wheel(dist):
    """Path of the freshly built mmoanet wheel."""
    wheels = list(dist.glob('mmoanet-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_sdist_holds_what_the_wheel_is_built_from(dist):
    sdists = list(dist.glob('mmoanet-*.tar.gz'))
    assert len(sdists) == 1, sdists
    with tarfile.open(sdists[0]) as archive:
        names = {n.split('/', 1)[1] for n in archive.getnames() if '/' in n}
    for path in ('setup.py', 'MANIFEST.in', 'model-index.yml',
                 'requirements/runtime.txt', 'tools/train.py',
                 'tools/misc/print_config.py',
                 'configs/oanet/oanet_r50_fpn_100k_coco-panoptic.py'):
        assert path in names, path
    assert not any(
        n.startswith(('tests/', 'projects/',
                      'mmoanet/.mim')) or '__pycache__' in n for n in names)


def wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist()
                    if n.endswith('.dist-info/METADATA'))
        return email.message_from_bytes(archive.read(name))


def repo_files(folder, suffixes):
    """Paths under ``folder`` relative to the repository, byte code left out.
    """
    return {
        osp.relpath(osp.join(d, f), REPO_ROOT)
        for d, _, files in os.walk(osp.join(REPO_ROOT, folder))
        for f in files if f.endswith(suffixes) and '__pycache__' not in d
    }


# Development scripts of a checkout that setup.py leaves out of the wheel.
DEV_ONLY_TOOLS = {
    'tools/misc/setup_env.sh', 'tools/misc/requirements_satisfied.py'
}


def test_wheel_ships_configs_tools_and_model_index_but_no_tests(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    version = osp.basename(wheel).split('-')[1]
    tops = {name.split('/')[0] for name in names}
    assert tops == {'mmoanet', f'mmoanet-{version}.dist-info'}
    for path in ('configs/oanet/oanet_r50_fpn_100k_coco-panoptic.py',
                 'configs/oanet/oanet_r18_fpn_1200i_synthetic-occlusion.py',
                 'configs/oanet/metafile.yml', 'model-index.yml',
                 'tools/train.py', 'tools/test.py',
                 'tools/dataset_converters/make_synthetic_occlusion.py',
                 'tools/model_converters/add_srm_to_panoptic_fpn.py',
                 'tools/misc/print_config.py'):
        assert f'mmoanet/.mim/{path}' in names, path
    shipped = {
        n[len('mmoanet/.mim/'):]
        for n in names if n.startswith('mmoanet/.mim/')
    }
    assert repo_files('configs', ('.py', '.yml')) <= shipped
    # Every tool of the checkout, except the set-up scripts of a checkout;
    # mim runs them as scripts: no package marker.
    tools = repo_files('tools', ('.py', '.sh'))
    assert DEV_ONLY_TOOLS <= tools
    assert {n
            for n in shipped
            if n.startswith('tools/')} == tools - DEV_ONLY_TOOLS
    assert 'tools/__init__.py' not in shipped
    assert not any(
        n.startswith(('tests/', 'tools/', 'projects/')) for n in names)
    assert not any('/tests/' in n or '/projects/' in n or '__pycache__' in n
                   for n in names)
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
            extra = re.search(r'extra == "([\w-]+)"', str(r.marker)).group(1)
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
    assert extras['fast-pq'] == {'hotcoco'} and 'hotcoco' in extras['tests']


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
        shipped,
        osp.join(REPO_ROOT, 'configs', 'oanet',
                 'oanet_r50_fpn_100k_coco-panoptic.py'))


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


def wheel_check_commands():
    """The commands of docs/installation.md that .ci/wheel_check.sh runs."""
    with open(osp.join(REPO_ROOT, 'docs', 'installation.md')) as f:
        text = f.read()
    block = re.search(r'<!-- wheel-check: begin -->\s*```bash\n(.*?)```', text,
                      re.DOTALL)
    assert block, 'docs/installation.md has no wheel-check block'
    lines = block.group(1).replace('\\\n', ' ').splitlines()
    return [' '.join(line.split()) for line in lines if line.strip()]


def find_in(folder, file_name):
    return [
        p for p in repo_files(folder, ('.py', ))
        if osp.basename(p) == file_name
    ]


def test_mim_finds_each_config_by_its_file_name():
    """``mim train/test mmoanet NAME.py`` searches the whole installed
    package (modules, .mim/configs, .mim/tools) for a file of that name and
    stops when there are two. ``_base_`` files are never given to mim."""
    shipped = (
        repo_files('configs', ('.py', )) | repo_files('mmoanet', ('.py', ))
        | (repo_files('tools', ('.py', )) - DEV_ONLY_TOOLS))
    names = [osp.basename(p) for p in shipped]
    runnable = [
        p for p in repo_files('configs', ('.py', ))
        if '_base_' not in p.split(os.sep)
    ]
    assert len(runnable) > 20
    repeated = [p for p in runnable if names.count(osp.basename(p)) > 1]
    assert not repeated, repeated


def test_documented_mim_commands_name_shipped_configs_and_tools():
    commands = wheel_check_commands()
    verbs = [c.split()[:3] for c in commands if c.startswith('mim ')]
    assert ['mim', 'train', 'mmoanet'] in verbs
    for command in commands:
        words = command.split()
        if words[:2] in (['mim', 'train'], ['mim', 'test']):
            assert words[2] == 'mmoanet', command
            assert len(find_in('configs', osp.basename(words[3]))) == 1
        elif words[:2] == ['mim', 'run']:
            assert words[2] == 'mmoanet', command
            tool = words[3].split(':')[-1] + '.py'
            assert len(find_in('tools', tool)) == 1, command
    # The product path: an SRM config trained, merged, the merge tested.
    text = '\n'.join(commands)
    assert re.search(r'^mim train mmoanet srm_\S+\.py ', text, re.M)
    assert re.search(r'^mim run mmoanet add_srm_to_panoptic_fpn ', text, re.M)
    assert re.search(
        r'^mim test mmoanet panoptic-fpn-srm_\S+\.py --checkpoint ', text,
        re.M)


def test_train_and_test_take_what_mim_passes(tmp_path):
    """mim runs ``train.py CONFIG --launcher none ARGS`` (plus ``--gpus N``
    when the help mentions ``--gpus``) and ``test.py CONFIG CHECKPOINT
    --launcher none ARGS``."""
    config = osp.join(REPO_ROOT, 'configs', 'panoptic_fpn',
                      'panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py')
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')
    train = load_script('tools/train.py')
    args = train.parse_args([
        config, '--launcher', 'none', '--cfg-options', 'train_cfg.max_iters=2'
    ])
    assert args.launcher == 'none'
    assert args.cfg_options == {'train_cfg.max_iters': 2}
    with pytest.raises(SystemExit) as help_exit, \
            contextlib.redirect_stdout(io.StringIO()) as help_text:
        train.parse_args(['-h'])
    assert help_exit.value.code == 0
    assert '--gpus' not in help_text.getvalue()
    test = load_script('tools/test.py')
    args = test.parse_args([config, str(checkpoint), '--launcher', 'none'])
    assert (args.checkpoint, args.launcher) == (str(checkpoint), 'none')


def test_print_config_tool_reads_a_user_config_that_mmdets_cannot(tmp_path):
    """Our print_config imports mmoanet first; mmdet's own parses at once."""
    (tmp_path / 'user_config.py').write_text(USER_CONFIG)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    ours = osp.join(REPO_ROOT, 'tools', 'misc', 'print_config.py')
    mmdet_tool = osp.join(
        get_installed_path('mmdet'), '.mim', 'tools', 'misc',
        'print_config.py')
    assert osp.isfile(mmdet_tool), mmdet_tool
    results = [
        subprocess.run([sys.executable, tool, 'user_config.py'],
                       cwd=tmp_path,
                       env=env,
                       capture_output=True,
                       text=True,
                       timeout=120) for tool in (ours, mmdet_tool)
    ]
    assert results[0].returncode == 0, results[0].stderr
    assert "type='OANet'" in results[0].stdout
    assert 'num_classes=3' in results[0].stdout
    assert results[1].returncode != 0
    assert ('mmengine does not support to load mmoanet config'
            in results[1].stderr)
