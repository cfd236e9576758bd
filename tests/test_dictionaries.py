"""The bridge's dictionaries and name check: glosses as candidates, the reasoner picking a
sense, names never asked again, compounds, which sets a Japanese dictionary covers, and plain
English names the tokenizer splits — a tiny dictionary and a scripted reasoner, no weights."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest
from fakes import FakeScorer
from test_bridge import _asked, _replies, bridge_calls
from test_knowledge import _keyword

from offline_vision.labels.dictionaries import JMdict, _clean, glosses
from offline_vision.labels.readable import plain_english
from offline_vision.labels.writers.names import write_names
from offline_vision.models.reasoners.scripted import ScriptedReasoner


class TinyDictionary:
    """A Japanese-script dictionary of a few words, in JMdict's gloss format."""

    name, version, ordered = "tiny", "1", True
    WORDS: ClassVar[dict[str, list[str]]] = {
        "ワンピース": ["dress"],
        "ボーダー": ["border (pattern)/stripes", "border/boundary"],
        "迷彩": ["camouflage"],
        "柄": ["handle/grip", "pattern/design"],
        "コート": ["coat", "court (tennis, etc.)"],
        "外套": ["coat/overcoat"],
        "飛行機": ["aeroplane/airplane/aircraft"],
        "水玉": ["drop of water", "polka dots"],
        "船": ["ship/boat", "tank/tub"],
    }

    def covers(self, label, labels):
        return JMdict.covers(self, label, labels)  # the same script rule as JMdict

    def senses(self, label):
        return self.WORDS.get(label, [])


BOOKS = (TinyDictionary(),)


def test_glosses_are_cleaned_into_names_with_their_senses():
    names = _clean(["border (pattern)/stripes", "border/boundary", "to fasten", "the 2nd"])
    assert [g.name for g in names] == ["border", "stripes", "boundary", "fasten"]
    assert names[0].sense == "border (pattern)"  # the sense the reasoner is shown


def test_a_compound_no_entry_holds_is_read_as_two_words():
    source, found = glosses("迷彩柄", ["迷彩柄", "ボーダー"], BOOKS)
    assert source == "tiny" and "camouflage pattern" in [g.name for g in found]


def test_a_japanese_dictionary_covers_sets_with_kana_only():
    assert glosses("ボーダー", ["ボーダー", "無地"], BOOKS)[1]
    # Kanji alone may be Chinese (汽车 is a car, 汽車 a steam train): no Japanese dictionary.
    assert glosses("柄", ["柄", "猫"], BOOKS) == ("", [])
    assert glosses("dress", ["dress", "ボーダー"], BOOKS) == ("", [])


def test_dictionary_labels_take_its_commonest_sense_and_only_the_rest_are_asked(tmp_path):
    # Only スカート is asked (it is in no dictionary here): two asks, one answer each.
    llm = ScriptedReasoner(_replies({"スカート": "skirt"}, {"スカート": "skirt"}))
    labels = ["ワンピース", "ボーダー", "スカート"]
    k, _path, _ = write_names(labels, llm, cache_dir=tmp_path, dictionaries=BOOKS)
    assert k.texts == {"ワンピース": ["dress"], "ボーダー": ["border"], "スカート": ["skirt"]}
    assert k.choices["ボーダー"] == {
        "options": ["border", "stripes", "boundary"],  # kept: a clash's loser takes the next
        "odds": {},
        "chosen": "border",
        "source": "tiny",
    }
    assert k.prompts["dictionaries"] == {"tiny": "1"}
    asked = bridge_calls(llm)
    assert len(asked) == 2 and all(_asked(c) == ["スカート"] for c in asked)


def test_of_the_commonest_sense_the_name_the_eyes_read_whole_is_taken(tmp_path):
    eyes = FakeScorer(_keyword, lambda im: im)
    eyes.knows_word = lambda w: w in {"airplane", "aircraft"}  # 'aeroplane' is split
    llm = ScriptedReasoner(lambda m, c, s: "{}")  # no domain: the dictionary's order
    k, _, _ = write_names(
        ["飛行機", "ボーダー"], llm, cache_dir=tmp_path, scorer=eyes, dictionaries=BOOKS
    )
    assert k.texts["飛行機"] == ["airplane"]  # not the dictionary's first, 'aeroplane'
    assert k.choices["飛行機"]["options"] == ["airplane", "aeroplane", "aircraft"]
    assert k.texts["ボーダー"] == ["border"]  # none read whole: the first gloss
    assert len(llm.calls) == 2 and k.domain == ""  # only the domain, asked and repaired


def _domain_text(text: str) -> np.ndarray:
    """Texts near a domain share its axis: polka dots with clothing, a ship and a tank with
    vehicles (the tank a little nearer: the margin keeps the dictionary's ship)."""
    table = {
        "clothing": [1, 0, 0, 0],
        "polka dots": [0.9, 0, 0, 0.44],
        "drop of water": [0, 0, 0, 1],
        "vehicles": [0, 1, 0, 0],
        "ship": [0, 0.8, 0.6, 0],
        "tank": [0, 0.9, 0.44, 0],
    }
    return np.array(table.get(text, [0, 0, 1, 0]), dtype=np.float64)


def test_a_later_sense_is_taken_where_it_is_much_nearer_the_sets_domain(tmp_path):
    eyes = FakeScorer(_domain_text, lambda im: im)
    asked = ScriptedReasoner(lambda m, c, s: '{"domain": "clothing"}')
    labels = ["水玉", "ボーダー"]
    k, _, _ = write_names(labels, asked, cache_dir=tmp_path, scorer=eyes, dictionaries=BOOKS)
    assert k.texts["水玉"] == ["polka dots"] and k.domain == "clothing"  # inferred, once
    assert len(asked.calls) == 1 and "水玉, ボーダー" in asked.calls[0][-1]["content"]
    assert k.choices["水玉"]["domain_cosine"]["polka dots"] > 0.8
    # Given, nothing is asked; a sense only a little nearer does not replace the first.
    quiet = ScriptedReasoner(lambda m, c, s: "{}")
    k, _, _ = write_names(
        ["船", "ボーダー"], quiet, cache_dir=tmp_path, scorer=eyes, dictionaries=BOOKS,
        domain="vehicles",
    )  # fmt: skip
    assert k.texts["船"] == ["ship"] and k.domain == "vehicles" and quiet.calls == []
    # The domain is part of the cache key: another one writes the names again.
    other, _, cached = write_names(
        ["船", "ボーダー"], quiet, cache_dir=tmp_path, scorer=eyes, dictionaries=BOOKS,
        domain="clothing",
    )  # fmt: skip
    assert not cached and other.domain == "clothing"


def test_a_dictionary_name_is_never_asked_again_a_clash_is_settled(tmp_path):
    """コート and 外套 both read 'coat': no re-ask (it would replace a dictionary's word with a
    guess); the reasoner keeps one, the other takes its other gloss."""
    llm = ScriptedReasoner(lambda m, c, s: c[0] if c else "{}", probabilities=lambda m, c: None)
    k, _, _ = write_names(["コート", "外套"], llm, cache_dir=tmp_path, dictionaries=BOOKS)
    assert sorted(n[0] for n in k.texts.values()) == ["coat", "overcoat"]
    assert [c.get("kept_by") for c in k.conflicts] == ["コート"]
    assert not any("Classes:" in c[-1]["content"] for c in llm.calls)  # nothing asked again


def test_the_dictionaries_used_are_part_of_the_cache_key(tmp_path):
    llm = ScriptedReasoner(_replies(*[{"ワンピース": "pants"}] * 2))
    without, path1, _ = write_names(["ワンピース"], llm, cache_dir=tmp_path)
    with_book, path2, cached = write_names(
        ["ワンピース"], llm, cache_dir=tmp_path, dictionaries=BOOKS
    )
    assert without.texts == {"ワンピース": ["pants"]} and with_book.texts == {
        "ワンピース": ["dress"]
    }
    assert path1 != path2 and not cached


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("sandal", True),  # split by the tokenizer, plain English all the same
        ("cardigan", True),
        ("sleeveless clothing", True),
        ("cat", True),  # a whole token
        ("moggy", False),  # rare: Zipf 1.7
        ("cervid", False),
        ("ネコ", False),  # not Latin letters
        ("", False),
    ],
)
def test_a_plain_english_name_is_not_thrown_away_for_being_split(name, plain):
    pytest.importorskip("wordfreq")
    whole = {"cat", "clothing"}
    eyes = FakeScorer(_keyword, lambda im: im)
    eyes.knows_word = lambda w: w.lower() in whole  # a tokenizer that splits everything else
    assert plain_english(name, eyes) is plain


def test_eyes_that_cannot_tell_take_any_latin_name():
    eyes = FakeScorer(_keyword, lambda im: im)  # knows_word: None
    assert plain_english("moggy", eyes) and not plain_english("ネコ", eyes)


def test_a_bad_dictionaries_setting_is_one_line(run_cli, monkeypatch):
    monkeypatch.setenv("OVISION_DICTIONARIES", "all")
    r = run_cli("models", "list")
    assert r.exit_code != 0 and "OVISION_DICTIONARIES" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_jmdict_names_the_seed_users_words():
    """The real JMdict (the llm extra): the words the 1.5B got wrong."""
    pytest.importorskip("jamdict")
    book = JMdict()
    labels = ["ワンピース", "サンダル", "ハンドバッグ", "ボーダー"]
    found = {lab: [g.name for g in glosses(lab, labels, [book])[1]] for lab in labels}
    assert found["ワンピース"][0] == "dress" and found["サンダル"][0] == "sandal"
    assert "handbag" in found["ハンドバッグ"] and "stripes" in found["ボーダー"]
    assert json.dumps(book.version).startswith('"jamdict-data')


# --- FreeDict (dictd files: an index and a gzip'd body), written here --------------------------


def _dictd(folder, language, entries, pair="{}-eng"):
    """freedict-LANG-eng.index/.dict.dz (or the `pair` given, "eng-{}") holding `entries`
    (headword, body) as dictd writes them."""
    import gzip

    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def enc(n):
        out = ""
        while True:
            out = b64[n % 64] + out
            n //= 64
            if not n:
                return out

    body, index = b"", []
    for head, text in entries:
        data = f"{head} /x/\n{text}\n".encode()
        index.append(f"{head}\t{enc(len(body))}\t{enc(len(data))}")
        body += data
    folder.mkdir(parents=True, exist_ok=True)
    name = "freedict-" + pair.format(language)
    (folder / f"{name}.index").write_text("\n".join(sorted(index)) + "\n")
    with gzip.open(folder / f"{name}.dict.dz", "wb") as f:
        f.write(body)


PT = [
    ("cavalo", "1. knight\n2. horse\n"),
    ("gato", "cat\n"),
    ("cão", "dog, hound\n"),
    ("veado", ' [zool.] deer <n>\n      "um veado"  - a deer\n see: {veados}\n'),
]


def test_freedict_names_the_sets_language_and_the_reasoner_picks_a_sense(tmp_path):
    from offline_vision.labels.freedict import freedicts

    _dictd(tmp_path / "d", "por", PT)
    _dictd(tmp_path / "d", "ita", [("gatto", "cat\n"), ("cane", "dog\n")])
    books = freedicts(tmp_path / "d")
    labels = ["cavalo", "gato", "cão", "veado", "navio"]
    assert {b.name for b in books} == {"FreeDict por-eng", "FreeDict ita-eng"}
    found = {lab: glosses(lab, labels, books) for lab in labels}
    assert found["veado"][0] == "FreeDict por-eng"
    assert [g.name for g in found["veado"][1]] == ["deer"]  # tags, examples, links dropped
    assert [g.name for g in found["cão"][1]] == ["dog", "hound"]
    assert found["navio"] == ("", [])  # not in it: the reasoner names it
    assert glosses("gato", ["gato", "car", "house"], books) == ("", [])  # under half: no language
    # The senses come in no order of use: the reasoner picks among their first names.
    picks = []

    def odds(messages, choices):
        assert "They are household things.\nIn plain everyday English" in messages[-1]["content"]
        picks.append(list(choices))
        return {c: (0.9 if c == "horse" else 0.1) for c in choices}

    from test_bridge import _translator

    llm = ScriptedReasoner(_translator({"navio": "ship"}), probabilities=odds)
    k, _p, _c = write_names(labels, llm, cache_dir=tmp_path / "c", dictionaries=books)
    assert picks == [["knight", "horse"]]
    assert k.texts["cavalo"] == ["horse"] and k.texts["gato"] == ["cat"]
    assert k.choices["cavalo"]["source"] == "FreeDict por-eng"
    assert k.prompts["dictionaries"]["FreeDict por-eng"].endswith(" bytes")  # no edition entry


# English→X dictionaries read backwards (FreeDict's eng-tur, eng-ind, as Debian ships them).
ENG_TUR = [
    ("deer", "1. (çoğ.) deer) geyik, karaca, (zool.) Cervus.\n"),
    ("buck", "1. erkek geyik, antilop\n"),
    ("cervine", "1. geyik gibi\n"),
    ("at", "1. -de, -da\n"),
]
ENG_IND = [
    ("dog", "1. anjing, asu\nanimal\n"),
    ("fuck", "anjing, anjir, bangsat!\nexpression of dismay\n"),
    ("horse", "kuda 2.\nmembers of the species Equus ferus\n"),
    ("knight", "kuda\nchess piece\n"),
    ("cat", "kucing 2.\ndomestic species\n"),
    ("cat food", "makanan kucing\nfood for cats\n"),
    ("frog", "katak, kodok\nanimal\n"),
]


def test_a_word_the_x_english_dictionary_lacks_is_read_backwards(tmp_path):
    from offline_vision.labels.freedict import freedicts

    _dictd(tmp_path, "tur", [("köpek", "1. dog\n"), ("at", "1. horse\n"), ("kuş", "bird\n")])
    _dictd(tmp_path, "tur", ENG_TUR, pair="eng-{}")
    books = freedicts(tmp_path)
    assert [b.name for b in books] == ["FreeDict tur-eng"]
    assert "eng-tur" in books[0].version
    labels = ["köpek", "at", "kuş", "geyik", "kamyon"]
    found = {lab: glosses(lab, labels, books) for lab in labels}
    # Only whole translations count ("erkek geyik" and "geyik gibi" do not); a stray ")" and a
    # tag are cleaned off.
    assert [g.name for g in found["geyik"][1]] == ["deer"]
    assert found["geyik"][0] == "FreeDict tur-eng"
    assert [g.name for g in found["at"][1]] == ["horse"]  # the X→English entry first
    assert found["kamyon"] == ("", [])  # in neither: the reasoner names it


def test_a_language_with_only_an_english_x_dictionary_is_told_and_read(tmp_path):
    from offline_vision.labels.freedict import freedicts

    _dictd(tmp_path, "ind", ENG_IND, pair="eng-{}")
    _dictd(tmp_path, "tur", ENG_TUR, pair="eng-{}")
    books = freedicts(tmp_path)
    assert {b.name for b in books} == {"FreeDict eng-ind reversed", "FreeDict eng-tur reversed"}
    labels = ["anjing", "kuda", "kucing", "katak", "rusa"]
    found = {lab: glosses(lab, labels, books) for lab in labels}
    assert {f[0] for f in found.values() if f[1]} == {"FreeDict eng-ind reversed"}
    # The entry giving the label soonest first; a sense number left on the word is dropped.
    assert [g.name for g in found["anjing"][1]] == ["dog", "fuck"]
    assert [g.name for g in found["kuda"][1]] == ["horse", "knight"]
    assert [g.name for g in found["kucing"][1]] == ["cat"]  # not "cat food" (makanan kucing)
    assert found["rusa"] == ("", [])
    # English labels are English headwords: no dictionary claims the set.
    english = ["dog", "horse", "cat", "frog", "deer"]
    assert all(glosses(lab, english, books) == ("", []) for lab in english)
    assert glosses("anjing", ["anjing", "car", "house", "tree"], books) == ("", [])  # under half


def test_an_english_x_dictionary_too_big_unpacked_is_not_read(tmp_path, monkeypatch, caplog):
    from offline_vision.labels import freedict

    _dictd(tmp_path, "ind", ENG_IND, pair="eng-{}")
    monkeypatch.setattr(freedict, "MAX_TEXT", 64)  # a few entries' worth: a "bomb" here
    books = freedict.freedicts(tmp_path)
    assert glosses("anjing", ["anjing", "kuda"], books) == ("", [])
    assert "over 0 MB unpacked; not read" in caplog.text
