"""The `wakeward` command: sim and demo, run as a user would (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, require_tools, write_any_wav, write_test_wav
from tests.firmware.test_vad import bursts_wav

WAKEWARD = [sys.executable, "-m", "wakeward"]


def wakeward(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WAKEWARD, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_sim_prints_what_the_firmware_heard(tmp_path):
    bursts_wav(tmp_path / "in.wav", [(0.5, 1.5)], 2.5)
    done = wakeward("sim", "in.wav", "--events", "ev.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "heard: speech 0.5" in done.stdout
    events = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    # the firmware asks for the ESP32-S3's top clock first, then lights the LED
    assert events[:2] == [
        {"t_ms": 0, "dev": "cpu", "hz": 240_000_000},
        {"t_ms": 0, "dev": "led", "value": 1},
    ]


def test_sim_refuses_a_stereo_wav_with_a_clear_message(tmp_path):
    (tmp_path / "stereo.wav").write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    done = wakeward("sim", "stereo.wav", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "wakeward: stereo.wav: not a readable PCM WAV file (no 'fmt ' chunk)"
    )


def test_sim_converts_what_espeak_ng_writes(tmp_path):
    """espeak-ng writes 22,050 Hz; sim takes any common WAV, saying once what it converted."""
    write_any_wav(tmp_path / "in.wav", 1.0)
    done = wakeward("sim", "in.wav", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "in.wav: 22050 Hz stereo 32-bit float, converted to 16 kHz mono 16-bit"
    ]


def test_sim_missing_file(tmp_path):
    done = wakeward("sim", "nope.wav", cwd=tmp_path)
    assert done.returncode == 1
    assert "wakeward: nope.wav: no such file" in done.stderr


def test_sim_rejects_a_bad_button_interval(tmp_path):
    done = wakeward("sim", "x.wav", "--button", "500-100", cwd=tmp_path)
    assert done.returncode == 2
    assert "'500-100' is not START_MS-END_MS" in done.stderr


def test_firmware_reports_a_broken_config(tmp_path, mp):
    (tmp_path / "config.json").write_text('{"board": 5}')
    done = mp.run(f"exec(open({str(REPO / 'firmware' / 'main.py')!r}).read())", expect_ok=False)
    assert done.returncode == 1
    assert b"wakeward: config.json: field 'board'" in done.stdout


def test_demo_runs_end_to_end(tmp_path):
    require_tools("espeak-ng", "sox")
    done = wakeward("demo", "--workdir", str(tmp_path / "demo"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    heard = [line for line in done.stdout.splitlines() if line.startswith("heard: speech")]
    assert len(heard) >= 3, done.stdout  # three sentences, each at least one stretch of speech
    detected = [line for line in done.stdout.splitlines() if line.startswith("detected: alexa")]
    assert len(detected) == 2, done.stdout  # "Alexa" in the first and the last sentence
    assert "2 detections; the recording says the wake word 2 times" in done.stdout
    assert "2 clips received" in done.stdout
    # it ends by listing them from its own store, as `wakeward clips list` does
    table = done.stdout.splitlines()[-4:-1]
    assert table[0].split() == [
        "ID",
        "RECEIVED",
        "DEVICE",
        "MODEL",
        "SCORE",
        "DURATION",
        "LABEL",
        "STATUS",
    ]
    assert [row.split()[0] for row in table[1:]] == ["1", "2"]
    assert all(row.split()[3:5] == ["sim", "alexa"] and row.endswith("stored") for row in table[1:])
    store_dir = tmp_path / "demo" / "store"
    assert done.stdout.splitlines()[-1].endswith(f"wakeward clips list --store {store_dir}`")
    assert len(list(store_dir.glob("*.wav"))) == 2 and (store_dir / "sim.status.json").is_file()
    assert (tmp_path / "demo" / "demo.wav").is_file()


@pytest.mark.parametrize("args", [["--version"], ["sim", "--help"]])
def test_help_and_version(tmp_path, args):
    done = wakeward(*args, cwd=tmp_path)
    assert done.returncode == 0
    assert "wakeward" in done.stdout


def test_a_closed_pipe_is_not_a_crash(tmp_path):
    """`wakeward sim ... --json | head -1`: the reader leaves early; no traceback."""
    bursts_wav(tmp_path / "in.wav", [(0.5, 1.5)], 20.0)
    proc = subprocess.Popen(
        [*WAKEWARD, "sim", "in.wav", "--model", "alexa", "--json", "--heap", "esp32s3-psram"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("{")
    proc.stdout.close()
    proc.wait(timeout=120)
    assert "Traceback" not in proc.stderr.read()


def test_sim_runs_the_compiled_firmware_not_its_sources(tmp_path, monkeypatch):
    """The device runs .mpy files: the sim must not let the port compile firmware/*.py."""
    from wakeward import sim, unixport

    seen = {}

    class Stop(Exception):
        pass

    def fake_popen(argv, **kwargs):
        seen["argv"] = argv
        seen["path"] = kwargs["env"]["MICROPYPATH"]
        raise Stop

    monkeypatch.setattr(sim.subprocess, "Popen", fake_popen)
    wav = tmp_path / "in.wav"
    write_test_wav(wav, [0] * 1600)
    with pytest.raises(Stop):
        sim.run_sim(wav)
    assert seen["argv"][-2:] == ["-m", "main"]
    source = str(unixport.firmware_dir())
    assert source not in seen["argv"]
    assert source not in seen["path"].split(os.pathsep)
    assert str(unixport.compiled_firmware()) in seen["path"].split(os.pathsep)
