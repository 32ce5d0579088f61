"""`wakeward listen`: the receiver on the owner's PC. It speaks the firmware's own protocol
module (firmware/protocol.py, loaded by path), prints the device's log lines and messages,
writes each finished clip as a 16 kHz WAV with a JSON sidecar, and acknowledges it."""

from __future__ import annotations

import importlib.util
import json
import socket
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


def load_protocol() -> ModuleType:
    path = unixport.firmware_dir() / "protocol.py"
    spec = importlib.util.spec_from_file_location("wakeward_protocol", path)
    if spec is None or spec.loader is None:
        raise WakewardError(f"{path}: cannot load the protocol module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Receiver:
    """Turns one device connection's bytes into clips on disk."""

    def __init__(self, out_dir: Path, say: Callable[[str], None] = print):
        self.protocol = load_protocol()
        self.out_dir = out_dir
        self.say = say
        self.clips: list[Path] = []
        self.audio_bytes = 0
        self._open: dict[int, dict] = {}
        self._device = "device"

    def handle(self, conn: socket.socket) -> None:
        decoder = self.protocol.Decoder()
        while True:
            try:
                data = conn.recv(_RECV_BYTES)
            except ConnectionResetError:
                data = b""
            if not data:
                break
            decoder.feed(data)
            for kind, item in decoder:
                reply = self._item(kind, item)
                if reply:
                    try:
                        conn.sendall(reply)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the device has gone; the clip is saved, it resends if unacked
        decoder.finish()
        for kind, item in decoder:
            self._item(kind, item)
        for clip_id in list(self._open):
            self.say(f"clip {clip_id}: the connection closed before its end; not kept")
            del self._open[clip_id]

    def _item(self, kind: str, item) -> bytes | None:
        p = self.protocol
        if kind == p.LOG:
            self.say(f"device: {bytes(item).decode(errors='replace').rstrip()}")
            return None
        if kind == p.ERR:
            self.say(f"protocol error: {item}")
            return None
        kind = item["type"]
        if kind == "hello":
            self._device = item["device_id"]
            self.say(
                f"hello from {item['device_id']} (firmware {item['firmware']}, "
                f"protocol {item['protocol']}, models: {', '.join(item['models']) or 'none'})"
            )
        elif kind == "clip_start":
            self._open[item["clip_id"]] = {**item, "pcm": bytearray(), "received": time.time()}
            self.say(
                f"clip {item['clip_id']} started: {item['model']} (score {item['score']}), "
                f"{item['pre_roll_ms']} ms of pre-roll"
            )
        elif kind == "clip_data":
            clip = self._open.get(item["clip_id"])
            if clip is None:
                self.say(f"clip data for unknown clip {item['clip_id']}: dropped")
                return None
            clip["pcm"] += item["pcm"]
            self.audio_bytes += len(item["pcm"])
        elif kind == "clip_end":
            clip = self._open.pop(item["clip_id"], None)
            if clip is None:
                self.say(f"end of unknown clip {item['clip_id']}")
                return None
            self._save(clip, item)
            return p.encode_ack(item["clip_id"])
        else:
            self.say(f"{kind}: {item}")
        return None

    def _save(self, clip: dict, end: dict) -> None:
        samples = np.frombuffer(bytes(clip["pcm"]), "<i2").astype(np.int16)
        if len(samples) != end["samples"]:
            self.say(
                f"clip {clip['clip_id']}: {len(samples)} samples arrived of {end['samples']}"
            )
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(clip["received"]))
        base = self.out_dir / f"{self._device}-{stamp}-clip{clip['clip_id']}"
        n = 1
        while base.with_suffix(".wav").exists():  # never overwrite what the owner has
            n += 1
            base = self.out_dir / f"{self._device}-{stamp}-clip{clip['clip_id']}-{n}"
        wav = write_wav(base.with_suffix(".wav"), samples)
        meta = {
            "device": self._device,
            "clip_id": clip["clip_id"],
            "model": clip["model"],
            "score": clip["score"],
            "pre_roll_ms": clip["pre_roll_ms"],
            "samples": len(samples),
            "seconds": len(samples) / clip["rate_hz"],
            "end": self.protocol.REASONS[end["reason"]],
            "received": clip["received"],
        }
        base.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
        self.clips.append(wav)
        self.say(
            f"clip {clip['clip_id']}: {clip['model']} (score {clip['score']}), "
            f"{meta['seconds']:.2f} s, ended by {meta['end']} -> {wav}"
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
    """Accept device connections (all of them, or `connections` of them) and receive."""
    out_dir.mkdir(parents=True, exist_ok=True)
    receiver = Receiver(out_dir, say)
    try:
        server = socket.create_server((host, port))
    except OSError as e:
        raise WakewardError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    with server:
        bound = server.getsockname()[1]
        say(f"listening on {host}:{bound}, clips go to {out_dir}")
        if on_listening is not None:
            on_listening(bound)
        served = 0
        while connections is None or served < connections:
            conn, peer = server.accept()
            with conn:
                say(f"device connected from {peer[0]}")
                receiver.handle(conn)
            served += 1
    return receiver


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
