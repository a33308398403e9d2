"""Helpers shared by the scripts under ``tools/``.

The scripts put the folder above ``tools/`` (the checkout, or
``mmoanet/.mim`` when mim runs them) first on ``sys.path`` and import
``tools.utils``; see ``tools/train.py``. ``mmoanet`` itself never imports
them.
"""
import os.path as osp

__all__ = ['REPO_ROOT']

# The folder holding tools/ and configs/: the configs' relative data paths
# (data/...) and tools/train.py are resolved against it.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
