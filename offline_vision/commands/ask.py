"""`ovision ask`: one prompt to a reasoner (constrained to choices or a JSON schema)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from offline_vision.commands.common import click_options, json_option, seed_option, settings_of
from offline_vision.files import shown
from offline_vision.models.reasoners import ReasonerOptions
from offline_vision.options import take


@click.command()
@click.argument("prompt")
@click_options(ReasonerOptions)
@click.option("--system", help="A system message.")
@click.option("--choices", help="Comma list: the answer must be exactly one of these.")
@click.option(
    "--schema",
    type=click.Path(path_type=Path),
    help="JSON Schema file: the answer must be JSON that validates against it.",
)
@click.option("--max-tokens", type=click.IntRange(1), default=256, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True)
@seed_option("The reasoner's sampling seed.")
@json_option
@click.pass_context
def ask(ctx, prompt, system, choices, schema, max_tokens, temperature, seed, as_json, **opts):
    """Ask a reasoner PROMPT; print the answer (with --json: usage and latency too)."""
    from offline_vision.errors import BadInput

    choice_list = None
    if choices is not None:
        choice_list = list(dict.fromkeys(c.strip() for c in choices.split(",") if c.strip()))
        if not choice_list:
            raise BadInput("--choices is empty")
    schema_obj = None
    if schema is not None:
        from offline_vision.files import read_text
        from offline_vision.models.reasoners.base import check_schema

        try:
            schema_obj = json.loads(read_text(schema, what="schema file"))
        except ValueError as e:
            raise BadInput(f"{schema}: not valid JSON ({e})") from None
        check_schema(schema_obj)  # before any model loads
    r = take(ReasonerOptions, opts).load(settings_of(ctx))
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    c = r.complete(
        messages,
        choices=choice_list,
        schema=schema_obj,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
    )
    if as_json:
        click.echo(json.dumps({"reasoner": r.describe(), **c.to_dict()}, ensure_ascii=False))
    else:
        text = c.value if isinstance(c.value, str) else json.dumps(c.value, ensure_ascii=False)
        # An LLM's ESC or OSC sequence must not drive the terminal; its lines stay lines.
        click.echo("\n".join(shown(line) for line in text.split("\n")))
