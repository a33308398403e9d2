"""Exit 0 when every requirement given is installed at an allowed version.

Used by ``tools/misc/setup_env.sh`` so that a second ``make test`` installs
nothing. Arguments are requirement strings or ``-r FILE``.

    python tools/misc/requirements_satisfied.py torch==2.13.0 -r req.txt
"""
import importlib.metadata as metadata
import sys

from packaging.requirements import Requirement


def iter_requirements(argv):
    args = iter(argv)
    for arg in args:
        if arg == '-r':
            with open(next(args)) as f:
                for line in f:
                    line = line.split('#')[0].strip()
                    if line:
                        yield line
        else:
            yield arg


def main(argv):
    for spec in iter_requirements(argv):
        req = Requirement(spec)
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            print(f'missing: {req.name}')
            return 1
        if not req.specifier.contains(version, prereleases=True):
            print(f'wrong version: {req.name} {version} (want {spec})')
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
