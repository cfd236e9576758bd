"""The dialogue's behaviour is locked: the transcripts stored in tests/data (written by the
code before the dialogue became a loop of named steps) come out identical — every policy ×
mode, eyes-only answers, repair turns, broad fallbacks, repeated questions, early stops and
open-answer mapping rules included.

Regenerate the lock (only for a change of behaviour that is meant, named in its commit):
    .venv/bin/python tests/dialogue_replay.py
"""

from __future__ import annotations

import json
from pathlib import Path

from dialogue_replay import transcripts

STORED = Path(__file__).parent / "data" / "dialogue_transcripts.json"


def test_stored_transcripts_replay_identically():
    stored = json.loads(STORED.read_text())
    now = json.loads(json.dumps(transcripts(), sort_keys=True))
    assert len(now) == len(stored) == 40
    for a, b in zip(now, stored, strict=True):
        assert a == b, (a["policy"], a["known"], a["image"])
