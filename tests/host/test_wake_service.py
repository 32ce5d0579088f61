"""`wakeward wake-service`: the project's models as a Wyoming wake-word service.

The service runs as its own process on loopback; Home Assistant's part is played by the
`wyoming` package's own client (AsyncTcpClient), in the order
homeassistant/components/wyoming/wake_word.py uses: detect (the wake word's name),
audio-start (16 kHz mono 16-bit), audio-chunks with their timestamps. The audio is the
demo's recording (wakeward.demo.make_recording: "Alexa" in two of three sentences), and
the times to match are those `wakeward sim` prints over the same file."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from wakeward import demo, hostmodel, tts
from wakeward.audio import RATE_HZ, read_wav
from wakeward.errors import WakewardError
from wakeward.link import wake_service
from wakeward.link.wake_service import WakeAddress, WakeStream
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.wake import Detect, Detection, NotDetected

from tests.conftest import require_tools
from tests.host.loglines import LOG_PREFIX, plain

WAIT_S = 60.0
POLL_S = 0.02
HA_CHUNK_SAMPLES = 1024  # Home Assistant's audio chunks (assist_pipeline: 1024 samples)
MODELS = ("alexa", "hey_jarvis")
# Converted audio (48 kHz stereo 32-bit there, 16 kHz mono 16-bit here) is not the same
# samples: a detection may move by an invocation (30 ms) or so.
CONVERTED_SLACK_MS = 100


class Service:
    """`wakeward wake-service` in a process of its own, its output read as it comes."""

    def __init__(self, *args: str) -> None:
        self.lines: list[str] = []
        self.raw: list[str] = []  # as printed: with time and level
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "wakeward", "wake-service", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = self.wait_for("wake service: Wyoming on 127.0.0.1:")
        self.port = int(line.split("127.0.0.1:")[1].split(",")[0])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line.rstrip("\n"))
            self.lines.append(plain(self.raw[-1]))  # without its time and level

    def wait_for(self, text: str) -> str:
        end = time.monotonic() + WAIT_S
        while True:
            ended = not self._reader.is_alive()  # the process closed its output
            for line in list(self.lines):
                if text in line:
                    return line
            if ended or time.monotonic() > end:
                raise AssertionError(f"never said {text!r}: {self.lines}")
            time.sleep(POLL_S)

    def stop(self) -> int:
        """SIGTERM, as systemd stops a service: its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(WAIT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(WAIT_S)


@pytest.fixture(scope="module")
def demo_wav(tmp_path_factory) -> Path:
    require_tools("espeak-ng", "sox")
    return demo.make_recording(tmp_path_factory.mktemp("demo") / "demo.wav")


@pytest.fixture(scope="module")
def sim_detections(demo_wav) -> list[tuple[str, int]]:
    """(model, ms) of each detection `wakeward sim --json` prints over the demo."""
    result = subprocess.run(
        [sys.executable, "-m", "wakeward", "sim", str(demo_wav), "--model", "alexa", "--json"],
        capture_output=True,
        text=True,
        timeout=WAIT_S * 5,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    found = [(r["model"], round(r["t"] * 1000)) for r in records if r["detected"]]
    assert len(found) == sum("Alexa" in text for text in demo.DEMO_SENTENCES)
    return found


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    s = Service(*MODELS, "--wyoming", "127.0.0.1:0", "--no-zeroconf")
    yield s
    code = s.stop()
    assert code == 0, s.lines  # SIGTERM: a clean stop
    assert s.lines[-1] == "wake service: stopped"


async def _connect(port: int) -> AsyncTcpClient:
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    return client


async def _next(client: AsyncTcpClient) -> Event:
    event = await asyncio.wait_for(client.read_event(), WAIT_S)
    assert event is not None, "the service closed the connection"
    return event


async def _until_pong(client: AsyncTcpClient) -> list[Event]:
    """Every event before the answer to a ping: all the service had to say until then."""
    await client.write_event(Ping(text="end").event())
    events = []
    while not Pong.is_type((event := await _next(client)).type):
        events.append(event)
    return events


def _pcm(samples: np.ndarray) -> bytes:
    return np.asarray(samples, "<i2").tobytes()


async def _stream(
    client: AsyncTcpClient,
    pcm: bytes,
    names: list[str] | None,
    rate: int = RATE_HZ,
    width: int = 2,
    channels: int = 1,
) -> list[Event]:
    """Home Assistant's order (detect, audio-start, timestamped chunks), then audio-stop:
    what the service answered."""
    await client.write_event(Detect(names=names).event())
    await client.write_event(AudioStart(rate, width, channels).event())
    step = HA_CHUNK_SAMPLES * width * channels
    for at in range(0, len(pcm), step):
        ms = at // (width * channels) * 1000 // rate
        chunk = AudioChunk(rate, width, channels, pcm[at : at + step], timestamp=ms)
        await client.write_event(chunk.event())
    await client.write_event(AudioStop().event())
    return await _until_pong(client)


def _detections(events: list[Event]) -> list[tuple[str | None, int | None]]:
    found = [Detection.from_event(e) for e in events if Detection.is_type(e.type)]
    return [(d.name, d.timestamp) for d in found]


def _describe(port: int) -> Info:
    async def scenario() -> Info:
        client = await _connect(port)
        await client.write_event(Describe().event())
        info = Info.from_event(await _next(client))
        await client.disconnect()
        return info

    return asyncio.run(scenario())


def test_describe_lists_the_models(service):
    info = _describe(service.port)
    (program,) = info.wake
    assert program.name == "wakeward"
    assert [m.name for m in program.models] == list(MODELS)
    assert [m.phrase for m in program.models] == ["Alexa", "Hey Jarvis"]  # the manifests'
    assert program.models[0].languages == ["en"]


def test_the_demos_wake_words_at_the_times_of_wakeward_sim(service, demo_wav, sim_detections):
    pcm = _pcm(read_wav(demo_wav))

    async def scenario() -> list[Event]:
        client = await _connect(service.port)
        events = await _stream(client, pcm, ["alexa"])
        await client.disconnect()
        return events

    events = asyncio.run(scenario())
    assert _detections(events) == sim_detections
    assert not any(NotDetected.is_type(e.type) for e in events)
    assert [e.type for e in events] == ["detection"] * len(sim_detections)


def test_home_assistants_first_detection_and_hang_up(service, demo_wav, sim_detections):
    """As wake_word.py: audio until the first detection, then the connection closes with
    no audio-stop; the service goes on with the next client."""
    pcm = _pcm(read_wav(demo_wav))

    async def scenario() -> Detection:
        client = await _connect(service.port)
        await client.write_event(Detect(names=["alexa"]).event())
        await client.write_event(AudioStart(RATE_HZ, 2, 1).event())
        reading = asyncio.create_task(client.read_event())
        step = HA_CHUNK_SAMPLES * 2
        for at in range(0, len(pcm), step):
            await client.write_event(AudioChunk(RATE_HZ, 2, 1, pcm[at : at + step]).event())
            await asyncio.sleep(0)
            if reading.done():
                break
        event = await asyncio.wait_for(reading, WAIT_S)
        await client.disconnect()
        assert event is not None
        return Detection.from_event(event)

    first = asyncio.run(scenario())
    assert (first.name, first.timestamp) == sim_detections[0]
    assert [m.name for m in _describe(service.port).wake[0].models] == list(MODELS)


def test_audio_in_another_format_is_converted(service, demo_wav, sim_detections):
    """48 kHz stereo 32-bit: the same wake words, within a few invocations of the times."""
    import soxr

    x = read_wav(demo_wav).astype(np.float32) / 32768
    y = soxr.resample(x, RATE_HZ, 48_000)
    left = np.round(y * 2**31 * 0.999).astype("<i4")
    pcm = np.stack([left, left], axis=1).tobytes()

    async def scenario() -> list[Event]:
        client = await _connect(service.port)
        events = await _stream(client, pcm, None, rate=48_000, width=4, channels=2)
        await client.disconnect()
        return events

    found = _detections(asyncio.run(scenario()))
    assert [name for name, _ in found] == [name for name, _ in sim_detections]
    for (_, got), (_, expected) in zip(found, sim_detections, strict=True):
        assert got is not None and abs(got - expected) <= CONVERTED_SLACK_MS


def test_audio_without_the_wake_word_is_not_detected(service, tmp_path):
    require_tools("espeak-ng")
    speech = tts.espeak(demo.DEMO_SENTENCES[1], tmp_path / "kettle.wav")  # no "Alexa"

    async def scenario() -> list[Event]:
        client = await _connect(service.port)
        events = await _stream(client, _pcm(speech), ["alexa"])
        await client.disconnect()
        return events

    events = asyncio.run(scenario())
    assert [e.type for e in events] == ["not-detected"]


def test_detect_chooses_the_models(service, demo_wav):
    """Asked for hey_jarvis alone, the demo's "Alexa" wakes nothing."""
    pcm = _pcm(read_wav(demo_wav))

    async def scenario() -> list[Event]:
        client = await _connect(service.port)
        events = await _stream(client, pcm, ["hey_jarvis"])
        await client.disconnect()
        return events

    assert [e.type for e in asyncio.run(scenario())] == ["not-detected"]
    service.wait_for("listening for hey_jarvis")


def test_a_malformed_event_is_answered_with_an_error_and_the_service_goes_on(service):
    async def scenario() -> tuple[list[Event], list[Event], Event | None]:
        client = await _connect(service.port)
        await client.write_event(Event("audio-start", {"rate": "fast", "width": 2}))
        await client.write_event(AudioChunk(RATE_HZ, 2, 1, bytes(640)).event())
        await client.write_event(Event("detect", {"names": "alexa"}))
        await client.write_event(AudioStart(RATE_HZ, 3, 1).event())  # 24-bit: not taken
        await client.write_event(AudioChunk(RATE_HZ, 3, 1, bytes(960)).event())  # dropped
        first = await _until_pong(client)  # the connection goes on
        await client.write_event(AudioStop().event())
        second = await _until_pong(client)
        # bytes that are not an event: error, and this connection ends
        assert client._writer is not None
        client._writer.write(b"this is not json\n")
        await client._writer.drain()
        errors = [await _next(client)]
        closed = await asyncio.wait_for(client.read_event(), WAIT_S)
        await client.disconnect()
        return first, second + errors, closed

    first, second, closed = asyncio.run(scenario())
    errors = [Error.from_event(e) for e in first]
    assert [e.code for e in errors] == [wake_service.MALFORMED_CODE] * 3
    assert errors[0].text == (
        "audio-start: rate, width and channels must be whole numbers "
        "(rate='fast', width=2, channels=None)"
    )
    assert errors[1].text == "detect: names must be a list of model names, not 'alexa'"
    assert errors[2].text == "audio-start: audio with 3-byte samples: expected 1, 2 or 4"
    assert NotDetected.is_type(second[0].type)  # the stopped (refused) stream
    last = Error.from_event(second[1])
    assert last.text == "not a Wyoming event (its header is not a JSON line)"
    assert closed is None
    service.wait_for("not a Wyoming event (its header is not a JSON line)")
    assert service.proc.poll() is None
    assert _describe(service.port).wake[0].name == "wakeward"  # a new connection is served


def test_a_header_without_a_type_is_refused(service):
    async def scenario() -> tuple[Event, Event | None]:
        client = await _connect(service.port)
        assert client._writer is not None
        client._writer.write(b'{"data": {}}\n')
        await client._writer.drain()
        error = await _next(client)
        closed = await asyncio.wait_for(client.read_event(), WAIT_S)
        await client.disconnect()
        return error, closed

    error, closed = asyncio.run(scenario())
    assert Error.from_event(error).text == "not a Wyoming event (KeyError: 'type')"
    assert closed is None
    assert service.proc.poll() is None


def test_the_stream_api_matches_the_listener(demo_wav):
    """WakeStream over the demo in odd pieces: the detections hostmodel.Listener gives."""
    samples = read_wav(demo_wav)
    spec = hostmodel.model_spec("alexa")
    stream = WakeStream([spec])
    stream.start(RATE_HZ, 2, 1)
    pcm = _pcm(samples)
    for at in range(0, len(pcm), 777):
        stream.feed(pcm[at : at + 777])
    stream.end()
    listener = hostmodel.Listener(spec)
    listener.feed(samples)
    assert [d.t for d in stream.detections] == [d.t for d in listener.detections]
    assert len(stream.detections) == 2


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("0.0.0.0", WakeAddress("0.0.0.0", 10400)),
        ("127.0.0.1:10401", WakeAddress("127.0.0.1", 10401)),
        ("[::1]:10402", WakeAddress("::1", 10402)),
        ("localhost:0", WakeAddress("localhost", 0)),
    ],
)
def test_addresses_parse(text, address):
    assert WakeAddress.parse(text) == address
    assert WakeAddress.parse_uri(f"tcp://{text}") == address


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wyoming", "0.0.0.0:99999"], "--wyoming '0.0.0.0:99999': the port is 0 to 65535"),
        (["--wyoming", ":10400"], "--wyoming ':10400': no HOST (0.0.0.0 for every interface)"),
        (["--uri", "udp://0.0.0.0:10400"], "--uri 'udp://0.0.0.0:10400': only tcp://HOST:PORT"),
        (["--wyoming", "a/b"], "--wyoming 'a/b' is not HOST[:PORT]"),
    ],
)
def test_bad_addresses_are_refused(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "wakeward", "wake-service", "alexa", *args, "--no-zeroconf"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"wakeward: {message}"), result.stderr


def test_two_models_of_one_name_are_refused(tmp_path):
    spec = hostmodel.model_spec("alexa")
    other = hostmodel.ModelSpec(tmp_path / "alexa.tflite", "alexa", 0.5, 3)
    with pytest.raises(WakewardError, match="two models are named 'alexa'"):
        wake_service.check_specs([spec, other])


def test_a_busy_port_is_refused(service):
    result = subprocess.run(
        [
            sys.executable, "-m", "wakeward", "wake-service", "alexa",
            "--wyoming", f"127.0.0.1:{service.port}", "--no-zeroconf",
        ],
        capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"wakeward: cannot listen on 127.0.0.1:{service.port} for Wyoming" in result.stderr


def test_the_zeroconf_name_is_not_the_satellites():
    from wakeward.link import satellite

    assert wake_service.service_name().startswith("wakeward-wake-")
    assert wake_service.service_name() != satellite.service_name(None)


def test_sigterm_with_a_client_mid_stream_stops_cleanly():
    """systemd's stop while wyoming-satellite holds its connection: exit status 0, and
    the client's connection ends."""
    own = Service("alexa", "--wyoming", "127.0.0.1:0", "--no-zeroconf")
    try:

        async def scenario() -> tuple[int, Event | None]:
            client = await _connect(own.port)
            await client.write_event(Detect(names=["alexa"]).event())
            await client.write_event(AudioStart(RATE_HZ, 2, 1).event())
            await client.write_event(AudioChunk(RATE_HZ, 2, 1, bytes(2048)).event())
            await client.write_event(Ping(text="up").event())
            assert Pong.is_type((await _next(client)).type)  # the stream is under way
            code = await asyncio.to_thread(own.stop)
            closed = await asyncio.wait_for(client.read_event(), WAIT_S)
            await client.disconnect()
            return code, closed

        code, closed = asyncio.run(scenario())
    finally:
        own.stop()
    assert code == 0, own.lines
    assert closed is None
    assert own.lines[-1] == "wake service: stopped"


def test_it_logs_timestamped_levelled_lines_to_stdout_and_the_log_file(tmp_path):
    log = tmp_path / "wake.log"
    own = Service("alexa", "--wyoming", "127.0.0.1:0", "--no-zeroconf", "--log-file", str(log))
    assert own.stop() == 0, own.lines
    assert own.lines[0].startswith("model alexa (")
    assert own.lines[-1] == "wake service: stopped"
    assert all(LOG_PREFIX.match(line) for line in own.raw), own.raw
    written = log.read_text().splitlines()
    assert [plain(line) for line in written] == own.lines
    assert all(LOG_PREFIX.match(line) for line in written)


def test_serve_in_process_until_stop_is_set(demo_wav, sim_detections):
    """The importable API: serve() in a thread, on_ready with the port, `stop` ends it."""
    said: list[str] = []
    ready: list[int] = []
    stop = threading.Event()
    spec = hostmodel.model_spec("alexa")
    thread = threading.Thread(
        target=wake_service.serve,
        args=([spec], WakeAddress("127.0.0.1", 0)),
        kwargs={"zeroconf": False, "say": said.append, "stop": stop, "on_ready": ready.append},
    )
    thread.start()
    try:
        end = time.monotonic() + WAIT_S
        while not ready and time.monotonic() < end:
            time.sleep(POLL_S)
        assert ready, said

        async def scenario() -> list[Event]:
            client = await _connect(ready[0])
            events = await _stream(client, _pcm(read_wav(demo_wav)), None)
            await client.disconnect()
            return events

        assert _detections(asyncio.run(scenario())) == sim_detections
    finally:
        stop.set()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    assert said[-1] == "wake service: stopped"
