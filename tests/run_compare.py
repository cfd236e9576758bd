"""Comparing two runs of one evaluation: keys that differ only by timing or placement are left
out, so what remains must be equal."""

from __future__ import annotations

TIMINGS = frozenset({"latency_s", "probe_s", "probe_s_mean", "this_session"})  # seconds
PLACEMENT = frozenset({"worker", "per_worker", "per_node"})  # where an item ran, not what


def untimed(x, drop=TIMINGS):
    if isinstance(x, dict):
        return {k: untimed(v, drop) for k, v in x.items() if k not in drop}
    if isinstance(x, list):
        return [untimed(v, drop) for v in x]
    return x


def untimed_records(records, drop=TIMINGS) -> list[dict]:
    """The records (eval.records.Record) as JSON without `drop`, in id order (runs append them
    in the order they finish)."""
    return sorted((untimed(r.to_json(), drop) for r in records), key=lambda r: r["id"])
