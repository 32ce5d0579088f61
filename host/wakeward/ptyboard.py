"""A MicroPython board on this PC: the unix port's REPL (`micropython -i`) on a
pseudo-terminal, its working directory standing for the board's flash.

mpremote opens `port` as it opens a serial port. A second pseudo-terminal carries it: a
thread copies bytes between the two masters, so micropython keeps its own terminal while
mpremote connects and disconnects as often as it likes. A soft reset hangs on the unix port,
so everything talks to it with `resume` (deploy's soft_reset=False).

`wakeward sim --board-port` runs one for the user (serve), so that `wakeward deploy --port
PATH --sim-board` can be tried without a board; the tests use it too.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import tty
from collections.abc import Callable
from pathlib import Path

from wakeward import unixport


class PtyBoard:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        mp_master, mp_slave = os.openpty()
        tty.setraw(mp_slave)
        self.proc = subprocess.Popen(
            [str(unixport.micropython_exe()), "-i"],
            stdin=mp_slave,
            stdout=mp_slave,
            stderr=mp_slave,
            cwd=root,
            start_new_session=True,
        )
        os.close(mp_slave)
        port_master, self._port_slave = os.openpty()
        tty.setraw(self._port_slave)
        self.port = os.ttyname(self._port_slave)
        self._fds = (mp_master, port_master)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        mp_master, port_master = self._fds
        peer = {mp_master: port_master, port_master: mp_master}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(peer), [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    return
                if not data:
                    return
                os.write(peer[fd], data)

    def wait(self) -> int:
        """Until the board's MicroPython exits; its exit code."""
        return self.proc.wait()

    def path(self, name: str) -> Path:
        return self.root / name

    def close(self) -> None:
        self._stop.set()
        self.proc.kill()
        self.proc.wait()
        self._thread.join(timeout=2)
        for fd in (*self._fds, self._port_slave):
            os.close(fd)


def serve(flash: Path, say: Callable[[str], None] = print) -> int:
    """`wakeward sim --board-port`: a board on a pseudo-terminal until Ctrl-C (or until its
    MicroPython exits), its path said first for `wakeward deploy --port`."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # a terminated `sim` takes its board with it
    board = PtyBoard(flash)
    try:
        say(
            f"sim: a MicroPython board is on {board.port} (its flash: {flash}): try "
            f"`wakeward deploy --port {board.port} --sim-board`; Ctrl-C stops the board"
        )
        with contextlib.suppress(KeyboardInterrupt):
            board.wait()
    finally:
        board.close()
    return 0
