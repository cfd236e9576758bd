"""`ovision dialogue`: the CLIP × LLM dialogue about one image."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from offline_vision.commands.common import json_option, labels_option, settings_of
from offline_vision.commands.eval import dialogue_options
from offline_vision.dialogue import DialogueConfig
from offline_vision.labels.plan import KnowledgeOptions
from offline_vision.models.loader import EyesOptions
from offline_vision.models.reasoners import ReasonerOptions
from offline_vision.options import take


@click.command()
@click.argument("image", type=click.Path(path_type=Path))
@labels_option(
    "cifar10", "The label set the answer must come from (built-in, comma list or @file)."
)
@click.option(
    "--open", "open_", is_flag=True, help="No label set: the LLM names the object freely."
)
@dialogue_options
@json_option
@click.pass_context
def dialogue(ctx, image, labels, open_, as_json, **opts):
    """Let the LLM question the scorer about IMAGE, round by round, then answer."""
    from offline_vision.dialogue import run_dialogue
    from offline_vision.eval.recipes import dialogue_parts
    from offline_vision.images import load_image
    from offline_vision.labels.sets import parse_labels

    settings = settings_of(ctx)
    img = load_image(image)
    label_set = replace(parse_labels(labels), known=not open_)  # --open: nothing to bridge
    cfg, eyes_opts = take(DialogueConfig, opts), take(EyesOptions, opts)
    reasoner, knowledge = take(ReasonerOptions, opts), take(KnowledgeOptions, opts).knowledge
    eyes, llm, follow, plan = dialogue_parts(
        settings, label_set, cfg, eyes_opts, reasoner, knowledge
    )
    d = run_dialogue(img, eyes, llm, plan.label_set(known=not open_), config=cfg, follow_up=follow)
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
