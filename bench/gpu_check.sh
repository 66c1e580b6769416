#!/usr/bin/env bash
# The checks that need a GPU, as one prepared script (CI has no GPU; run by hand on a CUDA machine):
#   1. the CUDA test file (every plugin's contract on cuda, CPU/CUDA likelihood agreement, runner cells);
#   2. a PixelCNN sweep: the grid bench/grids/pixelcnn_curve.toml once per line of a sweep file (its
#      --set overrides on top), several `genbench run` processes sharing the GPU.
#
#   3. perf: bench/perf/perf.py --device cuda (its "cuda" sizes: sampling vs diffusers, harness overhead, FID
#      pipeline on 10,000 images per set with the classifier CNN and Inception, FLOPs and the ratio to the GPU's
#      measured fp32/bf16 matmul peak, the DDPM paper preset on CIFAR-shaped data, torch.compile), its JSON +
#      Markdown written to $OUT/perf_cuda.{json,md} at the end, and the JSON so far to $OUT/perf_cuda.partial.json
#      after every section (a run stopped by its time limit keeps what it measured there).
#
# Packages the GPU machine lacks travel in .gpu/ (ignored by git; name it in the device tool's `carry`), made here:
#   mkdir -p .gpu && python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .gpu \
#       diffusers==0.42.1 torch-fidelity==0.4.0 importlib_metadata==8.7.0
#   .venv/bin/python -c "import torch; from genbench.metrics.inception import load_fidelity_state as l; \
#       torch.save({k: v.half() for k, v in l()[0].items()}, '.gpu/inception_fp16.pth')"
# (the Inception weights in half precision, 48 MB, to fit the 64 MiB a call carries; bench/metrics.py upcasts them
# to fp32 for all three FID implementations alike, so their timings and agreement are unaffected).  Set
# GENBENCH_SOURCE_COMMIT to the commit the tree was copied from: the results are stamped with it.
#
#   OUT=/tmp/gpu-check [SWEEP=bench/sweeps/pixelcnn_1.txt] bash bench/gpu_check.sh [tests|sweep|perf|all]
# Writes $OUT/cuda_tests.log and, per sweep line, $OUT/pixelcnn_sweep/<tag>/ (results.md of the run's report and
# its curves.csv: validation bits/dim and sample metrics along training).  Uses the machine's python3 (no venv
# made): the package is installed editable without dependencies, which must already be there.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
WHAT=${1:-all}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$OUT/install.log" 2>&1 \
  || { echo "editable install failed: see install.log"; tail -5 "$OUT/install.log"; }
if compgen -G ".gpu/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/*.whl \
    >>"$OUT/install.log" 2>&1 || { echo "wheel install failed"; tail -5 "$OUT/install.log"; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [[ -f .gpu/inception_fp16.pth && -z ${GENBENCH_INCEPTION_WEIGHTS:-} ]]; then
  export GENBENCH_INCEPTION_WEIGHTS=$PWD/.gpu/inception_fp16.pth
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

if [[ $WHAT == tests || $WHAT == all ]]; then
  timeout "${TESTS_TIMEOUT:-240}" python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py \
    tests/runner/test_precision_cuda.py 2>&1 | tee "$OUT/cuda_tests.log" | tail -25
fi

if [[ $WHAT == sweep || $WHAT == all ]]; then
  # one config a line, "tag|overrides" on top of the grid ("seed=N" picks the training seed); the grid switches
  # max_minutes off, so that GPU and CPU train the same number of steps
  mapfile -t configs < <(grep -v '^#' "${SWEEP:-bench/sweeps/pixelcnn_1.txt}")
  mkdir -p /tmp/sweep
  running=0
  for entry in "${configs[@]}"; do
    tag=${entry%%|*}
    args=()
    for kv in ${entry#*|}; do
      if [[ $kv == seed=* ]]; then args+=(--seeds "${kv#seed=}"); else args+=(--set "$kv"); fi
    done
    # each run has its own folder (and fits the feature classifier in it: seconds on a GPU)
    (timeout 300 python3 -m genbench.cli run --config bench/grids/pixelcnn_curve.toml --device cuda --no-progress \
       --out "/tmp/sweep/$tag" "${args[@]}" && python3 -m genbench.cli report "/tmp/sweep/$tag") \
      >"/tmp/sweep/$tag.log" 2>&1 &
    running=$((running + 1))
    if (( running % 7 == 0 )); then wait; fi
  done
  wait
  for entry in "${configs[@]}"; do
    tag=${entry%%|*}
    mkdir -p "$OUT/pixelcnn_sweep/$tag"
    cp "/tmp/sweep/$tag/results.md" /tmp/sweep/"$tag"/runs/*/curves.csv "$OUT/pixelcnn_sweep/$tag/" 2>/dev/null \
      || { echo "== $tag"; tail -3 "/tmp/sweep/$tag.log"; }
  done
  ls "$OUT/pixelcnn_sweep" | wc -l
fi

if [[ $WHAT == perf || $WHAT == all ]]; then
  timeout "${PERF_TIMEOUT:-600}" python3 bench/perf/perf.py --device cuda --out "$OUT/perf_cuda.json" 2>&1 \
    | tee "$OUT/perf.log" | grep -v '^|' | tail -40
fi
