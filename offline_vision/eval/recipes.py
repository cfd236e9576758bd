"""How each evaluation's task is built from its options: here for the commands, and by each Ray
worker from the same (picklable) arguments. Nothing here imports click."""

from __future__ import annotations

from dataclasses import replace

from offline_vision.config import Settings
from offline_vision.dialogue import DialogueConfig
from offline_vision.errors import BadInput
from offline_vision.labels.plan import KnowledgeOptions
from offline_vision.models.loader import EyesOptions
from offline_vision.models.reasoners import ReasonerOptions
from offline_vision.pixels import PixelOptions


def eval_dataset(settings: Settings, dataset: str, labels: str | None):
    """The dataset, its classes renamed by `--labels` where given."""
    from offline_vision.eval.datasets import Renamed, class_names, open_dataset

    ds = open_dataset(settings.data_dir, dataset)
    return Renamed(ds, class_names(labels, ds.classes)) if labels else ds


def dialogue_parts(
    settings: Settings,
    labels: list[str],
    config: DialogueConfig,
    eyes: EyesOptions,
    reasoner: ReasonerOptions,
    knowledge: str,
    *,
    builtin: bool,
):
    """(eyes, reasoner, follow-up or None, bridge or None) for a dialogue."""
    from offline_vision.labels.plan import resolve
    from offline_vision.labels.scoring import FollowUp
    from offline_vision.labels.writers.names import names_of

    scorer = eyes.load(settings)
    llm = reasoner.load(settings)
    bridge, other = resolve(
        knowledge,
        labels,
        scorer,
        builtin=builtin,
        cache_dir=settings.cache_dir,
        reasoner_factory=lambda: llm,
    )
    if other is not None:
        raise BadInput("the dialogue takes --knowledge auto, none, names or a names file")
    follow = None
    if config.end == "follow-up":
        k = max(config.shortlist, 2)
        follow = FollowUp(
            scorer, llm, k=k, threshold=1.01, cache_dir=settings.cache_dir, names=names_of(bridge)
        )
    return scorer, llm, follow, bridge


def pixel_method(
    settings: Settings, options: PixelOptions, reasoner: ReasonerOptions, rng_seed: int
):
    """The pixel strategy's method, with the MNIST train pool where it needs one."""
    pool = None
    if options.needs_pool:
        from offline_vision.eval.datasets import Mnist
        from offline_vision.pixels import Pool

        train = Mnist(settings.data_dir / "mnist", "train")
        pool = Pool.from_arrays(train.images, train.labels)
    llm = reasoner.load(settings) if options.uses_llm else None
    return options.method(llm, pool, shot_seed=rng_seed)


def clip_task(
    settings: Settings,
    *,
    dataset: str,
    labels: str | None,
    template: str | None,
    eyes: EyesOptions,
    knowledge: KnowledgeOptions,
    reasoner: ReasonerOptions,
):
    """The `eval clip` task."""
    from offline_vision.eval.tasks import ScorerTask
    from offline_vision.labels import plan
    from offline_vision.labels.sets import LabelSet, parse_template

    ds = eval_dataset(settings, dataset, labels)
    templates = parse_template(template, LabelSet(ds.name, ds.classes)) if template else None
    scorer = eyes.load(settings, spin=not knowledge.follow_up)
    bridge, k, follow_up = plan.parts(
        settings, list(ds.classes), scorer, knowledge, reasoner, builtin=not labels
    )
    return ScorerTask(ds, scorer, templates, knowledge=k, follow_up=follow_up, bridge=bridge)


def dialogue_task(
    settings: Settings,
    *,
    known: bool,
    dataset: str,
    labels: str | None,
    rng_seed: int,
    config: DialogueConfig,
    eyes: EyesOptions,
    reasoner: ReasonerOptions,
    knowledge: str,
):
    """The `eval dialogue` / `eval dialogue-open` task."""
    from offline_vision.eval.tasks import DialogueTask

    ds = eval_dataset(settings, dataset, labels)
    scorer, llm, follow, bridge = dialogue_parts(
        settings,
        list(ds.classes),
        config,
        eyes,
        reasoner,
        knowledge,
        builtin=not labels or not known,
    )
    return DialogueTask(
        ds,
        scorer,
        llm,
        known=known,
        config=config,
        sampling_seed=rng_seed,
        follow_up=follow,
        bridge=bridge,
    )


def pixel_task(
    settings: Settings,
    *,
    dataset: str,
    rng_seed: int,
    pixels: PixelOptions,
    reasoner: ReasonerOptions,
):
    """The `eval pixels` task."""
    from offline_vision.eval.datasets import open_dataset
    from offline_vision.eval.tasks import PixelTask

    ds = open_dataset(settings.data_dir, dataset)
    return PixelTask(ds, pixel_method(settings, pixels, reasoner, rng_seed))


def for_workers(settings: Settings) -> Settings:
    """The settings a recipe carries: evaluations never pull, so index and hub URLs (which may
    carry credentials) stay in this process."""
    from offline_vision.config import DEFAULT_HUB_URL, DEFAULT_PYPI_URL

    return replace(settings, hub_url=DEFAULT_HUB_URL, pypi_url=DEFAULT_PYPI_URL)
