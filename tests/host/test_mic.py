"""The PC microphone reader (wakeward.mic) with $WAKEWARD_MIC_COMMAND standing in for a
microphone, and the choice of capture program."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import numpy as np
import pytest
from wakeward import mic
from wakeward.errors import WakewardError


@pytest.fixture
def raw(tmp_path: Path) -> tuple[Path, np.ndarray]:
    samples = np.random.default_rng(0).integers(-30000, 30000, 16000 * 3 // 2).astype(np.int16)
    path = tmp_path / "audio.raw"
    path.write_bytes(samples.astype("<i2").tobytes())
    return path, samples


def test_reads_the_command_s_samples_in_blocks(raw, monkeypatch):
    path, samples = raw
    monkeypatch.setenv(mic.COMMAND_ENV, f"cat {shlex.quote(str(path))}")
    with mic.Microphone() as m:
        blocks = list(m.blocks())
        assert m.ended
    assert [len(b) for b in blocks] == [1600] * 15
    assert np.array_equal(np.concatenate(blocks), samples)
    with mic.Microphone() as m:
        part = list(m.blocks(0.25))
    assert [len(b) for b in part] == [1600, 1600, 800]
    assert np.array_equal(np.concatenate(part), samples[:4000])


def test_a_failing_command_is_reported_with_what_it_said(raw, monkeypatch):
    path, _ = raw
    command = f"head -c 6400 {shlex.quote(str(path))}; echo 'no such device' >&2; exit 3"
    monkeypatch.setenv(mic.COMMAND_ENV, command)
    with mic.Microphone() as m, pytest.raises(WakewardError) as e:
        list(m.blocks(1.0))
    assert str(e.value) == (
        f"the capture command `{command}` exited with status 3 after 0.20 s of audio: "
        "no such device"
    )


def test_close_stops_a_command_that_never_ends(monkeypatch, tmp_path):
    pid_file = tmp_path / "pid"
    monkeypatch.setenv(mic.COMMAND_ENV, f"echo $$ > {pid_file}; exec cat /dev/zero")
    start = time.monotonic()
    with mic.Microphone() as m:
        assert len(m.read(8000)) == 8000
        leader = m._proc.pid
    assert time.monotonic() - start < mic.STOP_WAIT_S
    assert int(pid_file.read_text()) == leader
    with pytest.raises(ProcessLookupError):
        os.killpg(leader, 0)  # the whole process group is gone


def test_no_capture_program_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv(mic.COMMAND_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(WakewardError) as e:
        mic.capture()
    message = str(e.value)
    assert message.startswith("no program to record from the microphone: install alsa-utils")
    assert "sox" in message and "WAKEWARD_MIC_COMMAND" in message


def fake_program(folder: Path, name: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)


def test_arecord_first_then_sox_then_the_override(monkeypatch, tmp_path):
    monkeypatch.delenv(mic.COMMAND_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    fake_program(tmp_path, "sox")
    assert mic.capture().shown == ("sox -q -d -t raw -r 16000 -c 1 -b 16 -e signed-integer -L -")
    fake_program(tmp_path, "arecord")
    program = mic.capture()
    assert program.argv[0] == str(tmp_path / "arecord")
    assert program.shown == "arecord -q -t raw -f S16_LE -r 16000 -c 1"
    monkeypatch.setenv(mic.COMMAND_ENV, "arecord -D hw:1 -q -t raw -f S16_LE -r 16000")
    assert mic.capture().argv == ("/bin/sh", "-c", "arecord -D hw:1 -q -t raw -f S16_LE -r 16000")


def test_a_command_that_cannot_start_is_named(tmp_path):
    program = mic.Capture((str(tmp_path / "nothing"),), "nothing")
    with pytest.raises(WakewardError, match=r"cannot start the capture command `nothing`"):
        mic.Microphone(program)
