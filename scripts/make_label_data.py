"""Regenerate offline_vision/data/{imagenet_classes.txt,templates.json} from pinned wheels.

The ImageNet class names and the prompt ensembles are OpenAI CLIP's (MIT), as open_clip and
clip_benchmark carry them. Run once with network to PyPI: `python scripts/make_label_data.py`.
"""

from __future__ import annotations

import ast
import json
import tempfile
import zipfile
from pathlib import Path

from offline_vision.config import Settings
from offline_vision.models.provision.download import make_client
from offline_vision.models.provision.pypi import fetch_wheel

DATA = Path(__file__).resolve().parents[1] / "offline_vision" / "data"
OPEN_CLIP = (
    "open-clip-torch",
    "open_clip_torch-3.3.0-py3-none-any.whl",
    "c549ad5ed6bfc119cc11105033c0a2b9d7a2a4afeb40a58a09aab3da1a0043ce",
)
CLIP_BENCHMARK = (
    "clip-benchmark",
    "clip_benchmark-1.6.2-py2.py3-none-any.whl",
    "6fbfd39b454a036a628b7e227b3d4050015009afe418583f21f27886c74e4998",
)


def _tuple_of(source: str, name: str) -> list:
    """A module-level tuple assignment, read without executing the module."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return list(node.value.elts)
    raise KeyError(name)


def main() -> None:
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory() as tmp, make_client() as client:
        oc = fetch_wheel(client, settings.pypi_url, *OPEN_CLIP, Path(tmp))
        cb = fetch_wheel(client, settings.pypi_url, *CLIP_BENCHMARK, Path(tmp))
        meta = zipfile.ZipFile(oc).read("open_clip/zero_shot_metadata.py").decode()
        bench = json.loads(
            zipfile.ZipFile(cb).read(
                "clip_benchmark/datasets/en_zeroshot_classification_templates.json"
            )
        )
    names = [ast.literal_eval(e) for e in _tuple_of(meta, "IMAGENET_CLASSNAMES")]
    # SIMPLE_IMAGENET_TEMPLATES are lambdas `lambda c: f'itap of a {c}.'`: keep the f-string text.
    simple = []
    for lam in _tuple_of(meta, "SIMPLE_IMAGENET_TEMPLATES"):
        parts = lam.body.values
        simple.append("".join(p.value if isinstance(p, ast.Constant) else "{}" for p in parts))
    cifar = [t.replace("{c}", "{}") for t in bench["cifar10"]]
    assert len(names) == 1000 and len(simple) == 7 and len(cifar) == 18
    (DATA / "imagenet_classes.txt").write_text("\n".join(names) + "\n")
    out = {
        "_source": "OpenAI CLIP prompt ensembles (MIT) via open_clip 3.3.0 and clip_benchmark 1.6.2",
        "cifar10": cifar,
        "imagenet": simple,
    }
    (DATA / "templates.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {len(names)} class names, {len(cifar)} + {len(simple)} templates to {DATA}")


if __name__ == "__main__":
    main()
