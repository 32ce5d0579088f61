"""The receiver's limits against hostile peers on the network (docs/security.md): a flood
of idle connections does not stop `wakeward listen` (under a 1,024 file limit, 1,100 of
them, while the sim device's clip is still acknowledged within a second), a peer that
never says hello is closed at the hello deadline (TLS and plain TCP), a full connection
table makes room by closing the oldest connection without a hello, and a session cannot
make the receiver hold more than its clips' worth of audio (a clip longer than the
protocol's longest, more clips under way than a device streams, a sample rate no device
sends). Each refusal is one line, and the other sessions go on."""

from __future__ import annotations

import errno
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wakeward import pairing, receiver

from tests.conftest import require_tools
from tests.host.test_delivery import STEP_S, Device, Receiver, count_stored, free_port, wait_for
from tests.host.test_listen import Device as StandIn
from tests.host.test_listen import InProcess, pcm
from tests.host.test_protocol import P

FILE_LIMIT = 1024  # the usual soft limit on open files (ulimit -n)
IDLE_CONNECTIONS = 1100  # more than FILE_LIMIT
FLOOD_BATCH = 100  # connections opened at once (within the listen backlog)
ACK_WITHIN_S = 1.0
CONNECT_WAIT_S = 30.0
SHORT_HELLO_TIMEOUT_S = 0.5
CLOSED_WITHIN_S = 5.0  # for a connection that must be closed at SHORT_HELLO_TIMEOUT_S
CHUNK_BYTES = 4000  # audio per clip_data frame, as a device sends it
ENDLESS_CLIP_S = 70  # more than the protocol's longest clip (MAX_CLIP_MS)
RATE_HZ = 16000


def open_idle(port: int, count: int) -> list[socket.socket]:
    """`count` connections to the port that send nothing (non-blocking connects)."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    return socks


def connections_taken(rx: Receiver) -> int:
    return sum(line.count("connected from") for line in list(rx.output.lines))


def flood(rx: Receiver, port: int, count: int) -> list[socket.socket]:
    """`count` idle connections, opened a batch at a time as fast as the receiver takes
    them (a batch beyond its listen backlog would wait on TCP's retries, seconds)."""
    socks: list[socket.socket] = []
    while len(socks) < count:
        socks += open_idle(port, min(FLOOD_BATCH, count - len(socks)))
        opened = len(socks)
        wait_for(
            lambda n=opened: connections_taken(rx) >= n or rx.proc.poll() is not None,
            "the receiver to take the connections",
            CONNECT_WAIT_S,
        )
        if rx.proc.poll() is not None:
            break
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


def ack_latency_s(device: Device, rx: Receiver) -> float:
    """Feed the device room noise until its clip is stored and acknowledged; the wall
    time from the clip being finished on its flash (<id>.clip) to its ack (the file gone)."""
    outbox = device.flash / "outbox.d"
    finished = None
    end = time.monotonic() + CONNECT_WAIT_S
    while True:
        names = os.listdir(outbox) if outbox.is_dir() else []
        now = time.monotonic()
        if finished is None and any(n.endswith(".clip") for n in names):
            finished = now
        waiting = [n for n in names if n.endswith((".clip", ".part"))]
        if rx.output.having("-> clip ") and not waiting:
            return 0.0 if finished is None else now - finished
        if now > end or device.proc.poll() is not None or rx.proc.poll() is not None:
            raise AssertionError("no ack; the receiver said:\n" + "\n".join(rx.output.lines[-30:]))
        device.feed(device.noise(STEP_S))
        time.sleep(0.01)


def test_listen_survives_1100_idle_connections_under_1024_files_and_acks_a_clip_at_once(
    tmp_path, speech
):
    require_tools("prlimit")
    port, out = free_port(), tmp_path / "clips"
    rx = Receiver(port, out, wrap=("prlimit", f"--nofile={FILE_LIMIT}"))
    idle = flood(rx, port, IDLE_CONNECTIONS)
    try:
        assert rx.proc.poll() is None, "\n".join(rx.output.lines[-20:])
        assert connections_taken(rx) >= IDLE_CONNECTIONS
        device = Device(tmp_path / "flash", port)
        device.say(speech)
        latency = ack_latency_s(device, rx)
        device.stop()
    finally:
        close_all(idle)
    lines = rx.stop()
    print(f"the clip's ack came {latency * 1000:.0f} ms after its end, {IDLE_CONNECTIONS} idle")
    assert latency < ACK_WITHIN_S, latency
    assert count_stored(out) == 1
    made_room = [x for x in lines if "made room" in x]
    assert len(made_room) >= IDLE_CONNECTIONS - receiver.MAX_CONNECTIONS
    assert not [x for x in lines if "Traceback" in x]


class FlakyServer:
    """A listening socket whose accept() runs out of file descriptors `failures` times."""

    def __init__(self, server: socket.socket, failures: int) -> None:
        self.server = server
        self.failures = failures

    def accept(self):
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return self.server.accept()

    def __getattr__(self, name):
        return getattr(self.server, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.close()


def serve_in_thread(tmp_path: Path, **kwargs) -> tuple[int, list[str], threading.Event, list]:
    """receiver.serve_tcp on a free loopback port in a thread: its port, its lines, the
    event that stops it, and (once stopped) its Receiver or the exception it raised."""
    lines: list[str] = []
    stop = threading.Event()
    ready = threading.Event()
    port: list[int] = []
    result: list = []

    def listening(p: int) -> None:
        port.append(p)
        ready.set()

    def run() -> None:
        try:
            result.append(
                receiver.serve_tcp(
                    "127.0.0.1",
                    0,
                    tmp_path / "store",
                    say=lines.append,
                    on_listening=listening,
                    stop=stop,
                    **kwargs,
                )
            )
        except Exception as e:  # the test reports it
            result.append(e)
            ready.set()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(CONNECT_WAIT_S)
    return (port[0] if port else 0), lines, stop, result


@pytest.fixture
def flaky_accept(monkeypatch) -> None:
    create = socket.create_server
    monkeypatch.setattr(
        receiver.socket, "create_server", lambda *a, **k: FlakyServer(create(*a, **k), 3)
    )


def test_accept_out_of_files_is_said_once_and_listening_goes_on(tmp_path, flaky_accept):
    port, lines, stop, result = serve_in_thread(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            dev = StandIn(sock)
            dev.clip(7)
            assert dev.ack() == 7
    finally:
        stop.set()
    wait_for(lambda: bool(result), "the receiver to stop")
    assert isinstance(result[0], receiver.Receiver), result
    out_of_files = [x for x in lines if "Too many open files" in x]
    assert len(out_of_files) == 1, lines


@pytest.fixture
def short_hello(monkeypatch) -> None:
    monkeypatch.setattr(receiver, "HELLO_TIMEOUT_S", SHORT_HELLO_TIMEOUT_S, raising=False)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True once the receiver closes the connection (b"" or a reset) within `seconds`."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        pass
    return True


@pytest.fixture
def pairs(tmp_path: Path) -> pairing.Pairing:
    """A receiver's TLS identity, no device paired."""
    folder = pairing.Pairing(tmp_path / "pairing")
    folder.ensure_identity()
    return folder


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_peer_that_never_says_hello_is_closed_at_the_hello_deadline(
    tmp_path, pairs, short_hello, tls
):
    port, lines, stop, _ = serve_in_thread(tmp_path, pairing=pairs if tls else None)
    try:
        raw = socket.create_connection(("127.0.0.1", port))
        sock: socket.socket = raw
        if tls:
            client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            client.check_hostname = False
            client.verify_mode = ssl.CERT_NONE
            sock = client.wrap_socket(raw)  # the handshake, then nothing
        with sock:
            start = time.monotonic()
            assert closed_within(sock, CLOSED_WITHIN_S), "still held"
            assert time.monotonic() - start >= SHORT_HELLO_TIMEOUT_S / 2
    finally:
        stop.set()
    wait_for(lambda: any("no hello within" in x for x in lines), "the refusal line")
    assert [x for x in lines if "no hello within" in x] == [
        f"refused 127.0.0.1: no hello within {SHORT_HELLO_TIMEOUT_S:g} s of connecting; "
        "connection closed"
    ]


def test_a_full_connection_table_closes_the_oldest_connection_without_a_hello(
    tmp_path, monkeypatch
):
    most = 4
    monkeypatch.setattr(receiver, "MAX_CONNECTIONS", most, raising=False)
    port, lines, stop, _ = serve_in_thread(tmp_path)
    idle = []
    try:
        with socket.create_connection(("127.0.0.1", port)) as first:
            dev = StandIn(first, "kitchen")  # a session: never closed to make room
            dev.clip(1)
            assert dev.ack() == 1
            for _ in range(most):
                idle.append(socket.create_connection(("127.0.0.1", port)))
                wait_for(
                    lambda: len([x for x in lines if "connected from" in x]) == 1 + len(idle),
                    "the receiver to take it",
                )
            assert closed_within(idle[0], CLOSED_WITHIN_S)  # the oldest without a hello
            with socket.create_connection(("127.0.0.1", port)) as sock:
                other = StandIn(sock, "hall")
                other.clip(2)
                assert other.ack() == 2
            dev.clip(3)  # the first session is still served
            assert dev.ack() == 3
    finally:
        close_all(idle)
        stop.set()
    made_room = [x for x in lines if "made room" in x]
    assert len(made_room) >= 2, lines
    assert made_room[0] == (
        f"closed 127.0.0.1: no hello yet, and {most} connections are open (the most at once); "
        "the oldest without a hello made room for a new one"
    )


def test_a_full_table_of_sessions_refuses_the_newcomer_in_one_line(tmp_path, monkeypatch):
    most = 2
    monkeypatch.setattr(receiver, "MAX_CONNECTIONS", most, raising=False)
    port, lines, stop, _ = serve_in_thread(tmp_path)
    try:
        devices = [StandIn(socket.create_connection(("127.0.0.1", port))) for _ in range(most)]
        for i, dev in enumerate(devices):
            dev.clip(i)
            assert dev.ack() == i
        with socket.create_connection(("127.0.0.1", port)) as sock:
            assert closed_within(sock, CLOSED_WITHIN_S)
        devices[0].clip(9)
        assert devices[0].ack() == 9
        for dev in devices:
            dev.sock.close()
    finally:
        stop.set()
    assert [x for x in lines if x.startswith("refused")] == [
        f"refused 127.0.0.1: {most} connections are open, each with its hello "
        "(the most at once); connection closed"
    ]


@pytest.fixture
def rx(tmp_path: Path) -> Iterator[InProcess]:
    r = InProcess(tmp_path / "store")
    yield r
    r.store.close()


def refused(rx: InProcess, dev: StandIn, frames: Iterator[bytes]) -> bool:
    """Send frames until the receiver closes the connection; True if it did."""
    try:
        for frame in frames:
            dev.sock.sendall(frame)
    except OSError:
        return True  # closed while we were sending
    return closed_within(dev.sock, CLOSED_WITHIN_S)


def endless_clip(clip_id: int) -> Iterator[bytes]:
    yield P.encode_clip_start(clip_id, "alexa", 240, RATE_HZ, 1000)
    chunk = pcm(clip_id)[:CHUNK_BYTES]
    for seq in range(ENDLESS_CLIP_S * RATE_HZ * 2 // CHUNK_BYTES):
        yield P.encode_clip_data(clip_id, seq, chunk)


def test_a_clip_that_never_ends_is_refused_at_the_longest_clip(rx):
    dev = rx.connect()
    assert refused(rx, dev, endless_clip(7))
    rx.close(dev)
    line = f"refused kitchen (a device): clip 7 is longer than {P.MAX_CLIP_MS / 1000:g} s"
    assert len(rx.having(line)) == 1, rx.lines
    assert rx.receiver.audio_bytes <= (P.MAX_CLIP_MS // 1000 + 1) * RATE_HZ * 2
    # the others go on
    other = rx.connect("hall")
    other.clip(8)
    assert other.ack() == 8


def clip_starts(count: int) -> Iterator[bytes]:
    for clip_id in range(count):
        yield P.encode_clip_start(clip_id, "alexa", 240, RATE_HZ, 1000)


def test_more_clips_under_way_than_a_device_streams_are_refused(rx):
    dev = rx.connect()
    assert refused(rx, dev, clip_starts(200_000))
    rx.close(dev)
    assert len(rx.having("refused kitchen (a device): ")) == 1, rx.lines[-5:]
    assert len(rx.having(" started: alexa")) == receiver.MAX_OPEN_CLIPS


@pytest.mark.parametrize("rate_hz", [0, 2**31, 2**32 - 1])
def test_a_rate_no_device_sends_refuses_the_peer_without_a_traceback(rx, rate_hz):
    dev = rx.connect()
    frames = [P.encode_clip_start(7, "alexa", 240, rate_hz, 1000)]
    frames += [P.encode_clip_data(7, 0, pcm(7)[:CHUNK_BYTES]), P.encode_clip_end(7, 2000, 0)]
    assert refused(rx, dev, iter(frames))
    rx.close(dev)
    assert rx.having(f"refused kitchen (a device): clip 7 at {rate_hz} Hz"), rx.lines


def test_on_a_serial_port_a_bad_rate_drops_that_clip_and_the_session_goes_on(rx):
    """The cable is the owner's: nothing to close; `listen --serial` must not end."""
    mine, theirs = socket.socketpair()
    dev = StandIn(mine)
    frames = [P.encode_clip_start(7, "alexa", 240, 2**31, 1000)]
    frames += [P.encode_clip_data(7, seq, pcm(7)[:CHUNK_BYTES]) for seq in range(3)]
    frames.append(P.encode_clip_end(7, 3 * CHUNK_BYTES // 2, 0))
    mine.sendall(b"".join(frames))
    dev.clip(8)
    mine.shutdown(socket.SHUT_WR)
    with theirs:
        rx.receiver.handle(receiver.SocketStream(theirs), "/dev/ttyACM0", attached=True)
    assert dev.ack() == 8
    assert len(rx.having("clip 7")) == 1, rx.lines
    assert rx.having("clip 7 at 2147483648 Hz")
