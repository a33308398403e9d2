#!/usr/bin/env bash
# Create or update the virtual environment that `make test` and `make demo` use.
#
#   bash tools/misc/setup_env.sh            # called by the Makefile
#
# Environment variables (all optional):
#   PYTHON      interpreter used to create the venv        (default: python3)
#   VENV        where the venv lives                       (default: .venv)
#   TORCH_SPEC  pip requirement for torch; set it for a CUDA build, e.g.
#               TORCH_SPEC='torch==2.4.1' make test        (default: torch==2.13.0)
#   MAX_JOBS    parallel compile jobs for mmcv's ops       (default: nproc)
#   MMCV_SPEC   the mmcv to build, inside requirements/mmcv.txt's range
#                                                          (default: mmcv==2.1.0)
#
# Each step checks whether it is already satisfied, so a second run installs
# nothing. mmcv 2.1.0 is built from source (about 8 minutes on 2 cores); pip
# caches the wheel, so only a fresh machine pays that.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
MMCV_SPEC="${MMCV_SPEC:-mmcv==2.1.0}"
LOG_DIR="$VENV/logs"

die() {
  echo >&2
  echo "mmoanet set-up failed: $1" >&2
  shift
  for line in "$@"; do echo "  $line" >&2; done
  exit 1
}
step() { echo "[setup] $*"; }

# --- prerequisites --------------------------------------------------------
# The supported versions are stated once, in requirements/python_versions.txt.
VERSIONS="$(sed -e 's/#.*//' requirements/python_versions.txt | xargs)"
NEWEST="${VERSIONS##* }"
command -v "$PYTHON" >/dev/null 2>&1 ||
  die "no Python interpreter '$PYTHON' found." \
    "Install Python ${VERSIONS// / or } (e.g. 'apt-get install python3 python3-venv python3-dev')" \
    "or point PYTHON at one: PYTHON=/usr/bin/python$NEWEST make test"
# shellcheck disable=SC2086  # one argument per version
"$PYTHON" - $VERSIONS <<'EOF' || die "unsupported Python version." \
  "mmoanet supports Python ${VERSIONS// / and }; run with PYTHON=/path/to/python$NEWEST."
import sys
sys.exit(0 if '%d.%d' % sys.version_info[:2] in sys.argv[1:] else 1)
EOF
if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtual environment $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV" ||
    die "could not create the virtual environment $VENV." \
      "On Debian/Ubuntu install the venv module: apt-get install python3-venv"
fi
mkdir -p "$LOG_DIR"
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

pip_quiet() {
  # Run pip, keep its output in a log, and show only the tail on failure.
  local log="$LOG_DIR/$1.log"
  shift
  if ! "${PIP[@]}" "$@" >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "'pip $*' failed; the full log is $log." \
      "Check the network access to PyPI and the message above."
  fi
}

have() { "$PY" - "$@" >/dev/null 2>&1; }
satisfied() { "$PY" tools/misc/requirements_satisfied.py "$@" >/dev/null 2>&1; }

# --- torch and mmcv's build requirements ----------------------------------
# One resolve: torch asks for setuptools>=77.0.3 and requirements/build.txt
# caps it below 81, where pkg_resources (needed by mmcv's setup.py) exists.
if ! satisfied "$TORCH_SPEC" -r requirements/build.txt ||
  ! have <<<'import pkg_resources'; then
  step "installing $TORCH_SPEC and mmcv's build requirements"
  pip_quiet pip-tools install --upgrade pip
  pip_quiet torch install "$TORCH_SPEC" -r requirements/build.txt
fi

# --- mmcv with compiled ops -----------------------------------------------
if ! have "$MMCV_SPEC" <<'EOF'; then
import importlib.metadata as m, sys
from packaging.requirements import Requirement
assert m.version('mmcv') in Requirement(sys.argv[1]).specifier
from mmcv.ops import nms  # noqa: F401  raises when built without ops
EOF
  if ! command -v "${CXX:-c++}" >/dev/null 2>&1; then
    die "no C++ compiler found; mmcv's compiled ops need one." \
      "Install it (Debian/Ubuntu: apt-get install build-essential python3-dev)."
  fi
  inc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  [ -f "$inc/Python.h" ] ||
    die "Python headers ($inc/Python.h) are missing; mmcv's ops need them." \
      "Install them (Debian/Ubuntu: apt-get install python3-dev)."
  step "building $MMCV_SPEC with compiled ops (first time: ~8 min on 2 cores;" \
    "log: $LOG_DIR/mmcv.log)"
  start=$(date +%s)
  if ! MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "${PIP[@]}" install --no-build-isolation "$MMCV_SPEC" \
    -c requirements/mmcv.txt \
    >"$LOG_DIR/mmcv.log" 2>&1; then
    grep -E -m 15 'error|Error' "$LOG_DIR/mmcv.log" >&2 || true
    die "building $MMCV_SPEC failed; the full log is $LOG_DIR/mmcv.log." \
      "Common causes: no C++ compiler or Python headers (apt-get install" \
      "build-essential python3-dev), a torch without its C++ headers, or" \
      "setuptools>=82 (needs pkg_resources; see requirements/build.txt)."
  fi
  step "mmcv ready in $(($(date +%s) - start)) s"
fi

# --- runtime, tests, mmoanet itself ---------------------------------------
# mmoanet's extras: tests (pytest, linters, scipy, build, openmim), demo
# (matplotlib) and deploy (onnx, onnxruntime: tests/test_deploy needs them).
EXTRAS=(-r requirements/runtime.txt -r requirements/tests.txt
  -r requirements/demo.txt -r requirements/deploy.txt)
if ! satisfied "${EXTRAS[@]}" mmoanet || [ ! -e mmoanet/.mim/configs ] ||
  [ ! -e mmoanet/.mim/tools ]; then
  step "installing mmengine, mmdet, panopticapi, test tools and mmoanet (editable)"
  # -c build.txt: keeps setuptools (and numpy) where step 1 put them; alone,
  # openmim's dependency openxlab would take setuptools down to 60.2.
  pip_quiet runtime install "${EXTRAS[@]}" -c requirements/build.txt
  # Editable: the checkout is imported, and mmoanet/.mim links its configs
  # and tools.
  pip_quiet mmoanet install --no-deps --no-build-isolation -e .
fi

if ! "${PIP[@]}" check >"$LOG_DIR/pip-check.log" 2>&1; then
  cat "$LOG_DIR/pip-check.log" >&2
  die "'pip check' found broken requirements (see above)."
fi
step "environment $VENV is ready"
