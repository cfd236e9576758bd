"""`ovision eval …` (the group and what every evaluation shares) and `ovision report`."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import click

from offline_vision.errors import BadInput


@click.group("eval")
def eval_group() -> None:
    """Evaluate on a dataset: JSONL per item (appended, resumable) and a summary per run."""


def run_dir(settings, out: Path | None, *parts) -> Path:
    if out is not None:
        return out
    name = "-".join(str(p) for p in parts if p not in (None, ""))
    return settings.runs_dir / re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)


def eval_common(settings, dataset, sample, limit, seed):
    from offline_vision.eval.datasets import open_dataset, read_sample, select

    if limit is not None and limit < 1:
        raise BadInput("--limit must be at least 1")
    ds = open_dataset(settings.data_dir, dataset)
    chosen = read_sample(settings.data_dir, ds, sample) if sample else None
    return ds, select(ds, sample=chosen, limit=limit, seed=seed)


concurrency_option = click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Items in flight at once (with --ray: per worker): for an openai: reasoner, whose "
    "server takes parallel requests (a local GGUF answers one at a time).",
)

_ray_opts = [
    click.option(
        "--ray",
        "use_ray",
        is_flag=True,
        help="Run items on Ray workers, each loading the scorer and reasoner once; this "
        "process alone writes the records. Starts a local Ray unless --ray-address is given "
        "(pip install 'offline_vision[cluster]'; Ray keeps its own logs under /tmp/ray).",
    ),
    click.option(
        "--ray-address",
        metavar="HOST:PORT",
        help="With --ray: join this running cluster (`ray start --head` prints it); every node "
        "needs offline_vision, the models and the data at the same paths.",
    ),
    click.option(
        "--workers",
        type=click.IntRange(1, 4096),
        help="With --ray: how many workers.  [default: the CPUs ÷ --threads-per-worker]",
    ),
    click.option(
        "--threads-per-worker",
        type=click.IntRange(1, 256),
        default=1,
        show_default=True,
        help="With --ray: CPU threads each worker's models use (the CPUs Ray reserves for it).",
    ),
]


def ray_options(command):
    """Add --ray, --ray-address, --workers and --threads-per-worker; the command receives
    `ray` instead: (address, workers, threads) with --ray, else None (for `ray_plan`)."""

    @functools.wraps(command)
    def wrapper(*args, use_ray, ray_address, workers, threads_per_worker, **kw):
        if not use_ray and (ray_address or workers or threads_per_worker != 1):
            raise BadInput("--ray-address, --workers and --threads-per-worker need --ray")
        spec = (ray_address, workers, threads_per_worker) if use_ray else None
        return command(*args, ray=spec, **kw)

    for option in reversed(_ray_opts):
        wrapper = option(wrapper)
    return wrapper


def ray_plan(spec, build, settings, **kwargs):
    """(task, RayPlan or None): the task built here by `build(settings, **kwargs)`, and with
    --ray the same recipe for the workers to build their own copies from."""
    from dataclasses import replace

    from offline_vision.config import DEFAULT_HUB_URL, DEFAULT_PYPI_URL
    from offline_vision.eval.cluster import RayPlan, Recipe

    # Evaluations never pull; index or hub URLs (which may carry credentials) stay here.
    settings = replace(settings, hub_url=DEFAULT_HUB_URL, pypi_url=DEFAULT_PYPI_URL)
    recipe = Recipe(build, settings, kwargs)
    if spec is None:
        return recipe(), None
    address, workers, threads = spec
    return recipe(), RayPlan(recipe, address=address, workers=workers, threads=threads)


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
    concurrency_option,
]


def check_concurrency(concurrency: int, reasoner: str | None) -> None:
    """Refuse to share one local GGUF across threads (llama.cpp contexts are not thread-safe)."""
    if concurrency > 1 and reasoner is not None and not reasoner.startswith("openai:"):
        raise BadInput(
            f"--concurrency {concurrency} needs an openai: reasoner; {reasoner} (a local GGUF) "
            "answers one request at a time"
        )


def finish(out, summary):
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

        loaded = [rep.load_run(p) for p in runs]
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
