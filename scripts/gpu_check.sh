#!/usr/bin/env bash
# The whole GPU check of the CUDA backend in one command (sized for under 5 minutes on one H100/H200):
#   1. correctness on the real GPU: the simulator test's checks (tests/test_cuda_sim.py --gpu), i.e.
#      same seed as the CPU backend (normals and Brownian values bitwise, states to rounding),
#      moments, clear errors -> $OUT/gpu_checks.jsonl
#   2. benchmarks/bench_gpu.py: sdesim CUDA vs torchsde CUDA on the sphere model (dim 100, float32
#      and float64, 1e3..1e6 paths), the bare Philox kernel's normals/s -> $OUT/bench_gpu.{json,png}
#
# Where pip reaches PyPI (once):   bash scripts/gpu_check.sh --fetch-wheels   (torchsde, trampoline -> .whl/)
# On the GPU machine:              bash scripts/gpu_check.sh                   (carry .whl along)
# Needs there: python3 with numpy, scipy, numba + numba-cuda, torch (CUDA), tqdm, threadpoolctl.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    set -e
    python3 -m pip download -q --no-deps --only-binary=:all: -d .whl torchsde==0.2.6 trampoline==0.1.2
    exclude=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$exclude")"
    grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
    ls -l .whl
    exit 0
fi

PY=${PYTHON:-python3}
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/sdesim_site .whl/*.whl \
        && export PYTHONPATH=/tmp/sdesim_site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
unset NUMBA_ENABLE_CUDASIM

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
  $PY -c "import numba, numpy; print('numba', numba.__version__, 'numpy', numpy.__version__)"
  $PY -m pip list 2>/dev/null | grep -i -E "^(numba|numba-cuda|torch|torchsde|cuda-python|cuda-bindings) " ; } | tee "$OUT/env.txt"

status=0
echo "== 1. correctness on the GPU (same seed as the CPU backend) =="
timeout 150 $PY tests/test_cuda_sim.py --gpu | tee "$OUT/gpu_checks.jsonl" || status=1

echo "== 2. benchmark: sdesim CUDA vs torchsde CUDA, RNG ceiling =="
timeout 150 $PY benchmarks/bench_gpu.py --out "$OUT/bench_gpu.json" || status=1

echo "gpu_check: results in $OUT (status $status)"
exit $status
