"""`ovision dialogue` and `ovision eval clip|dialogue|dialogue-open`: the CLIP × LLM dialogue."""

from __future__ import annotations

import json
from pathlib import Path

import click

from offline_vision.cli_common import (
    apply,
    base_url_option,
    ctx_option,
    json_option,
    labels_option,
    precision_option,
    reasoner_option,
    scorer_option,
    settings_of,
)
from offline_vision.cli_eval import (
    check_concurrency,
    eval_common,
    eval_data_options,
    eval_group,
    finish,
    ray_options,
    ray_plan,
    run_dir,
)
from offline_vision.cli_knowledge import knowledge_options, knowledge_parts
from offline_vision.dialogue import DialogueConfig

dialogue_options = [
    click.option(
        "--policy",
        type=click.Choice(["seed", "adaptive"]),
        default="adaptive",
        show_default=True,
        help="seed: the post's procedure (fixed rounds); adaptive: back-off on flat "
        "scores, narrowing down from the leader, early stop (eyes sure, agreement, nothing new "
        "asked), one-label answers.",
    ),
    click.option("--rounds", type=click.IntRange(1, 20), default=5, show_default=True),
    click.option(
        "--no-probe",
        is_flag=True,
        help="Skip the per-round 'answer now' probes (they feed accuracy-by-round).",
    ),
    click.option(
        "--trust",
        type=click.FloatRange(0, 1),
        default=None,
        help="adaptive, known labels: when the eyes' top label scores at least this, answer it "
        f"without asking the LLM (1 = always ask).  [default: {DialogueConfig.trust}]",
    ),
    click.option(
        "--shortlist",
        type=click.IntRange(0),
        default=None,
        help="adaptive: the final answer must be one of the eyes' top K options — labels of the "
        "set, or with --open the labels the LLM asked about (0 = any of them).  "
        f"[default: {DialogueConfig.shortlist}]",
    ),
    reasoner_option,
    base_url_option,
    ctx_option,
    scorer_option,
    precision_option,
    click.option(
        "--knowledge",
        metavar="auto|none|names|FILE",
        default="auto",
        show_default=True,
        help="The bridge: auto (a custom label set the eyes cannot read is bridged to English "
        "names by --reasoner, announced), none, names (always), or a names file. The LLM sees "
        "your labels; the eyes read them by their names.",
    ),
    click.option(
        "--end",
        type=click.Choice(["llm", "follow-up", "fusion"]),
        default="llm",
        show_default=True,
        help="adaptive, known labels — who decides among the shortlist: the LLM names it; "
        "follow-up: the eyes re-score it with differential descriptions; fusion: the eyes' "
        "probabilities × the LLM's own token probabilities.",
    ),
]


def _dialogue_parts(
    settings,
    labels,
    *,
    builtin,
    knowledge,
    policy,
    rounds,
    no_probe,
    trust,
    shortlist,
    reasoner,
    base_url,
    ctx_,
    scorer,
    precision,
    end,
):
    """(config, eyes, reasoner, follow-up or None, bridge or None) for the options given."""
    from offline_vision.bridge import names_of
    from offline_vision.dialogue import DialogueConfig
    from offline_vision.errors import BadInput
    from offline_vision.label_knowledge import resolve
    from offline_vision.label_scoring import FollowUp
    from offline_vision.models.loader import load_scorer
    from offline_vision.models.reasoners import load_reasoner

    given = {"trust": trust, "shortlist": shortlist}
    cfg = DialogueConfig(
        policy=policy,
        rounds=rounds,
        probe=not no_probe,
        end=end,
        **{k: v for k, v in given.items() if v is not None},
    )
    eyes = load_scorer(settings, scorer, precision=precision)
    llm = load_reasoner(settings, reasoner, base_url=base_url, n_ctx=ctx_)
    bridge, other = resolve(
        knowledge,
        labels,
        eyes,
        builtin=builtin,
        cache_dir=settings.cache_dir,
        reasoner_factory=lambda: llm,
    )
    if other is not None:
        raise BadInput("the dialogue takes --knowledge auto, none, names or a names file")
    follow = None
    if end == "follow-up":
        k = max(cfg.shortlist, 2)
        follow = FollowUp(
            eyes, llm, k=k, threshold=1.01, cache_dir=settings.cache_dir, names=names_of(bridge)
        )
    return cfg, eyes, llm, follow, bridge


@click.command()
@click.argument("image", type=click.Path(path_type=Path))
@labels_option(
    "cifar10", "The label set the answer must come from (built-in, comma list or @file)."
)
@click.option(
    "--open", "open_", is_flag=True, help="No label set: the LLM names the object freely."
)
@apply(dialogue_options)
@json_option
@click.pass_context
def dialogue(ctx, image, labels, open_, as_json, **opts):
    """Let the LLM question the scorer about IMAGE, round by round, then answer."""
    from offline_vision.bridge import names_of
    from offline_vision.dialogue import run_dialogue
    from offline_vision.images import load_image
    from offline_vision.labels import parse_labels

    settings = settings_of(ctx)
    img = load_image(image)
    label_set = parse_labels(labels)
    builtin = label_set.name != "custom" or open_  # --open: no label set to bridge
    cfg, eyes, llm, follow, bridge = _dialogue_parts(
        settings, list(label_set.labels), builtin=builtin, **opts
    )
    d = run_dialogue(
        img,
        eyes,
        llm,
        list(label_set.labels),
        known=not open_,
        label_set=label_set.name,
        config=cfg,
        follow_up=follow,
        names=names_of(bridge),
    )
    if as_json:
        click.echo(
            json.dumps(
                {"image": str(image), "scorer": eyes.describe(), "reasoner": llm.describe(), **d},
                ensure_ascii=False,
            )
        )
        return
    _print_rounds(d, eyes.describe()["scorer"])
    click.echo(_answer_line(d))


def _print_rounds(d: dict, scorer: str) -> None:
    """The dialogue as a table: what the LLM asked, what the eyes answered, round by round."""
    width = max([24, *(len(", ".join(r["candidates"])) + 8 for r in d["rounds"])])
    if d["rounds"]:
        click.echo(f"{'round':<6}{'the LLM asks':<{width}}the eyes answer ({scorer})")
    for r in d["rounds"]:
        asks = "? ".join(r["candidates"]) + "?"
        answers = ", ".join(f"{lab} {p:.0%}" for lab, p in r["scores"])
        mark = " (flat)" if r["flat"] else ""
        mark += (
            " (nothing new asked: stop)" if r.get("repeat") and d["policy"] == "adaptive" else ""
        )
        click.echo(f"{r['round']:<6}{asks:<{width}}{answers}{mark}")


def _answer_line(d: dict) -> str:
    """The answer, and how it was reached (mapping rule, follow-up, fusion, the eyes alone)."""
    a = d["answer"]
    rule = "" if a["rule"] in ("choice", "eyes") else f"  [raw {a['raw']!r}, mapped by {a['rule']}]"
    if a["rule"] == "follow-up":
        f = a["follow_up"]
        odds = ", ".join(
            f"{c} {p:.0%}" for c, p in zip(f["classes"], f["probabilities"], strict=True)
        )
        rule = f"  [the eyes, with differential descriptions: {odds}]"
    elif a["rule"] == "fusion":
        fu = a["fusion"]
        rule = (
            "  [eyes × LLM: "
            + ", ".join(f"{k} {fu['eyes'][k]:.0%} × {fu['llm'].get(k, 0):.0%}" for k in fu["eyes"])
            + "]"
        )
    elif "fusion" in a:
        rule += f"  [fusion unavailable: {a['fusion']['note']}]"
    stop = f" (stopped after round {d['stopped_after']})" if d["stopped_after"] else ""
    if d["stopped_after"] == 0:
        stop = (
            f" (the eyes' top label scored {a['eyes_top']:.0%}, at least --trust "
            f"{d['config']['trust']:g}: the LLM was not asked; --trust 1 asks)"
        )
    return f"answer: {a['label'] or 'unmapped'}{rule}{stop}"


def eval_dataset(settings, dataset: str, labels: str | None):
    """The dataset, its classes renamed by `--labels` where given."""
    from offline_vision.eval.datasets import Renamed, class_names, open_dataset

    ds = open_dataset(settings.data_dir, dataset)
    return Renamed(ds, class_names(labels, ds.classes)) if labels else ds


def clip_task(settings, *, dataset, labels, template, scorer, precision, know):
    """The `eval clip` task (built here, and by each Ray worker from the same arguments)."""
    from offline_vision.eval.tasks import ScorerTask
    from offline_vision.labels import LabelSet, parse_template
    from offline_vision.models.loader import load_scorer

    ds = eval_dataset(settings, dataset, labels)
    templates = parse_template(template, LabelSet(ds.name, ds.classes)) if template else None
    eyes = load_scorer(settings, scorer, precision=precision, spin=not know["follow_up"])
    bridge, knowledge, follow_up = knowledge_parts(
        settings, list(ds.classes), eyes, builtin=not labels, **know
    )
    return ScorerTask(ds, eyes, templates, knowledge=knowledge, follow_up=follow_up, bridge=bridge)


eval_labels_option = labels_option(
    None,
    "Other names for the dataset's classes, one per class in its class order (a comma list "
    "or @file.txt, one a line): the run is scored and reported under these names.",
)


@eval_group.command("clip")
@apply(eval_data_options)
@eval_labels_option
@scorer_option
@precision_option
@click.option(
    "--template", help="Prompt template with {} or an ensemble name (default: per dataset)."
)
@apply(knowledge_options)
@ray_options
@click.pass_context
def eval_clip(
    ctx,
    dataset,
    sample,
    limit,
    seed,
    out,
    concurrency,
    ray,
    labels,
    scorer,
    precision,
    template,
    **know,
):
    """Trial 1: the scorer alone over the dataset's class names (with --knowledge or
    --follow-up, label knowledge a reasoner wrote)."""
    from offline_vision.eval import runner

    settings = settings_of(ctx)
    check_concurrency(concurrency, know["reasoner"] if know["follow_up"] else None)
    ds, indices = eval_common(settings, dataset, sample, limit, seed)
    parts = dict(labels=labels, template=template, scorer=scorer, precision=precision, know=know)
    task, plan = ray_plan(ray, clip_task, settings, dataset=dataset, **parts)
    extra = [_labels_tag(labels), "bridged" if task.bridge else None]
    extra += [know["knowledge"] if task.knowledge else None]
    extra += [f"fu{know['follow_up']}" if task.follow_up else None]
    out = run_dir(
        settings,
        out,
        "clip",
        dataset,
        sample or f"n{len(indices)}",
        task.scorer.describe()["scorer"],
        *[Path(e).stem if e and "/" in e else e for e in extra],
    )
    summary = runner.run(task, indices, out, classes=ds.classes, concurrency=concurrency, ray=plan)
    finish(out, summary)


def _labels_tag(labels: str | None) -> str | None:
    """A run directory's word for renamed classes: the label file's stem, else 'renamed'."""
    if not labels:
        return None
    return Path(labels[1:]).stem if labels.startswith("@") else "renamed"


def dialogue_task(settings, *, known, dataset, labels, seed, opts):
    """The `eval dialogue` task (built here, and by each Ray worker from the same arguments)."""
    from offline_vision.eval.tasks import DialogueTask

    ds = eval_dataset(settings, dataset, labels)
    builtin = not labels or not known
    cfg, eyes, llm, follow, bridge = _dialogue_parts(
        settings, list(ds.classes), builtin=builtin, **opts
    )
    return DialogueTask(
        ds, eyes, llm, known=known, config=cfg, seed=seed, follow_up=follow, bridge=bridge
    )


def _eval_dialogue(ctx, known, dataset, sample, limit, seed, out, concurrency, ray, labels, **opts):
    from offline_vision.eval import runner

    settings = settings_of(ctx)
    check_concurrency(concurrency, opts["reasoner"])
    ds, indices = eval_common(settings, dataset, sample, limit, seed)
    parts = dict(known=known, dataset=dataset, labels=labels, seed=seed, opts=opts)
    task, plan = ray_plan(ray, dialogue_task, settings, **parts)
    who = opts["reasoner"].split("/")[-1].replace("local:", "")
    out = run_dir(
        settings,
        out,
        "dialogue" if known else "dialogue-open",
        dataset,
        sample or f"n{len(indices)}",
        _labels_tag(labels),
        "bridged" if task.bridge else None,
        opts["policy"],
        who,
        task.scorer.describe()["scorer"],
    )
    summary = runner.run(task, indices, out, classes=ds.classes, concurrency=concurrency, ray=plan)
    finish(out, summary)


@eval_group.command("dialogue")
@apply(eval_data_options + dialogue_options)
@eval_labels_option
@ray_options
@click.pass_context
def eval_dialogue(ctx, **kw):
    """Trial 2: the dialogue, the label set known, the answer one of it."""
    _eval_dialogue(ctx, True, **kw)


@eval_group.command("dialogue-open")
@apply(eval_data_options + dialogue_options)
@eval_labels_option
@ray_options
@click.pass_context
def eval_dialogue_open(ctx, **kw):
    """Trial 3: the dialogue without the label set; free answers mapped by documented rules."""
    _eval_dialogue(ctx, False, **kw)
