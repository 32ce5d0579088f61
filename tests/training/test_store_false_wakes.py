"""Hard negatives from the clip store (clips labelled false-wake), read without changing the
store; damaged clips named with their id; the options of train-data and train."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import numpy as np
import pytest
from wakeward import cli, store
from wakeward.errors import WakewardError
from wakeward_train import clips, dataset, pipeline

from tests.conftest import require_tools, write_test_wav
from tests.training.test_augment import speechlike


def speech_pcm(seed: int, seconds: float = 1.2) -> bytes:
    x = np.concatenate([np.zeros(2000), speechlike(seconds, seed), np.zeros(2000)])
    return np.round(x).astype("<i2").tobytes()


@pytest.fixture
def clip_store(tmp_path: Path) -> Path:
    """Clips 1 and 3 labelled false-wake, 2 wake, 4 false-wake but deleted, 5 unlabelled."""
    folder = tmp_path / "store"
    with store.ClipStore(folder) as s:
        for n in range(1, 6):
            s.add(speech_pcm(n), device="kitchen", device_clip_id=n, model="alexa", score=240)
        for clip_id, label in ((1, "false-wake"), (2, "wake"), (3, "false-wake")):
            s.label(clip_id, label)
        s.label(4, "false-wake")
        s.delete([4])
    return folder


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Hash and mtime of the store's index and audio files."""
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
        if p.name == store.DB_NAME or p.suffix == ".wav"
    }


def test_the_false_wake_clips_are_listed_and_nothing_changes(clip_store):
    before = snapshot(clip_store)
    found = clips.StoreFalseWakes(clip_store).clips()
    with store.ClipStore(clip_store) as s:
        expected = [s.get(1), s.get(3)]
    assert [c.path for c in found] == [c.path for c in expected]
    assert [c.samples.tobytes() for c in found] == [speech_pcm(1), speech_pcm(3)]
    assert {(c.label, c.speaker) for c in found} == {("false-wake", "false-wake")}
    assert snapshot(clip_store) == before


def damage(path: Path, how: str) -> None:
    if how == "missing":
        path.unlink()
    elif how == "unreadable":
        path.write_bytes(b"RIFF\x00\x00")
    elif how == "stereo":
        write_test_wav(path, np.zeros(8000, np.int16), channels=2)
    elif how == "changed":
        with wave.open(str(path), "rb") as w:
            pcm = bytearray(w.readframes(w.getnframes()))
        pcm[100] ^= 1
        write_test_wav(path, np.frombuffer(bytes(pcm), "<i2"))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing", "the audio file is missing"),
        ("unreadable", "not a readable PCM WAV file"),
        ("stereo", "2 channels, expected 1 (mono)"),
        ("changed", "the audio is not what the store received (its sha256 differs)"),
    ],
)
def test_a_damaged_labelled_clip_is_named_with_its_id(clip_store, how, message):
    with store.ClipStore(clip_store) as s:
        path = s.get(3).path
    damage(path, how)
    before = snapshot(clip_store)
    with pytest.raises(WakewardError) as e:
        clips.StoreFalseWakes(clip_store).clips()
    text = str(e.value)
    assert text.startswith(f"{path}: ") and message in text
    assert "(clip 3 in the clip store, labelled false-wake)" in text
    assert "`wakeward clips delete 3` or `wakeward clips label 3 unsure`" in text
    assert snapshot(clip_store) == before  # not marked missing, not repaired: untouched


def test_no_labelled_clips_or_no_store_is_explained(tmp_path, clip_store):
    with store.ClipStore(clip_store) as s:
        s.label(1, "unsure")
        s.delete([3])
    with pytest.raises(WakewardError) as e:
        clips.StoreFalseWakes(clip_store).clips()
    assert str(e.value).startswith(
        f"no clips labelled false-wake in the clip store in {clip_store} (2 labelled "
        "false-wake were deleted: their audio is gone): label some with"
    )
    with pytest.raises(WakewardError, match=r"no clip store in .*nowhere \(`wakeward listen`"):
        clips.StoreFalseWakes(tmp_path / "nowhere").clips()


def test_recordings_in_the_wrong_format_are_named(tmp_path):
    write_test_wav(tmp_path / "byte.wav", np.zeros(8000, np.uint8), width=1)
    with pytest.raises(WakewardError, match=r"byte.wav: 8-bit samples, expected 16-bit"):
        clips.owner_recordings([tmp_path]).clips()
    short = write_test_wav(tmp_path / "short.wav", np.full(1600, 3000, np.int16))
    with pytest.raises(WakewardError, match=r"short.wav: the recording is 0.10 s, shorter than"):
        clips.read_clip(short)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, dict[str, tuple[str, int]]]:
    """train-data with --false-wakes-from-store over a tiny dataset."""
    require_tools("espeak-ng")
    from tests.training.conftest import WORDS

    tmp = tmp_path_factory.mktemp("fromstore")
    words = tmp / "words.txt"
    words.write_text("\n".join(WORDS))
    folder = tmp / "store"
    with store.ClipStore(folder) as s:
        for n in (1, 2):
            s.add(speech_pcm(n), device="hall", device_clip_id=n, model="alexa", score=230)
        s.label(2, "false-wake")
    before = snapshot(folder)
    code = cli.main([
        "train-data", "hey jarvis", "--out", str(tmp / "data"), "--positives", "3",
        "--negatives", "3", "--engine", "espeak-ng", "--words", str(words),
        "--false-wakes-from-store", "--store", str(folder),
    ])  # fmt: skip
    assert code == 0
    return tmp / "data", folder, before


def test_train_data_takes_the_store_s_false_wakes_as_negatives(built):
    out, folder, before = built
    ds = dataset.open_dataset(out)
    false = [r for r in ds.records if r.kind == "false-wake"]
    with store.ClipStore(folder) as s:
        wav = s.get(2).path
    assert {r.source for r in false} == {str(wav)}
    assert len(false) == 1 + dataset.DataConfig("x").recorded_copies
    assert {(r.label, r.split) for r in false} == {(0, dataset.TRAIN)}
    assert ds.info["config"]["false_wakes"] == [repr(clips.StoreFalseWakes(folder))]
    assert snapshot(folder) == before


def test_train_reuses_a_dataset_only_with_the_same_recordings(built, tmp_path):
    out, folder, _ = built
    opts = pipeline.Options(
        phrase="hey jarvis", out=tmp_path / "m", data=out, false_wake_store=folder
    )
    assert pipeline._dataset(opts, "m", lambda _: None).path == out
    other = pipeline.Options(phrase="hey jarvis", out=tmp_path / "m", data=out, owner=(tmp_path,))
    with pytest.raises(WakewardError, match="built from other recordings than --owner"):
        pipeline._dataset(other, "m", lambda _: None)


def test_train_passes_the_recordings_on(monkeypatch, tmp_path):
    seen: list[pipeline.Options] = []
    monkeypatch.setattr(pipeline, "run", lambda opts: seen.append(opts) or 0)
    monkeypatch.setenv("WAKEWARD_DATA_DIR", str(tmp_path / "data"))
    code = cli.main([
        "train", "hey test", "--out", str(tmp_path / "m"), "--owner", "takes",
        "--false-wakes", "fw.wav", "--false-wakes-from-store",
    ])  # fmt: skip
    assert code == 0
    (opts,) = seen
    assert opts.owner == (Path("takes"),) and opts.false_wakes == (Path("fw.wav"),)
    assert opts.false_wake_store == tmp_path / "data" / "clips"  # the default store


def test_store_goes_with_false_wakes_from_store(tmp_path, capsys):
    for cmd in ("train-data", "train"):
        code = cli.main([cmd, "hey", "--out", str(tmp_path / "x"), "--store", str(tmp_path)])
        assert code == 1
        assert capsys.readouterr().err.strip() == (
            "wakeward: --store goes with --false-wakes-from-store"
        )
    assert not (tmp_path / "x").exists()


def test_the_options_become_clip_sources(tmp_path):
    owner, false = clips.sources([tmp_path], [tmp_path / "fw.wav"], tmp_path / "store")
    assert owner == (clips.owner_recordings([tmp_path]),)
    assert false == (
        clips.false_wakes([tmp_path / "fw.wav"]),
        clips.StoreFalseWakes(tmp_path / "store"),
    )
    assert clips.sources() == ((), ())
