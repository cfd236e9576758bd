"""offline_vision: image classification with CLIP and a local LLM, with no network at run time.

from offline_vision import load_scorer, load_reasoner, classify, plan_labels, run_dialogue
from offline_vision import index, tag, search   # a catalog: embed once, tag many times
"""

__version__ = "0.1.0"
__all__ = [
    "classify",
    "index",
    "load_reasoner",
    "load_scorer",
    "plan_labels",
    "run_dialogue",
    "search",
    "tag",
]


def __getattr__(name: str):
    # Lazily, so `import offline_vision` (and the CLI's startup) loads no model runtime.
    if name in __all__:
        from offline_vision import api

        return getattr(api, name)
    raise AttributeError(f"module 'offline_vision' has no attribute {name!r}")
