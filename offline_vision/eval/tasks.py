"""The evaluation tasks: one dataset item → one record, for `eval.runner.run`.

A task has `name`, `config() -> dict`, `resume(records)` and `__call__(index) -> dict` (at least
`truth` and `prediction`); `sequential = True` where each item depends on the ones before it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

import numpy as np

from offline_vision.dialogue import DialogueConfig, map_calibration, run_dialogue
from offline_vision.eval.records import Record
from offline_vision.labels.examples import encode
from offline_vision.labels.plan import LabelPlan, Written
from offline_vision.labels.scoring import LabelScorer
from offline_vision.pixels import Prompter, to_grid


def bridge_config(bridge: Written) -> dict:
    """What a run's config says of its bridge: the names, their sha256 and their writer."""
    return {"sha256": bridge.sha256, "names": bridge.texts, "reasoner": bridge.reasoner}


class ScorerTask:
    """`eval clip` (Trial 1): the scorer alone over the dataset's classes, read as `plan` says."""

    name = "clip"

    def __init__(self, dataset, scorer, plan: LabelPlan, *, follow_up=None):
        self.dataset, self.scorer, self.plan = dataset, scorer, plan
        self.labels, self.templates = list(plan.labels), plan.templates
        self.follow_up, self.names = follow_up, plan.names
        self._label_scorer: LabelScorer | None = None

    def config(self) -> dict:
        cfg = {
            "task": "clip",
            "dataset": self.dataset.name,
            "labels": self.labels,
            "templates": list(self.templates),
            "scorer": self.scorer.describe(),
        }
        if self.plan.knowledge is not None:
            k = self.plan.knowledge
            cfg["knowledge"] = {"strategy": k.strategy, "sha256": k.sha256, "reasoner": k.reasoner}
        if self.follow_up is not None:
            cfg["follow_up"] = self.follow_up.config()
        if self.plan.bridge is not None:
            cfg["bridge"] = bridge_config(self.plan.bridge)
        if self.plan.examples is not None:
            adapter = self.label_scorer.adapter
            cfg["examples"] = self.plan.examples.cited()
            cfg["examples"]["adapter"] = adapter.describe() if adapter else None
        return cfg

    def resume(self, records: list[Record]) -> None:
        pass

    @property
    def label_scorer(self) -> LabelScorer:
        if self._label_scorer is None:
            self._label_scorer = LabelScorer(self.scorer, self.plan)
        return self._label_scorer

    def __call__(self, index: int) -> dict:
        item = self.dataset.item(index)
        image = [self.dataset.image(index)]
        if self.label_scorer.uses_features:
            emb, feats = encode(self.scorer, image)
        else:
            emb, feats = self.scorer.encode_images(image), None
        probs = self.label_scorer.probabilities(emb, feats)[0]
        order = np.argsort(-probs)
        rec = {
            "truth": item.label,
            "prediction": self.labels[order[0]],
            "top": [[self.labels[i], round(float(probs[i]), 5)] for i in order[:5]],
        }
        if self.plan.knowledge is not None:
            rec["knowledge_sha256"] = self.plan.knowledge.sha256
        if self.names is not None and self.plan.bridge is not None:
            rec["bridge_sha256"] = self.plan.bridge.sha256
            rec["names"] = self.names[rec["prediction"]]
        if self.follow_up is not None:
            rec["follow_up"] = self.follow_up(emb[0], probs, self.labels)
            rec["prediction"] = rec["follow_up"].get("prediction", rec["prediction"])
        return rec


class DialogueTask:
    """`eval dialogue` / `eval dialogue-open`: one image → one dialogue → one record."""

    name = "dialogue"

    def __init__(
        self,
        dataset,
        scorer,
        reasoner,
        plan: LabelPlan,
        *,
        known: bool,
        config: DialogueConfig,
        sampling_seed: int = 0,
        follow_up=None,
    ):
        self.dataset, self.scorer, self.reasoner, self.plan = dataset, scorer, reasoner, plan
        self.known, self.config_, self.sampling_seed = known, config, sampling_seed
        self.follow_up = follow_up
        self.labels = list(plan.labels)
        self.label_set = plan.label_set(known=known)

    def config(self) -> dict:
        return {
            "task": "dialogue" if self.known else "dialogue-open",
            "dataset": self.dataset.name,
            "mode": "known" if self.known else "open",
            "policy": self.config_.policy,
            "dialogue": asdict(self.config_),
            "labels": self.labels,
            "seed": self.sampling_seed,
            "scorer": self.scorer.describe(),
            "reasoner": self.reasoner.describe(),
            **({} if self.known else {"open_map": map_calibration(self.scorer)}),
            **({"follow_up": self.follow_up.config()} if self.follow_up else {}),
            **({"bridge": bridge_config(self.plan.bridge)} if self.plan.bridge else {}),
        }

    def resume(self, records: list[Record]) -> None:
        pass

    def __call__(self, index: int) -> dict:
        item = self.dataset.item(index)
        d = run_dialogue(
            self.dataset.image(index),
            self.scorer,
            self.reasoner,
            self.label_set,
            config=self.config_,
            sampling_seed=self.sampling_seed,
            follow_up=self.follow_up,
        )
        return {
            "truth": item.label,
            "prediction": d["answer"]["label"] or "unmapped",
            "tokens": d.pop("tokens"),
            "dialogue": d,
        }

    @staticmethod
    def summary_extra(records: list[Record]) -> dict:
        dialogues = [r.dialogue for r in records]
        rows = [d["answer_by_round"] for d in dialogues if d.get("answer_by_round")]
        out = {
            "answered_by_eyes": sum(d["stopped_after"] == 0 for d in dialogues),
            "stopped_early": sum(bool(d["stopped_after"]) for d in dialogues),
            "fallback_rounds": sum(bool(x["fallback"]) for d in dialogues for x in d["rounds"]),
            "mean_rounds": sum(len(d["rounds"]) for d in dialogues) / len(records),
            "probe_s_mean": sum(d["probe_s"] for d in dialogues) / len(records),
        }
        if rows and len(rows) == len(records):
            truth = [r.truth for r in records]
            n_rounds = len(rows[0])
            out["accuracy_by_round"] = [
                sum(row[k] == t for row, t in zip(rows, truth, strict=True)) / len(rows)
                for k in range(n_rounds)
            ]
        if dialogues and dialogues[0]["mode"] == "open":
            out["mapping_rules"] = dict(Counter(d["answer"]["rule"] for d in dialogues))
        return out


class PixelTask:
    """`eval pixels`: one MNIST test digit → one record."""

    name = "pixels"

    @property
    def sequential(self) -> bool:
        """`feedback` shows the model its earlier answers: items cannot run side by side."""
        return getattr(self.method, "sequential", False)

    def __init__(self, dataset, method, *, dataset_name: str = "mnist"):
        self.dataset, self.method, self.dataset_name = dataset, method, dataset_name

    def config(self) -> dict:
        return {"task": self.name, "dataset": self.dataset_name, **self.method.config()}

    def resume(self, records: list[Record]) -> None:
        self.method.resume(records)

    def __call__(self, index: int) -> dict:
        item = self.dataset.item(index)
        grid = to_grid(self.dataset.array(index))
        p = self.method.predict(grid, item.label)
        rec = {
            "truth": item.label,
            "prediction": p.prediction,
            "tokens": p.tokens,
            "examples": p.examples,
            "transcript": p.transcript,
        }
        if isinstance(self.method, Prompter):
            rec["question"] = self.method.question(grid)
        return rec
