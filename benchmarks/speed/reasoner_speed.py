"""Local LLM speed, both default GGUFs, same threads, one run → JSON.

Per model (each in its own process, so peak RSS is its own): load time, prompt tok/s, generation
tok/s, time to first token; a 5-turn conversation adding ~60 tokens a turn with and without
prefix reuse (tokens llama.cpp actually evaluated per turn, wall time); the same conversation
through llama-cpp-python's OpenAI-compatible server on 127.0.0.1 (the hosted path's overhead).

    python -m benchmarks.speed.reasoner_speed [--threads 2]  →  benchmarks/results/reasoner_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from benchmarks.common import llama_server, peak_rss_mb, write
from offline_vision.config import Settings
from offline_vision.models.provision import registry, store

SYSTEM = "You are the reasoning half of an image classifier; a vision model scores your labels."
# Each turn adds a user message of roughly 60 tokens (plus the previous short reply).
TURN = (
    "Round {i}. The vision model scored your candidates: vehicle 41.2%, animal 30.5%, "
    "household object 12.1%, plant 9.8%, landscape 6.4%. The scores are fairly flat, so "
    "propose between two and five broader or more distinctive labels to ask about next."
)
SCHEMA = {
    "type": "object",
    "properties": {
        "candidates": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 5}
    },
    "required": ["candidates"],
}
LONG_PROMPT = "Describe, in general terms, how a camera turns light into a digital image. " * 24


def conversation(reasoner, reuse: bool) -> list[dict]:
    """5 turns; without reuse the KV cache is cleared before each turn."""
    messages = [{"role": "system", "content": SYSTEM}]
    turns, prev_prompt = [], None
    for i in range(1, 6):
        messages.append({"role": "user", "content": TURN.format(i=i)})
        if not reuse and hasattr(reasoner, "llm"):
            reasoner.llm.reset()
        t = time.perf_counter()
        c = reasoner.complete(messages, schema=SCHEMA, max_tokens=48)
        wall = time.perf_counter() - t
        new = (
            c.usage.prompt_tokens - prev_prompt
            if prev_prompt is not None
            else c.usage.prompt_tokens
        )
        turns.append(
            {
                "turn": i,
                "prompt_tokens": c.usage.prompt_tokens,
                "new_tokens": new,
                "evaluated_prompt_tokens": c.usage.evaluated_prompt_tokens,
                "completion_tokens": c.usage.completion_tokens,
                "wall_s": wall,
            }
        )
        prev_prompt = c.usage.prompt_tokens
        messages.append({"role": "assistant", "content": c.text})
    return turns


def child(name: str, threads: int) -> dict:
    from offline_vision.models.reasoners import load_reasoner

    settings = Settings.from_env(threads=threads)
    r = load_reasoner(settings, f"local:{name}")
    r.verify()
    t = time.perf_counter()
    llm = r.llm
    load_s = time.perf_counter() - t
    llm.create_chat_completion([{"role": "user", "content": "hi"}], max_tokens=1)  # warm up

    # Prompt processing from an empty cache, then generation (free text, greedy).
    llm.reset()
    import llama_cpp

    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    t0 = time.perf_counter()
    first = None
    n_chunks = 0
    for chunk in llm.create_chat_completion(
        [{"role": "user", "content": LONG_PROMPT + "\nList twenty animals, one per line."}],
        max_tokens=128,
        temperature=0.0,
        stream=True,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            n_chunks += 1
            if first is None:
                first = time.perf_counter() - t0
    perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
    speed = {
        "prompt_tokens": perf.n_p_eval,
        "prompt_tok_per_s": perf.n_p_eval / (perf.t_p_eval_ms / 1e3),
        "generated_tokens": perf.n_eval,
        "generation_tok_per_s": perf.n_eval / (perf.t_eval_ms / 1e3),
        "time_to_first_token_s": first,
    }
    return {
        "model": name,
        "sha256": r.verify(),
        "load_s": load_s,
        **speed,
        "conversation_with_reuse": conversation(r, reuse=True),
        "conversation_without_reuse": conversation(r, reuse=False),
    }


def through_server(name: str, threads: int) -> dict:
    from offline_vision.models.reasoners.openai_compat import OpenAICompatReasoner

    gguf = store.load(Settings.from_env().models_dir, name).file("model.gguf")
    with llama_server(gguf, threads) as url:
        r = OpenAICompatReasoner("served", base_url=url)
        r.complete([{"role": "user", "content": "hi"}], max_tokens=1)
        return {
            "model": name,
            "conversation": conversation(r, reuse=True),
            "constraint_mode": r.describe()["constraint_mode"],
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads)))
        return
    settings = Settings.from_env()
    models = {}
    for name in (registry.GGUF, registry.GGUF_FAST):
        store.load(settings.models_dir, name)
        _wall, rss, out = peak_rss_mb(
            [
                sys.executable,
                "-m",
                "benchmarks.speed.reasoner_speed",
                "--child",
                name,
                "--threads",
                str(args.threads),
            ],
            dict(os.environ),
        )
        models[name] = {**json.loads(out), "peak_rss_mb": rss}
    for m in models.values():
        w, wo = m["conversation_with_reuse"], m["conversation_without_reuse"]
        m["summary"] = {
            "turns_2_5_evaluated_over_new": [
                t["evaluated_prompt_tokens"] / t["new_tokens"] for t in w[1:]
            ],
            "turns_2_5_evaluated_without_reuse": [t["evaluated_prompt_tokens"] for t in wo[1:]],
            "wall_s_with_reuse": sum(t["wall_s"] for t in w),
            "wall_s_without_reuse": sum(t["wall_s"] for t in wo),
        }
    server = through_server(registry.GGUF_FAST, args.threads)
    local_fast = models[registry.GGUF_FAST]["summary"]["wall_s_with_reuse"]
    server["wall_s"] = sum(t["wall_s"] for t in server["conversation"])
    server["wall_over_local_in_process"] = server["wall_s"] / local_fast
    result = {"threads": args.threads, "models": models, "server_0.5b": server}
    for name, m in models.items():
        print(
            name,
            json.dumps(
                {
                    k: m[k]
                    for k in (
                        "load_s",
                        "prompt_tok_per_s",
                        "generation_tok_per_s",
                        "time_to_first_token_s",
                        "peak_rss_mb",
                        "summary",
                    )
                }
            ),
        )
    print("server", server["wall_s"], server["wall_over_local_in_process"])
    print("wrote", write("reasoner_speed", result))


if __name__ == "__main__":
    main()
