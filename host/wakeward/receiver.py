"""`wakeward listen`: the receiver on the owner's PC. It speaks the firmware's own protocol
module (firmware/protocol.py, loaded by path) over a byte stream (a TCP or TLS connection
here, a serial port in serialreceiver.py: one session handler, Receiver.handle, for all),
prints the device's log lines and messages, puts each finished clip into the clip store
(wakeward/store.py) and only then acknowledges it, so an acknowledged clip is on the
owner's disk for good.

A clip is stored once: the device resends every clip it has no acknowledgement for (after a
reconnect, or a reboot), and the store recognises a clip it already has (same device, clip
id and audio; one the owner deleted since too) and gives back its row, and the clip is
acknowledged again without a second copy. The store is on disk, so this holds across
receiver restarts. A clip is stored only when it is complete (its clip_data sequence has no
gap and adds up to the clip_end's sample count); a clip cut off by a dropped connection is
never written. After the ack the store's retention setting is applied, and the `on_clip`
hook (`wakeward listen --exec`) gets the new clip. Each device's last status message (its
counters: clips sent, acknowledged, queued and dropped, audio bytes sent, uptime, mute,
seconds monitored and recordings made for the owner's requests, time listened) is kept in the
store folder as <device>.status.json, and its time listened is added up in the store's index
(ClipStore.add_listened, per device and per model its hello announced) for the review
page's false wakes per hour.

The owner's requests (devicerequests.py, firmware/request.py): a `listener`
(SessionListener) hears of each device's hello and gets the session, whose `send` writes a
request to the device beside the receiver's acks; it gets the device's `outputs`,
`request_end`, `detection` and `error` messages, and each complete recording (a clip whose
clip_start has kind 1). A recording never goes into the clip store: the listener takes it
and the ack goes out only once `listener.recording` has returned (a listener that raises
WakewardError leaves it unacknowledged, and the device sends it again). Without a listener
(`wakeward listen`), or when the listener did not ask for it, a recording is acknowledged
and discarded, and said so: whoever asked for it has gone.

Live audio (link/satellite.py): a `clips` listener (ClipListener) hears each detection
clip's frames as they arrive, while the device is still capturing: its clip_start, each
clip_data's audio in order, and its end (the device's clip_end, or the clip cut off: the
connection closed, the device started over, a limit). It only hears: the clip goes into
the store and is acknowledged exactly as without it.

Audio to play (play.py): `Session.play` streams audio to the device's speaker on a session
whose device has said its hello (on a TLS receiver: a paired one); the device's `played`
and the errors it says about a play go back to that play. A peer that speaks another
protocol version is refused at its first frame: the receiver says which side to update and
tells the peer in an ERROR of the peer's own version, which it can read.

Limits (docs/security.md): whoever can reach the port can open connections, so the receiver
bounds what any peer can make it hold. At most MAX_CONNECTIONS connections at once (fewer
when the process may open fewer files: FDS_KEPT_FREE stay free for the clip store); when all
are taken, the oldest connection that has not said its hello yet is closed to make room (a
device says it at once), else the newcomer is refused. A connection must say its hello
within HELLO_TIMEOUT_S of connecting (over TLS: of its handshake). A session may have
MAX_OPEN_CLIPS clips under way at once, each at most the protocol's longest clip
(MAX_CLIP_MS, plus CLIP_SLACK_MS) at a rate of at most MAX_RATE_HZ. A peer over a limit is
refused with one line and its connection closed; on a serial port (the owner's cable,
nothing to close) its clips under way are dropped and the session goes on. Running out of
file descriptors anyway (accept() fails with EMFILE) is said once, and the oldest
connection without a hello is closed to make room; the receiver keeps listening.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import ipaddress
import json
import re
import resource
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from wakeward import unixport
from wakeward.errors import WakewardError
from wakeward.link.servicelog import error, same_level, warning
from wakeward.printable import printable
from wakeward.store import Clip, ClipStore, local_time

if TYPE_CHECKING:
    from wakeward.pairing import Pairing
    from wakeward.play import Playback

_RECV_BYTES = 4096
ALL_INTERFACES = "0.0.0.0"  # `--tcp :PORT`: the usual convention for "listen on every one"
MAX_PORT = 0xFFFF  # TCP ports are 16-bit; 0 lets the system pick one
_ACCEPT_POLL_S = 0.2  # with a stop event: how often the accept loop looks at it
# Connections the kernel holds for accept(): room for a burst, so a device that connects
# during one is not left to TCP's retries (seconds).
LISTEN_BACKLOG = 1024
# A connection silent this long is closed: the device sends a status message at least every
# 10 minutes (config.py, link.status_interval_ms), so it has gone without closing.
IDLE_TIMEOUT_S = 900.0
# The receiver's limits on what a peer can make it hold (the module's docstring).
MAX_CONNECTIONS = 64  # connections at once; a home has a few devices, each needs one
FDS_KEPT_FREE = 32  # file descriptors left to the clip store, --exec and TLS
HELLO_TIMEOUT_S = 10.0  # from the connect (TLS: the handshake) to the hello
MAX_OPEN_CLIPS = 2  # clips under way in one session (a device streams one at a time)
CLIP_SLACK_MS = 1000  # beyond the protocol's MAX_CLIP_MS: the recorder's last frame
MAX_RATE_HZ = 48_000  # the boards record at 16 kHz; no microphone here goes beyond this
SAMPLE_BYTES = 2  # int16 PCM
MS_PER_S = 1000  # status.listened_s counts seconds, listened_rem_ms the ms past them
_ACCEPT_RETRY_S = 0.1  # after accept() failed for want of file descriptors
# accept()'s errors that say this process or the system is out of descriptors or memory
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
# TLS: how long a handshake may take, and how long a refused device gets to read the error
# before its connection closes.
HANDSHAKE_TIMEOUT_S = 10.0
_REFUSE_LINGER_S = 1.0
_REFUSED_MESSAGE = "refused: this device is not paired with this receiver (wakeward pair)"
# OpenSSL's reasons for a failed handshake, as the owner should read them.
_HANDSHAKE_FAILURES = {
    "TLSV1_ALERT_UNKNOWN_CA": "the device does not trust this receiver's certificate "
    "(it is paired with another receiver: deploy it again)",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the device refused this receiver's certificate "
    "(it is paired with another receiver: deploy it again)",
    "WRONG_VERSION_NUMBER": "not TLS (a device deployed for plain TCP? pair it and deploy it)",
    "HTTP_REQUEST": "not TLS (an HTTP request)",
}


def load_protocol() -> ModuleType:
    """The firmware's protocol.py with protocol_play.py's messages registered in it (the
    device loads that part at its first play; docs/protocol.md): one module that encodes
    and decodes every message, whose public names include protocol_play's."""
    module = _load_firmware_module("protocol")
    play = _load_firmware_module("protocol_play")
    play.register(module)
    for name in dir(play):
        if name.startswith(("PLAY", "encode_")):  # its constants and typed helpers
            setattr(module, name, getattr(play, name))
    return module


def _load_firmware_module(name: str) -> ModuleType:
    path = unixport.firmware_dir() / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"wakeward_{name}", path)
    if spec is None or spec.loader is None:
        raise WakewardError(f"{path}: cannot load the protocol module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def max_clip_bytes(rate_hz: int, max_clip_ms: int) -> int:
    """The most audio a clip at rate_hz may carry (the protocol's longest, with slack)."""
    return rate_hz * (max_clip_ms + CLIP_SLACK_MS) // 1000 * SAMPLE_BYTES


def say_line(line: str) -> None:
    """Print one line whole: the sessions' threads print at once (print writes the line and
    its newline apart, so two threads' lines could run together)."""
    with _SAY_LOCK:
        print(line, flush=True)


_SAY_LOCK = threading.Lock()


class OverLimit(Exception):
    """A peer went over one of the receiver's limits: the line to print (after the peer's
    name) and the text of the ERROR the device gets."""

    def __init__(self, why: str, tell: str) -> None:
        super().__init__(why)
        self.why = why
        self.tell = tell


class NoHello(TimeoutError):
    """The hello deadline passed before the hello came."""


def safe_name(device_id: str) -> str:
    """A device id as a file name part: anything but letters, digits, '-' and '_' becomes
    '_' (the id is the device's word, not to be trusted with paths)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", device_id)[:64] or "_"


class ByteStream(Protocol):
    """What a session runs over: a TCP or TLS connection, or a serial port."""

    def read(self) -> bytes:
        """The bytes that have arrived, waiting for some; b"" once the stream has ended.
        TimeoutError when it has been silent too long, OSError when it fails."""
        ...

    def write(self, data: bytes) -> None:
        """All of data, or OSError."""
        ...

    def linger(self) -> None:
        """After a refusal: send nothing more, and give the device a moment to read it."""
        ...

    def close(self) -> None:
        """End the session from this side: read() returns b"" (or fails) from now on."""
        ...

    def greeted(self) -> None:
        """The peer said its hello (over TLS: an accepted one): no hello deadline now."""
        ...


class SocketStream:
    """A TCP or TLS connection as a ByteStream. With `hello_timeout_s`, read() raises NoHello
    once that long has passed without greeted() (a trickle of bytes does not extend it)."""

    def __init__(self, conn: socket.socket, hello_timeout_s: float | None = None) -> None:
        self.conn = conn
        self.hello_by = None if hello_timeout_s is None else time.monotonic() + hello_timeout_s
        self._timeout_s = conn.gettimeout()  # the idle timeout, once the hello has come

    def read(self) -> bytes:
        if self.hello_by is None:
            return self.conn.recv(_RECV_BYTES)
        left = self.hello_by - time.monotonic()
        if left <= 0:
            raise NoHello
        self.conn.settimeout(left if self._timeout_s is None else min(left, self._timeout_s))
        try:
            return self.conn.recv(_RECV_BYTES)
        except TimeoutError:
            if self.hello_by is not None and time.monotonic() >= self.hello_by:
                raise NoHello from None
            raise

    def greeted(self) -> None:
        if self.hello_by is not None:
            self.hello_by = None
            self.conn.settimeout(self._timeout_s)

    def waiting(self) -> bool:
        """No hello yet (its deadline runs)."""
        return self.hello_by is not None

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)

    def linger(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_WR)
            self.conn.settimeout(_REFUSE_LINGER_S)
            end = time.monotonic() + _REFUSE_LINGER_S
            while time.monotonic() < end and self.conn.recv(_RECV_BYTES):
                pass  # what it sent meanwhile is dropped unread

    def close(self) -> None:
        # the reading side only, so an ack on its way still goes out; and on the socket
        # itself: SSLSocket.shutdown would drop the TLS session under a write in progress
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.conn, socket.SHUT_RD)


class Session:
    """One device connection: who it is, its clips under way, and the way to write to it
    (acks, and the owner's requests from another thread)."""

    def __init__(self, stream: ByteStream, peer: str = "a device", attached: bool = False) -> None:
        self.stream = stream
        self.attached = attached  # the device's own cable (a serial port): never closed here
        self.dropped_clip: int | None = None  # over a limit on a serial port: its frames go
        self.device = "device"
        self.firmware = ""
        self.models: list[str] = []
        self.open: dict[int, dict] = {}
        self.new_clips: list[Clip] = []  # stored, their ack on its way: for _after_ack
        self.peer = peer
        self.accepted = False  # a TLS receiver: its hello carried a paired device's secret
        self._write_lock = threading.Lock()
        self.said_hello = False
        self.said_version = False  # another protocol version's frames, said (a cable)
        # audio may go to the device: it said its hello (and was accepted), or the
        # session is its own cable
        self.established = attached
        self.protocol: ModuleType | None = None  # set by the Receiver
        self.plays: dict = {}  # play id -> play.Playback under way
        self._next_play = 0

    def who(self) -> str:
        """The peer in a line: its device id once it said hello, and where it is."""
        if not self.said_hello:
            return self.peer
        return f"{safe_name(self.device)} ({self.peer})"

    def send(self, frame: bytes) -> bool:
        """Write one frame to the device; False when the connection has gone."""
        with self._write_lock:
            try:
                self.stream.write(frame)
            except OSError:
                return False
        return True

    def play(self, rate_hz: int = 16000, width: int = 2, channels: int = 1) -> Playback:
        """Start playing audio on the device's speaker (play.py): feed() it audio in this
        format, end() it, wait() for the device's played. WakewardError before the
        device's hello: nothing goes to a peer that has not shown who it is."""
        from wakeward.play import Playback

        if not self.established or self.protocol is None:
            raise WakewardError(
                f"{self.who()}: no hello from the device yet, so no audio goes to it"
            )
        with self._write_lock:
            self._next_play = self._next_play % 0x3FFFFFFF + 1  # a small int on the device
            play_id = self._next_play
        playback = Playback(self, self.protocol, play_id, rate_hz, width, channels)
        self.plays[play_id] = playback
        return playback

    def _played(self, msg: dict) -> None:
        playback = self.plays.pop(msg["play_id"], None)
        if playback is not None:
            playback.played(msg)

    def _play_error(self, message: str) -> None:
        """An ERROR from the device about a play ("play N: ..." / "play N refused: ...")."""
        m = re.match(r"play (\d+)\b", message)
        playback = self.plays.get(int(m.group(1))) if m else None
        if playback is not None:
            playback.errors.append(message)

    def _ended(self) -> None:
        for playback in self.plays.values():
            playback.lost()
        self.plays.clear()


@dataclass(frozen=True)
class Recording:
    """A recording the device made for a record request (clip_start kind 1): whole, as
    its clip_end counts it."""

    device: str
    request_id: int
    clip_id: int
    pcm: bytes  # int16 LE mono
    rate_hz: int
    end_reason: str  # max_length: all the request asked for; muted, cancelled: cut short


class SessionListener(Protocol):
    """Whoever sends the owner's requests on a receiver's sessions (devicerequests.py).
    Called from the session's thread; only `recording` may wait (its ack waits for it)."""

    def hello(self, session: Session) -> None:
        """A device said hello (on a TLS receiver: a paired one), or a serial session
        began: `session.send` reaches the device."""
        ...

    def message(self, session: Session, msg: dict) -> None:
        """The device's detection, outputs, request_end and error messages."""
        ...

    def recording(self, session: Session, recording: Recording) -> bool:
        """A complete recording: True once the listener has it safely (then the ack goes
        out), False when it did not ask for it (acknowledged and discarded). WakewardError:
        not taken, not acknowledged."""
        ...

    def closed(self, session: Session) -> None:
        """The session has ended."""
        ...


class ClipListener(Protocol):
    """Whoever follows detection clips live, frame by frame (link/satellite.py). Called
    from the session's thread as the frames arrive; must not block (the acks wait)."""

    def clip_started(self, session: Session, start: dict) -> None:
        """A detection clip's clip_start (clip_id, model, score, rate_hz, pre_roll_ms)."""
        ...

    def clip_audio(self, session: Session, clip_id: int, pcm: bytes) -> None:
        """The next audio of a clip under way (int16 LE mono), in order, no gap."""
        ...

    def clip_ended(self, session: Session, clip_id: int, reason: str | None) -> None:
        """Its clip_end arrived (reason: end_of_speech, max_length, ...; before it is
        stored), or None: it was cut off or dropped and will not be stored."""
        ...


class Receiver:
    """Turns device connections' bytes into clips in the store (one thread per connection).

    `on_clip` is called with each newly stored clip after its ack has been sent (and after
    retention, if that left the clip); it must not block (`clipexec.ClipCommand.submit`).

    With `pairing` (a TLS receiver, serve_tcp) a connection must start with a hello that
    carries a paired, not revoked device's secret; anything else is refused before any of
    it is stored or printed."""

    pairing: Pairing | None = None

    def __init__(
        self,
        store: ClipStore,
        say: Callable[[str], None] = say_line,
        *,
        on_clip: Callable[[Clip], None] | None = None,
        listener: SessionListener | None = None,
        clips: ClipListener | None = None,
    ):
        self.protocol = load_protocol()
        self.store = store
        # every line goes out printable: device ids, model names, log lines are the device's
        self.say: Callable[[str], None] = lambda line: say(same_level(line, printable(line)))
        self.on_clip = on_clip
        self.listener = listener
        self.clip_listener = clips
        self.clips: list[Clip] = []  # stored by this receiver, in order (not the resends)
        self.duplicates = 0
        self.devices: set[str] = set()  # the devices that said hello (their ids)
        self.audio_bytes = 0
        self.statuses: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._streams: set = set()  # of the sessions under way (stop)

    def stop(self) -> None:
        """End every session under way from this side (their handle() calls return)."""
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.close()

    def handle(self, stream: ByteStream, peer: str = "a device", *, attached: bool = False) -> None:
        """One session: the stream's bytes until it ends, acks written back to it.
        `attached`: the stream is the device's own cable (a serial port the owner named),
        so the listener hears of the session at once, not only at a hello (a device whose
        link is up sends one only when its link starts over)."""
        session = Session(stream, peer, attached)
        session.protocol = self.protocol
        with self._lock:
            self._streams.add(stream)
        try:
            if attached and self.listener is not None:
                self.listener.hello(session)
            self._handle(stream, session)
        finally:
            with self._lock:
                self._streams.discard(stream)
            session._ended()
            if self.listener is not None:
                self.listener.closed(session)

    def _handle(self, stream: ByteStream, session: Session) -> None:
        decoder = self.protocol.Decoder()
        while True:
            try:
                data = stream.read()
            except NoHello:
                self.say(
                    warning(
                        f"refused {session.peer}: no hello within {HELLO_TIMEOUT_S:g} s of "
                        "connecting; connection closed"
                    )
                )
                data = b""
            except TimeoutError:
                self.say(f"{session.device}: silent for {IDLE_TIMEOUT_S:.0f} s; connection closed")
                data = b""
            except OSError:
                data = b""
            if not data:
                break
            decoder.feed(data)
            for kind, item in decoder:
                if kind == self.protocol.ERR and item.version is not None:
                    if self._other_version(session, item.version):
                        return
                    continue
                refusal = self._refusal(session, kind, item)
                if refusal is not None:
                    self._refuse(stream, refusal)
                    return
                try:
                    reply = self._item(session, kind, item)
                except OverLimit as e:
                    if not session.attached:
                        self._refuse(
                            stream, f"refused {session.who()}: {e.why}; connection closed", e.tell
                        )
                        return
                    self._drop_open(session, e)
                    continue
                if reply:
                    # False: the device has gone; the clip is saved, it resends if unacked
                    session.send(reply)
                self._after_ack(session)
        decoder.finish()
        for kind, item in decoder:
            refusal = self._refusal(session, kind, item)
            if refusal is not None:
                self.say(warning(refusal))
                break
            try:
                self._item(session, kind, item)
            except OverLimit as e:
                self.say(warning(f"{session.who()}: {e.why}; not kept"))
                break
        self._after_ack(session)
        self._forget_open(session, "the connection closed")

    def _drop_open(self, session: Session, over: OverLimit) -> None:
        """Over a limit on a serial port (nothing to close): the clips under way are
        dropped, and the frames of the one that went over are dropped unsaid."""
        self.say(warning(f"{session.who()}: {over.why}; not kept (nor the other clips under way)"))
        for clip_id in list(session.open):
            self._cut_off(session, clip_id)
        session.open.clear()

    def _forget_open(self, session: Session, why: str) -> None:
        """Clips under way that will not end: a hello (on a serial port, where the
        device's link starts over without the stream ending) or the end of the stream."""
        for clip_id in list(session.open):
            self.say(f"clip {clip_id}: {why} before its end; not kept")
            self._cut_off(session, clip_id)
            del session.open[clip_id]

    def _cut_off(self, session: Session, clip_id: int) -> None:
        """A clip under way that will not be stored: its live listener hears it ended."""
        clip = session.open.get(clip_id)
        if self.clip_listener is not None and clip is not None and clip.get("live"):
            self.clip_listener.clip_ended(session, clip_id, None)

    def _refusal(self, session: Session, kind: str, item) -> str | None:
        """On a TLS receiver, why this item ends the connection (the line to print), else
        None. Each hello is checked against the pairing folder (read again each time, so a
        revocation holds from the next connection on); nothing before an accepted hello
        gets through."""
        if self.pairing is None:
            return None
        p = self.protocol
        if kind != p.MSG or item["type"] != "hello":
            if session.accepted:
                return None
            what = {p.LOG: "bytes that are not a frame", p.ERR: f"a bad frame ({item})"}
            first = what.get(kind) or f"a {item['type']} message"
            return f"refused {session.peer}: {first} before its hello"
        session.accepted = False
        try:
            why = self.pairing.refusal(item["device_id"], item["auth"])
        except WakewardError as e:  # the pairing folder is unreadable or too open
            why = f"cannot check its pairing ({e})"
        if why is not None:
            return f"refused {safe_name(item['device_id'])}: {why}"
        session.accepted = True
        return None

    def _other_version(self, session: Session, version: int) -> bool:
        """A frame of another protocol version: the peer is refused (True: the connection
        is closed), told in an ERROR of its own version; on the device's own cable, which
        stays open, said once per session (False)."""
        p = self.protocol
        side = (
            "the device's firmware (wakeward deploy)"
            if version < p.VERSION
            else "wakeward on this PC"
        )
        why = f"it speaks protocol version {version}, this receiver {p.VERSION}: update {side}"
        tell = f"refused: this receiver speaks protocol version {p.VERSION}, the device {version}"
        if session.attached:
            if not session.said_version:
                session.said_version = True
                self.say(warning(f"{session.who()}: {why}; its frames are not read"))
            return False
        self._refuse(
            session.stream,
            f"refused {session.who()}: {why}; connection closed",
            tell,
            code=p.ERR_VERSION,
            version=version,
        )
        return True

    def _refuse(
        self,
        stream: ByteStream,
        refusal: str,
        tell: str = _REFUSED_MESSAGE,
        *,
        code: int | None = None,
        version: int | None = None,
    ) -> None:
        """Say why, tell the device (an ERROR it can log: of its own protocol version,
        when that is another), and let it read that before the connection closes."""
        self.say(warning(refusal))
        p = self.protocol
        try:
            stream.write(
                p.encode_error(
                    p.ERR_REFUSED if code is None else code,
                    tell,
                    p.VERSION if version is None else version,
                )
            )
        except OSError:
            return
        stream.linger()

    def _item(self, session: Session, kind: str, item) -> bytes | None:
        p = self.protocol
        if kind == p.LOG:
            self.say(f"device: {bytes(item).decode(errors='replace').rstrip()}")
            return None
        if kind == p.ERR:
            self.say(warning(f"protocol error: {item}"))
            return None
        kind = item["type"]
        if kind == "hello":
            self._forget_open(session, "the device started over")
            session.device = item["device_id"]
            session.firmware = item["firmware"]
            session.models = list(item["models"])
            session.said_hello = True
            with self._lock:
                self.devices.add(session.device)
            session.established = True  # past _refusal: on a TLS receiver, a paired device
            session.dropped_clip = None
            session.stream.greeted()
            self.say(
                f"hello from {item['device_id']} (firmware {item['firmware']}, "
                f"protocol {item['protocol']}, models: {', '.join(item['models']) or 'none'})"
            )
            if self.listener is not None:
                self.listener.hello(session)
        elif kind == "clip_start":
            self._check_clip_start(session, item)
            session.open[item["clip_id"]] = {
                **item,
                "pcm": bytearray(),
                "next_seq": 0,
                "gap": False,
                "received": time.time(),
                "live": False,  # its frames go to the clip listener
            }
            if item["kind"] == self.protocol.CLIP_RECORDING:
                self.say(
                    f"recording {item['clip_id']} started on {session.device} "
                    f"(request {item['request_id']})"
                )
            else:
                self.say(
                    f"clip {item['clip_id']} started: {item['model']} (score {item['score']}), "
                    f"{item['pre_roll_ms']} ms of pre-roll"
                )
                if self.clip_listener is not None:
                    session.open[item["clip_id"]]["live"] = True
                    self.clip_listener.clip_started(session, item)
        elif kind == "clip_data":
            clip = session.open.get(item["clip_id"])
            if clip is None:
                if item["clip_id"] != session.dropped_clip:
                    session.dropped_clip = item["clip_id"]  # said once, not once a frame
                    self.say(f"clip data for unknown clip {item['clip_id']}: dropped")
                return None
            if item["seq"] != clip["next_seq"]:
                clip["gap"] = True
            clip["next_seq"] = item["seq"] + 1
            most = max_clip_bytes(clip["rate_hz"], self.protocol.MAX_CLIP_MS)
            if len(clip["pcm"]) + len(item["pcm"]) > most:
                session.dropped_clip = item["clip_id"]
                raise OverLimit(
                    f"clip {item['clip_id']} is longer than {self.protocol.MAX_CLIP_MS / 1000:g} s "
                    f"(the longest a clip can be: {most} bytes at {clip['rate_hz']} Hz)",
                    "refused: a clip longer than the protocol allows",
                )
            clip["pcm"] += item["pcm"]
            with self._lock:
                self.audio_bytes += len(item["pcm"])
            if self.clip_listener is not None and clip["live"]:
                if clip["gap"]:  # the audio has a hole: the listener hears no more of it
                    clip["live"] = False
                    self.clip_listener.clip_ended(session, item["clip_id"], None)
                else:
                    self.clip_listener.clip_audio(session, item["clip_id"], bytes(item["pcm"]))
        elif kind == "clip_end":
            return self._clip_end(session, item)
        elif kind == "status":
            self._status(session, item)
        elif kind == "detection":
            self.say(
                f"detection on {session.device or 'a device'}: {item['model']} "
                f"(score {item['score']}) at {item['time_ms'] / 1000:.2f} s device time"
            )
            if self.listener is not None:
                self.listener.message(session, item)
        elif kind == "played":
            self.say(
                f"{session.device} played {item['play_id']}: "
                f"{self.protocol.PLAY_ENDS[item['reason']]}, {item['samples']} samples played, "
                f"{item['dropped']} dropped"
            )
            session._played(item)
            if self.listener is not None:
                self.listener.message(session, item)
        elif kind == "error" and item["message"].startswith("play "):
            self.say(f"{session.device} says: {item['message']}")
            session._play_error(item["message"])
            if self.listener is not None:
                self.listener.message(session, item)
        elif self.listener is not None and kind in ("outputs", "request_end", "error"):
            if kind == "error":
                self.say(f"{session.device} says: {item['message']}")
            self.listener.message(session, item)
        elif kind == "outputs":
            self.say(f"outputs from {session.device}: {item['model']}, nobody here asked")
        else:
            self.say(f"{kind}: {item}")
        return None

    def _check_clip_start(self, session: Session, start: dict) -> None:
        """OverLimit for a clip this receiver does not take: a rate no device records at,
        or one clip under way too many."""
        clip_id = start["clip_id"]
        rate_hz = start["rate_hz"]
        if not 0 < rate_hz <= MAX_RATE_HZ:
            session.dropped_clip = clip_id
            raise OverLimit(
                f"clip {clip_id} at {rate_hz} Hz (a device records at 1 to {MAX_RATE_HZ} Hz)",
                "refused: a clip at a sample rate this receiver does not take",
            )
        if clip_id not in session.open and len(session.open) >= MAX_OPEN_CLIPS:
            session.dropped_clip = clip_id
            raise OverLimit(
                f"clip {clip_id} would be one more than {MAX_OPEN_CLIPS} clips under way "
                "at once (the most)",
                "refused: too many clips under way at once",
            )

    def _clip_end(self, session: Session, end: dict) -> bytes | None:
        clip_id = end["clip_id"]
        clip = session.open.pop(clip_id, None)
        if clip is None:
            if clip_id == session.dropped_clip:
                return None  # said when it went over a limit
            self.say(f"end of unknown clip {clip_id}")
            return None
        if self.clip_listener is not None and clip["live"]:
            complete = not clip["gap"] and len(clip["pcm"]) // 2 == end["samples"]
            reason = self.protocol.REASONS[end["reason"]] if complete else None
            self.clip_listener.clip_ended(session, clip_id, reason)
        samples = len(clip["pcm"]) // 2
        what = "recording" if clip["kind"] == self.protocol.CLIP_RECORDING else "clip"
        if clip["gap"] or samples != end["samples"]:
            gap = ", frames missing" if clip["gap"] else ""
            self.say(
                f"{what} {clip_id}: incomplete ({samples} of {end['samples']} samples{gap}); "
                "not kept, not acknowledged"
            )
            return None
        ended_by = self.protocol.REASONS[end["reason"]]
        if what == "recording":
            return self._recording_end(session, clip, ended_by)
        with self._lock:
            try:
                added = self.store.add(
                    clip["pcm"],
                    device=session.device,
                    device_clip_id=clip_id,
                    model=clip["model"],
                    score=clip["score"],
                    rate_hz=clip["rate_hz"],
                    pre_roll_ms=clip["pre_roll_ms"],
                    end_reason=ended_by,
                    received_at=clip["received"],
                )
            except (WakewardError, OSError, sqlite3.Error) as e:
                self.say(
                    f"clip {clip_id}: cannot store it ({e}); not acknowledged, the device "
                    "keeps it and sends it again"
                )
                return None
            stored = added.clip
            if not added.added:
                self.duplicates += 1
                gone = (
                    f", deleted {local_time(stored.deleted_at or 0)} ({stored.deleted_by})"
                    if stored.deleted
                    else ""
                )
                if added.restored:  # its WAV had gone (not deleted on purpose): written again
                    gone = f", its audio file had gone: restored {stored.path}"
                self.say(
                    f"clip {clip_id}: already stored as clip {stored.id}{gone}; acknowledged again"
                )
            else:
                self.clips.append(stored)
                session.new_clips.append(stored)
                self.say(
                    f"clip {clip_id}: {stored.model} (score {stored.score}), "
                    f"{stored.duration_s:.2f} s, ended by {ended_by} -> "
                    f"clip {stored.id}: {stored.path}"
                )
        return self.protocol.encode_ack(clip_id)

    def _recording_end(self, session: Session, clip: dict, ended_by: str) -> bytes | None:
        """A complete recording: to the listener, acknowledged once it has it; never into
        the clip store."""
        clip_id = clip["clip_id"]
        recording = Recording(
            device=session.device,
            request_id=clip["request_id"],
            clip_id=clip_id,
            pcm=bytes(clip["pcm"]),
            rate_hz=clip["rate_hz"],
            end_reason=ended_by,
        )
        taken = False
        if self.listener is not None:
            try:
                taken = self.listener.recording(session, recording)
            except WakewardError as e:
                self.say(f"recording {clip_id}: {e}; not acknowledged, the device sends it again")
                return None
        if not taken:
            self.say(
                f"recording {clip_id} (request {recording.request_id}) from {session.device}: "
                "nobody here asked for it; acknowledged and discarded"
            )
        return self.protocol.encode_ack(clip_id)

    def _after_ack(self, session: Session) -> None:
        """Once a new clip's ack has gone out: retention, then the on_clip hook."""
        while session.new_clips:
            clip = session.new_clips.pop(0)
            with self._lock:
                try:
                    removed = self.store.apply_retention()
                except (WakewardError, OSError, sqlite3.Error) as e:
                    self.say(error(f"retention: {e}"))
                    removed = []
            for old in removed:
                self.say(
                    f"retention: deleted clip {old.id} ({old.device}, {old.model}, received "
                    f"{local_time(old.received_at)}): {old.path.name}"
                )
            if any(old.id == clip.id for old in removed):
                continue  # retention took it at once: nothing for the hook to read
            if self.on_clip is not None:
                self.on_clip(clip)

    def _status(self, session: Session, status: dict) -> None:
        fields = {k: v for k, v in status.items() if k != "type"}
        record = {"device": session.device, "firmware": session.firmware, **fields}
        record["received"] = time.time()
        listened_ms = status["listened_s"] * MS_PER_S + status["listened_rem_ms"]
        with self._lock:
            self.statuses[session.device] = record
            try:
                self.store.write_status(session.device, json.dumps(record, indent=1) + "\n")
            except OSError as e:
                self.say(
                    error(f"status from {session.device}: cannot write its file ({e.strerror})")
                )
            if status["listened_rem_ms"] >= MS_PER_S:
                self.say(
                    warning(
                        f"status from {session.device}: listened_rem_ms "
                        f"{status['listened_rem_ms']} is not 0..999: its time listened is "
                        "not counted"
                    )
                )
            elif session.device is not None:
                try:
                    self.store.add_listened(
                        session.device,
                        session.models,
                        listened_ms,
                        status["uptime_ms"],
                        record["received"],
                    )
                except WakewardError as e:
                    self.say(error(f"status from {session.device}: time listened not counted: {e}"))
        self.say(
            f"status from {session.device}: up {status['uptime_ms'] / 1000:.1f} s, "
            f"clips sent {status['clips_sent']}, acknowledged {status['clips_acked']}, "
            f"queued {status['queued']}, dropped {status['clips_dropped']}, "
            f"audio bytes sent {status['audio_bytes']}, "
            f"{'muted' if status['muted'] else 'listening'}, free heap {status['free_heap']}, "
            f"monitored {status['monitor_s']} s, recordings {status['recordings']}, "
            f"listened {listened_ms / MS_PER_S:.1f} s"
        )


def parse_tcp(text: str) -> tuple[str, int]:
    """`--tcp HOST:PORT` as every command takes it: (host, port); an empty host (`:7000`)
    is every interface (ALL_INTERFACES), as elsewhere."""
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise WakewardError(f"--tcp {text!r} is not HOST:PORT")
    if int(port) > MAX_PORT:
        raise WakewardError(f"--tcp {text!r} is not HOST:PORT (a port is 0 to {MAX_PORT})")
    return host or ALL_INTERFACES, int(port)


def serve_tcp(
    host: str,
    port: int,
    store_dir: Path | None = None,
    *,
    say: Callable[[str], None] = say_line,
    connections: int | None = None,
    on_listening: Callable[[int], None] | None = None,
    on_clip: Callable[[Clip], None] | None = None,
    pairing: Pairing | None = None,
    listener: SessionListener | None = None,
    clips: ClipListener | None = None,
    stop: threading.Event | None = None,
) -> Receiver:
    """Accept device connections (all of them, or `connections` of them) and receive, each
    connection in its own thread (a device that reconnects while its old connection has not
    timed out yet is not kept waiting), into the clip store in `store_dir` (default: the
    store's default folder).

    With `pairing`: TLS with the receiver's identity from that pairing folder, and only its
    paired devices are admitted (Receiver). Without: plain TCP, any device that reaches the
    port can send clips (a warning says so unless the port is on loopback). `listener`: the
    owner's requests, `clips`: live clip audio (Receiver). Once `stop` is set it accepts no
    more connections, ends those under way and returns."""
    context = pairing.server_context() if pairing is not None else None
    with ClipStore(store_dir) as store:
        for line in store.recovery.lines():
            say(f"clip store: {line}")
        receiver = Receiver(store, say, on_clip=on_clip, listener=listener, clips=clips)
        receiver.pairing = pairing
        return _serve(host, port, receiver, connections, on_listening, context, stop)


def _serve(
    host: str,
    port: int,
    receiver: Receiver,
    connections: int | None,
    on_listening: Callable[[int], None] | None,
    context: ssl.SSLContext | None = None,
    stop: threading.Event | None = None,
) -> Receiver:
    say = receiver.say
    try:
        server = socket.create_server((host, port), backlog=LISTEN_BACKLOG)
    except OSError as e:
        raise WakewardError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    threads: list[threading.Thread] = []
    table = _Connections(connections_at_once(), say)
    with server:
        bound = server.getsockname()[1]
        say(
            f"listening on {host}:{bound}, clips go to the clip store in "
            f"{receiver.store.folder} ({receiver.store.retention().describe()})"
        )
        security = _security_line(server, receiver.pairing)
        if security is not None:
            say(security)
        if on_listening is not None:
            on_listening(bound)
        if stop is not None:
            server.settimeout(_ACCEPT_POLL_S)
        served = 0
        starved = False  # out of file descriptors (said once until an accept succeeds)
        while (connections is None or served < connections) and not (stop and stop.is_set()):
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue  # a look at `stop`
            except ConnectionError:
                continue  # the peer gave up before it was accepted
            except OSError as e:
                if e.errno not in _OUT_OF_FDS:
                    raise WakewardError(f"cannot accept connections: {e.strerror}") from None
                made_room = table.make_room()
                if not starved:
                    say(
                        error(
                            f"cannot accept a connection: {e.strerror} (at most "
                            f"{_open_files_allowed()} files open at once, ulimit -n); "
                            + (
                                "the oldest connections without a hello are closed to make room"
                                if made_room
                                else "waiting for connections to end"
                            )
                        )
                    )
                starved = True
                time.sleep(_ACCEPT_RETRY_S)
                continue
            starved = False
            slot = table.admit(conn, peer[0])
            if slot is None:
                continue
            served += 1
            thread = threading.Thread(
                target=_serve_connection, args=(receiver, slot, context, table), daemon=True
            )
            thread.start()
            threads.append(thread)
            threads = [t for t in threads if t.is_alive()]
    if stop is not None and stop.is_set():
        receiver.stop()
    for thread in threads:
        thread.join()
    return receiver


def _security_line(server: socket.socket, pairing: Pairing | None) -> str | None:
    """What the owner should know about who can send clips here (nothing on loopback
    without TLS: only programs on this PC can connect there)."""
    if pairing is not None:
        return f"TLS: only devices paired in {pairing.folder} are accepted"
    if ipaddress.ip_address(server.getsockname()[0]).is_loopback:
        return None
    return warning(
        "WARNING: plain TCP, no TLS: any device on the network can send clips here and "
        "anyone on it can read them; pair your devices (wakeward pair DEVICE_ID, then "
        "wakeward deploy) and listen with --tls"
    )


def connections_at_once() -> int:
    """MAX_CONNECTIONS, or fewer where this process may open fewer files (FDS_KEPT_FREE of
    them stay free for the clip store, --exec and TLS); at least one."""
    allowed = _open_files_allowed()
    if allowed == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, allowed - FDS_KEPT_FREE))


def _open_files_allowed() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _Slot:
    """One connection in the table: its socket (the TLS one once wrapped) and its stream
    once the session runs; `closing` once the table closed it to make room."""

    def __init__(self, conn: socket.socket, peer: str) -> None:
        self.conn = conn
        self.peer = peer
        self.stream: SocketStream | None = None
        self.closing = False
        self.lock = threading.Lock()  # conn is replaced (TLS) while a close may come

    def waiting(self) -> bool:
        """No hello yet: the TLS handshake, or the session before its hello."""
        return self.stream is None or self.stream.waiting()

    def close(self) -> None:
        """End it from here: the thread's handshake or read fails, and it returns."""
        with self.lock:
            self.closing = True
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.conn, socket.SHUT_RDWR)


class _Connections:
    """The connections under way, at most `most` at once. A newcomer that finds them all
    taken closes the oldest one still without a hello (a device says it at once, so that is
    someone holding a connection idle); if every one has said its hello, the newcomer is
    refused. Each closed or refused peer gets one line."""

    def __init__(self, most: int, say: Callable[[str], None]) -> None:
        self.most = most
        self.say = say
        self._slots: list[_Slot] = []  # oldest first
        self._lock = threading.Lock()

    def admit(self, conn: socket.socket, peer: str) -> _Slot | None:
        with self._lock:
            open_now = [s for s in self._slots if not s.closing]
            full = f"{self.most} connections are open (the most at once)"
            if len(open_now) >= self.most and not self._close_oldest_waiting(open_now, full):
                self.say(
                    warning(
                        f"refused {peer}: {self.most} connections are open, each with its "
                        "hello (the most at once); connection closed"
                    )
                )
                conn.close()
                return None
            slot = _Slot(conn, peer)
            self._slots.append(slot)
            return slot

    def make_room(self) -> bool:
        """Out of file descriptors: close the oldest connection without a hello; False if
        there is none."""
        with self._lock:
            open_now = [s for s in self._slots if not s.closing]
            return self._close_oldest_waiting(open_now, "this process is out of file descriptors")

    def _close_oldest_waiting(self, open_now: list[_Slot], why: str) -> bool:
        for slot in open_now:
            if slot.waiting():
                slot.close()
                self.say(
                    warning(
                        f"closed {slot.peer}: no hello yet, and {why}; the oldest without a "
                        "hello made room for a new one"
                    )
                )
                return True
        return False

    def done(self, slot: _Slot) -> None:
        with self._lock:
            self._slots.remove(slot)


def _serve_connection(
    receiver: Receiver,
    slot: _Slot,
    context: ssl.SSLContext | None = None,
    table: _Connections | None = None,
) -> None:
    peer = slot.peer
    try:
        with contextlib.ExitStack() as stack:
            conn = stack.enter_context(slot.conn)
            if context is not None:
                conn.settimeout(HANDSHAKE_TIMEOUT_S)
                try:
                    with slot.lock:  # the wrap takes the socket's descriptor over
                        if slot.closing:
                            return
                        conn = context.wrap_socket(
                            conn, server_side=True, do_handshake_on_connect=False
                        )
                        slot.conn = stack.enter_context(conn)
                    conn.do_handshake()
                except (ssl.SSLError, OSError) as e:
                    if not slot.closing:
                        receiver.say(
                            warning(
                                f"refused {peer}: TLS handshake failed: {_handshake_failure(e)}"
                            )
                        )
                    return
            conn.settimeout(IDLE_TIMEOUT_S)
            receiver.say(f"device connected from {peer}" + (" (TLS)" if context else ""))
            slot.stream = SocketStream(conn, hello_timeout_s=HELLO_TIMEOUT_S)
            if slot.closing:
                return
            receiver.handle(slot.stream, peer)
    finally:
        if table is not None:
            table.done(slot)


def _handshake_failure(error: OSError) -> str:
    reason = getattr(error, "reason", None)
    if reason in _HANDSHAKE_FAILURES:
        return _HANDSHAKE_FAILURES[reason]
    if isinstance(error, TimeoutError):
        return f"no handshake within {HANDSHAKE_TIMEOUT_S:.0f} s"
    return str(error) or type(error).__name__


def serve_in_background(
    store_dir: Path, say: Callable[[str], None], *, on_clip: Callable[[Clip], None] | None = None
) -> tuple[int, threading.Thread, list]:
    """A one-connection receiver on a free loopback port, in a thread (demo and tests); the
    store is closed when it returns (its Receiver's `clips` stay readable)."""
    ready = threading.Event()
    port: list[int] = []
    result: list = []

    def listening(p: int) -> None:
        port.append(p)
        ready.set()

    def run() -> None:
        result.append(
            serve_tcp(
                "127.0.0.1",
                0,
                store_dir,
                say=say,
                connections=1,
                on_listening=listening,
                on_clip=on_clip,
            )
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise WakewardError("the receiver did not start")
    return port[0], thread, result
