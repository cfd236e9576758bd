#!/usr/bin/env bash
# Set up .venv with offline_vision and the extras given (default: export,llm), building
# llama-cpp-python from source for this CPU.
#   bash scripts/install.sh                 # export,llm
#   bash scripts/install.sh export,llm,test,cluster
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-export,llm}"
python3 -m venv .venv
if [ "$(uname -m)" = x86_64 ]; then
  # ggml's native build (-march=native) compiles AMX kernels on Intel Xeons that report AMX,
  # and under some hypervisors the first AMX instruction dies with SIGILL. Without them the
  # build is otherwise native; on CPUs without AMX (AMD included) these flags change nothing.
  no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  export CFLAGS="${CFLAGS:-} $no_amx" CXXFLAGS="${CXXFLAGS:-} $no_amx"
fi
# --no-cache-dir: a llama-cpp-python wheel built natively on another CPU must not be reused.
.venv/bin/pip install --no-cache-dir -e ".[$extras]"
# The test extra's `browser` tests open the HTML report in Debian's headless Chromium.
if [[ ",$extras," == *",test,"* ]] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "note: the browser tests need Chromium: sudo apt-get install chromium" >&2
  fi
fi
