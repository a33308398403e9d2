"""Refuse unknown keys in the configs of our components.

mmdet's heads read their ``test_cfg`` with ``cfg.get(key, default)`` or as
attributes, so a misspelt key (``same_class_ordr``) is silently ignored and
the run goes on with the default. Our components check their keys at
construction instead, and name the closest known key.
"""
import difflib
import inspect
from typing import Callable, Iterable, Mapping

__all__ = ['UnknownConfigKeyError', 'check_known_keys', 'parameter_names']


class UnknownConfigKeyError(ValueError):
    """A config names a key that the component does not read."""


def parameter_names(function: Callable) -> list:
    """The named parameters of ``function`` (``self`` and ``**`` left out).
    """
    return [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if name != 'self' and parameter.kind not in (parameter.VAR_POSITIONAL,
                                                     parameter.VAR_KEYWORD)
    ]


def check_known_keys(given: Mapping, known: Iterable[str], where: str) -> None:
    """Raise when ``given`` holds a key outside ``known``.

    Args:
        given (Mapping): The config (or keyword arguments) as written.
        known (Iterable[str]): The keys the component reads.
        where (str): How to name the config in the message, e.g.
            ``'model.test_cfg.panoptic of SRMFusionHead'``.

    Raises:
        UnknownConfigKeyError: Naming each unknown key, the closest known
            key (by :func:`difflib.get_close_matches`) and every known key.
    """
    known = sorted(known)
    unknown = [key for key in given if key not in known]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f'{key!r}'
        if close:
            hint += f' (did you mean {close[0]!r}?)'
        hints.append(hint)
    raise UnknownConfigKeyError(
        f'{where}: unknown key{"s" if len(unknown) > 1 else ""} '
        f'{", ".join(hints)}; the known keys are {", ".join(known)}')
