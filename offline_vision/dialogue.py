"""CLIP × LLM dialogue: the LLM proposes candidate labels, the scorer (its eyes) answers with
probabilities over exactly those candidates, for a few rounds; then the LLM answers one label.

Policies: `seed` follows the post (fixed rounds, then the answer). `adaptive` adds the authors'
fixes: broader questions after flat scores, an early stop when the LLM's guess and the eyes agree
confidently or when it only repeats what it already asked, a final answer in the label format
(one of the label set when it is known, one of the labels it asked about when it is not), and a
last look at the eyes' scores over those answer options.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

from offline_vision.dialogue_prompts import (
    BACKOFF,
    BROAD_FALLBACK,
    CHECK,
    CHECK_OPEN,
    FINAL_KNOWN,
    FINAL_OPEN,
    FIRST,
    NARROW,
    NEXT,
    OPEN_ANSWER_SCHEMA,
    PROBE_KNOWN,
    PROBE_OPEN,
    REPEAT,
    ROUND_SCHEMA,
    SYSTEM,
    TASK_KNOWN,
    TASK_OPEN,
)
from offline_vision.errors import BadInput, ReasonerError
from offline_vision.labelmap import calibrate_threshold, map_answer, normalise

POLICIES = ("seed", "adaptive")


@dataclass(frozen=True)
class DialogueConfig:
    policy: str = "seed"
    rounds: int = 5
    flat_entropy: float = 0.9  # normalised entropy at or above which scores count as flat
    flat_margin: float = 0.1  # … or a top-2 margin at or below this
    stop_prob: float = 0.8  # adaptive: stop when the guess is the top candidate at ≥ this
    stop_on_repeat: bool = True  # adaptive: stop when a round asks nothing new
    check_labels: bool = True  # adaptive, known labels: show the eyes' scores over the options
    # Adaptive, known labels — when not to ask at all: the eyes' top option at ≥ trust is the
    # answer (1.0: always ask). Chosen by benchmarks/dialogue_trust.py on the 632 CIFAR-10
    # images outside cifar10-300 with ConSE and the default GGUF: at every trust that asks the
    # LLM at all it lost more answers than it won (0.2: asked 8, lost 1; 0.5: asked 211, won
    # 12, lost 20), so the default is the highest trust that cost nothing there.
    trust: float = 0.15
    # Final answer constrained to the eyes' top-k options (0: all labels; open labels: all the
    # labels asked about).
    shortlist: int = 3
    probe: bool = True  # ask "if you had to answer now" after each round (for accuracy-by-round)
    round_tokens: int = 96

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise BadInput(f"unknown policy {self.policy!r}; use one of {', '.join(POLICIES)}")
        if not 1 <= self.rounds <= 20:
            raise BadInput("--rounds must be between 1 and 20")
        if not 0.0 <= self.trust <= 1.0:
            raise BadInput("--trust must be between 0 and 1")
        if self.shortlist < 0:
            raise BadInput("--shortlist must be 0 (all labels) or more")


def format_scores(scores: list[tuple[str, float]]) -> str:
    """Highest first, one a line — the models read sorted lists far better than unsorted."""
    return "\n".join(f"  {label}: {p:.1%}" for label, p in scores)


def flatness(probs: list[float]) -> tuple[float, float]:
    """(normalised entropy, top-2 margin) of one round's probabilities."""
    n = len(probs)
    h = -sum(p * math.log(p) for p in probs if p > 0)
    top = sorted(probs, reverse=True)
    return (h / math.log(n) if n > 1 else 0.0), (top[0] - top[1] if n > 1 else 1.0)


def clean_candidates(raw: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for c in raw:
        c = " ".join(str(c).split())[:40]
        if c and c.lower() not in seen:
            seen[c.lower()] = c
    return list(seen.values())[:8]


class Eyes:
    """The scorer bound to one image: embedded once, then any candidate list → sorted probs."""

    def __init__(self, scorer, image, templates=None):
        self.scorer = scorer
        self.embedding = scorer.encode_images([image])
        self.templates = tuple(templates or scorer.default_templates("custom"))

    def score(self, candidates: list[str], templates=None) -> list[tuple[str, float]]:
        label_emb = self.scorer.encode_labels(candidates, tuple(templates or self.templates))
        probs = self.scorer.probabilities(self.embedding, label_emb)[0]
        return sorted(zip(candidates, map(float, probs), strict=True), key=lambda x: -x[1])


_CALIBRATIONS: dict[str, dict] = {}


def _text_embedder(scorer):
    """Plain texts → the scorer's text embeddings (through its cache), for answer mapping."""
    return lambda texts: scorer.encode_labels(texts, ("{}",))


def map_calibration(scorer) -> dict:
    """The open-answer embedding threshold for this scorer's text embedder (once a process)."""
    key = scorer.text_model_key
    if key not in _CALIBRATIONS:
        _CALIBRATIONS[key] = calibrate_threshold(_text_embedder(scorer))
    return _CALIBRATIONS[key]


def _mapped(raw: str, labels, known: bool, label_set, scorer) -> dict:
    if known:
        return {"raw": raw, "label": raw, "rule": "choice"}
    m = map_answer(
        raw,
        list(labels),
        label_set=label_set,
        embed=_text_embedder(scorer),
        threshold=map_calibration(scorer)["threshold"],
    )
    return {"raw": raw, "label": m.label, "rule": m.rule, "score": m.score}


def run_dialogue(
    image,
    scorer,
    reasoner,
    labels: list[str],
    *,
    known: bool = True,
    label_set: str | None = None,
    config: DialogueConfig = DialogueConfig(),
    seed: int = 0,
) -> dict:
    """One dialogue about one image; returns its full, JSON-ready transcript."""
    cfg, policy = config, config.policy
    eyes = Eyes(scorer, image)
    label_list = ", ".join(labels)
    task = TASK_KNOWN.format(labels=label_list) if known else TASK_OPEN
    messages = [
        {"role": "system", "content": SYSTEM.format(task=task)},
        {"role": "user", "content": FIRST[policy].format(rounds=cfg.rounds)},
    ]
    rounds, probes, calls = [], [], []
    probe_s, stopped = 0.0, None

    def ask(msgs, kind, r, **kw):
        c = reasoner.complete(msgs, seed=seed, **kw)
        u = c.usage
        calls.append(
            {
                "kind": kind,
                "round": r,
                "prompt": u.prompt_tokens,
                "evaluated": u.evaluated_prompt_tokens,
                "completion": u.completion_tokens,
                "latency_s": round(c.latency_s, 4),
                "attempts": len(c.attempts),
            }
        )
        return c

    def answer(msgs, kind, r, options=None):
        if known or options:
            c = ask(msgs, kind, r, choices=list(options or labels), max_tokens=16)
            return c.text, c.value
        if policy == "adaptive":  # the one-label fix, for free answers too
            c = ask(msgs, kind, r, schema=OPEN_ANSWER_SCHEMA, max_tokens=32)
            return c.text, c.value["label"]
        c = ask(msgs, kind, r, max_tokens=32)
        return c.text, c.text

    gated = known and policy == "adaptive"
    options = (
        eyes.score(list(labels), scorer.default_templates(label_set or "custom")) if gated else []
    )
    if gated and options[0][1] >= cfg.trust:
        # The eyes are confident over the label set itself: the answer is theirs, and the LLM
        # is not asked (the "decide when to stop asking" fix, taken to round 0).
        top = options[0][0]
        return _transcript(
            known,
            policy,
            cfg,
            rounds=[],
            stopped=0,
            result={"raw": top, "label": top, "rule": "eyes", "eyes_top": round(options[0][1], 5)},
            by_round=[top] * cfg.rounds,
            probes=[],
            probe_s=0.0,
            calls=calls,
            messages=messages,
        )

    # What the answer may be: the eyes' top-k labels (adaptive) or all of them; and the eyes'
    # scores over those, shown before every answer.
    shown = options[: cfg.shortlist] if gated and cfg.shortlist else options
    final_options = [lab for lab, _ in shown] if gated and cfg.shortlist else None
    check = CHECK.format(scores=format_scores(shown)) if gated and cfg.check_labels else ""

    asked: dict[str, str] = {}  # every label asked about, normalised → as first asked
    narrowed: set[str] = set()  # leaders the dialogue narrowed down from (then asked below)
    pending = ""  # the leader the last round was told to narrow down from

    def open_check() -> tuple[list[str] | None, str]:
        """Open labels, adaptive: the eyes over everything asked so far → (options, message)."""
        if known or policy != "adaptive":
            return final_options, check
        # A label the dialogue narrowed down from is an ancestor of later ones: not an answer.
        scored = eyes.score(list(asked.values()))
        pool = [x for x in scored if normalise(x[0]) not in narrowed] or scored
        pool = pool[: cfg.shortlist] if cfg.shortlist else pool
        return [lab for lab, _ in pool], CHECK_OPEN.format(scores=format_scores(pool))

    def propose(r):
        """One round's (candidates, raw reply, guess, fallback reason)."""
        raw = ""
        try:
            c = ask(messages, "round", r, schema=ROUND_SCHEMA[policy], max_tokens=cfg.round_tokens)
            raw = c.text
            candidates = clean_candidates(c.value["candidates"])
            if len(candidates) < 2:
                raise ReasonerError(f"fewer than 2 distinct candidates in {c.text!r}")
            return candidates, raw, c.value.get("guess"), None
        except ReasonerError as e:
            return list(BROAD_FALLBACK), raw, None, str(e)

    def is_new(label: str) -> bool:
        return normalise(label) not in asked

    scores: list[tuple[str, float]] = []
    for r in range(1, cfg.rounds + 1):
        candidates, raw, guess, fallback = propose(r)
        entry = {"round": r, "fallback": fallback, "raw": raw, "guess": guess}
        if policy == "adaptive" and not fallback and not any(map(is_new, candidates)):
            # Every label was asked before: one more turn, asking for new ones.
            messages.append({"role": "assistant", "content": raw})
            messages.append({"role": "user", "content": REPEAT})
            entry["repeated"] = raw
            candidates, raw, guess, fallback = propose(r)
            entry.update(fallback=fallback, raw=raw, guess=guess)
        messages.append({"role": "assistant", "content": raw or '{"candidates": []}'})
        repeat = not any(map(is_new, candidates))
        if pending and not repeat:
            narrowed.add(pending)
        for c in candidates:
            asked.setdefault(normalise(c), c)
        scores = eyes.score(candidates)
        entropy, margin = flatness([p for _, p in scores])
        flat = entropy >= cfg.flat_entropy or margin <= cfg.flat_margin
        entry.update(
            candidates=candidates,
            scores=[[lab, round(p, 5)] for lab, p in scores],
            entropy=round(entropy, 4),
            margin=round(margin, 4),
            flat=flat,
            repeat=repeat,
        )
        rounds.append(entry)
        if cfg.probe and r < cfg.rounds:
            t = time.perf_counter()
            tmpl = PROBE_KNOWN[policy] if known else PROBE_OPEN[policy]
            opts, chk = open_check()
            prompt = tmpl.format(scores=format_scores(scores), check=chk, labels=label_list)
            raw, value = answer([*messages, {"role": "user", "content": prompt}], "probe", r, opts)
            probes.append({"round": r, **_mapped(value, labels, known, label_set, scorer)})
            probe_s += time.perf_counter() - t
        if (
            policy == "adaptive"
            and guess
            and normalise(guess) == normalise(scores[0][0])
            and scores[0][1] >= cfg.stop_prob
            and (not known or guess in labels)
        ):
            stopped = r
            break
        if policy == "adaptive" and repeat and cfg.stop_on_repeat:
            stopped = r  # nothing new was asked: more rounds would not tell the LLM more
            break
        if r < cfg.rounds:
            advice, pending = "", ""
            if policy == "adaptive" and flat:
                advice = BACKOFF
            elif policy == "adaptive":
                advice, pending = NARROW.format(top=scores[0][0]), normalise(scores[0][0])
            messages.append(
                {
                    "role": "user",
                    "content": NEXT[policy].format(
                        scores=format_scores(scores), r=r + 1, rounds=cfg.rounds, advice=advice
                    ),
                }
            )

    opts, chk = open_check()
    final = (FINAL_KNOWN if known else FINAL_OPEN)[policy].format(
        scores=format_scores(scores), check=chk, labels=label_list
    )
    messages.append({"role": "user", "content": final})
    raw, value = answer(messages, "answer", len(rounds), opts)
    messages.append({"role": "assistant", "content": raw})
    result = _mapped(value, labels, known, label_set, scorer)
    # Accuracy-by-round: the probe after each round; after an early stop, the final answer.
    by_round = [p["label"] for p in probes] + [result["label"]] * (cfg.rounds - len(probes))
    return _transcript(
        known,
        policy,
        cfg,
        rounds=rounds,
        stopped=stopped,
        result=result,
        by_round=by_round,
        probes=probes,
        probe_s=probe_s,
        calls=calls,
        messages=messages,
    )


def _transcript(
    known, policy, cfg, *, rounds, stopped, result, by_round, probes, probe_s, calls, messages
) -> dict:
    return {
        "mode": "known" if known else "open",
        "policy": policy,
        "rounds": rounds,
        "stopped_after": stopped,
        "answer": result,
        "answer_by_round": by_round if cfg.probe else None,
        "probes": probes,
        "probe_s": round(probe_s, 4),
        "tokens": {
            "prompt": sum(c["prompt"] for c in calls),
            "completion": sum(c["completion"] for c in calls),
            "evaluated": sum(c["evaluated"] or 0 for c in calls),
        },
        "calls": calls,
        "messages": messages,
        "config": asdict(cfg),
    }
