"""Confusable negatives: close phoneme neighbours of the phrase, its parts, longer words with
its sounds, never the phrase itself or anything that sounds exactly like it."""

from __future__ import annotations

import numpy as np
import pytest
from wakeward.errors import WakewardError
from wakeward_train import confusables, phonemes
from wakeward_train.phonemes import distances

from tests.conftest import require_tools
from tests.training.conftest import UNRELATED, WORDS


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory) -> phonemes.Lexicon:
    require_tools("espeak-ng")
    return phonemes.load_lexicon(words=WORDS, cache_dir=tmp_path_factory.mktemp("lexicon"))


# -- distance (no espeak-ng needed) ------------------------------------------------------


def test_weighted_edit_distance():
    target = ("h", "eɪ", "dʒ", "ɑːɹ", "v", "ɪ", "s")
    cands = [
        target,
        ("h", "aɪ", "dʒ", "ɑːɹ", "v", "ɪ", "s"),  # vowel for vowel: 0.5
        ("eɪ", "dʒ", "ɑːɹ", "v", "ɪ", "s"),  # drop the weak h: 0.5
        ("h", "eɪ", "tʃ", "ɑːɹ", "v", "ɪ", "s"),  # voiceless twin: 0.5
        ("h", "eɪ", "k", "ɑːɹ", "v", "ɪ", "s"),  # unrelated consonant: 1
        ("dʒ", "ɑːɹ"),
        (),
    ]
    assert list(distances(target, cands)) == [0, 0.5, 0.5, 0.5, 1, 4.5, 6.5]
    # "jar" lies inside the phrase; the phrase lies inside a longer word
    assert distances(target, [("dʒ", "ɑːɹ")], "candidate_inside")[0] == 0
    longer = [("ð", "eɪ", "dʒ", "ɑːɹ", "v", "ɪ", "s", "t", "ə", "n")]
    assert distances(target, longer, "target_inside")[0] == 0.5  # drop the weak h
    assert distances(target, longer, "whole")[0] == 3.5  # h->ð, then t ə n added
    with pytest.raises(WakewardError, match="unknown alignment mode"):
        distances(target, cands, "fuzzy")


def test_distance_matches_a_plain_dynamic_programme():
    rng = np.random.default_rng(0)
    alphabet = ["p", "b", "t", "d", "s", "z", "a", "e", "ɪ", "ə", "h", "m", "n"]

    def slow(a, b):
        d = np.zeros((len(a) + 1, len(b) + 1))
        d[:, 0] = np.cumsum([0] + [phonemes.indel_cost(t) for t in a])
        d[0, :] = np.cumsum([0] + [phonemes.indel_cost(t) for t in b])
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d[i, j] = min(
                    d[i - 1, j] + phonemes.indel_cost(a[i - 1]),
                    d[i, j - 1] + phonemes.indel_cost(b[j - 1]),
                    d[i - 1, j - 1] + phonemes.substitution_cost(a[i - 1], b[j - 1]),
                )
        return d[-1, -1]

    target = tuple(rng.choice(alphabet, 6))
    cands = [tuple(rng.choice(alphabet, int(rng.integers(0, 10)))) for _ in range(60)]
    assert list(distances(target, cands)) == [slow(target, c) for c in cands]


def test_dictionary_noise_is_not_a_word():
    assert not phonemes.plausible_word("ec", ("iː", "s", "iː"))
    assert not phonemes.plausible_word("clxi", ("s", "iː", "ɛ", "l", "ɛ", "k", "s", "aɪ"))
    assert phonemes.plausible_word("hi", ("h", "aɪ"))
    assert phonemes.plausible_word("mix", ("m", "ɪ", "k", "s"))


# -- with espeak-ng ----------------------------------------------------------------------


def test_phonemize_uses_espeak_phonemes():
    require_tools("espeak-ng")
    hey_jarvis, hay, empty = phonemes.phonemize(["Hey, Jarvis!", "hay", "..."])
    assert hey_jarvis[:2] == ("h", "eɪ") and "dʒ" in hey_jarvis and hey_jarvis[-1] == "s"
    assert hay == hey_jarvis[:2]
    assert empty == ()


def test_hey_jarvis_confusables(lexicon):
    found = confusables.candidates("hey jarvis", lexicon)
    by_kind = {k: [c.text for c in found if c.kind == k] for k in confusables.KINDS}
    # close phoneme neighbours: one word swapped, or every word
    assert {"hey mavis", "hey novice", "hey service", "hey javas"} <= set(by_kind["substitution"])
    assert {"hi service", "hay mavis", "hay novice"} <= set(by_kind["neighbour"])
    assert by_kind["substitution"][0] in ("hey javas", "hey novice")  # the closest first
    # one cheap edit away is too close to call a negative (a user saying it means the phrase)
    assert "hi jarvis" not in [c.text for c in found]
    # parts, and longer words with its sounds inside, and sentences around them
    assert {"hey", "jarvis", "jar"} <= set(by_kind["subword"])
    assert "harvesting" in by_kind["superstring"]
    assert any("jarvis" in t and t[0].isupper() for t in by_kind["context"])
    texts = [c.text.lower() for c in found]
    # never the phrase, nor a homophone of it, nor a sentence that says it
    assert "hey jarvis" not in texts and "hay jarvis" not in texts
    assert not any("hey jarvis" in t or "hay jarvis" in t for t in texts)
    target = phonemes.phonemize(["hey jarvis"])[0]
    said = phonemes.phonemize([c.text for c in found])
    assert distances(target, said).min() >= confusables.MIN_DISTANCE
    # unrelated words stay out
    assert not set(UNRELATED) & set(texts)


def test_alexa_confusables(lexicon):
    found = confusables.candidates("Alexa", lexicon)
    by_kind = {k: [c.text for c in found if c.kind == k] for k in confusables.KINDS}
    assert {"alexis", "lexus", "elixir", "election"} <= set(by_kind["neighbour"])
    assert "alexander" in by_kind["superstring"]
    assert not by_kind["substitution"]  # one word: nothing to swap
    assert "alexa" not in [c.text.lower() for c in found]


def test_select_is_seeded_and_shares_out_the_kinds(lexicon):
    found = confusables.candidates("hey jarvis", lexicon)
    a = confusables.select(found, 30, seed=4)
    assert a == confusables.select(found, 30, seed=4)
    assert a != confusables.select(found, 30, seed=5)
    assert len(a) == 30
    kinds = {c.kind for c in a}
    assert kinds == set(confusables.KINDS)
    # a kind with fewer candidates than its share gives the rest to the others
    few = [c for c in found if c.kind != "superstring"] + [
        c for c in found if c.kind == "superstring"
    ][:1]
    picked = confusables.select(few, 30, seed=4)
    assert sum(c.kind == "superstring" for c in picked) == 1 and len(picked) == 30
    assert len({c.text for c in picked}) == 30  # no repeats while there is more to pick
    # fewer candidates than asked for: all of them, then repeats, exactly `count`
    five = [c for c in found if c.kind == "subword"][:3] + [
        c for c in found if c.kind == "context"
    ][:2]
    many = confusables.select(five, 17, seed=1)
    assert len(many) == 17 and {c.text for c in many} == {c.text for c in five}


def test_a_phrase_without_words_is_refused(lexicon):
    with pytest.raises(WakewardError, match="has no words"):
        confusables.candidates("?!", lexicon)


def test_word_list_cache_skips_espeak_the_second_time(tmp_path, monkeypatch):
    require_tools("espeak-ng")
    first = phonemes.load_lexicon(words=["jar", "harvest", "Ec"], cache_dir=tmp_path)
    assert first.words == ("ec", "harvest", "jar")
    assert len(list(tmp_path.iterdir())) == 1

    def no_espeak(*args, **kw):
        raise AssertionError("espeak-ng called despite the cache")

    monkeypatch.setattr(phonemes, "phonemize", no_espeak)
    again = phonemes.load_lexicon(words=["jar", "harvest", "Ec"], cache_dir=tmp_path)
    assert again == first
    assert list(again.spoken) == [False, True, True]


def test_a_missing_word_list_is_named(tmp_path):
    with pytest.raises(WakewardError, match="nope.txt: no such word list"):
        phonemes.load_lexicon(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("123\n'\n")
    with pytest.raises(WakewardError, match="empty.txt: no usable words"):
        phonemes.load_lexicon(tmp_path / "empty.txt")
