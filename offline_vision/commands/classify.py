"""`ovision classify`: the eyes' top labels for images (with label knowledge where asked)."""

from __future__ import annotations

import json

import click

from offline_vision.commands.common import (
    batch_size_option,
    click_options,
    json_option,
    labels_option,
    settings_of,
    template_option,
    top_k_option,
)
from offline_vision.files import shown
from offline_vision.labels.examples import ExampleOptions
from offline_vision.labels.plan import KnowledgeOptions
from offline_vision.models.loader import EyesOptions
from offline_vision.models.reasoners import ReasonerOptions
from offline_vision.options import take


@click.command()
@click.argument("images", nargs=-1, required=True)
@labels_option(
    "imagenet",
    "Built-in set (imagenet, cifar10), a comma list 'cat,dog', or @file.txt (one a line).",
)
@template_option("per label set")
@top_k_option
@click_options(EyesOptions)
@json_option
@batch_size_option
@click_options(KnowledgeOptions, ReasonerOptions)
@click_options(ExampleOptions, only=("examples",))
@click.pass_context
def classify(ctx, images, labels, template, top_k, as_json, batch_size, **opts):
    """Top-k labels for IMAGES (files, directories or globs), as a table or JSON lines.

    \b
    With label knowledge (written once per label set by a reasoner, then cached):
      ovision classify photo.jpg --labels cifar10 --knowledge descriptions
      ovision classify photo.jpg --labels cifar10 --follow-up 3
    Taught by a few example images per label (shots/LABEL/*.jpg):
      ovision classify photo.jpg --labels @mine.txt --examples shots/
    """
    from offline_vision.classification import classify_images
    from offline_vision.images import expand_paths, load_image
    from offline_vision.labels.examples import load as load_examples
    from offline_vision.labels.plan import lazy, resolve
    from offline_vision.labels.scoring import follow_up
    from offline_vision.labels.sets import parse_labels, parse_template

    settings = settings_of(ctx)
    eyes_opts, know = take(EyesOptions, opts), take(KnowledgeOptions, opts)
    reasoner, shots = take(ReasonerOptions, opts), take(ExampleOptions, opts).examples
    llm = lazy(lambda: reasoner.load(settings))
    paths = expand_paths(images)
    if len(paths) == 1:
        load_image(paths[0])  # one bad file: one error line, before any model work
    label_set = parse_labels(labels)
    chosen = parse_template(template, label_set) if template else None  # before any model work
    eyes = eyes_opts.load(settings, spin=not know.follow_up)
    cache = settings.cache_dir
    examples = load_examples(shots, label_set.labels, eyes, cache) if shots else None
    plan = resolve(
        label_set,
        eyes,
        knowledge=know.knowledge,
        templates=chosen,
        cache_dir=cache,
        reasoner=llm,
        examples=examples,
        domain=know.domain,
    )
    results = classify_images(
        eyes,
        paths,
        plan,
        top_k=top_k,
        batch_size=batch_size,
        follow_up=follow_up(plan, eyes, know, llm, cache),
    )
    failures = 0
    for result in results:
        if "error" in result:
            failures += 1
            if not as_json:
                click.echo(f"error: {result['error']}", err=True)
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False))
        elif "error" not in result:
            _print_result(result)
    if failures:
        raise click.ClickException(f"{failures} of {len(paths)} images could not be classified")


def _print_result(result: dict) -> None:
    """One image's table: its top labels (the user's, with the names the eyes read them by
    where they were bridged) and the follow-up where it ran."""
    click.echo(shown(result["image"]))
    sigmoid = result["score"] == "sigmoid"
    if sigmoid:
        click.echo("  (SigLIP: each label's own sigmoid score; they need not sum to 100 %)")
    for item in result["labels"]:
        names = item.get("names")
        seen_as = f"  ({', '.join(names)})" if names and names != [item["label"]] else ""
        click.echo(
            f"  {item['score' if sigmoid else 'probability']:6.1%}  {item['label']}{seen_as}"
        )
    f = result.get("follow_up")
    if f and f["ran"]:
        odds = ", ".join(
            f"{c} {p:.0%}" for c, p in zip(f["classes"], f["probabilities"], strict=True)
        )
        click.echo(
            f"  follow-up ({'cached' if f['cached'] else 'new'}): {odds} → {f['prediction']}"
        )
