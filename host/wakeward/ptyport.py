"""The sim board's USB serial port: a pseudo-terminal with the firmware's console at its far
end, for `wakeward sim --link serial` and the tests.

The firmware runs with its stdin and stdout (the console, firmware/console.py) on pipes to
this process, which plays the board's USB CDC: it copies the console's output to the
pty's master side, and what arrives there to the console's input. The slave side, `path`
(/dev/pts/N), is the port `wakeward listen --serial` opens, as it would open /dev/ttyACM0.
The pty is raw (tty.setraw on the slave before anyone opens it: no echo, no CR/LF
translation, no flow-control or signal characters), so every byte value passes unchanged
both ways; pyserial sets the same when it opens the port.

Why pipes in between rather than the firmware on the master itself: a tty keeps what
nobody reads (about 14 KB), and then the firmware would block in write(), where a real
board goes on. Here, as with MicroPython's USB CDC on the ESP32-S3
(shared/tinyusb/mp_usbd_cdc.c), what the device writes while no program has the port open
is lost, and a program that has it open but does not read holds the device up at most
TX_TIMEOUT_S (MICROPY_HW_USB_CDC_TX_TIMEOUT) before the rest is lost. The port exists
from the start (a board plugged in) until close() (unplugged), when its path goes away as
/dev/ttyACM0 does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import subprocess
import termios
import threading
import time
import tty
from collections.abc import Callable

TX_TIMEOUT_S = 0.5
_READ_BYTES = 65536
_IDLE_S = 0.05  # how often a closed port is looked at again
_LINGER_S = 1.0  # at close: how long the reader gets for what is still on its way


class PtyPort:
    """A pseudo-terminal standing for the board's USB serial port (module docstring).

    `say` gets the device's log lines (the console's text between frames), as `wakeward
    sim` prints a TCP device's output; `to_device` and `from_device` (tests) may change
    what goes to the device and what it sends."""

    def __init__(
        self,
        *,
        say: Callable[[str], None] | None = None,
        to_device: Callable[[bytes], bytes] | None = None,
        from_device: Callable[[bytes], bytes] | None = None,
    ) -> None:
        from wakeward.receiver import load_protocol

        master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)  # until a program opens the port, nobody has it open
        os.set_blocking(master, False)
        self._master = master
        self.say = say
        self._decoder = load_protocol().Decoder()
        self._to_device = to_device
        self._from_device_hook = from_device
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self.lost_bytes = 0  # device output nobody read

    def is_open(self) -> bool:
        """Whether a program has the port open."""
        return not self._events(select.POLLIN, 0) & select.POLLHUP

    def wait_open(self, timeout_s: float | None = None) -> bool:
        """Wait until a program opens the port; False if none did within timeout_s."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.is_open():
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(_IDLE_S)
        return True

    def attach(self, proc: subprocess.Popen) -> None:
        """Carry proc's console: its stdout to the port, the port to its stdin (both
        binary pipes, stderr merged into stdout as on the board's console)."""
        if proc.stdout is None or proc.stdin is None:
            raise ValueError("the process needs its stdin and stdout on pipes")
        for target, stream in ((self._from_device, proc.stdout), (self._to, proc.stdin)):
            thread = threading.Thread(target=target, args=(stream,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Unplug, once proc has exited: what it wrote goes out (the reader gets
        _LINGER_S to take it), then the port's path goes away."""
        if self._threads:
            self._threads[0].join()  # the device's output, to its end
        end = time.monotonic() + _LINGER_S
        while self._unread() and time.monotonic() < end:
            time.sleep(_IDLE_S)
        self._closed.set()
        for thread in self._threads[1:]:
            thread.join()
        os.close(self._master)

    def _events(self, mask: int, timeout_ms: int) -> int:
        poller = select.poll()
        poller.register(self._master, mask)
        return sum(ev for _, ev in poller.poll(timeout_ms))

    def _unread(self) -> int:
        """Bytes on their way to the program that has the port open (0 when none has)."""
        time.sleep(_IDLE_S)  # the pty hands bytes to the reader's side asynchronously
        if not self.is_open():
            return 0
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return 0
        try:
            return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
        finally:
            os.close(fd)

    def _from_device(self, stdout) -> None:
        fd = stdout.fileno()
        while data := os.read(fd, _READ_BYTES):
            self._log(data)
            if self._from_device_hook is not None:
                data = self._from_device_hook(data)
            self._send(data)
        self._log(None)

    def _log(self, data: bytes | None) -> None:
        if self.say is None:
            return
        decoder = self._decoder
        if data is None:
            decoder.finish()
        else:
            decoder.feed(data)
        for kind, item in decoder:
            if kind == "log":
                self.say(bytes(item).decode(errors="replace"))

    def _send(self, data: bytes) -> None:
        """To the port, as the board's USB CDC does: lost while the port is closed, or
        when its reader takes nothing for TX_TIMEOUT_S."""
        view = memoryview(data)
        stalled_at = None
        while view:
            if not self.is_open():
                break
            try:
                view = view[os.write(self._master, view) :]
                stalled_at = None
                continue
            except BlockingIOError:
                pass
            except OSError:
                break
            now = time.monotonic()
            stalled_at = stalled_at or now
            if now - stalled_at >= TX_TIMEOUT_S:
                break
            self._events(select.POLLOUT, int(_IDLE_S * 1000))
        self.lost_bytes += len(view)

    def _to(self, stdin) -> None:
        """What the port's reader sends, to the device's input."""
        while not self._closed.is_set():
            if not self._events(select.POLLIN, int(_IDLE_S * 1000)) & select.POLLIN:
                if not self.is_open():
                    time.sleep(_IDLE_S)  # closed: the poll returns at once
                continue
            try:
                data = os.read(self._master, _READ_BYTES)
            except BlockingIOError:
                continue
            except OSError:  # EIO: the reader closed the port meanwhile
                continue
            if self._to_device is not None:
                data = self._to_device(data)
            with contextlib.suppress(OSError):  # the firmware has exited
                stdin.write(data)
                stdin.flush()
