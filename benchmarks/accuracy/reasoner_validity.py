"""Answer validity: can the LLM read a score table and name one label?

50 synthetic tables (the 10 CIFAR-10 labels, shuffled, Dirichlet probabilities; seeded). For each
reasoner: with `choices` (constrained) the share of answers that are a listed label, and how often
the answer is the top-scored label with scores sorted (highest first) vs unsorted; without
constraints, the share of free answers that are exactly a label (the failure the seed post saw).

    python -m benchmarks.accuracy.reasoner_validity  →  benchmarks/results/reasoner_validity.json
"""

from __future__ import annotations

import json
import time

import numpy as np

from benchmarks.common import llama_server, write
from offline_vision.config import Settings
from offline_vision.labels.sets import CIFAR10
from offline_vision.models.provision import registry, store
from offline_vision.models.reasoners import load_reasoner
from offline_vision.models.reasoners.base import match_choice

N_TABLES = 50
PROMPT = (
    "An image classifier looked at a photo and gave these probabilities:\n{table}\n"
    "Which label is the photo? Answer with the label only."
)


def tables(seed: int = 0) -> list[list[tuple[str, float]]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_TABLES):
        labels = list(rng.permutation(CIFAR10))
        probs = rng.dirichlet(np.full(10, 0.5))
        out.append([(lab, float(p)) for lab, p in zip(labels, probs, strict=True)])
    return out


def render(table, sort: bool) -> str:
    rows = sorted(table, key=lambda x: -x[1]) if sort else table
    return "\n".join(f"{lab}: {p:.1%}" for lab, p in rows)


def evaluate(reasoner, data) -> dict:
    out = {}
    for sort in (True, False):
        valid = top = free_valid = 0
        t = time.perf_counter()
        for table in data:
            best = max(table, key=lambda x: x[1])[0]
            msg = [{"role": "user", "content": PROMPT.format(table=render(table, sort))}]
            c = reasoner.complete(msg, choices=list(CIFAR10), max_tokens=8)
            valid += c.value in CIFAR10
            top += c.value == best
            free = reasoner.complete(msg, max_tokens=24)  # unconstrained, for comparison
            free_valid += (
                free.text.strip() in CIFAR10 or match_choice(free.text, CIFAR10) is not None
            )
        key = "sorted" if sort else "unsorted"
        out[key] = {
            "valid_with_choices": valid / len(data),
            "top_label_with_choices": top / len(data),
            "free_answer_is_a_label": free_valid / len(data),
            "seconds": time.perf_counter() - t,
        }
    return out


def main() -> None:
    settings = Settings.from_env()
    data = tables()
    result = {"tables": N_TABLES, "prompt": PROMPT, "reasoners": {}}
    for name in (registry.GGUF, registry.GGUF_FAST):
        result["reasoners"][f"local:{name}"] = evaluate(
            load_reasoner(settings, f"local:{name}"), data
        )
        print(name, json.dumps(result["reasoners"][f"local:{name}"]))

    from offline_vision.models.reasoners.openai_compat import OpenAICompatReasoner

    gguf = store.load(settings.models_dir, registry.GGUF_FAST).file("model.gguf")
    with llama_server(gguf, settings.threads, n_ctx=4096) as url:
        key = f"openai:{registry.GGUF_FAST} via llama_cpp.server"
        result["reasoners"][key] = evaluate(OpenAICompatReasoner("served", base_url=url), data)
        print(key, json.dumps(result["reasoners"][key]))
    print("wrote", write("reasoner_validity", result))


if __name__ == "__main__":
    main()
