"""`ovision labels expand`: label knowledge (the bridge's names, descriptions, …) written once."""

from __future__ import annotations

import json
from pathlib import Path

import click

from offline_vision.commands.common import click_options, json_flag, labels_option, seed_option
from offline_vision.errors import BadInput
from offline_vision.labels.plan import PER_LABEL, STRATEGY, WRITERS, KnowledgeOptions
from offline_vision.models.loader import EyesOptions
from offline_vision.models.reasoners import ReasonerOptions
from offline_vision.options import take


@click.group("labels")
def labels_group() -> None:
    """Label sets and the knowledge a reasoner writes about them."""


@labels_group.command("expand")
@labels_option("cifar10", "imagenet, cifar10, a comma list, or @file.txt.", name="label_spec")
@click.option(
    "--strategy",
    type=click.Choice(WRITERS),
    required=True,
    help="names: the everyday English name of each label (the bridge); descriptions, "
    "subclasses: texts about each label; waffle: the random-word control.",
)
@click_options(ReasonerOptions, only=("reasoner", "base_url"))
@click_options(EyesOptions, only=("scorer",))
@click_options(KnowledgeOptions, only=("domain",))
@click.option("--per-label", type=click.IntRange(1, 50), default=PER_LABEL, show_default=True)
@seed_option("Seed of the waffle control's random words and of the reasoner's sampling.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the knowledge file here.",
)
@json_flag("Print the knowledge file.")
@click.pass_context
def expand_cmd(ctx, label_spec, strategy, per_label, seed, out, as_json, **opts):
    """Write label knowledge once per label set (cached under $OVISION_HOME; an interrupted
    run resumes at the next label). Use it with `classify --knowledge FILE|STRATEGY`.

    \b
    Bridge labels the eyes cannot read (another language, jargon, Latin) to English names:
      ovision labels expand --labels @mine.txt --strategy names --out names.json
      ovision classify photo.jpg --labels @mine.txt --knowledge names.json
    """
    from offline_vision.labels.plan import write
    from offline_vision.labels.sets import parse_labels

    settings = ctx.find_root().obj
    label_set = parse_labels(label_spec)
    labels = list(label_set.labels)
    reasoner, eyes_opts = take(ReasonerOptions, opts), take(EyesOptions, opts)
    llm = None if strategy == "waffle" else reasoner.load(settings)
    eyes = eyes_opts.load(settings) if strategy == STRATEGY else None  # names these eyes read
    domain = take(KnowledgeOptions, opts).domain
    if domain is not None and strategy != STRATEGY:
        raise BadInput(f"--domain is for --strategy {STRATEGY}: the bridge's names")
    k, path, cached = write(
        label_set,
        strategy,
        eyes,
        llm,
        cache_dir=settings.cache_dir,
        per_label=per_label,
        seed=seed,
        domain=domain,
    )
    if out is not None:
        k.save(out)
    if as_json:
        click.echo(k.dumps(), nl=False)
        return
    n = sum(len(v) for v in k.texts.values())
    dropped = ", ".join(f"{v} {key}" for key, v in sorted(k.dropped.items())) or "none"
    click.echo(
        f"{strategy}: {n} texts for {len(labels)} labels ({'from the cache' if cached else 'written now'}; "
        f"dropped: {dropped}; LLM {k.llm_seconds:.1f} s)"
    )
    click.echo(f"  {out or path}")
    for label in labels[:5]:
        click.echo(f"  {label}: {json.dumps(k.texts.get(label, [])[:3], ensure_ascii=False)}")
    for c in k.conflicts:
        click.echo(f"  {_conflict(c)}")


def _conflict(c: dict) -> str:
    """One line for each problem the bridge settled: a clash kept by one label, a clash renamed
    by asking again, or a name the eyes could not read, asked again."""
    if "unreadable" in c:
        return f"unreadable: {c['label']} was '{c['unreadable']}', now '{c['now']}'"
    if "kept_by" in c:
        how = f"kept by {c['kept_by']}"
    else:
        how = "asked again: " + ", ".join(f"{lab}→{n}" for lab, n in c["renamed"].items())
    return f"clash: {', '.join(c['labels'])} were all '{c['name']}' ({how})"
