"""`ovision report`: merge run summaries into one table, draw the plots, compare paired runs.

Reads only run directories (config.json, records.jsonl, summary.json); it never runs a model.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from offline_vision.errors import RunError
from offline_vision.eval.records import RECORDS, Record, read_records
from offline_vision.eval.runner import SUMMARY
from offline_vision.eval.stats import mcnemar_exact
from offline_vision.files import write_atomic

log = logging.getLogger("ovision")
COLUMNS = (
    "run",
    "task",
    "method",
    "reasoner",
    "scorer",
    "n",
    "accuracy",
    "ci95",
    "s/item",
    "items/s",
    "workers",
    "prompt tok/item",
    "evaluated tok/item",
)


@dataclass
class Run:
    name: str
    path: Path
    summary: dict
    records: list[Record]

    @property
    def config(self) -> dict:
        return self.summary["config"]

    @property
    def method(self) -> str:
        c = self.config
        parts = [c.get("strategy") or c.get("policy") or c.get("mode") or ""]
        if c.get("mode") and c.get("policy"):
            parts = [f"{c['mode']}/{c['policy']}"]
        if c.get("shots") and c.get("strategy") in ("few-shot", "retrieved"):
            parts.append(f"K={c['shots']}")
        if c.get("encoding") and c.get("strategy") not in ("knn", "majority"):
            parts.append(c["encoding"])
        ex = c.get("examples")
        if isinstance(ex, dict) and isinstance(ex.get("per_label"), dict):
            counts = sorted(set(ex["per_label"].values()))
            k = "/".join(str(n) for n in counts) if len(counts) < 4 else f"{counts[0]}–{counts[-1]}"
            method = (ex.get("adapter") or {}).get("method", "examples")
            parts.append(f"{method} α={ex['adapter']['alpha']:g}" if method != "examples" else "")
            parts.append(f"K={k}")
        return " ".join(p for p in parts if p)

    @property
    def reasoner(self) -> str:
        r = self.config.get("reasoner")
        return r.get("name", "") if isinstance(r, dict) else (r or "—")

    @property
    def scorer(self) -> str:
        s = self.config.get("scorer")
        if not isinstance(s, dict):
            return "—"
        return f"{s['scorer']} (stand-in)" if s.get("standin") else s["scorer"]


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Runs named apart: two run folders named alike (a/run, b/run) are a-run and b-run, so
    neither's plots or table row overwrite the other's."""
    runs = [load_run(p) for p in paths]
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = f"{r.path.resolve().parent.name}-{r.name}"
    seen: dict[str, int] = {}
    for r in runs:  # still alike (x/a/run, y/a/run): numbered
        seen[r.name] = seen.get(r.name, 0) + 1
        if seen[r.name] > 1:
            r.name = f"{r.name}-{seen[r.name]}"
    return runs


def load_run(path: Path) -> Run:
    summary_path = path / SUMMARY
    if not summary_path.exists():
        raise RunError(f"{path}: no {SUMMARY} (not a finished run directory)")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise RunError(f"{summary_path}: unreadable ({e})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("n"), int):
        raise RunError(f"{summary_path}: not an ovision run summary")
    return Run(path.name, path, summary, read_records(path / RECORDS))


def _throughput(summary: dict) -> str:
    """Items per second of wall time in the run's last session (startup included)."""
    rate = (summary.get("this_session") or {}).get("items_per_s")
    return f"{rate:.2f}" if rate else "—"


def row(run: Run) -> dict:
    s = run.summary
    tok = s.get("tokens", {})
    return {
        "run": run.name,
        "task": s.get("task"),
        "method": run.method,
        "reasoner": run.reasoner,
        "scorer": run.scorer,
        "n": s["n"],
        "accuracy": f"{s['accuracy']:.1%}",
        "ci95": f"{s['ci95'][0]:.1%}–{s['ci95'][1]:.1%}",
        "s/item": f"{s['latency_s']['mean']:.2f}",
        "items/s": _throughput(s),
        "workers": ", ".join(f"{w} {k}" for w, k in s.get("per_worker", {}).items()) or "—",
        "prompt tok/item": f"{tok['prompt']['per_item']:.0f}" if "prompt" in tok else "—",
        "evaluated tok/item": f"{tok['evaluated']['per_item']:.0f}" if "evaluated" in tok else "—",
    }


def markdown(rows: list[dict], columns=COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict], columns=COLUMNS) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def paired(a: Run, b: Run) -> dict:
    """McNemar's exact test of two runs on the items they share (of one dataset)."""
    da, db = a.config.get("dataset"), b.config.get("dataset")
    if da != db:
        raise RunError(f"{a.name} ({da}) and {b.name} ({db}) are runs on different datasets")
    ra = {r.id: r.correct for r in a.records}
    rb = {r.id: r.correct for r in b.records}
    common = sorted(set(ra) & set(rb))
    if not common:
        raise RunError(f"{a.name} and {b.name} share no items")
    a_only = sum(ra[i] and not rb[i] for i in common)
    b_only = sum(rb[i] and not ra[i] for i in common)
    return {
        "a": a.name,
        "b": b.name,
        "n": len(common),
        "a_accuracy": sum(ra[i] for i in common) / len(common),
        "b_accuracy": sum(rb[i] for i in common) / len(common),
        "a_right_b_wrong": a_only,
        "b_right_a_wrong": b_only,
        "p_value": mcnemar_exact(a_only, b_only),
    }


def paired_markdown(results: list[dict]) -> str:
    cols = ("a", "b", "n", "a acc", "b acc", "a✓ b✗", "b✓ a✗", "McNemar p")
    rows = [
        {
            "a": r["a"],
            "b": r["b"],
            "n": r["n"],
            "a acc": f"{r['a_accuracy']:.1%}",
            "b acc": f"{r['b_accuracy']:.1%}",
            "a✓ b✗": r["a_right_b_wrong"],
            "b✓ a✗": r["b_right_a_wrong"],
            "McNemar p": f"{r['p_value']:.3g}",
        }
        for r in results
    ]
    return markdown(rows, cols)


# Fonts with CJK glyphs that matplotlib falls back to, where installed, for label names in
# Japanese or Chinese (its bundled DejaVu Sans has none).
CJK_FONTS = (
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "IPAexGothic",
    "IPAGothic",
    "WenQuanYi Zen Hei",
)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import font_manager
    except ImportError:
        log.warning(
            "plots skipped: matplotlib is not installed (pip install 'offline_vision[report]')"
        )
        return None
    have = {f.name for f in font_manager.fontManager.ttflist}
    plt.rcParams["font.family"] = ["DejaVu Sans", *(f for f in CJK_FONTS if f in have)]
    return plt


_SAID: list[bool] = []  # the missing-font line is said once a process


def _glyphs_checked(plt, labels) -> None:
    """One line, not one warning per glyph, where labels need a font that is not installed."""
    import warnings

    cjk = any(ord(ch) > 0x2E7F for label in labels for ch in str(label))
    if cjk and len(plt.rcParams["font.family"]) == 1 and not _SAID:
        _SAID.append(True)
        log.warning(
            "plot labels need a font with CJK glyphs; install one (Debian: fonts-noto-cjk) "
            "to see them in the PNG plots (the --html page uses the browser's fonts)"
        )
    warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)


def plot_confusion(run: Run, out: Path) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    c = run.summary["confusion"]
    _glyphs_checked(plt, [*c["columns"], *c["rows"]])
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(c["columns"]), 1 + 0.45 * len(c["rows"])))
    ax.imshow(c["matrix"], cmap="Blues")
    ax.set_xticks(range(len(c["columns"])), c["columns"], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(c["rows"])), c["rows"], fontsize=8)
    for i, rowv in enumerate(c["matrix"]):
        for j, v in enumerate(rowv):
            if v:
                ax.text(j, i, v, ha="center", va="center", fontsize=7)
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth")
    ax.set_title(f"{run.name}: {run.summary['accuracy']:.1%} (n={run.summary['n']})", fontsize=9)
    fig.tight_layout()
    path = out / f"{run.name}.confusion.png"
    save_figure(fig, path)
    return path


def save_figure(fig, path: Path) -> None:
    """A matplotlib figure as PNG through the one way out (files.write_atomic), then closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def plot_over_time(run: Run, out: Path, window: int = 20) -> Path | None:
    """Running and rolling accuracy over the sequence (for the feedback strategy)."""
    plt = _pyplot()
    if plt is None:
        return None
    hits = [1.0 if r.correct else 0.0 for r in run.records]
    running = [sum(hits[: i + 1]) / (i + 1) for i in range(len(hits))]
    rolling = [
        sum(hits[max(0, i - window + 1) : i + 1]) / min(window, i + 1) for i in range(len(hits))
    ]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(1, len(hits) + 1), running, label="running accuracy")
    ax.plot(range(1, len(hits) + 1), rolling, label=f"last {window}", alpha=0.7)
    ax.set_xlabel("item (in the order the model saw them)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title(run.name, fontsize=9)
    fig.tight_layout()
    path = out / f"{run.name}.over_time.png"
    save_figure(fig, path)
    return path


def plot_by_round(run: Run, out: Path) -> Path | None:
    """Dialogue runs: accuracy had the dialogue answered after round r."""
    curve = run.summary.get("accuracy_by_round")
    plt = _pyplot()
    if not curve or plt is None:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(range(1, len(curve) + 1), curve, marker="o")
    ax.set_xlabel("round answered after")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(run.name, fontsize=9)
    fig.tight_layout()
    path = out / f"{run.name}.by_round.png"
    save_figure(fig, path)
    return path


def report(
    paths: list[Path],
    out: Path,
    *,
    pairs: Sequence[tuple[Path, Path]] = (),
    baseline: Path | None = None,
) -> dict:
    runs = load_runs(paths)
    out.mkdir(parents=True, exist_ok=True)
    rows = [row(r) for r in runs]
    write_atomic(out / "runs.md", markdown(rows))
    write_atomic(out / "runs.csv", to_csv(rows))
    by_path = {r.path.resolve(): r for r in runs}
    comparisons = [
        paired(by_path.get(a.resolve()) or load_run(a), by_path.get(b.resolve()) or load_run(b))
        for a, b in pairs
    ]
    if baseline is not None:
        base = by_path.get(baseline.resolve()) or load_run(baseline)
        comparisons += [paired(r, base) for r in runs if r.path.resolve() != base.path.resolve()]
    if comparisons:
        write_atomic(out / "paired.md", paired_markdown(comparisons))
        write_atomic(out / "paired.json", json.dumps(comparisons, indent=2) + "\n")
    plots = []
    for r in runs:
        plots.append(plot_confusion(r, out))
        if r.config.get("strategy") == "feedback":
            plots.append(plot_over_time(r, out))
        plots.append(plot_by_round(r, out))
    return {"rows": rows, "paired": comparisons, "plots": [str(p) for p in plots if p]}
