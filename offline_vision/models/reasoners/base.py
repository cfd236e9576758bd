"""The `Reasoner` interface: OpenAI-shaped messages in, text (or a parsed value) out.

Every backend answers through `BaseReasoner.complete`, which validates the answer against
`choices` or a JSON `schema` and, when it does not fit, asks once more (one repair turn)
before raising a ReasonerError that names the raw answer.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import jsonschema

from offline_vision.errors import ReasonerError
from offline_vision.prompts import REPAIR_CHOICES, REPAIR_EMPTY, REPAIR_SCHEMA

Message = dict[str, str]


def repair_message(problem: Exception, choices: Sequence[str] | None, schema: dict | None) -> str:
    if choices is not None:
        return REPAIR_CHOICES.format(choices=", ".join(choices))
    if schema is not None:
        return REPAIR_SCHEMA.format(error=problem, schema=json.dumps(schema))
    return REPAIR_EMPTY


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Prompt tokens the model actually evaluated (after prompt-cache reuse); None if unknown.
    evaluated_prompt_tokens: int | None = None


@dataclass
class Completion:
    text: str  # the final raw answer
    value: Any  # the chosen string, the parsed JSON, or the text itself
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    attempts: list[str] = field(default_factory=list)  # raw answers, repairs included

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Reasoner(Protocol):
    name: str

    def describe(self) -> dict: ...

    def complete(
        self,
        messages: Sequence[Message],
        *,
        choices: Sequence[str] | None = None,
        schema: dict | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> Completion: ...

    def count_tokens(self, text: str) -> int: ...

    def choice_probabilities(
        self, messages: Sequence[Message], choices: Sequence[str]
    ) -> dict[str, float] | None: ...


def _strip_fences(text: str) -> str:
    t = text.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else t[3:]
        t = t.rsplit("```", 1)[0]
    return t.strip()


def match_choice(text: str, choices: Sequence[str]) -> str | None:
    """The choice `text` names: exact, or after trimming quotes/punctuation and case."""
    if text in choices:
        return text
    t = _strip_fences(text).strip().strip("\"'`.").strip()
    if t.startswith("{"):
        try:
            obj = json.loads(t)
            if isinstance(obj, dict) and isinstance(obj.get("answer"), str):
                t = obj["answer"].strip()
        except (ValueError, RecursionError):
            pass
    lowered = {c.lower(): c for c in choices}
    return lowered.get(t.lower())


def schema_nodes(node) -> Iterator[dict]:
    """Every object in a JSON Schema, nested ones included."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from schema_nodes(v)
    elif isinstance(node, list):
        for v in node:
            yield from schema_nodes(v)


def check_schema(schema) -> None:
    """A JSON Schema fit to constrain an answer: valid under its metaschema, and every `$ref`
    a local one ("#/…") that resolves. Raises ReasonerError naming the problem."""
    if not isinstance(schema, dict):
        raise ReasonerError("the schema must be a JSON object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ReasonerError(f"invalid JSON Schema: {e.message}") from None

    refs = [n["$ref"] for n in schema_nodes(schema) if isinstance(n.get("$ref"), str)]
    for ref in refs:
        target: Any = schema
        if not ref.startswith("#"):
            raise ReasonerError(f"schema $ref {ref!r}: only local references (#/…) are resolved")
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and key in target:
                target = target[key]
            elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            else:
                raise ReasonerError(f"schema $ref {ref!r} does not resolve")


def parse_json(text: str, schema: dict) -> Any:
    """Parse and validate; raises ValueError with a short reason."""
    try:
        value = json.loads(_strip_fences(text))
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e.msg}") from None
    except RecursionError:
        raise ValueError("not JSON: nested too deeply") from None
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as e:
        raise ValueError(f"schema: {e.message}") from None
    except RecursionError:
        raise ValueError("schema: nested too deeply") from None
    return value


class BaseReasoner(ABC):
    """Validation and the repair turn; backends implement `_raw`."""

    name = "reasoner"

    @abstractmethod
    def _raw(
        self,
        messages: Sequence[Message],
        *,
        choices: Sequence[str] | None,
        schema: dict | None,
        max_tokens: int,
        temperature: float,
        seed: int,
    ) -> tuple[str, Usage]:
        """One model call → (raw text, usage)."""

    @abstractmethod
    def describe(self) -> dict: ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes; backends with a tokenizer override this rough estimate."""
        return len(text) // 3 + 1

    def choice_probabilities(
        self, messages: Sequence[Message], choices: Sequence[str]
    ) -> dict[str, float] | None:
        """The model's own probability of answering each choice (normalised over them), or
        None where the backend cannot say (then callers say so and fall back)."""
        return None

    def complete(
        self,
        messages: Sequence[Message],
        *,
        choices: Sequence[str] | None = None,
        schema: dict | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> Completion:
        if choices is not None and not choices:
            raise ReasonerError("choices must not be empty")
        if choices is not None and schema is not None:
            raise ReasonerError("give choices or schema, not both")
        if schema is not None:
            check_schema(schema)
        convo = [dict(m) for m in messages]
        attempts: list[str] = []
        total = Usage(evaluated_prompt_tokens=0)
        t0 = time.perf_counter()
        for attempt in range(2):
            text, usage = self._raw(
                convo,
                choices=choices,
                schema=schema,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed + attempt,
            )
            attempts.append(text)
            total.prompt_tokens += usage.prompt_tokens
            total.completion_tokens += usage.completion_tokens
            if usage.evaluated_prompt_tokens is None or total.evaluated_prompt_tokens is None:
                total.evaluated_prompt_tokens = None
            else:
                total.evaluated_prompt_tokens += usage.evaluated_prompt_tokens
            try:
                value = self._validate(text, choices, schema)
            except ValueError as problem:
                convo += [
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": repair_message(problem, choices, schema)},
                ]
                continue
            return Completion(text, value, total, time.perf_counter() - t0, attempts)
        what = (
            "one of the choices"
            if choices is not None
            else "valid JSON for the schema"
            if schema is not None
            else "a non-empty answer"
        )
        raise ReasonerError(
            f"{self.name}: answer is not {what} after a repair turn; raw answer: {text[:200]!r}"
        )

    @staticmethod
    def _validate(text: str, choices: Sequence[str] | None, schema: dict | None) -> Any:
        if choices is not None:
            hit = match_choice(text, choices)
            if hit is None:
                raise ValueError(f"{text[:80]!r} is not a listed choice")
            return hit
        if schema is not None:
            return parse_json(text, schema)
        if not text.strip():
            raise ValueError("empty answer")
        return text
