"""Fixtures for the whole suite."""
import mmengine.config.config as mmengine_config
import pytest
from mmengine.registry import init_default_scope

from mmoanet.utils import format_each_config_once


@pytest.fixture(autouse=True)
def mmdet_default_scope():
    """Start every test in mmdet's registry scope, as mmdet's tools do.

    A test that builds an mmengine Runner leaves the process-wide default
    scope at 'mmengine'; without this, a later test that builds from mmdet's
    registries (e.g. the visualizer) passes alone and fails after it.
    """
    init_default_scope('mmdet')


@pytest.fixture(scope='session', autouse=True)
def format_each_config_once_in_session():
    """The tools' yapf cache (``format_each_config_once``), for the suite.

    A Runner formats its config four times and once per checkpoint; the
    in-process tool runs of the suite share one cache. The same text always
    formats the same, so the cache changes no output.
    """
    original = mmengine_config.FormatCode
    format_each_config_once()
    yield
    mmengine_config.FormatCode = original
