"""How each evaluation's task is built from its options: here for the commands, and by each Ray
worker from the same (picklable) arguments. Nothing here imports click."""

from __future__ import annotations

from dataclasses import replace

from offline_vision.config import Settings
from offline_vision.dialogue import DialogueConfig
from offline_vision.errors import BadInput
from offline_vision.labels.plan import KnowledgeOptions
from offline_vision.labels.sets import LabelSet, default_templates
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
    label_set: LabelSet,
    config: DialogueConfig,
    eyes: EyesOptions,
    reasoner: ReasonerOptions,
    knowledge: str,
):
    """(eyes, reasoner, follow-up or None, plan) for a dialogue over `label_set`."""
    from offline_vision.labels.plan import resolve
    from offline_vision.labels.scoring import FollowUp

    scorer = eyes.load(settings)
    llm = reasoner.load(settings)
    cache = settings.cache_dir
    plan = resolve(label_set, scorer, knowledge=knowledge, cache_dir=cache, reasoner=lambda: llm)
    if plan.knowledge is not None:
        raise BadInput("the dialogue takes --knowledge auto, none, names or a names file")
    follow = None
    if config.end == "follow-up":
        k = max(config.shortlist, 2)
        follow = FollowUp(scorer, llm, k=k, threshold=1.01, cache_dir=cache, names=plan.names)
    return scorer, llm, follow, plan


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


def eval_labels(dataset, labels: str | None, *, known: bool = True) -> LabelSet:
    """The label set an evaluation reads its dataset's classes by: built-in where the classes
    keep their names (never bridged), custom where `--labels` renamed them."""
    return LabelSet("custom" if labels else dataset.name, tuple(dataset.classes), known)


def clip_task(
    settings: Settings,
    *,
    dataset: str,
    labels: str | None,
    template: str | None,
    eyes: EyesOptions,
    knowledge: KnowledgeOptions,
    reasoner: ReasonerOptions,
    examples: str | None = None,
    shot_items: tuple[int, ...] = (),
    shot_source: str = "",
):
    """The `eval clip` task; taught by `examples` (a folder or CSV) or by the dataset's
    `shot_items` (`--shots`, drawn by the command: `shot_source` says how)."""
    from offline_vision.eval.tasks import ScorerTask
    from offline_vision.labels import examples as shots
    from offline_vision.labels.plan import lazy, resolve
    from offline_vision.labels.scoring import follow_up
    from offline_vision.labels.sets import parse_template

    ds = eval_dataset(settings, dataset, labels)
    templates = parse_template(template, LabelSet(ds.name, ds.classes)) if template else None
    scorer = eyes.load(settings, spin=not knowledge.follow_up)
    # The dataset's own templates, renamed or not (CLIP's ensemble for CIFAR-10's classes).
    templates = templates or default_templates(ds.name, scorer.templates)
    llm, cache = lazy(lambda: reasoner.load(settings)), settings.cache_dir
    taught = None
    if examples:
        taught = shots.load(examples, ds.classes, scorer, cache)
    elif shot_items:
        taught = shots.from_dataset(ds, shot_items, scorer, cache, shot_source)
    plan = resolve(
        eval_labels(ds, labels),
        scorer,
        knowledge=knowledge.knowledge,
        templates=templates,
        cache_dir=cache,
        reasoner=llm,
        examples=taught,
        domain=knowledge.domain,
    )
    return ScorerTask(ds, scorer, plan, follow_up=follow_up(plan, scorer, knowledge, llm, cache))


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
    scorer, llm, follow, plan = dialogue_parts(
        settings, eval_labels(ds, labels, known=known), config, eyes, reasoner, knowledge
    )
    return DialogueTask(
        ds,
        scorer,
        llm,
        plan,
        known=known,
        config=config,
        sampling_seed=rng_seed,
        follow_up=follow,
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
