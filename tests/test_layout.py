"""The package's shape: every module imports on its own (no import circle), in a fresh process."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import offline_vision


def _modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(offline_vision.__path__, "offline_vision.")
        if m.name != "offline_vision.__main__"
    )


def test_every_module_imports_on_its_own():
    code = (
        "import subprocess, sys\n"
        "bad = []\n"
        "for name in sys.argv[1:]:\n"
        "    r = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True, text=True)\n"
        "    if r.returncode:\n"
        "        bad.append(f'{name}: {r.stderr.strip().splitlines()[-1]}')\n"
        "print('\\n'.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *_modules()], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_architecture_names_only_real_modules():
    import importlib
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "ARCHITECTURE.md").read_text()
    named = set(re.findall(r"`(offline_vision(?:\.\w+)*)`", text))
    assert len(named) > 20
    for name in sorted(named):
        importlib.import_module(name)  # raises if ARCHITECTURE.md names a module that is gone
    listed = {m for m in _modules() if not m.rsplit(".", 1)[-1].startswith("_")}
    assert {"offline_vision.knowledge", "offline_vision.eval.html", "offline_vision.api"} <= named
    assert named <= listed | {"offline_vision"}


def test_every_function_reads_on_one_screen():
    """Issue 18's bar: no function in the package is 60 lines or longer."""
    import ast
    from pathlib import Path

    long = [
        f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in Path(offline_vision.__file__).parent.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 >= 60
    ]
    assert long == []
