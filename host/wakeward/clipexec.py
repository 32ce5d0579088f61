"""`wakeward listen --exec 'CMD {wav}'`: a command run for each new clip, after its ack.

The template is split like a shell would (shlex), and `{wav}` in any argument is replaced by
the clip's WAV path after the split, so a path with spaces or quotes stays one argument and
no shell ever reads it (a shell script of your own gets the path as "$WAKEWARD_WAV"). The
command runs with the clip's metadata in its environment:

    WAKEWARD_CLIP_ID         the clip's id in the store (`wakeward clips show ID`)
    WAKEWARD_DEVICE          the device id
    WAKEWARD_DEVICE_CLIP_ID  the device's own number for the clip
    WAKEWARD_MODEL           the wake-word model that triggered it
    WAKEWARD_SCORE           the model's output at the detection, 0..255 (raw)
    WAKEWARD_PROBABILITY     the same as a probability, 0..1 (as `clips list` shows it)
    WAKEWARD_DURATION_S      seconds of audio, pre-roll included
    WAKEWARD_RECEIVED_AT     when it arrived, ISO 8601 UTC
    WAKEWARD_WAV             the WAV file

The device id and model name are the device's word: in the environment they are made
printable (printable.py: a control character, NUL included, becomes its escape such as
`\\x1b`), so no escape sequence reaches a terminal through them and a NUL, which no
environment can hold, never stops the worker; the store keeps them as received
(`wakeward clips show ID --json`). The command's output lines are printed printable too.

Commands run one at a time in a worker thread, so the receiver never waits for one: clips
wait in a bounded queue (a clip that finds it full is not run, and that is said; it is
stored all the same). Each output line is printed prefixed with `exec clip ID:`; a command
that fails, cannot start or runs past its time limit (then it is killed, with its process
group) is reported, and the next clip's command runs as usual.
"""

from __future__ import annotations

import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence

from wakeward import detector
from wakeward.errors import WakewardError
from wakeward.printable import printable
from wakeward.store import Clip, iso_time

PLACEHOLDER = "{wav}"
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_QUEUE = 100


def parse_template(template: str) -> list[str]:
    """The --exec text as argv (with `{wav}` still in it); its program must exist."""
    try:
        argv = shlex.split(template)
    except ValueError as e:
        raise WakewardError(f"--exec {template!r}: {e}") from None
    if not argv:
        raise WakewardError("--exec: no command given")
    if shutil.which(argv[0]) is None:
        raise WakewardError(f"--exec: {argv[0]}: no such program (not on PATH or not executable)")
    return argv


def command_for(argv: Sequence[str], clip: Clip) -> list[str]:
    return [arg.replace(PLACEHOLDER, str(clip.path)) for arg in argv]


def environment(clip: Clip, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "WAKEWARD_CLIP_ID": str(clip.id),
            "WAKEWARD_DEVICE": printable(clip.device),
            "WAKEWARD_DEVICE_CLIP_ID": str(clip.device_clip_id),
            "WAKEWARD_MODEL": printable(clip.model),
            "WAKEWARD_SCORE": str(clip.score),
            "WAKEWARD_PROBABILITY": f"{detector.probability(clip.score):.3f}",
            "WAKEWARD_DURATION_S": f"{clip.duration_s:.3f}",
            "WAKEWARD_RECEIVED_AT": iso_time(clip.received_at) or "",
            "WAKEWARD_WAV": str(clip.path),
        }
    )
    return env


class ClipCommand:
    """Runs the --exec command for each clip given to `submit`, in one worker thread."""

    def __init__(
        self,
        template: str,
        say: Callable[[str], None] = print,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_waiting: int = DEFAULT_QUEUE,
    ) -> None:
        if not timeout_s > 0:
            raise WakewardError(f"--exec-timeout {timeout_s}: must be more than 0 seconds")
        self.argv = parse_template(template)
        self.say = lambda line: say(printable(line))
        self.timeout_s = timeout_s
        self.ran = 0
        self.failed = 0
        self.skipped = 0
        self._queue: queue.Queue[Clip | None] = queue.Queue(max_waiting)
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="wakeward-exec", daemon=True)
        self._thread.start()

    def submit(self, clip: Clip) -> None:
        """Queue the command for a clip; never blocks (a full queue skips the clip)."""
        try:
            self._queue.put_nowait(clip)
        except queue.Full:
            self.skipped += 1
            self.say(
                f"exec clip {clip.id}: not run, {self._queue.maxsize} commands are waiting "
                f"already (the clip is stored: {clip.path})"
            )

    def close(self, *, wait: bool = True) -> None:
        """Stop the worker: after the queued commands (wait) or now, killing the one running."""
        if not wait:
            dropped = 0
            while True:
                try:
                    if self._queue.get_nowait() is not None:
                        dropped += 1
                except queue.Empty:
                    break
            if dropped:
                self.say(f"exec: {dropped} queued commands not run")
            self._kill()
        self._queue.put(None)
        self._thread.join()

    def _work(self) -> None:
        while (clip := self._queue.get()) is not None:
            self._run(clip)

    def _run(self, clip: Clip) -> None:
        prefix = f"exec clip {clip.id}:"
        argv = command_for(self.argv, clip)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=environment(clip),
                start_new_session=True,  # its own process group: a timeout kills it all
            )
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            # ValueError: an argument or the environment holds a NUL (the worker goes on)
            self.failed += 1
            self.say(f"{prefix} cannot run {argv[0]}: {getattr(e, 'strerror', None) or e}")
            return
        with self._proc_lock:
            self._proc = proc
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            self._kill()

        timer = threading.Timer(self.timeout_s, expire)
        timer.daemon = True
        timer.start()
        try:
            for raw in proc.stdout or ():
                self.say(f"{prefix} {raw.decode(errors='replace').rstrip()}")
            rc = proc.wait()
        finally:
            timer.cancel()
            with self._proc_lock:
                self._proc = None
        self.ran += 1
        if timed_out.is_set():
            self.failed += 1
            self.say(f"{prefix} {argv[0]} ran past {self.timeout_s:g} s; killed")
        elif rc != 0:
            self.failed += 1
            how = f"was killed by signal {-rc}" if rc < 0 else f"exited with {rc}"
            self.say(f"{prefix} {argv[0]} {how}")

    def _kill(self) -> None:
        with self._proc_lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
