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
    assert {
        "offline_vision.labels.store",
        "offline_vision.eval.html",
        "offline_vision.api",
    } <= named
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


def test_every_module_is_under_400_lines():
    """Issue 27's bar: a module over 400 lines is doing more than one job."""
    from pathlib import Path

    root = Path(offline_vision.__file__).parent
    sizes = {p.relative_to(root): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    assert len(sizes) > 50 and [f"{p} ({n})" for p, n in sizes.items() if n > 400] == []


# The layers, lowest first. A module may import its own layer or a lower one, never a higher
# one; ARCHITECTURE.md describes the same table.
LAYERS = [
    (
        "foundation",
        [
            "config",
            "errors",
            "files",
            "progress",
            "prompts",
            "labels",
            "labels.sets",
            "images",
            "options",
            "retry",
        ],
    ),
    ("provisioning: catalog", ["models.provision", "models.provision.*-ops"]),
    ("models", ["models", "models.*"]),
    ("export", ["export", "export.*"]),
    (
        "provisioning: operations",
        ["models.provision.pull", "models.provision.hf", "models.provision.bundles"],
    ),
    (
        "features",
        [
            *("classification", "labels.*", "dialogue", "dialogue.*", "pixels"),
            *("catalog", "catalog.*"),
        ],
    ),
    # Ray lives here: eval.cluster, and the catalog's index on Ray Data that joins it
    ("evaluation and scale-out", ["eval", "eval.*", "catalog.distributed"]),
    ("python api", ["api", ""]),
    ("cli", ["commands", "commands.*", "cli", "__main__"]),
]
OPERATIONS = {"models.provision.pull", "models.provision.hf", "models.provision.bundles"}
SCALE_OUT = {"catalog.distributed"}


def _layer(module: str) -> int:
    name = module.removeprefix("offline_vision").removeprefix(".")
    for i, (_, members) in enumerate(LAYERS):
        for m in members:
            if m == "models.provision.*-ops":
                if name.startswith("models.provision.") and name not in OPERATIONS:
                    return i
            elif m.endswith(".*"):
                if (
                    name.startswith(m[:-1])
                    and name not in OPERATIONS | SCALE_OUT
                    and not (m == "models.*" and name.startswith("models.provision"))
                ):
                    return i
            elif name == m:
                return i
    raise AssertionError(f"{module} is in no layer of tests/test_layout.py")


def _import_graph() -> dict[str, set[str]]:
    """Every import of the package's own modules, those inside functions included."""
    import ast
    from pathlib import Path

    root = Path(offline_vision.__file__).parent
    mods = {}
    for path in root.rglob("*.py"):
        parts = ("offline_vision", *path.relative_to(root).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] == "offline_vision":
                    for alias in node.names:
                        full = f"{node.module}.{alias.name}"
                        deps.add(full if full in mods else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.split(".")[0] == "offline_vision"}
        graph[name] = deps - {name}
    return graph


def test_imports_run_down_the_layers_and_never_in_a_circle():
    graph = _import_graph()
    upward = [
        f"{m} ({LAYERS[_layer(m)][0]}) imports {d} ({LAYERS[_layer(d)][0]})"
        for m, deps in graph.items()
        for d in deps
        if _layer(d) > _layer(m)
    ]
    assert upward == []
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path, m, d]))
            if d in graph and d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_the_graph_test_sees_imports_inside_functions():
    graph = _import_graph()
    # `eval --ray` imports the Ray source only inside a function (Ray is optional): seen.
    assert "offline_vision.eval.cluster" in graph["offline_vision.commands.eval"]
    # … and the runner no longer imports it at all: it takes a result source.
    assert not any(
        d.startswith("offline_vision.eval.cluster") for d in graph["offline_vision.eval.runner"]
    )
    assert _layer("offline_vision.commands.eval") > _layer("offline_vision.eval.recipes")


def test_a_ray_worker_builds_its_task_without_click():
    """What a worker imports to build a task (eval.cluster + eval.recipes) has no click."""
    code = (
        "import sys\n"
        "import offline_vision.eval.cluster, offline_vision.eval.recipes\n"
        "from offline_vision.eval.recipes import pixel_task\n"
        "print('click' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stdout + out.stderr


def test_the_backends_and_the_fakes_implement_the_protocols():
    """The features are typed against Scorer and Reasoner; every backend and test fake has all
    of what those protocols name (runtime_checkable checks presence, not signatures)."""
    import typing

    import numpy as np
    from fakes import FakeScorer

    from offline_vision.models.clip import ClipScorer
    from offline_vision.models.conse import ConseScorer
    from offline_vision.models.reasoners.base import Reasoner
    from offline_vision.models.reasoners.llama_cpp import LlamaCppReasoner
    from offline_vision.models.reasoners.openai_compat import OpenAICompatReasoner
    from offline_vision.models.reasoners.scripted import ScriptedReasoner
    from offline_vision.models.scorer import Scorer

    for protocol, classes in (
        (Scorer, (ClipScorer, ConseScorer)),
        (Reasoner, (LlamaCppReasoner, OpenAICompatReasoner, ScriptedReasoner)),
    ):
        methods = [m for m in protocol.__dict__ if callable(getattr(protocol, m)) and m[0] != "_"]
        fields = typing.get_type_hints(protocol)
        assert len(methods) >= 4 and fields
        for cls in classes:
            assert [m for m in methods if not callable(getattr(cls, m, None))] == [], cls
    assert isinstance(FakeScorer(np.ones, np.ones), Scorer)
    assert isinstance(ScriptedReasoner(["cat"]), Reasoner)
