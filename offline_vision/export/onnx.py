"""Export helpers shared by every model: the export contract, int8 quantisation, comparison."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from offline_vision.errors import ExportError

log = logging.getLogger("ovision")
OPSET = 17


@dataclass(frozen=True)
class OnnxSpec:
    """What one exported graph looks like: named inputs/outputs with their dynamic axes."""

    inputs: dict[str, dict[int, str]]
    outputs: dict[str, dict[int, str]]
    opset: int = OPSET
    dummy_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


@contextlib.contextmanager
def quiet():
    """Silence the tracer and library warnings an export prints (they are not for users)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from transformers.utils import logging as hf_logging

            level = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()
        except ImportError:
            level = None
        root = logging.getLogger()
        root_level = root.level
        root.setLevel(logging.ERROR)  # onnxruntime.quantization logs advice on the root logger
        try:
            yield
        finally:
            root.setLevel(root_level)
            if level is not None:
                hf_logging.set_verbosity(level)


def export_torch(module, spec: OnnxSpec, dummy: tuple, path: Path) -> None:
    """torch.onnx.export of a plain nn.Module (TorchScript exporter, constant folding)."""
    import torch

    module.eval()
    with torch.no_grad():
        torch.onnx.export(
            module,
            dummy,
            str(path),
            input_names=list(spec.inputs),
            output_names=list(spec.outputs),
            dynamic_axes={**spec.inputs, **spec.outputs},
            opset_version=spec.opset,
            do_constant_folding=True,
            dynamo=False,
        )


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of MatMul/Gemm weights (activations quantised at run time).

    Convolutions stay fp32: ORT's ConvInteger is slower than its fp32 Conv on CPU (measured on
    CLIP's patch embedding: 28 % of int8 image time as ConvInteger).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"]
    )


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Cosine (min, mean) and max-abs difference between L2-normalised embeddings."""
    a, b = _unit(reference), _unit(candidate)
    cos = (a * b).sum(axis=-1)
    return {
        "cosine_min": float(cos.min()),
        "cosine_mean": float(cos.mean()),
        "max_abs": float(np.abs(a - b).max()),
    }


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for p in packages:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[p] = importlib.metadata.version(p)
    return out


def require_export_extra() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        raise ExportError(
            f"exporting needs the `export` extra ({e.name} is missing): "
            "pip install 'offline_vision[export]'"
        ) from e


def have_export_extra() -> bool:
    try:
        require_export_extra()
    except ExportError:
        return False
    return True
