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

from offline_vision.errors import BadInput, ReasonerError
from offline_vision.label_scoring import named_embeddings
from offline_vision.labelmap import calibrate_threshold, map_answer, normalise
from offline_vision.options import option
from offline_vision.prompts import (
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

POLICIES = ("seed", "adaptive")
# How an adaptive, known-label dialogue ends: the LLM names the label (`llm`); the eyes re-score
# the shortlist with differential descriptions (`follow-up`); or the eyes' probabilities times
# the LLM's own probabilities for each shortlisted label (`fusion`).
ENDS = ("llm", "follow-up", "fusion")


@dataclass(frozen=True)
class DialogueConfig:
    """The dialogue's options (each default written once; the CLI's options come from these)."""

    policy: str = option(
        "adaptive",
        "seed: the post's procedure (fixed rounds); adaptive: back-off on flat scores, narrowing "
        "down from the leader, early stop (eyes sure, agreement, nothing new asked), one-label "
        "answers.",
        choices=POLICIES,
    )
    rounds: int = option(5, "Rounds of questions at most.", lo=1, hi=20)
    # Adaptive, known labels — when not to ask at all: the eyes' top option at ≥ trust is the
    # answer (1.0: always ask). Chosen by benchmarks/accuracy/dialogue_trust.py on the 632 CIFAR-10
    # images outside cifar10-300 with ConSE and the default GGUF: at every trust that asks the
    # LLM at all it lost more answers than it won (0.2: asked 8, lost 1; 0.5: asked 211, won
    # 12, lost 20), so the default is the highest trust that cost nothing there.
    trust: float = option(
        0.15,
        "adaptive, known labels: when the eyes' top label scores at least this, answer it "
        "without asking the LLM (1 = always ask).",
        lo=0,
        hi=1,
    )
    # Final answer constrained to the eyes' top-k options (0: all labels; open labels: all the
    # labels asked about).
    shortlist: int = option(
        3,
        "adaptive: the final answer must be one of the eyes' top K options — labels of the set, "
        "or with --open the labels the LLM asked about (0 = any of them).",
        lo=0,
    )
    # Ask "if you had to answer now" after each round (for accuracy-by-round).
    probe: bool = option(
        True,
        "Skip the per-round 'answer now' probes (they feed accuracy-by-round).",
        flag="--no-probe",
    )
    end: str = option(
        "llm",
        "adaptive, known labels — who decides among the shortlist: the LLM names it; follow-up: "
        "the eyes re-score it with differential descriptions; fusion: the eyes' probabilities × "
        "the LLM's own token probabilities.",
        choices=ENDS,
    )
    flat_entropy: float = 0.9  # normalised entropy at or above which scores count as flat
    flat_margin: float = 0.1  # … or a top-2 margin at or below this
    stop_prob: float = 0.8  # adaptive: stop when the guess is the top candidate at ≥ this
    stop_on_repeat: bool = True  # adaptive: stop when a round asks nothing new
    check_labels: bool = True  # adaptive, known labels: show the eyes' scores over the options
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
        if self.end not in ENDS:
            raise BadInput(f"unknown end {self.end!r}; use one of {', '.join(ENDS)}")
        if self.end != "llm" and self.policy != "adaptive":
            raise BadInput(f"--end {self.end} needs --policy adaptive")


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

    def __init__(self, scorer, image, templates=None, names=None):
        self.scorer, self.names = scorer, names  # names: a bridged label → its English names
        self.embedding = scorer.encode_images([image])
        self.templates = tuple(templates or scorer.default_templates("custom"))

    def score(self, candidates: list[str], templates=None) -> list[tuple[str, float]]:
        tmpl = tuple(templates or self.templates)
        label_emb = named_embeddings(self.scorer, candidates, tmpl, self.names)
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


@dataclass(frozen=True)
class Policy:
    """What a policy changes — all of it, on one screen."""

    name: str
    eyes_first: bool  # known labels: the eyes answer when sure (--trust); answers shortlisted
    ask_again_on_repeat: bool  # a round that only repeats itself gets one more turn
    stop_early: bool  # stop when the guess and the eyes agree, or nothing new was asked
    advise: bool  # back off after flat scores, narrow down from a clear leader
    one_label_open_answer: bool  # open answers: constrained to one label (a JSON schema)
    check_open_answer: bool  # open answers: the eyes' scores over the labels asked so far


POLICY = {
    "seed": Policy("seed", False, False, False, False, False, False),
    "adaptive": Policy("adaptive", True, True, True, True, True, True),
}


class Dialogue:
    """One dialogue's state and its steps; `run_dialogue` is the loop over them."""

    def __init__(
        self,
        image,
        scorer,
        reasoner,
        labels,
        *,
        known,
        label_set,
        config,
        seed,
        follow_up=None,
        names=None,
    ):
        self.cfg, self.policy, self.p = config, config.policy, POLICY[config.policy]
        if config.end != "llm" and not known:
            raise BadInput(f"--end {config.end} needs a known label set (not --open)")
        if config.end == "follow-up" and follow_up is None:
            raise BadInput("--end follow-up needs a reasoner to write differential descriptions")
        self.follow_up = follow_up
        self.scorer, self.reasoner, self.labels = scorer, reasoner, list(labels)
        self.known, self.label_set, self.seed = known, label_set, seed
        self.eyes = Eyes(scorer, image, names=names)
        self.label_list = ", ".join(self.labels)
        task = TASK_KNOWN.format(labels=self.label_list) if known else TASK_OPEN
        self.messages = [
            {"role": "system", "content": SYSTEM.format(task=task)},
            {"role": "user", "content": FIRST[self.policy].format(rounds=config.rounds)},
        ]
        self.rounds, self.probes, self.calls = [], [], []
        self.probe_s, self.stopped = 0.0, None
        self.asked: dict[str, str] = {}  # every label asked about, normalised → as first asked
        self.narrowed: set[str] = set()  # leaders narrowed down from (then asked below)
        self.pending = ""  # the leader the last round was told to narrow down from
        self.scores: list[tuple[str, float]] = []
        self.gated = known and self.p.eyes_first
        templates = scorer.default_templates(label_set or "custom")
        self.options = self.eyes.score(self.labels, templates) if self.gated else []
        # What the answer may be (the eyes' top-k labels, or all), and their scores shown first.
        short = self.gated and config.shortlist
        self.shown = self.options[: config.shortlist] if short else self.options
        self.final_options = [lab for lab, _ in self.shown] if short else None
        self.check = (
            CHECK.format(scores=format_scores(self.shown))
            if self.gated and config.check_labels
            else ""
        )

    # --- talking to the reasoner -----------------------------------------------------------

    def ask(self, msgs, kind: str, r: int, **kw):
        c = self.reasoner.complete(msgs, seed=self.seed, **kw)
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
            c = self.ask(msgs, kind, r, choices=list(options or self.labels), max_tokens=16)
            return c.text, c.value
        if self.p.one_label_open_answer:
            c = self.ask(msgs, kind, r, schema=OPEN_ANSWER_SCHEMA, max_tokens=32)
            return c.text, c.value["label"]
        c = self.ask(msgs, kind, r, max_tokens=32)
        return c.text, c.text

    def answer_options(self) -> tuple[list[str] | None, str]:
        """What an answer may be now, and the eyes' scores over it (the check message)."""
        if self.known or not self.p.check_open_answer:
            return self.final_options, self.check
        # A label the dialogue narrowed down from is an ancestor of later ones: not an answer.
        scored = self.eyes.score(list(self.asked.values()))
        pool = [x for x in scored if normalise(x[0]) not in self.narrowed] or scored
        pool = pool[: self.cfg.shortlist] if self.cfg.shortlist else pool
        return [lab for lab, _ in pool], CHECK_OPEN.format(scores=format_scores(pool))

    def propose(self, r: int) -> tuple[list[str], str, str | None, str | None]:
        """One round's (candidates, raw reply, guess, fallback reason)."""
        raw = ""
        try:
            schema = ROUND_SCHEMA[self.policy]
            c = self.ask(self.messages, "round", r, schema=schema, max_tokens=self.cfg.round_tokens)
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
        return self.gated and self.options[0][1] >= self.cfg.trust

    def eyes_answer(self) -> dict:
        """The eyes' top label as the answer; the LLM is not asked (the stop, at round 0)."""
        top = self.options[0][0]
        result = {
            "raw": top,
            "label": top,
            "rule": "eyes",
            "eyes_top": round(self.options[0][1], 5),
        }
        self.stopped = 0
        return self.transcript(result, [top] * self.cfg.rounds)

    def play_round(self, r: int) -> dict:
        """Ask for candidates (once more if they only repeat), let the eyes score them."""
        candidates, raw, guess, fallback = self.propose(r)
        entry = {"round": r, "fallback": fallback, "raw": raw, "guess": guess}
        if self.p.ask_again_on_repeat and not fallback and not any(map(self.is_new, candidates)):
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
        tmpl = PROBE_KNOWN[self.policy] if self.known else PROBE_OPEN[self.policy]
        opts, chk = self.answer_options()
        prompt = tmpl.format(scores=format_scores(self.scores), check=chk, labels=self.label_list)
        _raw, value = self.answer(
            [*self.messages, {"role": "user", "content": prompt}], "probe", r, opts
        )
        self.probes.append({"round": r, **self.mapped(value)})
        self.probe_s += time.perf_counter() - t

    def should_stop(self, entry: dict) -> bool:
        if not self.p.stop_early:
            return False
        guess, (top, p) = entry["guess"], self.scores[0]
        agreed = (
            guess
            and normalise(guess) == normalise(top)
            and p >= self.cfg.stop_prob
            and (not self.known or guess in self.labels)
        )
        # … or nothing new was asked: more rounds would not tell the LLM more.
        return bool(agreed) or (entry["repeat"] and self.cfg.stop_on_repeat)

    def advise(self, r: int, entry: dict) -> None:
        """The scores, and where to go next: back off if flat, narrow down if not."""
        advice, self.pending = "", ""
        if self.p.advise and entry["flat"]:
            advice = BACKOFF
        elif self.p.advise:
            advice, self.pending = (
                NARROW.format(top=self.scores[0][0]),
                normalise(self.scores[0][0]),
            )
        content = NEXT[self.policy].format(
            scores=format_scores(self.scores), r=r + 1, rounds=self.cfg.rounds, advice=advice
        )
        self.messages.append({"role": "user", "content": content})

    def finish(self) -> dict:
        """The final answer, mapped to a label; accuracy-by-round filled from the probes."""
        if self.cfg.end == "follow-up":
            return self.finish_in_eyes()
        opts, chk = self.answer_options()
        final = (FINAL_KNOWN if self.known else FINAL_OPEN)[self.policy].format(
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

    def options_now(self) -> list[tuple[str, float]]:
        """The shortlist with the eyes' probabilities, renormalised over it."""
        total = sum(p for _, p in self.shown) or 1.0
        return [(lab, p / total) for lab, p in self.shown]

    def finish_in_eyes(self) -> dict:
        """The eyes decide among the shortlist, with differential descriptions of it (FuDD)."""
        options = [lab for lab, _ in self.shown]
        rec = self.follow_up.rescore(self.eyes.embedding[0], options)
        result = {"raw": "", "label": rec["prediction"], "rule": "follow-up", "follow_up": rec}
        return self.answered(result)

    def fuse(self, options) -> dict:
        """The eyes' probabilities × the LLM's own, over the shortlist (`llm` None: unavailable)."""
        eyes = dict(self.options_now())
        llm = self.reasoner.choice_probabilities(self.messages, list(options or eyes))
        if llm is None:
            return {"llm": None, "note": f"{self.reasoner.name} gives no token probabilities"}
        score = {lab: eyes.get(lab, 0.0) * llm.get(lab, 0.0) for lab in eyes}
        label = max(score, key=score.get)
        rnd = lambda d: {k: round(v, 5) for k, v in d.items()}  # noqa: E731
        return {"label": label, "eyes": rnd(eyes), "llm": rnd(llm), "product": rnd(score)}

    def mapped(self, value: str) -> dict:
        return _mapped(value, self.labels, self.known, self.label_set, self.scorer)

    def transcript(self, result: dict, by_round: list) -> dict:
        calls = self.calls
        return {
            "mode": "known" if self.known else "open",
            "policy": self.policy,
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
    follow_up=None,
    names: dict[str, list[str]] | None = None,
) -> dict:
    """One dialogue about one image; returns its full, JSON-ready transcript. `follow_up`
    (a label_scoring.FollowUp) is what `config.end == "follow-up"` ends in; `names` (a bridged
    label set) are what the eyes read each label by — the reasoner sees the labels."""
    d = Dialogue(
        image,
        scorer,
        reasoner,
        labels,
        known=known,
        label_set=label_set,
        config=config,
        seed=seed,
        follow_up=follow_up,
        names=names,
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
