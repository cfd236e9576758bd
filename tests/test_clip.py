"""CLIP on ONNX Runtime against its references: CLIPImageProcessor, CLIPTokenizerFast, PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from offline_vision.images import load_image
from offline_vision.models.clip import ClipScorer
from offline_vision.models.preprocess import Preprocess
from offline_vision.models.scorer import TextCache


def _photos(data_dir):
    return [load_image(p) for p in sorted((data_dir / "photos").iterdir())]


def test_preprocessing_matches_clip_image_processor(data_dir, tiny_ckpt):
    from transformers import CLIPImageProcessor

    hf = CLIPImageProcessor.from_pretrained(str(tiny_ckpt))
    pre = Preprocess.from_config(json.loads((tiny_ckpt / "preprocessor_config.json").read_text()))
    rng = np.random.default_rng(1)
    odd_sizes = [
        Image.fromarray(rng.integers(0, 256, s, np.uint8))
        for s in [(500, 300, 3), (300, 500, 3), (100, 150, 3), (224, 224, 3), (32, 32, 3)]
    ]
    images = _photos(data_dir) + odd_sizes
    ours = pre(images)
    ref = hf(images=images, return_tensors="np")["pixel_values"]
    assert ours.shape == ref.shape == (len(images), 3, 224, 224)
    assert np.abs(ours - ref).max() < 1e-5


def test_tokenizer_matches_clip_tokenizer_fast(tiny_clip, tiny_ckpt):
    from transformers import CLIPTokenizerFast

    hf = CLIPTokenizerFast.from_pretrained(str(tiny_ckpt))
    scorer = ClipScorer(tiny_clip)
    texts = [
        "a photo of a cat.",
        "A BLURRY photo, of the Dog!!",
        "naïve café 東京 🐱",
        "itap of a origami truck",
        "  spaced   out  ",
        "",
    ]
    ours, mask = scorer.tokenizer(texts)
    for i, expected in enumerate(hf(texts)["input_ids"]):
        assert ours[i, : mask[i].sum()].tolist() == expected


def test_onnx_matches_pytorch_and_int8_is_close(tiny_clip, tiny_ckpt, data_dir):
    import torch
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(str(tiny_ckpt)).eval()
    images = _photos(data_dir)
    texts = ["a photo of a cat.", "a photo of a dog.", "a bad photo of the ship."]
    fp32 = ClipScorer(tiny_clip, precision="fp32")
    int8 = ClipScorer(tiny_clip, precision="int8")
    pixels = fp32.preprocess(images)
    ids, _ = fp32.tokenizer(texts)
    with torch.no_grad():
        ref_img = model.get_image_features(pixel_values=torch.from_numpy(pixels)).numpy()
        ref_txt = model.get_text_features(input_ids=torch.from_numpy(ids)).numpy()
    ref_img /= np.linalg.norm(ref_img, axis=1, keepdims=True)
    ref_txt /= np.linalg.norm(ref_txt, axis=1, keepdims=True)
    img = fp32.encode_images(images)
    txt = fp32.encode_labels(texts)
    assert np.abs(img - ref_img).max() < 1e-4
    assert np.abs(txt - ref_txt).max() < 1e-4
    assert (int8.encode_images(images) * img).sum(axis=1).min() > 0.99
    assert fp32.logit_scale == pytest.approx(model.logit_scale.exp().item())
    probs = fp32.probabilities(img, txt)
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_export_manifest_records_validation(tiny_clip):
    m = tiny_clip.manifest
    v = m["validation"]
    assert "chelsea.png" in v["images"]  # real photos, not synthetic ones
    for tower in ("image", "text"):
        assert v["fp32_vs_pytorch"][tower]["cosine_min"] >= 0.9999
        assert v["fp32_vs_pytorch"][tower]["max_abs"] <= 1e-4
        assert 0.9 < v["int8_vs_fp32"][tower]["cosine_min"] <= 1.0
    assert m["opset"] == 17
    assert "class token only" in m["graph"]["vision"]
    for rel, meta in m["files"].items():
        assert len(meta["sha256"]) == 64, rel


def test_class_token_export_tower_matches_the_full_tower_and_leaves_it_unchanged(tiny_ckpt):
    import torch
    from transformers import CLIPModel
    from transformers.models.clip.modeling_clip import CLIPEncoderLayer

    from offline_vision.export.clip_layers import (
        ClassTokenLayer,
        class_token_vision,
        vision_tower,
    )

    vision = vision_tower(CLIPModel.from_pretrained(str(tiny_ckpt)).eval())
    pruned = class_token_vision(vision)
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        full = vision(pixel_values=x)
        short = pruned.vision_model(pixel_values=x)
        ours = pruned(pixel_values=x).image_embeds
    assert torch.allclose(full.image_embeds, ours, atol=1e-5)
    assert short.last_hidden_state.shape[1] == 1  # the last layer ran for one token
    assert full.last_hidden_state.shape[1] == 50
    assert isinstance(pruned.vision_model.encoder.layers[-1], ClassTokenLayer)
    assert isinstance(vision.vision_model.encoder.layers[-1], CLIPEncoderLayer)
    assert pruned.visual_projection.weight is vision.visual_projection.weight  # shared, not copied


def test_spinning_is_only_for_sessions_that_have_the_cores_to_themselves(tiny_clip, settings):
    from offline_vision.models import runtime
    from offline_vision.models.loader import load_scorer

    key = "session.intra_op.allow_spinning"
    assert runtime.session_options(2).get_session_config_entry(key) == "0"
    assert runtime.session_options(2, spin=True).get_session_config_entry(key) == "1"
    assert load_scorer(settings, "clip").spin is False  # the dialogue's default
    assert load_scorer(settings, "clip", spin=True).spin is True


_FRAGMENTED_HEAP = """
import ctypes, json
from offline_vision.models import runtime
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss_mb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
libc.free(libc.malloc(8 << 20))  # glibc now serves blocks under 8 MB from the heap
big, pins = [], []
for _ in range(64):  # as a session build does: weights freed between blocks that stay
    b = libc.malloc(2 << 20)
    ctypes.memset(b, 1, 2 << 20)
    big.append(b)
    pins.append(libc.malloc(256 << 10))  # too large for a free-list slot: lands after b
for b in big:
    libc.free(b)
before = rss_mb()
released = runtime.trim_heap()
print(json.dumps({"released": released, "freed_mb": before - rss_mb()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap behaviour")
def test_trim_heap_returns_freed_weights_to_the_os():
    out = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED_HEAP], capture_output=True, text=True, check=True
    )
    r = json.loads(out.stdout)
    assert r["released"] is True
    assert r["freed_mb"] > 100  # of the 128 MB that free() alone left resident


def test_label_cache_makes_second_run_encode_no_text(tiny_clip, settings):
    labels = ["cat", "dog", "ship", "an airplane"]
    templates = ("a photo of a {}.", "a bad photo of the {}.")
    cache_path = settings.cache_dir / "text.sqlite"
    first = ClipScorer(tiny_clip, cache=TextCache(cache_path))
    e1 = first.encode_labels(labels, templates)
    assert first.texts_encoded == len(labels) * len(templates)
    second = ClipScorer(tiny_clip, cache=TextCache(cache_path))  # as a new process would
    e2 = second.encode_labels(labels, templates)
    assert second.texts_encoded == 0
    np.testing.assert_array_equal(e1, e2)
    second.encode_labels(["cat", "frog"], templates)  # only the new label is encoded
    assert second.texts_encoded == len(templates)


def test_label_prompt_over_context_is_truncated_with_warning(tiny_clip, caplog):
    scorer = ClipScorer(tiny_clip)
    long_label = " ".join(["cat"] * 120)
    with caplog.at_level("WARNING", logger="ovision"):
        emb = scorer.encode_labels([long_label])
    assert "truncated" in caplog.text
    assert emb.shape[0] == 1 and np.isfinite(emb).all()


def test_import_and_classify_never_import_torch(tiny_clip, settings, data_dir):
    code = (
        "import sys\n"
        "from offline_vision.cli import main\n"
        f"sys.argv = ['ovision', 'classify', r'{data_dir / 'photos' / 'chelsea.png'}',"
        " '--labels', 'cat,dog', '--scorer', 'clip']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'optimum', 'llama_cpp') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "cat" in out.stdout
