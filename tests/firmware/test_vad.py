"""The energy speech detector and the listen loop, on the sim board."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.conftest import write_test_wav

RATE = 16000


def bursts_wav(path: Path, bursts_s: list[tuple[float, float]], total_s: float) -> Path:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 20, int(total_s * RATE))
    for start, end in bursts_s:
        a, b = int(start * RATE), int(end * RATE)
        t = np.arange(b - a) / RATE
        x[a:b] += 6000 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return write_test_wav(path, np.clip(x, -32768, 32767).astype(np.int16))


def heard(out: str) -> list[tuple[float, float]]:
    segs = []
    for line in out.splitlines():
        if line.startswith("heard: speech "):
            a, b = line.split()[2].rstrip(",").split("-")
            segs.append((float(a), float(b)))
    return segs


LISTEN = (
    "import listen\n"
    "from board import open_board\n"
    "b = open_board('sim', wav='in.wav', events='ev.jsonl'{extra})\n"
    "print('segments', listen.run(b))\n"
    "b.close()\n"
)


def test_listen_reports_each_burst_with_its_times(mp, tmp_path):
    bursts = [(1.0, 2.0), (3.5, 4.2)]
    bursts_wav(tmp_path / "in.wav", bursts, 6.0)
    out = mp.output(LISTEN.format(extra=""))
    segs = heard(out)
    assert "segments 2" in out
    assert len(segs) == 2
    for (a, b), (start, end) in zip(segs, bursts, strict=True):
        assert abs(a - start) <= 0.05 and abs(b - end) <= 0.05


def test_silence_gives_no_segments(mp, tmp_path):
    bursts_wav(tmp_path / "in.wav", [], 3.0)
    out = mp.output(LISTEN.format(extra=""))
    assert "segments 0" in out and heard(out) == []


def test_mute_button_stops_listening_and_the_led_shows_it(mp, tmp_path):
    bursts_wav(tmp_path / "in.wav", [(1.0, 1.5), (3.0, 3.5)], 5.0)
    # press (and release) at 2.5 s: muted from then on, so the second burst is not heard
    out = mp.output(LISTEN.format(extra=", button=[[2500, 2600]]"))
    assert heard(out) and len(heard(out)) == 1
    assert "muted" in out
    events = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    led = [(e["t_ms"], e["value"]) for e in events if e["dev"] == "led"]
    assert led == [(0, 1), (2500, 0)]
