"""`ovision report`: merge runs into tables and plots, compare paired runs, or one HTML page."""

from __future__ import annotations

from pathlib import Path

import click


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
@click.option(
    "--html",
    "as_html",
    is_flag=True,
    help="Write one self-contained page (runs, plots, an item browser) to --out "
    "(default runs/report.html); opens from disk with no network.",
)
@click.pass_context
def report(ctx, runs, out, pair, baseline, as_csv, as_html):
    """Merge RUNS into one table (Markdown/CSV), plot each run, compare paired runs.

    \b
    Browse runs, images and dialogues in one page:
      ovision report runs/t1 runs/t2 --baseline runs/t1 --html
    """
    from offline_vision.eval import report as rep

    if as_html:
        from offline_vision.eval import html

        loaded = rep.load_runs(runs)
        base = rep.load_run(baseline) if baseline else None
        if out.suffix == ".html":
            target = out
        elif out == Path("runs/report"):  # --out not given
            target = Path("runs/report.html")
        else:
            target = out / "report.html"
        path = html.write(loaded, target, baseline=base, data_dir=ctx.find_root().obj.data_dir)
        click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return
    result = rep.report(list(runs), out, pairs=list(pair), baseline=baseline)
    click.echo(rep.to_csv(result["rows"]) if as_csv else rep.markdown(result["rows"]), nl=False)
    if result["paired"]:
        click.echo("\n" + rep.paired_markdown(result["paired"]), nl=False)
    click.echo(f"\nwrote {out}/runs.md, runs.csv and {len(result['plots'])} plot(s)", err=True)
