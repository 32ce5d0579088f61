"""The clip store: add, list, label, delete, purge, retention, schema checks, and a writer
killed at every step of an add."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import wave
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from wakeward import store
from wakeward.errors import WakewardError
from wakeward.store import ClipStore, Retention

DAY = 86400.0


def ids(clips: Sequence[store.Clip]) -> list[int]:
    return [c.id for c in clips]


def pcm(seconds: float = 0.5, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-3000, 3000, int(seconds * 16000), dtype=np.int16).astype("<i2").tobytes()


def add(
    s: ClipStore, clip_id: int = 1, seed: int | None = None, audio: bytes | None = None, **kw
) -> store.AddResult:
    """Add a test clip; its audio follows from clip_id (or seed) unless given."""
    args = {"device": "kitchen", "model": "alexa", "score": 200, "end_reason": "end_of_speech"}
    args.update(kw)
    data = audio if audio is not None else pcm(seed=clip_id if seed is None else seed)
    return s.add(data, device_clip_id=clip_id, pre_roll_ms=1000, **args)


def wav_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return w.readframes(w.getnframes())


def raw_rows(folder: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(folder / store.DB_NAME)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM clips ORDER BY id").fetchall()
    finally:
        db.close()


def assert_consistent(s: ClipStore) -> None:
    """Every stored row has its whole file; no deleted row has one; no other file is left."""
    assert [r["id"] for r in raw_rows(s.folder) if r["status"] == store.PENDING] == []
    expected = set()
    for clip in s.clips():
        if clip.deleted:
            assert not clip.path.exists(), clip
        else:
            data = wav_pcm(clip.path)
            assert len(data) == 2 * clip.samples
            assert hashlib.sha256(data).hexdigest() == clip.sha256
            assert clip.path.stat().st_size == clip.bytes
            expected.add(clip.path.name)
    files = {p.name for p in s.folder.iterdir()} - store._DB_FILES
    assert files == expected


@pytest.fixture
def s(tmp_path: Path) -> Iterator[ClipStore]:
    with ClipStore(tmp_path / "clips") as opened:
        yield opened


def test_add_writes_the_wav_and_its_row(s):
    audio = pcm(0.75)
    before = time.time()
    clip, added = add(s, 7, audio=audio, rate_hz=16000)
    assert added
    assert clip.id == 1 and clip.status == "stored" and not clip.deleted
    assert (clip.device, clip.device_clip_id) == ("kitchen", 7)
    assert (clip.model, clip.score) == ("alexa", 200)
    assert (clip.pre_roll_ms, clip.end_reason, clip.rate_hz) == (1000, "end_of_speech", 16000)
    assert clip.samples == 12000 and clip.duration_s == pytest.approx(0.75)
    assert before <= clip.received_at <= time.time()
    assert clip.path.parent == s.folder and clip.path.name.startswith("000001-kitchen-")
    assert wav_pcm(clip.path) == audio
    assert clip.sha256 == hashlib.sha256(audio).hexdigest()
    assert oct(clip.path.stat().st_mode & 0o777) == oct(0o600)
    assert oct(s.folder.stat().st_mode & 0o777) == oct(0o700)
    assert s.get(1) == clip == s.get("1")
    assert s.clips() == [clip]
    assert not s.recovery
    assert_consistent(s)


def test_the_index_and_its_journal_are_readable_by_the_owner_alone(tmp_path):
    with ClipStore(tmp_path / "clips") as opened:
        add(opened, 1)
        files = sorted(opened.folder.glob("clips.sqlite3*"))
        assert len(files) >= 2  # the index and its write-ahead log
        assert {oct(f.stat().st_mode & 0o777) for f in files} == {oct(0o600)}
    db = tmp_path / "clips" / "clips.sqlite3"
    db.chmod(0o644)  # as an older wakeward left it
    with ClipStore(tmp_path / "clips"):
        assert oct(db.stat().st_mode & 0o777) == oct(0o600)


def test_the_store_survives_reopening(tmp_path):
    with ClipStore(tmp_path) as s:
        clip = add(s).clip
    with ClipStore(tmp_path) as s:
        assert s.clips() == [clip]
        assert not s.recovery


def test_a_resent_clip_is_stored_once(s):
    first, added = add(s, 3)
    again, added_again = add(s, 3)
    assert added and not added_again
    assert again == first
    assert len(s.clips()) == 1
    assert len(list(s.folder.glob("*.wav"))) == 1
    # the device numbers clips from 1 after each boot: same number, other audio is a new clip
    rebooted, added = add(s, 3, seed=99)
    assert added and rebooted.id != first.id
    other_device, added = add(s, 3, device="hall")
    assert added
    assert len(s.clips()) == 3
    # a resend of a clip the owner has deleted is not stored again
    s.delete([first.id])
    assert add(s, 3).added is False
    assert_consistent(s)


def test_list_filters(s):
    now = time.time()
    a = add(s, 1, received_at=now - 3 * DAY).clip
    b = add(s, 2, model="hey_jarvis", received_at=now - 1 * DAY).clip
    c = add(s, 3, device="hall", received_at=now).clip
    s.label(b.id, "false-wake")
    s.delete([a.id])
    assert ids(s.clips()) == [a.id, b.id, c.id]
    assert ids(s.clips(include_deleted=False)) == [b.id, c.id]
    assert ids(s.clips(device="hall")) == [c.id]
    assert ids(s.clips(model="hey_jarvis")) == [b.id]
    assert ids(s.clips(label="false-wake")) == [b.id]
    assert ids(s.clips(label="none")) == [a.id, c.id]
    assert ids(s.clips(since=now - 2 * DAY)) == [b.id, c.id]
    assert ids(s.clips(since=store.parse_since("36h", now=now))) == [b.id, c.id]
    with pytest.raises(WakewardError, match="label 'nope'"):
        s.clips(label="nope")


def test_label(s):
    clip = add(s).clip
    assert s.label(clip.id, "wake").label == "wake"
    labelled = s.label(clip.id, "unsure")
    assert labelled.label == "unsure" and labelled.labeled_at is not None
    assert s.get(clip.id).label == "unsure"
    with pytest.raises(WakewardError, match=r"label 'wakey': use one of wake, false-wake, unsure"):
        s.label(clip.id, "wakey")
    with pytest.raises(WakewardError, match=r"clip 42: no such clip"):
        s.label(42, "wake")


def test_a_label_can_be_cleared(s):
    clip = add(s).clip
    s.label(clip.id, "false-wake")
    cleared = s.label(clip.id, None)
    assert cleared.label is None and cleared.labeled_at is None
    assert ids(s.clips(label="none")) == [clip.id]


def test_delete_removes_the_audio_and_keeps_the_record(s):
    keep = add(s, 1).clip
    gone = add(s, 2).clip
    assert gone.path.is_file()
    before = time.time()
    [record] = s.delete([gone.id])
    assert not gone.path.exists()
    assert record.deleted and record.status == "deleted" and record.deleted_by == "delete"
    assert before <= (record.deleted_at or 0) <= time.time()
    assert s.get(gone.id) == record
    assert (record.sha256, record.samples, record.model) == (gone.sha256, gone.samples, gone.model)
    assert [c.id for c in s.clips()] == [keep.id, gone.id]
    assert keep.path.is_file()
    with pytest.raises(WakewardError, match=rf"clip {gone.id}: already deleted at"):
        s.delete([gone.id])
    assert_consistent(s)


def test_delete_checks_every_id_before_deleting_any(s):
    clip = add(s).clip
    with pytest.raises(WakewardError, match="clip 9: no such clip"):
        s.delete([clip.id, 9])
    with pytest.raises(WakewardError, match="clip id 'x': not a number"):
        s.delete([clip.id, "x"])
    assert clip.path.is_file() and not s.get(clip.id).deleted


def test_purge_older_than(s):
    now = time.time()
    old = add(s, 1, received_at=now - 40 * DAY).clip
    mid = add(s, 2, received_at=now - 10 * DAY).clip
    new = add(s, 3, received_at=now).clip
    gone = s.purge(store.parse_age("30d"), now=now)
    assert [c.id for c in gone] == [old.id]
    assert gone[0].deleted_by == "purge" and not old.path.exists()
    assert mid.path.is_file() and new.path.is_file()
    assert [c.id for c in s.purge(store.parse_age("1h"), now=now)] == [mid.id]
    assert s.purge(store.parse_age("1h"), now=now) == []
    assert_consistent(s)


def test_retention_by_age(tmp_path):
    now = time.time()
    with ClipStore(tmp_path) as s:
        assert s.retention() == Retention()
        assert s.apply_retention(now=now) == []
        s.set_retention(Retention(max_age_s=store.parse_age("7d")))
        old = add(s, 1, received_at=now - 8 * DAY).clip
        new = add(s, 2, received_at=now - 6 * DAY).clip
    with ClipStore(tmp_path) as s:  # the setting is kept in the database
        assert s.retention() == Retention(max_age_s=7 * DAY)
        assert s.retention_victims(now=now) == [old.id]
        removed = s.apply_retention(now=now)
        assert [c.id for c in removed] == [old.id]
        assert removed[0].deleted_by == "retention" and not old.path.exists()
        assert s.apply_retention(now=now) == []
        assert s.get(new.id).status == "stored"
        assert_consistent(s)


def test_retention_by_size_keeps_the_newest(s):
    now = time.time()
    clips = [add(s, i, received_at=now - (10 - i) * 60).clip for i in range(4)]
    size = clips[0].bytes
    assert s.total_bytes() == 4 * size
    s.set_retention(Retention(max_bytes=2 * size + 10))
    removed = s.apply_retention(now=now)
    assert [c.id for c in removed] == [clips[0].id, clips[1].id]
    assert s.total_bytes() == 2 * size
    # both limits; clearing one keeps the other
    s.set_retention(Retention(max_age_s=DAY, max_bytes=None))
    assert s.retention() == Retention(max_age_s=DAY)
    with pytest.raises(WakewardError, match="max size"):
        s.set_retention(Retention(max_bytes=0))
    assert_consistent(s)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * DAY),
        ("12h", 43200),
        ("90min", 5400),
        ("45s", 45),
        ("2w", 14 * DAY),
        ("1.5h", 5400),
    ],
)
def test_parse_age(text, seconds):
    assert store.parse_age(text) == seconds
    assert store.parse_age(store.format_age(seconds)) == seconds


@pytest.mark.parametrize("text", ["30", "30x", "d", "-1d", "0d", "", "30 days"])
def test_parse_age_refuses_naming_the_argument(text):
    with pytest.raises(WakewardError, match=rf"--older-than {text!r}: not an age like 30d"):
        store.parse_age(text, "--older-than")


def test_a_newer_schema_is_refused(tmp_path):
    ClipStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / store.DB_NAME)
    db.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    newer = r"schema version 3, newer than this wakeward knows \(2\)"
    with pytest.raises(WakewardError, match=newer):
        ClipStore(tmp_path)


def test_the_schema_version_is_recorded(tmp_path):
    ClipStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / store.DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    db.close()


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    (tmp_path / store.DB_NAME).write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(WakewardError, match="not a wakeward clip store"):
        ClipStore(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    db = sqlite3.connect(other / store.DB_NAME)
    db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(WakewardError, match="an SQLite database but not a wakeward clip store"):
        ClipStore(other)


def test_opening_without_create_needs_a_store(tmp_path):
    with pytest.raises(WakewardError, match="no clip store in"):
        ClipStore(tmp_path / "none", create=False)
    assert not (tmp_path / "none").exists()


def test_the_default_folder_follows_wakeward_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WAKEWARD_DATA_DIR", str(tmp_path))
    assert store.default_dir() == tmp_path / "clips"
    with ClipStore() as s:
        assert s.folder == tmp_path / "clips"


def test_a_failed_write_leaves_no_trace(s, monkeypatch):
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        add(s, 1)
    assert raw_rows(s.folder) == []
    monkeypatch.undo()
    assert add(s, 1).added
    assert_consistent(s)


def test_recovery_finishes_deletes_and_marks_missing_files(tmp_path):
    with ClipStore(tmp_path) as s:
        a = add(s, 1).clip
        b = add(s, 2).clip
        c = add(s, 3).clip
        saved = a.path.read_bytes()
        s.delete([a.id])
    a.path.write_bytes(saved)  # as if killed between the commit and the unlink
    b.path.unlink()  # removed behind the store's back
    (tmp_path / ".000009-x.wav.part").write_bytes(b"half")  # a temp file no row owns
    (tmp_path / "notes.txt").write_text("mine")
    with ClipStore(tmp_path) as s:
        assert s.recovery.finished_deletes == [a.id]
        assert s.recovery.missing == [b.id]
        assert s.recovery.removed_temp == [".000009-x.wav.part"]
        assert s.recovery.unknown == ["notes.txt"]
        assert len(s.recovery.lines()) == 4
        assert not a.path.exists()
        assert s.get(b.id).deleted_by == "missing"
        assert s.get(c.id).status == "stored"
        assert (tmp_path / "notes.txt").exists()
    with ClipStore(tmp_path) as s:
        assert s.recovery.lines() == ["notes.txt: not a file of the clip store; left alone"]


# -- a writer killed at every step of an add ------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from wakeward.store import ClipStore
audio = Path(sys.argv[2]).read_bytes()
store = ClipStore(Path(sys.argv[1]))
store.add(audio, device="kitchen", device_clip_id=5, model="alexa", score=211)
print("finished", flush=True)
"""

# step -> (pending row, temp file, final file) on disk when killed; what opening then does
KILL_STEPS = {
    "pending": ((True, False, False), "discarded"),
    "temp-partial": ((True, True, False), "discarded"),
    "temp-synced": ((True, True, False), "adopted"),
    "renamed": ((True, False, True), "adopted"),
    "stored": ((False, False, True), None),
}


def kill_writer_at(step: str, folder: Path, audio_file: Path) -> None:
    env = {**os.environ, store.PAUSE_ENV: step}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), str(audio_file)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line == f"wakeward store: paused at {step}\n", line + proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_kill_steps_are_every_pause_step():
    assert set(KILL_STEPS) == set(store.PAUSE_STEPS)


@pytest.mark.parametrize("step", list(KILL_STEPS))
def test_a_writer_killed_at_each_step_leaves_a_consistent_store(tmp_path, step):
    folder = tmp_path / "clips"
    audio = pcm(1.0, seed=5)
    (tmp_path / "audio.pcm").write_bytes(audio)
    with ClipStore(folder) as s:
        earlier = add(s, 1).clip  # a clip stored before, which must come through untouched
    kill_writer_at(step, folder, tmp_path / "audio.pcm")

    (pending, temp, final), outcome = KILL_STEPS[step]
    rows = raw_rows(folder)
    assert [r["status"] for r in rows] == ["stored", "pending" if pending else "stored"]
    name = rows[1]["file"]
    assert (folder / f".{name}.part").exists() == temp
    assert (folder / name).exists() == final
    if step == "temp-partial":
        assert 0 < (folder / f".{name}.part").stat().st_size < rows[1]["bytes"]

    with ClipStore(folder) as s:
        new_id = rows[1]["id"]
        assert s.recovery.adopted == ([new_id] if outcome == "adopted" else [])
        assert s.recovery.discarded == ([new_id] if outcome == "discarded" else [])
        assert not s.recovery.removed_temp and not s.recovery.unknown
        assert_consistent(s)
        assert s.get(earlier.id) == earlier
        kept = [c for c in s.clips() if c.device_clip_id == 5]
        assert len(kept) == (0 if outcome == "discarded" else 1)
        # the device resends what it saw no ack for: stored once either way
        clip, added = s.add(audio, device="kitchen", device_clip_id=5, model="alexa", score=211)
        assert added == (outcome == "discarded")
        assert wav_pcm(clip.path) == audio
        assert len(s.clips()) == 2
        assert_consistent(s)


def test_a_killed_write_whose_file_was_damaged_is_dropped(tmp_path):
    """Same size, other bytes (a disk that lost the data): the hash check drops it."""
    folder = tmp_path / "clips"
    (tmp_path / "audio.pcm").write_bytes(pcm(1.0, seed=5))
    ClipStore(folder).close()
    kill_writer_at("renamed", folder, tmp_path / "audio.pcm")
    [row] = raw_rows(folder)
    path = folder / row["file"]
    data = bytearray(path.read_bytes())
    data[-100:] = bytes(100)
    path.write_bytes(bytes(data))
    with ClipStore(folder) as s:
        assert s.recovery.discarded == [row["id"]]
        assert s.clips() == []
        assert_consistent(s)


def test_delete_takes_one_id_too(s):
    clips = [add(s, i).clip for i in (1, 2, 3)]
    assert ids(s.delete(str(clips[0].id))) == [clips[0].id]
    assert ids(s.delete(clips[1].id)) == [clips[1].id]
    assert s.get(clips[2].id).status == "stored"
