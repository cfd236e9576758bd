"""What a local model's grammar is built from: exactly one of some strings, or a JSON schema
that llama-cpp-python's converter can take without breaking."""

from __future__ import annotations

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
