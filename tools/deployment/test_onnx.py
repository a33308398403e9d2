"""Evaluate an ONNX export with onnxruntime on its config's test set.

    python tools/deployment/test_onnx.py OUT_DIR [--work-dir DIR] \\
        [--num-threads N] [--cfg-options KEY=VALUE ...]

The export's config.py gives the data and the metric (as
``tools/test.py`` uses them); the network runs in onnxruntime, the
post-processing is the detector's PyTorch code (docs/deployment.md).
"""
import argparse
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import DictAction

from mmoanet.deploy import evaluate_onnx


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'deploy_dir', help='folder of tools/deployment/export_onnx.py')
    parser.add_argument(
        '--work-dir',
        help='where logs go (default: work_dirs/onnx_<folder name>)')
    parser.add_argument(
        '--num-threads',
        type=int,
        help='onnxruntime intra-op threads (default: all cores)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='overrides of the export config (data and post-processing), '
        'e.g. model.test_cfg.panoptic.compare_orders=True')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    work_dir = args.work_dir or osp.join(
        'work_dirs', 'onnx_' + osp.basename(osp.normpath(args.deploy_dir)))
    return evaluate_onnx(
        args.deploy_dir,
        work_dir,
        cfg_options=args.cfg_options,
        num_threads=args.num_threads)


if __name__ == '__main__':
    main()
