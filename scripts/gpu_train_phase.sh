#!/usr/bin/env bash
# One GPU training run of the 64³ phase network, ready for the device machine (docs/gpu-training.md).
#
#   scripts/gpu_train_phase.sh [--out DIR] [--backend jax|torch] [--no-install] [--no-cupy-test]
#                              [--dry-run] [options of scripts/gpu_train_phase.py, see its --help]
#
# 1. Installs the carried wheels (wheels/gpu, filled by scripts/gpu_fetch_wheels.sh): a venv made with
#    --system-site-packages that also sees the packages of the python3 it is made from (on the GPU machine
#    python3 is itself a venv, whose packages --system-site-packages alone would not reach), then
#    `pip install --no-index --find-links wheels/gpu keras pytest`. Skipped with --no-install or without
#    wheels: the current python (PYTHON, default python3) is used as it is. This package runs from src/.
# 2. Starts the CuPy phasing check (pytest tests/core/phasing/test_cupy_backend.py) in the background,
#    output in OUT/cupy_test.log (it skips where CuPy sees no GPU).
# 3. Runs scripts/gpu_train_phase.py with KERAS_BACKEND (default jax): simulation, training, export;
#    its output is teed into OUT/train.log. OUT defaults to $OUT (the device tool's), else runs/gpu_phase.
# Exit status: that of the training script (3: the install failed, 4: no GPU seen).
set -uo pipefail
T0=$(date +%s.%N)
cd "$(dirname "$0")/.." || exit 2
out="${OUT:-runs/gpu_phase}"
backend="${KERAS_BACKEND:-jax}"
install=1
cupy=1
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --out=*) out="${1#*=}"; shift ;;
        --backend) backend="$2"; shift 2 ;;
        --backend=*) backend="${1#*=}"; shift ;;
        --no-install) install=0; shift ;;
        --no-cupy-test) cupy=0; shift ;;
        *) pass+=("$1"); shift ;;
    esac
done
mkdir -p "$out" || exit 2
out="$(cd "$out" && pwd)"
PY="${PYTHON:-python3}"
export KERAS_BACKEND="$backend" BCDI_GPU_T0="$T0" PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# JAX: compiled steps persist, so the preflight's compilation serves the training; leave GPU memory to CuPy
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-/tmp/bcdi-jax-cache}"
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.7}"

log() { echo "[gpu_train_phase.sh $(date +%T)] $*" | tee -a "$out/train.log"; }

install_wheels() {
    local wh=wheels/gpu venv="${BCDI_GPU_VENV:-/tmp/bcdi-gpu-venv}" site
    if ! ls "$wh"/*.whl >/dev/null 2>&1; then
        log "no wheels in $wh: using $PY as it is"
        return 0
    fi
    if "$PY" -m venv --without-pip --system-site-packages "$venv" >>"$out/train.log" 2>&1; then
        site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') &&
            "$PY" -c 'import site; print("\n".join(site.getsitepackages()))' >"$site/_bcdi_parent_env.pth" &&
            "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --find-links "$wh" \
                keras pytest >>"$out/train.log" 2>&1 &&
            PY="$venv/bin/python" && log "wheels installed into $venv" && return 0
    fi
    log "the venv install failed: installing keras, namex, optree with --target instead"
    "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --target /tmp/bcdi-gpu-site \
        "$wh"/keras-*.whl "$wh"/namex-*.whl "$wh"/optree-*.whl >>"$out/train.log" 2>&1 || return 1
    export PYTHONPATH="/tmp/bcdi-gpu-site:$PYTHONPATH"
}

log "start: backend $backend, out $out, python $PY"
if [ "$install" = 1 ]; then
    install_wheels || { log "installing the wheels failed (see above)"; exit 3; }
fi
"$PY" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("keras") and u.find_spec("napari_bcdi_dl") else 1)' ||
    { log "keras or napari_bcdi_dl is not importable with $PY (wheels missing? see docs/gpu-training.md)"; exit 3; }

cupy_pid=
if [ "$cupy" = 1 ]; then
    (
        timeout 300 "$PY" -m pytest -q -rs -p no:cacheprovider tests/core/phasing/test_cupy_backend.py \
            >"$out/cupy_test.log" 2>&1
        echo "pytest exit status $?" >>"$out/cupy_test.log"
    ) &
    cupy_pid=$!
fi

"$PY" scripts/gpu_train_phase.py --out "$out" "${pass[@]}" 2>&1 | tee -a "$out/train.log"
status=${PIPESTATUS[0]}
if [ -n "$cupy_pid" ]; then
    wait "$cupy_pid"
    log "CuPy check: $(tail -n 2 "$out/cupy_test.log" | tr '\n' ' ')"
fi
log "exit status $status after $(awk -v t0="$T0" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.0f", t1 - t0}') s"
ls -l "$out" | tee -a "$out/train.log"
exit "$status"
