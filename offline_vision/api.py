"""The Python API: load the eyes and a reasoner, classify images, hold a dialogue.

from offline_vision import load_scorer, load_reasoner, classify, run_dialogue
eyes = load_scorer()                                  # CLIP if provisioned, else ConSE
print(classify(["photo.jpg"], labels="cat,dog,car", scorer=eyes)[0]["labels"][0])
print(classify([pil_image], labels="猫,犬,車", scorer=eyes)[0]["labels"][0])  # bridged
d = run_dialogue("photo.jpg", labels="cifar10", scorer=eyes, reasoner=load_reasoner())
print(d["answer"]["label"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PIL import Image

from offline_vision.config import Settings
from offline_vision.progress import announce_unless_configured


def _settings(settings: Settings | None) -> Settings:
    announce_unless_configured()  # what the CLI says (the eyes used, what was bridged) shows too
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
    from offline_vision.labels.sets import parse_labels, parse_list

    return parse_labels(labels) if isinstance(labels, str) else parse_list(labels)


def _reasoner(reasoner, settings: Settings):
    """A reasoner factory from an instance or a spec (`local` by default, as on the CLI),
    loaded only where a plan needs something written."""
    from offline_vision.labels.plan import lazy
    from offline_vision.models.reasoners import ReasonerOptions

    if reasoner is None or isinstance(reasoner, str):
        options = ReasonerOptions() if reasoner is None else ReasonerOptions(reasoner=reasoner)
        return lazy(lambda: options.load(settings))
    return lambda: reasoner


def plan_labels(
    labels: str | Sequence[str],
    *,
    scorer=None,
    reasoner=None,
    knowledge: str = "auto",
    templates: Sequence[str] | None = None,
    examples: str | Path | None = None,
    domain: str | None = None,
    settings: Settings | None = None,
):
    """The `LabelPlan` for a label set: what the eyes read for each label — bridged where they
    cannot read it (`knowledge="auto"`, as `ovision classify` does), `"none"` to read the labels
    as they are, or any `--knowledge` value. `reasoner`: a spec (default `local`) or a Reasoner.
    `examples`: a folder of label folders or a CSV path,label, as `--examples`; `domain`: what
    the labels are ("clothing"), as `--domain`."""
    from offline_vision.labels import examples as shots
    from offline_vision.labels.plan import resolve

    s = _settings(settings)
    eyes = scorer or load_scorer(settings=s)
    label_set = _labels(labels)
    taught = shots.load(examples, label_set.labels, eyes, s.cache_dir) if examples else None
    return resolve(
        label_set,
        eyes,
        knowledge=knowledge,
        templates=templates,
        cache_dir=s.cache_dir,
        reasoner=_reasoner(reasoner, s),
        examples=taught,
        domain=domain,
    )


def classify(
    images: Sequence,
    labels="imagenet",
    *,
    scorer=None,
    reasoner=None,
    knowledge: str = "auto",
    examples: str | Path | None = None,
    top_k: int = 5,
    settings: Settings | None = None,
) -> list[dict]:
    """Top-k labels per image (a dict with `labels`, or `error` for one that fails). `images`:
    file paths, PIL images or uint8 arrays. `labels`: a built-in set name, a comma list,
    `@file`, a list of strings, or a `LabelPlan` (`plan_labels`). Labels the eyes cannot read
    are bridged as on the command line (`knowledge="none"` turns it off); `examples` teach
    them as `--examples` does."""
    from offline_vision.classification import classify_images
    from offline_vision.labels.plan import LabelPlan

    eyes = scorer or load_scorer(settings=settings)
    plan = labels
    if not isinstance(plan, LabelPlan):
        plan = plan_labels(
            labels,
            scorer=eyes,
            reasoner=reasoner,
            knowledge=knowledge,
            examples=examples,
            settings=settings,
        )
    return list(classify_images(eyes, list(images), plan, top_k=top_k))


def run_dialogue(
    image: str | Path | Image.Image,
    labels: str | Sequence[str] = "cifar10",
    *,
    scorer=None,
    reasoner=None,
    known: bool = True,
    knowledge: str = "auto",
    settings: Settings | None = None,
    **config,
) -> dict:
    """One dialogue about one image (the LLM questions the eyes); returns its transcript.
    Labels the eyes cannot read are bridged as by `ovision dialogue`. `config`: DialogueConfig
    fields (policy, rounds, trust, shortlist, probe)."""
    from offline_vision.dialogue import DialogueConfig
    from offline_vision.dialogue import run_dialogue as _run
    from offline_vision.images import load_image
    from offline_vision.labels.plan import resolve

    s = _settings(settings)
    img = image if isinstance(image, Image.Image) else load_image(Path(image))
    eyes = scorer or load_scorer(settings=s)
    llm = reasoner or load_reasoner(settings=s)
    label_set = replace(_labels(labels), known=known)
    plan = resolve(
        label_set, eyes, knowledge=knowledge, cache_dir=s.cache_dir, reasoner=lambda: llm
    )
    return _run(img, eyes, llm, plan.label_set(known=known), config=DialogueConfig(**config))


def index(
    images: Sequence[str | Path],
    catalog: str | Path,
    *,
    scorer=None,
    store: str | None = None,
    settings: Settings | None = None,
) -> dict:
    """Embed `images` (files, directories or globs) into `catalog` once, as `ovision index`:
    new and changed files only; returns the counts. `store`: "float16" for a new catalog at
    half the bytes."""
    from offline_vision.catalog.index import index as _index
    from offline_vision.images import expand_paths

    eyes = scorer or load_scorer(settings=settings)
    paths = expand_paths([str(p) for p in images])
    return _index(paths, Path(catalog), eyes, dtype=store)


def tag(
    catalog: str | Path,
    groups,
    *,
    scorer=None,
    reasoner=None,
    knowledge: str = "auto",
    top_k: int = 1,
    multi=(),
    settings: Settings | None = None,
) -> list[dict]:
    """Each image of `catalog` tagged from its stored embeddings, as `ovision tag`: `groups`
    maps a group's name to its labels (a spec, a list or a `LabelPlan`); a single label set is
    the group "labels". `multi`: the groups tagged multi-label (`ovision tag --multi`)."""
    from offline_vision.catalog.store import Catalog
    from offline_vision.catalog.tag import tag as _tag
    from offline_vision.labels.plan import LabelPlan

    eyes = scorer or load_scorer(settings=settings)
    cat = Catalog.open(Path(catalog), eyes)
    if not isinstance(groups, dict):
        groups = {"labels": groups}
    plans = {
        g: p
        if isinstance(p, LabelPlan)
        else plan_labels(p, scorer=eyes, reasoner=reasoner, knowledge=knowledge, settings=settings)
        for g, p in groups.items()
    }
    return list(_tag(cat, plans, eyes, top_k=top_k, multi=multi))


def search(
    catalog: str | Path,
    text: str | None = None,
    *,
    like: str | Path | Image.Image | None = None,
    top: int = 10,
    scorer=None,
    settings: Settings | None = None,
) -> list[dict]:
    """The `top` images of `catalog` nearest `text` or the image `like`, exactly."""
    from offline_vision.catalog.store import Catalog
    from offline_vision.catalog.tag import search as _search
    from offline_vision.errors import BadInput
    from offline_vision.images import load_image

    if (text is None) == (like is None):
        raise BadInput("search takes a text or an image (like=), one of them")
    eyes = scorer or load_scorer(settings=settings)
    image = like if like is None or isinstance(like, Image.Image) else load_image(Path(like))
    return _search(Catalog.open(Path(catalog), eyes), eyes, text=text, like=image, top=top)
