"""The dialogue experiment on cifar10-300 (the seed post's Trials 1–3, offline), with the
ConSE stand-in scorer unless CLIP is provisioned → benchmarks/results/dialogue_cifar.json,
(its table in docs/results.md, via scripts/make_results.py).

Rows go to runs/dialogue/<row>/ through `ovision eval …`, which appends and resumes: stop this
script at any time and start it again to continue.

    python -m benchmarks.accuracy.dialogue_cifar [--sample cifar10-300] [--only ROW ...] [--full]

On 2 cores a 5-round dialogue with the 1.5B model and its probes costs 8–14 s (all rows:
about 3 hours). The Trial rows cover all 300 images; the ask-all rows (--trust 1) the first
LIMITS[row] of them, in runs/dialogue/<row>-first<N>. `--full` adds whole-sample runs beside
those (a run directory only resumes the same items), and the JSON then prefers them. Paired
comparisons (McNemar vs T1) use the items both runs share.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.common import llama_server, write
from offline_vision.config import Settings
from offline_vision.eval.report import load_run, paired
from offline_vision.models.provision import registry, store

BIG, FAST = f"local:{registry.GGUF}", f"local:{registry.GGUF_FAST}"
ROWS = {
    "t1-scorer": ["clip"],
    "t2-seed": ["dialogue", "--policy", "seed", "--reasoner", BIG],
    "t2-adaptive": ["dialogue", "--policy", "adaptive", "--reasoner", BIG],
    "t3-seed": ["dialogue-open", "--policy", "seed", "--reasoner", BIG],
    "t3-adaptive": ["dialogue-open", "--policy", "adaptive", "--reasoner", BIG],
    "t2-adaptive-0.5b": ["dialogue", "--policy", "adaptive", "--reasoner", FAST],
    "t2-adaptive-0.5b-server": [
        "dialogue",
        "--policy",
        "adaptive",
        "--reasoner",
        "openai:qwen-0.5b",
    ],
}
# Local vs hosted where the LLM decides every answer: at the default trust the eyes answer most
# images alone, so these rows ask it on every image (--trust 1; no probes, to save time).
ASK_ALL = ["dialogue", "--policy", "adaptive", "--trust", "1", "--no-probe", "--reasoner"]
ROWS |= {
    "t2-askall": [*ASK_ALL, BIG],
    "t2-askall-0.5b": [*ASK_ALL, FAST],
    "t2-askall-0.5b-server": [*ASK_ALL, "openai:qwen-0.5b"],
}

# Rows that run on the first N images of the sample unless --full (compute, not choice).
LIMITS = {
    "t2-askall": 100,
    "t2-askall-0.5b": 100,
    "t2-askall-0.5b-server": 100,
}


def row_dir(runs_dir: Path, row: str, full: bool) -> Path:
    """A limited row has a run directory of its own, so that `--full` later adds the whole-sample
    run beside it (a run directory only resumes the same items)."""
    return runs_dir / (row if full or row not in LIMITS else f"{row}-first{LIMITS[row]}")


def per_round_tokens(run) -> dict:
    """Rounds 2+: tokens evaluated vs the round's new tokens (what the prompt gained since the
    previous round's prompt), from every dialogue's recorded calls."""
    ratios, evaluated, new = [], [], []
    for rec in run.records:
        rounds = [c for c in rec["dialogue"].get("calls", []) if c["kind"] == "round"]
        for prev, cur in itertools.pairwise(rounds):
            if cur["evaluated"] is None or cur["attempts"] > 1 or prev["attempts"] > 1:
                continue
            n = cur["prompt"] - prev["prompt"]
            evaluated.append(cur["evaluated"])
            new.append(n)
            ratios.append(cur["evaluated"] / n)
    if not ratios:
        return {}
    return {
        "rounds": len(ratios),
        "evaluated_mean": statistics.mean(evaluated),
        "new_mean": statistics.mean(new),
        "evaluated_over_new_median": statistics.median(ratios),
        "evaluated_over_new_p95": sorted(ratios)[int(0.95 * (len(ratios) - 1))],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", default="cifar10-300")
    ap.add_argument("--only", nargs="*", choices=list(ROWS))
    ap.add_argument("--runs", default="runs/dialogue")
    ap.add_argument("--full", action="store_true", help="every row on the whole sample")
    args = ap.parse_args()
    runs_dir = Path(args.runs)
    settings = Settings.from_env()
    exe = Path(sys.executable).with_name("ovision")
    for row in args.only or ROWS:
        cmd = [
            str(exe),
            "eval",
            *ROWS[row][:1],
            "--dataset",
            "cifar10",
            "--sample",
            args.sample,
            *ROWS[row][1:],
            *([] if args.full or row not in LIMITS else ["--limit", str(LIMITS[row])]),
            "--out",
            str(row_dir(runs_dir, row, args.full)),
        ]
        if "server" in row:
            gguf = store.load(settings.models_dir, registry.GGUF_FAST).file("model.gguf")
            with llama_server(gguf, settings.threads) as url:
                subprocess.run([*cmd, "--base-url", url], check=True)
        else:
            subprocess.run(cmd, check=True)

    def finished(row: str) -> Path | None:
        """The row's whole-sample run where there is one, else its limited run."""
        for d in (row_dir(runs_dir, row, True), row_dir(runs_dir, row, False)):
            if (d / "summary.json").exists():
                return d
        return None

    dirs = {r: d for r in ROWS if (d := finished(r))}
    runs = {r: load_run(d) for r, d in dirs.items()}
    base = runs.get("t1-scorer")
    table = {}
    for row, run in runs.items():
        s = run.summary
        probe = s.get("probe_s_mean", 0.0)
        entry = {
            "accuracy": s["accuracy"],
            "ci95": s["ci95"],
            "n": s["n"],
            "seconds_per_image": s["latency_s"]["mean"],
            "seconds_per_image_without_probes": s["latency_s"]["mean"] - probe,
            "tokens_per_image": {k: v["per_item"] for k, v in s["tokens"].items()},
            "scorer": s["config"]["scorer"],
            "reasoner": (s["config"].get("reasoner") or {}).get("name"),
        }
        for key in (
            "accuracy_by_round",
            "answered_by_eyes",
            "stopped_early",
            "mean_rounds",
            "fallback_rounds",
            "mapping_rules",
        ):
            if key in s:
                entry[key] = s[key]
        if row != "t1-scorer":
            entry["per_round_tokens"] = per_round_tokens(run)
            if base is not None:
                entry["vs_t1"] = paired(run, base)
        table[row] = entry
    if runs:
        subprocess.run(
            [
                str(exe),
                "report",
                *[str(dirs[r]) for r in runs],
                "--out",
                str(runs_dir / "report"),
                *(["--baseline", str(dirs["t1-scorer"])] if base else []),
            ],
            check=True,
        )
    print(
        json.dumps(
            {
                r: (round(t["accuracy"], 3), round(t["seconds_per_image"], 1))
                for r, t in table.items()
            }
        )
    )
    name = (
        "dialogue_cifar" if args.sample == "cifar10-300" else f"dialogue_{Path(args.sample).stem}"
    )
    print("wrote", write(name, {"sample": args.sample, "rows": table}))


if __name__ == "__main__":
    main()
