"""Names chosen by examples: where a bridged label has example images, the candidate name whose
text embedding best tells the examples apart is the one the eyes read it by.

Each label with examples in turn (the others read as they are), every candidate — its bridged
names, the reasoner's other answers and candidates — is scored by the mean log-probability the
eyes give every example's own label with the label read by that candidate; the best is kept
(ties: the bridge's own). The scores are recorded in the plan, and so is the share of each
label's examples the eyes read as it by its name; where that is none, no name fits the label and
its examples alone carry it (`labels.adapters`), announced.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from offline_vision.labels.examples import Examples
from offline_vision.models.scorer import Scorer, l2_normalize

log = logging.getLogger("ovision")


def choose_names(
    eyes: Scorer,
    labels: Sequence[str],
    templates: Sequence[str],
    reads: Sequence[tuple[str, ...]],
    examples: Examples,
    candidates: Mapping[str, Sequence[str]],
) -> tuple[tuple[tuple[str, ...], ...], dict]:
    """(each label's read-as names, {label: {"scores": {name: score}, "chosen": name}}) for the
    labels in `candidates` that have examples."""
    x, y = examples.embeddings, examples.label_ids(labels)
    rows = np.stack([eyes.encode_labels(list(r), tuple(templates)).mean(0) for r in reads])
    weights = l2_normalize(rows)
    out, record = list(reads), {}

    def score() -> float:  # the mean log-probability of each example's own label
        p = eyes.probabilities(x, weights)
        return float(np.log(np.maximum(p[np.arange(len(y)), y], 1e-30)).mean())

    for c, label in enumerate(labels):
        if label not in candidates or not (y == c).any():
            continue
        current, as_read = weights[c].copy(), score()
        options = [n for n in dict.fromkeys(candidates[label]) if (n,) != tuple(reads[c])]
        scores = {}
        if options:
            embedded = eyes.encode_labels(options, tuple(templates))
            for name, row in zip(options, embedded, strict=True):
                weights[c] = row
                scores[name] = score()
        best = max(options, key=lambda n: scores[n], default=None)
        if best is not None and scores[best] > as_read:
            out[c] = (best,)
            weights[c] = eyes.encode_labels([best], tuple(templates))[0]
        else:
            weights[c] = current
        record[label] = {
            "as_read": round(as_read, 4),
            "scores": {n: round(v, 4) for n, v in scores.items()},
            "chosen": list(out[c]),
        }
    top = eyes.probabilities(x, weights).argmax(1)
    unfit = []
    for label, r in record.items():  # read by its name, none of its examples is its own
        c = labels.index(label)
        r["examples_read_as_it"] = round(float((top[y == c] == c).mean()), 4)
        if r["examples_read_as_it"] == 0.0:
            unfit.append(label)
    if unfit:
        log.info("no name fits %s: their examples carry them", ", ".join(unfit))
    changed = [
        f"{lab}→{out[labels.index(lab)][0]}"
        for lab in record
        if out[labels.index(lab)] != tuple(reads[labels.index(lab)])
    ]
    if changed:
        log.info("the examples chose other names: %s", ", ".join(changed))
    return tuple(out), record
