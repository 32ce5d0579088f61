"""The owner's requests end to end, with real processes: the unmodified firmware on the sim
board (its microphone fed by the test over a socket, so the test decides when audio time
moves) and, on the PC, a receiver stand-in speaking the protocol module, `wakeward
monitor --tcp` or devicerequests.record_from_speaker.

A monitor request over plain TCP is honoured only with link.requests "any" (refused by
default: here and in test_privacy.py), over TLS with the pairing and over USB serial by
default; the outputs that arrive are,
value for value, what `wakeward sim --json` prints over the same audio, for exactly the
requested window, and none after it; the LED blinks meanwhile. A record request gives a
recording of exactly its length from the audio after the request, acknowledged, not put in
the clip store, and counted in the device's status. `wakeward monitor` renews a window
before it ends and asks again for the rest, and its options are checked naming them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from wakeward import devicerequests, pairing
from wakeward.audio import RATE_HZ, write_wav

from tests.host.test_delivery import (
    Device,
    Output,
    count_stored,
    free_port,
    stored,
    wait_for,
)
from tests.host.test_monitor import png_size
from tests.host.test_protocol import P

WAKEWARD = [sys.executable, "-m", "wakeward"]
WINDOW_S = 3
CERT = "receiver.der"


class Asker:
    """A receiver stand-in: sends `request` once the device's hello has come, acks each
    clip_end, and keeps every message the device sent, in order."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(30)
        self.port = self.server.getsockname()[1]
        self.msgs: list[dict] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        decoder = P.Decoder()
        with conn:
            while chunk := conn.recv(65536):
                decoder.feed(chunk)
                for kind, msg in decoder:
                    assert kind == "msg", (kind, msg)
                    self.msgs.append(msg)
                    if msg["type"] == "hello":
                        conn.sendall(self.request)
                    elif msg["type"] == "clip_end":
                        conn.sendall(P.encode_ack(msg["clip_id"]))

    def types(self) -> list[str]:
        return [m["type"] for m in list(self.msgs)]

    def join(self) -> list[dict]:
        self.thread.join(30)
        self.server.close()
        return self.msgs


def sim_json(tmp_path: Path, audio: np.ndarray) -> dict[int, dict]:
    """`wakeward sim AUDIO --model alexa --json` over the audio: its records by the time
    in ms."""
    wav = write_wav(tmp_path / "fed.wav", audio)
    done = subprocess.run(
        [*WAKEWARD, "sim", str(wav), "--model", "alexa", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    records = [json.loads(x) for x in done.stdout.splitlines()]
    return {round(r["t"] * 1000): r for r in records}


def led_changes(events: Path) -> list[tuple[int, int]]:
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    return [(e["t_ms"], e["value"]) for e in lines if e["dev"] == "led"]


def test_monitored_outputs_are_the_sims_value_for_value_and_stop_with_the_window(tmp_path, speech):
    """Plain TCP with link.requests "any" (`wakeward sim --allow-requests`)."""
    asker = Asker(P.encode_request(P.MONITOR, WINDOW_S, 21))
    events = tmp_path / "events.jsonl"
    device = Device(tmp_path / "flash", asker.port, events=events, requests="any")
    # the window opens when the device takes the request; on a loaded machine that can be
    # after a second of audio, so the wake word comes only once it has
    taken = "link: request 21: monitor for 3 s"
    device.until(lambda: device.output.having(taken), "the monitor request taken")
    device.say(speech)  # 0.5 s, the wake word, 2.5 s: past the window's end
    device.until(lambda: "request_end" in asker.types(), "the window's end")
    device.feed(device.noise(2.0))  # the device goes on listening: nothing is sent
    device.stop()
    msgs = asker.join()
    types = [m["type"] for m in msgs]
    want = sim_json(tmp_path, np.concatenate(device.fed))

    got: list[tuple[int, int]] = []
    for m in msgs:
        if m["type"] == "outputs":
            assert m["model"] == "alexa"
            got += [(m["time_ms"] + 30 * i, p) for i, p in enumerate(m["values"])]
    times = [t for t, _ in got]
    # every invocation of the window, 30 ms apart, and as many as 3 s hold
    assert times == list(range(times[0], times[0] + WINDOW_S * 1000, 30))
    assert [p for _, p in got] == [want[t]["p"] for t in times]  # bit-exact
    (detection,) = [m for m in msgs if m["type"] == "detection"]
    assert want[detection["time_ms"]]["detected"] and times[0] < detection["time_ms"]
    assert types[types.index("detection") - 1] == "outputs"  # its batch first
    # the window's end, then nothing but the clip and status
    end = types.index("request_end")
    assert msgs[end] == {"type": "request_end", "request_id": 21, "reason": P.REQ_DONE}
    assert "outputs" not in types[end:]
    assert msgs[-1]["type"] == "status" and msgs[-1]["monitor_s"] == WINDOW_S
    assert sum(t == "clip_end" for t in types) == 1  # the detection's clip as ever
    # the LED blinked through the window (250 ms on, 250 ms off) and was steady after it
    leds = led_changes(events)
    blinks = [t for t, _ in leds if times[0] - 30 <= t <= times[-1]]
    assert len(blinks) >= 2 * WINDOW_S * 2 - 2
    settled = times[-1] + 60  # the window has ended by then
    assert [v for t, v in leds if t <= settled][-1] == 1  # on, steady
    assert [v for t, v in leds if t > settled] == [0]  # until the firmware ends


@pytest.fixture
def pairs(tmp_path) -> pairing.Pairing:
    pairs = pairing.Pairing(tmp_path / "pairing")
    pairs.ensure_identity()
    pairs.pair("sim")
    return pairs


def test_wakeward_monitor_over_tls_charts_a_paired_speaker_and_keeps_its_clip(
    tmp_path, speech, pairs
):
    """`wakeward monitor --tcp --tls` as the receiver of a paired sim: honoured with the
    default link.requests; the PNG, the records (the sim's, value for value, the detection
    marked) and the detection clip in the clip store."""
    port, store = free_port(), tmp_path / "clips"
    monitor = subprocess.Popen(
        [*WAKEWARD, "monitor", "--tcp", f"127.0.0.1:{port}", "--tls"]
        + ["--pairing", str(pairs.folder), "--seconds", str(WINDOW_S), "--save", "m.png"]
        + ["--size", "600x300", "--records", "r.jsonl", "--store", str(store)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    output = Output(monitor.stdout)
    wait_for(lambda: output.having("TLS: only devices paired in"), "the monitor listening")
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / CERT).write_bytes(pairs.cert_der())
    device = Device(flash, port, tls={"cert": CERT}, secret=pairs.secret("sim"))
    device.say(speech)
    device.until(lambda: monitor.poll() is not None, "the monitor's end")
    device.stop()
    lines = output.join()
    assert monitor.returncode == 0, "\n".join(lines)
    assert "device connected from 127.0.0.1 (TLS)" in lines
    assert f"asked sim for its models' outputs for {WINDOW_S} s" in lines
    assert png_size(tmp_path / "m.png") == (600, 300)
    records = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(records) == WINDOW_S * 1000 // 30
    want = sim_json(tmp_path, np.concatenate(device.fed))
    assert [(r["p"], r["detected"]) for r in records] == [
        (want[round(r["t"] * 1000)]["p"], want[round(r["t"] * 1000)]["detected"]) for r in records
    ]
    assert [r["detected"] for r in records].count(True) == 1
    assert [x for x in lines if x.startswith("alexa: ") and "1 detection;" in x]
    (row, samples) = next(iter(stored(store).values()))
    assert row.model == "alexa" and len(samples) == row.samples > RATE_HZ


def test_wakeward_monitor_says_why_a_plain_tcp_speaker_refuses(tmp_path):
    """The default link.requests ("paired") over plain TCP: the command ends with the
    device's reason, and no record came."""
    port = free_port()
    monitor = subprocess.Popen(
        [*WAKEWARD, "monitor", "--tcp", f"127.0.0.1:{port}", "--records", "r.jsonl"]
        + ["--store", str(tmp_path / "clips")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    output = Output(monitor.stdout)
    wait_for(lambda: output.having("listening on 127.0.0.1"), "the monitor listening")
    device = Device(tmp_path / "flash", port)
    device.until(lambda: monitor.poll() is not None, "the monitor's end")
    device.power_off()
    lines = output.join()
    assert monitor.returncode == 1
    assert lines[-1].startswith("wakeward: sim refused to be monitored: request ")
    assert "refused: this link is plain TCP, not the paired owner's" in lines[-1]
    assert (tmp_path / "r.jsonl").read_text() == ""
    assert device.output.having("link: request ") and not device.output.having(": monitor for")


def test_record_from_speaker_returns_the_audio_after_each_request(tmp_path):
    """Two takes of 1 s over plain TCP with link.requests "any": each is the second of
    audio after its request, acknowledged (nothing waits on the device's flash), not in
    the clip store, and counted in the device's status; the LED blinks meanwhile."""
    port, store = free_port(), tmp_path / "clips"
    events = tmp_path / "events.jsonl"
    options = devicerequests.ListenOptions.parse(tcp=f"127.0.0.1:{port}", store=store)
    said: list[str] = []
    handed: list[tuple[int, int]] = []
    result: list = []

    def record() -> None:
        try:
            result.append(
                devicerequests.record_from_speaker(
                    options,
                    1,
                    2,
                    on_take=lambda i, s: handed.append((i, len(s))),
                    say=said.append,
                    connect_timeout_s=30,
                )
            )
        except Exception as e:  # noqa: BLE001  # shown by the assertion below
            result.append(e)

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    wait_for(lambda: [x for x in said if x.startswith("listening on")], "the receiver")
    device = Device(tmp_path / "flash", port, events=events, requests="any")
    device.until(lambda: result, "both takes")
    device.feed(device.noise(1.0))
    device.stop()
    thread.join(30)
    (takes,) = result
    assert isinstance(takes, list), takes
    assert handed == [(0, RATE_HZ), (1, RATE_HZ)]
    fed = np.concatenate(device.fed)
    starts = []
    for take in takes:
        assert take.dtype == np.int16 and len(take) == RATE_HZ
        frames = range(0, len(fed) - RATE_HZ, 160)
        at = [i for i in frames if np.array_equal(fed[i : i + 8], take[:8])]
        assert len(at) == 1 and np.array_equal(fed[at[0] : at[0] + RATE_HZ], take)
        starts.append(at[0])
    assert starts[1] >= starts[0] + RATE_HZ  # the second was asked for after the first
    assert device.queued() == [] and count_stored(store) == 0
    assert not [x for x in said if "nobody here asked" in x or "not acknowledged" in x]
    status = json.loads((store / "sim.status.json").read_text())
    # the last status the receiver kept was sent during the second take (it spans the 1 s
    # status interval): both requests counted, the first take sent; whether the second had
    # gone out by then depends on when the receiver closed (the status at the device's
    # close comes after it), so it may be 1 or 2
    assert status["recordings"] == 2 and status["clips_sent"] in (1, 2)
    leds = led_changes(events)
    first = starts[0] * 1000 // RATE_HZ
    assert len([t for t, _ in leds if first <= t < first + 1000]) >= 3  # blinking


def test_record_from_speaker_refuses_bad_arguments_naming_them():
    options = devicerequests.ListenOptions.parse(tcp="127.0.0.1:9")
    for seconds, takes, message in [
        (11, 1, "seconds 11: the speaker records 1 to 10 s"),
        (0, 1, "seconds 0: the speaker records 1 to 10 s"),
        (1.5, 1, "seconds 1.5: a whole number of seconds"),
        (1, 0, "takes 0: a whole number, 1 or more"),
    ]:
        with pytest.raises(devicerequests.WakewardError, match=message):
            devicerequests.record_from_speaker(options, seconds, takes)


def test_wakeward_monitor_over_usb_serial_is_honoured_by_default(tmp_path, speech):
    """The USB cable runs to the owner's PC: the default link.requests honours it. The
    monitor asks as soon as it has the port open (a device whose link is up sends no
    hello until its link starts over)."""
    from wakeward.ptyport import PtyPort

    from tests.host.test_serial import SerialDevice

    port = PtyPort()
    monitor = subprocess.Popen(
        [*WAKEWARD, "monitor", "--serial", port.path, "--seconds", "2"]
        + ["--records", "r.jsonl", "--store", str(tmp_path / "clips")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    output = Output(monitor.stdout)
    wait_for(lambda: output.having("listening on serial port"), "the monitor listening")
    device = SerialDevice(tmp_path / "flash", port)
    device.say(speech)
    device.until(lambda: monitor.poll() is not None, "the monitor's end")
    device.stop()
    lines = output.join()
    assert monitor.returncode == 0, "\n".join(lines)
    records = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    want = sim_json(tmp_path, np.concatenate(device.fed))
    assert 2000 // 30 <= len(records) <= 2000 // 30 + 1
    assert [r["p"] for r in records] == [want[round(r["t"] * 1000)]["p"] for r in records]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["monitor", "--tcp", "nohost"], "wakeward: --tcp 'nohost' is not HOST:PORT"),
        (["monitor", "--tcp", "a:99999"], "wakeward: --tcp 'a:99999' is not HOST:PORT"),
        (["monitor", "--tcp", "a:\u00b2"], "wakeward: --tcp 'a:\u00b2' is not HOST:PORT"),
        (["monitor", "--tcp", "a:1", "--baud", "9600"], "wakeward: --baud goes with --serial"),
        (["monitor", "--serial", "/dev/x", "--tls"], "wakeward: --tls goes with --tcp"),
        (["monitor", "--tcp", "a:1", "--sim", "x.wav"], "wakeward: monitor: give the records'"),
        (["monitor", "-", "--seconds", "3"], "wakeward: --seconds, --records, --store, --baud"),
        (["monitor", "-", "--tls"], "wakeward: --seconds, --records, --store, --baud, --tls"),
        (["monitor", "--tcp", "a:1", "--seconds", "0.5"], "wakeward: --seconds 0.5: at least 1"),
        (["sim", "x.wav", "--allow-requests"], "wakeward: --allow-requests goes with --link"),
    ],
)
def test_request_options_are_checked_naming_the_option(
    tmp_path, monkeypatch, capsys, args, message
):
    from wakeward import cli

    monkeypatch.chdir(tmp_path)
    write_wav(tmp_path / "x.wav", np.zeros(1600, np.int16))
    assert cli.main(args) == 1
    assert capsys.readouterr().err.startswith(message)


class FakeSession:
    """A session whose device is the test: the requests sent to it, decoded."""

    def __init__(self) -> None:
        self.device = "kitchen"
        self.sent: list[dict] = []

    def send(self, frame: bytes) -> bool:
        self.sent.append(P.decode(frame))
        return True


class FakeServer:
    options = devicerequests.ListenOptions.parse(tcp="127.0.0.1:7000")

    def check(self) -> None:
        pass


def watch(seconds, *replies) -> tuple[FakeSession, list[str]]:
    """A monitor watch of a stand-in session: each of `replies(session)` answers the
    request sent last (the device's part); the session and the lines the watch gave."""
    requests = devicerequests.DeviceRequests()
    session = FakeSession()
    lines: list[str] = []
    server = FakeServer()
    watcher = devicerequests._Watch(requests, server, seconds, lines.append)

    def device() -> None:
        requests.hello(session)
        for n, reply in enumerate(replies, 1):
            wait_for(lambda n=n: len(session.sent) >= n, f"request {n}", timeout_s=10)
            for msg in reply(session.sent[n - 1]):
                requests.message(session, msg)

    thread = threading.Thread(target=device, daemon=True)
    thread.start()
    watcher.run()
    thread.join(10)
    return session, lines


def end(reason: str):
    def reply(request: dict) -> list[dict]:
        code = P.REQUEST_ENDS.index(reason)
        return [{"type": "request_end", "request_id": request["request_id"], "reason": code}]

    return reply


def test_the_monitor_asks_for_its_seconds_and_marks_the_detection():
    def outputs(request: dict) -> list[dict]:
        batch = {"type": "outputs", "model": "alexa", "time_ms": 3000, "values": b"\x01\x02\xf0"}
        detection = {"type": "detection", "model": "alexa", "score": 240, "time_ms": 3060}
        return [batch, detection] + end("done")(request)

    session, lines = watch(3, outputs)
    assert [(m["what"], m["seconds"]) for m in session.sent] == [(P.MONITOR, 3)]
    records = [json.loads(x) for x in lines if x.startswith("{")]
    assert [(r["t"], r["p"], r["detected"]) for r in records] == [
        (3.0, 1, False), (3.03, 2, False), (3.06, 240, True)
    ]  # fmt: skip


def test_the_monitor_renews_before_the_window_ends_and_asks_again_after_it(monkeypatch):
    """--seconds beyond one request's 600: a new request replaces the window after
    RENEW_S, and one ended early (device time ran ahead) is asked again; a mute ends it."""
    monkeypatch.setattr(devicerequests, "RENEW_S", 0.3)

    def some_outputs(request: dict) -> list[dict]:
        return [{"type": "outputs", "model": "alexa", "time_ms": 30, "values": b"\x05"}]

    session, lines = watch(1000, some_outputs, end("done"), end("muted"))
    assert [(m["what"], m["seconds"]) for m in session.sent] == [(P.MONITOR, 600)] * 3
    assert "kitchen was muted (its button): monitoring ended" in lines
    assert "asked kitchen for its models' outputs for 600 s" in lines
