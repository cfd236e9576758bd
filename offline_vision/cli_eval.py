"""`ovision pixels`, `ovision eval …` and `ovision report`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from offline_vision.cli import (
    base_url_option,
    ctx_option,
    json_option,
    reasoner_option,
    settings_of,
)
from offline_vision.errors import BadInput


def _load_pool(settings):
    from offline_vision.eval.datasets import Mnist
    from offline_vision.pixels import Pool

    train = Mnist(settings.data_dir / "mnist", "train")
    return Pool.from_arrays(train.images, train.labels)


def _pixel_method(
    settings, strategy, *, reasoner, base_url, ctx_, encoding, shots, seed, lang, budget
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
        default="digits",
        show_default=True,
        help="How the grid is written (seed strategy: always 'seed').",
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


def _apply(options):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco


@click.command()
@click.argument("image", type=click.Path(path_type=Path))
@_apply(pixel_options)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--invert", is_flag=True, help="Dark ink on light paper (MNIST is light on dark).")
@click.option("--show-grid", is_flag=True, help="Print the grid as the model sees it.")
@json_option
@click.pass_context
def pixels(
    ctx,
    image,
    strategy,
    shots,
    encoding,
    lang,
    budget,
    reasoner,
    base_url,
    ctx_,
    seed,
    invert,
    show_grid,
    as_json,
):
    """Name the digit in IMAGE from its pixels alone (the grid goes into the LLM's prompt)."""
    from PIL import ImageOps

    from offline_vision.images import load_image
    from offline_vision.pixels import encode, to_grid

    img = load_image(image).convert("L")
    if invert:
        img = ImageOps.invert(img)
    grid = to_grid(img)
    method = _pixel_method(
        settings_of(ctx),
        strategy,
        reasoner=reasoner,
        base_url=base_url,
        ctx_=ctx_,
        encoding=encoding,
        shots=shots,
        seed=seed,
        lang=lang,
        budget=budget,
    )
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
        click.echo(encode(grid, "seed" if strategy == "seed" else encoding))
    click.echo(p.prediction)


@click.group("eval")
def eval_group() -> None:
    """Evaluate on a dataset: JSONL per item (appended, resumable) and a summary per run."""


def _run_dir(settings, out: Path | None, *parts) -> Path:
    if out is not None:
        return out
    name = "-".join(str(p) for p in parts if p not in (None, ""))
    return settings.runs_dir / re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)


@eval_group.command("pixels")
@click.option("--dataset", default="mnist", show_default=True, help="Only mnist for now.")
@click.option("--limit", type=int, help="Evaluate this many items (after --sample / seeded draw).")
@click.option("--seed", type=int, default=0, show_default=True, help="Item draw and few-shot draw.")
@click.option("--sample", help="A sample file (one test index a line) instead of a seeded draw.")
@_apply(pixel_options)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Run directory (default: runs/<name>)."
)
@click.pass_context
def eval_pixels(
    ctx,
    dataset,
    limit,
    seed,
    sample,
    strategy,
    shots,
    encoding,
    lang,
    budget,
    reasoner,
    base_url,
    ctx_,
    out,
):
    """Pixel prompting on MNIST test digits (with the knn and majority baselines)."""
    from offline_vision.eval import runner
    from offline_vision.eval.datasets import open_dataset, read_sample, select
    from offline_vision.pixels import PixelTask

    settings = settings_of(ctx)
    if dataset != "mnist":
        raise BadInput(f"eval pixels runs on mnist, not {dataset!r}")
    if limit is not None and limit < 1:
        raise BadInput("--limit must be at least 1")
    ds = open_dataset(settings.data_dir, dataset)
    indices = select(
        ds,
        sample=read_sample(settings.data_dir, ds, sample) if sample else None,
        limit=limit,
        seed=seed,
    )
    method = _pixel_method(
        settings,
        strategy,
        reasoner=reasoner,
        base_url=base_url,
        ctx_=ctx_,
        encoding=encoding,
        shots=shots,
        seed=seed,
        lang=lang,
        budget=budget,
    )
    who = None if strategy in ("knn", "majority") else reasoner.split("/")[-1]
    out = _run_dir(
        settings,
        out,
        "pixels",
        strategy,
        encoding if who else None,
        who,
        f"n{len(indices)}",
        f"s{seed}",
    )
    summary = runner.run(PixelTask(ds, method), indices, out, classes=ds.classes)
    lo, hi = summary["ci95"]
    click.echo(
        f"{out}: accuracy {summary['accuracy']:.1%} (95% CI {lo:.1%}–{hi:.1%}, n={summary['n']})"
    )


@click.command()
@click.argument(
    "runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs/report"), show_default=True
)
@click.option(
    "--pair",
    nargs=2,
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Compare two runs on their shared items (McNemar's exact test). Repeatable.",
)
@click.option(
    "--baseline",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Compare every run with this one.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of Markdown.")
def report(runs, out, pair, baseline, as_csv):
    """Merge RUNS into one table (Markdown/CSV), plot each run, compare paired runs."""
    from offline_vision.eval import report as rep

    result = rep.report(list(runs), out, pairs=list(pair), baseline=baseline)
    click.echo(rep.to_csv(result["rows"]) if as_csv else rep.markdown(result["rows"]), nl=False)
    if result["paired"]:
        click.echo("\n" + rep.paired_markdown(result["paired"]), nl=False)
    click.echo(f"\nwrote {out}/runs.md, runs.csv and {len(result['plots'])} plot(s)", err=True)


# --- the dialogue --------------------------------------------------------------------------

dialogue_options = [
    click.option(
        "--policy",
        type=click.Choice(["seed", "adaptive"]),
        default="adaptive",
        show_default=True,
        help="seed: the post's procedure (fixed rounds); adaptive: back-off on flat "
        "scores, early stop, one-label answers.",
    ),
    click.option("--rounds", type=click.IntRange(1, 20), default=5, show_default=True),
    click.option(
        "--no-probe",
        is_flag=True,
        help="Skip the per-round 'answer now' probes (they feed accuracy-by-round).",
    ),
    reasoner_option,
    base_url_option,
    ctx_option,
    click.option(
        "--scorer",
        type=click.Choice(["auto", "clip", "conse"]),
        default="auto",
        show_default=True,
        help="auto: CLIP when provisioned, else the ConSE stand-in.",
    ),
    click.option(
        "--precision",
        type=click.Choice(["auto", "fp32", "int8"]),
        default="auto",
        show_default=True,
        help="CLIP ONNX precision.",
    ),
]


def _dialogue_parts(
    settings, *, policy, rounds, no_probe, reasoner, base_url, ctx_, scorer, precision
):
    from offline_vision.dialogue import DialogueConfig
    from offline_vision.models.loader import load_scorer
    from offline_vision.models.reasoners import load_reasoner

    cfg = DialogueConfig(policy=policy, rounds=rounds, probe=not no_probe)
    eyes = load_scorer(settings, scorer, precision=precision)
    return cfg, eyes, load_reasoner(settings, reasoner, base_url=base_url, n_ctx=ctx_)


@click.command()
@click.argument("image", type=click.Path(path_type=Path))
@click.option(
    "--labels",
    default="cifar10",
    show_default=True,
    help="The label set the answer must come from (built-in, comma list or @file).",
)
@click.option(
    "--open", "open_", is_flag=True, help="No label set: the LLM names the object freely."
)
@_apply(dialogue_options)
@json_option
@click.pass_context
def dialogue(
    ctx,
    image,
    labels,
    open_,
    policy,
    rounds,
    no_probe,
    reasoner,
    base_url,
    ctx_,
    scorer,
    precision,
    as_json,
):
    """Let the LLM question the scorer about IMAGE, round by round, then answer."""
    from offline_vision.dialogue import run_dialogue
    from offline_vision.images import load_image
    from offline_vision.labels import parse_labels

    settings = settings_of(ctx)
    img = load_image(image)
    label_set = parse_labels(labels)
    cfg, eyes, llm = _dialogue_parts(
        settings,
        policy=policy,
        rounds=rounds,
        no_probe=no_probe,
        reasoner=reasoner,
        base_url=base_url,
        ctx_=ctx_,
        scorer=scorer,
        precision=precision,
    )
    d = run_dialogue(
        img,
        eyes,
        llm,
        list(label_set.labels),
        known=not open_,
        label_set=label_set.name,
        config=cfg,
    )
    if as_json:
        click.echo(
            json.dumps(
                {"image": str(image), "scorer": eyes.describe(), "reasoner": llm.describe(), **d},
                ensure_ascii=False,
            )
        )
        return
    width = max(24, *(len(", ".join(r["candidates"])) + 8 for r in d["rounds"]))
    click.echo(
        f"{'round':<6}{'the LLM asks':<{width}}the eyes answer ({eyes.describe()['scorer']})"
    )
    for r in d["rounds"]:
        asks = "? ".join(r["candidates"]) + "?"
        answers = ", ".join(f"{lab} {p:.0%}" for lab, p in r["scores"])
        mark = " (flat)" if r["flat"] else ""
        click.echo(f"{r['round']:<6}{asks:<{width}}{answers}{mark}")
    a = d["answer"]
    rule = "" if a["rule"] == "choice" else f"  [raw {a['raw']!r}, mapped by {a['rule']}]"
    stop = f" (stopped after round {d['stopped_after']})" if d["stopped_after"] else ""
    click.echo(f"answer: {a['label'] or 'unmapped'}{rule}{stop}")


def _eval_common(settings, dataset, sample, limit, seed):
    from offline_vision.eval.datasets import open_dataset, read_sample, select

    if limit is not None and limit < 1:
        raise BadInput("--limit must be at least 1")
    ds = open_dataset(settings.data_dir, dataset)
    chosen = read_sample(settings.data_dir, ds, sample) if sample else None
    return ds, select(ds, sample=chosen, limit=limit, seed=seed)


eval_data_options = [
    click.option("--dataset", default="cifar10", show_default=True),
    click.option(
        "--sample", help="Sample file name or path, e.g. cifar10-300 (default: all items)."
    ),
    click.option("--limit", type=int, help="Only the first N selected items."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option(
        "--out", type=click.Path(path_type=Path), help="Run directory (default: runs/<name>)."
    ),
]


def _finish(out, summary):
    lo, hi = summary["ci95"]
    click.echo(
        f"{out}: accuracy {summary['accuracy']:.1%} (95% CI {lo:.1%}–{hi:.1%}, n={summary['n']})"
    )


@eval_group.command("clip")
@_apply(eval_data_options)
@click.option(
    "--scorer", type=click.Choice(["auto", "clip", "conse"]), default="auto", show_default=True
)
@click.option(
    "--precision", type=click.Choice(["auto", "fp32", "int8"]), default="auto", show_default=True
)
@click.option(
    "--template", help="Prompt template with {} or an ensemble name (default: per dataset)."
)
@click.pass_context
def eval_clip(ctx, dataset, sample, limit, seed, out, scorer, precision, template):
    """Trial 1: the scorer alone over the dataset's class names."""
    from offline_vision.classify import ScorerTask
    from offline_vision.eval import runner
    from offline_vision.labels import LabelSet, parse_template
    from offline_vision.models.loader import load_scorer

    settings = settings_of(ctx)
    ds, indices = _eval_common(settings, dataset, sample, limit, seed)
    eyes = load_scorer(settings, scorer, precision=precision)
    templates = parse_template(template, LabelSet(ds.name, ds.classes)) if template else None
    task = ScorerTask(ds, eyes, templates)
    out = _run_dir(
        settings, out, "clip", dataset, sample or f"n{len(indices)}", eyes.describe()["scorer"]
    )
    _finish(out, runner.run(task, indices, out, classes=ds.classes))


def _eval_dialogue(ctx, known, dataset, sample, limit, seed, out, **opts):
    from offline_vision.dialogue import DialogueTask
    from offline_vision.eval import runner

    settings = settings_of(ctx)
    ds, indices = _eval_common(settings, dataset, sample, limit, seed)
    cfg, eyes, llm = _dialogue_parts(settings, **opts)
    task = DialogueTask(ds, eyes, llm, known=known, config=cfg, seed=seed)
    who = opts["reasoner"].split("/")[-1].replace("local:", "")
    out = _run_dir(
        settings,
        out,
        "dialogue" if known else "dialogue-open",
        dataset,
        sample or f"n{len(indices)}",
        opts["policy"],
        who,
        eyes.describe()["scorer"],
    )
    _finish(out, runner.run(task, indices, out, classes=ds.classes))


@eval_group.command("dialogue")
@_apply(eval_data_options + dialogue_options)
@click.pass_context
def eval_dialogue(ctx, **kw):
    """Trial 2: the dialogue, the label set known, the answer one of it."""
    _eval_dialogue(ctx, True, **kw)


@eval_group.command("dialogue-open")
@_apply(eval_data_options + dialogue_options)
@click.pass_context
def eval_dialogue_open(ctx, **kw):
    """Trial 3: the dialogue without the label set; free answers mapped by documented rules."""
    _eval_dialogue(ctx, False, **kw)
