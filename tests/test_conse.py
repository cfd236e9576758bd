"""ConSE with tiny random towers exported by the project's own exporter (no downloads)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from offline_vision.labels.sets import default_templates
from offline_vision.models.conse import TOP_T, ConseScorer
from offline_vision.models.provision import registry, store


@pytest.fixture(scope="session")
def tiny_conse_export(tmp_path_factory, data_dir):
    from tiny_conse import tiny_image_net, tiny_text_dir

    from offline_vision.export.conse import export_conse

    root = tmp_path_factory.mktemp("conse")
    return export_conse(
        tiny_image_net(),
        tiny_text_dir(root / "text"),
        root / "out",
        photo_dir=data_dir / "photos",
        source={"type": "test"},
    )


@pytest.fixture
def tiny_conse(settings, tiny_conse_export):
    files, meta = tiny_conse_export
    return store.install(settings.models_dir, registry.CONSE, "conse", files, meta)


def test_export_validates_both_towers_against_pytorch(tiny_conse):
    v = tiny_conse.manifest["validation"]
    assert "chelsea.png" in v["images"]
    for check in v["fp32_vs_pytorch"].values():
        assert check["cosine_min"] >= 0.9999 and check["max_abs"] <= 1e-4
    emb = np.load(tiny_conse.file("class_text_embeddings.npy"))
    assert emb.shape[0] == 1000 and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert tiny_conse.manifest["standin"] is True


def test_image_embedding_is_the_top_t_convex_combination(tiny_conse, data_dir):
    from offline_vision.images import load_image

    scorer = ConseScorer(tiny_conse)
    img = [load_image(data_dir / "photos" / "chelsea.png")]
    p = scorer.imagenet_probabilities(img)[0]
    top = np.argsort(-p)[:TOP_T]
    expected = (p[top, None] * scorer.class_embeddings[top]).sum(axis=0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(scorer.encode_images(img)[0], expected, atol=1e-5)
    labels = scorer.encode_labels(
        ["cat", "dog", "truck"], default_templates("cifar10", scorer.templates)
    )
    probs = scorer.probabilities(scorer.encode_images(img), labels)
    assert probs.shape == (1, 3) and abs(probs.sum() - 1) < 1e-6
    assert default_templates("imagenet", scorer.templates) == ("a photo of a {}",)


def test_classify_falls_back_to_conse_with_a_notice(run_cli, tiny_conse, data_dir):
    r = run_cli("classify", data_dir / "photos" / "chelsea.png", "--labels", "cat,dog", "--json")
    assert r.exit_code == 0, r.output
    notice = [line for line in r.stderr.splitlines() if "ConSE" in line]
    assert len(notice) == 1
    assert "weaker than CLIP" in notice[0] and f"ovision models pull {registry.CLIP}" in notice[0]
    about = json.loads(r.stdout)["scorer"]
    assert about["scorer"] == "conse" and about["standin"] is True and "not CLIP" in about["note"]
    assert set(about["sha256"]) == {"image", "text"}
    # Forcing it says nothing; forcing CLIP without CLIP is a one-line error naming the fix.
    r = run_cli(
        "classify", data_dir / "photos" / "chelsea.png", "--labels", "cat,dog", "--scorer", "conse"
    )
    assert r.exit_code == 0 and "ConSE" not in r.stderr
    r = run_cli("classify", data_dir / "photos" / "chelsea.png", "--scorer", "clip")
    assert r.exit_code == 1 and f"ovision models pull {registry.CLIP}" in r.stderr


def test_models_list_calls_conse_a_standin(run_cli, tiny_conse):
    r = run_cli("models", "list", "--json")
    row = next(json.loads(x) for x in r.stdout.splitlines() if registry.CONSE in x)
    assert row["installed"] and "stand-in, weaker than CLIP" in row["note"]
