"""docs/results.md's generated blocks are what the committed JSON gives (as `cog --check`), and
the README is a front page whose every `ovision …` line the CLI takes."""

from __future__ import annotations

import re
import shlex
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


def _invocations(text: str) -> list[list[str]]:
    """Every `ovision …` command line the text shows, as argument lists: comments, `&&` and
    `[optional]` brackets dropped, `a|b` alternatives expanded into one line each."""
    found = []
    for m in re.finditer(r"\bovision ([^`#\n]*?)\s*(?=&&|`|#|\n|$)", text):
        words = shlex.split(m.group(1).replace("[", " ").replace("]", " "))
        lines = [[]]
        for w in words:
            alts = w.split("|") if "|" in w and not w.startswith("-") else [w]
            lines = [[*line, a] for line in lines for a in alts]
        found += lines
    return found


def _problems(words: list[str]) -> list[str]:
    """What in one command line the real CLI does not have: an unknown command, a group left
    without its subcommand, an unknown --option."""
    import click

    from offline_vision.cli import cli

    cmd, path = cli, ["ovision"]
    while isinstance(cmd, click.Group) and words and not words[0].startswith("-"):
        sub = cmd.commands.get(words[0])
        if sub is None:
            return [f"{' '.join(path)}: no command {words[0]!r}"]
        cmd, path, words = sub, [*path, words[0]], words[1:]
    if isinstance(cmd, click.Group):
        return [f"{' '.join(path)}: a group, not a command"]
    known = {"--help"} | {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    return [
        f"{' '.join(path)}: no option {w.split('=')[0]}"
        for w in words
        if w.startswith("--") and w.split("=")[0] not in known
    ]


def test_every_command_in_the_readme_exists_with_its_options():
    lines = _invocations((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(lines) >= 20  # the README's examples were found, not skipped
    assert [p for words in lines for p in _problems(words)] == []
    # …and a line the CLI does not take is caught, so the check above can fail
    bad = _invocations("`ovision classify x.png --top-k 3 --nope` and `ovision eval cifar|clip`")
    assert _problems(bad[0]) == ["ovision classify: no option --nope"]
    assert _problems(bad[1]) == ["ovision eval: no command 'cifar'"] and _problems(bad[2]) == []
