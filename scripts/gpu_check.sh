#!/usr/bin/env bash
# The CUDA paths, checked on a machine with an NVIDIA GPU: onnxruntime-gpu (`classify --device
# cuda`, CLIP-sized random towers and the ConSE stand-in where pulled) and llama.cpp with every
# layer on the GPU (`--gpu-layers -1`), one line per check with its speed against the CPU.
#   bash scripts/gpu_check.sh                           # sets up .venv-gpu from PyPI first
#   GPU_CHECK_PYTHON=.venv/bin/python bash scripts/gpu_check.sh   # an environment set up already
# Without an NVIDIA GPU it says so in one line and runs nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi finds none): nothing was run"
  exit 0
fi
echo "gpu_check: $(nvidia-smi -L | head -1)"
py="${GPU_CHECK_PYTHON:-}"
if [ -z "$py" ]; then
  python3 -m venv .venv-gpu && py=.venv-gpu/bin/python
  "$py" -m pip install -q -e ".[export,llm,test,gpu]" || { echo "gpu_check: setup: pip install failed"; exit 1; }
  # onnxruntime and onnxruntime-gpu share one module: the GPU build's files must be the ones left.
  "$py" -m pip install -q --force-reinstall --no-deps "onnxruntime-gpu>=1.20" \
    || echo "gpu_check: setup: onnxruntime-gpu did not install"
  if command -v nvcc >/dev/null; then
    CMAKE_ARGS="-DGGML_CUDA=on" "$py" -m pip install -q --force-reinstall --no-deps --no-cache-dir \
      llama-cpp-python==0.3.36 || echo "gpu_check: setup: llama-cpp-python did not build with CUDA"
  else
    echo "gpu_check: setup: no nvcc (CUDA toolkit) here: llama.cpp stays a CPU build"
  fi
fi
exec "$py" scripts/gpu_check.py
