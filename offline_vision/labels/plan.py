"""What `--knowledge` means for a label set: parse it, decide whether to bridge, and get the
bridge and the other knowledge written (or read from the cache).

`auto` (the default) bridges a custom label set that looks unfamiliar to the eyes
(`labels.readable.looks_unfamiliar`), announced in one line; built-in sets never are. Without a usable
reasoner it says so in one line and scores the labels as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from offline_vision.errors import BadInput, OVisionError
from offline_vision.labels.readable import looks_unfamiliar
from offline_vision.labels.scoring import FollowUp, first_names
from offline_vision.labels.store import Knowledge
from offline_vision.labels.writers.names import STRATEGY, names_of, write_names
from offline_vision.labels.writers.texts import STRATEGIES, expand
from offline_vision.models.reasoners.base import Reasoner
from offline_vision.models.scorer import Scorer
from offline_vision.options import option

log = logging.getLogger("ovision")

KNOWLEDGE_HELP = (
    "Label knowledge: auto (bridge a custom label set the eyes cannot read to English names, "
    "announced), none, names (always bridge), descriptions|subclasses|waffle, names+STRATEGY, "
    "or a file from `labels expand`. Written once per label set by --reasoner, then cached. "
    "The dialogue takes auto, none, names or a names file: the LLM sees your labels, the eyes "
    "read them by their names."
)
# Chosen on the 632 CIFAR-10 dev images (knowledge_cifar.json): the best of 0.3 / 0.5 / 0.7 /
# 0.9 / every image for all three reasoners and K = 2, 3 — the lowest tried; the follow-up did
# worse the more images it ran on.
FOLLOW_UP_THRESHOLD = 0.3


@dataclass(frozen=True)
class KnowledgeOptions:
    """What a reasoner tells the eyes about the labels: the bridge, texts, the follow-up."""

    knowledge: str = option("auto", KNOWLEDGE_HELP, metavar="auto|none|names|STRATEGY|FILE")
    follow_up: int | None = option(
        None,
        "Where the eyes are unsure, have --reasoner tell their top K labels apart (FuDD); cached "
        "per set of labels.",
        lo=2,
        hi=10,
        kind=int,
    )
    follow_up_threshold: float = option(
        FOLLOW_UP_THRESHOLD,
        "Run the follow-up where the top probability is below this.",
        lo=0,
        hi=1,
    )


def parts(
    settings, labels, eyes: Scorer, options: KnowledgeOptions, reasoner: Reasoner, *, builtin: bool
):
    """(bridge, knowledge, follow-up), each or None, for the options given; the reasoner
    (`ReasonerOptions`) loads lazily: a cached bridge or knowledge file needs none."""
    loaded = []

    def llm():
        if not loaded:
            loaded.append(reasoner.load(settings))
        return loaded[0]

    bridge, k = resolve(
        options.knowledge,
        labels,
        eyes,
        builtin=builtin,
        cache_dir=settings.cache_dir,
        reasoner_factory=llm,
    )
    f = None
    if options.follow_up:
        f = FollowUp(
            eyes,
            llm(),
            k=options.follow_up,
            threshold=options.follow_up_threshold,
            cache_dir=settings.cache_dir,
            names=names_of(bridge),
        )
    return bridge, k, f


def parse_spec(value: str | None) -> tuple[str, str | None, Path | None]:
    """`--knowledge` → (bridge: auto|none|names, strategy or None, file or None)."""
    value = (value or "auto").strip()
    if value not in ("auto", "none") and "+" not in value and value not in (STRATEGY, *STRATEGIES):
        path = Path(value)
        if not path.is_file():
            raise BadInput(
                f"--knowledge {value!r}: neither a file nor one of auto, none, names, "
                f"{', '.join(STRATEGIES)}, names+STRATEGY"
            )
        return "none", None, path
    if value in ("auto", "none", STRATEGY):
        return value, None, None
    first, _, second = value.partition("+")
    if first == STRATEGY and second in STRATEGIES:
        return STRATEGY, second, None
    if not second and first in STRATEGIES:
        return "none", first, None
    raise BadInput(f"--knowledge {value!r}: use names+STRATEGY with one of {', '.join(STRATEGIES)}")


def resolve(
    value: str | None,
    labels: Sequence[str],
    scorer: Scorer,
    *,
    builtin: bool,
    cache_dir: Path,
    reasoner_factory: Callable[[], object],
) -> tuple[Knowledge | None, Knowledge | None]:
    """(the bridge or None, other knowledge or None) for `--knowledge`. Knowledge written for a
    bridged set is written about each label's English name."""
    mode, strategy, path = parse_spec(value)
    labels = list(labels)
    if path is not None:
        k = Knowledge.load(path)
        if k.strategy != STRATEGY:
            return None, k
        if set(k.labels) != set(labels):
            raise BadInput(f"{path}: these names were written for another label set")
        _announce(k, f"from {path}", None)
        return k, None
    bridge = None
    if mode == STRATEGY:
        bridge, _p, cached = write_names(
            labels, reasoner_factory(), cache_dir=cache_dir, scorer=scorer
        )
        _announce(bridge, _source(bridge, cached), None)
    elif mode == "auto" and not builtin:
        bridge = _auto(labels, scorer, cache_dir, reasoner_factory)
    elif mode == "none" and strategy and not builtin and looks_unfamiliar(labels, scorer)[0]:
        log.info(
            "these labels look unfamiliar to the eyes; --knowledge names+%s bridges them first",
            strategy,
        )
    if strategy is None:
        return bridge, None
    eye = first_names(labels, names_of(bridge))
    llm = reasoner_factory() if strategy != "waffle" else None
    k, _path, _ = expand(eye, strategy, llm, cache_dir=cache_dir)
    return bridge, k


def _auto(labels, scorer: Scorer, cache_dir, reasoner_factory) -> Knowledge | None:
    unfamiliar, bad = looks_unfamiliar(labels, scorer)
    if not unfamiliar:
        return None
    try:
        bridge, _p, cached = write_names(
            labels, reasoner_factory(), cache_dir=cache_dir, scorer=scorer
        )
    except OVisionError as e:
        log.warning(
            "%d of %d labels look unfamiliar to the eyes, but no reasoner could bridge them (%s); "
            "scoring them as they are",
            len(bad),
            len(labels),
            str(e).splitlines()[0],
        )
        return None
    _announce(bridge, _source(bridge, cached), bad)
    return bridge


def _source(bridge: Knowledge, cached: bool) -> str:
    return "from the cache" if cached else f"written by {(bridge.reasoner or {}).get('name')}"


def _announce(bridge: Knowledge, source: str, bad: list[str] | None) -> None:
    """The one line that says the labels were bridged, where the names came from, and how to
    turn it off."""
    names = names_of(bridge)
    shown = ", ".join(f"{lab}→{names[lab][0]}" for lab in list(names)[:6])
    more = f", … ({len(names)} labels)" if len(names) > 6 else ""
    why = f"{len(bad)} of {len(names)} labels look unfamiliar to the eyes: " if bad else ""
    log.info(
        "%sbridged to English names (%s; %s%s); --knowledge none turns it off",
        why,
        source,
        shown,
        more,
    )
