"""The log of a command that runs for long (`wakeward listen`, `wakeward satellite`,
`wakeward wake-service`): each line with its time and level, on stdout and, with
`--log-file PATH`, appended to that file.

The receiver's code says its lines through a `say(line)` callable, as before; a line is
INFO unless it was made with `warning()` or `error()` (a str that carries its level, so a
test that collects lines in a list still sees plain strings). `say_line` (the plain print
that monitor, record and the tests use) prints the text as it is.

    2026-12-07 13:24:25 INFO listening on 0.0.0.0:7000, clips go to ...
    2026-12-07 13:24:25 WARNING plain TCP, no TLS: any device on the network ...

Under systemd (stdout is the journal's stream: $JOURNAL_STREAM names it) the journal keeps
the time itself, so a line carries its level as the journal reads it (`<4>` for a warning:
`journalctl -p warning` picks them) and no time of its own; the log file keeps both.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TextIO

from wakeward import config
from wakeward.errors import WakewardError
from wakeward.wording import plural

if TYPE_CHECKING:
    from wakeward.receiver import Receiver

LOGGER = "wakeward.service"
FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# sd-daemon(3)'s priority prefixes, as the journal reads them from a service's stdout
_JOURNAL_PRIORITY = {logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6}


class LevelLine(str):
    """A line said at a level other than INFO (warning(), error())."""

    level: ClassVar[int] = logging.INFO


class _Warning(LevelLine):
    level = logging.WARNING


class _Error(LevelLine):
    level = logging.ERROR


def warning(text: str) -> str:
    return _Warning(text)


def error(text: str) -> str:
    return _Error(text)


def level_of(line: str) -> int:
    return line.level if isinstance(line, LevelLine) else logging.INFO


def same_level(line: str, text: str) -> str:
    """`text` (a rewrite of `line`, e.g. made printable) at `line`'s level."""
    return type(line)(text) if isinstance(line, LevelLine) else text


class _Formatter(logging.Formatter):
    """FORMAT, without a level the line names itself ("WARNING: plain TCP ...")."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        own = f"{record.levelname}: "
        if record.message.startswith(own):
            record.message = record.message[len(own) :]
        return super().formatMessage(record)


class _JournalFormatter(_Formatter):
    def __init__(self) -> None:
        super().__init__("%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = _JOURNAL_PRIORITY.get(record.levelno, _JOURNAL_PRIORITY[logging.INFO])
        return f"<{priority}>{super().format(record)}"


def _on_journal(stream: TextIO) -> bool:
    """Whether `stream` is the journal's (systemd sets JOURNAL_STREAM=DEVICE:INODE)."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


class ServiceLog:
    """Logging for one receiver run: `say` for its lines; `close()` when it ends."""

    def __init__(self, log_file: Path | None = None, stream: TextIO | None = None) -> None:
        stream = stream if stream is not None else sys.stdout
        self.logger = logging.getLogger(LOGGER)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False  # only these handlers: no root logger's on top
        out = logging.StreamHandler(stream)
        out.setFormatter(
            _JournalFormatter() if _on_journal(stream) else _Formatter(FORMAT, DATE_FORMAT)
        )
        self.handlers: list[logging.Handler] = [out]
        self.file: logging.Handler | None = None
        if log_file is not None:
            try:
                self.file = logging.FileHandler(log_file, mode="a", encoding="utf-8")
            except OSError as e:
                raise WakewardError(f"--log-file {log_file}: cannot write ({e.strerror})") from None
            self.file.setFormatter(_Formatter(FORMAT, DATE_FORMAT))
            self.handlers.append(self.file)
        for handler in self.handlers:
            self.logger.addHandler(handler)

    def say(self, line: str) -> None:
        self.logger.log(level_of(line), line)

    def fatal(self, message: str) -> None:
        """The error the command ends with: into the log file only (the terminal and the
        journal get it as `wakeward: message` on stderr)."""
        if self.file is not None:
            self.file.handle(
                self.logger.makeRecord(LOGGER, logging.ERROR, __file__, 0, message, (), None)
            )

    def close(self) -> None:
        for handler in self.handlers:
            self.logger.removeHandler(handler)
            handler.close()

    def __enter__(self) -> ServiceLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StopOnSignal:
    """While in it, Ctrl-C (SIGINT) and SIGTERM (`systemctl stop`) set `event`: the
    receiver stops taking connections, ends those under way and returns, and the command
    says what it received and exits 0. A second signal interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: str | None = None  # the signal's name, once one came
        self._before: dict[int, object] = {}

    def _handle(self, number: int, frame: object) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signal = signal.Signals(number).name
        self.event.set()

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may set handlers (a test's thread: none)
        for number in self.SIGNALS:
            self._before[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._before.items():
            signal.signal(number, handler)  # type: ignore[arg-type]


def received(receiver: Receiver, why: str) -> str:
    """What a run received, said when it stops: its new clips (per device), the resends it
    already had, and the devices that said hello."""
    per_device = Counter(clip.device for clip in receiver.clips)
    clips = plural(len(receiver.clips), "new clip") + " stored"
    if per_device:
        clips += " (" + ", ".join(f"{d}: {n}" for d, n in sorted(per_device.items())) + ")"
    resends = receiver.duplicates
    devices = sorted(receiver.devices)
    return (
        f"stopped ({why}): {clips}"
        + (f", {plural(resends, 'resend')} of clips already stored" if resends else "")
        + "; "
        + (f"{plural(len(devices), 'device')}: {', '.join(devices)}" if devices else "no device")
        + " said hello"
    )


_SIGNAL_WORDS = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM"}


def run(
    log_file: Path | None,
    serve: Callable[[Callable[[str], None], threading.Event], Receiver | None],
) -> int:
    """A command (listen, satellite, wake-service) as a service: `serve(say, stop)` with its
    lines logged (ServiceLog) until it returns or a signal stops it (StopOnSignal); then
    what a receiver received is said (serve returns the Receiver; a command that receives
    no clips returns None and says its own last line), and the command exits 0. Its error
    is logged to the log file too before it goes up to the command line."""
    with ServiceLog(log_file) as log, StopOnSignal() as stopping:
        try:
            receiver = serve(log.say, stopping.event)
        except WakewardError as e:
            log.fatal(f"wakeward: {e}")
            raise
        if receiver is not None:
            why = _SIGNAL_WORDS.get(stopping.signal or "", stopping.signal or "--once")
            log.say(received(receiver, why))
    return 0


def tcp_address(tcp: str | None) -> str:
    """listen's and satellite's --tcp where there is no --serial: as given, else the config
    file's `listen` (checked as --tcp is), else an error that says what to give."""
    if tcp is not None:
        return tcp
    from wakeward.receiver import parse_tcp

    settings = config.load()
    if settings.listen is None:
        raise WakewardError(
            "say where to listen: --tcp HOST:PORT or --serial PORT (or a default in "
            f'{settings.path}: listen = "HOST:PORT")'
        )
    try:
        parse_tcp(settings.listen)
    except WakewardError:
        raise settings.error(
            "listen", f'{settings.listen!r} is not HOST:PORT (e.g. listen = "0.0.0.0:7000")'
        ) from None
    return settings.listen


def add_log_file_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="also append each log line (with its time and level) to PATH",
    )
