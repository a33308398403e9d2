"""Fixtures for the whole suite."""
import pytest
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True)
def mmdet_default_scope():
    """Start every test in mmdet's registry scope, as mmdet's tools do.

    A test that builds an mmengine Runner leaves the process-wide default
    scope at 'mmengine'; without this, a later test that builds from mmdet's
    registries (e.g. the visualizer) passes alone and fails after it.
    """
    init_default_scope('mmdet')
