"""`ovision index`, `ovision tag`, `ovision search`: embed a catalog once, tag it many times
(several attribute groups, each label set resolved as `classify` resolves it), search it."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from dataclasses import replace
from functools import partial
from pathlib import Path

import click

from offline_vision.commands.common import (
    batch_size_option,
    click_options,
    json_option,
    ray_options,
    settings_of,
    top_k_option,
)
from offline_vision.errors import BadInput
from offline_vision.files import open_output, read_text, replacing, shown, write_atomic
from offline_vision.labels.plan import KnowledgeOptions
from offline_vision.models.loader import EyesOptions
from offline_vision.models.reasoners import ReasonerOptions
from offline_vision.options import take

GROUP_KEYS = {"labels", "template", "multi"}  # what an attribute file's table may hold
MULTI_SEP = "|"  # a multi-label group's labels in one CSV cell


@click.command("index")
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--out", "catalog", type=click.Path(path_type=Path), required=True, help="Catalog directory."
)
@click.option(
    "--store",
    "dtype",
    type=click.Choice(["float32", "float16"]),
    default=None,
    help="How a new catalog stores embeddings (default float32; float16: half the bytes).",
)
@click_options(EyesOptions)
@batch_size_option
@json_option
@ray_options
@click.pass_context
def index_cmd(ctx, images, catalog, dtype, batch_size, as_json, ray, **opts):
    """Embed IMAGES (files, directories or globs) into the catalog --out, once: new and changed
    files only; files gone from disk are marked removed. Resumable: a killed run loses at most
    one batch. With --ray, the images are embedded on Ray Data workers."""
    from offline_vision.catalog.index import index
    from offline_vision.images import expand_paths

    settings = settings_of(ctx)
    paths = expand_paths(images)
    eyes_opts = take(EyesOptions, opts)
    eyes = eyes_opts.load(settings)
    embedder = None
    if ray is not None:
        from offline_vision.catalog.distributed import on_ray
        from offline_vision.eval.recipes import for_workers

        address, workers, threads = ray
        worker_settings = replace(for_workers(settings), threads=threads)
        embedder = on_ray(
            partial(eyes_opts.load, worker_settings),
            address=address,
            workers=workers,
            threads=threads,
        )
    result = index(paths, catalog, eyes, batch_size=batch_size, dtype=dtype, embedder=embedder)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        counts = ", ".join(
            f"{result[k]} {k}" for k in ("added", "changed", "unchanged", "removed", "failed")
        )
        click.echo(f"{catalog}: {counts} ({result['seconds']:.1f} s)")
    for err in result["errors"]:
        click.echo(f"error: {shown(err)}", err=True)


@click.command("tag")
@click.argument("catalog", type=click.Path(path_type=Path))
@click.option(
    "--labels",
    "label_specs",
    multiple=True,
    metavar="[GROUP=]SPEC",
    help="A label set to tag with (built-in, comma list or @file), as GROUP=SPEC for several "
    "attribute groups; repeatable.",
)
@click.option(
    "--attributes",
    type=click.Path(path_type=Path),
    help='A TOML file, one table per group: labels = [...] or "@file" or "cifar10"; '
    'template = "a photo of {} clothing" and multi = true (both optional).',
)
@click.option(
    "--multi",
    multiple=True,
    metavar="GROUP",
    help="Tag GROUP multi-label: every label past its threshold (calibrated on this catalog; "
    "SigLIP's own sigmoid) and the top one; --top-k is for the other groups. Repeatable.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write .csv (one row per image, one column per group), .jsonl or .parquet; "
    "default: JSON lines on stdout.",
)
@click.option(
    "--examples",
    "example_specs",
    multiple=True,
    metavar="[GROUP=]DIR|CSV",
    help="Example images for a group's labels (a folder of label folders, or a CSV "
    "path,label), as GROUP=SOURCE for several groups; taken from the catalog where it holds "
    "the same files, else embedded once. Repeatable.",
)
@top_k_option
@click_options(
    EyesOptions,
    KnowledgeOptions,
    ReasonerOptions,
    only=("scorer", "precision", "device", "knowledge", "domain", "reasoner", "base_url"),
)
@click.pass_context
def tag_cmd(ctx, catalog, label_specs, attributes, multi, out, example_specs, top_k, **opts):
    """Tag every image of CATALOG with each label set, from its stored embeddings (no image is
    decoded): labels the eyes cannot read are bridged as `classify` bridges them."""
    from offline_vision.catalog.store import Catalog
    from offline_vision.catalog.tag import Tagger, stored
    from offline_vision.labels.examples import load as load_examples
    from offline_vision.labels.plan import lazy, resolve

    settings = settings_of(ctx)
    groups, multi_groups = _groups(label_specs, attributes)
    multi_groups |= _multi_of(multi, groups)
    shots = _example_sources(example_specs, groups)
    eyes_opts, know = take(EyesOptions, opts), take(KnowledgeOptions, opts)
    reasoner = take(ReasonerOptions, opts)
    eyes = eyes_opts.load(settings)
    cat = Catalog.open(catalog, eyes)
    llm, cache = lazy(lambda: reasoner.load(settings)), settings.cache_dir
    known = stored(cat) if shots else None
    plans = {
        g: resolve(
            label_set,
            eyes,
            knowledge=know.knowledge,
            templates=template,
            cache_dir=cache,
            reasoner=llm,
            examples=(
                load_examples(shots[g], label_set.labels, eyes, cache, known)
                if g in shots
                else None
            ),
            domain=know.domain,
        )
        for g, (label_set, template) in groups.items()
    }
    if out is not None and out.suffix.lower() == ".csv":
        for g in multi_groups:
            bad = next((x for x in plans[g].labels if MULTI_SEP in x), None)
            if bad is not None:
                raise BadInput(
                    f"multi-label group {g!r}: label {bad!r} holds {MULTI_SEP!r}, which joins "
                    "a CSV cell's labels; rename it or write .jsonl or .parquet"
                )
    tagger = Tagger(cat, plans, eyes, multi=multi_groups)
    rows = tagger.rows(top_k)
    if out is None:
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    record = {"plans": {g: p.digest for g, p in plans.items()}, "multi": tagger.rules}
    n = _write(out, rows, list(plans), multi_groups, record)
    click.echo(f"{out}: {n} images tagged with {', '.join(plans)}")


@click.command("search")
@click.argument("catalog", type=click.Path(path_type=Path))
@click.argument("text", required=False)
@click.option(
    "--like", type=click.Path(path_type=Path), help="Images like this one, instead of TEXT."
)
@click.option("--top", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the hits as one self-contained page of thumbnails (no network needed).",
)
@click_options(EyesOptions, only=("scorer", "precision", "device"))
@json_option
@click.pass_context
def search_cmd(ctx, catalog, text, like, top, html_out, as_json, **opts):
    """The images of CATALOG nearest TEXT ("a red floral dress") or --like IMAGE, exactly."""
    from offline_vision.catalog import page
    from offline_vision.catalog.store import Catalog
    from offline_vision.catalog.tag import search
    from offline_vision.images import load_image

    if (text is None) == (like is None):
        raise BadInput("give TEXT or --like IMAGE (one of them)")
    if html_out is not None and html_out.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--html {html_out}: give an .html file")
    image = load_image(like) if like is not None else None
    eyes = take(EyesOptions, opts).load(settings_of(ctx))
    hits = search(Catalog.open(catalog, eyes), eyes, text=text, like=image, top=top)
    if html_out is not None:
        page.write(text if text is not None else f"like {like}", hits, html_out)
        click.echo(f"{html_out}: {len(hits)} hits", err=True)
    for h in hits:
        click.echo(
            json.dumps(h, ensure_ascii=False)
            if as_json
            else f"{h['score']:8.4f}  {shown(h['image'])}"
        )


def _example_sources(specs, groups: dict) -> dict[str, str]:
    """GROUP → examples source, from --examples [GROUP=]SOURCE (a bare SOURCE: the one group)."""
    out: dict[str, str] = {}
    for spec in specs:
        name, eq, rest = spec.partition("=")
        if eq and name in groups:
            group, source = name, rest
        elif len(groups) == 1:
            group, source = next(iter(groups)), spec
        else:
            raise BadInput(
                f"--examples {spec}: name its group, one of {', '.join(groups)} (GROUP=DIR)"
            )
        if group in out:
            raise BadInput(f"--examples: group {group!r} is given examples twice")
        out[group] = source
    return out


def _multi_of(names, groups: dict) -> set[str]:
    """The groups --multi names (a single label set: "labels"); one line for one not given."""
    for name in names:
        if name not in groups:
            raise BadInput(f"--multi {name}: not a group here; give one of {', '.join(groups)}")
    return set(names)


def _groups(specs, attributes) -> tuple[dict, set[str]]:
    """GROUP → (LabelSet, template or None), from --labels and an attribute file, and the
    groups the file makes multi-label; one line for a group given twice, an unknown key, an
    empty group, a bad template or a bad multi."""
    from offline_vision.labels.sets import check_label, check_template, parse_labels, parse_list

    groups: dict = {}
    multi: set[str] = set()

    def add(name: str, label_set, template) -> None:
        if name in groups:
            raise BadInput(f"attribute group {name!r} is given twice")
        groups[name] = (label_set, (check_template(template),) if template else None)

    for spec in specs:
        name, eq, rest = spec.partition("=")
        if eq and name and not name.startswith("@") and "," not in name:
            add(name.strip(), parse_labels(rest), None)
        else:
            add("labels", parse_labels(spec), None)
    if attributes is not None:
        try:
            tables = tomllib.loads(read_text(attributes, what="attribute file"))
        except tomllib.TOMLDecodeError as e:
            raise BadInput(f"{attributes}: not valid TOML ({e})") from None
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise BadInput(f"{attributes}: {name!r} is not a table ([{name}] with labels = …)")
            unknown = set(table) - GROUP_KEYS
            if unknown:
                raise BadInput(
                    f"{attributes}: [{name}] has unknown key {sorted(unknown)[0]!r}; use labels, template"
                )
            labels = table.get("labels")
            if isinstance(labels, str):
                label_set = parse_labels(labels)
            elif isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels):
                normalised = [check_label(x) for x in labels]
                if len(set(normalised)) != len(normalised):
                    raise BadInput(f"{attributes}: [{name}] names a label twice")
                label_set = parse_list(normalised)
            else:
                raise BadInput(f'{attributes}: [{name}] names no labels (labels = ["…", …])')
            add(name, label_set, table.get("template"))
            flag = table.get("multi", False)
            if not isinstance(flag, bool):
                raise BadInput(f"{attributes}: [{name}] multi is true or false")
            if flag:
                multi.add(name)
    if not groups:
        raise BadInput("give --labels or --attributes: what to tag with")
    return groups, multi


def _write(out: Path, rows, groups: list[str], multi: set[str], record: dict) -> int:
    """Rows to `out` by its extension, streamed where the format allows; the plans' digests and
    the multi-label rules in a sidecar `OUT.plans.json`. A multi-label group's cell holds its
    labels joined by "|" in CSV, a list in Parquet. Returns how many rows."""
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".parquet"):
        raise BadInput(f"--out {out}: give a .csv, .jsonl or .parquet file")

    def cell(r: dict, g: str) -> tuple:
        if g not in multi:
            return r[g][0]["label"], r[g][0]["score"]
        return [t["label"] for t in r[g]], [t["score"] for t in r[g]]

    n = 0
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols: dict[str, list] = {
            "image": [],
            **{g: [] for g in groups},
            **{f"{g}_score": [] for g in groups},
        }
        for r in rows:
            n += 1
            cols["image"].append(r["image"])
            for g in groups:
                label, score = cell(r, g)
                cols[g].append(label)
                cols[f"{g}_score"].append(score)
        buf = io.BytesIO()
        pq.write_table(pa.table(cols), buf)
        write_atomic(out, buf.getvalue())
    else:
        with replacing(out) as tmp, open_output(tmp, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f) if suffix == ".csv" else None
            if writer:
                writer.writerow(["image", *(c for g in groups for c in (g, f"{g}_score"))])
            for r in rows:
                n += 1
                if writer:
                    writer.writerow([r["image"], *(_csv(v) for g in groups for v in cell(r, g))])
                else:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
    write_atomic(out.with_name(out.name + ".plans.json"), json.dumps(record, indent=1) + "\n")
    return n


def _csv(value) -> object:
    """A CSV cell: a multi-label group's labels or scores joined by MULTI_SEP."""
    return MULTI_SEP.join(map(str, value)) if isinstance(value, list) else value
