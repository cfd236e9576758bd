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
# Debian packages: the test extra's `browser` tests open the HTML report in headless Chromium;
# the llm extra's bridge reads FreeDict's X-to-English dictionaries (labels.freedict) before it
# asks the LLM to name a label (German Hirsch: deer, where the 1.5B said dog), and the
# English-to-X ones backwards for the words those lack (Turkish geyik: deer; Indonesian, which
# has only eng-ind).
debs=()
if [[ ",$extras," == *",test,"* ]] && ! command -v chromium >/dev/null; then
  debs+=(chromium)
fi
if [[ ",$extras," == *",llm,"* ]]; then
  for lang in deu spa fra ita por nld swe dan fin pol ces tur lat; do
    [ -f "/usr/share/dictd/freedict-$lang-eng.index" ] || debs+=("dict-freedict-$lang-eng")
  done
  for lang in deu spa fra ita por nld swe dan fin pol ces tur lat ind; do
    [ -f "/usr/share/dictd/freedict-eng-$lang.index" ] || debs+=("dict-freedict-eng-$lang")
  done
fi
if [ "${#debs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "${debs[@]}" >/dev/null
  else
    echo "note: Chromium (browser tests) and FreeDict (the bridge) come from Debian:" \
      "sudo apt-get install ${debs[*]}" >&2
  fi
fi
