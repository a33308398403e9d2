#!/usr/bin/env bash
# The built wheel, installed into a fresh environment, runs the product path
# with no clone: from an empty folder, the commands of docs/installation.md
# ("Into an existing environment") train an SRM with mmengine's Runner, train
# a tiny stock PanopticFPN, merge the SRM into it and evaluate the merged
# checkpoint.
#
#   bash .ci/wheel_check.sh        # or `make wheel-check`; .ci/run calls it
#
# 1. `python -m build` makes the sdist from a copy of the tracked files and
#    the wheel from that sdist (nothing is written into the checkout).
# 2. A new virtual environment reuses torch, mmcv (with its ops) and mmdet of
#    $VENV without their editable mmoanet: a .pth file in its site-packages
#    names $VENV's site-packages folder, which Python appends to sys.path;
#    the .pth files inside that folder, among them the finder of the
#    editable install, are not processed. The wheel is installed there with
#    --no-deps (its requirements are reached through that folder), and so is
#    openmim's `mim` command (openmim itself is reached the same way).
# 3. From an empty folder, with PYTHONPATH unset, the checkout not
#    importable and mmoanet imported from the wheel, the documented commands
#    run; the test must print the panoptic quality table.
# About a minute of CPU time (3-4 min wall on a busy 2-core machine). Each
# step's output is in a log, shown when the step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd -P)"
venv="${VENV:-.venv}"
case "$venv" in /*) ;; *) venv="$ROOT/$venv" ;; esac
PY="$venv/bin/python"
[ -x "$PY" ] || { echo "wheel check: no $PY; run make test first" >&2; exit 1; }
unset PYTHONPATH PYTHONHOME

start=$(date +%s)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
logs="$scratch/logs"
mkdir "$logs"

say() { echo "wheel check: $*"; }
fail() {
  echo "wheel check FAILED: $1" >&2
  [ -n "${2:-}" ] && [ -f "$2" ] && tail -n 40 "$2" >&2
  exit 1
}
# Run a step with its output in a log; show the log's tail if it fails.
step() {
  local name="$1" t0
  shift
  t0=$(date +%s)
  "$@" >"$logs/$name.log" 2>&1 || fail "$name: $*" "$logs/$name.log"
  say "$name ok ($(($(date +%s) - t0)) s)"
}

# --- 1. sdist and wheel ---------------------------------------------------
git rev-parse --git-dir >/dev/null 2>&1 ||
  fail "$ROOT is not a git checkout (the wheel is built from its files)"
src="$scratch/src"
mkdir "$src"
git ls-files -z --cached --others --exclude-standard --deduplicate |
  while IFS= read -r -d '' path; do
    [ -e "$path" ] && printf '%s\0' "$path"
  done | tar --null --files-from=- -cf - | tar -xf - -C "$src"
step build "$PY" -m build --no-isolation --outdir "$scratch/dist" "$src"
wheel="$(ls "$scratch"/dist/mmoanet-*-py3-none-any.whl)"
step wheel-contents "$PY" - "$wheel" <<'EOF'
import sys
import zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
mim = 'mmoanet/.mim/'
needed = [
    'model-index.yml', 'tools/train.py', 'tools/test.py',
    'tools/dataset_converters/make_synthetic_occlusion.py',
    'tools/model_converters/add_srm_to_panoptic_fpn.py',
    'tools/analysis_tools/dump_instance_predictions.py',
    'tools/misc/print_config.py',
    'configs/srm/srm_1x7-7x1_1200i_synthetic-occlusion.py',
    'configs/panoptic_fpn/panoptic-fpn_r18_fpn_1200i_synthetic-occlusion.py',
    'configs/panoptic_fpn_srm/'
    'panoptic-fpn-srm_r18_fpn_1200i_synthetic-occlusion.py'
]
missing = [mim + n for n in needed if mim + n not in names]
tops = {n.split('/')[0] for n in names}
stray = [
    n for n in names
    if '/tests/' in n or '__pycache__' in n or n.endswith('setup_env.sh')
    or n.startswith(mim + 'tools/__init__')
]
print(len(names), 'files; top level:', sorted(tops))
assert not missing, f'missing from the wheel: {missing}'
assert all(t == 'mmoanet' or t.endswith('.dist-info') for t in tops), tops
assert not stray, f'not for the wheel: {stray}'
EOF

# --- 2. a fresh environment that reuses torch, mmcv and mmdet -------------
new="$scratch/venv"
"$PY" -m venv --without-pip "$new"
purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'
base_site="$("$PY" -c "$purelib")"
new_site="$("$new/bin/python" -c "$purelib")"
echo "$base_site" >"$new_site/reuse_base_environment.pth"
run="$scratch/run" # the empty folder the user commands run in
mkdir "$run"
cd "$run"
"$new/bin/python" -c 'import importlib.util, sys
assert importlib.util.find_spec("mmoanet") is None, "mmoanet importable"
import torch, mmcv.ops, mmdet' ||
  fail "the new environment must reach torch, mmcv and mmdet, not mmoanet"
step install-wheel "$new/bin/python" -m pip install --no-deps \
  --disable-pip-version-check "$wheel"
mim_version="$("$PY" -c 'import importlib.metadata as m
print(m.version("openmim"))')"
step install-mim "$new/bin/python" -m pip install --no-deps \
  --ignore-installed --disable-pip-version-check "openmim==$mim_version"
export PATH="$new/bin:$PATH"
[ "$(command -v mim)" = "$new/bin/mim" ] || fail "mim is not $new/bin/mim"
python - "$new" "$ROOT" <<'EOF' || fail "mmoanet is not the wheel's copy"
import os.path as osp
import sys

import mmoanet

new, root = sys.argv[1:]
where = osp.realpath(mmoanet.__file__)
print('mmoanet', mmoanet.__version__, 'from', where)
assert where.startswith(osp.realpath(new) + osp.sep), where
assert not where.startswith(root + osp.sep), where
EOF

# --- 3. the documented commands, from the empty folder --------------------
# They are read from docs/installation.md, between its "wheel-check" markers,
# and run one by one as they are written there.
"$PY" - "$ROOT/docs/installation.md" >"$scratch/commands" <<'EOF' ||
import re
import sys

text = open(sys.argv[1]).read()
block = re.search(r'<!-- wheel-check: begin -->\s*```bash\n(.*?)```',
                  text, re.DOTALL)
assert block, 'no wheel-check block in docs/installation.md'
commands = block.group(1).replace('\\\n', ' ').splitlines()
commands = [' '.join(c.split()) for c in commands]
commands = [c for c in commands if c and not c.startswith('#')]
assert any(c.startswith('mim test ') for c in commands), commands
sys.stdout.write('\0'.join(commands) + '\0')
EOF
  fail "cannot read the commands of docs/installation.md"
tree_before="$(git -C "$ROOT" status --porcelain --ignored)"
n=0
test_log=
while IFS= read -r -d '' command; do
  n=$((n + 1))
  say "\$ $command"
  step "command-$n" bash -c "$command"
  case "$command" in "mim test "*) test_log="$logs/command-$n.log" ;; esac
done <"$scratch/commands"

grep -q 'Panoptic quality per fusion order' "$test_log" &&
  grep -q 'coco_panoptic/PQ: ' "$test_log" ||
  fail "mim test printed no panoptic quality" "$test_log"
sed -n '/Panoptic quality per fusion order/,/coco_panoptic\/PQ: /p' "$test_log"
[ "$(git -C "$ROOT" status --porcelain --ignored)" = "$tree_before" ] ||
  fail "the commands changed files of the checkout $ROOT"
say "passed in $(($(date +%s) - start)) s (mmoanet from the wheel," \
  "torch/mmcv/mmdet from $venv)"
