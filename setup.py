#!/usr/bin/env python
"""Install mmoanet.

    pip install -e .             # development install (the Makefile does it)
    pip wheel --no-deps -w dist .

mmcv with its compiled ops is a prerequisite, not a requirement pip installs
(see requirements/mmcv.txt and docs/installation.md). The configs, the user
tools and ``model-index.yml`` are shipped inside the package as
``mmoanet/.mim/``, as OpenMMLab packages do, so that an installed wheel
needs no clone: ``mim train mmoanet CONFIG``, ``mim test mmoanet CONFIG
--checkpoint FILE`` and ``mim run mmoanet TOOL ...`` find them there, and
``_base_ = 'mmoanet::oanet/oanet_r50_fpn_100k_coco-panoptic.py'`` works from
a config anywhere.
"""
import os
import os.path as osp
import shutil
from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
# Files of the checkout shipped in ``<package>/.mim/``: the configs and the
# model index of their metafiles (read by mmengine's ``pkg::`` lookup and by
# ``mim train/test``, which find a config there by its file name), and the
# tools (``mim train/test`` run ``.mim/tools/train.py`` and ``test.py``,
# ``mim run mmoanet NAME`` runs ``.mim/tools/**/NAME.py``).
MIM_FILES = ('configs', 'tools', 'model-index.yml')
# Not copied into a wheel: byte code, and the scripts that set up the
# development environment of a checkout (they read requirements/ beside
# tools/, which a wheel does not have).
MIM_EXCLUDE = ('__pycache__', '*.pyc', 'setup_env.sh',
               'requirements_satisfied.py')


def read_version() -> str:
    namespace = {}
    with open(osp.join(ROOT, 'mmoanet', 'version.py')) as f:
        exec(compile(f.read(), 'mmoanet/version.py', 'exec'), namespace)
    return namespace['__version__']


def read_lines(path: str) -> list:
    """Non-empty lines of a requirements file, without comments."""
    with open(osp.join(ROOT, path)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def python_versions() -> list:
    """The supported ``major.minor`` versions, oldest first."""
    versions = read_lines('requirements/python_versions.txt')
    return sorted(versions, key=lambda v: tuple(map(int, v.split('.'))))


def python_requires(versions: list) -> str:
    major, minor = versions[-1].split('.')
    return f'>={versions[0]},<{major}.{int(minor) + 1}'


class BuildPyWithMim(build_py):
    """``build_py`` that also puts ``MIM_FILES`` into ``mmoanet/.mim``.

    A wheel gets copies in its build folder (the source tree is left
    alone); an editable install gets symbolic links in the source tree
    (``mmoanet/.mim`` is ignored by git), so edited configs and tools are
    seen at once.
    """

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            self._link_into(osp.join(ROOT, 'mmoanet', '.mim'))
        else:
            self._copy_into(osp.join(self.build_lib, 'mmoanet', '.mim'))

    @staticmethod
    def _remove(path: str) -> None:
        if osp.islink(path) or osp.isfile(path):
            os.remove(path)
        elif osp.isdir(path):
            shutil.rmtree(path)

    def _copy_into(self, mim_dir: str) -> None:
        os.makedirs(mim_dir, exist_ok=True)
        for name in MIM_FILES:
            src, dst = osp.join(ROOT, name), osp.join(mim_dir, name)
            self._remove(dst)
            if osp.isdir(src):
                shutil.copytree(
                    src, dst, ignore=shutil.ignore_patterns(*MIM_EXCLUDE))
            else:
                shutil.copyfile(src, dst)

    def _link_into(self, mim_dir: str) -> None:
        os.makedirs(mim_dir, exist_ok=True)
        for name in MIM_FILES:
            dst = osp.join(mim_dir, name)
            self._remove(dst)
            os.symlink(osp.join('..', '..', name), dst)


VERSIONS = python_versions()

setup(
    name='mmoanet',
    version=read_version(),
    description='OANet (CVPR 2019) panoptic segmentation for MMDetection 3.x',
    long_description=open(osp.join(ROOT, 'README.md')).read(),
    long_description_content_type='text/markdown',
    keywords='computer vision, panoptic segmentation, mmdetection',
    packages=find_packages(include=('mmoanet', 'mmoanet.*')),
    cmdclass={'build_py': BuildPyWithMim},
    include_package_data=True,
    python_requires=python_requires(VERSIONS),
    install_requires=read_lines('requirements/runtime.txt'),
    extras_require={
        'tests': read_lines('requirements/tests.txt'),
        'demo': read_lines('requirements/demo.txt'),
        'deploy': read_lines('requirements/deploy.txt'),
        'fast-pq': read_lines('requirements/optional.txt'),
    },
    classifiers=[
        'Operating System :: OS Independent',
        'Programming Language :: Python :: 3',
    ] + [f'Programming Language :: Python :: {v}' for v in VERSIONS] + [
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    license='Apache-2.0',  # an SPDX expression (setuptools>=77)
    license_files=['LICENSE'],
    zip_safe=False)
