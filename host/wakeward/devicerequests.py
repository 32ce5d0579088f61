"""The owner's requests to a paired speaker (firmware/request.py, docs/protocol.md): watch
its models' outputs live, and record from its own microphone. Both run as the receiver:
the device connects here as it connects to `wakeward listen` (so only one of the two can
listen on a port at a time), hello and the pairing check are listen's own (receiver.py),
and every detection clip that arrives meanwhile goes into the clip store and is
acknowledged as listen does, so none is lost. The device honours a request only from its
paired owner (TLS with its secret, or the USB serial port) unless its config.json says
otherwise (link.requests), only for a limited time, with its LED blinking, and counts it
in its status (monitor_s, recordings).

API:

    ListenOptions.parse(tcp="HOST:PORT" | serial="PORT", baud=None, pairing=None,
                        store=None) -> ListenOptions
        where to wait for the speaker, checked as `wakeward listen` checks its options
        (pairing: a pairing.Pairing for TLS, as `--tls --pairing DIR`).

    monitor_device(options, *, seconds=None, model_specs=(), save=None, size=None,
                   records=None, out=None, err=None, live=None) -> monitor.Monitor
        `wakeward monitor --tcp/--serial`: asks the first device that says hello for its
        models' outputs, renews the request before it expires (a request lasts at most
        MAX_MONITOR_S) until `seconds` have passed (None: until Ctrl-C), and charts them
        with monitor.py: the live terminal chart, `save` as a PNG, `records` as JSON lines
        in `wakeward sim --json`'s format (`wakeward monitor FILE` charts them again).

    record_from_speaker(options, seconds, takes=1, on_take=None, *, before_take=None,
                        say=print, connect_timeout_s=CONNECT_TIMEOUT_S) -> list[np.ndarray]
        `takes` recordings of `seconds` (whole seconds, 1 to MAX_RECORD_S) from the
        speaker's own microphone, each an int16 array at 16 kHz (RATE_HZ), in order; each
        starts when the device gets its request (no pre-roll). before_take(i) is called
        before take i (0, 1, ...) is asked for (a prompt: "say it now"), on_take(i, samples)
        once it has arrived whole; its ack goes to the device only after on_take has
        returned (so keep it short: save the take), and a take that on_take raises
        WakewardError for stays on the device, which sends it again. A take cut short (the
        link dropped) is asked for again; a device that is busy capturing a clip is asked
        again a moment later; a muted speaker, or one that refuses requests, raises
        WakewardError saying why, as does a speaker that does not connect within
        connect_timeout_s.

Records: each `outputs` message (one model's uint8 outputs, INVOCATION_MS apart from its
time_ms, the device clock) gives one record per value: {"t": seconds of device time,
"model", "p", "detected"}. While monitoring, a detection's message follows the batch whose
last value detected (the device flushes the batch first), so that value is marked.
"""

from __future__ import annotations

import json
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from wakeward import monitor, receiver, serialreceiver
from wakeward.errors import WakewardError
from wakeward.receiver import Recording, Session
from wakeward.serialport import DEFAULT_BAUD

if TYPE_CHECKING:
    from wakeward.pairing import Pairing

MAX_MONITOR_S = 600  # firmware/request.py: the longest window one request may ask for
MAX_RECORD_S = 10  # firmware/request.py: the longest recording one request may ask for
RATE_HZ = 16000
RENEW_S = 300.0  # a window of MAX_MONITOR_S is renewed this long after it was asked for
CONNECT_TIMEOUT_S = 60.0
TAKE_TIMEOUT_S = 30.0  # beyond a take's own length: how long its recording may take to come
HANDOVER_TIMEOUT_S = 600.0  # how long a recording's ack waits for on_take
CLIPS_WAIT_S = 15.0  # at the end: how long a detection clip under way may take to finish
BUSY_RETRY_S = 1.0  # a device busy with a clip is asked again this much later
BUSY_TRIES = 30
TAKE_TRIES = 3  # a take cut short is asked for again, this many times in all
_POLL_S = 0.1
_STOP_WAIT_S = 10.0
_CLOCK_WRAP_MS = 1 << 30  # the device clock (ticks_ms) wraps here
_REQUEST_IDS = 1 << 29  # ids start at random below this: small ints on the device


@dataclass(frozen=True)
class ListenOptions:
    """Where the receiver waits for the speaker: TCP (host, port; TLS with `pairing`) or a
    serial port (serial, baud), and the clip store for detection clips (None: default)."""

    host: str = "127.0.0.1"
    port: int = 0
    serial: str | None = None
    baud: int = DEFAULT_BAUD
    pairing: Pairing | None = None
    store: Path | None = None

    @classmethod
    def parse(
        cls,
        *,
        tcp: str | None = None,
        serial: str | None = None,
        baud: int | None = None,
        pairing: Pairing | None = None,
        store: Path | None = None,
    ) -> ListenOptions:
        if (tcp is None) == (serial is None):
            raise WakewardError(
                "where does the speaker connect? --tcp HOST:PORT (Wi-Fi) or --serial PORT (USB)"
            )
        if serial is not None:
            if pairing is not None:
                raise WakewardError(
                    "--tls goes with --tcp: the serial link runs over the USB cable, without TLS"
                )
            return cls(serial=serial, baud=baud or DEFAULT_BAUD, store=store)
        if baud is not None:
            raise WakewardError("--baud goes with --serial PORT")
        host, port = receiver.parse_tcp(tcp or "")
        return cls(host=host, port=port, pairing=pairing, store=store)

    def where(self) -> str:
        if self.serial is not None:
            return f"serial port {self.serial}"
        return f"{self.host}:{self.port}" + (" (TLS)" if self.pairing is not None else "")


@dataclass
class _Handover:
    """A recording on its way from a session's thread to the consumer; the session's
    ack waits for finish()."""

    recording: Recording
    done: threading.Event
    taken: bool = False
    error: str | None = None

    def finish(self, *, taken: bool = False, error: str | None = None) -> None:
        """The consumer's answer; the first one stands."""
        if self.done.is_set():
            return
        self.taken = taken
        self.error = error
        self.done.set()


class DeviceRequests:
    """A receiver.SessionListener that hands every session event to one consumer (the
    command's thread) through `events`: ("hello" | "closed", session, None),
    ("message", session, msg), ("recording", session, _Handover) for a recording asked for
    with want(), and ("say", None, line) for the receiver's own lines (say()). A recording
    nobody wants is acknowledged and discarded at once."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, Session | None, object]] = queue.Queue()
        self.sessions: set[Session] = set()  # those under way
        self._wanted: set[int] = set()
        self._pending: list[_Handover] = []
        self._lock = threading.Lock()
        self._closed = False
        self._next_id = random.randrange(1, _REQUEST_IDS)

    def new_id(self, *, want: bool = False) -> int:
        """A request id not used before; `want`: its recording goes to the consumer."""
        with self._lock:
            self._next_id += 1
            if want:
                self._wanted.add(self._next_id)
            return self._next_id

    def unwant(self, request_id: int) -> None:
        with self._lock:
            self._wanted.discard(request_id)

    def say(self, line: str) -> None:
        self.events.put(("say", None, line))

    def clips_under_way(self) -> int:
        """Clips the sessions under way have started and not ended."""
        with self._lock:
            return sum(len(s.open) for s in self.sessions)

    def close(self) -> None:
        """The consumer has stopped: recordings waiting for it are not taken."""
        with self._lock:
            self._closed = True
            pending, self._pending = self._pending, []
        for handover in pending:
            handover.finish(error="the recorder has stopped")

    # receiver.SessionListener

    def hello(self, session: Session) -> None:
        with self._lock:
            self.sessions.add(session)
        self.events.put(("hello", session, None))

    def message(self, session: Session, msg: dict) -> None:
        self.events.put(("message", session, msg))

    def closed(self, session: Session) -> None:
        with self._lock:
            self.sessions.discard(session)
        self.events.put(("closed", session, None))

    def recording(self, session: Session, recording: Recording) -> bool:
        handover = _Handover(recording, threading.Event())
        with self._lock:
            if self._closed or recording.request_id not in self._wanted:
                return False
            self._pending.append(handover)
        self.events.put(("recording", session, handover))
        finished = handover.done.wait(HANDOVER_TIMEOUT_S)
        with self._lock:
            if handover in self._pending:
                self._pending.remove(handover)
        if not finished:
            raise WakewardError(f"not taken within {HANDOVER_TIMEOUT_S:.0f} s")
        if handover.error is not None:
            raise WakewardError(handover.error)
        return handover.taken


class _Server:
    """The receiver of `options` in a thread, with `requests` as its listener, from `with`
    to its end; check() raises what stopped it meanwhile."""

    def __init__(self, options: ListenOptions, requests: DeviceRequests) -> None:
        self.options = options
        self.requests = requests
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failed: list[WakewardError] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Server:
        self._thread.start()
        self._ready.wait()
        self.check()
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is None:
            self._finish_clips()
        self.requests.close()
        self._stop.set()
        self._thread.join(_STOP_WAIT_S)

    def _finish_clips(self) -> None:
        """A detection clip the device is sending now is received whole before the
        receiver stops (were it cut off, it would wait on the device's flash)."""
        end = time.monotonic() + CLIPS_WAIT_S
        if self.requests.clips_under_way():
            self.requests.say("waiting for the clip under way to finish")
        while self.requests.clips_under_way() and time.monotonic() < end and not self._failed:
            time.sleep(_POLL_S)

    def check(self) -> None:
        if self._failed:
            raise self._failed[0]

    def _run(self) -> None:
        o = self.options
        try:
            if o.serial is not None:
                serialreceiver.serve_serial(
                    o.serial,
                    o.baud,
                    o.store,
                    say=self.requests.say,
                    listener=self.requests,
                    stop=self._stop,
                    on_open=self._ready.set,
                )
            else:
                receiver.serve_tcp(
                    o.host,
                    o.port,
                    o.store,
                    say=self.requests.say,
                    on_listening=lambda _port: self._ready.set(),
                    pairing=o.pairing,
                    listener=self.requests,
                    stop=self._stop,
                )
        except WakewardError as e:
            self._failed.append(e)
        except OSError as e:
            self._failed.append(WakewardError(f"the receiver stopped: {e}"))
        finally:
            self._ready.set()


class _DeviceClock:
    """The device clock's milliseconds (wrapping at 2**30) as a count that does not wrap."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._base = 0

    def ms(self, value: int) -> int:
        if self._last is not None and value < self._last - _CLOCK_WRAP_MS // 2:
            self._base += _CLOCK_WRAP_MS
        self._last = value
        return self._base + value


def records_of(msg: dict, clock: _DeviceClock, step_ms: int) -> list[dict]:
    """One record per value of an `outputs` message (not yet marked as detections)."""
    start = clock.ms(msg["time_ms"])
    return [
        {"t": (start + step_ms * i) / 1000, "model": msg["model"], "p": p, "detected": False}
        for i, p in enumerate(msg["values"])
    ]


class _Watch:
    """monitor_device's consumer: asks the watched device, renews, and turns its messages
    into record lines for `emit` (monitor.run's), the receiver's lines for `say`."""

    def __init__(
        self,
        requests: DeviceRequests,
        server: _Server,
        seconds: float | None,
        emit: Callable[[str], None],
    ) -> None:
        self.requests = requests
        self.server = server
        self.seconds = seconds
        self.emit = emit
        self.protocol = receiver.load_protocol()
        self.session: Session | None = None
        self.request_id: int | None = None
        self.asked_at = 0.0
        self.started: float | None = None  # when the first window was asked for
        self.final = False  # the window asked for last ends the watch
        self.held: dict[str, dict] = {}  # each model's newest record, until the next
        self.clock = _DeviceClock()
        self.outputs = 0
        self.last_error = ""
        self.done = False

    def run(self) -> None:
        self.emit(f"waiting for the speaker to connect to {self.server.options.where()}")
        try:
            while not self.done:
                self.server.check()
                try:
                    kind, session, payload = self.requests.events.get(timeout=_POLL_S)
                except queue.Empty:
                    self._renew()
                    continue
                self._event(kind, session, payload)
                self._renew()
        finally:
            self._release()
        if not self.outputs:
            raise WakewardError("the speaker sent no model outputs")

    def _event(self, kind: str, session: Session | None, payload: object) -> None:
        if kind == "say":
            self.emit(str(payload))
        elif kind == "hello" and session is not None:
            self._hello(session)
        elif kind == "closed" and session is self.session:
            self._flush()
            self.emit(f"the connection to {self._name()} closed; waiting for it to come back")
            self.session = None
            self.request_id = None
        elif kind == "message" and session is self.session and isinstance(payload, dict):
            self._message(payload)
        elif kind == "recording" and isinstance(payload, _Handover):
            payload.finish(taken=False)

    def _hello(self, session: Session) -> None:
        watched = self.session
        if watched is not None and session is not watched and session.device != watched.device:
            self.emit(
                f"{session.device} connected too: its clips are stored; only "
                f"{watched.device} is monitored"
            )
            return
        self._flush()
        self.session = session
        self._ask()

    def _name(self) -> str:
        return self.session.device if self.session is not None else "the speaker"

    def _message(self, msg: dict) -> None:
        kind = msg["type"]
        if kind == "outputs":
            held = self.held.pop(msg["model"], None)
            if held is not None:
                self._emit(held)
            batch = records_of(msg, self.clock, self.protocol.INVOCATION_MS)
            for record in batch[:-1]:
                self._emit(record)
            if batch:
                self.held[msg["model"]] = batch[-1]
        elif kind == "detection":
            held = self.held.pop(msg["model"], None)
            if held is not None:
                self._emit({**held, "detected": True})
        elif kind == "error":
            self.last_error = msg["message"]
        elif kind == "request_end" and msg["request_id"] == self.request_id:
            self._ended(self.protocol.REQUEST_ENDS[msg["reason"]])

    def _ended(self, reason: str) -> None:
        """The window asked for last has ended."""
        self._flush()
        self.request_id = None
        if reason == "done" and not self.final:
            self._ask()
        elif reason == "done":
            self.done = True
        elif reason in ("refused", "busy"):
            raise WakewardError(
                f"{self._name()} refused to be monitored: {self.last_error or 'it gave no reason'}"
            )
        elif reason == "muted":
            self.emit(f"{self._name()} was muted (its button): monitoring ended")
            self.done = True
        else:
            self.emit(f"{self._name()} ended the monitoring ({reason})")
            self.done = True

    def _ask(self) -> None:
        """Ask the watched device for the rest of the time (at most MAX_MONITOR_S)."""
        if self.session is None:
            return
        now = time.monotonic()
        if self.started is None:
            self.started = now
        if self.seconds is None:
            window, self.final = MAX_MONITOR_S, False
        else:
            left = self.seconds - (now - self.started)
            if left <= 0:
                self.done = True
                return
            window = min(MAX_MONITOR_S, math.ceil(left))
            self.final = window >= left
        request_id = self.requests.new_id()
        frame = self.protocol.encode_request(self.protocol.MONITOR, window, request_id)
        if self.session.send(frame):
            self.request_id = request_id
            self.asked_at = now
            self.emit(f"asked {self._name()} for its models' outputs for {window} s")

    def _renew(self) -> None:
        due = time.monotonic() - self.asked_at >= RENEW_S
        if self.request_id is not None and not self.final and due:
            self._ask()  # replaces the window under way before it ends

    def _emit(self, record: dict) -> None:
        self.outputs += 1
        self.emit(json.dumps(record))

    def _flush(self) -> None:
        for record in self.held.values():
            self._emit(record)
        self.held.clear()

    def _release(self) -> None:
        """At the end however it came: what is held is shown; a window still under way is
        cancelled (a serial link stays up after this command has gone)."""
        self._flush()
        if self.session is not None and self.request_id is not None:
            self.session.send(self.protocol.encode_request(self.protocol.MONITOR, 0, 0))


def monitor_device(
    options: ListenOptions,
    *,
    seconds: float | None = None,
    model_specs: Sequence[str] = (),
    save: Path | None = None,
    size: tuple[int, int] | None = None,
    records: Path | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    live: bool | None = None,
) -> monitor.Monitor:
    """`wakeward monitor --tcp/--serial` (see the module's docstring)."""
    if seconds is not None and not seconds >= 1:
        raise WakewardError(f"--seconds {seconds:g}: at least 1")
    record_file = _open_records(records)

    def run(say: Callable[[str], None]) -> None:
        def emit(line: str) -> None:
            if record_file is not None and line.startswith("{"):
                record_file.write(line + "\n")
                record_file.flush()
            say(line)

        requests = DeviceRequests()
        with _Server(options, requests) as server:
            _Watch(requests, server, seconds, emit).run()
        _drain_lines(requests, say)

    try:
        return monitor.run(
            None,
            model_specs=model_specs,
            run_sim=run,
            save=save,
            size=size,
            title=f"wakeward monitor {options.where()}",
            out=out,
            err=err,
            live=live,
        )
    finally:
        if record_file is not None:
            record_file.close()


def _open_records(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        return path.open("w", encoding="utf-8")
    except OSError as e:
        raise WakewardError(f"{path}: cannot write the records ({e.strerror})") from None


def _drain_lines(requests: DeviceRequests, say: Callable[[str], None]) -> None:
    """The receiver's last lines (once it has stopped)."""
    while True:
        try:
            kind, _, payload = requests.events.get_nowait()
        except queue.Empty:
            return
        if kind == "say":
            say(str(payload))
        elif kind == "recording" and isinstance(payload, _Handover):
            payload.finish(error="the recorder has stopped")


class _Recorder:
    """record_from_speaker's consumer: one take after the other."""

    def __init__(
        self,
        requests: DeviceRequests,
        server: _Server,
        seconds: int,
        say: Callable[[str], None],
    ) -> None:
        self.requests = requests
        self.server = server
        self.seconds = seconds
        self.say = say
        self.protocol = receiver.load_protocol()
        self.session: Session | None = None
        self.last_error = ""

    def connect(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while self.session is None:
            if time.monotonic() > end:
                raise WakewardError(
                    f"no speaker connected to {self.server.options.where()} within "
                    f"{timeout_s:.0f} s: is it on, and deployed with --link to this address "
                    "(or on this serial port)?"
                )
            self._next(end)

    def take(self, index: int, on_take: Callable[[int, np.ndarray], None] | None) -> np.ndarray:
        tries = busy = 0
        request_id = self._ask()
        end = time.monotonic() + self.seconds + TAKE_TIMEOUT_S
        while True:
            event = self._next(end)
            if event is None:
                raise WakewardError(
                    f"take {index + 1}: no recording came within "
                    f"{self.seconds + TAKE_TIMEOUT_S:.0f} s"
                )
            kind, _, payload = event
            if kind == "hello":
                # (again): the device's link started over, and what it was asked with it
                if request_id is not None:
                    self.requests.unwant(request_id)
                request_id = self._ask()
            elif kind == "message" and isinstance(payload, dict):
                if payload["type"] == "error":
                    self.last_error = payload["message"]
                elif payload["type"] == "request_end" and payload["request_id"] == request_id:
                    reason = self.protocol.REQUEST_ENDS[payload["reason"]]
                    if reason == "busy" and busy < BUSY_TRIES:
                        busy += 1
                        time.sleep(BUSY_RETRY_S)
                        request_id = self._ask()
                    elif reason in ("refused", "busy", "muted"):
                        raise WakewardError(self._refused(reason))
            elif kind == "recording" and isinstance(payload, _Handover):
                recording = payload.recording
                if recording.request_id != request_id:
                    payload.finish(taken=False)
                elif recording.end_reason != "max_length":
                    payload.finish(taken=True)  # ours, cut short: not kept
                    tries += 1
                    if tries >= TAKE_TRIES:
                        raise WakewardError(
                            f"take {index + 1}: cut short ({recording.end_reason}) {tries} times"
                        )
                    self.say(f"take {index + 1}: cut short ({recording.end_reason}); again")
                    request_id = self._ask()
                    end = time.monotonic() + self.seconds + TAKE_TIMEOUT_S
                else:
                    return self._taken(index, payload, on_take)

    def _taken(
        self,
        index: int,
        handover: _Handover,
        on_take: Callable[[int, np.ndarray], None] | None,
    ) -> np.ndarray:
        recording = handover.recording
        samples = np.frombuffer(recording.pcm, "<i2").astype(np.int16)
        error = "the take was not kept"
        try:
            if on_take is not None:
                on_take(index, samples)
            error = ""
        except WakewardError as e:
            error = str(e)
            raise
        finally:
            handover.finish(taken=not error, error=error or None)
            self.requests.unwant(recording.request_id)
        return samples

    def _refused(self, reason: str) -> str:
        name = self.session.device if self.session is not None else "the speaker"
        if reason == "muted":
            return f"{name} is muted: press its button to listen again, then record again"
        return f"{name} refused to record: {self.last_error or reason}"

    def _ask(self) -> int | None:
        if self.session is None:
            return None
        request_id = self.requests.new_id(want=True)
        frame = self.protocol.encode_request(self.protocol.RECORD, self.seconds, request_id)
        if not self.session.send(frame):
            return None
        return request_id

    def _next(self, end: float) -> tuple[str, Session | None, object] | None:
        """The next session event that is not a line to say (said here); None at `end`."""
        while True:
            self.server.check()
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                kind, session, payload = self.requests.events.get(timeout=min(left, _POLL_S))
            except queue.Empty:
                continue
            if kind == "say":
                self.say(str(payload))
                continue
            if kind == "hello" and session is not None:
                self.session = session
            elif kind == "closed" and session is self.session:
                self.session = None
            return kind, session, payload


def record_from_speaker(
    options: ListenOptions,
    seconds: int,
    takes: int = 1,
    on_take: Callable[[int, np.ndarray], None] | None = None,
    *,
    before_take: Callable[[int], None] | None = None,
    say: Callable[[str], None] = print,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> list[np.ndarray]:
    """Record from the speaker's own microphone (see the module's docstring)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise WakewardError(f"seconds {seconds!r}: a whole number of seconds")
    if not 1 <= seconds <= MAX_RECORD_S:
        raise WakewardError(f"seconds {seconds}: the speaker records 1 to {MAX_RECORD_S} s")
    if isinstance(takes, bool) or not isinstance(takes, int) or takes < 1:
        raise WakewardError(f"takes {takes!r}: a whole number, 1 or more")
    requests = DeviceRequests()
    taken: list[np.ndarray] = []
    with _Server(options, requests) as server:
        recorder = _Recorder(requests, server, seconds, say)
        recorder.connect(connect_timeout_s)
        for index in range(takes):
            if before_take is not None:
                before_take(index)
            taken.append(recorder.take(index, on_take))
    _drain_lines(requests, say)
    return taken
