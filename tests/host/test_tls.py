"""The Wi-Fi link's security, end to end over loopback with real processes: the firmware
(unix port, sim board) pins the receiver's certificate and proves it is paired with its
secret inside the TLS session; `wakeward listen --tls` accepts paired devices only.

A paired device's clip arrives bit-exact; an unpaired, a revoked and a wrong-secret device
are refused before anything of theirs is stored, and a refused device backs off (it does
not knock every second); a device pinned to another receiver's certificate does not
finish the handshake, so not one byte of its audio leaves it. Deploy puts the certificate
and the secret into a paired device's bundle and refuses a link for an unpaired one. The
TLS link allocates nothing per audio frame, and its heap cost is measured.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from wakeward import deploy, pairing, receiver, unixport
from wakeward.audio import RATE_HZ, read_wav, write_wav
from wakeward.errors import WakewardError

from tests.conftest import require_tools
from tests.firmware.test_link import FEED, prelude
from tests.host.test_delivery import (
    Device,
    Output,
    count_stored,
    free_port,
    stored,
    wait_for,
)
from tests.host.test_protocol import P

DEVICE = "sim"  # the sim board's device id
CERT = "receiver.der"


class TlsReceiver:
    """`wakeward listen --tls` in its own process."""

    def __init__(self, port: int, store: Path, pairs: pairing.Pairing) -> None:
        self.store = store
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wakeward", "listen", "--tcp", f"127.0.0.1:{port}", "--tls"]
            + ["--pairing", str(pairs.folder), "--store", str(store)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self.output = Output(self.proc.stdout)
        wait_for(lambda: self.output.having("TLS: only devices paired in"), "a TLS receiver")

    def stop(self) -> list[str]:
        self.proc.terminate()
        self.proc.wait(30)
        return self.output.join()


def tls_device(flash: Path, port: int, cert: bytes, secret: str, **board) -> Device:
    """The sim board with a TLS link: `cert` on its flash, `secret` in its config; board:
    Device's other options (events, speaker)."""
    flash.mkdir(parents=True)
    (flash / CERT).write_bytes(cert)
    return Device(flash, port, tls={"cert": CERT}, secret=secret, **board)


def retries_ms(device: Device) -> list[int]:
    """The waits the device announced after each lost connection."""
    lost = device.output.having("link: connection lost")
    return [int(re.search(r"next try in (\d+) ms", x).group(1)) for x in lost]


def check_refused(
    device: Device, rx: TlsReceiver, store: Path, why: str, speech: np.ndarray
) -> list[str]:
    """The device, with a clip to send, is refused three times with a doubling backoff;
    nothing of it reached the store or the receiver's output."""
    device.say(speech)
    device.until(lambda: len(rx.output.having(f"refused {DEVICE}: {why}")) >= 3, "3 refusals")
    device.until(lambda: len(device.queued()) == 1, "the clip queued on flash")
    device.power_off()
    lines = rx.stop()
    assert count_stored(store) == 0
    assert not (store / f"{DEVICE}.status.json").exists()
    assert not [x for x in lines if x.startswith(("hello from", "clip ", "status from"))]
    waits = retries_ms(device)
    assert waits[:3] == [200, 400, 800], device.lines()  # LINK: retry_min_ms 200, doubling
    assert device.output.having("link: the receiver says: refused: this device is not paired")
    return lines


def test_a_paired_device_delivers_its_clip_over_tls_bit_exact(tmp_path, pairs, speech):
    """`wakeward sim --tls` to `wakeward listen --tls`: the whole loop, as the CLI runs it."""
    pairs.pair(DEVICE)
    port, store = free_port(), tmp_path / "clips"
    rx = TlsReceiver(port, store, pairs)
    rng = np.random.default_rng(1)
    room = [rng.normal(0, 30, int(s * RATE_HZ)).astype(np.int16) for s in (0.5, 2.5)]
    audio = np.concatenate([room[0], speech, room[1]])
    wav = write_wav(tmp_path / "speech.wav", audio)
    done = subprocess.run(
        [sys.executable, "-m", "wakeward", "sim", str(wav), "--model", "alexa"]
        + ["--heap", "esp32s3-psram", "--link", f"127.0.0.1:{port}"]
        + ["--tls", "--pairing", str(pairs.folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: count_stored(store) == 1, "the clip stored")
    lines = rx.stop()
    assert "device connected from 127.0.0.1 (TLS)" in lines
    assert any(x.startswith(f"hello from {DEVICE} ") for x in lines)
    detected = [float(x.split()[-2]) for x in done.stdout.splitlines() if "detected: alexa" in x]
    clips = stored(store)
    assert len(detected) == 1 and len(clips) == 1
    ((row, samples),) = clips.values()
    assert row.pre_roll_ms == 1000 and len(samples) == row.samples > 2 * RATE_HZ
    start = int(round((detected[0] - 1.0) * RATE_HZ))
    assert np.array_equal(samples, read_wav(wav)[start : start + len(samples)])
    assert "link: 1 clips wait on flash" not in done.stdout  # acknowledged


def test_an_unpaired_device_is_refused_and_nothing_is_stored(tmp_path, pairs, speech):
    port, store = free_port(), tmp_path / "clips"
    rx = TlsReceiver(port, store, pairs)
    device = tls_device(tmp_path / "flash", port, pairs.cert_der(), "ab" * 32)
    check_refused(device, rx, store, "not paired", speech)


def test_a_revoked_device_is_refused(tmp_path, pairs, speech):
    secret = pairs.pair(DEVICE)
    pairs.revoke(DEVICE)
    port, store = free_port(), tmp_path / "clips"
    rx = TlsReceiver(port, store, pairs)
    device = tls_device(tmp_path / "flash", port, pairs.cert_der(), secret)
    check_refused(device, rx, store, "revoked", speech)


def test_a_wrong_secret_is_refused(tmp_path, pairs, speech):
    secret = pairs.pair(DEVICE)
    port, store = free_port(), tmp_path / "clips"
    rx = TlsReceiver(port, store, pairs)
    wrong = secret[:-1] + ("0" if secret[-1] != "0" else "1")
    device = tls_device(tmp_path / "flash", port, pairs.cert_der(), wrong)
    check_refused(device, rx, store, "wrong secret", speech)


def test_a_device_pinned_to_another_receiver_sends_nothing(tmp_path, pairs, identities, speech):
    """The device is paired here (right secret) but holds another receiver's certificate:
    it refuses this receiver in the handshake, so its hello, secret and audio never go."""
    secret = pairs.pair(DEVICE)
    port, store = free_port(), tmp_path / "clips"
    rx = TlsReceiver(port, store, pairs)
    device = tls_device(tmp_path / "flash", port, identities[1].cert_der(), secret)
    device.say(speech)
    refusals = "TLS handshake failed: the device does not trust this receiver's certificate"
    device.until(lambda: len(rx.output.having(refusals)) >= 3, "3 refused handshakes")
    device.until(lambda: len(device.queued()) == 1, "the clip queued on flash")
    device.power_off()
    lines = rx.stop()
    assert count_stored(store) == 0
    assert not [x for x in lines if x.startswith(("hello from", "clip ", "device:"))]
    assert not [x for x in lines if "device connected" in x]  # no session was ever opened
    failed = device.output.having("link: cannot connect (not the paired receiver: ")
    assert failed and "not correctly signed by the trusted CA" in failed[0]
    assert not device.output.having("link: connected")


def test_deploy_puts_the_certificate_and_secret_into_a_paired_bundle(tmp_path, pairs):
    secret = pairs.pair("kitchen")
    with deploy.prepare(
        link="192.168.1.20:7000", device_id="kitchen", pairing_dir=pairs.folder
    ) as bundle:
        cert = bundle.file(deploy.CERT_FILE).source.read_bytes()
        config = json.loads(bundle.file("config.json").source.read_text())
    assert cert == pairs.cert_der()
    assert config["link"] == {
        "tcp": "192.168.1.20:7000",
        "tls": {"cert": deploy.CERT_FILE},
        "secret": secret,
    }
    assert bundle.config == config and config["device_id"] == "kitchen"


def test_deploy_refuses_a_link_for_an_unpaired_device(tmp_path, pairs):
    with (
        pytest.raises(WakewardError) as e,
        deploy.prepare(link="192.168.1.20:7000", device_id="hall", pairing_dir=pairs.folder),
    ):
        pass
    assert "device 'hall' is not paired" in str(e.value)
    assert "Run `wakeward pair hall` first" in str(e.value) and "--insecure" in str(e.value)
    with deploy.prepare(
        link="192.168.1.20:7000", device_id="hall", pairing_dir=pairs.folder, insecure=True
    ) as bundle:
        assert bundle.config["link"] == {"tcp": "192.168.1.20:7000"}
        assert deploy.CERT_FILE not in {f.dest for f in bundle.files}
    pairs.pair("hall")
    with pytest.raises(WakewardError, match="is paired, so its link is TLS: leave out --insec"):
        deploy.link_pairing("hall", pairs.folder, insecure=True)


def test_plain_tcp_beyond_loopback_is_announced_as_open_to_anyone():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))  # bound, never listening
        assert "any device on the network can send clips" in receiver._security_line(s, None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        assert receiver._security_line(s, None) is None


def test_the_certificate_holds_on_a_device_whose_clock_was_never_set(identities, tmp_path):
    """The ESP32 port's mbedTLS checks validity dates; a device's clock starts at the epoch
    after a boot (no NTP), so the certificate is valid from 1970 (and never expires)."""
    from cryptography import x509

    mine = identities[0]
    cert = x509.load_der_x509_certificate(mine.cert_der())
    assert cert.not_valid_before_utc == datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    assert cert.not_valid_after_utc.year == 9999
    require_tools("faketime")
    server = TlsStandIn(mine)
    (tmp_path / CERT).write_bytes(mine.cert_der())
    code = HANDSHAKE.replace("PORT", str(server.port))
    done = subprocess.run(
        ["faketime", "2000-01-01 00:00:00", *unixport.command(None, code=code)],
        cwd=tmp_path,
        env=unixport.environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.split() == ["2000", "connected"], done.stdout + done.stderr


HANDSHAKE = """
import time, transport
class Board:
    def network_up(self, timeout_ms):
        return True
cfg = {"host": "127.0.0.1", "port": PORT, "timeout_ms": 2000, "tls": "receiver.der",
       "serial": False}
print(time.localtime()[0])
transport.open_stream(cfg, Board(), transport.tls_context(cfg)).close()
print("connected")
"""


class TlsStandIn:
    """A TLS receiver on loopback, in a thread, that serves `connections` connections one
    after the other, acks each clip_end and keeps the application bytes it got."""

    def __init__(self, pairs: pairing.Pairing, connections: int = 1) -> None:
        self.context = pairs.server_context()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(30)
        self.port = self.server.getsockname()[1]
        self.data = bytearray()
        self.thread = threading.Thread(target=self._serve, args=(connections,), daemon=True)
        self.thread.start()

    def _serve(self, connections: int) -> None:
        for _ in range(connections):
            raw, _ = self.server.accept()
            decoder = P.Decoder()
            with raw, self.context.wrap_socket(raw, server_side=True) as conn:
                try:
                    while chunk := conn.recv(65536):
                        self.data += chunk
                        decoder.feed(chunk)
                        for kind, msg in decoder:
                            if kind == "msg" and msg["type"] == "clip_end":
                                conn.sendall(P.encode_ack(msg["clip_id"]))
                except OSError:
                    pass  # the device closed without a TLS close_notify

    def messages(self) -> list[dict]:
        self.thread.join(30)
        self.server.close()
        decoder = P.Decoder()
        decoder.feed(bytes(self.data))
        decoder.finish()
        return [m for kind, m in decoder if kind == "msg"]


# The link over TLS as main.py builds it, streaming a clip under heap_lock (test_link.py
# does the same over plain TCP); the heap the TLS session takes is printed.
TLS_LINK = (
    """
import gc, micropython, os, transport
from link import Link
from outbox import Outbox
class Board:
    def network_up(self, timeout_ms):
        return True
cfg = {"host": "127.0.0.1", "port": PORT, "timeout_ms": 2000, "tls": "receiver.der",
       "serial": False}
gc.collect()
before = gc.mem_alloc()
context = transport.tls_context(cfg)
gc.collect()
with_context = gc.mem_alloc()
probe = transport.open_stream(cfg, Board(), context)
gc.collect()
session = gc.mem_alloc() - with_context
probe.close()
probe = None
now = [0]
def clock():
    return now[0]
said = []
box = Outbox(8, 1 << 20, say=said.append)
link = Link(lambda: transport.open_stream(cfg, Board(), context), box, clock, 'dev', ['m'],
            status_interval_ms=100000, auth=bytes(range(32)), say=said.append)
"""
    + FEED
    + """frames(5, quiet, 0)
connected = link.connected()
micropython.heap_lock()
frames(200, quiet, 0)
micropython.heap_unlock()
link.detected('m', 200)
frames(3, loud, 9000)
micropython.heap_lock()
frames(60, loud, 9000)
micropython.heap_unlock()
frames(300, quiet, 0)
link.close()
import json
print(json.dumps([with_context - before, session, connected, link.clips_acked, said]))
"""
)


def test_the_tls_link_streams_without_allocating_per_frame(mp, tmp_path, identities):
    mine = identities[0]
    (tmp_path / CERT).write_bytes(mine.cert_der())
    rng = np.random.default_rng(3)
    (tmp_path / "loud.raw").write_bytes(rng.integers(-12000, 12000, 160).astype("<i2").tobytes())
    stand_in = TlsStandIn(mine, connections=2)  # the measuring probe, then the link
    out = mp.output(TLS_LINK.replace("PORT", str(stand_in.port)), heap="esp32s3-psram")
    context_bytes, session_bytes, connected, acked, said = json.loads(out.splitlines()[-1])
    msgs = stand_in.messages()
    assert connected and acked == 1, said
    assert [m["type"] for m in msgs[:4]] == ["hello", "status", "detection", "clip_start"]
    assert msgs[0]["auth"] == bytes(range(32))
    assert [m["type"] for m in msgs].count("clip_end") == 1
    # mbedTLS's own buffers are not on this port's MicroPython heap (nor on the device's:
    # ESP-IDF allocates them); what is, is small
    assert context_bytes < 8192 and session_bytes < 2048
    print(f"TLS heap: context {context_bytes} bytes, session {session_bytes} bytes")


BACKOFF = (
    prelude(blocking=False)
    + """import time
link = Link(connect, Outbox(8, 1 << 20, say=said.append), clock, 'dev', [],
            retry_min_ms=100, retry_max_ms=1000, say=said.append)
for _ in range(20000):
    now[0] += 10
    link.poll()
    time.sleep_ms(1)
    if len([x for x in said if 'connection lost' in x]) == 5:
        break
for line in said:
    print(line)
"""
)


def test_a_connection_closed_before_any_ack_counts_as_a_failed_attempt(mp):
    """Closed right after the hello (a refusal): the backoff keeps doubling. After an ack,
    or after a connection that lasted retry_max_ms, the next try is retry_min_ms away."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(30)

    def serve() -> None:
        for behaviour in ("refuse", "refuse", "ack", "refuse", "last"):
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)  # the hello
                if behaviour == "ack":
                    conn.sendall(P.encode_ack(7))
                    time.sleep(0.2)
                elif behaviour == "last":
                    time.sleep(0.5)  # 10 ms of device clock per real ms: well over 1000 ms
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    out = mp.output(BACKOFF.replace("PORT", str(server.getsockname()[1])))
    thread.join(30)
    waits = [int(x.rsplit(" ", 2)[1]) for x in out.splitlines() if "connection lost" in x]
    assert waits == [100, 200, 100, 100, 100], out


STALLED = """
chunk = bytes(4096)  # first: the test's own buffer does not hang on the heap's fragmentation
import time, transport
from link import Link
from outbox import Outbox
class Board:
    def network_up(self, timeout_ms):
        return True
cfg = {"host": "127.0.0.1", "port": PORT, "timeout_ms": 2000, "tls": "receiver.der",
       "serial": False}
context = transport.tls_context(cfg)
said = []
link = Link(lambda: transport.open_stream(cfg, Board(), context), Outbox(8, 1 << 20),
            time.ticks_ms, 'dev', [], write_timeout_ms=200, say=said.append)
link.poll()
writes = 0
last_ms = 0
while link.connected() and writes < 20000:
    start = time.ticks_ms()
    link._write(chunk)
    last_ms = time.ticks_diff(time.ticks_ms(), start)
    writes += 1
print(writes, last_ms)
for line in said:
    print(line)
"""


def test_a_receiver_that_stops_reading_ends_the_tls_connection_after_the_write_timeout(
    mp, tmp_path, identities
):
    mine = identities[0]
    (tmp_path / CERT).write_bytes(mine.cert_der())
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(30)
    context = mine.server_context()

    def stall() -> None:
        raw, _ = server.accept()
        with raw, context.wrap_socket(raw, server_side=True):
            time.sleep(10)  # reads nothing

    threading.Thread(target=stall, daemon=True).start()
    out = mp.output(STALLED.replace("PORT", str(server.getsockname()[1])))
    server.close()
    lines = out.splitlines()
    writes, last_ms = map(int, lines[0].split())
    assert 1 < writes < 20000 and 200 <= last_ms < 1000, out
    assert "link: connection lost (write timed out after 200 ms)" in lines[-1], out
