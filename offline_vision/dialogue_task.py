"""`ovision eval dialogue|dialogue-open`: one image → one dialogue → one runner record."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

from offline_vision.dialogue import DialogueConfig, map_calibration, run_dialogue


class DialogueTask:
    """`eval dialogue` / `eval dialogue-open`: one image → one dialogue → one record."""

    name = "dialogue"

    def __init__(
        self, dataset, scorer, reasoner, *, known: bool, config: DialogueConfig, seed: int = 0
    ):
        self.dataset, self.scorer, self.reasoner = dataset, scorer, reasoner
        self.known, self.config_, self.seed = known, config, seed
        self.labels = list(dataset.classes)

    def config(self) -> dict:
        return {
            "task": "dialogue" if self.known else "dialogue-open",
            "dataset": self.dataset.name,
            "mode": "known" if self.known else "open",
            "policy": self.config_.policy,
            "dialogue": asdict(self.config_),
            "labels": self.labels,
            "seed": self.seed,
            "scorer": self.scorer.describe(),
            "reasoner": self.reasoner.describe(),
            **({} if self.known else {"open_map": map_calibration(self.scorer)}),
        }

    def resume(self, records: list[dict]) -> None:
        pass

    def __call__(self, index: int) -> dict:
        item = self.dataset.item(index)
        d = run_dialogue(
            self.dataset.image(index),
            self.scorer,
            self.reasoner,
            self.labels,
            known=self.known,
            label_set=self.dataset.name,
            config=self.config_,
            seed=self.seed,
        )
        return {
            "truth": item.label,
            "prediction": d["answer"]["label"] or "unmapped",
            "tokens": d.pop("tokens"),
            "dialogue": d,
        }

    @staticmethod
    def summary_extra(records: list[dict]) -> dict:
        rows = [
            r["dialogue"]["answer_by_round"]
            for r in records
            if r["dialogue"].get("answer_by_round")
        ]
        out = {
            "answered_by_eyes": sum(r["dialogue"]["stopped_after"] == 0 for r in records),
            "stopped_early": sum(bool(r["dialogue"]["stopped_after"]) for r in records),
            "fallback_rounds": sum(
                bool(x["fallback"]) for r in records for x in r["dialogue"]["rounds"]
            ),
            "mean_rounds": sum(len(r["dialogue"]["rounds"]) for r in records) / len(records),
            "probe_s_mean": sum(r["dialogue"]["probe_s"] for r in records) / len(records),
        }
        if rows and len(rows) == len(records):
            truth = [r["truth"] for r in records]
            n_rounds = len(rows[0])
            out["accuracy_by_round"] = [
                sum(row[k] == t for row, t in zip(rows, truth, strict=True)) / len(rows)
                for k in range(n_rounds)
            ]
        if records and records[0]["dialogue"]["mode"] == "open":
            out["mapping_rules"] = dict(Counter(r["dialogue"]["answer"]["rule"] for r in records))
        return out
