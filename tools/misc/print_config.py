"""Print a config after inheritance and ``--cfg-options``, as mmdet's does.

    python tools/misc/print_config.py CONFIG [--cfg-options KEY=VALUE ...]
    mim run mmoanet print_config my_project/my_oanet.py

Unlike mmdet's ``tools/misc/print_config.py`` it imports mmoanet before the
config is parsed, so a config of your own that inherits ours with
``_base_ = 'mmoanet::...'`` can be printed (mmengine 0.10.7 accepts the
``mmoanet::`` prefix only in a process that imported mmoanet; see
docs/installation.md).
"""
import argparse
from typing import Optional, Sequence

from mmengine.config import Config, DictAction

import mmoanet  # noqa: F401  (the ``mmoanet::`` prefix, our components)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Print a whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, KEY=VALUE (as in train.py)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Config:
    """Parse, merge and print the config; return it."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    return cfg


if __name__ == '__main__':
    main()
