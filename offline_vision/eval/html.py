"""`ovision report --html`: one self-contained page to browse runs, images and dialogues.

No server and no network: styles, script, plots (inline SVG) and thumbnails (data: URLs) are all
in the file. Everything that came from a run — labels, LLM answers, file names — is untrusted
text: the tables are escaped here, and the item browser's data travels as JSON that the page's
own script only ever puts into the DOM as text (never as markup).
"""

from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path
from typing import Any

from offline_vision.errors import OVisionError
from offline_vision.eval.records import Record
from offline_vision.eval.report import COLUMNS, Run, paired, row
from offline_vision.files import write_atomic
from offline_vision.images import data_url

log = logging.getLogger("ovision")
THUMB = 48  # px, the longer side; CIFAR-10's 32 px images stay as they are


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _grids(runs: list[Run], data_dir: Path | None) -> dict[int, str]:
    """Pixel runs: each digit as the grid the model was shown (values rounded to 0.1)."""
    if data_dir is None or not any(r.config.get("task") == "pixels" for r in runs):
        return {}
    from PIL import Image

    from offline_vision.eval.datasets import open_dataset
    from offline_vision.pixels import to_grid

    try:
        ds = open_dataset(data_dir, "mnist")
    except OVisionError:
        return {}
    out = {}
    for i in sorted(
        {r.id for run in runs if run.config.get("task") == "pixels" for r in run.records}
    ):
        try:
            grid = to_grid(ds.array(i))
        except (IndexError, KeyError, OVisionError):
            continue
        img = Image.fromarray((grid * 255).astype("uint8"), mode="L").resize(
            (60, 60), Image.Resampling.NEAREST
        )
        out[i] = data_url(img, "png")
    return out


def _thumbs(runs: list[Run], data_dir: Path | None) -> dict[str, dict[int, str]]:
    """{dataset: {id: data URL}} for every item of every run whose dataset is at hand."""
    from PIL import Image

    from offline_vision.eval.datasets import open_dataset

    out: dict[str, dict[int, str]] = {}
    for run in runs:
        name = run.config.get("dataset")
        if not name or name in out or data_dir is None:
            continue
        try:
            ds = open_dataset(data_dir, name)
        except (OVisionError, OSError, ValueError) as e:  # no dataset: only no thumbnails
            log.warning("no thumbnails for %s (%s)", name, e)
            continue
        ids = sorted({r.id for x in runs if x.config.get("dataset") == name for r in x.records})
        urls = {}
        for i in ids:
            try:
                img = ds.image(i)
            except (IndexError, KeyError, TypeError, OSError, OVisionError):
                continue  # an id the data at hand does not have: no thumbnail
            img.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS)
            urls[i] = data_url(img, "png" if img.mode == "L" else "jpeg")
        out[name] = urls
    return out


def _detail(rec: Record) -> dict:
    """What the browser shows of one record besides truth and prediction."""
    d: dict[str, Any] = {}
    r = rec.detail
    if "dialogue" in r:
        dia = rec.dialogue
        d["rounds"] = [
            {
                "round": x.get("round"),
                "asks": x.get("candidates", []),
                "eyes": x.get("scores", []),
                "raw": x.get("raw", ""),
                "fallback": x.get("fallback"),
            }
            for x in dia.get("rounds", [])
        ]
        a = dia.get("answer", {})
        d["answer"] = {"label": a.get("label"), "raw": a.get("raw"), "rule": a.get("rule")}
    if "top" in r:
        d["eyes"] = r["top"]
    if "follow_up" in r:
        d["follow_up"] = r["follow_up"]
    if "question" in r:
        d["prompt"] = r["question"]
    if r.get("transcript"):
        d["transcript"] = [
            {"role": m.get("role", ""), "content": str(m.get("content", ""))[:4000]}
            for m in r["transcript"]
            if isinstance(m, dict)
        ]
    return d


def _items(runs: list[Run], thumbs: dict, grids: dict) -> list[dict]:
    """One item per (dataset, id): runs on different datasets never share a card."""
    by_id: dict[tuple[str, int], dict] = {}
    for k, run in enumerate(runs):
        dataset = str(run.config.get("dataset") or "")
        urls = thumbs.get(dataset, {})
        for r in run.records:
            item = by_id.setdefault(
                (dataset, r.id),
                {"id": r.id, "dataset": dataset, "truth": r.truth, "img": urls.get(r.id)},
            )
            if dataset == "mnist" and r.id in grids:
                item["grid"] = grids[r.id]
            item.setdefault("runs", {})[k] = {
                "prediction": r.prediction,
                "correct": r.correct,
                "detail": _detail(r),
            }
    return [by_id[key] for key in sorted(by_id)]


def _svg_confusion(run: Run) -> str:
    c = run.summary["confusion"]
    rows, cols, m = c["rows"], c["columns"], c["matrix"]
    cell, left, top = 22, 90, 90
    peak = max([max(r) for r in m if r] + [1])
    parts = [
        f'<svg class="confusion" xmlns="http://www.w3.org/2000/svg" width="{left + cell * len(cols) + 10}" '
        f'height="{top + cell * len(rows) + 10}" role="img" aria-label="confusion matrix">'
    ]
    for j, col in enumerate(cols):
        x = left + j * cell + cell / 2
        parts.append(
            f'<text x="{x}" y="{top - 4}" transform="rotate(-60 {x} {top - 4})" font-size="10">{_esc(col)}</text>'
        )
    for i, lab in enumerate(rows):
        y = top + i * cell
        parts.append(
            f'<text x="{left - 4}" y="{y + 15}" text-anchor="end" font-size="10">{_esc(lab)}</text>'
        )
        for j, v in enumerate(m[i]):
            shade = int(255 - 200 * v / peak)
            ink = "#fff" if v > peak / 2 else "#000"
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="rgb({shade},{shade},255)" stroke="#ddd"><title>{_esc(lab)} → {_esc(cols[j])}: {v}</title></rect>'
            )
            if v:
                parts.append(
                    f'<text x="{left + j * cell + cell / 2}" y="{y + 15}" text-anchor="middle" font-size="9" fill="{ink}">{v}</text>'
                )
    parts.append("</svg>")
    return "".join(parts)


def _svg_curve(values: list[float], label: str, xlabel: str) -> str:
    w, h, pad = 320, 150, 28
    n = len(values)
    if n < 2:
        return ""
    pts = " ".join(
        f"{pad + (w - 2 * pad) * i / (n - 1):.1f},{h - pad - (h - 2 * pad) * v:.1f}"
        for i, v in enumerate(values)
    )
    return (
        f'<svg class="curve" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="{_esc(label)}"><rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" '
        f'fill="none" stroke="#ccc"/><polyline points="{pts}" fill="none" stroke="#36c" stroke-width="2"/>'
        f'<text x="{pad}" y="{pad - 8}" font-size="10">{_esc(label)} (0–100 %)</text>'
        f'<text x="{w / 2}" y="{h - 6}" font-size="10" text-anchor="middle">{_esc(xlabel)}</text></svg>'
    )


def _per_class(run: Run) -> str:
    cells = "".join(
        f"<tr><td>{_esc(lab)}</td><td>{v['n']}</td><td>"
        + ("—" if v["accuracy"] is None else f"{v['accuracy']:.0%}")
        + "</td></tr>"
        for lab, v in run.summary.get("per_class", {}).items()
    )
    return f'<table class="per-class"><tr><th>class</th><th>n</th><th>accuracy</th></tr>{cells}</table>'


def _run_section(k: int, run: Run) -> str:
    plots = [_svg_confusion(run)]
    if run.summary.get("accuracy_by_round"):
        plots.append(
            _svg_curve(
                run.summary["accuracy_by_round"], "accuracy had it answered after round r", "round"
            )
        )
    if run.config.get("strategy") == "feedback":
        hits, running = 0, []
        for i, r in enumerate(run.records, 1):
            hits += r.correct
            running.append(hits / i)
        plots.append(_svg_curve(running, "running accuracy", "item, in the order seen"))
    return (
        f'<section class="run" id="run-{k}"><h3>{_esc(run.name)}</h3>'
        f'<div class="plots">{"".join(plots)}{_per_class(run)}</div></section>'
    )


def _runs_table(runs: list[Run], baseline: Run | None) -> str:
    cols = [c for c in COLUMNS if c != "evaluated tok/item"]
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols) + (
        "<th>vs baseline (McNemar)</th>" if baseline else ""
    )
    body = []
    for run in runs:
        r = row(run)
        cells = "".join(f"<td>{_esc(r.get(c, ''))}</td>" for c in cols)
        if baseline is not None:
            if run.path.resolve() == baseline.path.resolve():
                cells += "<td>baseline</td>"
            else:
                p = paired(run, baseline)
                cells += (
                    f"<td>{p['a_right_b_wrong']} won / {p['b_right_a_wrong']} lost, "
                    f"p = {p['p_value']:.3g}</td>"
                )
        body.append(f"<tr>{cells}</tr>")
    return f'<table id="runs"><tr>{head}</tr>{"".join(body)}</table>'


def _json_for_script(value) -> str:
    """JSON safe inside <script>: no `</script>`, no `<!--` can end or bend the element."""
    return (
        json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def page(runs: list[Run], *, baseline: Run | None = None, data_dir: Path | None = None) -> str:
    """The whole page as one string."""
    thumbs = _thumbs(runs, data_dir)
    data = {
        "runs": [{"name": r.name, "standin": "(stand-in)" in row(r)["scorer"]} for r in runs],
        "items": _items(runs, thumbs, _grids(runs, data_dir)),
    }
    parts = {
        "TITLE": _esc(" · ".join(r.name for r in runs)),
        "RUNS": _runs_table(runs, baseline),
        "SECTIONS": "".join(_run_section(k, r) for k, r in enumerate(runs)),
        "DATA": _json_for_script(data),
    }
    template = (Path(__file__).parent / "html_template.html").read_text(encoding="utf-8")
    # One pass: text put in by one placeholder is never searched for another.
    return re.sub(r"@@([A-Z]+)@@", lambda m: parts[m.group(1)], template)


def write(
    runs: list[Run], out: Path, *, baseline: Run | None = None, data_dir: Path | None = None
) -> Path:
    write_atomic(out, page(runs, baseline=baseline, data_dir=data_dir))
    return out
