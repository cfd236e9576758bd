"""Mapping a free answer (dialogue `--open`, Trial 3) onto a label set, by documented rules.

In order, the first rule that decides wins; each result names its rule:

1. `exact`     — the normalised answer is a label (case, articles, punctuation and a plural
                 "s"/"es" ignored).
2. `synonym`   — it is a lemma of the label's WordNet synset (aeroplane → airplane).
3. `hyponym`   — it is a lemma of a synset below the label's (sedan → automobile). Lemmas that
                 sit under two labels decide nothing here.
4. `mentioned` — for a sentence, exactly one label is named in it by rules 1–3 (whole words).
5. `embedding` — else the label nearest to the answer by the scorer's own text embedding
                 ("a photo of a <answer>" vs "a photo of a <label>"), if its cosine ≥ the
                 threshold. Cosines mean different things in different embedders, so the
                 threshold is calibrated per embedder (`calibrate_threshold`): the one that
                 best separates ImageNet class names WordNet puts under a CIFAR-10 class from
                 those it puts under none. For the ConSE stand-in that is 0.65 (at the 0.5 once
                 used here, 315 of the 793 names under none — "goldfish" among them —
                 mapped to some CIFAR-10 class).
6. `unmapped`  — else nothing; counted wrong.

Rules 2–4 need a WordNet map for the label set (built in for cifar10; see
scripts/make_wordnet_map.py); other label sets use rules 1, 5 and 6.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from offline_vision.labels.sets import CIFAR10

EMBEDDING_THRESHOLD = 0.5  # only where no calibration is given
CALIBRATION_GRID = tuple(round(0.3 + 0.05 * i, 2) for i in range(14))  # 0.30 … 0.95
_ARTICLE = re.compile(r"^(a|an|the|some)\s+")


def normalise(text: str) -> str:
    t = text.strip().lower()
    t = re.sub(r"[\"'`.,;:!?()\[\]{}]", " ", t)
    t = re.sub(r"\s+", " ", t).strip()
    return _ARTICLE.sub("", t)


def singulars(t: str) -> list[str]:
    out = [t]
    if t.endswith("es"):
        out.append(t[:-2])
    if t.endswith("s"):
        out.append(t[:-1])
    return out


@cache
def wordnet_map(label_set: str) -> dict[str, tuple[str, str]] | None:
    """lemma → (label, rule) for a built-in label set, or None where there is no map."""
    try:
        raw = (
            resources.files("offline_vision")
            .joinpath("data", f"{label_set}_wordnet.json")
            .read_text()
        )
    except FileNotFoundError:
        return None
    data = {k: v for k, v in json.loads(raw).items() if not k.startswith("_")}
    lemmas: dict[str, set[tuple[str, str]]] = {}
    for label, entry in data.items():
        for lemma in entry["synonyms"]:
            lemmas.setdefault(lemma, set()).add((label, "synonym"))
        for lemma in entry["hyponyms"]:
            lemmas.setdefault(lemma, set()).add((label, "hyponym"))
    out = {}
    for lemma, hits in lemmas.items():
        labels = {h[0] for h in hits}
        if len(labels) == 1:  # a lemma under two labels decides nothing
            out[lemma] = min(hits, key=lambda h: h[1] != "synonym")
    return out


@dataclass(frozen=True)
class Mapped:
    label: str | None  # None: unmapped
    rule: str
    score: float | None = None  # the cosine, for the embedding rule


def _lookup(t: str, labels: dict[str, str], wn: dict | None) -> Mapped | None:
    for form in singulars(t):
        if form in labels:
            return Mapped(labels[form], "exact")
        if wn and form in wn:
            return Mapped(*wn[form])
    return None


def map_answer(
    answer: str,
    labels: list[str],
    *,
    label_set: str | None = None,
    embed=None,
    threshold: float = EMBEDDING_THRESHOLD,
) -> Mapped:
    """Map `answer` onto `labels`. `embed(texts) -> unit vectors` enables the embedding rule."""
    wn = wordnet_map(label_set) if label_set else None
    lowered = {normalise(lab): lab for lab in labels}
    t = normalise(answer)
    if not t:
        return Mapped(None, "unmapped")
    hit = _lookup(t, lowered, wn)
    if hit:
        return hit
    words = t.split()
    if len(words) > 1:
        found: dict[str, Mapped] = {}
        for n in range(min(4, len(words)), 0, -1):  # longest phrases first
            for i in range(len(words) - n + 1):
                m = _lookup(" ".join(words[i : i + n]), lowered, wn)
                if m and m.label is not None:
                    found.setdefault(m.label, m)
        if len(found) == 1:
            return Mapped(next(iter(found)), "mentioned")
    if embed is not None:
        import numpy as np  # here, so that the CLI can read this module's defaults cheaply

        vecs = embed([f"a photo of a {t}", *(f"a photo of a {lab}" for lab in labels)])
        sims = vecs[1:] @ vecs[0]
        best = int(np.argmax(sims))
        if sims[best] >= threshold:
            return Mapped(labels[best], "embedding", float(sims[best]))
        return Mapped(None, "unmapped", float(sims[best]))
    return Mapped(None, "unmapped")


def calibration_names(label_set: str = "cifar10") -> tuple[list[tuple[str, str]], list[str]]:
    """ImageNet class names → (WordNet puts them under a label: (name, label)), (under none).
    Names that contain a label word (or a synonym) are left out of the second list."""
    wn = wordnet_map(label_set) or {}
    names = (
        resources.files("offline_vision").joinpath("data", "imagenet_classes.txt").read_text()
    ).splitlines()
    words = {lemma for lemma, (_, rule) in wn.items() if rule == "synonym"}
    under, none = [], []
    for name in filter(None, (normalise(n) for n in names)):
        if name in wn:
            under.append((name, wn[name][0]))
        elif not words & set(name.split()):
            none.append(name)
    return under, none


def calibrate_threshold(embed) -> dict:
    """The embedding rule's threshold for one embedder (a property of its space, whatever the
    label set): the grid value with the most right decisions over `calibration_names` for
    CIFAR-10 (a name under a label mapped to it; a name under none left unmapped). Returns the
    threshold and the counts it was chosen on."""
    labels = list(CIFAR10)
    under, none = calibration_names("cifar10")
    if not under or not none:
        return {"threshold": EMBEDDING_THRESHOLD, "calibrated": False}
    import numpy as np

    texts = [f"a photo of a {t}" for t in [*labels, *(n for n, _ in under), *none]]
    vecs = np.asarray(embed(texts))
    sims = vecs[len(labels) :] @ vecs[: len(labels)].T
    best, nearest = sims.max(axis=1), sims.argmax(axis=1)
    truth = np.array([labels.index(lab) for _, lab in under])
    k = len(under)
    rows = []
    for t in CALIBRATION_GRID:
        right = int(((best[:k] >= t) & (nearest[:k] == truth)).sum())
        left = int((best[k:] < t).sum())
        rows.append((right + left, t, right, left))
    # Most right decisions; on a tie, the lower threshold.
    _, t, right, left = max(rows, key=lambda row: (row[0], -row[1]))
    return {
        "threshold": t,
        "calibrated": True,
        "under_mapped_right": right,
        "under": k,
        "none_left_unmapped": left,
        "none": len(none),
    }
