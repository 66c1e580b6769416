#!/usr/bin/env bash
# The checks that need a GPU, as one prepared script (CI has no GPU; run by hand on a CUDA machine):
#   1. the CUDA test file (every plugin's contract on cuda, CPU/CUDA likelihood agreement, runner cells);
#   2. a PixelCNN sweep (issue 6): pixelcnn_curve.py for several configs, several processes sharing the GPU.
#
#   OUT=/tmp/gpu-check bash bench/gpu_check.sh [tests|sweep|all]
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
  # tag|overrides (on top of the standard preset; max_minutes off so GPU and CPU train the same steps)
  configs=(
    "base|max_steps=2000"
    "steps4000|max_steps=4000"
    "decay999-3000|max_steps=3000 lr_decay=0.999"
    "decay9985-4000|max_steps=4000 lr_decay=0.9985"
    "drop0.3-decay999|max_steps=3000 dropout=0.3 lr_decay=0.999"
    "drop0.65-4000|max_steps=4000 dropout=0.65"
    "ch96|max_steps=3000 channels=96"
    "layers12|max_steps=3000 layers=12"
    "ch32-layers12-drop0.3|max_steps=3000 channels=32 layers=12 dropout=0.3"
    "batch128-lr2e-3|max_steps=3000 batch_size=128 lr=0.002 lr_decay=0.999"
    "head512|max_steps=3000 head_channels=512"
    "ema0.99|max_steps=3000 ema_decay=0.99"
    "kernel5|max_steps=3000 kernel_size=5"
    "drop0.5-wd0.5|max_steps=3000 weight_decay=0.5"
  )
  mkdir -p /tmp/sweep
  running=0
  for entry in "${configs[@]}"; do
    tag=${entry%%|*}
    sets=()
    for kv in max_minutes=none ${entry#*|}; do sets+=(--set "$kv"); done
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
