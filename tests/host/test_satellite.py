"""`wakeward satellite`: a device's clips reach Home Assistant over Wyoming while the device
still captures them, and still go into the clip store as `listen` puts them.

Home Assistant's part is played by the `wyoming` package's own client (AsyncTcpClient), in
the order homeassistant/components/wyoming/assist_satellite.py uses: connect, run-satellite,
describe, pings. The first tests' device is test_listen's stand-in on listen's in-process
receiver; the last ones' is the real firmware on the sim board (test_delivery's Device, fed
"Alexa, ..." or speech without it; over TLS where it must play) streaming to `wakeward
satellite` in its own process (test_delivery's Receiver)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from wakeward import audio, play
from wakeward.errors import WakewardError
from wakeward.link import satellite
from wakeward.link.satellite import Satellite, WyomingAddress
from wakeward.sim import SIM_DEVICE_ID
from wakeward.store import ClipStore
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import RunSatellite
from wyoming.snd import Played
from wyoming.wake import Detection

from tests.conftest import require_tools
from tests.host.test_delivery import Device as SimDevice
from tests.host.test_delivery import Receiver, check_clip, free_port, stored, wait_for
from tests.host.test_listen import WAIT_S, Device, InProcess, pcm
from tests.host.test_tls import tls_device

RATE_HZ = 16000
PRE_ROLL_BYTES = 1000 * RATE_HZ // 1000 * 2  # Device.clip_frames: 1000 ms of pre-roll
FIRST_PART = 10  # clip_data frames sent before the rest (8 of them pre-roll)
POLL_S = 0.02
HA_CHUNK_BYTES = 2048  # Home Assistant's TTS chunks: 1024 samples of 16-bit mono
SLOT_SAMPLES = 160  # the device's speaker plays 10 ms at a time (firmware/play.py)
ROOM_S = 4  # of room noise for `wakeward sim` at real time: hello, the answer, its played


class Served:
    """listen's in-process receiver with a Satellite as its listener, on a free port."""

    def __init__(self, folder: Path) -> None:
        self.said: list[str] = []
        self.satellite = Satellite(
            [WyomingAddress("127.0.0.1", 0)], self.said.append, zeroconf=False
        )
        self.satellite.start()
        self.rx = InProcess(folder, listener=self.satellite, clips=self.satellite)

    @property
    def port(self) -> int:
        return self.satellite.ports[0]

    def wait_for(self, text: str, lines: list[str] | None = None) -> None:
        end = time.monotonic() + WAIT_S
        while not any(text in line for line in (self.said if lines is None else lines)):
            if time.monotonic() > end:
                raise AssertionError(f"never said {text!r}: {self.said + self.rx.lines}")
            time.sleep(POLL_S)

    def device(self) -> Device:
        dev = self.rx.connect()
        self.wait_for("hello from kitchen", self.rx.lines)
        return dev

    def close(self) -> None:
        self.satellite.close()
        self.rx.store.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path / "store")
    yield s
    s.close()


async def _next(client: AsyncTcpClient, skip: tuple[str, ...] = ()) -> Event:
    while True:
        event = await asyncio.wait_for(client.read_event(), WAIT_S)
        assert event is not None, "the satellite closed the connection"
        if event.type not in skip:
            return event


async def _home_assistant(port: int) -> AsyncTcpClient:
    """Connected as Home Assistant connects: run-satellite, describe; a ping answered
    shows both were handled."""
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    await client.write_event(RunSatellite().event())
    await client.write_event(Describe().event())
    await client.write_event(Ping(text="ha").event())
    return client


def test_describe_answers_with_the_devices_satellite(served):
    served.device()

    async def scenario() -> tuple[Info, Event]:
        client = await _home_assistant(served.port)
        info = Info.from_event(await _next(client))
        pong = await _next(client)
        await client.disconnect()
        return info, pong

    info, pong = asyncio.run(scenario())
    assert info.satellite is not None
    assert info.satellite.name == "kitchen"
    assert info.satellite.active_wake_words == ["alexa"]
    assert info.satellite.has_vad is True
    assert [m.name for m in info.wake[0].models] == ["alexa"]
    (snd,) = info.snd
    assert (snd.snd_format.rate, snd.snd_format.width, snd.snd_format.channels) == (16000, 2, 1)
    assert Pong.is_type(pong.type) and Pong.from_event(pong).text == "ha"


def test_home_assistants_answer_plays_on_the_speaker_and_played_goes_back(served):
    """TTS audio at 22,050 Hz, in Home Assistant's 1024-sample chunks: the device gets it
    at 16 kHz (the resampler's output, sample for sample), and its played is said and
    reported to Home Assistant as Wyoming's played."""
    dev = served.device()
    rate = 22050
    t = np.arange(int(rate * 1.0)) / rate
    answer = (np.sin(2 * np.pi * 330 * t) * 9000).astype("<i2").tobytes()

    async def scenario() -> Event:
        client = await _home_assistant(served.port)
        await _next(client)  # info
        await _next(client)  # pong: run-satellite has been handled
        taking = asyncio.create_task(asyncio.to_thread(dev.take_play))
        await client.write_event(AudioStart(rate, 2, 1).event())
        for at in range(0, len(answer), 2048):
            await client.write_event(AudioChunk(rate, 2, 1, answer[at : at + 2048]).event())
        await client.write_event(AudioStop().event())
        played = await _next(client)
        got.append(await taking)
        await client.disconnect()
        return played

    got: list = []
    played = asyncio.run(scenario())
    assert Played.is_type(played.type)
    play_id, audio = got[0]
    assert audio == play.resample(answer, rate)
    served.wait_for(f"the device played {play_id}: done, 1000 ms played, 0 ms dropped")
    served.wait_for(f"playing Home Assistant's answer ({rate} Hz, 16-bit, 1 channels)")
    served.rx.close(dev)


def test_an_answer_with_no_device_connected_is_not_played_but_played_goes_back(served):
    async def scenario() -> Event:
        client = await _home_assistant(served.port)
        await _next(client)
        await _next(client)
        await client.write_event(AudioStart(22050, 2, 1).event())
        await client.write_event(AudioChunk(22050, 2, 1, bytes(4096)).event())
        await client.write_event(AudioStop().event())
        played = await _next(client)
        await client.disconnect()
        return played

    assert Played.is_type(asyncio.run(scenario()).type)
    served.wait_for("answer is not played: the device is not connected")


def test_a_detection_streams_to_home_assistant_while_the_device_captures(served):
    dev = served.device()
    clip_audio = pcm(21, seconds=2.0)
    frames = Device.clip_frames(21, clip_audio)
    first, rest = frames[: 1 + FIRST_PART], frames[1 + FIRST_PART :]

    async def scenario() -> tuple[list[Event], bool]:
        client = await _home_assistant(served.port)
        await _next(client)  # info
        await _next(client)  # pong: run-satellite has been handled
        await asyncio.to_thread(dev.detection)
        await asyncio.to_thread(dev.sock.sendall, b"".join(first))
        events = [await _next(client) for _ in range(4)]  # up to the first audio-chunk
        stored_before = bool(served.rx.receiver.clips)  # the clip has not ended yet
        await asyncio.to_thread(dev.sock.sendall, b"".join(rest))
        while not AudioStop.is_type(events[-1].type):
            events.append(await _next(client))
        await client.disconnect()
        return events, stored_before

    events, stored_before = asyncio.run(scenario())
    kinds = [e.type for e in events]
    assert kinds[:4] == ["detection", "run-pipeline", "audio-start", "audio-chunk"], kinds
    assert set(kinds[3:-1]) == {"audio-chunk"} and kinds[-1] == "audio-stop"
    assert not stored_before, "the audio went out only after the clip was stored"

    assert Detection.from_event(events[0]).name == "alexa"
    run = RunPipeline.from_event(events[1])
    assert (run.start_stage, run.end_stage) == (PipelineStage.ASR, PipelineStage.TTS)
    start = AudioStart.from_event(events[2])
    assert (start.rate, start.width, start.channels) == (RATE_HZ, 2, 1)
    chunks = [AudioChunk.from_event(e) for e in events[3:-1]]
    streamed = b"".join(c.audio for c in chunks)
    assert streamed == clip_audio[PRE_ROLL_BYTES:]  # all but the pre-roll (the wake word)
    assert [c.timestamp for c in chunks][:2] == [0, chunks[0].milliseconds]
    assert AudioStop.from_event(events[-1]).timestamp == len(streamed) // 2 * 1000 // RATE_HZ

    assert dev.ack() == 21
    with ClipStore(served.rx.store.folder, create=False) as other:  # as listen stores it
        (clip,) = other.clips()
    assert (clip.device, clip.device_clip_id, clip.model, clip.pre_roll_ms, clip.end_reason) == (
        "kitchen",
        21,
        "alexa",
        1000,
        "end_of_speech",
    )
    stored = audio.read_wav(clip.path)
    assert stored.tobytes() == clip_audio
    assert np.array_equal(stored[PRE_ROLL_BYTES // 2 :], np.frombuffer(streamed, "<i2"))
    served.rx.close(dev)


def test_a_clip_without_its_detection_message_is_stored_only(served):
    """A resend from the device's queue (after a reconnect) is not a live command."""
    dev = served.device()

    async def scenario() -> list[Event]:
        client = await _home_assistant(served.port)
        await _next(client)
        await _next(client)
        await asyncio.to_thread(dev.clip, 5)
        await asyncio.to_thread(dev.ack)
        await client.write_event(Ping(text="after").event())
        got = [await _next(client)]
        await client.disconnect()
        return got

    got = asyncio.run(scenario())
    assert [e.type for e in got] == ["pong"], "a pipeline for a resend"
    served.wait_for("clip 5 was sent from the device's queue: stored only")
    assert [c.device_clip_id for c in served.rx.receiver.clips] == [5]
    served.rx.close(dev)


def test_no_pipeline_before_run_satellite(served):
    dev = served.device()
    dev.detection()
    dev.clip(6)
    assert dev.ack() == 6
    served.wait_for("clip 6: Home Assistant is not running it: stored only")
    served.rx.close(dev)


def test_a_clip_cut_off_ends_its_audio(served):
    dev = served.device()
    frames = Device.clip_frames(8, pcm(8, seconds=2.0))

    async def scenario() -> list[Event]:
        client = await _home_assistant(served.port)
        await _next(client)
        await _next(client)
        await asyncio.to_thread(dev.detection)
        await asyncio.to_thread(dev.sock.sendall, b"".join(frames[: 1 + FIRST_PART]))
        events = [await _next(client)]
        await asyncio.to_thread(served.rx.close, dev)  # the link drops mid-clip
        while not AudioStop.is_type(events[-1].type):
            events.append(await _next(client))
        await client.disconnect()
        return events

    events = asyncio.run(scenario())
    assert events[-1].type == "audio-stop"
    assert not served.rx.receiver.clips
    served.wait_for("clip 8 ended (cut off)")


# -- addresses and zeroconf -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("0.0.0.0", WyomingAddress("0.0.0.0", 10700)),
        ("127.0.0.1:10701", WyomingAddress("127.0.0.1", 10701)),
        ("kitchen=0.0.0.0:10702", WyomingAddress("0.0.0.0", 10702, "kitchen")),
        ("hall=[::1]:10703", WyomingAddress("::1", 10703, "hall")),
        ("[::]", WyomingAddress("::", 10700)),
    ],
)
def test_wyoming_addresses_parse(text, address):
    assert WyomingAddress.parse(text) == address


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["=0.0.0.0"], "DEVICE= needs a device id"),
        ([":10700"], "no HOST"),
        (["0.0.0.0:99999"], "the port is 0 to 65535"),
        (["0.0.0.0:1", "0.0.0.0:2"], "more than one --wyoming without DEVICE="),
        (["a=0.0.0.0:1", "a=0.0.0.0:2"], "named in two"),
        (["a=0.0.0.0:1", "b=0.0.0.0:1"], "same HOST:PORT"),
    ],
)
def test_bad_wyoming_addresses_are_refused(texts, message):
    with pytest.raises(WakewardError, match=message):
        satellite.check_addresses([WyomingAddress.parse(t) for t in texts])


def test_the_zeroconf_service_is_wyomings_with_the_satellites_port():
    info = satellite.service_info(satellite.service_name("kitchen"), "192.168.1.20", 10700)
    assert info.type == "_wyoming._tcp.local."
    assert info.name == "wakeward-kitchen._wyoming._tcp.local."
    assert info.port == 10700
    assert [str(ipaddress.ip_address(a)) for a in info.addresses] == ["192.168.1.20"]
    assert satellite.service_name("a b/c").startswith("wakeward-a_b_c")


def test_the_command_refuses_a_busy_wyoming_port(tmp_path):
    with Satellite([WyomingAddress("127.0.0.1", 0)], zeroconf=False) as first:
        taken = first.ports[0]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "wakeward",
                "satellite",
                "--tcp",
                "127.0.0.1:0",
                "--store",
                str(tmp_path / "store"),
                "--wyoming",
                f"127.0.0.1:{taken}",
                "--no-zeroconf",
            ],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
    assert result.returncode != 0
    assert f"wakeward: cannot listen on 127.0.0.1:{taken} for Wyoming" in result.stderr


# -- the real firmware on the sim board, `wakeward satellite` in its own process ----------


class HomeAssistant:
    """The `wyoming` client as Home Assistant, on an event loop in a thread of its own:
    connects, sends run-satellite, describe and a ping (Home Assistant's order), and keeps
    every event that comes with the time it came (time.monotonic())."""

    def __init__(self, port: int) -> None:
        self.received: list[tuple[float, Event]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._client = AsyncTcpClient("127.0.0.1", port)
        self._call(self._client.connect())
        self._reading = asyncio.run_coroutine_threadsafe(self._read(), self._loop)
        self.send(RunSatellite().event(), Describe().event(), Ping(text="ha").event())
        self.until(lambda: "pong" in self.types(), "the satellite's pong")

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(WAIT_S)

    async def _read(self) -> None:
        while (event := await self._client.read_event()) is not None:
            self.received.append((time.monotonic(), event))

    async def _write(self, events: tuple[Event, ...]) -> None:
        for event in events:
            await self._client.write_event(event)

    def send(self, *events: Event) -> None:
        self._call(self._write(events))

    def events(self) -> list[Event]:
        return [event for _, event in list(self.received)]

    def types(self) -> list[str]:
        return [event.type for event in self.events()]

    def until(self, cond: Callable[[], bool], what: str) -> None:
        wait_for(cond, f"{what} (Home Assistant got {self.types()})")

    def close(self) -> None:
        self._call(self._client.disconnect())
        self._reading.cancel()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT_S)


def pipelines(events: list[Event]) -> list[list[Event]]:
    """The events from each `detection` up to its `audio-stop`."""
    runs: list[list[Event]] = []
    for event in events:
        if Detection.is_type(event.type):
            runs.append([])
        if runs:
            runs[-1].append(event)
    return runs


class SimSatellite:
    """`wakeward satellite` (a real process, plain TCP or --tls) and the firmware on the
    sim board streaming to it (test_delivery's Device: the test feeds its microphone), with
    Home Assistant connected once the device has said its hello."""

    def __init__(self, tmp_path: Path, *, tls=None, **board) -> None:
        """tls: a pairing folder (test_tls's `pairs`) in which the sim device is paired;
        board: the Device's events and speaker files."""
        self.port, wyoming = free_port(), free_port()
        self.store = tmp_path / "store"
        extra: tuple[str, ...] = ("--tls", "--pairing", str(tls.folder)) if tls else ()
        self.receiver = Receiver(
            self.port,
            self.store,
            command=("satellite", "--wyoming", f"127.0.0.1:{wyoming}", "--no-zeroconf", *extra),
        )
        flash = tmp_path / "flash"
        if tls is None:
            self.device = SimDevice(flash, self.port, **board)
        else:
            secret = tls.secret(SIM_DEVICE_ID)
            self.device = tls_device(flash, self.port, tls.cert_der(), secret, **board)
        self.device.until(lambda: self.said("hello from sim"), "the device's hello")
        self.home_assistant = HomeAssistant(wyoming)
        self.device.until(lambda: self.said("runs the satellite"), "run-satellite handled")

    def said(self, text: str) -> bool:
        return bool(self.receiver.output.having(text))

    def stop(self) -> list[str]:
        """The device's input ends (it finishes and exits), then the satellite's."""
        self.device.stop()
        self.home_assistant.close()
        return self.receiver.stop()


def test_the_sim_device_says_alexa_twice_and_home_assistant_gets_two_pipelines(tmp_path, speech):
    """Each pipeline: detection, run-pipeline, audio-start, audio-chunks, audio-stop, its
    audio the stored clip's sample for sample but the pre-roll (the documented trim:
    docs/satellite.md, "Why the pre-roll and the wake word do not go to speech-to-text")."""
    sim = SimSatellite(tmp_path)
    device, ha = sim.device, sim.home_assistant
    device.say(speech)
    device.say(speech)
    device.until(lambda: ha.types().count("audio-stop") == 2, "two audio-stops")
    events = ha.events()
    sim.stop()

    assert [e.type for e in events[:2]] == ["info", "pong"]
    runs = pipelines(events)
    assert len(runs) == 2 and sum(len(r) for r in runs) == len(events) - 2
    clips = stored(sim.store)
    assert len(device.detections()) == 2 and len(clips) == 2
    for index, run in enumerate(runs):
        kinds = [e.type for e in run]
        assert kinds[:3] == ["detection", "run-pipeline", "audio-start"], kinds
        assert set(kinds[3:-1]) == {"audio-chunk"} and kinds[-1] == "audio-stop", kinds
        assert Detection.from_event(run[0]).name == "alexa"
        stages = RunPipeline.from_event(run[1])
        assert (stages.start_stage, stages.end_stage) == (PipelineStage.ASR, PipelineStage.TTS)
        start = AudioStart.from_event(run[2])
        assert (start.rate, start.width, start.channels) == (RATE_HZ, 2, 1)
        streamed = b"".join(AudioChunk.from_event(e).audio for e in run[3:-1])
        check_clip(clips, device, index)  # the stored clip is the audio fed, exactly
        _, samples = clips[device.first_clip_id + index]
        assert streamed == samples[PRE_ROLL_BYTES // 2 :].astype("<i2").tobytes()


def test_the_sim_device_hearing_no_wake_word_gives_no_pipeline_and_no_audio(tmp_path):
    require_tools("espeak-ng", "sox")
    from wakeward import tts

    sim = SimSatellite(tmp_path)
    device, ha = sim.device, sim.home_assistant
    for i, text in enumerate(["The kettle is on.", "I like my coffee hot."]):
        voice = tts.espeak(text, tmp_path / f"t{i}.wav")
        device.say((voice.astype(np.float64) * 0.5).astype(np.int16))
    lines = sim.device.stop()  # the firmware has heard it all
    ha.send(Ping(text="after").event())
    ha.until(lambda: ha.types().count("pong") == 2, "the second pong")
    assert ha.types() == ["info", "pong", "pong"]
    assert not [line for line in lines if line.startswith("detected:")]
    ha.close()
    assert not stored(sim.store)
    sim.receiver.stop()


def sim_answer(rate_hz: int = 22050, seconds: float = 1.0) -> bytes:
    """Home Assistant's TTS audio: a tone at rate_hz, 16-bit mono."""
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (np.sin(2 * np.pi * 330 * t) * 9000).astype("<i2").tobytes()


def answer(ha: HomeAssistant, audio: bytes, rate_hz: int) -> None:
    """The answer as Home Assistant sends it: audio-start, chunks of 1024 samples,
    audio-stop."""
    events = [AudioStart(rate_hz, 2, 1).event()]
    for at in range(0, len(audio), HA_CHUNK_BYTES):
        events.append(AudioChunk(rate_hz, 2, 1, audio[at : at + HA_CHUNK_BYTES]).event())
    ha.send(*events, AudioStop().event())


def test_an_answer_at_22050_hz_plays_on_the_paired_sim_device_exactly_converted(tmp_path, pairs):
    pairs.pair(SIM_DEVICE_ID)
    events, speaker = tmp_path / "events.jsonl", tmp_path / "speaker.raw"
    sim = SimSatellite(tmp_path, tls=pairs, events=events, speaker=speaker)
    device, ha = sim.device, sim.home_assistant
    rate = 22050
    audio = sim_answer(rate)
    answer(ha, audio, rate)
    device.until(lambda: "played" in ha.types(), "Home Assistant's played")
    lines = sim.stop()

    want = play.resample(audio, rate)
    got = speaker.read_bytes()
    assert got == want
    log = [json.loads(line) for line in events.read_text().splitlines()]
    slots = [e["samples"] for e in log if e["dev"] == "speaker"]
    assert sum(slots) * 2 == len(want) and max(slots) == SLOT_SAMPLES
    assert any(f"the device played 1: done, {len(want) // 32} ms played" in x for x in lines)


def test_the_sim_device_does_not_play_for_a_receiver_that_is_not_its_paired_one(tmp_path):
    """Plain TCP (link.requests "paired", the default): the device cannot know who this
    receiver is, refuses the answer, and Home Assistant still gets its played."""
    events, speaker = tmp_path / "events.jsonl", tmp_path / "speaker.raw"
    sim = SimSatellite(tmp_path, events=events, speaker=speaker)
    device, ha = sim.device, sim.home_assistant
    answer(ha, sim_answer(), 22050)
    device.until(lambda: "played" in ha.types(), "Home Assistant's played")
    lines = sim.stop()
    assert speaker.read_bytes() == b""
    assert not [line for line in events.read_text().splitlines() if '"speaker"' in line]
    assert device.output.having("link: play 1 refused: this link is plain TCP")
    assert any("the device played 1: refused, 0 ms played" in x for x in lines)


def test_wakeward_sim_speaker_wav_holds_home_assistants_answer(tmp_path):
    """An owner without a board hears the answer: `wakeward sim --link ... --allow-requests
    --speaker-wav` (real time, room noise only) to `wakeward satellite`; Home Assistant
    answers once the device said hello; the WAV is silence, then the answer as converted."""
    port, wyoming = free_port(), free_port()
    rx = Receiver(
        port,
        tmp_path / "store",
        command=("satellite", "--wyoming", f"127.0.0.1:{wyoming}", "--no-zeroconf"),
    )
    room = np.random.default_rng(3).normal(0, 30, ROOM_S * RATE_HZ).astype(np.int16)
    wav, out = audio.write_wav(tmp_path / "room.wav", room), tmp_path / "speaker.wav"
    device = subprocess.Popen(
        [sys.executable, "-m", "wakeward", "sim", str(wav), "--model", "alexa", "--realtime"]
        + ["--heap", "esp32s3-psram", "--link", f"127.0.0.1:{port}", "--allow-requests"]
        + ["--speaker-wav", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: rx.output.having("hello from sim"), "the device's hello")
        ha = HomeAssistant(wyoming)
        rate = 22050
        tts = sim_answer(rate, seconds=0.5)
        answer(ha, tts, rate)
        ha.until(lambda: "played" in ha.types(), "Home Assistant's played")
        said, _ = device.communicate(timeout=WAIT_S)
        ha.close()
    finally:
        device.kill()
        rx.stop()
    assert device.returncode == 0, said
    played = audio.read_wav(out)
    want = np.frombuffer(play.resample(tts, rate), "<i2")
    start = np.flatnonzero(played)[0] - np.flatnonzero(want)[0]
    assert start > 0 and len(played) == len(room)
    assert np.array_equal(played[start : start + len(want)], want)
    assert not played[start + len(want) :].any()
    assert f"is in {out}" in said
