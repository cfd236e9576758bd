"""docs/results.md's generated blocks are what the committed JSON gives (as `cog --check`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_results_page_matches_the_json():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_results.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.encode()) <= 10_000
    assert "<!-- test-command -->" in text and "docs/results.md" in text
