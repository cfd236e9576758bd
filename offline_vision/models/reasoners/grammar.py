"""What a local model is given besides its weights, bounded: the grammar of an answer (exactly
one of some strings, or a JSON schema llama-cpp-python's converter can take without breaking)
and the rendering of its own chat template (in time and size)."""

from __future__ import annotations

import json
import sys
import time
import unicodedata

from offline_vision.errors import ReasonerError
from offline_vision.files import shown
from offline_vision.models.reasoners.base import schema_nodes


def choices_grammar(choices) -> str:
    """GBNF that accepts exactly one of the strings."""

    def lit(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return "root ::= " + " | ".join(lit(c) for c in choices)


def grammar_safe(name: str, schema) -> None:
    """llama-cpp-python's schema-to-grammar writes a property name with a double quote into a
    broken grammar that kills the process (SIGSEGV, seen with 0.3.36), and one with a backslash
    or a control character into one no valid JSON matches: such names are refused in one line."""

    def names(node: dict):
        if isinstance(node.get("properties"), dict):
            yield from node["properties"]
        for key in ("required", "enum"):
            if isinstance(node.get(key), list):
                yield from (v for v in node[key] if isinstance(v, str))
        if isinstance(node.get("const"), str):
            yield node["const"]

    for key in (k for node in schema_nodes(schema) for k in names(node)):
        if any(ch in '"\\' or unicodedata.category(ch) == "Cc" for ch in key):
            raise ReasonerError(
                f"{name}: {shown(key)!r} (a key or value of the answer's JSON schema) holds a "
                "quote, backslash or control character, which a local model's grammar cannot "
                "hold; rename it"
            )


# A GGUF's chat template is code from the file: Jinja's sandbox stops its escapes, not its
# loops. Rendering is given this long and this much output; a prompt is a few kilobytes.
RENDER_SECONDS = 5.0
RENDER_CHARS = 2_000_000
MAX_INDENT = 8  # tojson(indent=100000000) asked for gigabytes


class _Slow(Exception):
    pass


def render_bounded(name: str, formatter, messages):
    """`formatter(messages=…)` stopped past RENDER_SECONDS (a trace on the rendering thread's
    Python lines) or past RENDER_CHARS of prompt, in one line."""
    deadline = time.monotonic() + RENDER_SECONDS

    def trace(frame, event, arg):
        if time.monotonic() > deadline:
            raise _Slow
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        out = formatter(messages=messages)
    except _Slow:
        raise ReasonerError(
            f"{name}: the GGUF's chat template ran past {RENDER_SECONDS:.0f} s; refused"
        ) from None
    except RecursionError:  # a macro that calls itself
        raise ReasonerError(
            f"{name}: the GGUF's chat template recurses without end; refused"
        ) from None
    finally:
        sys.settrace(previous)
    if len(getattr(out, "prompt", "")) > RENDER_CHARS:
        raise ReasonerError(
            f"{name}: the GGUF's chat template wrote over {RENDER_CHARS:,} characters; refused"
        )
    return out


def bounded_tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    """The chat template's `tojson` (as transformers renders it), its indent capped."""
    if isinstance(indent, int):
        indent = min(indent, MAX_INDENT)
    elif indent is not None:
        indent = None
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )
