"""`ovision labels expand` and the label-knowledge options `classify` and `eval clip` share."""

from __future__ import annotations

import json
from pathlib import Path

import click

from offline_vision.cli_common import base_url_option, labels_option, reasoner_option
from offline_vision.knowledge import PER_LABEL, STRATEGIES

# Chosen on the 632 CIFAR-10 dev images (knowledge_cifar.json): the best of 0.3 / 0.5 / 0.7 /
# 0.9 / every image for all three reasoners and K = 2, 3 — the lowest tried; the follow-up did
# worse the more images it ran on.
FOLLOW_UP_THRESHOLD = 0.3

knowledge_options = [
    click.option(
        "--knowledge",
        metavar="FILE|STRATEGY",
        help="Label knowledge: a file from `labels expand`, or descriptions|subclasses|waffle "
        "(written once per label set by --reasoner, then read from the cache).",
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
    settings, labels, eyes, *, knowledge, follow_up, follow_up_threshold, reasoner, base_url
):
    """(Knowledge or None, FollowUp or None) for the options given; the reasoner loads lazily."""
    from offline_vision.knowledge import FollowUp, resolve
    from offline_vision.models.reasoners import load_reasoner

    loaded = []

    def llm():
        if not loaded:
            loaded.append(load_reasoner(settings, reasoner, base_url=base_url))
        return loaded[0]

    k = None
    if knowledge:
        k, _path = resolve(knowledge, labels, cache_dir=settings.cache_dir, reasoner_factory=llm)
    f = None
    if follow_up:
        f = FollowUp(
            eyes, llm(), k=follow_up, threshold=follow_up_threshold, cache_dir=settings.cache_dir
        )
    return k, f


@click.group("labels")
def labels_group() -> None:
    """Label sets and the knowledge a reasoner writes about them."""


@labels_group.command("expand")
@labels_option("cifar10", "imagenet, cifar10, a comma list, or @file.txt.", name="label_spec")
@click.option("--strategy", type=click.Choice(STRATEGIES), required=True)
@reasoner_option
@base_url_option
@click.option("--per-label", type=click.IntRange(1, 50), default=PER_LABEL, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the knowledge file here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the knowledge file.")
@click.pass_context
def expand_cmd(ctx, label_spec, strategy, reasoner, base_url, per_label, seed, out, as_json):
    """Write label knowledge once per label set (cached under $OVISION_HOME; an interrupted
    run resumes at the next label). Use it with `classify --knowledge FILE|STRATEGY`."""
    from offline_vision.knowledge import expand
    from offline_vision.labels import parse_labels
    from offline_vision.models.reasoners import load_reasoner

    settings = ctx.find_root().obj
    labels = parse_labels(label_spec).labels
    llm = None if strategy == "waffle" else load_reasoner(settings, reasoner, base_url=base_url)
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
