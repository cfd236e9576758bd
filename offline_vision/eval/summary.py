"""A run's summary, computed from its records alone (the runner writes it as summary.json)."""

from __future__ import annotations

from collections import Counter

from offline_vision.eval.records import Record
from offline_vision.eval.stats import percentile, wilson


def _where(records: list[Record]) -> dict:
    """Items per Ray worker and per node, where the records say (runs with --ray)."""
    placed = [r.worker for r in records if isinstance(r.worker, dict)]
    if not placed:
        return {}
    return {
        "per_worker": dict(sorted(Counter(w["name"] for w in placed).items())),
        "per_node": dict(sorted(Counter(f"{w['host']}/{w['node']}" for w in placed).items())),
    }


def summarize(records: list[Record], config: dict, classes: tuple[str, ...] = ()) -> dict:
    """Accuracy (with its 95 % interval), per class, confusion, latency, tokens, placement."""
    n = len(records)
    k = sum(r.correct for r in records)
    labels = list(classes) or sorted({r.truth for r in records})
    other = sorted({r.prediction for r in records} - set(labels))
    columns = labels + other
    col = {c: i for i, c in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in labels]
    per_class: dict[str, dict] = {}
    for lab in labels:
        rs = [r for r in records if r.truth == lab]
        per_class[lab] = {
            "n": len(rs),
            "correct": sum(r.correct for r in rs),
            "accuracy": (sum(r.correct for r in rs) / len(rs)) if rs else None,
        }
    for r in records:
        if r.truth in col and r.truth in labels:
            matrix[labels.index(r.truth)][col[r.prediction]] += 1
    lat = [r.latency_s for r in records if r.latency_s is not None] or [0.0]
    tokens = {}
    for key in ("prompt", "completion", "evaluated"):
        vals = [v for r in records if (v := (r.tokens or {}).get(key)) is not None]
        if vals:
            tokens[key] = {"total": sum(vals), "per_item": sum(vals) / len(vals)}
    lo, hi = wilson(k, n)
    return {
        "task": config.get("task"),
        "n": n,
        "correct": k,
        "accuracy": k / n,
        "ci95": [lo, hi],
        "per_class": per_class,
        "confusion": {"rows": labels, "columns": columns, "matrix": matrix},
        "predictions": dict(Counter(r.prediction for r in records).most_common()),
        "latency_s": {
            "p50": percentile(lat, 50),
            "p95": percentile(lat, 95),
            "mean": sum(lat) / len(lat),
            "total": sum(lat),
        },
        "tokens": tokens,
        **_where(records),
        "config": {k: v for k, v in config.items() if k != "indices"},
    }
