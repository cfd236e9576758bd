"""`ovision eval clip|dialogue|dialogue-open|pixels`: resumable runs over a dataset."""

from __future__ import annotations

import re
from pathlib import Path

import click

from offline_vision.commands.common import (
    apply,
    click_options,
    eval_data_options,
    labels_option,
    ray_options,
    settings_of,
    template_option,
)
from offline_vision.dialogue import DialogueConfig
from offline_vision.errors import BadInput
from offline_vision.eval import recipes
from offline_vision.labels.examples import ExampleOptions
from offline_vision.labels.plan import KnowledgeOptions
from offline_vision.models.loader import EyesOptions
from offline_vision.models.reasoners import ReasonerOptions
from offline_vision.options import take
from offline_vision.pixels import PixelOptions


@click.group("eval")
def eval_group() -> None:
    """Evaluate on a dataset: JSONL per item (appended, resumable) and a summary per run."""


def run_dir(settings, out: Path | None, *parts) -> Path:
    if out is not None:
        return out
    name = "-".join(str(p) for p in parts if p not in (None, ""))
    return settings.runs_dir / re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)


def eval_common(settings, dataset, sample, limit, seed):
    from offline_vision.eval.datasets import open_dataset, read_sample, select

    if limit is not None and limit < 1:
        raise BadInput("--limit must be at least 1")
    ds = open_dataset(settings.data_dir, dataset)
    chosen = read_sample(settings.data_dir, ds, sample) if sample else None
    return ds, select(ds, sample=chosen, limit=limit, seed=seed)


concurrency_option = click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Items in flight at once (with --ray: per worker): for an openai: reasoner, whose "
    "server takes parallel requests (a local GGUF answers one at a time).",
)


def ray_plan(spec, build, settings, **kwargs):
    """(task, RayPlan or None): the task built here by `build(settings, **kwargs)` (a function
    of `eval.recipes`), and with --ray the same recipe for the workers to build their own."""
    from offline_vision.eval.cluster import RayPlan, Recipe, import_ray

    if spec is not None:
        import_ray()  # a missing Ray is one line before any run directory is written
    recipe = Recipe(build, recipes.for_workers(settings), kwargs)
    if spec is None:
        return recipe(), None
    address, workers, threads = spec
    return recipe(), RayPlan(recipe, address=address, workers=workers, threads=threads)


eval_data = [*eval_data_options("cifar10"), concurrency_option]


def check_concurrency(concurrency: int, reasoner: ReasonerOptions | None) -> None:
    """Refuse to share one local GGUF across threads (it answers one request at a time)."""
    if concurrency > 1 and reasoner is not None and not reasoner.hosted:
        raise BadInput(
            f"--concurrency {concurrency} needs an openai: reasoner; {reasoner.reasoner} (a local "
            "GGUF) answers one request at a time"
        )


def _run(settings, task, ray_run, indices, ds, out, concurrency):
    from offline_vision.eval import runner

    source: runner.ResultSource
    if ray_run is None:
        source = runner.Threads(concurrency)
    else:
        from offline_vision.eval.cluster import RaySource

        source = RaySource(ray_run, concurrency)
    # The task's classes: under --labels, the renamed ones its records name.
    summary = runner.run(task, indices, out, classes=task.dataset.classes, source=source)
    lo, hi = summary["ci95"]
    click.echo(
        f"{out}: accuracy {summary['accuracy']:.1%} (95% CI {lo:.1%}–{hi:.1%}, n={summary['n']})"
    )


def _labels_tag(labels: str | None) -> str | None:
    """A run directory's word for renamed classes: the label file's stem, else 'renamed'."""
    if not labels:
        return None
    return Path(labels[1:]).stem if labels.startswith("@") else "renamed"


eval_labels_option = labels_option(
    None,
    "Other names for the dataset's classes, one per class in its class order (a comma list "
    "or @file.txt, one a line): the run is scored and reported under these names.",
)


@eval_group.command("clip")
@apply(eval_data)
@eval_labels_option
@click_options(EyesOptions)
@template_option("per dataset")
@click_options(KnowledgeOptions, ReasonerOptions)
@click_options(ExampleOptions)
@ray_options
@click.pass_context
def eval_clip(ctx, dataset, sample, limit, seed, out, concurrency, ray, labels, template, **opts):
    """Trial 1: the scorer alone over the dataset's class names (with --knowledge or
    --follow-up, label knowledge a reasoner wrote; with --shots K, K examples per class drawn
    from the items not evaluated).

    \b
      ovision eval clip --sample cifar10-300 --shots 16
    """
    settings = settings_of(ctx)
    eyes, know = take(EyesOptions, opts), take(KnowledgeOptions, opts)
    reasoner, taught = take(ReasonerOptions, opts), take(ExampleOptions, opts)
    check_concurrency(concurrency, reasoner if know.follow_up else None)
    ds, indices = eval_common(settings, dataset, sample, limit, seed)
    parts = dict(labels=labels, template=template, eyes=eyes, knowledge=know, reasoner=reasoner)
    parts |= _shots(settings, ds, indices, taught, seed)
    task, ray_run = ray_plan(ray, recipes.clip_task, settings, dataset=dataset, **parts)
    extra = [_labels_tag(labels), "bridged" if task.plan.bridge else None]
    extra += [know.knowledge if task.plan.knowledge else None]
    extra += [f"k{taught.shots}" if taught.shots else "examples" if taught.examples else None]
    extra += [f"fu{know.follow_up}" if task.follow_up else None]
    out = run_dir(
        settings,
        out,
        "clip",
        dataset,
        sample or f"n{len(indices)}",
        task.scorer.describe()["scorer"],
        *[Path(e).stem if e and "/" in e else e for e in extra],
    )
    _run(settings, task, ray_run, indices, ds, out, concurrency)


def _shots(settings, ds, indices, taught: ExampleOptions, seed: int) -> dict:
    """The clip task's examples: a folder or CSV, or --shots K drawn from a pool disjoint from
    the evaluated items (overlap refused)."""
    from offline_vision.eval.datasets import read_sample
    from offline_vision.labels.examples import draw

    if taught.shots_from and not taught.shots:
        raise BadInput("--shots-from needs --shots K")
    if taught.shots and taught.examples:
        raise BadInput("--shots draws examples from the dataset; --examples brings your own: one")
    if not taught.shots:
        return {"examples": taught.examples}
    evaluated = set(indices)
    if taught.shots_from:
        pool = read_sample(settings.data_dir, ds, taught.shots_from)
        overlap = evaluated.intersection(pool)
        if overlap:
            raise BadInput(
                f"--shots-from {taught.shots_from}: {len(overlap)} of its items are evaluated "
                "too; the examples must be other images"
            )
        where = taught.shots_from
    else:
        every = ds.indices if hasattr(ds, "indices") else range(len(ds))
        pool = [i for i in every if i not in evaluated]
        where = f"the {len(pool)} items not evaluated"
    items = draw(ds, pool, taught.shots, seed)
    source = f"{ds.name}: {taught.shots} per class from {where} (seed {seed})"
    return {"shot_items": tuple(items), "shot_source": source}


def _eval_dialogue(ctx, known, dataset, sample, limit, seed, out, concurrency, ray, labels, **opts):
    settings = settings_of(ctx)
    config, eyes = take(DialogueConfig, opts), take(EyesOptions, opts)
    reasoner, knowledge = take(ReasonerOptions, opts), take(KnowledgeOptions, opts).knowledge
    check_concurrency(concurrency, reasoner)
    ds, indices = eval_common(settings, dataset, sample, limit, seed)
    parts = dict(known=known, dataset=dataset, labels=labels, rng_seed=seed, config=config)
    parts.update(eyes=eyes, reasoner=reasoner, knowledge=knowledge)
    task, ray_run = ray_plan(ray, recipes.dialogue_task, settings, **parts)
    who = reasoner.reasoner.split("/")[-1].replace("local:", "")
    out = run_dir(
        settings,
        out,
        "dialogue" if known else "dialogue-open",
        dataset,
        sample or f"n{len(indices)}",
        _labels_tag(labels),
        "bridged" if task.plan.bridge else None,
        config.policy,
        who,
        task.scorer.describe()["scorer"],
    )
    _run(settings, task, ray_run, indices, ds, out, concurrency)


def dialogue_options(command):
    """The dialogue's own options, its eyes', its reasoner's and the bridge (`--knowledge`)."""
    command = click_options(KnowledgeOptions, only=("knowledge",))(command)
    return click_options(DialogueConfig, ReasonerOptions, EyesOptions)(command)


@eval_group.command("dialogue")
@apply(eval_data)
@dialogue_options
@eval_labels_option
@ray_options
@click.pass_context
def eval_dialogue(ctx, **kw):
    """Trial 2: the dialogue, the label set known, the answer one of it."""
    _eval_dialogue(ctx, True, **kw)


@eval_group.command("dialogue-open")
@apply(eval_data)
@dialogue_options
@eval_labels_option
@ray_options
@click.pass_context
def eval_dialogue_open(ctx, **kw):
    """Trial 3: the dialogue without the label set; free answers mapped by documented rules."""
    _eval_dialogue(ctx, False, **kw)


@eval_group.command("pixels")
@apply(eval_data_options("mnist", seed_help="Item draw and few-shot draw."))
@click_options(PixelOptions, ReasonerOptions)
@concurrency_option
@ray_options
@click.pass_context
def eval_pixels(ctx, dataset, limit, seed, sample, out, concurrency, ray, **opts):
    """Pixel prompting on MNIST test digits (with the knn and majority baselines)."""
    settings = settings_of(ctx)
    if dataset != "mnist":
        raise BadInput(f"eval pixels runs on mnist, not {dataset!r}")
    pixels, reasoner = take(PixelOptions, opts), take(ReasonerOptions, opts)
    check_concurrency(concurrency, reasoner if pixels.uses_llm else None)
    ds, indices = eval_common(settings, dataset, sample, limit, seed)
    parts = dict(dataset=dataset, rng_seed=seed, pixels=pixels, reasoner=reasoner)
    task, ray_run = ray_plan(ray, recipes.pixel_task, settings, **parts)
    who = reasoner.reasoner.split("/")[-1] if pixels.uses_llm else None
    out = run_dir(
        settings,
        out,
        "pixels",
        pixels.strategy,
        pixels.encoding if who else None,
        who,
        f"n{len(indices)}",
        f"s{seed}",
    )
    _run(settings, task, ray_run, indices, ds, out, concurrency)
