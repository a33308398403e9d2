"""Export a panoptic model to ONNX graphs for onnxruntime.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT_DIR \\
        [--shape H W] [--opset 17] [--cfg-options KEY=VALUE ...] [--force]

Writes OUT_DIR/trunk.onnx (backbone, FPN, RPN head, stuff head),
bbox_head.onnx, mask_head.onnx, srm.onnx (the SRM convolution, for
``SRMFusionHead`` and OANet), config.py and deploy.json. Height and width
are dynamic; ``--shape`` is only the trace input. Run the export with
``tools/deployment/test_onnx.py`` or :class:`mmoanet.deploy.ORTPanopticModel`
(docs/deployment.md).
"""
import argparse
from typing import Optional, Sequence

from mmengine.config import DictAction

from mmoanet.deploy import export_onnx


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        'checkpoint',
        help='checkpoint file ("none" exports random weights, for speed '
        'tests)')
    parser.add_argument('out_dir', help='folder to write the export to')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[320, 320],
        metavar=('H', 'W'),
        help='size of the trace input (padded to the preprocessor divisor); '
        'the graphs accept any size')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config overrides written into OUT_DIR/config.py, e.g. '
        'model.test_cfg.panoptic.compare_orders=True')
    parser.add_argument(
        '--force', action='store_true', help='write into a non-empty OUT_DIR')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    checkpoint = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    manifest = export_onnx(
        args.config,
        checkpoint,
        args.out_dir,
        shape=tuple(args.shape),
        opset=args.opset,
        cfg_options=args.cfg_options,
        force=args.force)
    graphs = ', '.join(graph['file'] for graph in manifest['graphs'].values())
    print(f'{args.out_dir}: {manifest["detector"]} with '
          f'{manifest["fusion_head"]}: {graphs}')
    return manifest


if __name__ == '__main__':
    main()
