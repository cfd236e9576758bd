"""Reasoner specs: `local`, `local:NAME`, `local:/path/model.gguf`, `openai:MODEL`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from offline_vision.config import Settings
from offline_vision.errors import BadInput, ModelNotFound
from offline_vision.models.provision import registry, store
from offline_vision.models.reasoners.base import BaseReasoner, Completion, Reasoner, Usage
from offline_vision.options import Options, option

__all__ = ["BaseReasoner", "Completion", "Reasoner", "ReasonerOptions", "Usage", "load_reasoner"]

SPEC_HELP = "local | local:NAME | local:/path/model.gguf | openai:MODEL (with --base-url)"


@dataclass(frozen=True)
class ReasonerOptions(Options):
    """Which reasoner, and where it runs."""

    reasoner: str = option(
        "local",
        "local | local:NAME | local:/path/model.gguf | openai:MODEL (server from --base-url).",
    )
    base_url: str | None = option(
        None,
        "OpenAI-compatible server for openai:MODEL (default: $OPENAI_BASE_URL, else OpenAI). "
        "The key comes from $OPENAI_API_KEY only.",
    )
    n_ctx: int | None = option(
        None, "Context window of a local model [default: 8192].", lo=256, kind=int, cli="--ctx"
    )
    gpu_layers: int = option(
        0,
        "Layers of a local model to run on the GPU (-1: all); needs llama-cpp-python built "
        "with CUDA (scripts/gpu_check.sh builds it).",
        lo=-1,
    )

    @property
    def hosted(self) -> bool:
        return self.reasoner.startswith("openai:")

    def load(self, settings: Settings) -> BaseReasoner:
        return load_reasoner(
            settings,
            self.reasoner,
            base_url=self.base_url,
            n_ctx=self.n_ctx,
            gpu_layers=self.gpu_layers,
        )


def load_reasoner(
    settings: Settings,
    spec: str = "local",
    *,
    base_url: str | None = None,
    n_ctx: int | None = None,
    gpu_layers: int = 0,
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
                gpu_layers=gpu_layers,
                probe_cache=settings.cache_dir / "amx_probe.json",
            )
        name = arg or registry.GGUF
        # A registry GGUF, or one pulled from a hub (hf:ORG/NAME:QUANT) under its own name.
        if name not in registry.MODELS and name not in store.installed(settings.models_dir):
            registry.get(name)  # unknown: one line naming the registry's models
        listed = registry.MODELS[name].get("kind") if name in registry.MODELS else None
        if listed not in (None, "gguf"):
            raise BadInput(f"{name} is a {listed} model, not a GGUF reasoner")
        bundle = store.load(settings.models_dir, name)
        if bundle.kind != "gguf":
            raise BadInput(f"{name} is a {bundle.kind} model, not a GGUF reasoner")
        sha = registry.MODELS[name]["sha256"] if listed else bundle.sha256("model.gguf")
        return LlamaCppReasoner(
            bundle.file("model.gguf"),
            name=f"local:{name}",
            sha256=sha,
            n_ctx=ctx,
            threads=settings.threads,
            gpu_layers=gpu_layers,
            probe_cache=settings.cache_dir / "amx_probe.json",
        )
    if kind == "openai" and arg:
        from offline_vision.models.reasoners.openai_compat import OpenAICompatReasoner

        return OpenAICompatReasoner(arg, base_url=base_url)
    raise BadInput(f"unknown reasoner {spec!r}; use {SPEC_HELP}")
