"""Pixel prompting's behaviour is locked: the runs stored in tests/data (written by the code
before the strategies became classes) come out identical — every LLM strategy, two encodings,
few-shot examples, retrieval and the feedback history with its trimming.

Regenerate the lock (only for a change of behaviour that is meant, named in its commit):
    .venv/bin/python tests/pixels_replay.py
"""

from __future__ import annotations

import json
from pathlib import Path

from pixels_replay import transcripts

STORED = Path(__file__).parent / "data" / "pixels_transcripts.json"


def test_stored_pixel_runs_replay_identically(data_dir):
    stored = json.loads(STORED.read_text())
    now = json.loads(json.dumps(transcripts(data_dir), sort_keys=True))
    assert len(now) == len(stored) == 10
    for a, b in zip(now, stored, strict=True):
        assert a == b, (a["strategy"], a["encoding"])
