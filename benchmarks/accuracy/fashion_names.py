"""The bridge on the seed user's own words: the Japanese fashion dev lists (four groups, as a
catalog would use them) and a check list of other fashion words, each group bridged on its own
by a reasoner; a name counts when, lower-cased, without articles and plural -s, it holds one of
the label's accepted names as whole words (the shared data's README) → JSON.

No fashion images exist here: this checks names, not accuracy. Each run is one variant (the
code as it is, with or without the bridge's dictionaries; `domain`: the default since the
senses are weighed by the set's domain), added to
benchmarks/results/fashion_names.json under `--variant`:

    OVISION_DATA=../shared/data python -m benchmarks.accuracy.fashion_names --variant domain
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, write
from offline_vision.config import Settings
from offline_vision.labels import plan
from offline_vision.labels.sets import LabelSet
from offline_vision.models.loader import load_scorer
from offline_vision.models.reasoners import load_reasoner

GROUPS = ("garments", "accessories", "details", "colours-materials")
CHECK = Path(__file__).parent / "fashion_check.json"  # other fashion words: never tuned on
_ARTICLE = re.compile(r"\b(?:a|an|the)\b")


def words(text: str) -> list[str]:
    """Lower-cased words, articles dropped, each without a plural -s."""
    out = []
    for w in re.findall(r"[a-z]+", _ARTICLE.sub(" ", text.lower())):
        out.append(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


def accepted(name: str, answers: list[str]) -> bool:
    """`name` holds one of `answers` as whole words, in order."""
    got = words(name)
    for a in answers:
        want = words(a)
        if any(got[i : i + len(want)] == want for i in range(len(got) - len(want) + 1)):
            return True
    return False


def groups(settings: Settings) -> dict[str, tuple[list[str], dict[str, list[str]], str]]:
    """name → (labels, accepted names, dev|check)."""
    root = settings.data_dir / "label_sets" / "fashion-ja"
    answers = json.loads((root / "answers.json").read_text(encoding="utf-8"))
    out = {}
    for g in GROUPS:
        labels = [x.strip() for x in (root / f"{g}.txt").read_text("utf-8").splitlines()]
        out[g] = ([x for x in labels if x], answers[g], "dev")
    if CHECK.exists():
        for g, table in json.loads(CHECK.read_text(encoding="utf-8")).items():
            if not g.startswith("_"):
                out[f"check:{g}"] = (list(table), table, "check")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", required=True, help="Column name: before, dictionaries, domain.")
    ap.add_argument("--reasoner", default="local")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    settings = Settings.from_env(threads=args.threads)
    eyes = load_scorer(settings, "conse")
    work = Path(tempfile.mkdtemp(prefix="fashion-names-"))  # a cold cache: every name written
    try:
        t0 = time.perf_counter()
        llm = load_reasoner(settings, args.reasoner)
        rows = {}
        for name, (labels, answers, kind) in groups(settings).items():
            t = time.perf_counter()
            label_set = LabelSet("custom", tuple(labels))
            k, _p, _c = plan.write(label_set, "names", eyes, llm, cache_dir=work)
            names = {lab: (k.texts.get(lab) or [lab])[0] for lab in labels}
            ok = {lab: accepted(names[lab], answers[lab]) for lab in labels}
            rows[name] = {
                "kind": kind,
                "labels": len(labels),
                "accepted": sum(ok.values()),
                "names": names,
                "wrong": {lab: names[lab] for lab in labels if not ok[lab]},
                "sources": {lab: c.get("source", "reasoner") for lab, c in k.choices.items()},
                "dictionaries": k.prompts.get("dictionaries", {}),
                "domain": k.domain,
                "llm_seconds": round(k.llm_seconds, 1),
                "wall_s": round(time.perf_counter() - t, 1),
            }
            print(name, f"{rows[name]['accepted']}/{len(labels)}", rows[name]["wrong"], flush=True)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = RESULTS / "fashion_names.json"
    result = json.loads(out.read_text()) if out.exists() else {}
    variants = result.get("variants", {})
    variants[args.variant] = {"reasoner": llm.describe(), "groups": rows, "wall_s": round(wall, 1)}
    write("fashion_names", {"note": "names only: no fashion images here", "variants": variants})


if __name__ == "__main__":
    main()
