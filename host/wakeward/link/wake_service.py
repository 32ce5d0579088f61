"""`wakeward wake-service`: the project's wake-word models as a Wyoming wake-word service,
what wyoming-openwakeword is to Home Assistant, run on this PC with the device's frontend
and detection rule (wakeward.hostmodel, as `wakeward try`), so the owner's own wake word
also wakes Home Assistant's other satellites, and wakes them when the speaker would.

Each connection (Home Assistant opens one per wake-word stream; wyoming-satellite keeps
one) goes as homeassistant/components/wyoming/wake_word.py and wyoming-openwakeword use it
(PyPI `wyoming`: its events, its event handler):

- `describe` -> `info` with one `wake` program, "wakeward", listing the models: each by its
  name (the model file's stem), its manifest's wake_word as phrase, author and languages.
- `detect` (names optional) chooses the models for the audio that follows; names not
  served here are said and left out, and when none is left (or none is given, or no
  `detect` came), every model listens, as wyoming-openwakeword falls back to its default.
- `audio-start` starts a stream: every chosen model from a fresh start, as a device that
  has just booted, so the times are those `wakeward sim` gives over the same audio. Audio
  in any format (rate, width, channels; an `audio-chunk` without `audio-start` starts a
  stream in its own) is converted to 16 kHz mono 16-bit with libsoxr (play.Resampler).
- Each detection is answered at once with `detection`: the model's name and, as timestamp,
  the milliseconds of (converted) audio from the stream's start to the end of the
  detecting invocation's last feature frame (`wakeward sim`'s t). A model keeps listening
  after a detection (with the device's hold-off), as wyoming-openwakeword's do.
- `audio-stop` ends the stream (the converter's tail is run first); `not-detected` goes
  back when no model detected in it.
- `ping` -> `pong`. Other events are ignored.
- A malformed event (an audio format that is not whole numbers, or not one the converter
  takes; `detect` names that are not a list of strings) is answered with Wyoming's `error`
  (code MALFORMED_CODE), said on the console, and the connection goes on; audio of a stream
  refused that way is dropped until the next `audio-start`. Bytes that are not a Wyoming
  event at all are answered the same way and the connection is closed (what follows them
  cannot be found). Either way the service goes on serving.

Nothing is stored: the audio is turned into features and dropped as it comes.

API:

    WakeAddress.parse("HOST[:PORT]") / WakeAddress.parse_uri("tcp://HOST:PORT")
    wake_info(specs) -> wyoming.info.Info
    WakeStream(specs, optimized=False): start(rate, width, channels), feed(audio) and
        end() each -> the detections they complete (hostmodel.Detection, t in seconds
        from the stream's start); detections: all of them
    WakeService(specs, address, optimized=False, zeroconf=True, say=...): `async run(...)`
    serve(specs, address, *, optimized=False, zeroconf=True, say=..., stop=None,
          on_ready=None): `wakeward wake-service` (its options: wake_service_cli.py),
        until interrupted, SIGTERM, or `stop` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_read_event
from wyoming.info import Attribution, Describe, Info, WakeModel, WakeProgram
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.wake import Detect, Detection, NotDetected
from zeroconf import Error as ZeroconfError
from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from wakeward import __version__, models
from wakeward.errors import WakewardError
from wakeward.hostmodel import Detection as ModelDetection
from wakeward.hostmodel import Listener, ModelSpec
from wakeward.link.satellite import SERVICE_TYPE, advertised_address, service_info
from wakeward.play import Resampler as AudioConverter
from wakeward.printable import printable
from wakeward.receiver import safe_name, say_line

DEFAULT_WAKE_PORT = 10400  # wyoming-openwakeword's port: where Home Assistant users look
MALFORMED_CODE = "malformed-event"  # the `error` event's code for an event not understood
PROGRAM = "wakeward"  # the wake program's name in `info`
_URI_SCHEME = "tcp"
_MS_PER_S = 1000
_STOP_POLL_S = 0.1  # how often serve() looks at its `stop` event
_SERVICE_LABEL_MAX = 63  # DNS: the longest label (the service's instance name)
_ATTRIBUTION = Attribution(name="wakeward", url="https://github.com/wakeward/wakeward")
_AUDIO_FIELDS = ("rate", "width", "channels")
_SHOWN_MAX = 60  # characters of a client's value quoted back in an error


@dataclass(frozen=True)
class WakeAddress:
    """Where the wake service listens."""

    host: str
    port: int = DEFAULT_WAKE_PORT

    @classmethod
    def parse(cls, text: str, flag: str = "--wyoming") -> WakeAddress:
        """HOST[:PORT] or [IPv6]:PORT, as `wakeward satellite --wyoming` takes it (the
        port defaults to DEFAULT_WAKE_PORT)."""
        if "/" in text or "@" in text:
            raise WakewardError(f"{flag} {text!r} is not HOST[:PORT]")
        return cls._from_url(f"{_URI_SCHEME}://{text}", text, flag)

    @classmethod
    def parse_uri(cls, text: str) -> WakeAddress:
        """tcp://HOST:PORT, as wyoming-openwakeword's --uri takes it."""
        scheme, sep, rest = text.partition("://")
        if not sep or scheme != _URI_SCHEME or not rest:
            raise WakewardError(
                f"--uri {text!r}: only tcp://HOST:PORT (e.g. tcp://0.0.0.0:{DEFAULT_WAKE_PORT})"
            )
        return cls.parse(rest.rstrip("/"), "--uri")

    @classmethod
    def _from_url(cls, url: str, text: str, flag: str) -> WakeAddress:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise WakewardError(f"{flag} {text!r}: the port is 0 to 65535") from None
        if not parts.hostname:
            raise WakewardError(f"{flag} {text!r}: no HOST (0.0.0.0 for every interface)")
        return cls(parts.hostname, DEFAULT_WAKE_PORT if port is None else port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def check_specs(specs: Sequence[ModelSpec]) -> None:
    """WakewardError unless there is a model and no two share a name (the name is what
    Home Assistant asks for and what a `detection` says)."""
    if not specs:
        raise WakewardError("wake-service: give at least one model")
    names = [spec.name for spec in specs]
    for name in names:
        if names.count(name) > 1:
            paths = ", ".join(str(s.path) for s in specs if s.name == name)
            raise WakewardError(f"two models are named {name!r} ({paths}): one each")


def _text(manifest: dict[str, Any], key: str) -> str | None:
    value = manifest.get(key)
    return value if isinstance(value, str) and value.strip() else None


def wake_model(spec: ModelSpec) -> WakeModel:
    """A model as `info` lists it: its manifest's wake_word, author, website, languages."""
    manifest = models.manifest(spec.path) or {}
    phrase = _text(manifest, "wake_word") or spec.name.replace("_", " ")
    languages = manifest.get("trained_languages")
    version = manifest.get("version")
    return WakeModel(
        name=spec.name,
        attribution=Attribution(
            name=_text(manifest, "author") or "", url=_text(manifest, "website") or ""
        ),
        installed=True,
        description=phrase,
        version=None if version is None else str(version),
        languages=[x for x in languages if isinstance(x, str)]
        if isinstance(languages, list)
        else [],
        phrase=phrase,
    )


def wake_info(specs: Sequence[ModelSpec]) -> Info:
    """The `info` the service answers `describe` with."""
    return Info(
        wake=[
            WakeProgram(
                name=PROGRAM,
                attribution=_ATTRIBUTION,
                installed=True,
                description="wakeward's wake words, with the speaker's own detection rule",
                version=__version__,
                models=[wake_model(spec) for spec in specs],
            )
        ]
    )


class WakeStream:
    """One audio stream through the chosen models, each from a fresh start: start() with
    the audio's format, feed() its bytes (any piece size), end() at its end. Detections
    carry the time into the stream's converted 16 kHz audio."""

    def __init__(self, specs: Sequence[ModelSpec], *, optimized: bool = False) -> None:
        self.listeners = [Listener(spec, optimized=optimized, keep_outputs=False) for spec in specs]
        self.detections: list[ModelDetection] = []
        self._converter: AudioConverter | None = None
        self.format: tuple[int, int, int] | None = None

    def start(self, rate_hz: int, width: int, channels: int) -> list[ModelDetection]:
        """The audio's format (WakewardError for one the converter does not take). A
        change of format mid-stream runs the old converter's tail first: its detections."""
        if self.format == (rate_hz, width, channels):
            return []
        converter = AudioConverter(rate_hz, width, channels)
        found = self._flush()
        self._converter = converter
        self.format = (rate_hz, width, channels)
        return found

    def feed(self, audio: bytes) -> list[ModelDetection]:
        if self._converter is None:
            raise WakewardError("audio before its format (start the stream first)")
        return self._run(self._converter.convert(audio))

    def end(self) -> list[ModelDetection]:
        """The converter's tail through the models: the last detections, if any."""
        return self._flush()

    @property
    def seconds(self) -> float:
        return self.listeners[0].seconds if self.listeners else 0.0

    def _flush(self) -> list[ModelDetection]:
        converter, self._converter = self._converter, None
        self.format = None
        return [] if converter is None else self._run(converter.convert(b"", last=True))

    def _run(self, pcm: bytes) -> list[ModelDetection]:
        samples = np.frombuffer(pcm, "<i2")
        found = [d for listener in self.listeners for d in listener.feed(samples)]
        found.sort(key=lambda d: d.t)
        self.detections += found
        return found


class _Malformed(Exception):
    """An event the service cannot act on: answered with Wyoming's `error`."""


def _cut(text: str) -> str:
    """A client's words as the service quotes them: cut short."""
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


def _shown(value: object) -> str:
    return _cut(repr(value))


def _audio_format(event: Event) -> tuple[int, int, int]:
    data = event.data if isinstance(event.data, dict) else {}
    values = [data.get(field) for field in _AUDIO_FIELDS]
    whole = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if len(whole) != len(_AUDIO_FIELDS):
        given = ", ".join(f"{f}={_shown(v)}" for f, v in zip(_AUDIO_FIELDS, values, strict=True))
        raise _Malformed(f"{event.type}: rate, width and channels must be whole numbers ({given})")
    rate, width, channels = whole
    return rate, width, channels


def _detect_names(event: Event) -> list[str] | None:
    data = event.data if isinstance(event.data, dict) else {}
    names = data.get("names")
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _Malformed(f"detect: names must be a list of model names, not {_shown(names)}")
    return names


class _Client(AsyncEventHandler):
    """One Wyoming connection to the service."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, service: WakeService
    ) -> None:
        super().__init__(reader, writer)
        self.service = service
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "a client"
        self.chosen = list(service.specs)
        self.stream: WakeStream | None = None
        self.refused = False  # a stream refused (malformed): its audio dropped until the next

    def say(self, line: str) -> None:
        self.service.say(f"wake service: {self.peer}: {line}")

    async def run(self) -> None:
        """Events until the client goes; bytes that are not an event: `error`, and the
        connection is closed."""
        try:
            while True:
                try:
                    event = await async_read_event(self.reader)
                except (KeyError, TypeError, AttributeError) as e:
                    # a header without a type, or its data or lengths of the wrong kind
                    await self._refuse(f"not a Wyoming event ({type(e).__name__}: {e})")
                    break
                except asyncio.IncompleteReadError:
                    break  # the client went away in the middle of an event
                if event is None:
                    if not self.reader.at_eof():  # the header line was not JSON
                        await self._refuse("not a Wyoming event (its header is not a JSON line)")
                    break
                if not isinstance(event.type, str):
                    await self._refuse(f"not a Wyoming event (its type is {_shown(event.type)})")
                    break
                await self.handle_event(event)
        except (ConnectionError, OSError):
            pass  # the client went away while an answer was written
        finally:
            await self.disconnect()
            self.writer.close()

    async def _refuse(self, why: str) -> None:
        self.say(why)
        await self.write_event(Error(text=why, code=MALFORMED_CODE).event())

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._handle(event)
        except (_Malformed, WakewardError) as e:  # WakewardError: a format not converted
            if AudioStart.is_type(event.type) or AudioChunk.is_type(event.type):
                self.stream = None  # the stream is refused: its audio dropped until the next
                self.refused = True
            why = str(e) if isinstance(e, _Malformed) else f"{event.type}: {e}"
            await self._refuse(why)
        return True

    async def _handle(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.write_event(self.service.info.event())
        elif Ping.is_type(event.type):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif Detect.is_type(event.type):
            self.detect(_detect_names(event))
        elif AudioStart.is_type(event.type):
            self.audio_start(*_audio_format(event))
        elif AudioChunk.is_type(event.type):
            fmt = _audio_format(event)
            if self.refused:
                return
            stream = self.stream if self.stream is not None else self.audio_start(*fmt)
            await self._report(stream.start(*fmt))  # a change of format mid-stream
            await self._report(stream.feed(event.payload or b""))
        elif AudioStop.is_type(event.type):
            await self.audio_stop()

    def detect(self, names: list[str] | None) -> None:
        """The models for the audio that follows (a stream under way ends unanswered)."""
        self.stream = None
        self.refused = False
        specs = self.service.specs
        if not names:
            self.chosen = list(specs)
            return
        served = [s for s in specs if s.name in names]
        unknown = [n for n in names if n not in {s.name for s in specs}]
        if unknown:
            listening = ", ".join(s.name for s in (served or specs))
            self.say(
                f"detect: no model named {_cut(', '.join(unknown))} here; listening for {listening}"
            )
        self.chosen = served or list(specs)

    def audio_start(self, rate: int, width: int, channels: int) -> WakeStream:
        """A new stream: the chosen models from a fresh start."""
        self.stream = None
        self.refused = False
        stream = WakeStream(self.chosen, optimized=self.service.optimized)
        stream.start(rate, width, channels)
        self.stream = stream
        self.say(
            f"audio ({rate} Hz, {width * 8}-bit, {channels} ch): listening for "
            + ", ".join(s.name for s in self.chosen)
        )
        return stream

    async def audio_stop(self) -> None:
        """The stream's end: its last detections, or not-detected."""
        stream, self.stream = self.stream, None
        self.refused = False
        if stream is not None:
            await self._report(stream.end())
        if stream is None or not stream.detections:
            seconds = 0.0 if stream is None else stream.seconds
            self.say(f"audio ended after {seconds:.2f} s: not detected")
            await self.write_event(NotDetected().event())
        else:
            self.say(f"audio ended after {stream.seconds:.2f} s")

    async def _report(self, found: list[ModelDetection]) -> None:
        for d in found:
            self.say(f"detected {d.model} at {d.t:.2f} s")
            timestamp = round(d.t * _MS_PER_S)
            await self.write_event(Detection(name=d.model, timestamp=timestamp).event())


def service_name() -> str:
    """The zeroconf instance name of this host's wake service (a DNS label; not the name
    `wakeward satellite` advertises its satellites by, so both can run on one host)."""
    return f"wakeward-wake-{safe_name(socket.gethostname())}"[:_SERVICE_LABEL_MAX]


class WakeService:
    """The models served over Wyoming on `address`, advertised over zeroconf unless told
    not to. `run()` serves until `stopping` is set; `port` is the bound port once it
    listens."""

    def __init__(
        self,
        specs: Sequence[ModelSpec],
        address: WakeAddress,
        *,
        optimized: bool = False,
        zeroconf: bool = True,
        say: Callable[[str], None] = say_line,
    ) -> None:
        check_specs(specs)
        self.specs = list(specs)
        self.address = address
        self.optimized = optimized
        self.zeroconf = zeroconf
        self.say: Callable[[str], None] = lambda line: say(printable(line))
        self.info = wake_info(self.specs)
        self.port = address.port
        WakeStream(self.specs, optimized=optimized)  # each model loads, or says why not now

    async def run(
        self, stopping: asyncio.Event, on_ready: Callable[[int], None] | None = None
    ) -> None:
        where = self.address
        clients: set[_Client] = set()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            client = _Client(reader, writer, self)
            clients.add(client)
            try:
                await client.run()
            finally:
                clients.discard(client)

        try:
            server = await asyncio.start_server(connection, host=where.host, port=where.port)
        except OSError as e:
            raise WakewardError(
                f"cannot listen on {where} for Wyoming: {e.strerror or e} (another wake "
                f"service, or wyoming-openwakeword, on port {where.port}? --wyoming "
                "HOST:PORT for another)"
            ) from None
        self.port = server.sockets[0].getsockname()[1]
        names = ", ".join(s.name for s in self.specs)
        self.say(f"wake service: Wyoming on {WakeAddress(where.host, self.port)}, for {names}")
        aiozc = await self._advertise() if self.zeroconf else None
        try:
            if on_ready is not None:
                on_ready(self.port)
            await stopping.wait()
        finally:
            server.close()
            # a client still connected (wyoming-satellite keeps one): its connection ends
            await asyncio.gather(*(client.stop() for client in list(clients)))
            await server.wait_closed()
            if aiozc is not None:
                with contextlib.suppress(OSError, ZeroconfError):
                    await aiozc.async_unregister_all_services()
                await aiozc.async_close()
            self.say("wake service: stopped")

    async def _advertise(self) -> AsyncZeroconf | None:
        name = service_name()
        try:
            info: ServiceInfo = service_info(name, advertised_address(self.address.host), self.port)
            aiozc = AsyncZeroconf()
        except (OSError, ValueError, ZeroconfError) as e:
            self._no_advert(e)
            return None
        try:
            await aiozc.async_register_service(info)
        except (OSError, ValueError, ZeroconfError) as e:
            await aiozc.async_close()
            self._no_advert(e)
            return None
        self.say(f"wake service: advertised over zeroconf as {name} ({SERVICE_TYPE})")
        return aiozc

    def _no_advert(self, e: Exception) -> None:
        self.say(
            f"zeroconf: cannot advertise ({e}); add the wake service in Home Assistant by "
            "its host and port"
        )


def serve(
    specs: Sequence[ModelSpec],
    address: WakeAddress,
    *,
    optimized: bool = False,
    zeroconf: bool = True,
    say: Callable[[str], None] = say_line,
    stop: threading.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """`wakeward wake-service`: serve the models until interrupted (Ctrl-C:
    KeyboardInterrupt), SIGTERM (systemd's stop: a clean return) or `stop` is set.
    on_ready(port) once it listens."""
    service = WakeService(specs, address, optimized=optimized, zeroconf=zeroconf, say=say)

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, stopping.set)  # main thread only

        async def watch() -> None:
            while stop is not None and not stop.is_set():
                await asyncio.sleep(_STOP_POLL_S)
            stopping.set()

        watcher = asyncio.create_task(watch()) if stop is not None else None
        try:
            await service.run(stopping, on_ready)
        finally:
            if watcher is not None:
                watcher.cancel()

    asyncio.run(main())
