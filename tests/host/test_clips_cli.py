"""`wakeward clips`: list, show, play, label, delete, purge and retention, as the owner runs
them (in-process through cli.main, one real process for the exit code)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from wakeward import cli, store
from wakeward.store import ClipStore

DAY = 86400.0


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """WAKEWARD_DATA_DIR in tmp_path: the real home's store is never touched."""
    monkeypatch.setenv("WAKEWARD_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "clips"


def fill(folder: Path) -> list[store.Clip]:
    """Three clips: 40 days old, 10 days old (labelled false-wake), new from another device."""
    now = time.time()
    out = []
    with ClipStore(folder) as s:
        for i, (age, device) in enumerate([(40, "kitchen"), (10, "kitchen"), (0, "hall")], 1):
            audio = np.full(8000 * i, i, "<i2").tobytes()
            out.append(
                s.add(
                    audio,
                    device=device,
                    device_clip_id=i,
                    model="alexa",
                    score=200 + i,
                    end_reason="end_of_speech",
                    received_at=now - age * DAY,
                ).clip
            )
        s.label(out[1].id, "false-wake")
    return out


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = cli.main(["clips", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_list_without_a_store(data_dir, capsys):
    assert run(capsys, "list") == (0, f"no clips yet in {data_dir}\n", "")
    assert run(capsys, "list", "--json") == (0, "[]\n", "")
    assert not data_dir.exists()


@pytest.mark.parametrize(
    "args", [["list"], ["list", "--json"], ["purge", "--older-than", "30d"], ["retention"]]
)
def test_a_store_folder_that_does_not_exist_is_an_error(tmp_path, capsys, args):
    """A mistyped --store is said, not taken as an empty store (issue 18), and not made."""
    typo = tmp_path / "TYPO"
    rc, out, err = run(capsys, *args, "--store", str(typo))
    assert rc != 0 and out == ""
    assert err.startswith(f"wakeward: --store {typo}: no such folder")
    assert not typo.exists()


def test_list_prints_a_table_with_deleted_clips_marked(data_dir, capsys):
    a, b, c = fill(data_dir)
    assert run(capsys, "delete", str(a.id))[0] == 0
    rc, out, err = run(capsys, "list")
    assert rc == 0 and err == ""
    header, *lines = out.splitlines()
    assert header.split() == [
        "ID",
        "RECEIVED",
        "DEVICE",
        "MODEL",
        "SCORE",
        "DURATION",
        "LABEL",
        "STATUS",
    ]
    assert len(lines) == 3
    deleted_at = store.local_time(store.ClipStore(data_dir).get(a.id).deleted_at or 0)
    assert lines[0].split()[0] == "1" and lines[0].endswith(f"deleted {deleted_at} (delete)")
    assert lines[0].split()[1:6] == [
        store.local_time(a.received_at).split()[0],
        store.local_time(a.received_at).split()[1],
        "kitchen",
        "alexa",
        "0.788",  # 201 of 255, the probability scale of try and the manifests
    ]
    assert "0.50 s" in lines[0]
    assert lines[1].split()[-2:] == ["false-wake", "stored"]
    assert lines[2].split()[-2:] == ["-", "stored"]


def test_list_filters_and_json(data_dir, capsys):
    a, b, c = fill(data_dir)
    rc, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [a.id, b.id, c.id]
    assert rows[1]["label"] == "false-wake" and rows[1]["status"] == "stored"
    assert rows[0]["file"] == str(a.path) and rows[0]["duration_s"] == 0.5

    def listed(*args: str) -> list[int]:
        rc, out, err = run(capsys, "list", "--json", *args)
        assert rc == 0, err
        return [r["id"] for r in json.loads(out)]

    assert listed("--device", "hall") == [c.id]
    assert listed("--label", "false-wake") == [b.id]
    assert listed("--label", "none") == [a.id, c.id]
    assert listed("--since", "20d") == [b.id, c.id]
    assert listed("--model", "hey_jarvis") == []
    run(capsys, "delete", str(a.id))
    assert listed("--hide-deleted") == [b.id, c.id]
    rc, out, _ = run(capsys, "list", "--device", "attic")
    assert out == f"no clips match in {data_dir}\n"


def test_show(data_dir, capsys):
    a, _, _ = fill(data_dir)
    rc, out, _ = run(capsys, "show", str(a.id))
    assert rc == 0
    assert f"audio:       {a.path} ({a.bytes} bytes)" in out
    assert "device:      kitchen (its clip 1)" in out and "ended by:    end_of_speech" in out
    assert "model:       alexa, score 0.788 (output 201 of 255)" in out
    rc, out, _ = run(capsys, "show", str(a.id), "--json")
    shown = json.loads(out)
    assert shown["sha256"] == a.sha256 and (shown["score"], shown["probability"]) == (201, 0.788)
    run(capsys, "delete", str(a.id))
    rc, out, _ = run(capsys, "show", str(a.id))
    assert f"audio:       none: {a.path.name} was deleted at" in out


def test_label(data_dir, capsys):
    a, _, _ = fill(data_dir)
    assert run(capsys, "label", str(a.id), "wake") == (0, f"clip {a.id}: labelled wake\n", "")
    assert ClipStore(data_dir).get(a.id).label == "wake"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["label", "1", "maybe"], "label 'maybe': use one of wake, false-wake, unsure"),
        (["label", "x", "wake"], "clip id 'x': not a number"),
        (["label", "99", "wake"], "clip 99: no such clip in"),
        (["show", "99"], "clip 99: no such clip in"),
        (["delete", "1", "99"], "clip 99: no such clip in"),
        (["purge", "--older-than", "30"], "--older-than '30': not an age like 30d"),
        (["list", "--since", "yesterday"], "--since 'yesterday': give an age"),
        (["list", "--label", "meh"], "label 'meh': use one of"),
        (["retention", "--max-age", "soon"], "--max-age 'soon': not an age"),
        (["retention", "--max-mb", "lots"], "--max-mb 'lots': a number of megabytes"),
    ],
)
def test_bad_input_names_the_argument(data_dir, capsys, args, message):
    fill(data_dir)
    rc, out, err = run(capsys, *args)
    assert rc == 1
    assert err.startswith(f"wakeward: {message}"), err
    assert all(c.path.is_file() for c in ClipStore(data_dir).clips())  # nothing was deleted


def test_delete_removes_the_audio_and_keeps_the_record(data_dir, capsys):
    a, b, _ = fill(data_dir)
    rc, out, _ = run(capsys, "delete", str(a.id), str(b.id))
    assert rc == 0
    assert out.splitlines() == [
        f"clip {a.id}: deleted {a.path}; its record stays (wakeward clips list)",
        f"clip {b.id}: deleted {b.path}; its record stays (wakeward clips list)",
    ]
    assert not a.path.exists() and not b.path.exists()
    rc, _, err = run(capsys, "delete", str(a.id))
    assert rc == 1 and f"clip {a.id}: already deleted at" in err


def test_purge(data_dir, capsys, monkeypatch):
    """Purge lists what will go; --dry-run deletes nothing; without --yes it asks on a
    terminal and refuses elsewhere (issue 18)."""
    a, b, c = fill(data_dir)
    rc, out, _ = run(capsys, "purge", "--older-than", "30d", "--dry-run")
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "1 clip received more than 30d ago:"
    assert lines[2].split()[0] == str(a.id) and len(lines) == 4
    assert lines[3].startswith("--dry-run: nothing deleted") and a.path.exists()

    rc, out, err = run(capsys, "purge", "--older-than", "30d")  # stdin is not a terminal
    assert rc != 0 and "add --yes to delete them" in err and a.path.exists()

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    rc, out, _ = run(capsys, "purge", "--older-than", "30d")
    assert rc == 1 and out.endswith("nothing deleted\n") and a.path.exists()
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    rc, out, _ = run(capsys, "purge", "--older-than", "30d")
    assert rc == 0 and out.endswith(f"deleted 1 clip received more than 30d ago: {a.id}\n")
    assert not a.path.exists() and b.path.exists() and c.path.exists()

    rc, out, _ = run(capsys, "purge", "--older-than", "30d", "--yes")
    assert (rc, out) == (0, "no clips received more than 30d ago\n")


@pytest.mark.parametrize("age", ["1m", "2M", "3mo"])
def test_an_age_in_m_is_refused_as_ambiguous(data_dir, capsys, age):
    fill(data_dir)
    rc, out, err = run(capsys, "purge", "--older-than", age, "--yes")
    assert rc != 0 and "'m' could mean minutes or months: write minutes as 90min" in err
    assert len(ClipStore(data_dir).clips(include_deleted=False)) == 3


def test_retention(data_dir, capsys):
    assert run(capsys, "retention")[1] == (
        "retention: off (clips are kept until you delete them)\n"
    )
    a, b, c = fill(data_dir)
    rc, out, _ = run(capsys, "retention", "--max-age", "30d")
    assert out.splitlines() == [
        "retention: clips older than 30d are deleted as each new clip is stored",
        "1 clip past it now (--apply deletes them now)",
    ]
    assert a.path.exists()  # setting it deletes nothing by itself
    rc, out, _ = run(capsys, "retention", "--max-mb", "0.05")
    assert out.splitlines()[0] == (
        "retention: clips older than 30d and the oldest clips beyond 0.05 MB in all are "
        "deleted as each new clip is stored"
    )
    rc, out, _ = run(capsys, "retention", "--apply")
    assert out.splitlines()[-1] == f"deleted 2 clips: {a.id}, {b.id}"
    assert not a.path.exists() and not b.path.exists() and c.path.exists()
    with ClipStore(data_dir) as s:
        assert s.retention() == store.Retention(max_age_s=30 * DAY, max_bytes=50_000)
        assert s.get(b.id).deleted_by == "retention"
    run(capsys, "retention", "--max-age", "off", "--max-mb", "off")
    assert ClipStore(data_dir).retention() == store.Retention()


def fake_player(folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    exe = folder / name
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


def test_play_uses_a_player_found_on_path(data_dir, capsys, tmp_path, monkeypatch):
    a, _, _ = fill(data_dir)
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", str(bin_dir))
    exe = fake_player(bin_dir, "ffplay")
    rc, out, _ = run(capsys, "play", str(a.id), "--print-command")
    assert (rc, out) == (0, f"{exe} -nodisp -autoexit -loglevel error {a.path}\n")
    exe = fake_player(bin_dir, "paplay")  # preferred over ffplay
    assert run(capsys, "play", str(a.id), "--print-command")[1] == f"{exe} {a.path}\n"
    assert run(capsys, "play", str(a.id)) == (0, "", "")  # runs the (fake) player


def test_play_without_a_player_or_without_audio(data_dir, capsys, tmp_path, monkeypatch):
    a, b, _ = fill(data_dir)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    rc, _, err = run(capsys, "play", str(a.id), "--print-command")
    assert rc == 1
    assert err.startswith("wakeward: no audio player found: install one of aplay (alsa-utils)")
    assert str(a.path) in err
    run(capsys, "delete", str(b.id))
    rc, _, err = run(capsys, "play", str(b.id))
    assert rc == 1 and f"wakeward: clip {b.id}: its audio was deleted at" in err


def test_store_option_and_a_real_process(tmp_path):
    folder = tmp_path / "elsewhere"
    fill(folder)
    env_dir = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-m", "wakeward", "clips", "list", "--json", "--store", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"WAKEWARD_DATA_DIR": str(env_dir), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 3
    done = subprocess.run(
        [sys.executable, "-m", "wakeward", "clips", "show", "7", "--store", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"wakeward: clip 7: no such clip in {folder} (see `wakeward clips list`)\n"
    )
    assert not env_dir.exists()


def test_recovery_is_reported(data_dir, capsys):
    a, _, _ = fill(data_dir)
    a.path.unlink()
    rc, _, err = run(capsys, "list")
    assert rc == 0
    assert err == f"wakeward: clip store: clip {a.id}: its audio file has gone; marked deleted\n"


def test_play_with_a_player_command(data_dir, capsys, tmp_path, monkeypatch):
    a, _, _ = fill(data_dir)
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", str(bin_dir))
    exe = fake_player(bin_dir, "myplayer")
    rc, out, err = run(capsys, "play", str(a.id), "--player", "myplayer -v", "--print-command")
    assert (rc, out, err) == (0, f"{exe} -v {a.path}\n", "")
    rc, out, _ = run(
        capsys, "play", str(a.id), "--player", "myplayer --in {} -q", "--print-command"
    )
    assert (rc, out) == (0, f"{exe} --in {a.path} -q\n")
    assert run(capsys, "play", str(a.id), "--player", "myplayer") == (0, "", "")
    rc, _, err = run(capsys, "play", str(a.id), "--player", "nosuchplayer -x")
    assert (rc, err) == (1, "wakeward: --player: no program 'nosuchplayer' on PATH\n")
    rc, _, err = run(capsys, "play", str(a.id), "--player", "")
    assert (rc, err) == (
        1,
        "wakeward: --player: give a command, e.g. --player 'mpv --really-quiet'\n",
    )
