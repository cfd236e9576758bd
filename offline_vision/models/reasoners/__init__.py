"""Reasoner specs: `local`, `local:NAME`, `local:/path/model.gguf`, `openai:MODEL`."""

from __future__ import annotations

from pathlib import Path

from offline_vision.config import Settings
from offline_vision.errors import BadInput, ModelNotFound
from offline_vision.models import registry, store
from offline_vision.models.reasoners.base import BaseReasoner, Completion, Reasoner, Usage

__all__ = ["BaseReasoner", "Completion", "Reasoner", "Usage", "load_reasoner"]

SPEC_HELP = "local | local:NAME | local:/path/model.gguf | openai:MODEL (with --base-url)"


def load_reasoner(
    settings: Settings,
    spec: str = "local",
    *,
    base_url: str | None = None,
    n_ctx: int | None = None,
) -> BaseReasoner:
    kind, _, arg = spec.partition(":")
    if kind == "local":
        from offline_vision.models.reasoners.llama_cpp import DEFAULT_CTX, LlamaCppReasoner

        ctx = n_ctx or DEFAULT_CTX
        if arg and ("/" in arg or arg.endswith(".gguf")):
            path = Path(arg).expanduser()
            if not path.is_file():
                raise ModelNotFound(f"GGUF file not found: {path}")
            return LlamaCppReasoner(
                path,
                name=f"local:{path.name}",
                n_ctx=ctx,
                threads=settings.threads,
                probe_cache=settings.cache_dir / "amx_probe.json",
            )
        name = arg or registry.GGUF
        spec_entry = registry.get(name)
        if spec_entry.get("kind") != "gguf":
            raise BadInput(f"{name} is a {spec_entry.get('kind')} model, not a GGUF reasoner")
        bundle = store.load(settings.models_dir, name)
        return LlamaCppReasoner(
            bundle.file("model.gguf"),
            name=f"local:{name}",
            sha256=spec_entry["sha256"],
            n_ctx=ctx,
            threads=settings.threads,
            probe_cache=settings.cache_dir / "amx_probe.json",
        )
    if kind == "openai" and arg:
        from offline_vision.models.reasoners.openai_compat import OpenAICompatReasoner

        return OpenAICompatReasoner(arg, base_url=base_url)
    raise BadInput(f"unknown reasoner {spec!r}; use {SPEC_HELP}")
