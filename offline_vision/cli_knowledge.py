"""`ovision labels expand` and the label-knowledge options `classify` and `eval clip` share."""

from __future__ import annotations

import json
from pathlib import Path

import click

from offline_vision.bridge import STRATEGY
from offline_vision.cli_common import (
    base_url_option,
    labels_option,
    reasoner_option,
    scorer_option,
)
from offline_vision.knowledge import PER_LABEL, STRATEGIES
from offline_vision.label_knowledge import KNOWLEDGE_HELP

# Chosen on the 632 CIFAR-10 dev images (knowledge_cifar.json): the best of 0.3 / 0.5 / 0.7 /
# 0.9 / every image for all three reasoners and K = 2, 3 — the lowest tried; the follow-up did
# worse the more images it ran on.
FOLLOW_UP_THRESHOLD = 0.3

knowledge_options = [
    click.option(
        "--knowledge",
        metavar="auto|none|names|STRATEGY|FILE",
        default="auto",
        show_default=True,
        help=KNOWLEDGE_HELP,
    ),
    click.option(
        "--follow-up",
        "follow_up",
        type=click.IntRange(2, 10),
        help="Where the eyes are unsure, have --reasoner tell their top K labels apart (FuDD); "
        "cached per set of labels.",
    ),
    click.option(
        "--follow-up-threshold",
        type=click.FloatRange(0, 1),
        default=FOLLOW_UP_THRESHOLD,
        show_default=True,
        help="Run the follow-up where the top probability is below this.",
    ),
    reasoner_option,
    base_url_option,
]


def knowledge_parts(
    settings,
    labels,
    eyes,
    *,
    builtin: bool,
    knowledge,
    follow_up,
    follow_up_threshold,
    reasoner,
    base_url,
):
    """(bridge, knowledge, follow-up), each or None, for the options given; the reasoner loads
    lazily (a cached bridge or knowledge file needs none)."""
    from offline_vision.bridge import names_of
    from offline_vision.label_knowledge import resolve
    from offline_vision.label_scoring import FollowUp
    from offline_vision.models.reasoners import load_reasoner

    loaded = []

    def llm():
        if not loaded:
            loaded.append(load_reasoner(settings, reasoner, base_url=base_url))
        return loaded[0]

    bridge, k = resolve(
        knowledge,
        labels,
        eyes,
        builtin=builtin,
        cache_dir=settings.cache_dir,
        reasoner_factory=llm,
    )
    f = None
    if follow_up:
        f = FollowUp(
            eyes,
            llm(),
            k=follow_up,
            threshold=follow_up_threshold,
            cache_dir=settings.cache_dir,
            names=names_of(bridge),
        )
    return bridge, k, f


@click.group("labels")
def labels_group() -> None:
    """Label sets and the knowledge a reasoner writes about them."""


@labels_group.command("expand")
@labels_option("cifar10", "imagenet, cifar10, a comma list, or @file.txt.", name="label_spec")
@click.option(
    "--strategy",
    type=click.Choice((STRATEGY, *STRATEGIES)),
    required=True,
    help="names: the everyday English name of each label (the bridge); descriptions, "
    "subclasses: texts about each label; waffle: the random-word control.",
)
@reasoner_option
@base_url_option
@scorer_option
@click.option("--per-label", type=click.IntRange(1, 50), default=PER_LABEL, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the knowledge file here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the knowledge file.")
@click.pass_context
def expand_cmd(
    ctx, label_spec, strategy, reasoner, base_url, scorer, per_label, seed, out, as_json
):
    """Write label knowledge once per label set (cached under $OVISION_HOME; an interrupted
    run resumes at the next label). Use it with `classify --knowledge FILE|STRATEGY`.

    \b
    Bridge labels the eyes cannot read (another language, jargon, Latin) to English names:
      ovision labels expand --labels @mine.txt --strategy names --out names.json
      ovision classify photo.jpg --labels @mine.txt --knowledge names.json
    """
    from offline_vision.bridge import write_names
    from offline_vision.knowledge import expand
    from offline_vision.labels import parse_labels
    from offline_vision.models.reasoners import load_reasoner

    settings = ctx.find_root().obj
    labels = parse_labels(label_spec).labels
    llm = None if strategy == "waffle" else load_reasoner(settings, reasoner, base_url=base_url)
    if strategy == STRATEGY:  # names the eyes can read: --scorer's
        from offline_vision.models.loader import load_scorer

        eyes = load_scorer(settings, scorer)
        k, path, cached = write_names(
            labels, llm, cache_dir=settings.cache_dir, seed=seed, scorer=eyes
        )
    else:
        k, path, cached = expand(
            labels, strategy, llm, cache_dir=settings.cache_dir, per_label=per_label, seed=seed
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
        how = (
            f"kept by {c['kept_by']}"
            if "kept_by" in c
            else "asked again: " + ", ".join(f"{lab}→{n}" for lab, n in c["renamed"].items())
        )
        click.echo(f"  clash: {', '.join(c['labels'])} were all '{c['name']}' ({how})")
