"""Paths shared by the tests."""
import os
import os.path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The real COCO sample lives in the shared folder beside the checkout (as on
# CI); MMOANET_COCO_SAMPLE points elsewhere. Tests that need it fail, not
# skip, when it is missing.
SAMPLE_DIR = os.environ.get(
    'MMOANET_COCO_SAMPLE',
    osp.join(REPO_ROOT, '..', 'shared', 'data', 'coco_panoptic_sample'))
