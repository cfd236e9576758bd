"""Regenerate offline_vision/data/cifar10_wordnet.json: for each CIFAR-10 class, its WordNet 3.0
synset, that synset's lemmas (synonyms) and the lemmas of every hyponym below it.

Open-answer mapping (dialogue `--open`) uses it: "sedan" → automobile (hyponym of car.n.01),
"aeroplane" → airplane (synonym). Source: Debian `wordnet-base` (/usr/share/wordnet/data.noun),
Princeton WordNet 3.0 (see LICENSES.md). Run once: `python scripts/make_wordnet_map.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA_NOUN = Path("/usr/share/wordnet/data.noun")
OUT = Path(__file__).resolve().parents[1] / "offline_vision" / "data" / "cifar10_wordnet.json"
# The synset each CIFAR-10 class stands for (WordNet 3.0 noun offsets).
SYNSETS = {
    "airplane": "02691156",  # airplane.n.01
    "automobile": "02958343",  # car.n.01
    "bird": "01503061",  # bird.n.01
    "cat": "02121620",  # cat.n.01 (domestic cats and wildcats)
    "deer": "02430045",  # deer.n.01
    "dog": "02084071",  # dog.n.01
    "frog": "01639765",  # frog.n.01
    "horse": "02374451",  # horse.n.01
    "ship": "04194289",  # ship.n.01
    "truck": "04490091",  # truck.n.01
}


def read(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """offset → (lemmas, hyponym offsets)."""
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        f = line.split(" | ")[0].split()
        n = int(f[3], 16)
        words = [f[4 + 2 * i].replace("_", " ").lower() for i in range(n)]
        i = 4 + 2 * n
        hypos = [f[i + 2 + 4 * k] for k in range(int(f[i])) if f[i + 1 + 4 * k] in ("~", "~i")]
        out[f[0]] = (words, hypos)
    return out


def main() -> None:
    wn = read(DATA_NOUN)
    result = {
        "_source": "Princeton WordNet 3.0 via Debian wordnet-base; scripts/make_wordnet_map.py"
    }
    for cls, off in SYNSETS.items():
        synonyms = sorted(set(wn[off][0]))
        seen, stack, hyponyms = {off}, list(wn[off][1]), set()
        while stack:
            o = stack.pop()
            if o in seen:
                continue
            seen.add(o)
            hyponyms.update(wn[o][0])
            stack.extend(wn[o][1])
        result[cls] = {
            "synset": off,
            "synonyms": synonyms,
            "hyponyms": sorted(hyponyms - set(synonyms)),
        }
    OUT.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print({c: (len(v["synonyms"]), len(v["hyponyms"])) for c, v in result.items() if c[0] != "_"})


if __name__ == "__main__":
    main()
