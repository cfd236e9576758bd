"""A deterministic reasoner for tests: answers from a list, or from a function of the call."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from offline_vision.models.reasoners.base import BaseReasoner, Message, Usage

Script = Callable[[Sequence[Message], Sequence[str] | None, dict | None], str]


class ScriptedReasoner(BaseReasoner):
    def __init__(self, answers: Sequence[str] | Script, name: str = "scripted", probabilities=None):
        self.name = name
        self._answers = answers if callable(answers) else list(answers)
        self.calls: list[list[Message]] = []  # every conversation it was shown
        self._probabilities = probabilities  # (messages, choices) -> {choice: p} or None

    def choice_probabilities(self, messages, choices):
        return self._probabilities(messages, choices) if self._probabilities else None

    def describe(self) -> dict:
        return {"reasoner": "scripted", "name": self.name}

    def _raw(
        self, messages, *, choices, schema, max_tokens, temperature, seed
    ) -> tuple[str, Usage]:
        self.calls.append([dict(m) for m in messages])
        if callable(self._answers):
            text = self._answers(messages, choices, schema)
        elif self._answers:
            text = self._answers.pop(0)
        else:
            raise IndexError("scripted reasoner ran out of answers")
        words = sum(len(m["content"].split()) for m in messages)
        return text, Usage(words, len(text.split()), words)
