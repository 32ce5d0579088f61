"""Audio to play, the receiver's side (wakeward/play.py, receiver.Session.play): any rate
converted to the device's 16 kHz mono int16 with soxr, the same streamed as whole; audio
only after the device's hello; the device's `played` back to the play; a peer of another
protocol version refused in words it can read. The device is test_listen's stand-in."""

from __future__ import annotations

import socket
import threading
import time
import zlib

import numpy as np
import pytest
import soxr
from wakeward import play
from wakeward.errors import WakewardError

from tests.host.test_listen import WAIT_S, InProcess
from tests.host.test_protocol import P


def tone(rate_hz: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)


def test_22050_hz_becomes_16_khz_with_the_same_pitch():
    pcm = play.resample(tone(22050, 1.0).astype("<i2").tobytes(), 22050)
    out = np.frombuffer(pcm, "<i2")
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    assert np.argmax(spectrum) * 16000 / len(out) == pytest.approx(440, abs=2)


def test_streamed_in_pieces_is_the_same_as_whole():
    x = tone(22050, 0.7, 300.0).astype("<i2").tobytes()
    whole = play.resample(x, 22050)
    r = play.Resampler(22050)
    parts = [r.convert(x[i : i + 1001]) for i in range(0, len(x), 1001)]  # odd: mid-sample
    parts.append(r.convert(b"", last=True))
    assert b"".join(parts) == whole
    ref = soxr.resample(np.frombuffer(x, "<i2").astype(np.float32) / 32768, 22050, 16000, "HQ")
    assert whole == np.clip(np.rint(ref * 32768), -32768, 32767).astype("<i2").tobytes()


def test_16_khz_mono_goes_through_unchanged_and_stereo_8_bit_is_averaged():
    x = tone(16000, 0.1).astype("<i2").tobytes()
    assert play.resample(x, 16000) == x
    left = np.full(100, 128 + 64, np.uint8)
    right = np.full(100, 128, np.uint8)
    stereo = np.column_stack([left, right]).reshape(-1).tobytes()
    assert set(np.frombuffer(play.resample(stereo, 16000, 1, 2), "<i2")) == {8192}


@pytest.mark.parametrize(
    "args, message",
    [
        ((500,), "audio at 500 Hz"),
        ((16000, 3), "3-byte samples"),
        ((16000, 2, 0), "0 channels"),
    ],
)
def test_formats_nobody_plays_are_refused(args, message):
    with pytest.raises(WakewardError, match=message):
        play.Resampler(*args)


class Sessions:
    """A SessionListener that keeps each session that said its hello."""

    def __init__(self) -> None:
        self.sessions: list = []
        self.messages: list[dict] = []
        self.ready = threading.Event()

    def hello(self, session) -> None:
        self.sessions.append(session)
        self.ready.set()

    def message(self, session, msg: dict) -> None:
        self.messages.append(msg)

    def recording(self, session, recording) -> bool:
        return False

    def closed(self, session) -> None:
        pass


@pytest.fixture
def served(tmp_path):
    sessions = Sessions()
    rx = InProcess(tmp_path / "store", listener=sessions)
    yield rx, sessions
    rx.store.close()


def test_a_play_reaches_the_device_resampled_and_its_played_comes_back(served):
    rx, sessions = served
    dev = rx.connect()
    assert sessions.ready.wait(WAIT_S)
    x = tone(22050, 1.2).astype("<i2").tobytes()
    playback = sessions.sessions[0].play(rate_hz=22050)
    got: list = []
    taker = threading.Thread(target=lambda: got.append(dev.take_play()))
    taker.start()
    t0 = time.monotonic()
    for i in range(0, len(x), 4410):
        playback.feed(x[i : i + 4410])
    playback.end()
    result = playback.wait()
    taker.join(WAIT_S)
    play_id, audio = got[0]
    assert audio == play.resample(x, 22050)
    assert result == play.Played(play_id, len(audio) // 2, 0, "done")
    # paced: at most LEAD_S ahead of the speaker, so 1.2 s takes about 0.7 s to send
    assert time.monotonic() - t0 >= 1.2 - play.LEAD_S - 0.1
    assert any(f"played {play_id}: done" in line for line in rx.lines)


def test_what_the_device_says_about_a_play_comes_with_its_played(served):
    rx, sessions = served
    dev = rx.connect()
    assert sessions.ready.wait(WAIT_S)
    playback = sessions.sessions[0].play()
    playback.feed(bytes(3200))
    playback.end()
    dev.sock.sendall(P.encode_error(P.ERR_QUEUE_FULL, f"play {playback.play_id}: buffer full"))
    play_id, _ = dev.take_play(dropped=100)
    result = playback.wait()
    assert (result.reason, result.samples, result.dropped) == ("overflow", 1500, 100)
    assert result.errors == (f"play {play_id}: buffer full",)


def test_no_audio_before_the_devices_hello(tmp_path):
    from wakeward import receiver

    rx = InProcess(tmp_path / "store")
    session = receiver.Session(receiver.SocketStream(socket.socketpair()[0]))
    session.protocol = rx.receiver.protocol
    with pytest.raises(WakewardError, match="no hello from the device yet"):
        session.play()
    rx.store.close()


def test_a_device_of_an_older_protocol_version_is_refused_in_its_own_version(rx):
    mine, theirs = socket.socketpair()
    thread = threading.Thread(target=rx._serve, args=(theirs,), daemon=True)
    thread.start()
    hello = bytearray(P.encode_hello("old", "wakeward-0.0", ["alexa"]))
    hello[2] = P.VERSION - 1  # an older device's hello (its CRC made again)
    hello[-4:] = zlib.crc32(bytes(hello[:-4])).to_bytes(4, "little")
    mine.settimeout(WAIT_S)
    mine.sendall(bytes(hello))
    reply = mine.recv(4096)
    thread.join(WAIT_S)
    assert reply[2] == P.VERSION - 1 and reply[3] == P.ERROR  # an error it can decode
    assert b"this receiver speaks protocol version %d" % P.VERSION in reply
    (line,) = rx.having("refused")
    assert line == (
        f"refused a device: it speaks protocol version {P.VERSION - 1}, this receiver "
        f"{P.VERSION}: update the device's firmware (wakeward deploy); connection closed"
    )
    mine.close()


@pytest.fixture
def rx(tmp_path):
    r = InProcess(tmp_path / "store")
    yield r
    r.store.close()
