"""Paths shared by the tests."""
import os.path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Two real COCO val2017 images with their panoptic ground truth, kept in the
# repository (see tests/data/coco_panoptic_sample/README.md for the licences).
SAMPLE_DIR = osp.join(REPO_ROOT, 'tests', 'data', 'coco_panoptic_sample')
