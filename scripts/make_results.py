"""Regenerate the JSON-backed blocks of docs/results.md from benchmarks/results/*.json.

A block sits between `<!-- generated: NAME -->` and `<!-- /generated -->`; NAME picks the
renderer below, which reads only that benchmark's committed JSON. Prose between blocks is
hand-written. `--check` exits 1 when the page is not what the JSON gives (tests run it).

    python scripts/make_results.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results.md"
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def _wl(x: dict) -> str:
    return f"{x['wins']}/{x['losses']}, p = {x['p']:.2g}"


def knowledge_cifar() -> str:
    r = _load("knowledge_cifar")
    lines = [
        f"Machine: {r['machine']['cpu']}, {r['machine']['logical_cpus']} cores; run {r['when']}. "
        f"Eyes: {r['scorer']['note']}; {r['eyes']['png']['images_per_s']:.0f} images/s "
        f"(PNG), {r['eyes']['jpeg75']['images_per_s']:.0f} images/s (JPEG-75).",
        "",
        "| reasoner | method | cifar10-300 | vs T1 (won/lost, McNemar p) | vs waffle | 632 dev "
        "| vs T1 | vs waffle | JPEG-75, 932 | vs T1 | LLM s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rname, rr in r["reasoners"].items():
        for method, sets in rr["methods"].items():
            a, b, j = sets["300"], sets["632"], sets["jpeg75-932"]
            secs = rr["llm_seconds"].get(method)
            lines.append(
                f"| {rname} | {method} | {a['accuracy']:.1%} | {_wl(a['vs_t1'])} | "
                f"{_wl(a['vs_waffle'])} | {b['accuracy']:.1%} | {_wl(b['vs_t1'])} | "
                f"{_wl(b['vs_waffle'])} | {j['accuracy']:.1%} | {_wl(j['vs_t1'])} | "
                + ("—" if secs is None else f"{secs:.0f}")
                + " |"
            )
    lines.append("")
    for rname, rr in r["reasoners"].items():
        fu = "; ".join(
            f"{k}: threshold {v['threshold']} (chosen on the 632), {v['sets_written']} label "
            f"sets written in {v['seconds']:.0f} s"
            for k, v in rr.get("follow_up", {}).items()
        )
        lines.append(f"- {rname} (`{rr['reasoner'].get('name')}`): {fu}.")
    return "\n".join(lines) + "\n"


def llama_build() -> str:
    r = _load("llama_build")
    rows = ["| build | prompt tok/s | generation tok/s |", "|---|---|---|"]
    for name, b in r["builds"].items():
        rows.append(f"| {name} | {b['prompt_tok_s_median']:.0f} | {b['gen_tok_s_median']:.1f} |")
    ratio = r.get("ratio", {})
    rows.append("")
    rows.append(
        f"{r['machine']['cpu']}, {r['threads']} threads, {r['model']}, median of {r['rounds']} "
        f"interleaved runs; ratio ({ratio.get('note', '')}): prompt {ratio.get('prompt', 0):.2f}×, "
        f"generation {ratio.get('generation', 0):.2f}×."
    )
    return "\n".join(rows) + "\n"


def report_scale() -> str:
    r = _load("report_scale")
    loads = ", ".join(f"{x:.2f}" for x in r["load_s"])
    return (
        f"{r['runs']} runs × {r['items']:,} items: a {r['page_bytes'] / 1e6:.1f} MB page "
        f"({r['thumbnails'] - 1:,} thumbnails), built in {r['build_s']:.1f} s; first page of items "
        f"rendered {loads} s after navigation in headless Chromium, network off "
        f"({r['machine']['cpu']}; {r['note']}).\n"
    )


RENDERERS = {
    "knowledge_cifar": knowledge_cifar,
    "llama_build": llama_build,
    "report_scale": report_scale,
}


def render(text: str) -> str:
    def one(m: re.Match) -> str:
        name = m.group(2)
        if name not in RENDERERS:
            raise SystemExit(f"docs/results.md: no renderer for block {name!r}")
        return m.group(1) + RENDERERS[name]() + m.group(4)

    return BLOCK.sub(one, text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="Exit 1 if the page is out of date.")
    args = ap.parse_args()
    old = PAGE.read_text(encoding="utf-8")
    new = render(old)
    if args.check:
        if new != old:
            print(
                "docs/results.md is out of date: run python scripts/make_results.py",
                file=sys.stderr,
            )
            return 1
        return 0
    PAGE.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
