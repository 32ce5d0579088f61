"""The receiver's clip path: each complete clip goes into the clip store before its ack,
a resend is acknowledged without a second copy (also after the owner deleted it), retention
runs after each new clip, the status file sits in the store folder, and `--exec` runs a
command per clip after the ack without holding acks up. A stand-in device speaks the
firmware's own protocol module (no firmware process: these are the receiver's rules)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from wakeward import clipexec, receiver
from wakeward.errors import WakewardError
from wakeward.store import Clip, ClipStore, Retention

from tests.host.loglines import plain
from tests.host.test_protocol import P

WAIT_S = 30.0


def pcm(clip_id: int, seconds: float = 0.5) -> bytes:
    rng = np.random.default_rng(clip_id)
    return rng.integers(-3000, 3000, int(seconds * 16000), dtype=np.int16).astype("<i2").tobytes()


class Device:
    """A stand-in device on one connection: hello, then clips; reads the receiver's acks."""

    def __init__(self, sock: socket.socket, device_id: str = "kitchen") -> None:
        self.sock = sock
        self.sock.settimeout(WAIT_S)
        self.decoder = P.Decoder()
        self.sock.sendall(P.encode_hello(device_id, "test", ["alexa"]))

    def clip(
        self, clip_id: int, audio: bytes | None = None, *, cut: bool = False, request_id=None
    ) -> None:
        """A detection clip, or with request_id a recording asked for by that request."""
        frames = self.clip_frames(clip_id, audio, request_id=request_id)
        if cut:  # a frame lost on the way: the receiver must not keep or ack the clip
            del frames[2]
        self.sock.sendall(b"".join(frames))

    @staticmethod
    def clip_frames(clip_id: int, audio: bytes | None = None, *, request_id=None) -> list[bytes]:
        """A clip's frames (clip_start, clip_data of 4000 bytes each, clip_end), to send
        whole or a part at a time; a detection's has 1000 ms of pre-roll."""
        audio = pcm(clip_id) if audio is None else audio
        if request_id is None:
            frames = [P.encode_clip_start(clip_id, "alexa", 240, 16000, 1000)]
        else:
            frames = [P.encode_clip_start(clip_id, "", 0, 16000, 0, P.CLIP_RECORDING, request_id)]
        chunks = [audio[i : i + 4000] for i in range(0, len(audio), 4000)]
        frames += [P.encode_clip_data(clip_id, seq, c) for seq, c in enumerate(chunks)]
        frames.append(P.encode_clip_end(clip_id, len(audio) // 2, 0))
        return frames

    def detection(self, model: str = "alexa", score: int = 240) -> None:
        """The device's detection message (it goes out at once, before its clip_start)."""
        self.sock.sendall(P.encode_detection(model, score, 1000))

    def status(self) -> None:
        self.sock.sendall(P.encode_status(1000, 1, 1, 0, 0, False, 16000, 50000))

    def ack(self) -> int:
        """The next ack's clip id (fails after WAIT_S)."""
        while True:
            for kind, item in self.decoder:
                if kind == "msg" and item["type"] == "ack":
                    return item["clip_id"]
            data = self.sock.recv(4096)
            if not data:
                raise AssertionError("the receiver closed the connection")
            self.decoder.feed(data)

    def next_message(self, kinds: tuple[str, ...]) -> dict:
        """The next of the receiver's messages of these types (others are skipped)."""
        while True:
            for kind, item in self.decoder:
                if kind == "msg" and item["type"] in kinds:
                    return item
            data = self.sock.recv(4096)
            if not data:
                raise AssertionError("the receiver closed the connection")
            self.decoder.feed(data)

    def take_play(self, dropped: int = 0) -> tuple[int, bytes]:
        """A play the receiver sends (play_start, play_data, play_end), answered with
        `played` as the firmware answers it: its id and audio."""
        start = self.next_message(("play_start",))
        assert (start["rate_hz"], start["channels"], start["sample_bytes"]) == (16000, 1, 2)
        audio = bytearray()
        seq = 0
        while (msg := self.next_message(("play_data", "play_end")))["type"] == "play_data":
            assert (msg["play_id"], msg["seq"]) == (start["play_id"], seq)
            audio += msg["pcm"]
            seq += 1
        assert msg["play_id"] == start["play_id"] and 2 * msg["samples"] == len(audio)
        played = len(audio) // 2 - dropped
        reason = P.PLAY_OVERFLOW if dropped else P.PLAY_DONE
        self.sock.sendall(P.encode_played(start["play_id"], played, dropped, reason))
        return start["play_id"], bytes(audio)

    def no_ack(self, within_s: float = 0.5) -> None:
        self.sock.settimeout(within_s)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return
        finally:
            self.sock.settimeout(WAIT_S)
        self.decoder.feed(data)
        got = [m for k, m in self.decoder if k == "msg"]
        assert not got, got


class InProcess:
    """A Receiver over a store in tmp_path, one thread per connection (socketpairs)."""

    def __init__(self, folder: Path, on_clip=None, *, listener=None, clips=None) -> None:
        self.lines: list[str] = []
        self.store = ClipStore(folder)
        self.receiver = receiver.Receiver(
            self.store, self.lines.append, on_clip=on_clip, listener=listener, clips=clips
        )
        self.threads: list[threading.Thread] = []

    def connect(self, device_id: str = "kitchen") -> Device:
        mine, theirs = socket.socketpair()
        thread = threading.Thread(target=self._serve, args=(theirs,), daemon=True)
        thread.start()
        self.threads.append(thread)
        return Device(mine, device_id)

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            self.receiver.handle(receiver.SocketStream(sock))

    def close(self, device: Device) -> None:
        device.sock.close()
        for thread in self.threads:
            thread.join(WAIT_S)

    def having(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]


@pytest.fixture
def rx(tmp_path: Path) -> Iterator[InProcess]:
    r = InProcess(tmp_path / "store")
    yield r
    r.store.close()


def test_a_clip_is_in_the_store_before_its_ack(rx):
    dev = rx.connect()
    dev.clip(7)
    assert dev.ack() == 7
    with ClipStore(rx.store.folder, create=False) as other:  # as another process sees it
        (clip,) = other.clips()
    assert (clip.device, clip.device_clip_id, clip.model, clip.score) == (
        "kitchen",
        7,
        "alexa",
        240,
    )
    assert (clip.pre_roll_ms, clip.end_reason, clip.samples) == (1000, "end_of_speech", 8000)
    assert clip.path.is_file() and rx.receiver.clips == [clip]
    assert rx.having(f"clip 7: alexa (score 240), 0.50 s, ended by end_of_speech -> clip {clip.id}")
    rx.close(dev)


def test_a_recording_nobody_here_asked_for_is_acknowledged_and_not_stored(rx):
    """A recording (clip_start kind 1) is the requester's, never a detection for the clip
    store; `wakeward listen` asked for none, so it acknowledges it and discards it (its
    requester has gone), and says so. One that arrived incomplete is not acknowledged."""
    dev = rx.connect()
    dev.clip(9, request_id=41, cut=True)
    dev.no_ack()
    dev.clip(9, request_id=41)
    assert dev.ack() == 9
    dev.clip(10)
    assert dev.ack() == 10
    assert [c.device_clip_id for c in rx.store.clips()] == [10]
    assert rx.having("recording 9 started on kitchen (request 41)")
    assert rx.having("recording 9: incomplete (")
    assert rx.having("recording 9 (request 41) from kitchen: nobody here asked for it; ")
    rx.close(dev)


def test_a_resend_is_stored_once_and_acknowledged_again(rx):
    dev = rx.connect()
    dev.clip(7)
    assert dev.ack() == 7
    rx.close(dev)
    dev = rx.connect()  # the device saw no ack: the same clip again, on a new connection
    dev.clip(7)
    assert dev.ack() == 7
    rx.close(dev)
    assert len(rx.store.clips()) == 1 and rx.receiver.duplicates == 1
    assert rx.having("clip 7: already stored as clip 1; acknowledged again")


def test_a_resend_of_a_clip_the_owner_deleted_is_acknowledged_not_stored(rx):
    dev = rx.connect()
    dev.clip(7)
    assert dev.ack() == 7
    rx.store.delete(1)
    dev.clip(7)
    assert dev.ack() == 7
    rx.close(dev)
    (clip,) = rx.store.clips()
    assert clip.deleted and not clip.path.exists()
    assert [x for x in rx.having("clip 7: already stored as clip 1, deleted ") if "(delete)" in x]


def test_the_same_id_with_other_audio_is_a_new_clip(rx):
    """A re-flashed board (new random counter) or a second board with the same device id
    can send an id again: other audio is another clip, stored, not taken for a resend."""
    dev = rx.connect()
    dev.clip(7)
    assert dev.ack() == 7
    dev.clip(7, pcm(99))
    assert dev.ack() == 7
    rx.close(dev)
    assert [c.device_clip_id for c in rx.store.clips()] == [7, 7]
    assert rx.receiver.duplicates == 0


def test_an_incomplete_clip_is_neither_stored_nor_acknowledged(rx):
    dev = rx.connect()
    dev.clip(7, pcm(7, 1.0), cut=True)
    dev.no_ack()
    dev.clip(8)
    assert dev.ack() == 8
    rx.close(dev)
    assert [c.device_clip_id for c in rx.store.clips()] == [8]
    assert rx.having("clip 7: incomplete")


def test_a_clip_the_store_cannot_take_is_not_acknowledged(rx, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rx.store, "add", full)
    dev = rx.connect()
    dev.clip(7)
    dev.no_ack()
    rx.close(dev)
    assert rx.having("clip 7: cannot store it ([Errno 28] No space left on device); not ack")


def test_retention_runs_after_each_new_clip_and_is_said(rx):
    got: list[Clip] = []
    rx.receiver.on_clip = got.append
    one = len(pcm(1)) + 44  # a clip's WAV
    rx.store.set_retention(Retention(max_bytes=2 * one))
    dev = rx.connect()
    for clip_id in (1, 2, 3):
        dev.clip(clip_id)
        assert dev.ack() == clip_id
    rx.close(dev)
    clips = rx.store.clips()
    assert [(c.device_clip_id, c.deleted_by) for c in clips] == [
        (1, "retention"),
        (2, None),
        (3, None),
    ]
    assert rx.having(f"retention: deleted clip {clips[0].id} (kitchen, alexa, received ")
    assert [c.device_clip_id for c in got] == [1, 2, 3]


def test_a_clip_retention_takes_at_once_does_not_reach_the_hook(rx):
    got: list[Clip] = []
    rx.receiver.on_clip = got.append
    rx.store.set_retention(Retention(max_bytes=1000))  # smaller than any clip
    dev = rx.connect()
    dev.clip(1)
    assert dev.ack() == 1
    rx.close(dev)
    assert got == [] and rx.store.clips()[0].deleted_by == "retention"


def test_the_status_file_is_in_the_store_folder_and_belongs_to_it(rx):
    dev = rx.connect("kitchen/../x")
    dev.status()
    dev.clip(1)
    assert dev.ack() == 1
    rx.close(dev)
    status = json.loads((rx.store.folder / "kitchen____x.status.json").read_text())
    assert status["device"] == "kitchen/../x" and status["clips_acked"] == 1
    with ClipStore(rx.store.folder) as again:
        assert not again.recovery, again.recovery.lines()  # not taken for a stray file


def test_each_status_adds_its_time_listened_to_the_store(rx):
    """Per device and per model its hello announced; a remainder past 999 ms (no firmware
    sends one) is said and not counted."""
    dev = rx.connect()
    for listened_s, rem_ms in ((5, 250), (9, 500), (12, 1000), (2, 0)):
        dev.sock.sendall(
            P.encode_status(1000, 0, 0, 0, 0, False, 0, 50000, 0, 0, listened_s, rem_ms)
        )
    dev.clip(1)  # the statuses went before it, on the same connection
    assert dev.ack() == 1
    rx.close(dev)
    listened = {e.model: (e.listened_ms, e.reboots) for e in rx.store.listened("kitchen")}
    # 5.25 s, then 4.25 s more; the third not counted; then lower: a reboot, 2 s whole
    assert listened == {"": (11_500, 1), "alexa": (11_500, 0)}
    assert rx.having("status from kitchen: listened_rem_ms 1000 is not 0..999: its time ")
    assert rx.having("recordings 0, listened 9.5 s")


# -- --exec ---------------------------------------------------------------------------------

ENV_SCRIPT = """\
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("WAKEWARD_")}
out = os.path.join(os.environ["OUT"], "clip-" + env["WAKEWARD_CLIP_ID"] + ".json")
with open(out, "w") as f:
    json.dump({"argv": sys.argv[1:], "env": env}, f)
print("heard", os.path.getsize(sys.argv[1]), "bytes")
"""


@pytest.fixture
def env_script(tmp_path: Path) -> Path:
    script = tmp_path / "env to file.py"
    script.write_text(ENV_SCRIPT)
    return script


def test_the_command_gets_the_wav_and_the_clips_metadata(tmp_path, env_script, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    rx = InProcess(tmp_path / "my store")  # a space in the path: still one argument
    template = f"{sys.executable} '{env_script}' {{wav}} --wav={{wav}}"
    command = clipexec.ClipCommand(template, rx.lines.append)
    rx.receiver.on_clip = command.submit
    dev = rx.connect()
    dev.clip(7)
    assert dev.ack() == 7
    rx.close(dev)
    command.close()
    clip = rx.store.get(1)
    ran = json.loads((tmp_path / "clip-1.json").read_text())
    assert ran["argv"] == [str(clip.path), f"--wav={clip.path}"]
    assert ran["env"] == {
        "WAKEWARD_CLIP_ID": "1",
        "WAKEWARD_DEVICE": "kitchen",
        "WAKEWARD_DEVICE_CLIP_ID": "7",
        "WAKEWARD_MODEL": "alexa",
        "WAKEWARD_SCORE": "240",
        "WAKEWARD_PROBABILITY": "0.941",
        "WAKEWARD_DURATION_S": "0.500",
        "WAKEWARD_RECEIVED_AT": clip.to_json()["received_at"],
        "WAKEWARD_WAV": str(clip.path),
    }
    assert rx.having(f"exec clip 1: heard {clip.bytes} bytes")
    assert (command.ran, command.failed) == (1, 0)
    rx.store.close()


def test_a_slow_command_does_not_hold_up_the_acks(tmp_path):
    rx = InProcess(tmp_path / "store")
    command = clipexec.ClipCommand("sleep 20", rx.lines.append, timeout_s=1.0)
    rx.receiver.on_clip = command.submit
    dev = rx.connect()
    start = time.monotonic()
    for clip_id in (1, 2):
        dev.clip(clip_id)
        assert dev.ack() == clip_id
    assert time.monotonic() - start < 1.0  # both acked while the first command still runs
    rx.close(dev)
    command.close()
    assert rx.having("exec clip 1: sleep ran past 1 s; killed")
    assert rx.having("exec clip 2: sleep ran past 1 s; killed")
    rx.store.close()


def test_a_full_command_queue_skips_the_clip_and_says_so(tmp_path):
    lines: list[str] = []
    command = clipexec.ClipCommand("sleep 20", lines.append, timeout_s=0.5, max_waiting=1)
    with ClipStore(tmp_path / "store") as s:
        clips = [
            s.add(pcm(i), device="d", device_clip_id=i, model="alexa", score=1).clip
            for i in (1, 2, 3)
        ]
    for clip in clips:
        command.submit(clip)
    command.close(wait=False)
    # the worker takes at most one clip while they are submitted: one at least is skipped
    skipped = [x for x in lines if " not run, 1 commands are waiting already" in x]
    assert command.skipped == len(skipped) >= 1


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("", "--exec: no command given"),
        ("'unclosed {wav}", '--exec "\'unclosed {wav}": No closing quotation'),
        ("no-such-program-here {wav}", "--exec: no-such-program-here: no such program"),
    ],
)
def test_a_bad_exec_command_is_refused_at_start(template, message):
    with pytest.raises(WakewardError) as e:
        clipexec.ClipCommand(template)
    assert str(e.value).startswith(message)


# -- `wakeward listen` as the owner runs it -------------------------------------------------


class Listen:
    """`wakeward listen --once` in its own process on a free port."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wakeward", "listen", "--tcp", "127.0.0.1:0", "--once", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1", OUT=str(cwd)),
        )
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        first = plain(self.proc.stdout.readline())
        self.lines.append(first.rstrip("\n"))
        assert first.startswith("listening on 127.0.0.1:"), first
        self.port = int(first.split()[2].split(":")[1].rstrip(","))

    def device(self) -> Device:
        return Device(socket.create_connection(("127.0.0.1", self.port), timeout=WAIT_S))

    def finish(self) -> list[str]:
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()  # through readline()'s reader: communicate() loses lines
        self.proc.wait(WAIT_S)
        self.lines += [plain(x) for x in out.splitlines()]
        return self.lines


def test_listen_exec_reports_a_failing_command_and_the_next_clip_still_arrives(tmp_path):
    listen = Listen(
        "--store", str(tmp_path / "store"), "--exec", "sh -c 'echo oops >&2; exit 3'", cwd=tmp_path
    )
    dev = listen.device()
    for clip_id in (1, 2):
        dev.clip(clip_id)
        assert dev.ack() == clip_id
    dev.sock.close()
    lines = listen.finish()
    assert listen.proc.returncode == 0, lines
    for store_id in (1, 2):
        assert f"exec clip {store_id}: oops" in lines
        assert f"exec clip {store_id}: sh exited with 3" in lines
    with ClipStore(tmp_path / "store", create=False) as s:
        assert [c.device_clip_id for c in s.clips()] == [1, 2]


def test_listen_exec_writes_the_env_of_each_clip(tmp_path, env_script):
    listen = Listen(
        "--store",
        str(tmp_path / "store"),
        "--exec",
        f"{sys.executable} '{env_script}' {{wav}}",
        cwd=tmp_path,
    )
    dev = listen.device()
    dev.clip(41)
    assert dev.ack() == 41
    dev.sock.close()
    lines = listen.finish()
    ran = json.loads((tmp_path / "clip-1.json").read_text())
    assert ran["env"]["WAKEWARD_DEVICE_CLIP_ID"] == "41"
    assert ran["argv"] == [ran["env"]["WAKEWARD_WAV"]]
    assert Path(ran["argv"][0]).parent == tmp_path / "store"
    assert [x for x in lines if x.startswith("exec clip 1: heard ")]


def test_listen_out_is_gone_with_a_pointer_to_the_store(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "wakeward", "listen", "--tcp", "127.0.0.1:0", "--out", "clips"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("wakeward: --out is gone: clips go to the clip store (--store")
    assert not (tmp_path / "clips").exists()
