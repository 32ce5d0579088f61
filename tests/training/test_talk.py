"""The grammar of everyday sentences for the training streams (talk.py): every slot has
words, the same seed gives the same sentences, the evaluation's sentences never come out."""

from __future__ import annotations

import re

import numpy as np
import pytest
from wakeward_train import phonemes, streams, talk


def test_every_template_slot_has_words_and_every_word_list_is_used():
    used = {slot for t in talk.TEMPLATES for slot in talk.template_slots(t)}
    assert used == talk.SLOTS
    assert all(talk.WORDS[slot] for slot in used)
    assert len(set(talk.TEMPLATES)) == len(talk.TEMPLATES)


def test_the_same_seed_gives_the_same_sentences_and_another_seed_others():
    a = talk.sentences(200, np.random.default_rng(3))
    assert a == talk.sentences(200, np.random.default_rng(3))
    assert a != talk.sentences(200, np.random.default_rng(4))
    assert len(a) == 200 and len(set(a)) > 150
    assert all("{" not in s and "}" not in s and s[0].isupper() for s in a)


def test_excluded_sentences_never_come_out():
    many = talk.sentences(2000, np.random.default_rng(0))
    banned = sorted(set(many))[:50]
    again = talk.sentences(2000, np.random.default_rng(0), exclude=[b.upper() for b in banned])
    assert len(again) == 2000 and not set(again) & set(banned)


def test_no_template_is_an_evaluation_sentence():
    evaluation = {s.lower() for s in phonemes.sentence_lines(streams.EVAL_SENTENCES)}
    out = talk.sentences(20000, np.random.default_rng(1), exclude=list(evaluation))
    assert not {s.lower() for s in out} & evaluation

    # nor close to an instance of a template: its slots filled with one or two words of any
    # kind, and its own words at least 40% of the sentence
    def copies(template: str) -> list[str]:
        parts = talk._SLOT.split(template)
        slot = r"[\w']+(?: [\w']+)?"
        pattern = "".join(slot if k % 2 else re.escape(p.lower()) for k, p in enumerate(parts))
        own = sum(len(p) for p in parts[::2])
        return [e for e in evaluation if re.fullmatch(pattern, e) and own >= 0.4 * len(e)]

    for template in talk.TEMPLATES:
        assert not copies(template), template
    assert copies("Who {verb_past} the last of the {food}?")  # the check can fail


def test_a_negative_count_is_refused():
    with pytest.raises(ValueError, match="-1"):
        talk.sentences(-1, np.random.default_rng(0))
