#!/usr/bin/env bash
# The one command a lent GPU machine runs (device tool: carry .whl and .data, made by bench/gpu_bundle.sh):
#   bash bench/gpu_device.sh [BUDGET_MINUTES] [LIMIT_SECONDS] [SUITE: check | candidates]
# Installs the carried wheels, checks that Keras sees the GPU under JAX, runs bench.gpu_check with its step budget
# and copies its four result files to $OUT (a device machine returns only a few files, two folders down at most)
# even when the check is cut off at LIMIT_SECONDS.
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${1:-8}
limit=${2:-560}
suite=${3:-check}
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "gpu_device: installing the carried wheels failed"; exit 1; }
export PYTHONPATH=/tmp/site
nvidia-smi -L
python3 -c "import jax, keras, albumentations; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" \
  || { echo "gpu_device: the carried packages do not import"; exit 1; }
timeout "$limit" python3 -m bench.gpu_check --out /tmp/gpu --budget-minutes "$budget" --suite "$suite" --data-dir .data 2>&1 \
  | tee "$out/console.log"
cp /tmp/gpu/check.json /tmp/gpu/check.md /tmp/gpu/check.log /tmp/gpu/gpu-check.tar.gz "$out"/ 2>/dev/null
ls -la "$out"
