import importlib.metadata as metadata

import pytest

from mmoanet.utils import SUPPORTED_VERSIONS, check_dependencies

GOOD = {'mmcv': '2.1.0', 'mmengine': '0.10.7', 'mmdet': '3.3.0'}


def fake_versions(**overrides):
    versions = dict(GOOD, **overrides)

    def version_of(name):
        if versions.get(name) is None:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    return version_of


def test_installed_stack_is_supported():
    check_dependencies()  # the real environment
    assert set(SUPPORTED_VERSIONS) == set(GOOD)


@pytest.mark.parametrize('package,version', [('mmcv', '2.2.0'),
                                             ('mmdet', '3.2.0'),
                                             ('mmengine', '1.0.0'),
                                             ('mmcv', None)])
def test_unsupported_version_is_named(package, version):
    with pytest.raises(ImportError) as info:
        check_dependencies(fake_versions(**{package: version}), lambda: None)
    message = str(info.value)
    assert package in message and 'make test' in message
    if version is not None:
        assert version in message


def test_mmcv_without_ops_is_reported():
    with pytest.raises(ImportError, match='MMCV_WITH_OPS=1'):
        check_dependencies(fake_versions(),
                           lambda: "No module named 'mmcv._ext'")
