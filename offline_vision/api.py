"""The Python API: load the eyes and a reasoner, classify images, hold a dialogue.

from offline_vision import load_scorer, load_reasoner, classify, run_dialogue
eyes = load_scorer()                                  # CLIP if provisioned, else ConSE
print(classify(["photo.jpg"], labels="cat,dog,car", scorer=eyes)[0]["labels"][0])
d = run_dialogue("photo.jpg", labels="cifar10", scorer=eyes, reasoner=load_reasoner())
print(d["answer"]["label"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PIL import Image

from offline_vision.config import Settings


def _settings(settings: Settings | None) -> Settings:
    return settings or Settings.from_env()


def load_scorer(which: str = "auto", *, precision: str = "auto", settings: Settings | None = None):
    """The eyes: `auto` (CLIP when provisioned, else the ConSE stand-in), `clip` or `conse`."""
    from offline_vision.models.loader import load_scorer as _load

    return _load(_settings(settings), which, precision=precision)


def load_reasoner(
    spec: str = "local", *, base_url: str | None = None, settings: Settings | None = None
):
    """A reasoner: `local`, `local:NAME`, `local:/path.gguf` or `openai:MODEL`."""
    from offline_vision.models.reasoners import load_reasoner as _load

    return _load(_settings(settings), spec, base_url=base_url)


def _labels(labels: str | Sequence[str]):
    from offline_vision.labels.sets import LabelSet, parse_labels

    return parse_labels(labels) if isinstance(labels, str) else LabelSet("custom", tuple(labels))


def classify(
    images: Sequence[str | Path],
    labels: str | Sequence[str] = "imagenet",
    *,
    scorer=None,
    top_k: int = 5,
    knowledge=None,
    bridge=None,
) -> list[dict]:
    """Top-k labels per image file (a dict with `labels`, or `error` for a file that fails).
    `labels`: a built-in set name, a comma list, `@file`, or a list of strings. `bridge`: a
    names knowledge file (`ovision labels expand --strategy names`) or its Knowledge."""
    from offline_vision.classification import classify_paths

    eyes = scorer or load_scorer()
    label_set = _labels(labels)
    templates = eyes.default_templates(label_set.name)
    paths = [Path(p) for p in images]
    if isinstance(bridge, str | Path):
        from offline_vision.labels.store import Knowledge

        bridge = Knowledge.load(Path(bridge))
    return list(
        classify_paths(
            eyes,
            paths,
            label_set.labels,
            templates,
            top_k=top_k,
            knowledge=knowledge,
            bridge=bridge,
        )
    )


def run_dialogue(
    image: str | Path | Image.Image,
    labels: str | Sequence[str] = "cifar10",
    *,
    scorer=None,
    reasoner=None,
    known: bool = True,
    **config,
) -> dict:
    """One dialogue about one image (the LLM questions the eyes); returns its transcript.
    `config`: DialogueConfig fields (policy, rounds, trust, shortlist, probe)."""
    from offline_vision.dialogue import DialogueConfig
    from offline_vision.dialogue import run_dialogue as _run
    from offline_vision.images import load_image

    img = image if isinstance(image, Image.Image) else load_image(Path(image))
    label_set = _labels(labels)
    return _run(
        img,
        scorer or load_scorer(),
        reasoner or load_reasoner(),
        replace(label_set, known=known),
        config=DialogueConfig(**config),
    )
