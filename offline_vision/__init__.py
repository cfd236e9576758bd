"""offline_vision: image classification with CLIP and a local LLM, with no network at run time."""

__version__ = "0.1.0"
