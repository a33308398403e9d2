"""mmoanet.utils.format_each_config_once: yapf runs once per text."""
import mmengine.config.config as mmengine_config
from mmengine.config import Config

from mmoanet.utils import format_each_config_once


def test_each_text_is_formatted_once(monkeypatch):
    calls = []

    def counting_format(text, style_config=None, **kwargs):
        calls.append(text)
        return text.upper(), True

    monkeypatch.setattr(mmengine_config, 'FormatCode', counting_format)
    format_each_config_once(max_entries=2)
    cached = mmengine_config.FormatCode
    assert cached is not counting_format
    assert cached('a = 1\n') == ('A = 1\n', True)
    assert cached('a = 1\n') == ('A = 1\n', True)
    assert calls == ['a = 1\n']
    cached('b = 2\n')
    cached('c = 3\n')  # drops the oldest entry, 'a = 1'
    cached('a = 1\n')
    assert calls == ['a = 1\n', 'b = 2\n', 'c = 3\n', 'a = 1\n']
    # A second call does not wrap the cache in another one.
    format_each_config_once()
    assert mmengine_config.FormatCode is cached


def test_pretty_text_is_unchanged_by_the_cache(monkeypatch):
    cfg = Config(dict(model=dict(type='X', depth=18), lr=0.01))
    monkeypatch.setattr(
        mmengine_config, 'FormatCode',
        getattr(mmengine_config.FormatCode, 'original',
                mmengine_config.FormatCode))
    plain = cfg.pretty_text
    format_each_config_once()
    assert cfg.pretty_text == plain
    assert cfg.pretty_text == plain
