#!/usr/bin/env bash
# The GPU check in one command, for an offline machine with a GPU, Python 3.12 and PyTorch:
#   bash benchmarks/gpu_check.sh [--dry-run] [--out DIR]
# 1. installs what the machine lacks from gpu_wheels/ (made beforehand by scripts/gpu_wheels.sh) into
#    .gpuenv, a venv that sees the machine's own torch (--system-site-packages); no network;
# 2. runs the GPU tests (pytest -m gpu, in the files that hold them: the other test modules import GDAL,
#    which the check leaves out) on the pre-ingested Indian Pines in gpu_data/ (also made by the wheel script);
# 3. runs the GPU benchmark (python -m benchmarks gpu), writing gpu_check.json, and on a multi-GPU machine
#    the DDP measurement (python -m benchmarks ddp --device cuda), writing ddp.md;
# and logs everything to DIR/gpu_check.log (DIR: --out, else $OUT, else ./gpu_check_out).
# --dry-run: the same steps on the CPU with tiny sizes, in the current environment (CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0
DIR="${OUT:-gpu_check_out}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) DIR="$2"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $1 (use --dry-run, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$DIR"
LOG="$DIR/gpu_check.log"
: > "$LOG"
say() { echo "[gpu_check] $*" | tee -a "$LOG"; }
t0=$(date +%s)
if [ "$DRY" = 1 ]; then
  PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}"
  ARGS=(--dry-run)
  export CUDA_VISIBLE_DEVICES=""   # the CPU, even on a GPU machine
else
  [ -d gpu_wheels ] || { echo "gpu_check: no gpu_wheels/ here; run bash scripts/gpu_wheels.sh on a machine with network first" >&2; exit 2; }
  if [ ! -x .gpuenv/bin/python ]; then
    say "installing from gpu_wheels/ into .gpuenv (offline)"
    python3 -m venv --system-site-packages .gpuenv
    .gpuenv/bin/python -m pip install -q --no-index --find-links gpu_wheels -r gpu_wheels/requirements.txt 2>&1 | tee -a "$LOG"
  fi
  PY=.gpuenv/bin/python
  ARGS=()
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # geohsi from this checkout, no build step
fi
if [ -z "${GEOHSI_DATA_DIR:-}" ]; then
  if [ -d gpu_data ]; then GEOHSI_DATA_DIR="$PWD/gpu_data"; else GEOHSI_DATA_DIR="$(cd ../shared/data 2>/dev/null && pwd || echo data)"; fi
fi
export GEOHSI_DATA_DIR MPLBACKEND=Agg
"$PY" -c "import numpy" 2>/dev/null || { echo "gpu_check: this Python has no numpy; rerun scripts/gpu_wheels.sh --with-numpy and copy gpu_wheels/ again" >&2; exit 2; }
"$PY" -c "import torch; print('[gpu_check] torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$LOG"
mapfile -t GPU_TESTS < <(grep -rl --include='test_*.py' 'pytest.mark.gpu' tests)
say "GPU tests: pytest -m gpu ${GPU_TESTS[*]}"
set +e
"$PY" -m pytest -m gpu -q -p no:cacheprovider "${GPU_TESTS[@]}" 2>&1 | tee -a "$LOG"
rc_tests=${PIPESTATUS[0]}
say "GPU benchmark: python -m benchmarks gpu ${ARGS[*]:-}"
"$PY" -m benchmarks gpu --out "$DIR" "${ARGS[@]}" 2>&1 | tee -a "$LOG"
rc_bench=${PIPESTATUS[0]}
ngpu=$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
if [ "${ngpu:-0}" -gt 1 ]; then
  say "DDP: python -m benchmarks ddp --device cuda --ranks 1 --ranks $ngpu"
  "$PY" -m benchmarks ddp --device cuda --ranks 1 --ranks "$ngpu" --out "$DIR/ddp.md" 2>&1 | tee -a "$LOG"
  [ "${PIPESTATUS[0]}" = 0 ] || rc_bench=1
fi
set -e
say "tests exit $rc_tests, benchmark exit $rc_bench, $(( $(date +%s) - t0 )) s; results in $DIR"
[ "$rc_tests" = 0 ] && [ "$rc_bench" = 0 ]
