"""The PC's microphone: 16 kHz mono int16 samples from a capture program.

The program is `arecord` (alsa-utils) or else `sox` (its default input device, as `rec`
records), whichever is installed, writing raw little-endian 16-bit samples to a pipe;
$WAKEWARD_MIC_COMMAND replaces it with any shell command that writes raw s16le 16 kHz mono
to its standard output (another device: `arecord -D hw:1 ...`; the tests: `cat take.raw`).

The program runs in a session of its own, so Ctrl-C at the terminal reaches wakeward
alone, which then stops the program itself (SIGTERM to its process group). A program that
fails is reported with its exit status and the end of what it wrote to stderr.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np

from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError

COMMAND_ENV = "WAKEWARD_MIC_COMMAND"
BLOCK_S = 0.1  # audio handed on per read
STOP_WAIT_S = 2.0  # for the program to exit after SIGTERM, before SIGKILL
STDERR_TAIL_LINES = 3  # of what a failed program printed, in its error
_SAMPLE_BYTES = 2


@dataclass(frozen=True)
class Capture:
    """A capture program: argv, and how to show it to the user."""

    argv: tuple[str, ...]
    shown: str


def capture() -> Capture:
    """$WAKEWARD_MIC_COMMAND, else arecord, else sox; a clear error without any."""
    override = os.environ.get(COMMAND_ENV, "").strip()
    if override:
        return Capture(("/bin/sh", "-c", override), override)
    rate = str(RATE_HZ)
    arecord = shutil.which("arecord")
    if arecord is not None:
        argv = (arecord, "-q", "-t", "raw", "-f", "S16_LE", "-r", rate, "-c", "1")
        return Capture(argv, shlex.join(["arecord", *argv[1:]]))
    sox = shutil.which("sox")
    if sox is not None:
        raw = ("-t", "raw", "-r", rate, "-c", "1", "-b", "16", "-e", "signed-integer", "-L", "-")
        return Capture((sox, "-q", "-d", *raw), shlex.join(["sox", "-q", "-d", *raw]))
    raise WakewardError(
        "no program to record from the microphone: install alsa-utils (arecord) or sox "
        "(sudo apt-get install alsa-utils), or set WAKEWARD_MIC_COMMAND to a shell command "
        "that writes raw 16-bit little-endian 16 kHz mono samples to its standard output"
    )


class Microphone:
    """A running capture program; read samples from it, then close it (or use `with`)."""

    def __init__(self, program: Capture | None = None) -> None:
        self.program = program or capture()
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close)
        try:
            self._proc = subprocess.Popen(
                self.program.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,
            )
        except OSError as e:
            self._stderr.close()
            raise WakewardError(
                f"cannot start the capture command `{self.program.shown}` ({e.strerror})"
            ) from None
        self.samples_read = 0
        self.ended = False  # the program closed its output (exit status 0)

    def __enter__(self) -> Microphone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, samples: int) -> np.ndarray:
        """The next `samples` samples (int16); fewer only when the program has ended
        normally. A program that fails raises WakewardError with what it said."""
        stdout = self._proc.stdout
        if stdout is None or self.ended:
            return np.zeros(0, np.int16)
        data = stdout.read(samples * _SAMPLE_BYTES)
        if len(data) < samples * _SAMPLE_BYTES:
            self._finish()
            data = data[: len(data) - len(data) % _SAMPLE_BYTES]
        self.samples_read += len(data) // _SAMPLE_BYTES
        return np.frombuffer(data, "<i2").astype(np.int16)

    def blocks(self, seconds: float | None = None) -> Iterator[np.ndarray]:
        """Blocks of BLOCK_S until `seconds` of audio (None: until the program ends)."""
        block = round(BLOCK_S * RATE_HZ)
        total = None if seconds is None else round(seconds * RATE_HZ)
        while total is None or self.samples_read < total:
            want = block if total is None else min(block, total - self.samples_read)
            got = self.read(want)
            if len(got):
                yield got
            if len(got) < want:
                return

    def _finish(self) -> None:
        """The output ended: the program exits; a failure is an error."""
        try:
            code = self._proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.close()
            raise WakewardError(
                f"the capture command `{self.program.shown}` closed its output but kept running"
            ) from None
        if code != 0:
            said = self._stderr_tail()
            self.close()
            raise WakewardError(
                f"the capture command `{self.program.shown}` exited with status {code} after "
                f"{self.samples_read / RATE_HZ:.2f} s of audio" + (f": {said}" if said else "")
            )
        self.ended = True

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return "\n  ".join(lines[-STDERR_TAIL_LINES:])

    def close(self) -> None:
        """Stop the program (its whole process group) and wait for it."""
        if self._proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # it has just exited
            os.killpg(self._proc.pid, sig)
