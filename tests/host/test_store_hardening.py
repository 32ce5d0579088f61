"""Issue 14, the clip store's side: what a device sends is printed printable (stored as
received), a NUL in it does not stop `--exec`, the store never deletes a file it did not
write or one outside its folder, a damaged or emptied index is said so (nothing changed),
out-of-range numbers are refused with a message, and a resend restores a clip's lost WAV."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from wakeward import cli, clipexec, store
from wakeward.errors import WakewardError
from wakeward.printable import printable
from wakeward.store import ClipStore

from tests.host.test_listen import InProcess, pcm
from tests.host.test_protocol import P
from tests.host.test_store import add, assert_consistent, raw_rows, wav_pcm

HOSTILE_ID = "kit\x1b]0;owned\x07chen\x1b[2J"
HOSTILE_MODEL = "alexa\x1b[31m\u202e"
CHUNK = 4000  # audio bytes per clip_data frame, under the protocol's payload limit


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def edit_row(folder: Path, sql: str, *params: object) -> None:
    db = sqlite3.connect(folder / store.DB_NAME)
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


# -- item 4: what a device sent is made printable before it is printed ---------------------


def test_printable_escapes_control_and_format_characters_only():
    assert printable("a\x1b[2Jb\x00c\td\u202ee\x7f\x9b") == (
        "a\\x1b[2Jb\\x00c\\td\\u202ee\\x7f\\x9b"
    )
    assert printable("küche 2, score 240 (ok)") == "küche 2, score 240 (ok)"


def test_listen_prints_a_hostile_device_printable_and_stores_it_as_received(tmp_path):
    rx = InProcess(tmp_path / "store")
    dev = rx.connect(HOSTILE_ID)
    dev.sock.sendall(b"boot \x1b[2J\x1b]0;title\x07 done\n")  # a device log line
    audio = pcm(7)
    chunks = [audio[i : i + CHUNK] for i in range(0, len(audio), CHUNK)]
    dev.sock.sendall(
        P.encode_clip_start(7, HOSTILE_MODEL, 240, 16000, 0)
        + b"".join(P.encode_clip_data(7, seq, c) for seq, c in enumerate(chunks))
        + P.encode_clip_end(7, len(audio) // 2, 0)
    )
    assert dev.ack() == 7
    rx.close(dev)
    (clip,) = rx.store.clips()
    rx.store.close()
    assert (clip.device, clip.model) == (HOSTILE_ID, HOSTILE_MODEL)
    assert all(line.isprintable() for line in rx.lines), rx.lines
    assert rx.having("hello from kit\\x1b]0;owned\\x07chen\\x1b[2J")
    assert rx.having("device: boot \\x1b[2J\\x1b]0;title\\x07 done")
    assert rx.having("clip 7 started: alexa\\x1b[31m\\u202e (score 240)")


def test_clips_list_and_show_print_a_hostile_device_printable(tmp_path, capsys):
    folder = tmp_path / "clips"
    with ClipStore(folder) as s:
        add(s, 1, device=HOSTILE_ID, model=HOSTILE_MODEL)
    for command in ("list", "show 1"):
        rc, out, err = run(capsys, "clips", *command.split(), "--store", str(folder))
        assert rc == 0 and err == ""
        assert all(line.isprintable() for line in out.splitlines()), out
        assert "kit\\x1b]0;owned\\x07chen\\x1b[2J" in out
        assert "alexa\\x1b[31m\\u202e" in out
    rc, out, _ = run(capsys, "clips", "list", "--json", "--store", str(folder))
    assert rc == 0 and "\x1b" not in out
    assert [(c["device"], c["model"]) for c in json.loads(out)] == [(HOSTILE_ID, HOSTILE_MODEL)]


# -- item 5: a NUL in a device id or model name --------------------------------------------


def test_a_nul_in_a_clips_device_or_model_does_not_stop_the_exec_worker(tmp_path):
    lines: list[str] = []
    with ClipStore(tmp_path / "store") as s:
        bad = add(s, 1, device="kit\x00chen", model="ale\x00xa").clip
        good = add(s, 2).clip
    command = clipexec.ClipCommand(f"{sys.executable} -c pass {{wav}}", lines.append)
    command.submit(bad)
    command.submit(good)
    command.close()
    assert (command.ran, command.failed) == (2, 0), lines
    env = clipexec.environment(bad, {})
    assert (env["WAKEWARD_DEVICE"], env["WAKEWARD_MODEL"]) == ("kit\\x00chen", "ale\\x00xa")


def test_exec_output_is_printed_printable(tmp_path):
    lines: list[str] = []
    with ClipStore(tmp_path / "store") as s:
        clip = add(s, 1).clip
    command = clipexec.ClipCommand(
        f"{sys.executable} -c \"print('a\\x1b[2Jb')\" {{wav}}", lines.append
    )
    command.submit(clip)
    command.close()
    assert lines == ["exec clip 1: a\\x1b[2Jb"]


# -- item 6: a file in the way is never deleted --------------------------------------------


def test_a_file_in_the_way_of_a_new_clip_is_kept_and_the_clip_stored_beside_it(tmp_path):
    folder = tmp_path / "clips"
    received = 1_700_000_000.0
    with ClipStore(folder) as s:
        theirs = folder / store._file_name(1, "kitchen", received)
        theirs.write_bytes(b"the owner's own file")
        added = add(s, 1, received_at=received)
        assert added.added and added.clip.path != theirs
        assert theirs.read_bytes() == b"the owner's own file"
        assert wav_pcm(added.clip.path) == pcm(1)


def test_a_failed_add_never_deletes_a_file_that_appeared_at_its_name(tmp_path, monkeypatch):
    """A file that turns up at the clip's name while it is written: the add is undone
    (the clip is not acknowledged, the device sends it again) and that file is kept."""
    folder = tmp_path / "clips"
    s = ClipStore(folder)

    def appear(step: str) -> None:
        if step == "pending":
            (name,) = [r["file"] for r in raw_rows(folder)]
            (folder / name).write_bytes(b"not the store's")

    monkeypatch.setattr(store, "_pause_at", appear)
    with pytest.raises(WakewardError, match="did not write is in the way"):
        add(s, 1)
    s.close()
    (left,) = [p for p in folder.iterdir() if p.suffix == ".wav"]
    assert left.read_bytes() == b"not the store's"
    assert raw_rows(folder) == []


# -- item 9: a damaged index, and numbers out of range -------------------------------------


def damage_the_clips_table(folder: Path) -> None:
    db = sqlite3.connect(folder / store.DB_NAME)
    try:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'clips'").fetchone()
    finally:
        db.close()
    with open(folder / store.DB_NAME, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * 100)


def test_a_damaged_index_is_a_message_saying_what_to_do(tmp_path, capsys):
    folder = tmp_path / "clips"
    with ClipStore(folder) as s:
        wavs = [add(s, i).clip.path for i in (1, 2)]
    damage_the_clips_table(folder)
    before = (folder / store.DB_NAME).read_bytes()
    for command in ("clips list", "clips show 1", "clips delete 1", "clips retention"):
        rc, out, err = run(capsys, *command.split(), "--store", str(folder))
        assert (rc, out) == (1, ""), command
        assert err.startswith(
            f"wakeward: {folder / store.DB_NAME}: the clip store's index is damaged"
        ), err
        assert ".dump" in err and "Traceback" not in err
    rc, _, err = run(capsys, "listen", "--tcp", "127.0.0.1:0", "--once", "--store", str(folder))
    assert rc == 1 and "the clip store's index is damaged" in err
    assert (folder / store.DB_NAME).read_bytes() == before
    assert all(p.is_file() for p in wavs)


@pytest.mark.parametrize("command", ["show", "delete", "label"])
@pytest.mark.parametrize("clip_id", ["12345678901234567890123", "\u00b2"])
def test_a_clip_id_out_of_range_is_a_message(tmp_path, capsys, command, clip_id):
    folder = tmp_path / "clips"
    with ClipStore(folder) as s:
        add(s, 1)
    extra = ["wake"] if command == "label" else []
    rc, out, err = run(capsys, "clips", command, clip_id, *extra, "--store", str(folder))
    assert (rc, out) == (1, "")
    assert err.startswith(f"wakeward: clip id {clip_id!r}: "), err
    assert "wakeward clips list" in err


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-mb", "1e309"), ("--max-mb", "inf"), ("--max-age", "1" + "0" * 400 + "d")],
)
def test_retention_refuses_an_infinite_limit(tmp_path, capsys, option, value):
    rc, out, err = run(capsys, "clips", "retention", option, value, "--store", str(tmp_path))
    assert (rc, out) == (1, "")
    assert err.startswith(f"wakeward: {option} {value!r}: "), err


# -- item 11: a resend restores a clip whose WAV has gone -----------------------------------


def test_a_resend_restores_a_stored_clips_lost_wav(tmp_path):
    rx = InProcess(tmp_path / "store")
    dev = rx.connect()
    dev.clip(7)
    assert dev.ack() == 7
    (clip,) = rx.store.clips()
    clip.path.unlink()  # by hand, while the receiver runs
    dev.clip(7)
    assert dev.ack() == 7
    rx.close(dev)
    assert wav_pcm(clip.path) == pcm(7)
    assert rx.store.clips() == [clip]
    assert_consistent(rx.store)
    rx.store.close()
    assert rx.having(
        f"clip 7: already stored as clip 1, its audio file had gone: restored "
        f"{clip.path}; acknowledged again"
    )


def test_a_resend_restores_a_clip_marked_missing_but_not_one_the_owner_deleted(tmp_path):
    folder = tmp_path / "clips"
    with ClipStore(folder) as s:
        lost = add(s, 1).clip
        deleted = add(s, 2).clip
        s.delete(deleted.id)
    lost.path.unlink()
    with ClipStore(folder) as s:
        assert s.get(lost.id).deleted_by == "missing"
        again = add(s, 1)
        assert (again.added, again.restored, again.clip.status) == (False, True, store.STORED)
        assert wav_pcm(lost.path) == pcm(1)
        assert not add(s, 2).restored and s.get(deleted.id).deleted
        assert_consistent(s)


# -- item 12: only files inside the store folder are ever deleted ---------------------------


@pytest.mark.parametrize("name", ["../victim", "{victim}"])
def test_delete_never_removes_a_file_outside_the_store(tmp_path, capsys, name):
    folder = tmp_path / "clips"
    victim = tmp_path / "victim"
    victim.write_text("the owner's")
    with ClipStore(folder) as s:
        add(s, 1)
        add(s, 2)
    edit_row(folder, "UPDATE clips SET file = ? WHERE id = 1", name.format(victim=victim))
    rc, out, err = run(capsys, "clips", "delete", "1", "--store", str(folder))
    assert victim.read_text() == "the owner's"
    assert rc == 1 and "not a file of the clip store" in err, err
    assert ClipStore(folder).get(1).deleted  # the record says so; the file was not its own
    # nor at the next opening, where a deleted row's leftover file is removed
    edit_row(
        folder,
        "UPDATE clips SET file = ?, status = 'deleted', deleted_at = 1, "
        "deleted_by = 'delete' WHERE id = 2",
        "../victim",
    )
    with ClipStore(folder):
        pass
    assert victim.read_text() == "the owner's"


def test_delete_never_removes_the_stores_own_index(tmp_path, capsys):
    folder = tmp_path / "clips"
    with ClipStore(folder) as s:
        add(s, 1)
    edit_row(folder, "UPDATE clips SET file = ? WHERE id = 1", store.DB_NAME)
    rc, _, err = run(capsys, "clips", "delete", "1", "--store", str(folder))
    assert rc == 1 and "not a file of the clip store" in err, err
    rc, out, _ = run(capsys, "clips", "list", "--store", str(folder))
    assert rc == 0 and "deleted" in out


def test_recovery_never_removes_a_pending_rows_file_outside_the_store(tmp_path):
    folder = tmp_path / "clips"
    victim = tmp_path / "victim"
    victim.write_text("the owner's")
    with ClipStore(folder) as s:
        add(s, 1)
    edit_row(folder, "UPDATE clips SET file = '../victim', status = 'pending' WHERE id = 1")
    with ClipStore(folder) as s:
        assert s.recovery.discarded == [1]
    assert victim.read_text() == "the owner's"


# -- item 13: an emptied index ---------------------------------------------------------------


def test_an_emptied_index_beside_clips_is_refused_not_taken_for_a_new_store(tmp_path, capsys):
    folder = tmp_path / "clips"
    with ClipStore(folder) as s:
        wavs = [add(s, i).clip.path for i in (1, 2)]
    os.truncate(folder / store.DB_NAME, 0)
    for command in ("clips list", "clips retention --max-mb 5", "listen --once --tcp 127.0.0.1:0"):
        rc, out, err = run(capsys, *command.split(), "--store", str(folder))
        assert (rc, out) == (1, ""), (command, out, err)
        assert err.startswith(
            f"wakeward: {folder / store.DB_NAME}: the clip store's index is "
            "empty but 2 clip files are beside it"
        ), err
    assert (folder / store.DB_NAME).stat().st_size == 0
    assert all(p.is_file() for p in wavs)
    with pytest.raises(WakewardError, match="index is empty"):
        ClipStore(folder, create=False)


def test_an_empty_index_without_clips_is_a_new_store(tmp_path):
    """A writer killed while it made the store leaves an empty index: that is a new store."""
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / store.DB_NAME).touch()
    with ClipStore(folder) as s:
        assert add(s, 1).added


def test_closing_the_store_waits_for_a_thread_still_reading_its_index(tmp_path):
    """A receiver stopping while a connection's thread still reads or trims clips: the
    index is closed after that thread is done (closed under its query, SQLite crashes the
    process); afterwards a call says the store is closed."""
    import threading

    s = ClipStore(tmp_path / "store")
    for clip_id in (1, 2, 3):
        add(s, clip_id)
    inside, go_on = threading.Event(), threading.Event()
    real = s._clip

    def slow(row):  # the reader stops mid-query, its cursor open
        inside.set()
        go_on.wait(10)
        return real(row)

    s._clip = slow
    got: list[list[store.Clip]] = []
    reader = threading.Thread(target=lambda: got.append(s.clips()), daemon=True)
    reader.start()
    assert inside.wait(10)
    closer = threading.Thread(target=s.close, daemon=True)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close() did not wait for the reader"
    go_on.set()
    reader.join(10)
    closer.join(10)
    assert not closer.is_alive() and [c.id for c in got[0]] == [1, 2, 3]
    with pytest.raises(sqlite3.ProgrammingError):
        s.clips()
