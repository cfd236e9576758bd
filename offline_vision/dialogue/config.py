"""The dialogue's options and its two policies — what each changes, and the prompts it speaks."""

from __future__ import annotations

from dataclasses import dataclass

from offline_vision.errors import BadInput
from offline_vision.options import Options, option
from offline_vision.prompts import (
    FINAL_KNOWN,
    FINAL_OPEN,
    FIRST,
    NEXT,
    PROBE_KNOWN,
    PROBE_OPEN,
    ROUND_SCHEMA,
)

POLICIES = ("seed", "adaptive")
# How an adaptive, known-label dialogue ends: the LLM names the label (`llm`); the eyes re-score
# the shortlist with differential descriptions (`follow-up`); or the eyes' probabilities times
# the LLM's own probabilities for each shortlisted label (`fusion`).
ENDS = ("llm", "follow-up", "fusion")


@dataclass(frozen=True)
class DialogueConfig(Options):
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

    def __post_init__(self) -> None:
        super().__post_init__()  # choices and bounds, from each option's declaration
        if self.end != "llm" and self.policy != "adaptive":
            raise BadInput(f"--end {self.end} needs --policy adaptive")


@dataclass(frozen=True)
class Prompts:
    """What one policy says at each turn (templates from `prompts`)."""

    first: str  # round 1's question
    round_schema: dict  # the JSON a round's reply must match
    next: str  # the eyes' scores, and the next round's question
    probe_known: str  # "if you had to answer now", labels known …
    probe_open: str  # … and open
    final_known: str  # the final question, labels known …
    final_open: str  # … and open


def _prompts(policy: str) -> Prompts:
    return Prompts(
        first=FIRST[policy],
        round_schema=ROUND_SCHEMA[policy],
        next=NEXT[policy],
        probe_known=PROBE_KNOWN[policy],
        probe_open=PROBE_OPEN[policy],
        final_known=FINAL_KNOWN[policy],
        final_open=FINAL_OPEN[policy],
    )


@dataclass(frozen=True)
class Policy:
    """A policy on one screen: the post's procedure (`seed`), or that plus the authors' fixes
    (`adaptive`). The fixes come together — they were measured together — so one switch says
    which, and the prompts differ with it."""

    name: str
    fixes: bool  # the eyes answer when sure, answers shortlisted and checked, back-off and
    #              narrowing advice, one more turn after a repeat, the early stop, one-label
    #              open answers
    prompts: Prompts


POLICY = {name: Policy(name, name == "adaptive", _prompts(name)) for name in POLICIES}
