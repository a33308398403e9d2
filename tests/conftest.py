"""Fixtures for the whole suite."""
import collections

import mmengine.config.config as mmengine_config
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


@pytest.fixture(scope='session', autouse=True)
def format_each_config_once():
    """Remember what yapf made of a config's text, within the session.

    ``Config.pretty_text`` runs yapf over the whole config, about a second
    for the tiny OANet config on this machine, and a Runner asks for it
    four times (log, dumped config, visualizer, message hub) and once more
    per checkpoint: most of what an in-process tool run of a few iterations
    costs. The same text always formats the same, so the cache changes no
    output.
    """
    original = mmengine_config.FormatCode
    formatted = collections.OrderedDict()

    def format_code(text, style_config=None, **kwargs):
        key = (text, repr(style_config), repr(sorted(kwargs.items())))
        if key not in formatted:
            formatted[key] = original(
                text, style_config=style_config, **kwargs)
            if len(formatted) > 64:
                formatted.popitem(last=False)
        return formatted[key]

    mmengine_config.FormatCode = format_code
    yield
    mmengine_config.FormatCode = original
