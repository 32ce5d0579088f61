"""`wakeward listen --serial PORT`: the receiver on the board's USB serial port (or any port
pyserial opens, a pseudo-terminal of `wakeward sim --link serial` included).

The device's link runs over its console (firmware/console.py): frames and its log lines on
one line, acks back. The bytes go to the same session handler as a TCP connection's
(receiver.Receiver.handle): clips into the clip store before their ack, the ack written
back on the port, the device's log lines printed as `device: ...`. There is no TLS and no
pairing check: the cable runs straight to this PC, and the owner names the port.

A port that goes away (the board unplugged, reset, or the simulator ended) is opened again
as soon as it is back, for REOPEN_S; after that the receiver stops with a message saying
what to do. Nothing is lost meanwhile: the device keeps every clip on its flash until it
is acknowledged, and sends it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wakeward.errors import WakewardError
from wakeward.link.servicelog import warning
from wakeward.receiver import ClipListener, Receiver, SessionListener, say_line
from wakeward.serialport import DEFAULT_BAUD, open_port
from wakeward.store import Clip, ClipStore

REOPEN_S = 30.0
_REOPEN_EVERY_S = 0.5
_READ_TIMEOUT_S = 0.2  # a read returns this often with nothing (it then reads again)
_WRITE_TIMEOUT_S = 2.0  # an ack the device does not take by then is lost (it resends)


class SerialStream:
    """A serial port as a receiver.ByteStream: reads wait for bytes however long the line
    is quiet (a device sends a status every link.status_interval_ms, but a board that is
    off sends nothing, and that is no reason to close); a port that fails (unplugged)
    raises OSError (pyserial's SerialException is one)."""

    def __init__(self, handle: Any, stop: threading.Event | None = None) -> None:
        self.handle = handle
        self.stop = stop or threading.Event()

    def read(self) -> bytes:
        while not self.stop.is_set():
            data = self.handle.read(max(1, self.handle.in_waiting))
            if data:
                return data
        return b""

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def linger(self) -> None:
        pass  # nothing is refused on a serial port

    def close(self) -> None:
        self.stop.set()  # the next read returns b"" (within _READ_TIMEOUT_S)

    def greeted(self) -> None:
        pass  # no hello deadline: the owner named the port


def serve_serial(
    port: str,
    baud: int = DEFAULT_BAUD,
    store_dir: Path | None = None,
    *,
    say: Callable[[str], None] = say_line,
    once: bool = False,
    on_clip: Callable[[Clip], None] | None = None,
    reopen_s: float = REOPEN_S,
    listener: SessionListener | None = None,
    clips: ClipListener | None = None,
    stop: threading.Event | None = None,
    on_open: Callable[[], None] | None = None,
) -> Receiver:
    """Receive from the device on `port` into the clip store in `store_dir` (default: the
    store's default folder) until interrupted, or with `once` until the port goes away, or
    until `stop` is set. `listener`: the owner's requests (receiver.Receiver), which hears
    of each session on the port at once (the cable is the owner's: no hello to wait for),
    `clips` hears detection clips live (receiver.ClipListener);
    `on_open` is called once the port is open and the store ready."""
    stop = stop or threading.Event()
    handle = _open(port, baud)  # a missing or busy port: its message before anything else
    try:
        with ClipStore(store_dir) as store:
            for line in store.recovery.lines():
                say(f"clip store: {line}")
            receiver = Receiver(store, say, on_clip=on_clip, listener=listener, clips=clips)
            say(
                f"listening on serial port {port} ({baud} baud), clips go to the clip store "
                f"in {store.folder} ({store.retention().describe()})"
            )
            if on_open is not None:
                on_open()
            while True:
                receiver.handle(SerialStream(handle, stop), port, attached=True)
                handle.close()
                if once or stop.is_set():
                    return receiver
                say(
                    warning(
                        f"{port}: the port went away (the board unplugged or reset?); opening "
                        f"it again as soon as it is back, for {reopen_s:.0f} s"
                    )
                )
                handle = _reopen(port, baud, reopen_s)
                say(f"{port}: open again")
    finally:
        handle.close()


def _open(port: str, baud: int) -> Any:
    return open_port(port, baud, timeout=_READ_TIMEOUT_S, write_timeout=_WRITE_TIMEOUT_S)


def _reopen(port: str, baud: int, within_s: float) -> Any:
    end = time.monotonic() + within_s
    while True:
        try:
            return _open(port, baud)
        except WakewardError as e:
            if time.monotonic() >= end:
                raise WakewardError(
                    f"{port} did not come back within {within_s:.0f} s: plug the board back "
                    f"in (with a data cable), then run `wakeward listen --serial {port}` "
                    f"again (the last try said: {e})"
                ) from None
        time.sleep(_REOPEN_EVERY_S)
