"""Two llama-cpp-python builds on the same GGUF: prompt and generation speed, each build in
processes of its own, interleaved → benchmarks/results/llama_build.json.

Used to check that scripts/install.sh (native, AMX kernels left out) is no slower than a plain
native build on a CPU without AMX:

    python -m benchmarks.speed.llama_build --build plain=/path/a/.venv/bin/python \
        --build no-amx=.venv/bin/python [--model qwen2.5-coder-0.5b-instruct-q4_k_m]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from benchmarks.common import write
from offline_vision.config import Settings
from offline_vision.models.provision import registry, store

CHILD = """
import json, sys, time
import llama_cpp
from llama_cpp import Llama
m = Llama(model_path=sys.argv[1], n_ctx=1024, n_threads=int(sys.argv[2]), verbose=False, seed=0)
prompt = m.tokenize(("The quick brown fox jumps over the lazy dog. " * 24).encode())[:256]
out = {"system_info": llama_cpp.llama_print_system_info().decode()}
m.reset(); t = time.perf_counter(); m.eval(prompt); out["prompt_tok_s"] = len(prompt) / (time.perf_counter() - t)
t = time.perf_counter(); n = 0
for tok in m.generate(prompt[:8], temp=0.0, reset=True):
    n += 1
    if n == 64:
        break
out["gen_tok_s"] = n / (time.perf_counter() - t)
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="append", required=True, help="NAME=PYTHON (twice or more)")
    ap.add_argument("--model", default=registry.GGUF_FAST)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    gguf = store.load(Settings.from_env().models_dir, args.model).verified_path("model.gguf")
    runs: dict[str, list[dict]] = {name: [] for name in builds}
    for _ in range(args.rounds):
        for name, python in builds.items():
            out = subprocess.run(
                [python, "-c", CHILD, str(gguf), str(args.threads)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {
        "model": args.model,
        "threads": args.threads,
        "rounds": args.rounds,
        "builds": {
            name: {
                "python": builds[name],
                "system_info": rs[0]["system_info"],
                "prompt_tok_s_median": statistics.median(r["prompt_tok_s"] for r in rs),
                "gen_tok_s_median": statistics.median(r["gen_tok_s"] for r in rs),
                "runs": rs,
            }
            for name, rs in runs.items()
        },
    }
    names = list(builds)
    if len(names) == 2:
        a, b = (result["builds"][n] for n in names)
        result["ratio"] = {
            "prompt": b["prompt_tok_s_median"] / a["prompt_tok_s_median"],
            "generation": b["gen_tok_s_median"] / a["gen_tok_s_median"],
            "note": f"{names[1]} / {names[0]}",
        }
    write("llama_build", result)
    for name, b in result["builds"].items():
        print(
            f"{name}: prompt {b['prompt_tok_s_median']:.0f} tok/s, "
            f"generation {b['gen_tok_s_median']:.1f} tok/s"
        )
    if "ratio" in result:
        print(f"ratio {result['ratio']}")


if __name__ == "__main__":
    main()
