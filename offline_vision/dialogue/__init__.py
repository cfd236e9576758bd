"""CLIP × LLM dialogue: the LLM proposes candidate labels, the scorer (its eyes) answers with
probabilities over exactly those candidates, for a few rounds; then the LLM answers one label.

Policies: `seed` follows the post (fixed rounds, then the answer). `adaptive` adds the authors'
fixes: broader questions after flat scores, an early stop when the LLM's guess and the eyes agree
confidently or when it only repeats what it already asked, a final answer in the label format
(one of the label set when it is known, one of the labels it asked about when it is not), and a
last look at the eyes' scores over those answer options.

`config` holds the options and policies, `eyes` the scorer's side (one image, the shortlist,
answer mapping), `conversation` the dialogue's state and its loop.
"""

from offline_vision.dialogue.config import ENDS, POLICIES, POLICY, DialogueConfig, Policy
from offline_vision.dialogue.conversation import Dialogue, clean_candidates, run_dialogue
from offline_vision.dialogue.eyes import Eyes, flatness, format_scores, map_calibration

__all__ = [
    "ENDS",
    "POLICIES",
    "POLICY",
    "Dialogue",
    "DialogueConfig",
    "Eyes",
    "Policy",
    "clean_candidates",
    "flatness",
    "format_scores",
    "map_calibration",
    "run_dialogue",
]
