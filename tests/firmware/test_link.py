"""The link (firmware/link.py) on the unix port against a receiver stand-in on loopback: per
audio frame it allocates nothing, neither while idle and connected (polling for acks) nor
while a clip streams to flash and to the receiver, nor while the receiver is unreachable and
the clip goes to flash only; the receiver gets hello, status, the clip and a last status; the
ack deletes the clip from flash. The same over the serial console (stdin and stdout)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading

import numpy as np
from wakeward import unixport

from tests.conftest import write_test_wav
from tests.host.test_protocol import P

# What every scenario below feeds the link: 10 ms frames of quiet or loud audio on a clock
# the test moves (needs `now` and `link`).
FEED = """
quiet = bytearray(320)
loud = bytearray(open('loud.raw', 'rb').read())
def frames(n, pcm, level):
    for _ in range(n):
        now[0] += 10
        link.frame(pcm, level)
        link.poll()
"""


def prelude(blocking: bool = True) -> str:
    """The start of a unix-port script that runs a Link: a fake clock (`now`), `connect` to
    the test's receiver on PORT (a placeholder), a blocking or non-blocking socket."""
    return (
        """
import micropython, os, socket
from link import Link
from outbox import Outbox
now = [0]
def clock():
    return now[0]
def connect():
    s = socket.socket()
    s.connect(socket.getaddrinfo('127.0.0.1', PORT)[0][-1])
"""
        + ("" if blocking else "    s.setblocking(False)\n")
        + """    return s
said = []
"""
    )


CODE = (
    prelude()
    + """box = Outbox(8, 1 << 20, say=said.append)
link = Link(connect, box, clock, 'dev', ['m'], status_interval_ms=100000, say=said.append)
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
queued_while_capturing = os.listdir('outbox.d')
frames(300, quiet, 0)
link.close()
import json
print(json.dumps([connected, link.clip_id, sorted(queued_while_capturing),
                  os.listdir('outbox.d'), link.clips_sent, link.clips_acked,
                  link.audio_bytes_sent, said]))
"""
)


class Stand_in:
    """A receiver on loopback that records the device's bytes and acks each clip_end."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(30)
        self.port = self.server.getsockname()[1]
        self.data = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        decoder = P.Decoder()
        with conn:
            while chunk := conn.recv(65536):
                self.data += chunk
                decoder.feed(chunk)
                for kind, msg in decoder:
                    if kind == "msg":
                        conn.sendall(self.reply(msg))

    def reply(self, msg: dict) -> bytes:
        """What the receiver sends back for one of the device's messages."""
        return P.encode_ack(msg["clip_id"]) if msg["type"] == "clip_end" else b""

    def messages(self) -> list[dict]:
        self.thread.join(30)
        self.server.close()
        decoder = P.Decoder()
        decoder.feed(bytes(self.data))
        decoder.finish()
        return [m for kind, m in decoder if kind == "msg"]


def test_link_streams_a_clip_without_allocating_per_frame(mp, tmp_path):
    rng = np.random.default_rng(3)
    loud = rng.integers(-12000, 12000, 160).astype("<i2")
    (tmp_path / "loud.raw").write_bytes(loud.tobytes())
    receiver = Stand_in()
    out = mp.output(CODE.replace("PORT", str(receiver.port)))
    connected, clip_id, queued, after, sent, acked, audio_bytes, said = json.loads(
        out.strip().splitlines()[-1]
    )
    msgs = receiver.messages()
    assert connected
    assert queued == [f"{clip_id}.part", "state.json"]  # on flash while it is captured
    assert after == ["state.json"]  # deleted once acknowledged
    assert [m["type"] for m in msgs[:4]] == ["hello", "status", "detection", "clip_start"]
    assert msgs[2]["model"] == msgs[3]["model"] and msgs[2]["score"] == msgs[3]["score"]
    assert msgs[1]["clips_sent"] == 0 and msgs[1]["queued"] == 0
    data = [m for m in msgs if m["type"] == "clip_data"]
    end = [m for m in msgs if m["type"] == "clip_end"]
    assert [m["seq"] for m in data] == list(range(len(data)))
    pcm = b"".join(m["pcm"] for m in data)
    assert len(end) == 1 and end[0]["clip_id"] == clip_id and len(pcm) == 2 * end[0]["samples"]
    # the pre-roll: 5 + 200 quiet frames (only the last second of them), then the loud ones
    assert pcm[: 2 * 16000] == bytes(2 * 16000)
    assert pcm[2 * 16000 : 2 * 16000 + 320] == loud.tobytes()
    last = msgs[-1]
    assert last["type"] == "status"
    assert (last["clips_sent"], last["clips_acked"], last["queued"]) == (1, 1, 0)
    assert last["audio_bytes"] == audio_bytes == len(pcm) and (sent, acked) == (1, 1)
    # 568 frames of 10 ms on the test's clock, never muted
    assert (last["listened_s"], last["listened_rem_ms"]) == (5, 680)
    assert said[0] == "link: connected, 0 clips queued"


OFFLINE = (
    """
import micropython, os
from link import Link
from outbox import Outbox
now = [0]
def clock():
    return now[0]
def connect():
    raise OSError('no network')
said = []
box = Outbox(8, 1 << 20, say=said.append)
link = Link(connect, box, clock, 'dev', ['m'], retry_min_ms=100000, say=said.append)
"""
    + FEED
    + """frames(5, quiet, 0)
link.detected('m', 200)
frames(3, loud, 9000)
micropython.heap_lock()
frames(100, loud, 9000)
micropython.heap_unlock()
frames(300, quiet, 0)  # the clip ends (its last, shorter frame and clip_end allocate)
link.close()
import json
print(json.dumps([link.clip_id, box.ids, os.listdir('outbox.d'), said]))
"""
)


def test_offline_a_clip_goes_to_flash_without_allocating_per_frame(mp, tmp_path):
    rng = np.random.default_rng(4)
    (tmp_path / "loud.raw").write_bytes(rng.integers(-12000, 12000, 160).astype("<i2").tobytes())
    out = mp.output(OFFLINE)
    clip_id, ids, files, said = json.loads(out.strip().splitlines()[-1])
    assert ids == [clip_id] and sorted(files) == [f"{clip_id}.clip", "state.json"]
    assert said[0] == "link: cannot connect (no network); next try in 100000 ms"
    assert said[-1] == "link: 1 clips wait on flash for the receiver"
    frames = (tmp_path / "outbox.d" / f"{clip_id}.clip").read_bytes()
    decoder = P.Decoder()
    decoder.feed(frames)
    msgs = [m for kind, m in decoder if kind == "msg"]
    assert [m["type"] for m in (msgs[0], msgs[-1])] == ["clip_start", "clip_end"]
    pcm = b"".join(m["pcm"] for m in msgs if m["type"] == "clip_data")
    assert len(pcm) == 2 * msgs[-1]["samples"] and msgs[-1]["reason"] == 0  # end of speech


SERIAL = (
    """
import micropython, os, sys
import console
from link import Link
from outbox import Outbox
now = [0]
def clock():
    return now[0]
said = []
console.take()
box = Outbox(8, 1 << 20, say=said.append)
link = Link(console.Console, box, clock, 'dev', ['m'], status_interval_ms=100000,
            ack_timeout_ms=100000, say=said.append)
"""
    + FEED
    + """frames(5, quiet, 0)
connected = link.connected()
print('a log line between frames')
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
console.release()
import json
print(json.dumps([connected, link.clip_id, os.listdir('outbox.d'), link.clips_sent,
                  link.clips_acked, link.audio_bytes_sent, said]))
"""
)


def run_on_console(tmp_path, code: str) -> tuple[list[dict], list[str]]:
    """Run code with its stdin and stdout on pipes, as the serial link's console: acknowledge
    each clip_end, with garbage bytes (0x03 included) around the ack; the messages and log
    lines it wrote, and nothing damaged among them."""
    (tmp_path / "serial.py").write_text(code)
    proc = subprocess.Popen(
        unixport.command(tmp_path / "serial.py"),
        cwd=tmp_path,
        env=unixport.environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out = bytearray()
    decoder = P.Decoder()
    assert proc.stdout is not None and proc.stdin is not None
    while chunk := proc.stdout.read1(65536):
        out += chunk
        decoder.feed(chunk)
        for kind, msg in decoder:
            if kind == "msg" and msg["type"] == "clip_end":
                noise = b"\x03\xf5\xc1\x03 line noise\n" + bytes(range(256))
                proc.stdin.write(noise + P.encode_ack(msg["clip_id"]) + b"\x03")
                proc.stdin.flush()
    assert proc.wait(30) == 0, out.decode(errors="replace")
    decoder = P.Decoder()
    decoder.feed(bytes(out))
    decoder.finish()
    items = list(decoder)
    assert decoder.rejected == 0 and not [m for kind, m in items if kind == "error"], items
    msgs = [m for kind, m in items if kind == "msg"]
    logs = [bytes(m).decode() for kind, m in items if kind == "log"]
    return msgs, logs


def test_the_serial_link_streams_over_the_console_without_allocating_per_frame(tmp_path):
    """The console (firmware/console.py) as the link's stream: frames on stdout between
    print() lines, acks on stdin among garbage bytes, read without waiting; per audio
    frame nothing is allocated, idle or streaming a clip."""
    rng = np.random.default_rng(5)
    loud = rng.integers(-12000, 12000, 160).astype("<i2")
    (tmp_path / "loud.raw").write_bytes(loud.tobytes())
    msgs, logs = run_on_console(tmp_path, SERIAL)
    connected, clip_id, after, sent, acked, audio_bytes, said = json.loads(logs[-1])
    assert connected and after == ["state.json"] and (sent, acked) == (1, 1)
    assert said[0] == "link: connected, 0 clips queued"
    assert logs[0] == "a log line between frames"
    assert [m["type"] for m in msgs[:4]] == ["hello", "status", "detection", "clip_start"]
    assert msgs[0]["auth"] == b""
    data = [m for m in msgs if m["type"] == "clip_data"]
    pcm = b"".join(m["pcm"] for m in data)
    assert [m["seq"] for m in data] == list(range(len(data)))
    assert pcm[2 * 16000 : 2 * 16000 + 320] == loud.tobytes() and len(pcm) == audio_bytes
    assert msgs[-1]["type"] == "status" and msgs[-1]["clips_acked"] == 1


RESEND = (
    """
import micropython, os
import console
from link import Link
from outbox import Outbox
now = [0]
def clock():
    return now[0]
up = [False]
def connect():
    if not up[0]:
        raise OSError('not yet')
    return console.Console()
said = []
box = Outbox(8, 1 << 20, say=said.append)
link = Link(connect, box, clock, 'dev', ['m'], retry_min_ms=10, retry_max_ms=10,
            status_interval_ms=100000, say=said.append)
"""
    + FEED
    + """frames(5, quiet, 0)
link.detected('m', 200)
frames(150, loud, 9000)
frames(100, quiet, 0)
queued = list(box.ids)
up[0] = True
frames(4, quiet, 0)  # connect, hello, status, the clip's first frames (their views)
print('resending', link.connected())
micropython.heap_lock()
frames(25, quiet, 0)
micropython.heap_unlock()
frames(100, quiet, 0)
link.close()
import json
print(json.dumps([queued, box.ids, link.clips_sent, link.clips_acked]))
"""
)


def test_a_queued_clip_is_resent_in_whole_frames_without_allocating_per_frame(tmp_path):
    """A clip queued on flash goes out whole frames at a time (a log line never falls
    inside one), allocating nothing per audio frame."""
    rng = np.random.default_rng(6)
    (tmp_path / "loud.raw").write_bytes(rng.integers(-12000, 12000, 160).astype("<i2").tobytes())
    msgs, logs = run_on_console(tmp_path, RESEND)
    queued, after, sent, acked = json.loads(logs[-1])
    assert "resending True" in logs and len(queued) == 1 and after == []
    assert (sent, acked) == (1, 1)
    clip = [m for m in msgs if m.get("clip_id") == queued[0]]
    assert clip[0]["type"] == "clip_start" and clip[-1]["type"] == "clip_end"
    # the heap stayed locked over 25 audio frames, two data frames each, all of them inside
    # the clip: 6 data frames went before, the last ones (another size) after
    assert len(clip) > 2 + 6 + 50


def test_the_mute_button_held_at_boot_leaves_the_console_to_the_repl(mp):
    """With the serial link Ctrl-C does not stop the firmware (console.py): the mute button
    held at boot is the way back to the REPL. The firmware then sends nothing."""
    write_test_wav(mp.cwd / "x.wav", np.zeros(16000, np.int16))
    config = {
        "board": "sim",
        "board_options": {"wav": "x.wav", "button": [[0, 500]]},
        "link": {"serial": True},
    }
    (mp.cwd / "config.json").write_text(json.dumps(config))
    done = mp.run("import main\nmain.main()\n")
    assert done.stdout == (
        b"wakeward: board sim, CPU at 240 MHz\n"
        b"wakeward: mute button held at boot: the console stays a REPL, no link\n"
    )
    assert not (mp.cwd / "outbox.d").exists()
