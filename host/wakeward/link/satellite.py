"""`wakeward satellite`: the receiver of `wakeward listen`, whose speakers are also Home
Assistant voice satellites over Wyoming (docs/satellite.md says what goes where, and why).

The speakers connect here exactly as to `wakeward listen` (receiver.serve_tcp, TLS with the
pairing, or serialreceiver.serve_serial): every clip goes into the clip store and is
acknowledged as listen does. Beside that, each device is served to Home Assistant as a
Wyoming satellite (PyPI `wyoming`: its events, its event handler) on its own address,
advertised over zeroconf (`_wyoming._tcp`) unless turned off:

- `describe` -> `info` with a satellite section: the device id as its name, its models
  (from its hello) as active wake words and as a wake program, has_vad (the device ends a
  clip at the end of speech); and an `snd` program: the speaker, 16 kHz mono 16-bit.
- After Home Assistant's `run-satellite` (until its `pause-satellite`), each live detection
  clip becomes `detection`, `run-pipeline` (start at asr, end at tts), `audio-start`, an
  `audio-chunk` per clip_data as it arrives while the device is still capturing (the
  clip's pre-roll, which holds the wake word, left out), and `audio-stop` at the clip's
  end. A clip cut off (the link dropped) ends with `audio-stop` too, so Home Assistant
  does not wait for audio that will not come.
- A clip the device sends from its queue (a resend after a reconnect, or a clip that
  waited behind another) is stored only: it is live only when its clip_start follows the
  device's `detection` message within LIVE_DETECTION_S.
- `ping` is answered with `pong` (Home Assistant reconnects after PING_TIMEOUT_S without).
- The answer: Home Assistant's TTS audio (`audio-start` at whatever rate it announces,
  `audio-chunk`s, `audio-stop`) is converted to 16 kHz mono and streamed to the device's
  speaker as it comes (receiver.Session.play, wakeward/play.py); the device's `played` is
  said and answered to Home Assistant with Wyoming's `played`. No device connected: the
  answer is said, not played (and `played` still goes, so Home Assistant does not wait).

API:

    WyomingAddress.parse("[DEVICE=]HOST[:PORT]") -> WyomingAddress
    satellite_info(name, models) -> wyoming.info.Info
    service_info(name, address, port) -> zeroconf.ServiceInfo
    Satellite(addresses, say=..., zeroconf=True): a receiver.SessionListener and
        receiver.ClipListener; start() binds the Wyoming ports (ports: the bound ones),
        close() ends it all.
    serve(options, addresses, *, zeroconf=True, say=..., stop=None, on_ready=None)
        `wakeward satellite` (its options: satellite_cli.py): the receiver of `options`
        (devicerequests.ListenOptions) with a Satellite, until interrupted or `stop` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioFormat, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, SndProgram, WakeModel, WakeProgram
from wyoming.info import Satellite as SatelliteSection
from wyoming.ping import Ping, Pong
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.server import AsyncEventHandler
from wyoming.snd import Played
from wyoming.tts import Synthesize
from wyoming.wake import Detection
from zeroconf import ServiceInfo, Zeroconf

from wakeward import __version__, play, receiver, serialreceiver
from wakeward.devicerequests import ListenOptions
from wakeward.errors import WakewardError
from wakeward.link.servicelog import same_level
from wakeward.printable import printable
from wakeward.receiver import Recording, Session, safe_name, say_line

DEFAULT_WYOMING_PORT = 10700  # Wyoming satellites' usual port (wyoming-satellite's too)
SERVICE_TYPE = "_wyoming._tcp.local."
SAMPLE_WIDTH = 2  # int16 PCM
CHANNELS = 1
# A clip_start this long after its device's `detection` message is not live: it waited on
# the device's flash (behind another clip, or for a reconnect) and goes to the store only.
LIVE_DETECTION_S = 5.0
PING_TIMEOUT_S = 5.0  # Home Assistant's wait for a pong (homeassistant/components/wyoming)
_START_TIMEOUT_S = 10.0  # the event loop's thread binding the Wyoming ports
_STOP_TIMEOUT_S = 5.0
_SERVICE_LABEL_MAX = 63  # DNS: the longest label (the service's instance name)
_UNSPECIFIED = ("", "0.0.0.0", "::")
# A UDP socket "connected" here (no packet is sent) tells which address this host uses on
# the multicast route: the one to advertise when the Wyoming server listens on all of them.
_MDNS_GROUP = ("224.0.0.251", 5353)
_ATTRIBUTION = Attribution(name="wakeward", url="https://github.com/wakeward/wakeward")


@dataclass(frozen=True)
class WyomingAddress:
    """Where one device's Wyoming satellite listens; `device` None: the first device that
    says hello (with one speaker, no id to name)."""

    host: str
    port: int = DEFAULT_WYOMING_PORT
    device: str | None = None

    @classmethod
    def parse(cls, text: str) -> WyomingAddress:
        device, sep, where = text.rpartition("=")
        if sep and not device:
            raise WakewardError(f"--wyoming {text!r}: DEVICE= needs a device id")
        if where.startswith("["):  # [IPv6]:PORT
            host, _, rest = where[1:].partition("]")
            port = rest.removeprefix(":") if rest.startswith(":") else ""
            if rest and not rest.startswith(":"):
                raise WakewardError(f"--wyoming {text!r} is not [DEVICE=]HOST[:PORT]")
        elif where.count(":") == 1:
            host, _, port = where.partition(":")
        else:
            host, port = where, ""
        if not host:
            raise WakewardError(f"--wyoming {text!r}: no HOST (0.0.0.0 for every interface)")
        if port and not (port.isascii() and port.isdigit() and int(port) <= 0xFFFF):
            raise WakewardError(f"--wyoming {text!r}: the port is 0 to 65535")
        return cls(host, int(port) if port else DEFAULT_WYOMING_PORT, device or None)

    def __str__(self) -> str:
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return where if self.device is None else f"{self.device}={where}"


def check_addresses(addresses: Sequence[WyomingAddress]) -> None:
    """WakewardError unless each device has one address and at most one has none."""
    if not addresses:
        raise WakewardError("--wyoming HOST[:PORT]: where Home Assistant connects")
    devices = [a.device for a in addresses]
    if devices.count(None) > 1:
        raise WakewardError(
            "more than one --wyoming without DEVICE=: with several speakers, give each its "
            "own (--wyoming kitchen=0.0.0.0:10700 --wyoming hall=0.0.0.0:10701)"
        )
    named = [d for d in devices if d is not None]
    if len(set(named)) != len(named):
        raise WakewardError("a device is named in two --wyoming addresses: one each")
    bound = [(a.host, a.port) for a in addresses if a.port != 0]
    if len(set(bound)) != len(bound):
        raise WakewardError("two --wyoming addresses on the same HOST:PORT: one port each")


def satellite_info(name: str, models: Sequence[str]) -> Info:
    """The `info` a device's satellite answers `describe` with."""
    wake = [
        WakeProgram(
            name="wakeward",
            attribution=_ATTRIBUTION,
            installed=True,
            description="wake words detected on the speaker",
            version=__version__,
            models=[
                WakeModel(
                    name=model,
                    attribution=_ATTRIBUTION,
                    installed=True,
                    description=None,
                    version=None,
                    languages=[],
                    phrase=model.replace("_", " "),
                )
                for model in models
            ],
        )
    ]
    snd = SndProgram(
        name="wakeward-speaker",
        attribution=_ATTRIBUTION,
        installed=True,
        description="the speaker's amplifier (answers are resampled to its format)",
        version=__version__,
        snd_format=AudioFormat(rate=play.DEVICE_RATE_HZ, width=SAMPLE_WIDTH, channels=CHANNELS),
    )
    return Info(
        wake=wake if models else [],
        snd=[snd],
        satellite=SatelliteSection(
            name=name,
            attribution=_ATTRIBUTION,
            installed=True,
            description="a wakeward speaker (wake word on the device)",
            version=__version__,
            has_vad=True,  # the device ends each clip at the end of speech
            active_wake_words=list(models),
            max_active_wake_words=len(models),
            supports_trigger=False,
        ),
    )


def service_name(device: str | None) -> str:
    """The zeroconf instance name of a device's satellite (a DNS label)."""
    who = safe_name(device) if device is not None else safe_name(socket.gethostname())
    return f"wakeward-{who}"[:_SERVICE_LABEL_MAX]


def service_info(name: str, address: str, port: int) -> ServiceInfo:
    """The `_wyoming._tcp` advertisement of one satellite (what Home Assistant discovers)."""
    return ServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        addresses=[ipaddress.ip_address(address).packed],
        port=port,
        server=f"{name}.local.",
    )


def advertised_address(host: str) -> str:
    """The address to advertise for a server on `host`: itself, or for every interface the
    one on the multicast route."""
    if host not in _UNSPECIFIED:
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            return socket.gethostbyname(host)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(_MDNS_GROUP)
        return str(probe.getsockname()[0])


@dataclass
class _Pipeline:
    """One clip on its way to Home Assistant as a pipeline's audio."""

    clip_id: int
    connection: _HomeAssistant
    rate_hz: int
    skip_bytes: int  # the pre-roll, not sent
    sent_bytes: int = 0

    def timestamp_ms(self) -> int:
        return self.sent_bytes // SAMPLE_WIDTH * 1000 // self.rate_hz


class _HomeAssistant(AsyncEventHandler):
    """One Wyoming connection to a device's satellite (Home Assistant's). Events for it
    are put on `outbox` from any thread (post) and written in order by one task."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, owner: DeviceSatellite
    ) -> None:
        super().__init__(reader, writer)
        self.owner = owner
        self.loop = asyncio.get_running_loop()
        self.outbox: asyncio.Queue[Event | None] = asyncio.Queue()
        self.running = False  # after run-satellite, until pause-satellite
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "a client"

    def post(self, event: Event) -> None:
        """Queue an event for Home Assistant (from any thread)."""
        self.loop.call_soon_threadsafe(self.outbox.put_nowait, event)

    async def run(self) -> None:
        writer = asyncio.create_task(self._write_all())
        self.owner.connected(self)
        try:
            await super().run()
        finally:
            self.owner.disconnected(self)
            self.outbox.put_nowait(None)
            with contextlib.suppress(ConnectionError, OSError):
                await writer

    async def _write_all(self) -> None:
        while (event := await self.outbox.get()) is not None:
            await self.write_event(event)

    async def handle_event(self, event: Event) -> bool:
        say = self.owner.say
        if Describe.is_type(event.type):
            self.outbox.put_nowait(self.owner.info().event())
        elif Ping.is_type(event.type):
            self.outbox.put_nowait(Pong(text=Ping.from_event(event).text).event())
        elif RunSatellite.is_type(event.type):
            self.running = True
            say(f"{self.owner}: Home Assistant ({self.peer}) runs the satellite")
        elif PauseSatellite.is_type(event.type):
            self.running = False
            say(f"{self.owner}: Home Assistant ({self.peer}) paused the satellite")
        elif Transcript.is_type(event.type):
            say(f"{self.owner}: Home Assistant heard: {Transcript.from_event(event).text!r}")
        elif Synthesize.is_type(event.type):
            say(f"{self.owner}: Home Assistant answers: {Synthesize.from_event(event).text!r}")
        elif AudioStart.is_type(event.type):
            self.owner.answer_start(self, AudioStart.from_event(event))
        elif AudioChunk.is_type(event.type):
            self.owner.answer_audio(AudioChunk.from_event(event).audio)
        elif AudioStop.is_type(event.type):
            self.owner.answer_end()
        elif Error.is_type(event.type):
            error = Error.from_event(event)
            say(f"{self.owner}: Home Assistant says: {error.text} ({error.code})")
        # anything else (detect, voice-started/-stopped, timers): nothing to do
        return True


class DeviceSatellite:
    """One device's Wyoming satellite: its address, the device it serves (bound at its
    first hello when the address names none), Home Assistant's connections and the
    pipeline under way. Hooks are called from the device's session thread."""

    def __init__(self, address: WyomingAddress, say: Callable[[str], None]) -> None:
        self.address = address
        self.say = say
        self.device = address.device
        self.models: list[str] = []
        self.port = address.port
        self.pipeline: _Pipeline | None = None
        self._detected: tuple[str, float] | None = None  # model, time.monotonic()
        self._connections: list[_HomeAssistant] = []
        self._lock = threading.Lock()
        self.session: Session | None = None  # the device's, from its hello
        self._answer: play.Playback | None = None  # Home Assistant's answer, playing
        self._answer_to: _HomeAssistant | None = None

    def __str__(self) -> str:
        return f"satellite {self.device or 'wakeward'} (port {self.port})"

    def info(self) -> Info:
        with self._lock:
            return satellite_info(self.device or service_name(None), list(self.models))

    # the Wyoming side (the event loop's thread)

    def connected(self, connection: _HomeAssistant) -> None:
        with self._lock:
            self._connections.append(connection)
        self.say(f"{self}: Home Assistant connected from {connection.peer}")

    def disconnected(self, connection: _HomeAssistant) -> None:
        with self._lock:
            self._connections.remove(connection)
        self.say(f"{self}: Home Assistant ({connection.peer}) disconnected")

    def _running(self) -> _HomeAssistant | None:
        """The newest connection that runs the satellite (Home Assistant reconnects while
        its old connection may linger)."""
        with self._lock:
            running = [c for c in self._connections if c.running]
        return running[-1] if running else None

    # the device side (its session's thread)

    def hello(self, models: Sequence[str], session: Session | None = None) -> None:
        with self._lock:
            self.models = list(models)
            if session is not None:
                self.session = session

    def closed(self, session: Session) -> None:
        with self._lock:
            if self.session is session:
                self.session = None

    # Home Assistant's answer (the event loop's thread)

    def answer_start(self, connection: _HomeAssistant, start: AudioStart) -> None:
        """TTS audio follows, at the rate Home Assistant announces: to the speaker."""
        if self._answer is not None:
            self._answer.end()  # a new answer: the old one's rest is not awaited
        self._answer = None
        self._answer_to = connection
        session = self.session
        if session is None:
            self.say(f"{self}: Home Assistant's answer is not played: the device is not connected")
            return
        try:
            self._answer = session.play(start.rate, start.width, start.channels)
        except WakewardError as e:
            self.say(f"{self}: Home Assistant's answer is not played: {e}")
            return
        self.say(
            f"{self}: playing Home Assistant's answer ({start.rate} Hz, {start.width * 8}-bit, "
            f"{start.channels} channels) on the speaker: play {self._answer.play_id}"
        )

    def answer_audio(self, audio: bytes) -> None:
        if self._answer is not None:
            self._answer.feed(audio)

    def answer_end(self) -> None:
        """The answer's end: the device's played is awaited (in a thread of its own), said,
        and reported to Home Assistant as Wyoming's played."""
        answer, self._answer = self._answer, None
        connection, self._answer_to = self._answer_to, None
        if answer is None:
            if connection is not None:
                connection.post(Played().event())
            return
        answer.end()

        def wait() -> None:
            try:
                result = answer.wait()
            except WakewardError as e:
                self.say(f"{self}: {e}")
            else:
                ms = result.samples * 1000 // play.DEVICE_RATE_HZ
                dropped = result.dropped * 1000 // play.DEVICE_RATE_HZ
                self.say(
                    f"{self}: the device played {result.play_id}: {result.reason}, "
                    f"{ms} ms played, {dropped} ms dropped"
                    + "".join(f"; it says: {e}" for e in result.errors)
                )
            if connection is not None:
                connection.post(Played().event())

        threading.Thread(target=wait, name=f"played-{answer.play_id}", daemon=True).start()

    def detected(self, model: str) -> None:
        self._detected = (model, time.monotonic())

    def clip_started(self, start: dict) -> None:
        detected, self._detected = self._detected, None
        live = (
            detected is not None
            and detected[0] == start["model"]
            and time.monotonic() - detected[1] <= LIVE_DETECTION_S
        )
        clip_id = start["clip_id"]
        if not live:
            self.say(f"{self}: clip {clip_id} was sent from the device's queue: stored only")
            return
        connection = self._running()
        if connection is None:
            self.say(f"{self}: clip {clip_id}: Home Assistant is not running it: stored only")
            return
        rate_hz = start["rate_hz"]
        self.pipeline = _Pipeline(
            clip_id,
            connection,
            rate_hz,
            skip_bytes=start["pre_roll_ms"] * rate_hz // 1000 * SAMPLE_WIDTH,
        )
        connection.post(Detection(name=start["model"]).event())
        connection.post(
            RunPipeline(start_stage=PipelineStage.ASR, end_stage=PipelineStage.TTS).event()
        )
        connection.post(AudioStart(rate_hz, SAMPLE_WIDTH, CHANNELS, timestamp=0).event())
        self.say(f"{self}: clip {clip_id} -> Home Assistant ({connection.peer}): pipeline")

    def clip_audio(self, clip_id: int, pcm: bytes) -> None:
        pipeline = self.pipeline
        if pipeline is None or pipeline.clip_id != clip_id:
            return
        if pipeline.skip_bytes:
            skipped = min(pipeline.skip_bytes, len(pcm))
            pipeline.skip_bytes -= skipped
            pcm = pcm[skipped:]
        if not pcm or not pipeline.connection.running:
            return
        chunk = AudioChunk(
            pipeline.rate_hz, SAMPLE_WIDTH, CHANNELS, pcm, timestamp=pipeline.timestamp_ms()
        )
        pipeline.sent_bytes += len(pcm)
        pipeline.connection.post(chunk.event())

    def clip_ended(self, clip_id: int, reason: str | None) -> None:
        pipeline = self.pipeline
        if pipeline is None or pipeline.clip_id != clip_id:
            return
        self.pipeline = None
        pipeline.connection.post(AudioStop(timestamp=pipeline.timestamp_ms()).event())
        why = reason.replace("_", " ") if reason is not None else "cut off"
        self.say(f"{self}: clip {clip_id} ended ({why}): audio-stop")


class Satellite:
    """Every device's satellite, fed by a receiver's sessions: a receiver.SessionListener
    (hello, detection) and a receiver.ClipListener (the clips' audio, live). start() binds
    the Wyoming servers on an event loop of their own (a thread) and advertises them."""

    def __init__(
        self,
        addresses: Sequence[WyomingAddress],
        say: Callable[[str], None] = say_line,
        *,
        zeroconf: bool = True,
    ) -> None:
        check_addresses(addresses)
        self.say: Callable[[str], None] = lambda line: say(same_level(line, printable(line)))
        self.satellites = [DeviceSatellite(a, self.say) for a in addresses]
        self.zeroconf = zeroconf
        self._zc: Zeroconf | None = None
        self._services: list[ServiceInfo] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.Server] = []
        self._thread: threading.Thread | None = None
        self._sessions: dict[Session, DeviceSatellite | None] = {}
        self._unserved: set[str] = set()
        self._lock = threading.Lock()

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.satellites]

    def start(self) -> None:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="wyoming", daemon=True)
        self._thread.start()
        ready.wait(_START_TIMEOUT_S)
        for satellite in self.satellites:
            where = satellite.address
            try:
                server = asyncio.run_coroutine_threadsafe(self._listen(satellite), loop).result(
                    _START_TIMEOUT_S
                )
            except OSError as e:
                self.close()
                raise WakewardError(
                    f"cannot listen on {where.host}:{where.port} for Wyoming: {e.strerror or e}"
                ) from None
            self._servers.append(server)
            satellite.port = server.sockets[0].getsockname()[1]
            self.say(
                f"{satellite}: Wyoming on {where.host}:{satellite.port}, for "
                + (f"device {where.device}" if where.device else "the first device to connect")
            )
            if not _is_loopback(where.host):
                self.say(
                    f"{satellite}: whoever reaches {where.host}:{satellite.port} and runs the "
                    "satellite gets the audio after each wake word: let only Home Assistant "
                    "reach it"
                )
        if self.zeroconf:
            self._advertise()

    async def _listen(self, satellite: DeviceSatellite) -> asyncio.Server:
        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _HomeAssistant(reader, writer, satellite).run()

        where = satellite.address
        return await asyncio.start_server(connection, host=where.host, port=where.port)

    def _advertise(self) -> None:
        try:
            self._zc = Zeroconf()
            for satellite in self.satellites:
                name = service_name(satellite.address.device)
                info = service_info(
                    name, advertised_address(satellite.address.host), satellite.port
                )
                self._zc.register_service(info)
                self._services.append(info)
                self.say(f"{satellite}: advertised over zeroconf as {name} ({SERVICE_TYPE})")
        except (OSError, ValueError) as e:  # no multicast here: Home Assistant can be told
            self.say(
                f"zeroconf: cannot advertise ({e}); add the satellite in Home Assistant by "
                "its host and port"
            )

    def close(self) -> None:
        if self._zc is not None:
            for info in self._services:
                with contextlib.suppress(OSError):
                    self._zc.unregister_service(info)
            self._zc.close()
            self._zc = None
        loop = self._loop
        if loop is None:
            return
        self._loop = None

        async def stop() -> None:
            for server in self._servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(_STOP_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)

    def __enter__(self) -> Satellite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serving(self, session: Session) -> DeviceSatellite | None:
        """The satellite of a session's device (bound at its hello; a session without a
        hello, a serial port opened while the link was up, goes to the one for any)."""
        with self._lock:
            if session in self._sessions:
                return self._sessions[session]
            device = session.device if session.said_hello else None
            chosen = None
            for satellite in self.satellites:
                if device is not None and satellite.device == device:
                    chosen = satellite
                    break
            else:
                for satellite in self.satellites:
                    if satellite.address.device is None and satellite.device in (None, device):
                        satellite.device = device
                        chosen = satellite
                        break
            if device is not None:
                self._sessions[session] = chosen
            if chosen is None and device is not None and device not in self._unserved:
                self._unserved.add(device)
                self.say(
                    f"{safe_name(device)}: no --wyoming address for it: its clips are "
                    "stored, not sent to Home Assistant"
                )
            return chosen

    # receiver.SessionListener

    def hello(self, session: Session) -> None:
        if not session.said_hello:
            return  # a serial port's session began: its device says who it is later
        with self._lock:
            self._sessions.pop(session, None)
        satellite = self._serving(session)
        if satellite is not None:
            satellite.hello(session.models, session)

    def message(self, session: Session, msg: dict) -> None:
        satellite = self._serving(session)
        if satellite is not None and msg["type"] == "detection":
            satellite.detected(msg["model"])

    def recording(self, session: Session, recording: Recording) -> bool:
        return False  # nobody here asks for recordings: acknowledged and discarded

    def closed(self, session: Session) -> None:
        with self._lock:
            satellite = self._sessions.pop(session, None)
        if satellite is not None:
            satellite.closed(session)

    # receiver.ClipListener

    def clip_started(self, session: Session, start: dict) -> None:
        satellite = self._serving(session)
        if satellite is not None:
            satellite.clip_started(start)

    def clip_audio(self, session: Session, clip_id: int, pcm: bytes) -> None:
        satellite = self._serving(session)
        if satellite is not None:
            satellite.clip_audio(clip_id, pcm)

    def clip_ended(self, session: Session, clip_id: int, reason: str | None) -> None:
        satellite = self._serving(session)
        if satellite is not None:
            satellite.clip_ended(clip_id, reason)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(
    options: ListenOptions,
    addresses: Sequence[WyomingAddress],
    *,
    zeroconf: bool = True,
    say: Callable[[str], None] = say_line,
    stop: threading.Event | None = None,
    on_ready: Callable[[Satellite, int | None], None] | None = None,
) -> receiver.Receiver:
    """`wakeward satellite`: receive from the speakers as `wakeward listen` does (options:
    where, TLS, the store) and serve each to Home Assistant, until interrupted or `stop` is
    set; the receiver (what it received) once it has stopped. on_ready(satellite,
    receiver's TCP port or None) once both are listening."""
    with Satellite(addresses, say, zeroconf=zeroconf) as satellite:
        if options.serial is not None:
            return serialreceiver.serve_serial(
                options.serial,
                options.baud,
                options.store,
                say=say,
                listener=satellite,
                clips=satellite,
                stop=stop,
                on_open=None if on_ready is None else lambda: on_ready(satellite, None),
            )
        return receiver.serve_tcp(
            options.host,
            options.port,
            options.store,
            say=say,
            on_listening=None if on_ready is None else lambda p: on_ready(satellite, p),
            pairing=options.pairing,
            listener=satellite,
            clips=satellite,
            stop=stop,
        )
