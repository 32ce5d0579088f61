"""Audio to play on a device's speaker (protocol PLAY_START, PLAY_DATA, PLAY_END and the
device's PLAYED; docs/protocol.md "Audio to play"), from the receiver's side.

    playback = session.play(rate_hz=22050)   # a receiver.Session that said its hello
    playback.feed(pcm)                       # int16 LE at 22,050 Hz, as it comes
    playback.end()
    result = playback.wait()                 # the device's PLAYED: samples, dropped, reason

`Resampler` converts whatever rate, sample width and channel count the audio comes in
(Home Assistant's TTS announces its own: 22,050 Hz is common) to the device's one format,
16 kHz mono int16, with libsoxr (PyPI soxr, its high-quality setting), streaming: the same
samples as converting the whole at once. A `Playback` sends PLAY_START at once, then the
converted audio in PLAY_DATA frames of CHUNK_BYTES from a thread of its own, paced at the
audio rate with at most LEAD_S ahead of the speaker, since the device keeps 1 s of audio
(firmware/play.py) and drops what overflows it; then PLAY_END, and waits for PLAYED.

Only a session whose device has said its hello gets audio (on a TLS receiver that hello
carried a paired device's secret, or the session was refused before): `Session.play`
raises WakewardError before that, so nothing is ever sent to a peer that is not the paired
device. The device plays it only on a link that honours the owner's requests (link.requests:
TLS with the pinned receiver, or USB), and refuses it otherwise with an ERROR and PLAYED
"refused".
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import soxr

from wakeward.errors import WakewardError

if TYPE_CHECKING:
    from wakeward.receiver import Session

DEVICE_RATE_HZ = 16000
CHUNK_BYTES = 4000  # per PLAY_DATA: 125 ms of 16 kHz audio
LEAD_S = 0.5  # the most sent ahead of the speaker (the device buffers 1 s)
PLAYED_TIMEOUT_S = 10.0  # after the audio's end: how long the device's PLAYED may take
WIDTHS = (1, 2, 4)  # sample bytes: unsigned 8-bit, int16, int32 (WAV's conventions)
_QUALITY = "HQ"


class Resampler:
    """Audio at rate_hz (width bytes per sample, channels interleaved) to 16 kHz mono int16,
    a piece at a time: `convert(data)` for each piece, `convert(b"", last=True)` at the end
    (the resampler's tail). Channels are averaged; a piece may end mid-frame."""

    def __init__(self, rate_hz: int, width: int = 2, channels: int = 1) -> None:
        if not 1_000 <= rate_hz <= 384_000:
            raise WakewardError(f"audio at {rate_hz} Hz: expected 1,000 to 384,000 Hz")
        if width not in WIDTHS:
            raise WakewardError(f"audio with {width}-byte samples: expected 1, 2 or 4")
        if not 1 <= channels <= 8:
            raise WakewardError(f"audio with {channels} channels: expected 1 to 8")
        self.rate_hz = rate_hz
        self.width = width
        self.channels = channels
        self._frame = width * channels
        self._held = b""
        self._stream = (
            None
            if rate_hz == DEVICE_RATE_HZ
            else soxr.ResampleStream(rate_hz, DEVICE_RATE_HZ, 1, dtype="float32", quality=_QUALITY)
        )

    def convert(self, data: bytes, last: bool = False) -> bytes:
        data = self._held + bytes(data)
        whole = len(data) - len(data) % self._frame
        self._held = data[whole:]
        x = self._mono(data[:whole])
        if self._stream is not None:
            x = self._stream.resample_chunk(x, last=last)
        return _to_int16(x)

    def _mono(self, data: bytes) -> np.ndarray:
        if self.width == 1:
            x = (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
        elif self.width == 2:
            x = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        else:
            x = (np.frombuffer(data, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
        if self.channels > 1:
            x = x.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        return x


def resample(pcm: bytes, rate_hz: int, width: int = 2, channels: int = 1) -> bytes:
    """All of pcm at once: 16 kHz mono int16 LE."""
    return Resampler(rate_hz, width, channels).convert(pcm, last=True)


def _to_int16(x: np.ndarray) -> bytes:
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype("<i2").tobytes()


@dataclass(frozen=True)
class Played:
    """The device's PLAYED for a play: samples played, dropped (its buffer overflowed, or
    frames were lost), and why it ended (done, overflow, refused, cancelled); `errors`:
    what the device said about it (ERROR messages naming the play)."""

    play_id: int
    samples: int
    dropped: int
    reason: str
    errors: tuple[str, ...] = ()


class Playback:
    """One play to a device session (made by Session.play): feed() and end() from any
    thread; the frames go out from the playback's own thread, paced."""

    def __init__(
        self,
        session: Session,
        protocol: Any,
        play_id: int,
        rate_hz: int = DEVICE_RATE_HZ,
        width: int = 2,
        channels: int = 1,
        *,
        lead_s: float = LEAD_S,
    ) -> None:
        self.session = session
        self.play_id = play_id
        self._p = protocol
        self._resampler = Resampler(rate_hz, width, channels)
        self._lead_samples = int(lead_s * DEVICE_RATE_HZ)
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._ended = False
        self._done = threading.Event()
        self._result: Played | None = None
        self.errors: list[str] = []
        self.sent_samples = 0
        self.gone = False  # the connection went before all of it was sent
        if not session.send(protocol.encode_play_start(play_id)):
            self.gone = True
        self._thread = threading.Thread(target=self._send, name=f"play-{play_id}", daemon=True)
        self._thread.start()

    def feed(self, data: bytes) -> None:
        """More audio, in the format given to Session.play."""
        if self._ended:
            raise WakewardError(f"play {self.play_id}: audio after its end")
        pcm = self._resampler.convert(data)
        if pcm:
            self._queue.put(pcm)

    def end(self) -> None:
        """No more audio: the rest goes out, then PLAY_END."""
        if self._ended:
            return
        self._ended = True
        tail = self._resampler.convert(b"", last=True)
        if tail:
            self._queue.put(tail)
        self._queue.put(None)

    def wait(self, timeout_s: float | None = None) -> Played:
        """The device's PLAYED (after end()); WakewardError when it does not come in time
        (by default: the audio's length plus PLAYED_TIMEOUT_S from now) or the connection
        has gone."""
        if timeout_s is None:
            left = self.sent_samples / DEVICE_RATE_HZ + self._queue.qsize() * 0.5
            timeout_s = left + PLAYED_TIMEOUT_S
        if not self._done.wait(timeout_s):
            if self.gone:
                raise WakewardError(f"play {self.play_id}: the device's connection has gone")
            raise WakewardError(f"play {self.play_id}: no played from the device in time")
        assert self._result is not None
        return self._result

    def played(self, msg: dict) -> None:
        """The device's PLAYED (the receiver's session thread)."""
        self._result = Played(
            msg["play_id"],
            msg["samples"],
            msg["dropped"],
            self._p.PLAY_ENDS[msg["reason"]],
            tuple(self.errors),
        )
        self._done.set()

    def lost(self) -> None:
        """The session has ended without a PLAYED."""
        self.gone = True
        self._done.set()

    def _send(self) -> None:
        p = self._p
        seq = 0
        started = None
        pending = b""
        finished = False
        while not finished:
            item = self._queue.get()
            if item is None:
                finished = True
            else:
                pending += item
            while len(pending) >= CHUNK_BYTES or (finished and pending):
                chunk, pending = pending[:CHUNK_BYTES], pending[CHUNK_BYTES:]
                if started is None:
                    started = time.monotonic()
                # at most lead_s ahead of the speaker, which plays from (about) the start
                ahead = self.sent_samples - (time.monotonic() - started) * DEVICE_RATE_HZ
                wait_s = (ahead - self._lead_samples) / DEVICE_RATE_HZ
                if wait_s > 0:
                    time.sleep(wait_s)
                if not self.session.send(p.encode_play_data(self.play_id, seq, chunk)):
                    self.lost()
                    return
                seq += 1
                self.sent_samples += len(chunk) // 2
        if not self.session.send(p.encode_play_end(self.play_id, self.sent_samples)):
            self.lost()
