"""The dataset build: split by speaker, reproducible from the seed, manifest consistent with
the stored features, owner recordings and false wakes in, bad recordings named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wakeward.audio import read_wav, write_wav
from wakeward.errors import WakewardError
from wakeward_train import augment, clips, dataset, voices
from wakeward_train.dataset import HELDOUT, TRAIN, DataConfig
from wakeward_train.features import clip_features

from tests.conftest import require_tools, write_test_wav
from tests.training.test_augment import speechlike

ESPEAK_ONLY = ("espeak-ng",)


def small_config(words: Path, **kw) -> DataConfig:
    base = {
        "phrase": "hey jarvis",
        "positives": 10,
        "negatives": 12,
        "seed": 7,
        "engines": ESPEAK_ONLY,
        "words": words,
    }
    return DataConfig(**{**base, **kw})


def files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != dataset.SUMMARY
    }


# -- the split (no TTS needed) -----------------------------------------------------------


def test_speaker_split_keeps_every_speaker_on_one_side():
    speakers = [f"espeak:v{i}" for i in range(40)] + ["speaker:kal", "speaker:slt", "mbrola:us1"]
    split = dataset.split_speakers(speakers, 0.2, seed=3)
    assert set(split) == set(speakers)
    held = [s for s in speakers if split[s] == HELDOUT]
    assert sum(s.startswith("espeak:") for s in held) == 8
    assert sum(s.startswith("speaker:") for s in held) == 1  # at least one, never all
    assert split["mbrola:us1"] == TRAIN  # a family of one stays in train
    assert split == dataset.split_speakers(list(reversed(speakers)), 0.2, seed=3)
    assert split != dataset.split_speakers(speakers, 0.2, seed=4)


def test_voice_sequence_follows_the_engine_shares_and_covers_voices():
    pool = [voices.Voice("espeak-ng", f"en+{i}", f"espeak:{i}") for i in range(50)]
    pool += [voices.Voice("flite", n, f"speaker:{n}") for n in ("kal", "slt")]
    seq = dataset.voice_sequence(
        pool, 100, {"espeak-ng": 0.8, "flite": 0.2}, np.random.default_rng(0)
    )
    assert sum(v.engine == "flite" for v in seq) == 20
    assert len({v.name for v in seq if v.engine == "espeak-ng"}) == 50  # all before repeats
    assert dataset.voice_sequence(pool[:3], 5, {}, np.random.default_rng(0))  # shares absent


# -- builds ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dataset.Summary]:
    require_tools("espeak-ng")
    tmp = tmp_path_factory.mktemp("built")
    words = tmp / "words.txt"
    from tests.training.conftest import WORDS

    words.write_text("\n".join(WORDS))
    owner = tmp / "owner"
    owner.mkdir()
    for i in range(2):  # the owner's takes: speech-like audio with quiet around it
        x = np.concatenate([np.zeros(4000), speechlike(0.8, i), np.zeros(3000)])
        write_wav(owner / f"take{i}.wav", np.round(x).astype(np.int16))
    false_wake = tmp / "fw.wav"
    write_wav(false_wake, np.round(speechlike(1.5, 9)).astype(np.int16))
    cfg = small_config(
        words,
        owner=(clips.owner_recordings([owner]),),
        false_wakes=(clips.false_wakes([false_wake]),),
        owner_copies=2,
        recorded_copies=2,
        save_audio=True,
    )
    out = tmp / "data"
    return out, dataset.build(cfg, out)


def test_build_writes_a_consistent_dataset(built):
    out, summary = built
    ds = dataset.open_dataset(out)
    recs = ds.records
    for split in dataset.SPLITS:
        mine = [r for r in recs if r.split == split]
        assert sum(r.frames for r in mine) == len(ds.features[split])
        assert [r.offset for r in mine] == list(np.cumsum([0] + [r.frames for r in mine])[:-1])
    # every clip's stored features are the features of its saved audio
    for r in recs:
        audio = read_wav(out / "audio" / f"{r.id}.wav")
        assert len(audio) == r.samples
        assert ds.clip(r).tobytes() == clip_features(audio).tobytes()
        if r.speech_start_frame is not None:
            assert 0 <= r.speech_start_frame < r.speech_end_frame <= r.frames
    counts = {s: summary.counts[s] for s in dataset.SPLITS}
    assert counts[TRAIN]["positive/tts"] + counts[HELDOUT]["positive/tts"] == 10
    assert counts[HELDOUT]["positive/tts"] == 2
    assert counts[TRAIN]["positive/owner"] == 2 * 3  # as recorded + 2 augmented copies
    assert counts[TRAIN]["negative/false-wake"] == 3
    assert "positive/owner" not in counts[HELDOUT]
    negatives = sum(n for s in counts.values() for k, n in s.items() if k.startswith("negative/"))
    assert negatives == 12 + 3
    info = json.loads((out / dataset.SUMMARY).read_text())
    assert info["format"] == dataset.FORMAT and info["config"]["seed"] == 7
    assert info["phrase_phonemes"].startswith("h eɪ")


def test_no_speaker_or_voice_is_in_both_splits(built):
    out, summary = built
    recs = dataset.open_dataset(out).records
    for key in ("voice", "speaker"):
        sides = {
            s: {getattr(r, key) for r in recs if r.split == s} - {None} for s in dataset.SPLITS
        }
        assert sides[TRAIN] and sides[HELDOUT]
        assert not sides[TRAIN] & sides[HELDOUT], key
    assert not set(summary.speakers[TRAIN]) & set(summary.speakers[HELDOUT])
    # held-out positives and negatives are spoken by held-out speakers only
    held = {r.speaker for r in recs if r.split == HELDOUT and r.voice}
    assert held <= set(summary.speakers[HELDOUT])


def test_manifest_says_where_each_clip_came_from(built):
    out, _ = built
    recs = dataset.open_dataset(out).records
    pos = next(r for r in recs if r.kind == "tts")
    assert pos.label == 1 and "jarvis" in pos.text.lower() and pos.voice.startswith("espeak-ng:")
    assert set(pos.augmentation) >= {"speed", "rt60_s", "noise", "snr_db", "lead_s"}
    assert pos.seed == [7, 2, pos.seed[2]]
    conf = [r for r in recs if r.kind == "confusable"]
    assert conf and all(r.label == 0 and r.note for r in conf)
    assert all("hey jarvis" not in r.text.lower() for r in conf)
    owner = [r for r in recs if r.kind == "owner"]
    assert {Path(r.source).name for r in owner} == {"take0.wav", "take1.wav"}
    assert [r.augmentation is None for r in owner].count(True) == 2  # as recorded
    # the copies vary the owner's pace and microphone, never their voice (pitch, formants)
    people = [
        r.augmentation["speaker"] for r in owner if r.augmentation and "speaker" in r.augmentation
    ]
    assert people, "no owner copy got speaker augmentation"
    assert all(p["pitch_semitones"] is None and p["vtlp_alpha"] is None for p in people)
    assert all(p["room"] is None for p in people)
    noise = [r for r in recs if r.kind in ("noise", "silence")]
    assert noise and all(r.voice is None and r.augmentation["noise"] for r in noise)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, words_file):
    require_tools("espeak-ng")
    cfg = small_config(words_file, positives=4, negatives=6)
    dataset.build(cfg, tmp_path / "a")
    dataset.build(cfg, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")
    dataset.build(small_config(words_file, positives=4, negatives=6, seed=8), tmp_path / "c")
    assert (
        files(tmp_path / "a")["features/train.npy"] != files(tmp_path / "c")["features/train.npy"]
    )


def test_bad_recordings_are_named_and_left_alone(tmp_path, words_file):
    require_tools("espeak-ng")
    stereo = write_test_wav(tmp_path / "stereo.wav", np.zeros(8000, np.int16), channels=2)
    before = stereo.read_bytes()
    cfg = small_config(words_file, owner=(clips.owner_recordings([stereo]),))
    with pytest.raises(WakewardError, match="stereo.wav: 2 channels, expected 1"):
        dataset.build(cfg, tmp_path / "out")
    assert stereo.read_bytes() == before
    silent = write_test_wav(tmp_path / "silent.wav", np.zeros(16000, np.int16))
    with pytest.raises(WakewardError, match="silent.wav: the recording is silent"):
        clips.read_clip(silent)
    empty = write_test_wav(tmp_path / "empty.wav", np.zeros(0, np.int16))
    with pytest.raises(WakewardError, match="empty.wav: the recording is empty"):
        clips.read_clip(empty)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00")
    with pytest.raises(WakewardError, match="corrupt.wav: not a readable PCM WAV"):
        clips.false_wakes([tmp_path / "corrupt.wav"]).clips()
    fast = write_test_wav(tmp_path / "fast.wav", np.ones(44100, np.int16), rate_hz=44100)
    with pytest.raises(WakewardError, match="fast.wav: sample rate 44100 Hz"):
        clips.read_clip(fast)
    with pytest.raises(WakewardError, match="nowhere: no such file or folder"):
        clips.wav_paths([tmp_path / "nowhere"])


def test_an_unrelated_folder_is_not_written_into(tmp_path, words_file):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(WakewardError, match="not empty and holds no dataset.json"):
        dataset.build(small_config(words_file), tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_a_phrase_no_tts_can_say_is_refused(tmp_path, words_file):
    require_tools("espeak-ng")
    with pytest.raises(WakewardError, match=r"no installed TTS can say '\?\?'"):
        dataset.build(small_config(words_file, phrase="??"), tmp_path / "out")


def test_the_command_prints_progress_and_a_summary(tmp_path, words_file):
    require_tools("espeak-ng")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "wakeward",
            "train-data",
            "hey jarvis",
            "--out",
            "ds",
            "--positives",
            "5",
            "--negatives",
            "5",
            "--seed",
            "2",
            "--engine",
            "espeak-ng",
            "--words",
            str(words_file),
        ],  # fmt: skip
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "train-data: positives 5/5 (100%)" in out
    assert "espeak-ng: " in out and "English accents" in out
    assert "flite: not asked for" in out
    assert "train: 4 positive, 4 negative clips (" in out and "h of negative audio" in out
    assert "heldout: 1 positive, 1 negative clips" in out
    assert "dataset written to ds" in out
    assert (tmp_path / "ds" / "features" / "train.npy").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "wakeward", "train-data", "hey", "--out", "ds2", "--owner", "x.wav"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == "wakeward: x.wav: no such file or folder"


def test_speaker_augmentation_changes_only_the_tts_clips_it_names(tmp_path, words_file):
    require_tools("espeak-ng")
    plain = small_config(
        words_file, positives=4, negatives=6, speaker=augment.SpeakerAugment.parse("none")
    )
    dataset.build(plain, tmp_path / "plain")
    voiced = small_config(
        words_file, positives=4, negatives=6, speaker=augment.SpeakerAugment.parse("all")
    )
    dataset.build(voiced, tmp_path / "voiced")
    a, b = dataset.open_dataset(tmp_path / "plain"), dataset.open_dataset(tmp_path / "voiced")
    by_id = {r.id: r for r in a.records}
    changed = 0
    for r in b.records:
        person = (r.augmentation or {}).get("speaker")
        if r.voice is None:  # noise and silence: no speaker to change
            assert person is None and np.array_equal(b.clip(r), a.clip(by_id[r.id]))
            continue
        assert set(person) == {"tempo", "pitch_semitones", "vtlp_alpha", "mic", "room"}
        # the clip's other draws (noise, room, level, lead-in) are the plain build's
        rest = {k: v for k, v in r.augmentation.items() if k != "speaker"}
        assert rest == by_id[r.id].augmentation
        if any(person[k] is not None for k in person):
            changed += not np.array_equal(b.clip(r), a.clip(by_id[r.id])[: r.frames])
    assert changed >= 3
    assert (
        json.loads((tmp_path / "voiced" / dataset.SUMMARY).read_text())["config"]["speaker"][
            "vtlp_probability"
        ]
        == augment.SpeakerAugment().vtlp_probability
    )
    with pytest.raises(WakewardError, match="--speaker-augment 'pitchy'"):
        augment.SpeakerAugment.parse("pitchy")
