"""Leave-one-engine-out (folds.py, numpy only): which clips a fold trains and tests on, that
a fold reads each clip from the split it was built into, per-engine rows and the pooled
figure; `wakeward evaluate`'s phrase warning and the engines a model heard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from wakeward.errors import WakewardError
from wakeward_train import evalcmd, folds
from wakeward_train.dataset import HELDOUT, TRAIN, ClipRecord, Dataset

FRAMES = 4


def rec(i: int, split: str, label: int, voice: str | None, speaker: str | None) -> ClipRecord:
    return ClipRecord(
        id=f"c{i}",
        split=split,
        label=label,
        kind="tts" if voice else "noise",
        text=None,
        voice=voice,
        speaker=speaker,
        prosody=None,
        augmentation=None,
        gain_db=None,
        seed=[0, 0, i],
        source=None,
        offset=0,
        frames=FRAMES,
        samples=FRAMES * 160,
        speech_start_frame=None,
        speech_end_frame=None,
    )


def toy() -> Dataset:
    """Clips whose features hold their own index, each split in its own array."""
    rows = [
        (TRAIN, 1, "espeak-ng:en-us+f3", "espeak:f3"),
        (TRAIN, 1, "flite:kal", "speaker:kal"),
        (TRAIN, 1, "festival:kal_diphone", "speaker:kal"),  # flite's kal through festival
        (TRAIN, 1, "festival:ked_diphone", "speaker:ked"),
        (HELDOUT, 1, "flite:awb", "speaker:awb"),
        (HELDOUT, 1, "espeak-ng:en-gb+m3", "espeak:m3"),
        (TRAIN, 0, "flite:slt", "speaker:slt"),
        (TRAIN, 0, None, None),
        (HELDOUT, 0, None, None),
    ]
    records, feats = [], {TRAIN: [], HELDOUT: []}
    for i, (split, label, voice, speaker) in enumerate(rows):
        r = rec(i, split, label, voice, speaker)
        r.offset = len(feats[split]) * FRAMES
        feats[split].append(np.full((FRAMES, 40), i, np.int8))
        records.append(r)
    arrays = {s: np.concatenate(v) for s, v in feats.items()}
    return Dataset(Path("/nowhere"), {"config": {}}, records, arrays)


def test_a_fold_trains_without_the_engine_and_the_people_it_speaks_as():
    data = toy()
    view = folds.fold_view(data, "flite", gone={"speaker:kal", "speaker:awb", "speaker:slt"})
    roles = {r.id: r.split for r in view.records}
    # flite's clips, of both splits, are the fold's test set
    assert [i for i, s in roles.items() if s == HELDOUT] == ["c1", "c4", "c6", "c8"]
    # festival's kal_diphone is flite's kal: neither trained nor tested on
    assert "c2" not in roles
    # the held-out espeak voice is not this fold's question
    assert "c5" not in roles
    assert [i for i, s in roles.items() if s == TRAIN] == ["c0", "c3", "c7"]
    # every clip is still read from the features file it was built into
    for r in view.records:
        assert (view.clip(r) == int(r.id[1:])).all()
    assert folds.trained_engines(view) == ["espeak-ng", "festival"]


def test_an_engine_without_positives_cannot_be_held_out():
    with pytest.raises(WakewardError, match="no positive clip of engine 'piper'"):
        folds.fold_view(toy(), "piper", gone=set())


def test_a_fold_needs_training_positives_left():
    data = toy()
    data.records = [r for r in data.records if r.voice is None or r.voice.startswith("flite")]
    with pytest.raises(WakewardError, match="no positive clip is left to train on"):
        folds.fold_view(data, "flite", gone=set())


def test_engine_rows_count_each_engines_clips_and_say_which_were_heard():
    data = toy()
    positives = [r for r in data.records if r.label == 1]
    detected = np.array([True, False, True, True, False, False])
    rows = folds.engine_rows(positives, detected, trained_engines=["espeak-ng", "festival"])
    got = {r.engine: (r.clips, r.missed, r.speakers, r.heldout_engine) for r in rows}
    assert got == {
        "espeak-ng": (2, 1, 2, False),
        "flite": (2, 2, 2, True),
        "festival": (2, 0, 2, False),
    }
    assert [r.engine for r in rows] == ["espeak-ng", "flite", "festival"]  # ENGINES order
    unknown = folds.engine_rows(positives, detected)
    assert {r.heldout_engine for r in unknown} == {None}
    with pytest.raises(WakewardError):
        folds.engine_rows(positives, detected[:3])


def test_the_pooled_figure_is_missed_over_clips_of_all_folds():
    rows = [
        folds.EngineRow("espeak-ng", 300, 30, 40, True),
        folds.EngineRow("flite", 100, 40, 5, True),
    ]
    pooled = folds.Pooled(rows)
    assert (pooled.missed, pooled.clips) == (70, 400)
    assert pooled.false_reject_rate == pytest.approx(0.175)
    js = pooled.to_json()
    assert js["false_reject_rate"] == 0.175
    assert [e["clips"] for e in js["engines"]] == [300, 100]


def test_evaluate_warns_when_the_model_says_another_phrase():
    alexa = {"wake_word": "Alexa"}
    assert evalcmd.phrase_warning(alexa, "alexa") is None
    assert evalcmd.phrase_warning({"wake_word": "Hey  Wakeward!"}, "hey wakeward") is None
    warning = evalcmd.phrase_warning({"wake_word": "Hey Jarvis"}, "alexa")
    assert warning and "'Hey Jarvis'" in warning and "'alexa'" in warning
    assert evalcmd.phrase_warning(None, "alexa") is None


def test_the_engines_a_model_heard_come_from_its_record(tmp_path):
    tflite = tmp_path / "m.tflite"
    assert evalcmd.trained_engines(tflite) is None  # pymicro-wakeword's: unknown
    record = tmp_path / "m.wakeward.json"
    record.write_text(
        json.dumps({"data": {"voices_used": {"train": {"flite": 3, "espeak-ng": 9}}}})
    )
    assert evalcmd.trained_engines(tflite) == ["espeak-ng", "flite"]
    record.write_text(json.dumps({"trained_engines": ["festival"]}))
    assert evalcmd.trained_engines(tflite) == ["festival"]
    record.write_text("{")
    with pytest.raises(WakewardError, match="m.wakeward.json"):
        evalcmd.trained_engines(tflite)
