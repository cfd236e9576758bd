"""The public Python API, as the README shows it — tiny CLIP, scripted reasoner."""

from __future__ import annotations

import sys

from offline_vision.models.reasoners.scripted import ScriptedReasoner


def test_readme_example(settings, tiny_clip, data_dir):
    from offline_vision import classify, load_scorer, run_dialogue

    eyes = load_scorer(settings=settings)
    photo = data_dir / "photos" / "chelsea.png"
    out = classify([photo], labels="cat,dog,car", scorer=eyes, top_k=2)
    assert out[0]["image"] == str(photo) and len(out[0]["labels"]) == 2
    assert {x["label"] for x in out[0]["labels"]} <= {"cat", "dog", "car"}
    llm = ScriptedReasoner(
        lambda messages, choices, schema: (
            choices[0] if choices else '{"candidates": ["cat", "dog"]}'
        )
    )
    d = run_dialogue(
        photo, labels=["cat", "dog", "car"], scorer=eyes, reasoner=llm, trust=1.0, rounds=2
    )
    assert d["answer"]["label"] in {"cat", "dog", "car"} and llm.calls


def test_import_loads_no_runtime():
    import subprocess

    code = "import offline_vision, sys; print('onnxruntime' in sys.modules, 'llama_cpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]
