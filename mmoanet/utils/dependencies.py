"""Check that the OpenMMLab stack under mmoanet is one we support.

mmoanet subclasses mmdet internals (the two-stage panoptic segmentor, the
panoptic fusion head base, the COCO panoptic dataset), so a silent version
mismatch shows up as an obscure ``TypeError`` deep in a training run. We
check once, at import, and say what to install instead.
"""
import importlib.metadata as metadata
from typing import Callable, Dict, Optional, Tuple

from packaging.version import Version

__all__ = ['SUPPORTED_VERSIONS', 'check_dependencies']

# package: (lowest allowed, first disallowed). mmdet 3.3.0 itself asserts the
# mmcv range; mmoanet is tested with mmcv 2.1.0, mmengine 0.10.7, mmdet 3.3.0.
SUPPORTED_VERSIONS: Dict[str, Tuple[str, str]] = {
    'mmcv': ('2.0.0rc4', '2.2.0'),
    'mmengine': ('0.10.0', '1.0.0'),
    'mmdet': ('3.3.0', '3.4.0'),
}

_HOW_TO_FIX = ('Run `make test` (or `bash tools/misc/setup_env.sh`) from the '
               'mmoanet repository to build a supported environment in '
               '.venv, or see docs/installation.md.')


def _mmcv_ops_usable() -> Optional[str]:
    """Return why ``mmcv.ops`` cannot be used, or None when it can."""
    try:
        from mmcv.ops import nms  # noqa: F401
    except (ImportError, OSError) as error:
        return f'{type(error).__name__}: {error}'
    return None


def check_dependencies(
        version_of: Callable[[str], str] = metadata.version,
        mmcv_ops_error: Callable[[],
                                 Optional[str]] = _mmcv_ops_usable) -> None:
    """Raise ImportError naming every unsupported dependency.

    Args:
        version_of (callable): maps a distribution name to its installed
            version; raises ``PackageNotFoundError`` when it is missing.
            Tests pass a fake.
        mmcv_ops_error (callable): returns why mmcv's compiled ops are
            unusable, or None.

    Raises:
        ImportError: one message listing each problem and how to fix it.
    """
    problems = []
    for package, (lowest, first_bad) in SUPPORTED_VERSIONS.items():
        try:
            version = version_of(package)
        except metadata.PackageNotFoundError:
            problems.append(f'{package} is not installed '
                            f'(need >={lowest}, <{first_bad})')
            continue
        if not Version(lowest) <= Version(version) < Version(first_bad):
            problems.append(f'{package} {version} is installed, but mmoanet '
                            f'needs {package}>={lowest},<{first_bad}')
    if not problems and (reason := mmcv_ops_error()) is not None:
        problems.append(
            'mmcv was installed without its compiled ops (mmcv.ops is '
            f'unusable: {reason}). Rebuild it against the installed torch: '
            'pip uninstall -y mmcv mmcv-lite && MMCV_WITH_OPS=1 pip install '
            '--no-build-isolation --no-cache-dir mmcv==2.1.0')
    if problems:
        raise ImportError('mmoanet cannot run with this environment:\n  - ' +
                          '\n  - '.join(problems) + '\n' + _HOW_TO_FIX)
