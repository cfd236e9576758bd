"""ONNX Runtime sessions: CUDA when a GPU is usable, else CPU, with a set thread count."""

from __future__ import annotations

import ctypes
import logging
import sys
from pathlib import Path

import onnxruntime as ort

from offline_vision.config import DEVICES
from offline_vision.errors import BadInput, BadModel

log = logging.getLogger("ovision")
ort.set_default_logger_severity(3)  # ORT's own warnings are noise for users


def trim_heap() -> bool:
    """Give the C heap's free pages back to the OS (glibc's malloc_trim; elsewhere a no-op).

    Building a session frees each weight after prepacking it, but small allocations between
    them pin glibc's heap, so the freed space stays resident: a process holding a ViT-B/32
    fp32 image session had 630 MB resident, 400 MB after a 16 ms trim (clip_speed.json).
    Returns whether memory was released."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    return malloc_trim(0) == 1


def providers(device: str) -> list[str]:
    if device not in DEVICES:
        raise BadInput(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        log.warning(
            "--device cuda: onnxruntime has no CUDA provider here (install onnxruntime-gpu "
            "on a machine with an NVIDIA GPU); running on the CPU"
        )
    if device in ("cuda", "auto") and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(threads: int, *, spin: bool = False):
    """The session options every model uses. `spin`: see `session`."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return opts


def session(model: Path, *, device: str = "auto", threads: int = 1, spin: bool = False):
    """An InferenceSession for a model file the caller has verified.

    spin=True lets idle pool threads spin between operators instead of sleeping: faster when
    the model has the cores to itself (ViT-B/32 at batch 1: 28.3 vs 29.7 ms, clip_speed.json),
    but the spinning threads take the cores from whatever runs next (the LLM in a dialogue),
    so it is off unless a caller knows nothing else runs."""
    opts = session_options(threads, spin=spin)
    chosen = providers(device)  # an unknown device is the user's error, not the model's
    try:
        sess = ort.InferenceSession(str(model), sess_options=opts, providers=chosen)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise BadModel(f"{model.name}: not a loadable ONNX model ({str(e).splitlines()[0]})") from e
    if "CUDAExecutionProvider" in chosen and "CUDAExecutionProvider" not in sess.get_providers():
        log.warning(
            "--device cuda: the CUDA provider did not start (no GPU visible); using the CPU"
        )
    trim_heap()
    return sess
