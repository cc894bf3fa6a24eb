#!/usr/bin/env bash
# Install MMDetection 3.3.0 and MMSegmentation 1.2.2 beside mdc_plugin, in a
# separate virtual environment that reuses this Python's torch.
#
# Both import mmcv's compiled ops and assert mmcv < 2.2.0, which mmcv-lite
# (the main environment's mmcv) does not have. PyPI has mmcv 2.1.0 only as
# source, so this builds it with its CPU ops (MMCV_WITH_OPS=1). torch >= 2.10
# headers need C++20 while mmcv 2.1.0 asks the compiler for C++17: a small
# compiler wrapper, written into the build folder, swaps that one flag.
# mmcv's own sources are not modified.
#
# Usage:  bash tools/misc/install_downstream.sh [VENV] [JOBS]
#   VENV  default .venv-downstream (created with --system-site-packages)
#   JOBS  parallel compile jobs (default: number of cores)
# Then:   VENV/bin/python tools/train.py configs/downstream/...fashion-128px.py
# Build time on 2 cores: see docs/downstream.md.
set -euo pipefail
VENV=${1:-.venv-downstream}
JOBS=${2:-$(nproc)}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$REPO/work_dirs/mmcv-build}
start=$(date +%s)
step() { echo "[install_downstream $(( $(date +%s) - start )) s] $*"; }
fail() { echo "install_downstream: $*" >&2; exit 1; }

python3 -c 'import torch' 2>/dev/null \
  || fail "this Python has no torch: pip install -e '.[tests]' first (README)"
command -v g++ > /dev/null || fail "g++ not found: apt-get install g++"

step "virtual environment $VENV (reuses this Python's torch)"
[ -x "$VENV/bin/python" ] || python3 -m venv --system-site-packages "$VENV"
PY="$(cd "$VENV" && pwd)/bin/python"
"$PY" -m pip install -q ninja wheel

if "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' \
    2>/dev/null; then
  step "mmcv 2.1.0 with ops already installed"
else
  step "mmcv 2.1.0: download the source"
  mkdir -p "$BUILD"
  "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
    mmcv==2.1.0 -d "$BUILD" || fail "could not download mmcv 2.1.0 source"
  [ -d "$BUILD/mmcv-2.1.0" ] || tar xzf "$BUILD/mmcv-2.1.0.tar.gz" -C "$BUILD"
  cat > "$BUILD/g++" <<'EOF'
#!/usr/bin/env bash
args=()
for a in "$@"; do
  case "$a" in -std=c++14|-std=c++17) args+=(-std=c++20) ;; *) args+=("$a") ;; esac
done
exec g++ "${args[@]}"
EOF
  chmod +x "$BUILD/g++"
  step "mmcv 2.1.0: compile the CPU ops with $JOBS jobs (tens of minutes)"
  (cd "$BUILD/mmcv-2.1.0" && MMCV_WITH_OPS=1 MAX_JOBS=$JOBS \
     CC="$BUILD/g++" CXX="$BUILD/g++" \
     "$PY" setup.py bdist_wheel -d "$BUILD/wheels" > "$BUILD/build.log" 2>&1) \
    || fail "mmcv build failed; the compiler's errors: grep error $BUILD/build.log"
  "$PY" -m pip install -q --no-deps "$BUILD"/wheels/mmcv-2.1.0-*.whl
fi

step "mmdet 3.3.0, mmsegmentation 1.2.2 and their pure-Python needs"
"$PY" -m pip install -q --no-deps mmdet==3.3.0 mmsegmentation==1.2.2
"$PY" -m pip install -q terminaltables shapely scipy prettytable ftfy regex
"$PY" -m pip install -q --no-deps -e "$REPO"

"$PY" - <<'EOF' || fail "the installed packages do not import"
import mmcv, mmcv.ops, mmdet, mmseg, mmpretrain.models, mdc_plugin
print(f'mmcv {mmcv.__version__} (ops), mmdet {mmdet.__version__}, '
      f'mmseg {mmseg.__version__}, mmpretrain.models and mdc_plugin import')
EOF
step "done in $(( $(date +%s) - start )) s; use $VENV/bin/python"
