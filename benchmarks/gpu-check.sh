#!/usr/bin/env bash
# One prepared check for a lent GPU machine (cupy preinstalled, no registry access), run from the
# repository root without installing:  bash benchmarks/gpu-check.sh [OUT_DIR]
# 1) the numpy-vs-cupy agreement tests (pytest -m gpu), 2) the full-frame perf case on the GPU
# (2048 x 2048 px, s = 15, 51 planes, synthetic kernels of the right sizes), then the P and W cases
# (synthetic kernels), each with a short table.  Budget: under 8 minutes (240 + 300 + 150 s caps).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${1:-${OUT:-results/gpu-check}}"
mkdir -p "$OUT"
python - <<'PY'
import cupy
print("cupy", cupy.__version__, "GPU available:", cupy.cuda.is_available())
p = cupy.cuda.runtime.getDeviceProperties(0)
print("device:", p["name"].decode() if isinstance(p["name"], bytes) else p["name"],
      f"{p['totalGlobalMem'] / 2**30:.1f} GiB")
PY
echo "== pytest -m gpu =="
timeout 240 python -m pytest -q -m gpu tests/reconstruction -p no:cacheprovider 2>&1 | tail -15
rc_tests=${PIPESTATUS[0]}
echo "== perf: full frame on the GPU =="
timeout 300 python -m benchmarks perf --device gpu --case full-frame --synthetic-kernels --iterations 4 \
    --out "$OUT" 2>&1 | tail -25
rc_perf=${PIPESTATUS[0]}
echo "== perf: P and W cases on the GPU (synthetic kernels of the right sizes) =="
timeout 150 python -m benchmarks perf --device gpu --case P W --synthetic-kernels --iterations 4 \
    --out "$OUT/pw" 2>&1 | grep -E "^\|" | head -8
rc_pw=${PIPESTATUS[0]}
echo "tests rc=$rc_tests full-frame rc=$rc_perf P/W rc=$rc_pw (results in $OUT)"
exit $(( rc_tests != 0 || rc_perf != 0 || rc_pw != 0 ))
