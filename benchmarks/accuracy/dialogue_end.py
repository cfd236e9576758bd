"""How the adaptive dialogue ends, with the LLM asked on every image (--trust 1): the LLM names
the label, the eyes decide with differential descriptions (--end follow-up), or the eyes × the
LLM's own probabilities (--end fusion); T1 on the same images → results/dialogue_end.json.

Runs on the first N of the 632 dev images (benchmarks/accuracy/cifar10-non300.txt) by default;
`--sample cifar10-300` measures the evaluation sample (nothing is chosen there) and writes
results/dialogue_end_300.json. ConSE stand-in eyes. `--work DIR` keeps the runs there, so a
stopped benchmark resumes where it was.

    python -m benchmarks.accuracy.dialogue_end [--n 60] [--sample cifar10-300] [--work DIR]
        [--reasoner local:qwen2.5-coder-0.5b-instruct-q4_k_m]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import write
from offline_vision.eval.report import load_run, paired

SAMPLE = Path(__file__).parent / "cifar10-non300.txt"
ENDS = ("llm", "follow-up", "fusion")


def ovision(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "offline_vision", "-q", *args], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--reasoner", default="local:qwen2.5-coder-0.5b-instruct-q4_k_m")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sample", default=str(SAMPLE), help="sample file or name (default: dev)")
    ap.add_argument("--work", type=Path, help="keep the runs here (resumable)")
    ap.add_argument(
        "--ray",
        type=int,
        metavar="WORKERS",
        help="run the dialogues on a local Ray with this many 1-thread workers (same records)",
    )
    args = ap.parse_args()
    common = ["--dataset", "cifar10", "--sample", args.sample, "--limit", str(args.n)]
    dev = args.sample == str(SAMPLE)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.work or Path(scratch)
        t1 = Path(tmp) / "t1"
        ovision("eval", "clip", "--scorer", "conse", *common, "--out", str(t1))
        base = load_run(t1)
        rows = {"T1": {"accuracy": base.summary["accuracy"], "n": base.summary["n"]}}
        for end in ENDS:
            out = Path(tmp) / end
            ovision(
                "eval",
                "dialogue",
                *common,
                "--policy",
                "adaptive",
                "--trust",
                "1",
                "--rounds",
                str(args.rounds),
                "--no-probe",
                "--scorer",
                "conse",
                "--reasoner",
                args.reasoner,
                "--end",
                end,
                *(["--ray", "--workers", str(args.ray)] if args.ray else []),
                "--out",
                str(out),
            )
            run = load_run(out)
            rules = {}
            for r in run.records:
                rule = r["dialogue"]["answer"]["rule"]
                rules[rule] = rules.get(rule, 0) + 1
            rows[end] = {
                "accuracy": run.summary["accuracy"],
                "ci95": run.summary["ci95"],
                "n": run.summary["n"],
                "seconds_per_image": run.summary["latency_s"]["mean"],
                "answer_rules": rules,
                "vs_t1": paired(run, base),
            }
            print(end, round(rows[end]["accuracy"], 3), rules, flush=True)
    write(
        "dialogue_end" if dev else f"dialogue_end_{Path(args.sample).stem.split('-')[-1]}",
        {
            "sample": f"first {args.n} of {Path(args.sample).name}",
            "reasoner": args.reasoner,
            "rounds": args.rounds,
            "scorer": "ConSE stand-in, not CLIP",
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
