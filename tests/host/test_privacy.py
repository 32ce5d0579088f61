"""Privacy as tested behaviour: over hours of audio without the wake word, the device sends
the receiver no audio at all, only its hello and status heartbeats; and a receiver on plain
TCP that asks for the models' outputs or a recording (the owner's requests, which only the
paired owner may make: firmware/request.py) gets a refusal, and nothing derived from the
audio, by default.

The firmware runs unmodified on the sim board (a real process) with the alexa model; its
microphone is fed over a socket with HOURS of everyday speech in several voices, silence,
room noise, hum and music-like tones, every stretch with its own gain and noise, seeded so
the run is the same every time. Its link goes to a listener in this test that decodes every
byte with the firmware's own protocol module and counts the messages by type.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from wakeward import sim, unixport
from wakeward.audio import RATE_HZ

from tests.conftest import REPO, require_tools
from tests.host.test_protocol import P

HOURS = 2.0
STATUS_INTERVAL_MS = 60_000
CHUNK_S = 60.0  # audio is made and fed a minute at a time
SEED = 20261122
WAIT_S = 900.0  # a hang fails instead of blocking (the run takes ~3 min on 2 cores)
SENTENCES = REPO / "training" / "wakeward_train" / "data" / "sentences.txt"
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland+m2", "en-us+klatt")


@pytest.fixture(scope="module")
def speech_pool(tmp_path_factory) -> list[np.ndarray]:
    """Everyday sentences (none with the wake word or anything like it) in five voices."""
    require_tools("espeak-ng", "sox")
    from wakeward import tts

    lines = [x.strip() for x in SENTENCES.read_text().splitlines() if x.strip()]
    lines = [x for x in lines if "lex" not in x.lower()]
    rng = np.random.default_rng(SEED)
    picked = rng.choice(len(lines), size=30, replace=False)
    folder = tmp_path_factory.mktemp("speech")
    pool = []
    for k, i in enumerate(picked):
        voice = VOICES[k % len(VOICES)]
        pool.append(tts.espeak(lines[i], folder / f"{k}.wav", voice=voice, rate_wpm=140 + k * 2))
    return pool


def minute_of_audio(rng: np.random.Generator, pool: list[np.ndarray]) -> np.ndarray:
    """One minute of a home: speech at varied levels, pauses, noise, hum, tones."""
    n = int(CHUNK_S * RATE_HZ)
    out = np.zeros(n, np.float64)
    at = 0
    while at < n:
        kind = rng.integers(0, 5)
        if kind <= 1:  # speech, a sentence at a random level
            piece = pool[rng.integers(len(pool))].astype(np.float64) * rng.uniform(0.1, 1.5)
        elif kind == 2:  # silence or near-silence
            piece = np.zeros(int(rng.uniform(0.5, 6) * RATE_HZ))
        elif kind == 3:  # mains hum and a music-like chord
            t = np.arange(int(rng.uniform(1, 8) * RATE_HZ)) / RATE_HZ
            notes = rng.choice([220.0, 261.6, 329.6, 392.0, 440.0, 523.3], 3)
            piece = 300 * np.sin(2 * np.pi * 50 * t) + sum(
                rng.uniform(200, 2000) * np.sin(2 * np.pi * f * t) for f in notes
            )
        else:  # broadband noise (a fan, water)
            piece = rng.normal(0, rng.uniform(50, 1500), int(rng.uniform(1, 6) * RATE_HZ))
        piece = piece[: n - at]
        out[at : at + len(piece)] += piece
        at += len(piece)
    out += rng.normal(0, 20, n)  # the room
    return np.clip(out, -32768, 32767).astype("<i2")


class Listener:
    """The receiver's end of the link, counting what arrives (it never acknowledges); it
    sends `ask` (request frames) after the device's hello."""

    def __init__(self, ask: bytes = b"") -> None:
        self.ask = ask
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.counts: dict[str, int] = {}
        self.bytes = 0
        self.statuses: list[dict] = []
        self.logs: list[bytes] = []
        self.errors: list[str] = []
        self.replies: list[dict] = []  # error and request_end
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.server.settimeout(WAIT_S)
        conn, _ = self.server.accept()
        decoder = P.Decoder()
        with conn:
            while data := conn.recv(65536):
                self.bytes += len(data)
                decoder.feed(data)
                if self._take(decoder) and self.ask:
                    conn.sendall(self.ask)
        decoder.finish()
        self._take(decoder)

    def _take(self, decoder) -> bool:
        """Counts what has come; True when a hello was among it."""
        hello = False
        for kind, item in decoder:
            if kind == "msg":
                hello = hello or item["type"] == "hello"
                self.counts[item["type"]] = self.counts.get(item["type"], 0) + 1
                if item["type"] in ("error", "request_end"):
                    self.replies.append(item)
                if item["type"] == "status":
                    self.statuses.append(item)
            elif kind == "log":
                self.logs.append(item)
            else:
                self.errors.append(str(item))
        return hello


def run_device(tmp_path: Path, minutes, ask: bytes = b"") -> tuple[Listener, str]:
    """The firmware with alexa over the given minutes of audio, its link to a Listener
    that sends `ask` after the hello; what arrived, what the firmware said."""
    listener = Listener(ask)
    mic = socket.create_server(("127.0.0.1", 0))
    mic.settimeout(WAIT_S)
    config = {
        "board": "sim",
        "board_options": {"pcm_socket": f"127.0.0.1:{mic.getsockname()[1]}"},
        "models": [sim.model_entry("alexa")],
        "link": {"tcp": f"127.0.0.1:{listener.port}", "status_interval_ms": STATUS_INTERVAL_MS},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    device = subprocess.Popen(
        unixport.main_command(),
        cwd=tmp_path,
        env=unixport.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    said: list[bytes] = []
    reader = threading.Thread(target=lambda: said.extend(device.stdout or ()), daemon=True)
    reader.start()
    with mic:
        feed, _ = mic.accept()
    with feed:
        for minute in minutes:
            feed.sendall(minute.tobytes())
    assert device.wait(WAIT_S) == 0, b"".join(said).decode(errors="replace")
    reader.join(WAIT_S)
    listener.thread.join(WAIT_S)
    return listener, b"".join(said).decode(errors="replace")


@pytest.mark.slow
def test_hours_without_the_wake_word_send_no_audio(tmp_path, speech_pool):
    rng = np.random.default_rng(SEED)
    minutes = int(HOURS * 60)
    audio = (minute_of_audio(rng, speech_pool) for _ in range(minutes))
    listener, text = run_device(tmp_path, audio)

    assert "detected:" not in text, text[-2000:]
    assert not listener.errors and not listener.logs
    # only the hello and the heartbeats crossed the link: no clip, no audio, no detection
    assert set(listener.counts) == {"hello", "status"}, listener.counts
    assert listener.counts["hello"] == 1
    expected = minutes * 60_000 // STATUS_INTERVAL_MS
    assert expected - 2 <= listener.counts["status"] <= expected + 2
    last = listener.statuses[-1]
    assert last["audio_bytes"] == 0 and last["clips_sent"] == 0
    assert last["uptime_ms"] >= (minutes - 1) * 60_000
    # a few hundred bytes per minute of heartbeat, nowhere near audio's 1.9 MB per minute
    assert listener.bytes < 200 * (listener.counts["status"] + 1)


def test_the_listener_does_see_audio_after_a_wake_word(tmp_path, speech_pool):
    """The same harness over the same kind of audio with "Alexa" said once: one clip's
    audio arrives, and it is counted (so the test above could fail)."""
    from wakeward import tts

    require_tools("espeak-ng", "sox")
    rng = np.random.default_rng(SEED)
    wake = tts.espeak("Alexa, what time is it?", tmp_path / "wake.wav").astype(np.float64)
    first = minute_of_audio(rng, speech_pool)
    # room noise long enough for the frontend's noise estimate to settle after the minute
    # before, the wake word, then the room until the minute is over
    second = rng.normal(0, 30, int(CHUNK_S * RATE_HZ))
    at = 10 * RATE_HZ
    second[at : at + len(wake)] += wake * 0.5
    listener, text = run_device(tmp_path, [first, second.astype("<i2")])
    assert text.count("detected: alexa") == 1, text
    assert listener.counts["clip_start"] == 1 and listener.counts["clip_end"] == 1
    assert listener.counts["clip_data"] > 0
    assert listener.bytes > 2 * RATE_HZ  # over a second of audio crossed the link


def test_requests_over_plain_tcp_are_refused_and_nothing_audio_derived_is_sent(
    tmp_path, speech_pool
):
    """A receiver on plain TCP asks for the models' outputs and for a recording, over a
    minute of speech with the wake word in it: the device (config.json as deployed without
    pairing: link.requests by default) refuses both, saying why, and sends no outputs and
    no recording; the wake word's own clip still comes, as ever."""
    from wakeward import tts

    require_tools("espeak-ng", "sox")
    rng = np.random.default_rng(SEED + 1)
    minute = minute_of_audio(rng, speech_pool).astype(np.float64)
    wake = tts.espeak("Alexa, what time is it?", tmp_path / "wake.wav").astype(np.float64)
    at = 30 * RATE_HZ
    minute[at : at + len(wake)] = wake * 0.5 + rng.normal(0, 30, len(wake))
    ask = P.encode_request(P.MONITOR, 600, 1) + P.encode_request(P.RECORD, 10, 2)
    listener, text = run_device(tmp_path, [minute.astype("<i2")], ask)
    assert text.count("detected: alexa") == 1, text
    assert set(listener.counts) == {
        "hello", "status", "error", "request_end", "detection", "clip_start", "clip_data",
        "clip_end",
    }  # fmt: skip
    assert "outputs" not in listener.counts and listener.counts["clip_start"] == 1
    errors = [m for m in listener.replies if m["type"] == "error"]
    ends = [m for m in listener.replies if m["type"] == "request_end"]
    assert [(m["request_id"], m["reason"]) for m in ends] == [(1, 1), (2, 1)]  # refused
    assert [m["code"] for m in errors] == [P.ERR_REFUSED, P.ERR_REFUSED]
    assert all("not the paired owner's" in m["message"] for m in errors)
    assert "link: request 1 refused: this link is plain TCP" in text
