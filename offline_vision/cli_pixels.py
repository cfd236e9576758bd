"""`ovision pixels` and `ovision eval pixels`: pixel prompting on MNIST."""

from __future__ import annotations

import json
from pathlib import Path

import click

from offline_vision.cli_common import (
    apply,
    base_url_option,
    ctx_option,
    json_option,
    reasoner_option,
    settings_of,
)
from offline_vision.cli_eval import (
    check_concurrency,
    concurrency_option,
    eval_common,
    eval_group,
    finish,
    ray_options,
    ray_plan,
    run_dir,
)
from offline_vision.errors import BadInput


def _load_pool(settings):
    from offline_vision.eval.datasets import Mnist
    from offline_vision.pixels import Pool

    train = Mnist(settings.data_dir / "mnist", "train")
    return Pool.from_arrays(train.images, train.labels)


def _pixel_method(
    settings, *, strategy, reasoner, base_url, ctx_, encoding, shots, seed, lang, budget
):
    from offline_vision.pixels import Baseline, Prompter

    needs_pool = strategy in ("few-shot", "retrieved", "knn", "majority")
    pool = _load_pool(settings) if needs_pool else None
    if strategy in ("knn", "majority"):
        return Baseline(strategy, pool, k=shots)
    from offline_vision.models.reasoners import load_reasoner

    r = load_reasoner(settings, reasoner, base_url=base_url, n_ctx=ctx_)
    return Prompter(
        r,
        strategy,
        encoding=encoding,
        shots=shots,
        pool=pool,
        seed=seed,
        lang=lang,
        budget_tokens=budget,
    )


strategy_option = click.option(
    "--strategy",
    type=click.Choice(
        ["seed", "zero-shot", "few-shot", "retrieved", "feedback", "knn", "majority"]
    ),
    default="retrieved",
    show_default=True,
    help="seed: the post's prompt; few-shot: K random train digits; retrieved: the K nearest "
    "train digits (retrieval); feedback: sequential loop told the truth after each answer; "
    "knn / majority: baselines with no LLM.",
)
pixel_options = [
    strategy_option,
    click.option(
        "--shots",
        type=click.IntRange(1, 50),
        default=5,
        show_default=True,
        help="K for few-shot, retrieved and knn.",
    ),
    click.option(
        "--encoding",
        type=click.Choice(["seed", "digits", "ascii"]),
        default="ascii",
        show_default=True,
        help="How the grid is written: ascii (shades, ~90 tokens a digit), digits (0-9 a cell, "
        "~420), seed (the post's decimals, ~2000). The seed strategy always uses seed.",
    ),
    click.option(
        "--lang",
        type=click.Choice(["en", "ja"]),
        default="en",
        show_default=True,
        help="Language of the seed prompt.",
    ),
    click.option(
        "--budget",
        type=click.IntRange(500),
        default=6000,
        show_default=True,
        help="feedback: context budget in tokens; the oldest digits are dropped first.",
    ),
    reasoner_option,
    base_url_option,
    ctx_option,
]


@click.command()
@click.argument("image", type=click.Path(path_type=Path))
@apply(pixel_options)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--invert", is_flag=True, help="Dark ink on light paper (MNIST is light on dark).")
@click.option("--show-grid", is_flag=True, help="Print the grid as the model sees it.")
@json_option
@click.pass_context
def pixels(ctx, image, seed, invert, show_grid, as_json, **opts):
    """Name the digit in IMAGE from its pixels alone (the grid goes into the LLM's prompt)."""
    from PIL import ImageOps

    from offline_vision.images import load_image
    from offline_vision.pixels import encode, to_grid

    img = load_image(image).convert("L")
    if invert:
        img = ImageOps.invert(img)
    grid = to_grid(img)
    method = _pixel_method(settings_of(ctx), seed=seed, **opts)
    p = method.predict(grid)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "image": str(image),
                    "prediction": p.prediction,
                    "config": method.config(),
                    "tokens": p.tokens,
                    "examples": p.examples,
                    "transcript": p.transcript,
                },
                ensure_ascii=False,
            )
        )
        return
    if show_grid:
        click.echo(encode(grid, "seed" if opts["strategy"] == "seed" else opts["encoding"]))
    click.echo(p.prediction)


def pixel_task(settings, *, dataset, seed, opts):
    """The `eval pixels` task (built here, and by each Ray worker from the same arguments)."""
    from offline_vision.eval.datasets import open_dataset
    from offline_vision.eval.tasks import PixelTask

    ds = open_dataset(settings.data_dir, dataset)
    return PixelTask(ds, _pixel_method(settings, seed=seed, **opts))


@eval_group.command("pixels")
@click.option("--dataset", default="mnist", show_default=True, help="Only mnist for now.")
@click.option("--limit", type=int, help="Evaluate this many items (after --sample / seeded draw).")
@click.option("--seed", type=int, default=0, show_default=True, help="Item draw and few-shot draw.")
@click.option("--sample", help="A sample file (one test index a line) instead of a seeded draw.")
@apply(pixel_options)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Run directory (default: runs/<name>)."
)
@concurrency_option
@ray_options
@click.pass_context
def eval_pixels(ctx, dataset, limit, seed, sample, out, concurrency, ray, **opts):
    """Pixel prompting on MNIST test digits (with the knn and majority baselines)."""
    from offline_vision.eval import runner

    settings = settings_of(ctx)
    if dataset != "mnist":
        raise BadInput(f"eval pixels runs on mnist, not {dataset!r}")
    llm_used = opts["strategy"] not in ("knn", "majority")
    check_concurrency(concurrency, opts["reasoner"] if llm_used else None)
    ds, indices = eval_common(settings, dataset, sample, limit, seed)
    task, plan = ray_plan(ray, pixel_task, settings, dataset=dataset, seed=seed, opts=opts)
    strategy, encoding = opts["strategy"], opts["encoding"]
    who = None if strategy in ("knn", "majority") else opts["reasoner"].split("/")[-1]
    out = run_dir(
        settings,
        out,
        "pixels",
        strategy,
        encoding if who else None,
        who,
        f"n{len(indices)}",
        f"s{seed}",
    )
    summary = runner.run(task, indices, out, classes=ds.classes, concurrency=concurrency, ray=plan)
    finish(out, summary)
