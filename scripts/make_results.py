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


def _machine(r: dict) -> str:
    """The opening of a table's caption: where and when the benchmark ran."""
    return (
        f"Machine: {r['machine']['cpu']}, {r['machine']['logical_cpus']} cores; run {r['when']}. "
    )


def _wl(x: dict) -> str:
    return f"{x['wins']}/{x['losses']}, p = {x['p']:.2g}"


def knowledge_cifar() -> str:
    r = _load("knowledge_cifar")
    lines = [
        _machine(r)
        + f"Eyes: {r['scorer']['note']}; {r['eyes']['png']['images_per_s']:.0f} images/s "
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


def eval_scale() -> str:
    """Hosted concurrency, local Ray layouts and two Ray nodes (eval_scale.json)."""
    r = _load("eval_scale")
    h = r["hosted"]
    lines = [
        f"Hosted (a fake server on 127.0.0.1 answering after {h['delay_s'] * 1000:.0f} ms, "
        f"{h['items']} items; {h['measured']['cpu']}):",
        "",
        "| `--concurrency` | items/s | × against 1 |",
        "|---|---|---|",
    ]
    for c, row in h["concurrency"].items():
        lines.append(f"| {c} | {row['items_per_s']:.2f} | {h['speedup'][c]:.1f}× |")
    loc = r["local"]
    lines += [
        "",
        f"Local ({loc['measured']['cpu']}, {loc['measured']['logical_cpus']} cores):",
        "",
        "| run | layout | items/s | after Ray's start | Ray start s | × sequential | items per worker |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {
        "t1_conse_932": "T1, ConSE, 932 images",
        "t2_adaptive_trust1_0.5b_60": "T2 `adaptive --trust 1`, 0.5B, 60 images",
    }
    for key, part in loc.items():
        if key == "measured":
            continue
        for layout, row in part["runs"].items():
            per = ", ".join(f"{w} {k}" for w, k in (row["per_worker"] or {}).items()) or "—"
            lines.append(
                f"| {names[key]} | `{part['layouts'][layout]}` | {row['items_per_s']:.2f} | "
                f"{row['items_per_s_after_startup']:.2f} | {row['ray_startup_s']:.1f} | "
                f"{part['speedup_vs_sequential'][layout]:.2f}× | {per} |"
            )
    n = r["nodes"]
    run = n["run"]
    per_node = ", ".join(f"{k.split('/')[-1][:8]} {v}" for k, v in run["per_node"].items())
    lines += [
        "",
        f"Two Ray nodes on this machine ({n['measured']['cpu']}; `{n['cluster']}`), "
        f"the T2 run with `--ray-address … --workers 2`: {run['items_per_s']:.2f} items/s "
        f"({run['items_per_s_after_startup']:.2f} after joining, {run['ray_startup_s']:.1f} s), "
        f"items on {n['nodes_with_items']} nodes ({per_node}), accuracy "
        f"{run['accuracy']:.1%}.",
    ]
    return "\n".join(lines) + "\n"


DIALOGUE_TITLES = {
    "t1-scorer": "T1: scorer only, 10 class names",
    "t2-seed": "T2 `seed` (known labels, 5 rounds)",
    "t2-adaptive": "T2 `adaptive` (default trust 0.15)",
    "t3-seed": "T3 `seed` (open answer, 5 rounds)",
    "t3-adaptive": "T3 `adaptive`",
    "t2-adaptive-0.5b": "T2 `adaptive`, 0.5B",
    "t2-adaptive-0.5b-server": "T2 `adaptive`, 0.5B via llama-cpp server",
    "t2-askall": "T2 `adaptive --trust 1` (LLM asked on every image)",
    "t2-askall-0.5b": "T2 `adaptive --trust 1`, 0.5B",
    "t2-askall-0.5b-server": "T2 `adaptive --trust 1`, 0.5B via llama-cpp server",
}


def dialogue_cifar() -> str:
    """The dialogue rows of benchmarks/results/dialogue_cifar.json, one line per row."""
    table = _load("dialogue_cifar")["rows"]

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    lines = [
        "| row | images | accuracy (95 % CI) | T1 on the same images | vs T1: dialogue✓T1✗ / "
        "T1✓dialogue✗ (McNemar p) | LLM asked on | s / image (without probes) | LLM tokens / "
        "image (prompt / evaluated) | by round r = 1..5 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row, title in DIALOGUE_TITLES.items():
        if row not in table:
            continue
        r = table[row]
        acc = f"{pct(r['accuracy'])} ({pct(r['ci95'][0])}–{pct(r['ci95'][1])})"
        if row == "t1-scorer":
            lines.append(
                f"| {title} | {r['n']} | {acc} | — | — | — | {r['seconds_per_image']:.3f} | — | — |"
            )
            continue
        v = r["vs_t1"]
        asked = r["n"] - r.get("answered_by_eyes", 0)
        asked_s = f"{asked} of {r['n']}" if "answered_by_eyes" in r else str(asked)
        sec = f"{r['seconds_per_image']:.1f}"
        if r["seconds_per_image"] - r["seconds_per_image_without_probes"] > 0.05:
            sec += f" ({r['seconds_per_image_without_probes']:.1f})"
        tok = r["tokens_per_image"]
        ev = f"{tok['evaluated']:.0f}" if tok.get("evaluated") else "not reported"
        tok_s = f"{tok['prompt']:.0f} / {ev}" if asked else "—"
        by_round = r.get("accuracy_by_round") if "askall" not in row else None
        br = ", ".join(f"{100 * x:.0f}%" for x in by_round) if by_round else "—"
        lines.append(
            f"| {title} | {r['n']} | {acc} | {pct(v['b_accuracy'])} | {v['a_right_b_wrong']} / "
            f"{v['b_right_a_wrong']} (p = {v['p_value']:.2g}) | {asked_s} | {sec} | {tok_s} | {br} |"
        )
    return "\n".join(lines) + "\n"


PIXEL_ROWS = {  # JSON row → (title, encoding as shown)
    "knn": ("`knn` (k = 5, no LLM)", "—"),
    "majority": ("`majority`", "—"),
    "seed": ("`seed` (the post's prompt)", "post's decimals"),
    "zero-shot": ("`zero-shot`", "ascii shades"),
    "zero-shot-digits": ("`zero-shot`", "digits 0–9"),
    "few-shot": ("`few-shot` random K = 5", "ascii"),
    "few-shot-digits": ("`few-shot` random K = 5", "digits"),
    "retrieved": ("`retrieved` K = 5 (nearest train digits)", "ascii"),
    "feedback": ("`feedback` (sequential, told the truth after each)", "ascii"),
    "retrieved-0.5b": ("`retrieved` K = 5, 0.5B", "ascii"),
    "retrieved-0.5b-server": ("`retrieved` K = 5, 0.5B via llama-cpp server", "ascii"),
}


def _sig2(x: float) -> str:
    """Two significant digits, halves rounded up (0.125 → 0.13), as the tables are written."""
    from decimal import ROUND_HALF_UP, Decimal

    d = Decimal(repr(x))
    exp = d.adjusted() - 1
    return str(d.quantize(Decimal(1).scaleb(exp), rounding=ROUND_HALF_UP).normalize())


def pixels_mnist() -> str:
    """The pixel-prompting rows of benchmarks/results/pixels_mnist.json; the best two in bold."""
    rows = _load("pixels_mnist")["rows"]
    best = sorted(rows, key=lambda k: -rows[k]["accuracy"])[:2]
    lines = [
        "| row | encoding | accuracy (95 % CI) | s / digit | prompt tokens / digit "
        "| vs knn (LLM✓knn✗ / knn✓LLM✗, p) |",
        "|---|---|---|---|---|---|",
    ]
    for key, (title, encoding) in PIXEL_ROWS.items():
        r = rows[key]
        acc = f"{100 * r['accuracy']:.1f} %"
        acc = f"**{acc}**" if key in best else acc
        ci = f"({100 * r['ci95'][0]:.1f}–{100 * r['ci95'][1]:.1f})"
        sec = r["seconds_per_digit"]
        sec_s = f"{sec:.1f}" if sec >= 10 else f"{sec:.2f}"
        tok = r["tokens_per_digit"].get("prompt")
        tok_s = "—" if tok is None else f"{tok:.0f}"
        v = r.get("vs_knn")
        if v is None:
            vs = "—"
        else:
            vs = f"{v['a_right_b_wrong']} / {v['b_right_a_wrong']}"
            if r.get("reasoner"):
                p = v["p_value"]
                vs += ", p < 1e-50" if p < 1e-50 else f", p = {_sig2(p)}"
        lines.append(f"| {title} | {encoding} | {acc} {ci} | {sec_s} | {tok_s} | {vs} |")
    return "\n".join(lines) + "\n"


def reasoner_speed() -> str:
    """Load, prompt and generation speed of each GGUF (benchmarks/results/reasoner_speed.json)."""
    r = _load("reasoner_speed")
    first = next(iter(r["models"].values()))
    lines = [
        f"| GGUF (Q4_K_M, {r['threads']} threads) | load | prompt | generation | time to first "
        f"token ({first['prompt_tokens']}-token prompt) | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in r["models"].items():
        title = name.removesuffix("-q4_k_m") + (" (default)" if "1.5b" in name else "")
        load = f"{m['load_s']:.1f}" if m["load_s"] >= 1 else f"{m['load_s']:.2f}"
        lines.append(
            f"| {title} | {load} s | {m['prompt_tok_per_s']:.0f} tok/s | "
            f"{m['generation_tok_per_s']:.0f} tok/s | {m['time_to_first_token_s']:.1f} s | "
            f"{m['peak_rss_mb'] / 1000:.2f} GB |"
        )
    return "\n".join(lines) + "\n"


def clip_speed() -> str:
    """The image tower's ms / image (and ratio to PyTorch) and the text tower's 1000 prompts."""
    r = _load("clip_speed")
    lines = ["| image tower | PyTorch eager | ONNX fp32 | ONNX int8 |", "|---|---|---|---|"]
    for batch in ("1", "32"):
        b = r["image"][f"batch_{batch}"]
        ms, ratio = b["ms_per_image"], b["ratio_to_pytorch"]
        cells = [f"{ms['pytorch_eager']:.1f}"] + [
            f"{ms[e]:.1f} (**{ratio[e]:.2f} ×**)" for e in ("onnx_fp32", "onnx_int8")
        ]
        lines.append(f"| batch {batch}, ms / image | " + " | ".join(cells) + " |")
    t = r["text_1000_imagenet_prompts"]
    secs = [t[e]["seconds_for_1000_prompts"] for e in ("pytorch_eager", "onnx_fp32", "onnx_int8")]
    lines.append(
        "| 1000 ImageNet prompts, text tower | " + " | ".join(f"{x:.2f} s" for x in secs) + " |"
    )
    return "\n".join(lines) + "\n"


def eyes_speed() -> str:
    """CLIP and SigLIP towers, tiny and full-size: ms per image / prompt, ratio to PyTorch,
    and the peak memory of a process running one image batch (eyes_speed.json)."""
    r = _load("eyes_speed")
    lines = [
        "| towers | ms / image: PyTorch · fp32 · int8 | ms / prompt: PyTorch · fp32 · int8 "
        "| image peak RSS MB: PyTorch · fp32 · int8 |",
        "|---|---|---|---|",
    ]
    engines = ("torch", "onnx fp32", "onnx int8")
    for name, x in r["results"].items():
        cells = []
        for key in ("ms_per_image", "ms_per_prompt"):
            ms = x[key]
            cells.append(
                f"{ms['torch']:.2f} · "
                + " · ".join(f"{ms[e]:.2f} ({ms[e] / ms['torch']:.2f} ×)" for e in engines[1:])
            )
        cells.append(" · ".join(f"{x['image_peak_rss_mb'][e]:.0f}" for e in engines))
        size = f"{name} ({x['image_px']} px, {x['text_tokens']} tokens)"
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    lines.append(
        f"\n{r['machine']['cpu']}, {r['threads']} threads, image batch {r['image_batch']}, "
        f"text batch {r['text_batch']}; median of 3 rounds, each engine in a process of its own."
    )
    return "\n".join(lines) + "\n"


TRUST_ROWS = {0.2: "0.2", 0.3: "0.3", 0.4: "0.4", 0.5: "0.5 (the earlier default)", 0.6: "0.6"}


def dialogue_trust() -> str:
    """The 632 dev images: what asking the LLM at each --trust cost (dialogue_trust.json)."""
    r = _load("dialogue_trust")
    rows = {x["trust"]: x for x in r["by_trust"]}
    best = r["best"]
    lines = [
        "| trust | LLM asked on | accuracy | LLM right, eyes wrong | eyes right, LLM wrong "
        "| McNemar p |",
        "|---|---|---|---|---|---|",
        f"| ≤ {best['trust']:g} (default) | 0 of {r['n']} | {100 * best['accuracy']:.1f} % "
        "(= eyes alone) | – | – | – |",
    ]
    for trust, title in TRUST_ROWS.items():
        x = rows[trust]
        lines.append(
            f"| {title} | {x['asked']} | {100 * x['accuracy']:.1f} % | {x['wins_vs_eyes']} | "
            f"{x['losses_vs_eyes']} | {_sig2(x['mcnemar_p'])} |"
        )
    return "\n".join(lines) + "\n"


def dialogue_by_round_svg() -> str:
    """Accuracy had the dialogue answered after round r, one line per policy (deterministic SVG)."""
    rows = _load("dialogue_cifar")["rows"]
    t1 = rows["t1-scorer"]["accuracy"]
    series = {k: rows[k]["accuracy_by_round"] for k in ("t2-seed", "t3-seed", "t3-adaptive")}
    w, h, left, top, bottom = 420, 240, 40, 20, 30
    x = lambda i: left + (w - left - 120) * i / 4  # noqa: E731
    y = lambda v: top + (h - top - bottom) * (1 - v / 0.7)  # noqa: E731
    colours = {"t2-seed": "#d62728", "t3-seed": "#9467bd", "t3-adaptive": "#1f77b4"}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
        'font-size="11">',
        f'<line x1="{x(0)}" y1="{y(t1):.1f}" x2="{x(4)}" y2="{y(t1):.1f}" stroke="#555" '
        f'stroke-dasharray="4 3"/><text x="{x(4) + 6}" y="{y(t1) + 4:.1f}">T1 (eyes) {t1:.0%}</text>',
    ]
    for v in (0.0, 0.2, 0.4, 0.6):
        out.append(f'<text x="4" y="{y(v) + 4:.1f}">{v:.0%}</text>')
    for i in range(5):
        out.append(f'<text x="{x(i) - 3:.1f}" y="{h - 10}">{i + 1}</text>')
    for name, vals in series.items():
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vals))
        out.append(
            f'<polyline points="{pts}" fill="none" stroke="{colours[name]}" stroke-width="2"/>'
        )
        out.append(
            f'<text x="{x(4) + 6}" y="{y(vals[-1]) + 4:.1f}" fill="{colours[name]}">{name}</text>'
        )
    out.append(f'<text x="{x(2) - 40:.1f}" y="{h - 0.5}">round answered after</text></svg>')
    return "\n".join(out) + "\n"


FILES = {"results/dialogue-by-round.svg": dialogue_by_round_svg}  # under docs/


def dialogue_end(name: str = "dialogue_end") -> str:
    """How the dialogue ends, LLM asked on every image (benchmarks/results/dialogue_end*.json)."""
    r = _load(name)
    rows = r["rows"]
    lines = [
        f"{r['sample']}, {r['reasoner']}, {r['rounds']} rounds, `--trust 1`; {r['scorer']}.",
        "",
        "| ending | accuracy (95 % CI) | vs T1 (won / lost, McNemar p) | answers by rule | s / image |",
        "|---|---|---|---|---|",
        f"| T1 (eyes alone) | {100 * rows['T1']['accuracy']:.1f} % | — | — | — |",
    ]
    for end in ("llm", "follow-up", "fusion"):
        x = rows[end]
        v = x["vs_t1"]
        rules = ", ".join(f"{k} {n}" for k, n in sorted(x["answer_rules"].items()))
        lines.append(
            f"| `--end {end}` | {100 * x['accuracy']:.1f} % ({100 * x['ci95'][0]:.1f}–"
            f"{100 * x['ci95'][1]:.1f}) | {v['a_right_b_wrong']} / {v['b_right_a_wrong']}, "
            f"p = {_sig2(v['p_value'])} | {rules} | {x['seconds_per_image']:.1f} |"
        )
    return "\n".join(lines) + "\n"


_BRIDGE_METHODS = (
    "eyes",
    "bridge",
    "bridge+descriptions",
    "descriptions",
    "subclasses",
    "random names",
    "default (auto)",
)


def _acc_rec(x: dict | None) -> str:
    return "—" if x is None else f"{x['accuracy']:.1%} ({x['recovery']:.2f})"


def label_bridge() -> str:
    """The bridge on renamed label sets: accuracy (recovery) per method, the names written,
    the unfamiliar-label rule and the dialogue under cifar10-ja (label_bridge.json)."""
    r = _load("label_bridge")
    p = r["plain_eyes"]
    lines = [
        _machine(r)
        + f"Eyes: {r['scorer']['note']}. Plain names, eyes alone: {p['300']:.1%} on the 300, "
        f"{p['632']:.1%} on the 632. Cells: accuracy (recovery = ÷ the plain names' eyes alone "
        "on the same images).",
    ]
    for rname, rr in r["reasoners"].items():
        lines += [
            "",
            f"**{rname}** ({rr['reasoner'].get('name', rr['reasoner'].get('model'))}):",
            "",
            "| label set | images | " + " | ".join(_BRIDGE_METHODS) + " | bridge vs eyes "
            "(won/lost, McNemar p) | bridge LLM s |",
            "|---|---|" + "---|" * len(_BRIDGE_METHODS) + "---|---|",
        ]
        for name, row in rr["sets"].items():
            for images in ("300", "632"):
                cells = [_acc_rec(row["methods"].get(m, {}).get(images)) for m in _BRIDGE_METHODS]
                vs = _wl(row["methods"]["bridge"][images]["vs_eyes"])
                secs = f"{row['llm_seconds']['bridge']:.0f}" if images == "300" else ""
                label = name if images == "300" else ""
                lines.append(f"| {label} | {images} | " + " | ".join(cells) + f" | {vs} | {secs} |")
        d = rr.get("dialogue_ja_300")
        if d:
            lines += [
                "",
                f"Dialogue (T2, adaptive, default settings) on the 300 under cifar10-ja, bridged: "
                f"{d['accuracy']:.1%} (95 % CI {d['ci95'][0]:.1%}–{d['ci95'][1]:.1%}); the eyes "
                f"answered {d['answered_by_eyes']} of {d['n']} without asking the LLM; vs the "
                f"bridged eyes alone {_wl(d['vs_bridged_eyes'])}.",
            ]
    lines += ["", "Names written (label → name; clashes and picks are in the JSON):", ""]
    for rname, rr in r["reasoners"].items():
        for name, row in rr["sets"].items():
            if name == "plain":
                continue
            shown = ", ".join(f"{lab} → {row['names'][lab][0]}" for lab in row["labels"])
            lines.append(f"- {rname}, {name}: {shown}")
    rule = r["rule"]
    lines += [
        "",
        f"The unfamiliar-label rule when this ran (a custom set bridged when ≥ {rule['share']:.0%} "
        "of its labels are unreadable to the eyes; the rule now: the next section):",
        "",
        "| label set | unreadable | bridged by default |",
        "|---|---|---|",
    ]
    for name, x in rule["sets"].items():
        n = len(r["reasoners"][next(iter(r["reasoners"]))]["sets"][name]["labels"])
        lines.append(
            f"| {name} | {len(x['unreadable'])} of {n} | {'yes' if x['fires'] else 'no'} |"
        )
    for name in ("imagenet", "cifar100"):
        x = rule[f"{name}_subsets"]
        lines.append(
            f"| {x['n']} random 10-name subsets of {name}'s class names | "
            f"{x['unreadable_share']:.0%} of the names | {x['fired']} of {x['n']} |"
        )
    return "\n".join(lines) + "\n"


def fashion_names() -> str:
    """The bridge on the seed user's fashion words: names accepted per group, per variant."""
    r = _load("fashion_names")
    variants = r["variants"]
    lines = [
        _machine(r)
        + "Cells: labels whose name holds an accepted name (the shared data's rule), and LLM "
        "seconds. `before`: the bridge with the reasoner alone; `dictionaries`: with the "
        "dictionaries, each word's commonest sense; `domain` (the default): a later sense "
        "taken where it is much nearer the set's domain, which the reasoner names once.",
        "",
        "| group | labels | " + " | ".join(variants) + " |",
        "|---|---|" + "---|" * len(variants),
    ]
    first = next(iter(variants.values()))["groups"]
    total = {v: [0, 0] for v in variants}
    for g, row in first.items():
        cells = []
        for v, vr in variants.items():
            x = vr["groups"][g]
            cells.append(f"{x['accepted']}/{x['labels']} ({x['llm_seconds']:.0f} s)")
            key = 0 if x["kind"] == "dev" else 1
            total[v][key] += x["accepted"]
        lines.append(f"| {g} ({row['kind']}) | {row['labels']} | " + " | ".join(cells) + " |")
    n_dev = sum(x["labels"] for x in first.values() if x["kind"] == "dev")
    n_check = sum(x["labels"] for x in first.values() if x["kind"] == "check")
    lines.append(
        f"| all dev / all check | {n_dev} / {n_check} | "
        + " | ".join(
            f"{d}/{n_dev} ({d / n_dev:.0%}) · {c}/{n_check} ({c / n_check:.0%})"
            for d, c in total.values()
        )
        + " |"
    )
    lines += ["", "Names not accepted:", ""]
    for v, vr in variants.items():
        wrong = [
            f"{lab} → {name}" for x in vr["groups"].values() for lab, name in x["wrong"].items()
        ]
        lines.append(f"- {v}: {', '.join(wrong) or 'none'}")
    named = {
        g: x["domain"]
        for vr in variants.values()
        for g, x in vr["groups"].items()
        if x.get("domain")
    }
    if named:
        lines += [
            "",
            "Domains the reasoner named: " + ", ".join(f"{g}: {d}" for g, d in named.items()),
        ]
    return "\n".join(lines) + "\n"


def bridge_rule() -> str:
    """When to bridge: each rule's verdict, and recovery by the eyes alone, the bridge's names
    alone and with a readable label's own text kept."""
    r = _load("bridge_rule")
    rec = lambda x, m: f"{x['recovery'][m]['300']:.2f} / {x['recovery'][m]['632']:.2f}"  # noqa: E731
    lines = [
        _machine(r)
        + f"Eyes: {r['eyes']}; names by {r['reasoner']['name']}. Cells: recovery on the 300 / "
        "the 632 (accuracy ÷ the plain names' eyes alone: "
        f"{r['plain_eyes']['300']:.1%} / {r['plain_eyes']['632']:.1%}).",
        "",
        "| label set | kind | bridged before / now | eyes alone | LLM's names | + own text | "
        "+ dictionaries | default before | default now |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    yes = {True: "yes", False: "**no**"}
    for name, x in r["sets"].items():
        lines.append(
            f"| {name} | {x['kind']} | {yes[x['fires_before']]} / {yes[x['fires_now']]} | "
            + " | ".join(
                rec(x, m)
                for m in ("eyes", "bridge", "own", "dictionaries", "auto_before", "auto_now")
            )
            + " |"
        )
    used = sorted({d for x in r["sets"].values() for d in x.get("dictionaries", {})})
    lines += ["", f"Dictionaries used: {', '.join(used)}.", ""]
    lines += ["How often each rule bridges plain English (random 10-name subsets):", ""]
    for name, f in r["fire_rates"].items():
        lines.append(f"- {name}: {f['before']} of {f['n']} before, {f['now']} of {f['n']} now")
    return "\n".join(lines) + "\n"


def examples_cifar() -> str:
    """Teach by example: accuracy on the 300 by examples per class, per adapter."""
    r = _load("examples_cifar")
    plain = r["plain"]
    names = list(next(iter(plain["k"].values())))
    lines = [
        _machine(r)
        + f"Eyes: {r['eyes']}. Examples drawn from the 632 dev images, accuracy on cifar10-300, "
        "mean ± spread of 5 draws. Zero-shot "
        f"{plain['zero_shot']:.1%}. The all-632 ceiling (GDA on every dev image, shrinkage by "
        f"5-fold cross-validation on them): {r['ceiling']['accuracy']:.1%} on the embeddings, "
        f"{r['ceiling_features']['accuracy']:.1%} on the features ({r['features']}).",
        "",
        "| examples per class | " + " | ".join(names) + " | label codes, examples alone |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for k, row in plain["k"].items():
        code = next(iter(r["codes"]["k"][k].values()))
        lines.append(
            f"| {k} | "
            + " | ".join(f"{row[n]['mean']:.1%} ± {row[n]['std']:.1%}" for n in names)
            + f" | {code['mean']:.1%} |"
        )
    lines += [
        "",
        "Bridged by the default 1.5B, then names chosen by examples among its candidates (and a "
        "dictionary's glosses, from 2 examples), recovery on the 300 (mean of 5 draws):",
        "",
    ]
    for name, row in r["bridged"].items():
        cells = ", ".join(f"{m} {v['recovery']:.3f}" for m, v in row.items() if "recovery" in v)
        lines.append(f"- {name}: {cells}")
        was = row["bridge_names"]
        now = row["chosen_names_seed0"]["4"]
        moved = [
            f"{lab} {'/'.join(was[lab])} → {'/'.join(now[lab])}"
            for lab in was
            if was[lab] != now[lab]
        ]
        lines.append(f"  - chosen by 4 examples (draw 0): {', '.join(moved) or 'no change'}")
    t = r["timing"]
    lines.append(
        f"- choosing and fitting the adapter for 10 × 16 examples: {t['choose_and_fit_10x16_s']:.2f} s;"
        f" applying it to 1,000 images: {t['apply_per_1000_s'] * 1000:.1f} ms"
    )
    return "\n".join(lines) + "\n"


def catalog() -> str:
    """Index once, tag many times: against classify and the eyes, and tag at scale."""
    r = _load("catalog")
    x = r["real"]
    lines = [
        _machine(r) + f"Eyes: {r['note']}. {x['images']} CIFAR-10 PNGs.",
        "",
        "| | images/s or seconds |",
        "|---|---|",
        f"| the eyes alone, decoded images in batches of 32 | {x['eyes_raw_images_per_s']:.1f} img/s |",
        f"| `classify` (decode, embed, score) | {x['classify_images_per_s']:.1f} img/s |",
        f"| `index`, first run | {x['index_first']['images_per_s']:.1f} img/s "
        f"({x['index_vs_eyes']:.2f} × the eyes) |",
        f"| `index` again, nothing changed | {x['index_again_unchanged_s']:.3f} s "
        f"({x['reindex_share_of_first']:.1%} of the first) |",
        f"| `tag` with cifar10, stored embeddings | {x['tag_s']:.3f} s; T1 {x['tag_accuracy']:.1%} "
        f"(classify: {x['classify_accuracy']:.1%}) |",
        f'| `search` "a photo of a CLASS", exact | precision@10 {x["search_precision_at_10_mean"]:.2f} |',
        f"| `index --ray --workers 2` (Ray Data, 1 thread each; Ray's start and stop included) | "
        f"{x['index_ray_2x1']['images_per_s']:.1f} img/s ({x['index_ray_2x1']['seconds']:.0f} s) |",
        f"| stored bytes per image (fp32) | {x['bytes_per_image_fp32']:.0f} |",
        f"| stored as float16 (`index --store float16`): bytes per image; `tag` T1 | "
        f"{x['bytes_per_image_fp16']:.0f}; {x['tag_accuracy_fp16']:.1%} "
        f"({x['fp16_changed_top1']} of {x['images']} top-1 changed) |",
        "",
        "Tag at scale (random unit vectors in the same Parquet format; all rows consumed):",
        "",
        "| stored | labels | tag s | matrix product s | GFLOP/s | peak RSS so far, MB |",
        "|---|---|---|---|---|---|",
    ]
    fresh = [row for row in r["scale"] if "fresh_process" in row]
    for row in r["scale"]:
        if "fresh_process" in row:
            continue
        lines.append(
            f"| {row['stored']:,} | {row['labels']} | {row['tag_s']:.2f} | {row['matmul_s']:.3f} | "
            f"{row['matmul_gflops']:.0f} | {row['peak_rss_mb_so_far']:.0f} |"
        )
    for row in fresh:
        f = row["fresh_process"]
        lines += [
            "",
            f"`tag` of {row['stored']:,} stored × {f['labels']} labels in a process of its own: "
            f"{f['tag_s']:.1f} s, peak RSS {f['peak_rss_mb']:.0f} MB (the same process opening "
            f"the catalog without tagging: {f['eyes_alone_rss_mb']:.0f} MB).",
        ]
    return "\n".join(lines) + "\n"


def multi_label() -> str:
    """Multi-label tagging: macro-F1 of the product's rule by k, and the rules it beat."""
    r = _load("multi_label")
    splits = r["splits"]
    groups = list(splits["632"])
    rules = list(splits["632"][groups[0]])
    head = " | ".join(f"{g}, {s}" for s in ("632 (dev)", "300") for g in groups)
    lines = [
        _machine(r) + f"Eyes: {r['eyes']}. Macro-F1; k chosen on the 632: {r['chosen_k_on_632']}"
        f" (the product's: {r['product_k']}).",
        "",
        f"| rule | {head} |",
        "|---|" + "---|" * (2 * len(groups)),
    ]
    for rule in rules:
        cells = " | ".join(f"{splits[s][g][rule]:.3f}" for s in ("632", "300") for g in groups)
        lines.append(f"| {rule} | {cells} |")
    return "\n".join(lines) + "\n"


RENDERERS = {
    "multi_label": multi_label,
    "examples_cifar": examples_cifar,
    "bridge_rule": bridge_rule,
    "catalog": catalog,
    "label_bridge": label_bridge,
    "fashion_names": fashion_names,
    "dialogue_end": dialogue_end,
    "dialogue_end_300": lambda: dialogue_end("dialogue_end_300"),
    "clip_speed": clip_speed,
    "eyes_speed": eyes_speed,
    "dialogue_cifar": dialogue_cifar,
    "dialogue_trust": dialogue_trust,
    "knowledge_cifar": knowledge_cifar,
    "pixels_mnist": pixels_mnist,
    "reasoner_speed": reasoner_speed,
    "llama_build": llama_build,
    "report_scale": report_scale,
    "eval_scale": eval_scale,
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
    ap.add_argument(
        "--check", action="store_true", help="Exit 1 if the page or a plot is out of date."
    )
    args = ap.parse_args()
    wanted = {PAGE: render(PAGE.read_text(encoding="utf-8"))}
    wanted |= {PAGE.parent / rel: make() for rel, make in FILES.items()}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is out of date: run {__file__}", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(wanted[p], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
