"""Privacy on the USB serial link: the console is the link, and whatever the firmware prints
reaches the owner's PC (the receiver logs it). When someone spoke and how loudly is derived
from the audio, so the `heard: speech ...` lines stay on the device unless the owner asked
for them (trace mode); without a serial link (the sim on a terminal) they are printed."""

from __future__ import annotations

import json

from wakeward import unixport

from tests.conftest import FIRMWARE
from tests.firmware.test_vad import bursts_wav


def boot(tmp_path, **config) -> str:
    """main.py on the sim board over two bursts of sound; everything it wrote to the console
    (the serial link's frames and its log lines)."""
    bursts_wav(tmp_path / "in.wav", [(0.5, 1.5), (2.5, 3.0)], 4.0)
    cfg = {"board": "sim", "board_options": {"wav": "in.wav"}, **config}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    done = unixport.run(
        FIRMWARE / "main.py", cwd=tmp_path, heap="esp32s3-psram", input_bytes=b"", timeout_s=120
    )
    text = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, text
    return text


def test_speech_times_and_levels_do_not_go_out_on_the_serial_link(tmp_path):
    out = boot(tmp_path, link={"serial": True})
    assert "heard:" not in out and "dBFS" not in out, out


def test_trace_mode_sends_them_because_the_owner_asked(tmp_path):
    out = boot(tmp_path, link={"serial": True}, trace=True)
    assert out.count("heard: speech ") == 2, out


def test_without_a_serial_link_the_console_shows_them(tmp_path):
    assert boot(tmp_path).count("heard: speech ") == 2
