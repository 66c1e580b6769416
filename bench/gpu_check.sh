#!/usr/bin/env bash
# The checks that need a GPU, as one prepared script (CI has no GPU; run by hand on a CUDA machine):
#   1. the CUDA test file (every plugin's contract on cuda, CPU/CUDA likelihood agreement, runner cells);
#   2. a PixelCNN sweep (issue 6): pixelcnn_curve.py for several configs, several processes sharing the GPU.
#
#   OUT=/tmp/gpu-check [SWEEP=bench/sweeps/pixelcnn_1.txt] bash bench/gpu_check.sh [tests|sweep|all]
# Writes $OUT/cuda_tests.log and $OUT/pixelcnn_sweep.jsonl.  Uses the machine's python3 (no venv made):
# the package is installed editable without dependencies, which must already be there.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
WHAT=${1:-all}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$OUT/install.log" 2>&1 \
  || { echo "editable install failed: see install.log"; tail -5 "$OUT/install.log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

if [[ $WHAT == tests || $WHAT == all ]]; then
  timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/cuda_tests.log" | tail -25
fi

if [[ $WHAT == sweep || $WHAT == all ]]; then
  # one config a line, "tag|overrides" on top of the standard preset ("seed=N" picks the training seed);
  # max_minutes is switched off so that GPU and CPU train the same number of steps
  mapfile -t configs < <(grep -v '^#' "${SWEEP:-bench/sweeps/pixelcnn_1.txt}")
  mkdir -p /tmp/sweep
  running=0
  for entry in "${configs[@]}"; do
    tag=${entry%%|*}
    sets=()
    for kv in max_minutes=none ${entry#*|}; do
      if [[ $kv == seed=* ]]; then sets+=(--seed "${kv#seed=}"); else sets+=(--set "$kv"); fi
    done
    timeout 300 python3 bench/pixelcnn_curve.py --device cuda --threads 1 --every 250 --fid-seeds 2 --tag "$tag" \
      --cache /tmp/sweep-cache "${sets[@]}" >"/tmp/sweep/$tag.jsonl" 2>"/tmp/sweep/$tag.err" &
    running=$((running + 1))
    if (( running == 1 )); then sleep 25; fi  # the first one trains and caches the feature classifier
    if (( running % 7 == 0 )); then wait; fi
  done
  wait
  cat /tmp/sweep/*.jsonl >"$OUT/pixelcnn_sweep.jsonl"
  for f in /tmp/sweep/*.err; do [[ -s $f ]] && { echo "== $f"; tail -3 "$f"; }; done
  wc -l "$OUT/pixelcnn_sweep.jsonl"
fi
