#!/usr/bin/env python
"""Install mmoanet: ``pip install -e .`` (the Makefile does it for you)."""
import os.path as osp
from setuptools import find_packages, setup


def read_version() -> str:
    namespace = {}
    with open(osp.join('mmoanet', 'version.py')) as f:
        exec(compile(f.read(), 'mmoanet/version.py', 'exec'), namespace)
    return namespace['__version__']


def read_requirements(path: str) -> list:
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


setup(
    name='mmoanet',
    version=read_version(),
    description='OANet (CVPR 2019) panoptic segmentation for MMDetection 3.x',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    keywords='computer vision, panoptic segmentation, mmdetection',
    packages=find_packages(include=('mmoanet', 'mmoanet.*')),
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=read_requirements('requirements/runtime.txt') +
    read_requirements('requirements/mmcv.txt'),
    extras_require={'tests': read_requirements('requirements/tests.txt')},
    classifiers=[
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'License :: OSI Approved :: Apache Software License',
    ],
    license='Apache License 2.0',
    zip_safe=False)
