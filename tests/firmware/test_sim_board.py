"""The sim board: microphone from WAV or socket, scripted button, observable LED."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import output, write_test_wav

READ_ALL = """
from board import open_board
b = open_board("sim", SOURCE=ARG)
chunks = (1, 7, 160, 333, 1024, 2)
bufs = [bytearray(2 * n) for n in chunks]
out = open("got.raw", "wb")
i = 0
while True:
    buf = bufs[i % len(bufs)]
    n = b.mic.readinto(buf)
    if n == 0:
        break
    out.write(memoryview(buf)[:n])
    i += 1
out.close()
print("samples", b.mic.samples, "t_ms", b.mic.t_ms())
b.close()
"""


def read_all(source: str, arg: str) -> str:
    """Firmware code that reads the whole microphone stream in odd-sized chunks."""
    return READ_ALL.replace("SOURCE", source).replace("ARG", repr(arg))


def random_samples(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).integers(-32768, 32768, n, dtype=np.int64).astype(np.int16)
    x[:4] = [-32768, 32767, 0, -1]
    return x


def test_mic_delivers_wav_samples_bit_exactly(mp_each_heap, tmp_path: Path):
    samples = random_samples(16000 * 3 + 17, seed=1)
    write_test_wav(tmp_path / "in.wav", samples)
    out = mp_each_heap.output(read_all("wav", "in.wav"))
    got = np.frombuffer((tmp_path / "got.raw").read_bytes(), dtype="<i2")
    np.testing.assert_array_equal(got, samples)
    assert f"samples {len(samples)} t_ms {len(samples) * 1000 // 16000}" in out


def test_mic_skips_extra_chunks_before_data(mp, tmp_path: Path):
    samples = random_samples(4000, seed=2)
    plain = tmp_path / "plain.wav"
    write_test_wav(plain, samples)
    raw = plain.read_bytes()
    # Insert a LIST chunk (odd size, padded) between 'fmt ' and 'data', as many editors do.
    fmt_end = 12 + 8 + 16
    extra = b"LIST" + (5).to_bytes(4, "little") + b"hello\x00"
    body = raw[12:fmt_end] + extra + raw[fmt_end:]
    riff = b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body
    (tmp_path / "in.wav").write_bytes(riff)
    mp.output(read_all("wav", "in.wav"))
    got = np.frombuffer((tmp_path / "got.raw").read_bytes(), dtype="<i2")
    np.testing.assert_array_equal(got, samples)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_hz": 44100}, "sample rate 44100 Hz, expected 16000 Hz"),
        ({"channels": 2}, "2 channels, expected 1 (mono)"),
        ({"width": 1}, "8 bits per sample, expected 16"),
    ],
)
def test_mic_refuses_other_formats_naming_the_field(mp, tmp_path: Path, kwargs, message):
    n = 1600 * kwargs.get("channels", 1)
    dtype = np.uint8 if kwargs.get("width") == 1 else np.int16
    write_test_wav(tmp_path / "bad.wav", np.zeros(n, dtype), **kwargs)
    done = mp.run(read_all("wav", "bad.wav"), expect_ok=False)
    assert done.returncode != 0
    assert f"bad.wav: {message}" in output(done)


def test_mic_refuses_a_file_that_is_not_wav(mp, tmp_path: Path):
    (tmp_path / "notes.wav").write_bytes(b"this is text, not audio\n")
    done = mp.run(read_all("wav", "notes.wav"), expect_ok=False)
    assert "notes.wav: not a RIFF/WAVE file" in output(done)


def test_mic_from_socket_delivers_samples_bit_exactly(mp, tmp_path: Path):
    samples = random_samples(16000 + 5, seed=3)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(30)
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        with conn:
            data = samples.astype("<i2").tobytes()
            for i in range(0, len(data), 999):  # odd-sized writes split samples
                conn.sendall(data[i : i + 999])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        mp.output(read_all("pcm_socket", f"127.0.0.1:{port}"))
    finally:
        thread.join(10)
        server.close()
    got = np.frombuffer((tmp_path / "got.raw").read_bytes(), dtype="<i2")
    np.testing.assert_array_equal(got, samples)


def test_realtime_pace_is_not_faster_than_the_audio(mp, tmp_path: Path):
    write_test_wav(tmp_path / "in.wav", np.zeros(8000, np.int16))  # 0.5 s
    code = (
        "from board import open_board\n"
        "b = open_board('sim', wav='in.wav', realtime=True)\n"
        "buf = bytearray(320)\n"
        "while b.mic.readinto(buf):\n"
        "    pass\n"
    )
    start = time.monotonic()
    mp.run(code)
    assert time.monotonic() - start >= 0.45


def test_button_script_and_led_are_observable(mp, tmp_path: Path):
    write_test_wav(tmp_path / "in.wav", np.zeros(16000, np.int16))
    code = (
        "from board import open_board\n"
        "b = open_board('sim', wav='in.wav', events='ev.jsonl', button=[[200, 300]])\n"
        "buf = bytearray(320)\n"
        "while b.mic.readinto(buf):\n"
        "    b.led.value(b.button.pressed())\n"
        "b.speaker.play(bytes(640))\n"
        "b.close()\n"
    )
    mp.run(code)
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert events == [
        {"t_ms": 10, "dev": "led", "value": 0},
        {"t_ms": 200, "dev": "button", "value": 1},
        {"t_ms": 200, "dev": "led", "value": 1},
        {"t_ms": 300, "dev": "button", "value": 0},
        {"t_ms": 300, "dev": "led", "value": 0},
        {"t_ms": 1000, "dev": "speaker", "samples": 320},
    ]


def test_the_firmware_asks_for_240_mhz_and_says_so(tmp_path: Path):
    """main.py asks the board for the ESP32-S3's top clock at boot and logs the answer;
    the sim board records the request."""
    from wakeward import sim

    write_test_wav(tmp_path / "in.wav", np.zeros(1600, np.int16))
    lines: list[str] = []
    sim.run_sim(tmp_path / "in.wav", events=tmp_path / "ev.jsonl", say=lines.append)
    assert "wakeward: board sim, CPU at 240 MHz" in lines
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert {"t_ms": 0, "dev": "cpu", "hz": 240_000_000} in events


def test_sim_board_needs_exactly_one_source(mp):
    done = mp.run("from board import open_board\nopen_board('sim')\n", expect_ok=False)
    assert "exactly one microphone source" in output(done)
