"""Deterministic pixel-prompting runs for the refactor lock: every LLM strategy on a few MNIST
digits with a scripted reasoner whose answer is a pure function of what it is shown."""

from __future__ import annotations

import hashlib
import json

from offline_vision.eval.datasets import Mnist
from offline_vision.models.reasoners.scripted import ScriptedReasoner
from offline_vision.pixels import Pool, Prompter, to_grid


def answer(messages, choices, schema) -> str:
    h = int(hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:8], 16)
    return choices[h % len(choices)] if choices else str(h % 10)


def transcripts(data_dir) -> list[dict]:
    train, test = Mnist(data_dir / "mnist", "train"), Mnist(data_dir / "mnist", "test")
    pool = Pool.from_arrays(train.images[:300], train.labels[:300])
    out = []
    for strategy in ("seed", "zero-shot", "few-shot", "retrieved", "feedback"):
        for encoding in ("digits", "ascii"):
            p = Prompter(
                ScriptedReasoner(answer),
                strategy,
                encoding=encoding,
                shots=3,
                pool=pool,
                budget_tokens=900,
            )
            run = {"strategy": strategy, "encoding": encoding, "config": p.config(), "items": []}
            for i in range(8):
                pred = p.predict(to_grid(test.array(i)), str(test.labels[i]))
                run["items"].append(
                    {
                        "prediction": pred.prediction,
                        "transcript": pred.transcript,
                        "examples": pred.examples,
                        "question": p.question(to_grid(test.array(i))),
                    }
                )
            run["config"]["reasoner"] = None
            out.append(run)
    return out


if __name__ == "__main__":
    # Rewrites the lock that tests/test_pixels_replay.py compares with. Only for a change of
    # behaviour that is meant, named in its commit (the MNIST files are read from
    # OVISION_DATA, else ../shared/data):  .venv/bin/python tests/pixels_replay.py
    import os
    from pathlib import Path

    here = Path(__file__).resolve().parent
    data = Path(os.environ.get("OVISION_DATA") or here.parents[1] / "shared" / "data")
    (here / "data" / "pixels_transcripts.json").write_text(
        json.dumps(transcripts(data), sort_keys=True)
    )
