"""One dialogue: its state (the messages, the rounds, what was asked) and its steps;
`run_dialogue` is the loop over them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, cast

from offline_vision.dialogue.config import POLICY, DialogueConfig
from offline_vision.dialogue.eyes import Eyes, Shortlist, flatness, format_scores, mapped
from offline_vision.errors import BadInput, ReasonerError
from offline_vision.labels.answers import normalise
from offline_vision.labels.sets import LabelSet
from offline_vision.models.reasoners.base import Reasoner
from offline_vision.models.scorer import Scorer
from offline_vision.prompts import (
    BACKOFF,
    BROAD_FALLBACK,
    CHECK_OPEN,
    NARROW,
    OPEN_ANSWER_SCHEMA,
    REPEAT,
    SYSTEM,
    TASK_KNOWN,
    TASK_OPEN,
)


def clean_candidates(raw: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for c in raw:
        c = " ".join(str(c).split())[:40]
        if c and c.lower() not in seen:
            seen[c.lower()] = c
    return list(seen.values())[:8]


class Dialogue:
    """One dialogue's state and its steps."""

    def __init__(self, image, scorer: Scorer, reasoner: Reasoner, labels: LabelSet, *,
                 config: DialogueConfig, sampling_seed: int, follow_up=None):  # fmt: skip
        self.cfg, self.policy = config, POLICY[config.policy]
        self.say = self.policy.prompts
        if config.end != "llm" and not labels.known:
            raise BadInput(f"--end {config.end} needs a known label set (not --open)")
        if config.end == "follow-up" and follow_up is None:
            raise BadInput("--end follow-up needs a reasoner to write differential descriptions")
        self.follow_up, self.scorer, self.reasoner = follow_up, scorer, reasoner
        self.labels, self.known, self.sampling_seed = labels, labels.known, sampling_seed
        self.eyes = Eyes(scorer, image, names=labels.names)
        self.label_list = ", ".join(labels.labels)
        task = TASK_KNOWN.format(labels=self.label_list) if self.known else TASK_OPEN
        self.messages = [
            {"role": "system", "content": SYSTEM.format(task=task)},
            {"role": "user", "content": self.say.first.format(rounds=config.rounds)},
        ]
        self.rounds: list[dict] = []
        self.probes: list[dict] = []
        self.calls: list[dict] = []
        self.probe_s, self.stopped = 0.0, cast(int | None, None)
        self.asked: dict[str, str] = {}  # every label asked about, normalised → as first asked
        self.narrowed: set[str] = set()  # leaders narrowed down from (then asked below)
        self.pending = ""  # the leader the last round was told to narrow down from
        self.scores: list[tuple[str, float]] = []
        gated = self.known and self.policy.fixes
        self.shortlist = Shortlist.of(
            self.eyes, labels, gated, config.shortlist, config.check_labels
        )

    # --- talking to the reasoner -----------------------------------------------------------

    def ask(self, msgs, kind: str, r: int, **kw):
        c = self.reasoner.complete(msgs, seed=self.sampling_seed, **kw)
        u = c.usage
        self.calls.append(
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

    def answer(self, msgs, kind: str, r: int, options=None) -> tuple[str, str]:
        """(raw reply, answer): one of `options` or the labels, else a free label."""
        if self.known or options:
            choices = list(options or self.labels.labels)
            c = self.ask(msgs, kind, r, choices=choices, max_tokens=16)
            return c.text, c.value
        if self.policy.fixes:
            c = self.ask(msgs, kind, r, schema=OPEN_ANSWER_SCHEMA, max_tokens=32)
            return c.text, c.value["label"]
        c = self.ask(msgs, kind, r, max_tokens=32)
        return c.text, c.text

    def answer_options(self) -> tuple[list[str] | None, str]:
        """What an answer may be now, and the eyes' scores over it (the check message)."""
        if self.known or not self.policy.fixes:
            return self.shortlist.answers, self.shortlist.check
        # A label the dialogue narrowed down from is an ancestor of later ones: not an answer.
        scored = self.eyes.score(list(self.asked.values()))
        pool = [x for x in scored if normalise(x[0]) not in self.narrowed] or scored
        pool = pool[: self.cfg.shortlist] if self.cfg.shortlist else pool
        return [lab for lab, _ in pool], CHECK_OPEN.format(scores=format_scores(pool))

    def propose(self, r: int) -> tuple[list[str], str, str | None, str | None]:
        """One round's (candidates, raw reply, guess, fallback reason)."""
        raw = ""
        try:
            schema, tokens = self.say.round_schema, self.cfg.round_tokens
            c = self.ask(self.messages, "round", r, schema=schema, max_tokens=tokens)
            raw = c.text
            candidates = clean_candidates(c.value["candidates"])
            if len(candidates) < 2:
                raise ReasonerError(f"fewer than 2 distinct candidates in {c.text!r}")
            return candidates, raw, c.value.get("guess"), None
        except ReasonerError as e:
            return list(BROAD_FALLBACK), raw, None, str(e)

    def is_new(self, label: str) -> bool:
        return normalise(label) not in self.asked

    # --- the steps ---------------------------------------------------------------------------

    def eyes_are_sure(self) -> bool:
        return self.shortlist.gated and self.shortlist.options[0][1] >= self.cfg.trust

    def eyes_answer(self) -> dict:
        """The eyes' top label as the answer; the LLM is not asked (the stop, at round 0)."""
        top, p = self.shortlist.options[0]
        result = {"raw": top, "label": top, "rule": "eyes", "eyes_top": round(p, 5)}
        self.stopped = 0
        return self.transcript(result, [top] * self.cfg.rounds)

    def play_round(self, r: int) -> dict:
        """Ask for candidates (once more if they only repeat), let the eyes score them."""
        candidates, raw, guess, fallback = self.propose(r)
        entry: dict[str, Any] = {"round": r, "fallback": fallback, "raw": raw, "guess": guess}
        if self.policy.fixes and not fallback and not any(map(self.is_new, candidates)):
            self.messages.append({"role": "assistant", "content": raw})
            self.messages.append({"role": "user", "content": REPEAT})
            entry["repeated"] = raw
            candidates, raw, guess, fallback = self.propose(r)
            entry.update(fallback=fallback, raw=raw, guess=guess)
        self.messages.append({"role": "assistant", "content": raw or '{"candidates": []}'})
        repeat = not any(map(self.is_new, candidates))
        if self.pending and not repeat:
            self.narrowed.add(self.pending)
        for c in candidates:
            self.asked.setdefault(normalise(c), c)
        self.scores = self.eyes.score(candidates)
        entropy, margin = flatness([p for _, p in self.scores])
        entry.update(
            candidates=candidates,
            scores=[[lab, round(p, 5)] for lab, p in self.scores],
            entropy=round(entropy, 4),
            margin=round(margin, 4),
            flat=entropy >= self.cfg.flat_entropy or margin <= self.cfg.flat_margin,
            repeat=repeat,
        )
        self.rounds.append(entry)
        return entry

    def probe(self, r: int) -> None:
        """ "If you had to answer now": feeds accuracy-by-round, not the dialogue itself."""
        t = time.perf_counter()
        tmpl = self.say.probe_known if self.known else self.say.probe_open
        opts, chk = self.answer_options()
        prompt = tmpl.format(scores=format_scores(self.scores), check=chk, labels=self.label_list)
        _raw, value = self.answer(
            [*self.messages, {"role": "user", "content": prompt}], "probe", r, opts
        )
        self.probes.append({"round": r, **self.mapped(value)})
        self.probe_s += time.perf_counter() - t

    def should_stop(self, entry: dict) -> bool:
        if not self.policy.fixes:
            return False
        guess, (top, p) = entry["guess"], self.scores[0]
        agreed = (
            guess
            and normalise(guess) == normalise(top)
            and p >= self.cfg.stop_prob
            and (not self.known or guess in self.labels.labels)
        )
        # … or nothing new was asked: more rounds would not tell the LLM more.
        return bool(agreed) or (entry["repeat"] and self.cfg.stop_on_repeat)

    def advise(self, r: int, entry: dict) -> None:
        """The scores, and where to go next: back off if flat, narrow down if not."""
        advice, self.pending = "", ""
        if self.policy.fixes and entry["flat"]:
            advice = BACKOFF
        elif self.policy.fixes:
            top = self.scores[0][0]
            advice, self.pending = NARROW.format(top=top), normalise(top)
        content = self.say.next.format(
            scores=format_scores(self.scores), r=r + 1, rounds=self.cfg.rounds, advice=advice
        )
        self.messages.append({"role": "user", "content": content})

    def finish(self) -> dict:
        """The final answer, mapped to a label; accuracy-by-round filled from the probes."""
        if self.cfg.end == "follow-up":
            return self.finish_in_eyes()
        opts, chk = self.answer_options()
        final = (self.say.final_known if self.known else self.say.final_open).format(
            scores=format_scores(self.scores), check=chk, labels=self.label_list
        )
        self.messages.append({"role": "user", "content": final})
        fused = self.fuse(opts) if self.cfg.end == "fusion" else None
        if fused is not None and fused["llm"] is not None:
            result = {"raw": "", "label": fused["label"], "rule": "fusion", "fusion": fused}
        else:
            raw, value = self.answer(self.messages, "answer", len(self.rounds), opts)
            self.messages.append({"role": "assistant", "content": raw})
            result = self.mapped(value)
            if fused is not None:
                result["fusion"] = fused  # said so: the reasoner gave no probabilities
        return self.answered(result)

    def answered(self, result: dict) -> dict:
        """The transcript; accuracy-by-round is the probes', then the final answer's."""
        by_round = [p["label"] for p in self.probes]
        return self.transcript(
            result, by_round + [result["label"]] * (self.cfg.rounds - len(by_round))
        )

    def finish_in_eyes(self) -> dict:
        """The eyes decide among the shortlist, with differential descriptions of it (FuDD)."""
        options = [lab for lab, _ in self.shortlist.shown]
        rec = self.follow_up.rescore(self.eyes.embedding[0], options)
        result = {"raw": "", "label": rec["prediction"], "rule": "follow-up", "follow_up": rec}
        return self.answered(result)

    def fuse(self, options) -> dict:
        """The eyes' probabilities × the LLM's own, over the shortlist (`llm` None: unavailable)."""
        eyes = dict(self.shortlist.renormalised())
        llm = self.reasoner.choice_probabilities(self.messages, list(options or eyes))
        if llm is None:
            return {"llm": None, "note": f"{self.reasoner.name} gives no token probabilities"}
        score = {lab: eyes.get(lab, 0.0) * llm.get(lab, 0.0) for lab in eyes}
        label = max(score, key=lambda lab: score[lab])
        rnd = lambda d: {k: round(v, 5) for k, v in d.items()}  # noqa: E731
        return {"label": label, "eyes": rnd(eyes), "llm": rnd(llm), "product": rnd(score)}

    def mapped(self, value: str) -> dict:
        return mapped(value, self.labels, self.scorer)

    def transcript(self, result: dict, by_round: list) -> dict:
        calls = self.calls
        return {
            "mode": "known" if self.known else "open",
            "policy": self.policy.name,
            "rounds": self.rounds,
            "stopped_after": self.stopped,
            "answer": result,
            "answer_by_round": by_round if self.cfg.probe else None,
            "probes": self.probes,
            "probe_s": round(self.probe_s, 4),
            "tokens": {
                "prompt": sum(c["prompt"] for c in calls),
                "completion": sum(c["completion"] for c in calls),
                "evaluated": sum(c["evaluated"] or 0 for c in calls),
            },
            "calls": calls,
            "messages": self.messages,
            "config": asdict(self.cfg),
        }


def as_label_set(labels: LabelSet | Sequence[str]) -> LabelSet:
    """A plain list of labels is a known, custom set."""
    return labels if isinstance(labels, LabelSet) else LabelSet("custom", tuple(labels))


def run_dialogue(
    image,
    scorer: Scorer,
    reasoner: Reasoner,
    labels: LabelSet | Sequence[str],
    *,
    config: DialogueConfig | None = None,
    sampling_seed: int = 0,
    follow_up=None,
) -> dict:
    """One dialogue about one image; returns its full, JSON-ready transcript. `labels.known`
    False: the LLM names the object (open labels); `labels.names` (a bridged set): what the eyes
    read each label by — the reasoner sees the labels. `follow_up` (a label_scoring.FollowUp)
    is what `config.end == "follow-up"` ends in; `sampling_seed` goes to the reasoner."""
    config = config or DialogueConfig()
    d = Dialogue(
        image,
        scorer,
        reasoner,
        as_label_set(labels),
        config=config,
        sampling_seed=sampling_seed,
        follow_up=follow_up,
    )
    if d.eyes_are_sure():
        return d.eyes_answer()
    for r in range(1, config.rounds + 1):
        entry = d.play_round(r)
        if config.probe and r < config.rounds:
            d.probe(r)
        if d.should_stop(entry):
            d.stopped = r
            break
        if r < config.rounds:
            d.advise(r, entry)
    return d.finish()
