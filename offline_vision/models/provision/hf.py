"""`models pull hf:ORG/NAME[@REVISION]`: any CLIP or SigLIP checkpoint on a Hugging Face-
compatible hub, exported here (the export extra), or, without that extra, a CLIP's
pre-exported ONNX towers from the same repository (`onnx/vision_model*.onnx` +
`onnx/text_model*.onnx`, the layout transformers.js and Optimum repositories use); and
`hf:ORG/NAME:QUANT` or `hf:ORG/NAME/FILE.gguf` (or a repository of one .gguf): a chat GGUF,
the reasoner `local:NAME` (as Ollama's `hf.co/ORG/REPO:QUANT` and llama.cpp's `-hf`).

Without @REVISION the branch `main` is resolved to its commit once, and that commit is what is
listed, fetched and recorded with every file's sha256, so the pull can be repeated exactly.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from offline_vision.config import Settings
from offline_vision.errors import BadInput, DownloadError
from offline_vision.export.checkpoints import checkpoint_kind
from offline_vision.export.checks import json_object
from offline_vision.export.onnx import have_export_extra
from offline_vision.models.provision import hub, registry, store
from offline_vision.models.provision.download import make_client, safe_url
from offline_vision.models.provision.store import ensure_dir

# What each exporter needs from the repository, and what it takes where the repository has it.
NEEDED = {
    "clip": ("preprocessor_config.json", "tokenizer.json", "model.safetensors"),
    "siglip": ("preprocessor_config.json", "model.safetensors"),
}
OPTIONAL = {
    "clip": ("tokenizer_config.json",),
    "siglip": (
        "tokenizer.json",
        "spiece.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ),
}
# Pre-exported towers, (vision, text) by precision.
PRE_EXPORTED = {
    "fp32": ("onnx/vision_model.onnx", "onnx/text_model.onnx"),
    "int8": ("onnx/vision_model_quantized.onnx", "onnx/text_model_quantized.onnx"),
}
CLIP_LOGIT_SCALE = 100.0  # CLIP's trained scale is clamped at 100; released CLIPs sit there


@dataclass(frozen=True)
class HubSpec:
    """`hf:ORG/NAME[:QUANT|/FILE.gguf][@REVISION]`."""

    repo: str
    revision: str | None = None
    quant: str | None = None  # a GGUF's quantisation, e.g. Q4_K_M
    file: str | None = None  # a GGUF's file in the repository

    @property
    def gguf(self) -> bool:
        return bool(self.quant or self.file)


def parse_hf(spec: str) -> HubSpec:
    """`hf:ORG/NAME[:QUANT|/FILE.gguf][@REVISION]`, each part checked before any request."""
    what, _, revision = spec.removeprefix("hf:").partition("@")
    what, _, quant = what.partition(":")
    org_name, _, file = what.partition("/")[2].partition("/")
    repo = what.split("/")[0] + "/" + org_name if "/" in what else what
    ok = (
        re.fullmatch(r"[\w-][\w.-]*/[\w-][\w.-]*", repo)
        and re.fullmatch(r"(?:[\w-][\w.-]*(?:/[\w-][\w.-]*)*)?", revision)
        and ".." not in revision
        and re.fullmatch(r"[\w.-]*", quant)
        and (not file or re.fullmatch(r"(?:[\w-][\w.-]*/)*[\w-][\w.-]*\.gguf", file))
        and ".." not in file
    )
    if not ok:
        raise BadInput(
            f"{spec!r} is not hf:ORG/NAME, hf:ORG/NAME:QUANT or hf:ORG/NAME/FILE.gguf "
            "(each with an optional @REVISION)"
        )
    return HubSpec(repo, revision or None, quant or None, file or None)


def hf_name(spec: str) -> str:
    """The name a `hf:` pull installs under by default: the repository's name, lower case,
    with the GGUF quantisation where one was asked for."""
    s = parse_hf(spec)
    name = s.repo.split("/")[1].lower()
    return f"{name}-{s.quant.lower()}" if s.quant else name


def _wanted(kind: str, listing: dict, repo: str, exporting: bool) -> dict[str, None]:
    """The files to fetch after config.json: the checkpoint's for the exporter, or the
    pre-exported towers and what reading them needs."""
    if exporting:
        have = [f for f in OPTIONAL[kind] if f in listing]
        if kind == "siglip" and not {"tokenizer.json", "spiece.model"} & set(have):
            raise DownloadError(f"{repo}: has neither tokenizer.json nor spiece.model")
        return dict.fromkeys([*NEEDED[kind], *have])
    if kind != "clip":
        raise BadInput(
            f"hf:{repo}: a {kind} checkpoint needs the export extra (torch) to be exported "
            "here: pre-exported SigLIP towers carry no logit_scale or logit_bias, which its "
            "scores need"
        )
    pairs = [p for p in PRE_EXPORTED.values() if all(f in listing for f in p)]
    if not pairs:
        raise BadInput(
            f"hf:{repo}: no pre-exported ONNX towers (onnx/vision_model.onnx + "
            "onnx/text_model.onnx, or their _quantized) and no export extra (torch) to export it"
        )
    return dict.fromkeys(
        [f for p in pairs for f in p] + ["preprocessor_config.json", "tokenizer.json"]
    )


def pull_hf(settings: Settings, spec: str, name: str | None = None) -> store.Bundle:
    """Pull `spec` (hf:ORG/NAME[…][@REVISION]) and install it as `name`."""
    parsed = parse_hf(spec)
    repo, asked = parsed.repo, parsed.revision
    name = name or hf_name(spec)
    if name in registry.MODELS or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name, re.ASCII):
        raise BadInput(f"--name {name!r}: taken by the registry or not a plain name; give another")
    exporting = have_export_extra()
    dl = ensure_dir(settings.home / "downloads" / name)
    for left in dl.rglob("*"):  # a failed pull's files: only its .part downloads resume
        if left.is_file() and not left.name.endswith(".part"):
            left.unlink()
    with make_client(token_host=settings.hub_url) as client:
        commit = hub.resolve(client, settings.hub_url, repo, asked or "main")
        listing = hub.list_files(client, settings.hub_url, repo, commit)
        ggufs = [f for f in listing if f.endswith(".gguf")]
        if parsed.gguf or ("config.json" not in listing and ggufs):
            path = gguf_file(parsed, ggufs)
            hashes = hub.fetch_many(
                client, settings.hub_url, repo, commit, listing, {path: None}, dl
            )
            return _install_gguf(
                settings, name, dl, path, _source(settings, parsed, commit, hashes)
            )

        def fetch(wanted: dict) -> dict:
            return hub.fetch_many(client, settings.hub_url, repo, commit, listing, wanted, dl)

        hashes = fetch({"config.json": None})  # refuse a kind not taken before any weights
        kind = checkpoint_kind(json_object(dl / "config.json"), repo)
        hashes |= fetch(_wanted(kind, listing, repo, exporting))
    source = {
        **_source(settings, parsed, commit, hashes),
        "type": "hub" if exporting else "hub-onnx",
    }
    with tempfile.TemporaryDirectory(dir=ensure_dir(settings.home)) as tmp:
        if exporting:
            from offline_vision.export.checkpoints import export_checkpoint

            photos = settings.data_dir / "photos"
            kind, files, meta = export_checkpoint(dl, Path(tmp), photo_dir=photos, source=source)
        else:
            towers = {p: t for p, t in PRE_EXPORTED.items() if t[0] in hashes}
            files, meta = pre_exported(dl, towers, source)
        bundle = store.install(settings.models_dir, name, kind, files, meta, move=True)
    shutil.rmtree(dl, ignore_errors=True)
    return bundle


def _source(settings: Settings, parsed: HubSpec, commit: str, hashes: dict) -> dict:
    """What a bundle's manifest says of where it came from (no credentials)."""
    return {
        "type": "hub",
        "endpoint": safe_url(settings.hub_url),
        "repo": parsed.repo,
        "requested": parsed.revision or "main",
        "revision": commit,
        "files": hashes,
    }


def gguf_file(parsed: HubSpec, ggufs: list[str]) -> str:
    """The one GGUF `parsed` names: its file, the one whose name holds its QUANT, or the
    repository's only one. Split GGUFs (…-00001-of-00003.gguf) are not taken."""
    whole = [f for f in ggufs if not re.search(r"-\d{5}-of-\d{5}\.gguf$", f)]
    if parsed.file:
        if parsed.file not in ggufs:
            raise BadInput(f"hf:{parsed.repo} has no {parsed.file}; it has: {_listed(ggufs)}")
        found = [parsed.file]
    elif parsed.quant:
        q = parsed.quant.lower()
        found = [
            f for f in whole if re.search(rf"(?<![a-z0-9]){re.escape(q)}(?![a-z0-9])", f.lower())
        ]
    else:
        found = whole
    if len(found) != 1:
        what = f"no .gguf for {parsed.quant}" if not found else f"{len(found)} .gguf files"
        raise BadInput(
            f"hf:{parsed.repo}: {what}; name one with :QUANT or /FILE.gguf (it has: "
            f"{_listed(whole) or 'no whole .gguf'})"
        )
    return found[0]


def _listed(files: list[str]) -> str:
    return ", ".join(files[:12]) + (f", … ({len(files)})" if len(files) > 12 else "")


def _install_gguf(settings: Settings, name: str, dl: Path, path: str, source: dict):
    """A pulled GGUF, checked to be one (its magic) before it is installed as `name`."""
    with open(dl / path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise BadInput(f"hf:{source['repo']}/{path} is not a GGUF file")
    meta = {"source": source, "about": f"chat GGUF {source['repo']}/{path}"}
    bundle = store.install(
        settings.models_dir,
        name,
        "gguf",
        {"model.gguf": dl / path},
        meta,
        expected={"model.gguf": source["files"][path]},
        move=True,
    )
    shutil.rmtree(dl, ignore_errors=True)
    return bundle


def pre_exported(
    dl: Path, towers: dict, source: dict, *, logit_scale: float = CLIP_LOGIT_SCALE
) -> tuple[dict, dict]:
    """(files, manifest meta) of a CLIP's pre-exported towers fetched into `dl`; `towers` is
    {precision: (vision path, text path)}. Not validated here (that needs torch): the files are
    the sha256-verified ones of the recorded revision."""
    from offline_vision.export.clip import pad_id

    files = {"tokenizer.json": dl / "tokenizer.json"}
    files["preprocessor_config.json"] = dl / "preprocessor_config.json"
    onnx = {}
    for precision, (vision, text) in towers.items():
        suffix = "" if precision == "fp32" else f".{precision}"
        onnx[precision] = {
            "vision": f"vision_model{suffix}.onnx",
            "text": f"text_model{suffix}.onnx",
        }
        files[onnx[precision]["vision"]], files[onnx[precision]["text"]] = dl / vision, dl / text
    context = 77
    if (dl / "config.json").is_file():
        text_config = json_object(dl / "config.json").get("text_config") or {}
        context = int(text_config.get("max_position_embeddings", context))
    meta = {
        "source": source,
        "logit_scale": logit_scale,
        "text": {"context_length": context, "pad_id": pad_id(dl)},
        "onnx": onnx,
        "validation": {
            "note": "pre-exported upstream; files verified by sha256, graphs not compared here",
            "logit_scale": "CLIP's trained value (clamped at 100), not read from the weights",
        },
    }
    return files, meta
