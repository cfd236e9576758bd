"""`ovision pixels`: name the digit in an image from its pixels alone."""

from __future__ import annotations

import json
from pathlib import Path

import click

from offline_vision.commands.common import click_options, json_option, seed_option, settings_of
from offline_vision.models.reasoners import ReasonerOptions
from offline_vision.options import take
from offline_vision.pixels import PixelOptions


@click.command()
@click.argument("image", type=click.Path(path_type=Path))
@click_options(PixelOptions, ReasonerOptions)
@seed_option("Which few-shot examples are drawn.")
@click.option("--invert", is_flag=True, help="Dark ink on light paper (MNIST is light on dark).")
@click.option("--show-grid", is_flag=True, help="Print the grid as the model sees it.")
@json_option
@click.pass_context
def pixels(ctx, image, seed, invert, show_grid, as_json, **opts):
    """Name the digit in IMAGE from its pixels alone (the grid goes into the LLM's prompt)."""
    from PIL import ImageOps

    from offline_vision.eval.recipes import pixel_method
    from offline_vision.images import load_image
    from offline_vision.pixels import encode, to_grid

    img = load_image(image).convert("L")
    if invert:
        img = ImageOps.invert(img)
    grid = to_grid(img)
    options = take(PixelOptions, opts)
    method = pixel_method(settings_of(ctx), options, take(ReasonerOptions, opts), seed)
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
        click.echo(encode(grid, "seed" if options.strategy == "seed" else options.encoding))
    click.echo(p.prediction)
