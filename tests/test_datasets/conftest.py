"""Shared fixtures: a tiny synthetic set and a writable copy of the sample."""
import shutil

import pytest

from mmoanet.datasets import generate_synthetic_occlusion
from tests.utils import SAMPLE_DIR


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> str:
    """16 train and 6 val synthetic images of odd size 97; do not modify."""
    root = tmp_path_factory.mktemp('synthetic')
    generate_synthetic_occlusion(
        str(root), num_train=16, num_val=6, size=97, seed=3)
    return str(root)


@pytest.fixture
def sample_root(tmp_path) -> str:
    """A writable copy of the real COCO panoptic sample."""
    root = tmp_path / 'coco_panoptic_sample'
    shutil.copytree(SAMPLE_DIR, root)
    return str(root)
