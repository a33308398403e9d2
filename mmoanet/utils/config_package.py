"""Let configs elsewhere inherit ours: ``_base_ = 'mmoanet::oanet/...'``.

mmengine resolves ``pkg::path`` only for the packages listed in its
``mmengine.config.utils.MODULE2PACKAGE`` (mmdet, mmseg, ...), and reads the
file from ``<installed package>/.mim/configs/path``. ``setup.py`` ships the
configs there (copies in a wheel, links in an editable install);
:func:`register_config_package` adds mmoanet to the list. ``import mmoanet``
calls it, so a script must import mmoanet before it parses such a config
(mmoanet's own tools do, hence ``mim train/test mmoanet`` and ``mim run
mmoanet print_config``). mmengine 0.10.7 offers no other way in: the table
is a literal of its source, checked by an assert in
``_get_package_and_cfg_path`` before any lookup, and a config's
``custom_imports`` are imported only after its ``_base_`` files are read.
mmdet's own tools therefore refuse such a config (docs/installation.md).

mmengine 0.10.7 finds the package folder through ``pkg_resources``, whose
location of an editable (PEP 660) install is site-packages, not the
checkout. We therefore name the lookup by a module of the package
(``mmoanet.version``), which mmengine finds through the import system in
both kinds of install.
"""
from mmengine.config import utils as config_utils

__all__ = ['CONFIG_LOOKUP_MODULE', 'register_config_package']

# A module directly inside the package folder; mmengine takes its folder.
CONFIG_LOOKUP_MODULE = 'mmoanet.version'


def register_config_package() -> None:
    """Make ``mmoanet::`` a package prefix mmengine's Config accepts.

    Calling it again changes nothing.
    """
    config_utils.MODULE2PACKAGE.setdefault('mmoanet', CONFIG_LOOKUP_MODULE)
