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
    offered = []

    def answer(messages, choices, schema):
        if choices:
            offered.append(list(choices))
            return choices[-1]  # not the eyes' favourite: the answer must be the LLM's pick
        return '{"candidates": ["cat", "dog"], "guess": "cat"}'

    llm = ScriptedReasoner(answer)
    d = run_dialogue(
        photo, labels=["cat", "dog", "car"], scorer=eyes, reasoner=llm, trust=1.0, rounds=2
    )
    ranked = [x["label"] for x in classify([photo], labels="cat,dog,car", scorer=eyes)[0]["labels"]]
    # The final answer was asked among the eyes' shortlist, in the eyes' order, and is the
    # LLM's pick from it (its last option), recorded as a constrained choice.
    assert offered[-1] == ranked[:3]
    assert (d["answer"]["label"], d["answer"]["rule"]) == (ranked[2], "choice")
    assert [r["candidates"] for r in d["rounds"]] == [["cat", "dog"]] * len(d["rounds"])
    assert not any(r["fallback"] for r in d["rounds"])  # the scripted rounds fit the schema


def test_import_loads_no_runtime():
    import subprocess

    code = "import offline_vision, sys; print('onnxruntime' in sys.modules, 'llama_cpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]
