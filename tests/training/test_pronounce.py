"""The wake phrase's pronunciation, taught to festival voices that say it otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from wakeward.errors import WakewardError
from wakeward_train import augment, dataset, pronounce, voices
from wakeward_train.voices import SpeechRequest

from tests.conftest import require_tools

# espeak-ng's tokens (stress marks kept), written out so the mapping tests need no espeak-ng
WAKEWARD = ("w", "ˈeɪ", "k", "w", "ɚ", "d")
JARVIS = ("dʒ", "ˈɑːɹ", "v", "ɪ", "s")
# "tomato" said the British way: festival's US lexicon (CMU) says t ax m ey t ow
TOMATO_GB = (("tomato", ("t", "ə", "m", "ˈɑː", "t", "oʊ")),)
TOMATO_US = (("tomato", ("t", "ə", "m", "ˈeɪ", "ɾ", "oʊ")),)


def test_espeak_tokens_map_onto_each_festival_phone_set_with_stress_digits():
    assert pronounce.festival_phones(WAKEWARD, "radio") == ("w", "ey1", "k", "w", "er0", "d")
    assert pronounce.festival_phones(WAKEWARD, "mrpa") == ("w", "ei1", "k", "w", "@0", "d")
    # r after a vowel: kept in the US set, dropped (or a centring diphthong) in the British
    assert pronounce.festival_phones(JARVIS, "radio") == ("jh", "aa1", "r", "v", "ih0", "s")
    assert pronounce.festival_phones(JARVIS, "mrpa") == ("jh", "aa1", "v", "i0", "s")
    assert pronounce.festival_phones(("ð", "ˈɛɹ"), "mrpa") == ("dh", "e@1")
    assert pronounce.festival_phones(("f", "ˈaɪɚ"), "radio") == ("f", "ay1", "er1")
    assert pronounce.without_stress(("w", "ey1", "k", "w", "er0", "d")) == (
        "w", "ey", "k", "w", "er", "d",
    )  # fmt: skip


def test_a_sound_or_phone_set_outside_the_tables_maps_to_none():
    assert pronounce.festival_phones(("ʁ", "ˈa"), "radio") is None  # French r
    assert pronounce.festival_phones(WAKEWARD, "cmu_ipa") is None


def test_the_reference_is_espeak_ngs_per_word_with_stress():
    require_tools("espeak-ng")
    ref = pronounce.reference("Hey, Wakeward!")
    assert [w for w, _ in ref] == ["hey", "wakeward"]
    assert ref[1][1] == WAKEWARD
    assert [w for w, _ in pronounce.reference("2 alexa")] == ["alexa"]  # festival says numbers
    assert pronounce.reference("42") == ()


@pytest.fixture(scope="module")
def kal() -> voices.Voice:
    require_tools("espeak-ng", "festival")
    found = [v for v in voices.detect(engines=("festival",)).by_engine("festival")]
    by_name = {v.name: v for v in found}
    if "kal_diphone" not in by_name:
        pytest.skip("needs festival's kal_diphone (Debian festvox-kallpc16k)")
    return by_name["kal_diphone"]


def test_festival_is_taught_only_the_words_it_says_otherwise(kal):
    phoneset, fixes, kept = voices.festival_corrections(kal, TOMATO_GB)
    assert phoneset == "radio" and kept == ()
    assert fixes == (
        voices.Correction("tomato", ("t", "ax", "m", "ey", "t", "ow"),
                          ("t", "ax0", "m", "aa1", "t", "ow0")),
    )  # fmt: skip
    assert fixes[0].line() == "tomato: /t ax m ey t ow/ -> /t ax m aa t ow/"
    assert voices.festival_corrections(kal, TOMATO_US)[1] == ()  # it already says it so
    assert voices.festival_corrections(kal, (("bonjour", ("b", "ɔ̃", "ʒ", "ˈuːɹ")),))[2] == (
        "bonjour",
    )  # a nasal vowel: festival keeps its own


def test_festival_output_it_cannot_read_is_an_error_naming_the_voice(kal, monkeypatch):
    monkeypatch.setattr(voices, "_run", lambda *a, **k: "radio\n")  # no line for the word
    with pytest.raises(WakewardError, match="festival:kal_diphone: festival printed 1 lines"):
        voices.festival_corrections(kal, (("crumpet", ("k", "ɹ", "ˈʌ", "m", "p", "ɪ", "t")),))
    lines = dataset._pronunciations([kal], (("scone", ("s", "k", "ˈoʊ", "n")),))
    assert lines[0].startswith("festival:kal_diphone: cannot read its pronunciation")


def test_a_taught_word_is_spoken_as_taught_batched_or_not(kal, tmp_path):
    req = SpeechRequest(kal, "a tomato please")
    own, taught, same = (
        voices.speak_all([req, req], say_as=say_as) for say_as in ((), TOMATO_GB, TOMATO_US)
    )
    assert np.array_equal(own[0], own[1]) and np.array_equal(taught[0], taught[1])
    assert not np.array_equal(own[0], taught[0])
    assert np.array_equal(own[0], same[0])  # nothing to teach: the voice's own speech
    alone = voices.speak_all([req], jobs=1, say_as=TOMATO_GB)[0]
    assert np.array_equal(alone, taught[0])
    one = voices._speak_one(req, tmp_path / "one.wav", TOMATO_GB)  # the one-by-one retry
    assert np.array_equal(one, taught[0])


def test_the_dataset_summary_says_what_festival_was_taught(kal):
    lines = dataset._pronunciations([kal], TOMATO_GB)
    assert lines == ["festival:kal_diphone is taught tomato: /t ax m ey t ow/ -> /t ax m aa t ow/"]
    assert dataset._pronunciations([kal], TOMATO_US) == []
    assert dataset._pronunciations([kal], ()) == []


def test_early_reflections_are_off_by_default_and_on_when_asked():
    assert augment.DEFAULT_SPEAKER_PARTS == ("tempo", "pitch", "vtlp", "mic")
    assert dataset.DataConfig("alexa").speaker.parts == augment.DEFAULT_SPEAKER_PARTS
    assert augment.SpeakerAugment.parse("default").parts == augment.DEFAULT_SPEAKER_PARTS
    assert augment.SpeakerAugment.parse("all").parts == augment.SPEAKER_PARTS
    assert augment.SpeakerAugment.parse("room").parts == ("room",)
