"""`wakeward listen`: the receiver on the owner's PC. It speaks the firmware's own protocol
module (firmware/protocol.py, loaded by path), prints the device's log lines and messages,
writes each finished clip as a 16 kHz WAV with a JSON sidecar, and acknowledges it.

A clip is stored once per (device id, clip id): the device resends every clip it has no
acknowledgement for (after a reconnect, or a reboot), and a clip already in the folder is
acknowledged again without a second copy. The clips already there are known from their
sidecars when the receiver starts, so this holds across receiver restarts too. A clip is
stored only when it is complete (its clip_data sequence has no gap and adds up to the
clip_end's sample count); a clip cut off by a dropped connection is never written, and the
WAV and its sidecar are each written to a temporary name and renamed. Each device's last
status message (its counters: clips sent, acknowledged, queued and dropped, audio bytes
sent, uptime, mute) is kept in OUT/<device>.status.json.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from wakeward import unixport
from wakeward.audio import write_wav
from wakeward.errors import WakewardError

_RECV_BYTES = 4096
STATUS_SUFFIX = ".status.json"
# A connection silent this long is closed: the device sends a status message at least every
# 10 minutes (config.py, link.status_interval_ms), so it has gone without closing.
IDLE_TIMEOUT_S = 900.0


def load_protocol() -> ModuleType:
    path = unixport.firmware_dir() / "protocol.py"
    spec = importlib.util.spec_from_file_location("wakeward_protocol", path)
    if spec is None or spec.loader is None:
        raise WakewardError(f"{path}: cannot load the protocol module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def safe_name(device_id: str) -> str:
    """A device id as a file name part: anything but letters, digits, '-' and '_' becomes
    '_' (the id is the device's word, not to be trusted with paths)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", device_id)[:64] or "_"


def _write_text_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Session:
    """One device connection: who it is and its clips under way."""

    def __init__(self) -> None:
        self.device = "device"
        self.firmware = ""
        self.open: dict[int, dict] = {}


class Receiver:
    """Turns device connections' bytes into clips on disk (one thread per connection)."""

    def __init__(self, out_dir: Path, say: Callable[[str], None] = print):
        self.protocol = load_protocol()
        self.out_dir = out_dir
        self.say = say
        self.clips: list[Path] = []
        self.duplicates = 0
        self.audio_bytes = 0
        self.statuses: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._stored = self._index()

    def _index(self) -> dict[tuple[str, int], Path]:
        """(device id, clip id) -> WAV of every clip already in the folder."""
        stored: dict[tuple[str, int], Path] = {}
        for meta_path in self.out_dir.glob("*.json"):
            if meta_path.name.endswith(STATUS_SUFFIX):
                continue
            try:
                meta = json.loads(meta_path.read_text())
                key = (str(meta["device"]), int(meta["clip_id"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not a sidecar of ours
            wav = meta_path.with_suffix(".wav")
            if wav.is_file():
                stored[key] = wav
        return stored

    def handle(self, conn: socket.socket) -> None:
        session = _Session()
        decoder = self.protocol.Decoder()
        while True:
            try:
                data = conn.recv(_RECV_BYTES)
            except TimeoutError:
                self.say(f"{session.device}: silent for {IDLE_TIMEOUT_S:.0f} s; connection closed")
                data = b""
            except OSError:
                data = b""
            if not data:
                break
            decoder.feed(data)
            for kind, item in decoder:
                reply = self._item(session, kind, item)
                if reply:
                    try:
                        conn.sendall(reply)
                    except OSError:
                        pass  # the device has gone; the clip is saved, it resends if unacked
        decoder.finish()
        for kind, item in decoder:
            self._item(session, kind, item)
        for clip_id in list(session.open):
            self.say(f"clip {clip_id}: the connection closed before its end; not kept")
            del session.open[clip_id]

    def _item(self, session: _Session, kind: str, item) -> bytes | None:
        p = self.protocol
        if kind == p.LOG:
            self.say(f"device: {bytes(item).decode(errors='replace').rstrip()}")
            return None
        if kind == p.ERR:
            self.say(f"protocol error: {item}")
            return None
        kind = item["type"]
        if kind == "hello":
            session.device = item["device_id"]
            session.firmware = item["firmware"]
            self.say(
                f"hello from {item['device_id']} (firmware {item['firmware']}, "
                f"protocol {item['protocol']}, models: {', '.join(item['models']) or 'none'})"
            )
        elif kind == "clip_start":
            session.open[item["clip_id"]] = {
                **item,
                "pcm": bytearray(),
                "next_seq": 0,
                "gap": False,
                "received": time.time(),
            }
            self.say(
                f"clip {item['clip_id']} started: {item['model']} (score {item['score']}), "
                f"{item['pre_roll_ms']} ms of pre-roll"
            )
        elif kind == "clip_data":
            clip = session.open.get(item["clip_id"])
            if clip is None:
                self.say(f"clip data for unknown clip {item['clip_id']}: dropped")
                return None
            if item["seq"] != clip["next_seq"]:
                clip["gap"] = True
            clip["next_seq"] = item["seq"] + 1
            clip["pcm"] += item["pcm"]
            with self._lock:
                self.audio_bytes += len(item["pcm"])
        elif kind == "clip_end":
            return self._clip_end(session, item)
        elif kind == "status":
            self._status(session, item)
        else:
            self.say(f"{kind}: {item}")
        return None

    def _clip_end(self, session: _Session, end: dict) -> bytes | None:
        clip_id = end["clip_id"]
        clip = session.open.pop(clip_id, None)
        if clip is None:
            self.say(f"end of unknown clip {clip_id}")
            return None
        samples = len(clip["pcm"]) // 2
        if clip["gap"] or samples != end["samples"]:
            gap = ", frames missing" if clip["gap"] else ""
            self.say(
                f"clip {clip_id}: incomplete ({samples} of {end['samples']} samples{gap}); "
                "not kept, not acknowledged"
            )
            return None
        with self._lock:
            have = self._stored.get((session.device, clip_id))
            if have is not None:
                self.duplicates += 1
                self.say(f"clip {clip_id}: already stored as {have}; acknowledged again")
            else:
                self._save(session, clip, end)
        return self.protocol.encode_ack(clip_id)

    def _save(self, session: _Session, clip: dict, end: dict) -> None:
        samples = np.frombuffer(bytes(clip["pcm"]), "<i2").astype(np.int16)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(clip["received"]))
        name = f"{safe_name(session.device)}-{stamp}-clip{clip['clip_id']}"
        base = self.out_dir / name
        n = 1
        while base.with_suffix(".wav").exists():  # never overwrite what the owner has
            n += 1
            base = self.out_dir / f"{name}-{n}"
        wav = write_wav(base.with_suffix(".wav"), samples)
        meta = {
            "device": session.device,
            "clip_id": clip["clip_id"],
            "model": clip["model"],
            "score": clip["score"],
            "pre_roll_ms": clip["pre_roll_ms"],
            "samples": len(samples),
            "seconds": len(samples) / clip["rate_hz"],
            "end": self.protocol.REASONS[end["reason"]],
            "received": clip["received"],
        }
        # the sidecar last: a WAV without one is not a stored clip (see _index)
        _write_text_atomically(base.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")
        self._stored[(session.device, clip["clip_id"])] = wav
        self.clips.append(wav)
        self.say(
            f"clip {clip['clip_id']}: {clip['model']} (score {clip['score']}), "
            f"{meta['seconds']:.2f} s, ended by {meta['end']} -> {wav}"
        )

    def _status(self, session: _Session, status: dict) -> None:
        fields = {k: v for k, v in status.items() if k != "type"}
        record = {"device": session.device, "firmware": session.firmware, **fields}
        record["received"] = time.time()
        path = self.out_dir / (safe_name(session.device) + STATUS_SUFFIX)
        with self._lock:
            self.statuses[session.device] = record
            _write_text_atomically(path, json.dumps(record, indent=1) + "\n")
        self.say(
            f"status from {session.device}: up {status['uptime_ms'] / 1000:.1f} s, "
            f"clips sent {status['clips_sent']}, acknowledged {status['clips_acked']}, "
            f"queued {status['queued']}, dropped {status['clips_dropped']}, "
            f"audio bytes sent {status['audio_bytes']}, "
            f"{'muted' if status['muted'] else 'listening'}, free heap {status['free_heap']}"
        )


def serve_tcp(
    host: str,
    port: int,
    out_dir: Path,
    *,
    say: Callable[[str], None] = print,
    connections: int | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> Receiver:
    """Accept device connections (all of them, or `connections` of them) and receive, each
    connection in its own thread (a device that reconnects while its old connection has not
    timed out yet is not kept waiting)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    receiver = Receiver(out_dir, say)
    try:
        server = socket.create_server((host, port))
    except OSError as e:
        raise WakewardError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    threads: list[threading.Thread] = []
    with server:
        bound = server.getsockname()[1]
        say(f"listening on {host}:{bound}, clips go to {out_dir}")
        if on_listening is not None:
            on_listening(bound)
        served = 0
        while connections is None or served < connections:
            conn, peer = server.accept()
            served += 1
            thread = threading.Thread(
                target=_serve_connection, args=(receiver, conn, peer[0]), daemon=True
            )
            thread.start()
            threads.append(thread)
    for thread in threads:
        thread.join()
    return receiver


def _serve_connection(receiver: Receiver, conn: socket.socket, peer: str) -> None:
    with conn:
        conn.settimeout(IDLE_TIMEOUT_S)
        receiver.say(f"device connected from {peer}")
        receiver.handle(conn)


def serve_in_background(
    out_dir: Path, say: Callable[[str], None]
) -> tuple[int, threading.Thread, list]:
    """A one-connection receiver on a free loopback port, in a thread (demo and tests)."""
    ready = threading.Event()
    port: list[int] = []
    result: list = []

    def listening(p: int) -> None:
        port.append(p)
        ready.set()

    def run() -> None:
        result.append(
            serve_tcp("127.0.0.1", 0, out_dir, say=say, connections=1, on_listening=listening)
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise WakewardError("the receiver did not start")
    return port[0], thread, result
