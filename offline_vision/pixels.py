"""Pixel prompting: an LLM names an MNIST digit written into its prompt as a number grid.

The grid is made exactly as the seed post made it (Pillow's default resize to 20×20, `convert('L')`,
`/ 255`, rounded to one decimal). Strategies: the post's prompt (`seed`), a concise `zero-shot`
prompt, `few-shot` with K random labelled train digits, `retrieved` (few-shot with the K nearest
train digits by pixel distance — retrieval, not reading), and `feedback` (a sequential in-context
loop: each answer is followed by whether it was right). Baselines: `knn` and `majority`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from offline_vision.errors import BadInput
from offline_vision.models.reasoners.base import Reasoner
from offline_vision.options import Options, option
from offline_vision.prompts import (
    FEEDBACK_NEXT,
    FEEDBACK_RIGHT,
    FEEDBACK_SYSTEM,
    FEEDBACK_WRONG,
    PIXELS_LEGEND,
    PIXELS_QUESTION,
    PIXELS_SYSTEM,
    POST_PROMPT,
    SHADES,
)

DIGITS = tuple(str(d) for d in range(10))
ENCODINGS = ("seed", "digits", "ascii")
BASELINES = ("knn", "majority")

# --- the grid ----------------------------------------------------------------------------------


def to_grid(image: np.ndarray | Image.Image, size: int = 20, decimals: int = 1) -> np.ndarray:
    """The post's grid: `Image.fromarray(img).resize((size, size)).convert('L')`, / 255, rounded."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    img = img.resize((size, size)).convert("L")
    return np.round(np.asarray(img, dtype=np.float32) / 255.0, decimals=decimals)


def encode(grid: np.ndarray, encoding: str) -> str:
    """A grid as prompt text: `seed` (the post's nested list), `digits` (0–9), `ascii` (shades)."""
    if encoding == "seed":
        return (
            "[" + ",\n ".join("[" + ", ".join(f"{v:.1f}" for v in row) + "]" for row in grid) + "]"
        )
    levels = np.clip(np.rint(grid * 9), 0, 9).astype(int)
    if encoding == "digits":
        return "\n".join("".join(str(v) for v in row) for row in levels)
    if encoding == "ascii":
        return "\n".join("".join(SHADES[v] for v in row) for row in levels)
    raise BadInput(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")


# --- strategies --------------------------------------------------------------------------------


@dataclass
class Pool:
    """Labelled train digits as grids (the few-shot, retrieval and baseline source)."""

    grids: np.ndarray  # (n, 20, 20) float32
    labels: np.ndarray  # (n,) str

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: Sequence | np.ndarray) -> Pool:
        grids = np.stack([to_grid(im) for im in images]).astype(np.float32)
        return cls(grids, np.asarray([str(x) for x in labels]))

    def nearest(self, grid: np.ndarray, k: int) -> np.ndarray:
        """Indices of the k nearest grids by Euclidean pixel distance, nearest first."""
        flat = self.grids.reshape(len(self.grids), -1)
        d = ((flat - grid.reshape(1, -1)) ** 2).sum(axis=1)
        top = np.argpartition(d, k)[:k]
        return top[np.argsort(d[top], kind="stable")]


@dataclass
class Prediction:
    prediction: str
    transcript: list[dict] = field(default_factory=list)
    tokens: dict = field(default_factory=dict)
    examples: list[int] = field(default_factory=list)  # pool indices shown to the model


class Baseline:
    """`knn`: majority vote of the k nearest train grids; `majority`: the pool's commonest label."""

    def __init__(self, kind: str, pool: Pool, k: int = 5):
        self.kind, self.pool, self.k = kind, pool, k
        values, counts = np.unique(pool.labels, return_counts=True)
        self.most_common = str(values[np.argmax(counts)])

    def config(self) -> dict:
        return {"strategy": self.kind, **({"k": self.k} if self.kind == "knn" else {})}

    def resume(self, records: list[dict]) -> None:
        pass

    def predict(self, grid: np.ndarray, truth: str | None = None) -> Prediction:
        if self.kind == "majority":
            return Prediction(self.most_common)
        near = self.pool.nearest(grid, self.k)
        votes = list(self.pool.labels[near])
        # Most votes wins; a tie goes to the label of the nearer neighbour.
        best = max(dict.fromkeys(votes), key=lambda lab: votes.count(lab))
        return Prediction(best, examples=[int(i) for i in near])


class _Strategy:
    """How one LLM strategy builds its prompt; `Prompter` runs it. The base is `zero-shot`."""

    name = "zero-shot"
    needs_pool = False  # few-shot examples come from the MNIST train pool
    encoding: str | None = None  # a strategy that fixes the grid encoding
    sequential = False  # each digit depends on the ones before it

    def __init__(self, p: Prompter):
        self.p = p

    def config(self) -> dict:
        return {}

    def resume(self, records: list[dict]) -> None:
        pass

    def after(self, question: str, answer: str, truth: str | None) -> None:
        pass

    def messages(self, grid: np.ndarray) -> tuple[list[dict], list[int]]:
        return [
            {"role": "system", "content": self.p.legend()},
            {"role": "user", "content": self.p.question(grid)},
        ], []


class _PostPrompt(_Strategy):
    """The post's prompt and grid, in its language."""

    name, encoding = "seed", "seed"

    def config(self) -> dict:
        return {"lang": self.p.lang}

    def messages(self, grid):
        content = POST_PROMPT[self.p.lang].format(grid=encode(grid, "seed"))
        return [{"role": "user", "content": content}], []


class _FewShot(_Strategy):
    """The same `shots` train digits (drawn with `shot_seed`) before every question."""

    name, needs_pool = "few-shot", True

    def __init__(self, p: Prompter):
        super().__init__(p)
        self.pool = _pool_of(p)
        rng = np.random.default_rng(p.shot_seed)
        self.examples = [int(i) for i in rng.choice(len(self.pool.labels), p.shots, replace=False)]

    def config(self) -> dict:
        return {"shots": self.p.shots, "examples": self.examples}

    def chosen(self, grid: np.ndarray) -> list[int]:
        return self.examples

    def messages(self, grid):
        idxs = self.chosen(grid)
        shown = []
        for i in idxs:
            shown += [
                {"role": "user", "content": self.p.question(self.pool.grids[i])},
                {"role": "assistant", "content": str(self.pool.labels[i])},
            ]
        system = {"role": "system", "content": self.p.legend()}
        return [system, *shown, {"role": "user", "content": self.p.question(grid)}], idxs


class _Retrieved(_FewShot):
    """The `shots` nearest train digits, the nearest last."""

    name = "retrieved"

    def __init__(self, p: Prompter):
        _Strategy.__init__(self, p)
        self.pool = _pool_of(p)

    def config(self) -> dict:
        return {"shots": self.p.shots}

    def chosen(self, grid):
        return [int(i) for i in self.pool.nearest(grid, self.p.shots)[::-1]]


def _pool_of(p: Prompter) -> Pool:
    """The MNIST train pool the examples come from (a strategy that shows examples needs it)."""
    if p.pool is None:
        raise BadInput("this strategy shows examples from the MNIST train pool (set OVISION_DATA)")
    return p.pool


class _Feedback(_Strategy):
    """One growing conversation: each answer is followed by the truth."""

    name, sequential = "feedback", True

    def __init__(self, p: Prompter):
        super().__init__(p)
        self.history: list[dict] = []  # past (question text, answer, truth)

    def config(self) -> dict:
        return {"budget_tokens": self.p.budget_tokens}

    def resume(self, records):
        for r in records:
            self.history.append(
                {"question": r.detail["question"], "answer": r.prediction, "truth": r.truth}
            )
        self.trim(0)

    def after(self, question, answer, truth):
        self.history.append({"question": question, "answer": answer, "truth": truth})

    def trim(self, extra: int) -> None:
        """Keep the history within budget; drop the oldest entries in one go (down to 60 % of
        the budget) so that the evaluated prefix stays reusable for many digits."""

        def size() -> int:
            return sum(self.p.tokens(h["question"]) + 16 for h in self.history) + extra

        if size() > self.p.budget_tokens:
            while self.history and size() > 0.6 * self.p.budget_tokens:
                self.history.pop(0)

    def messages(self, grid):
        question = self.p.question(grid)
        self.trim(self.p.tokens(question))
        legend = PIXELS_LEGEND[self.p.encoding]
        msgs = [{"role": "system", "content": FEEDBACK_SYSTEM.format(legend=legend)}]
        previous = None
        for h in self.history:
            q = h["question"]
            content = q if previous is None else FEEDBACK_NEXT.format(feedback=previous, question=q)
            msgs += [
                {"role": "user", "content": content},
                {"role": "assistant", "content": h["answer"]},
            ]
            verdict = FEEDBACK_RIGHT if h["answer"] == h["truth"] else FEEDBACK_WRONG
            previous = verdict.format(truth=h["truth"])
        content = (
            question
            if previous is None
            else FEEDBACK_NEXT.format(feedback=previous, question=question)
        )
        return [*msgs, {"role": "user", "content": content}], []


LLM_STRATEGIES = {s.name: s for s in (_PostPrompt, _Strategy, _FewShot, _Retrieved, _Feedback)}
STRATEGIES = (*LLM_STRATEGIES, *BASELINES)
LANGS = ("en", "ja")


@dataclass(frozen=True)
class PixelOptions(Options):
    """How a digit's pixels are put to the LLM (or to a baseline)."""

    strategy: str = option(
        "retrieved",
        "seed: the post's prompt; few-shot: K random train digits; retrieved: the K nearest "
        "train digits (retrieval); feedback: sequential loop told the truth after each answer; "
        "knn / majority: baselines with no LLM.",
        choices=STRATEGIES,
    )
    shots: int = option(5, "K for few-shot, retrieved and knn.", lo=1, hi=50)
    encoding: str = option(
        "ascii",
        "How the grid is written: ascii (shades, ~90 tokens a digit), digits (0-9 a cell, ~420), "
        "seed (the post's decimals, ~2000). The seed strategy always uses seed.",
        choices=ENCODINGS,
    )
    lang: str = option("en", "Language of the seed prompt.", choices=LANGS)
    budget: int = option(
        6000, "feedback: context budget in tokens; the oldest digits are dropped first.", lo=500
    )

    @property
    def uses_llm(self) -> bool:
        return self.strategy not in BASELINES

    @property
    def needs_pool(self) -> bool:
        kind = LLM_STRATEGIES.get(self.strategy)
        return kind.needs_pool if kind else True

    def method(self, reasoner: Reasoner | None, pool, *, shot_seed: int):
        """The Baseline or Prompter these options name (`reasoner` None for a baseline)."""
        if not self.uses_llm:
            return Baseline(self.strategy, pool, k=self.shots)
        if reasoner is None:
            raise BadInput(f"--strategy {self.strategy} asks a reasoner; none was given")
        return Prompter(
            reasoner,
            self.strategy,
            encoding=self.encoding,
            shots=self.shots,
            pool=pool,
            shot_seed=shot_seed,
            lang=self.lang,
            budget_tokens=self.budget,
        )


class Prompter:
    """Runs one LLM strategy. One instance per run: `feedback` keeps its history across digits."""

    def __init__(
        self,
        reasoner: Reasoner,
        strategy: str,
        *,
        encoding: str = "ascii",
        shots: int = 5,
        pool: Pool | None = None,
        shot_seed: int = 0,  # which train digits few-shot shows
        lang: str = "en",
        budget_tokens: int = 6000,
    ):
        kind = LLM_STRATEGIES.get(strategy)
        if kind is None:
            raise BadInput(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        if kind.needs_pool and pool is None:
            raise BadInput(f"strategy {strategy} needs the MNIST train pool (set OVISION_DATA)")
        encoding = kind.encoding or encoding
        encode(np.zeros((2, 2)), encoding)  # validates the name
        self.reasoner, self.strategy, self.encoding = reasoner, strategy, encoding
        self.shots, self.pool, self.shot_seed, self.lang = shots, pool, shot_seed, lang
        self.budget_tokens = budget_tokens
        self._token_cache: dict[str, int] = {}
        self.impl = kind(self)
        self.sequential = kind.sequential

    def config(self) -> dict:
        base = {"strategy": self.strategy, "encoding": self.encoding}
        return {**base, "reasoner": self.reasoner.describe(), **self.impl.config()}

    def resume(self, records: list[dict]) -> None:
        """Rebuild what the strategy carries across digits from finished records, in order."""
        self.impl.resume(records)

    def legend(self) -> str:
        return PIXELS_SYSTEM.format(legend=PIXELS_LEGEND[self.encoding])

    def question(self, grid: np.ndarray) -> str:
        return PIXELS_QUESTION.format(grid=encode(grid, self.encoding))

    def tokens(self, text: str) -> int:
        if text not in self._token_cache:
            self._token_cache[text] = self.reasoner.count_tokens(text)
        return self._token_cache[text]

    def messages(self, grid: np.ndarray) -> tuple[list[dict], list[int]]:
        return self.impl.messages(grid)

    def predict(self, grid: np.ndarray, truth: str | None = None) -> Prediction:
        if self.sequential and truth is None:
            raise BadInput("the feedback strategy needs labelled digits: use `ovision eval pixels`")
        msgs, examples = self.messages(grid)
        c = self.reasoner.complete(msgs, choices=list(DIGITS), max_tokens=4)
        self.impl.after(self.question(grid), c.value, truth)
        tokens = {
            "prompt": c.usage.prompt_tokens,
            "completion": c.usage.completion_tokens,
            "evaluated": c.usage.evaluated_prompt_tokens,
        }
        return Prediction(
            c.value, [*msgs, {"role": "assistant", "content": c.text}], tokens, examples
        )
