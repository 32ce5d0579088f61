"""The USB serial link, end to end with real processes: the firmware on the sim board with
its console (stdin and stdout) on a pseudo-terminal (wakeward.ptyport, as `wakeward sim
--link serial` runs it) and `wakeward listen --serial` on the pty's other side, as it would
open /dev/ttyACM0. Clips arrive bit-exact between the device's log lines, survive noise on
the line, wait on flash until a receiver opens the port, and a clip whose ack is lost is
sent again and stored once. Every byte value crosses the pty unchanged. A missing or busy
port, and a port that goes away and comes back, get clear messages; `deploy --link serial`
needs no pairing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import tty
from pathlib import Path

import numpy as np
import serial  # type: ignore[import-untyped]
from wakeward import deploy, serialreceiver, unixport
from wakeward.audio import RATE_HZ, read_wav, write_wav
from wakeward.errors import WakewardError
from wakeward.ptyport import PtyPort

from tests.host.test_delivery import (
    LINK,
    WAIT_S,
    Device,
    Output,
    count_stored,
    stored,
    wait_for,
)
from tests.host.test_protocol import P

# audio time: a clip that got no ack goes again 2 s after its end (after the backoff)
ACK_TIMEOUT_MS = 2000


class Lines:
    """The device's log lines, as the pty port decodes them (Output's interface)."""

    def __init__(self, port: PtyPort) -> None:
        self.lines: list[str] = []
        self.port = port

    def having(self, text: str) -> list[str]:
        return [line for line in list(self.lines) if text in line]

    def join(self) -> list[str]:
        self.port.close()
        return self.lines


class SerialDevice(Device):
    """test_delivery's Device with its link on the console, on a pseudo-terminal."""

    def __init__(self, flash: Path, port: PtyPort, **link) -> None:
        self.port = port
        super().__init__(flash, port, **link)

    def link_config(self, port, link: dict) -> dict:
        return {"serial": True, **LINK, "ack_timeout_ms": ACK_TIMEOUT_MS, **link}

    def boot(self) -> tuple[subprocess.Popen, Output]:
        lines = Lines(self.port)
        self.port.say = lines.lines.append  # the device's log, decoded from its console
        proc = subprocess.Popen(
            unixport.main_command("esp32s3-psram"),
            cwd=self.flash,
            env=unixport.environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.port.attach(proc)
        return proc, lines  # type: ignore[return-value]


class SerialReceiver:
    """`wakeward listen --serial PATH` in its own process."""

    def __init__(self, path: str, store: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wakeward", "listen", "--serial", path, "--store", str(store)]
            + list(extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self.output = Output(self.proc.stdout)
        wait_for(lambda: self.output.having("listening on serial port"), "the receiver")

    def stop(self) -> list[str]:
        self.proc.terminate()
        self.proc.wait(WAIT_S)
        return self.output.join()


def test_two_wake_words_give_two_clips_between_the_devices_log_lines(tmp_path, speech):
    """`wakeward sim --link serial` to `wakeward listen --serial`, as the README runs them."""
    rng = np.random.default_rng(2)
    room = [rng.normal(0, 30, int(s * RATE_HZ)).astype(np.int16) for s in (0.5, 2.5, 2.5)]
    audio = np.concatenate([room[0], speech, room[1], speech, room[2]])
    wav = write_wav(tmp_path / "speech.wav", audio)
    store = tmp_path / "clips"
    sim = subprocess.Popen(
        [sys.executable, "-m", "wakeward", "sim", str(wav), "--model", "alexa"]
        + ["--link", "serial"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    out = Output(sim.stdout)
    wait_for(lambda: out.having("wakeward listen --serial /dev/"), "the port's path")
    path = out.having("wakeward listen --serial /dev/")[0].split("`")[1].split()[-1]
    rx = SerialReceiver(path, store, "--once")
    assert sim.wait(WAIT_S) == 0, "\n".join(out.join())
    assert rx.proc.wait(WAIT_S) == 0  # --once: it ends when the port goes away
    lines = rx.output.join()
    detected = [float(x.split()[-2]) for x in out.join() if x.startswith("detected: alexa")]
    clips = stored(store)
    assert len(detected) == 2 and len(clips) == 2, lines
    assert np.array_equal(read_wav(wav), audio)
    for (row, samples), at_s in zip(
        sorted(clips.values(), key=lambda c: c[0].id), detected, strict=True
    ):
        start = int(round((at_s - 1.0) * RATE_HZ))
        assert row.pre_roll_ms == 1000 and len(samples) == row.samples > 2 * RATE_HZ
        assert np.array_equal(samples, audio[start : start + len(samples)])
    # the device's log lines come out between the frames, in order
    events = []
    for x in lines:
        if x.startswith("device: detected: alexa"):
            events.append("detected")
        elif x.startswith("clip ") and " started: alexa" in x:
            events.append("started")
        elif x.startswith("clip ") and " -> clip " in x:
            events.append("stored")
    assert events == ["detected", "started", "stored"] * 2, lines
    assert lines[1] == "device: wakeward: board sim, CPU at 240 MHz"  # the boot log, in order
    assert lines[2].startswith("device: link: connected, 0 clips queued")
    assert any(x.startswith("hello from sim ") for x in lines)
    assert not [x for x in lines if "incomplete" in x or "protocol error" in x]


class Noise:
    """Device to port: a log line of random binary with a false sync and header and the
    first half of the next frame in it, before every 7th frame; the frames themselves go
    through untouched. (A false header that claims a long payload would hold the frames
    behind it until that many bytes have come, docs/protocol.md: on a quiet line, past the
    ack timeout.)"""

    def __init__(self) -> None:
        self.decoder = P.Decoder()
        self.rng = np.random.default_rng(7)
        self.frames = 0
        self.injected = 0

    def __call__(self, data: bytes) -> bytes:
        self.decoder.feed(data)
        out = bytearray()
        for kind, item in self.decoder:
            if kind == "log":
                out += bytes(item) + b"\n"
                continue
            frame = P.encode_message(item)
            self.frames += 1
            if self.frames % 7 == 0:
                junk = self.rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
                junk = junk.replace(b"\n", b" ").replace(b"\xf5", b"\xf4")
                fake = P.SYNC + bytes([P.VERSION, P.CLIP_DATA, 8, 0]) + bytes(12)
                out += b"noise: " + junk + fake + frame[: len(frame) // 2] + b"\n"
                self.injected += 1
            out += frame
        return bytes(out)


def test_noise_on_the_line_loses_no_clip(tmp_path, speech):
    noise = Noise()
    port = PtyPort(from_device=noise)
    store = tmp_path / "clips"
    rx = SerialReceiver(port.path, store)
    device = SerialDevice(tmp_path / "flash", port)
    device.say(speech)
    device.until(lambda: count_stored(store) == 1 and not device.queued(), "the clip acked")
    device.stop()
    lines = rx.stop()
    clips = stored(store)
    assert len(clips) == 1 and noise.injected >= 5
    ((row, samples),) = clips.values()
    start = int(round((device.detections()[0] - 1.0) * RATE_HZ))
    assert np.array_equal(samples, np.concatenate(device.fed)[start : start + len(samples)])
    assert len([x for x in lines if x.startswith("device: noise: ")]) >= noise.injected
    assert not device.output.having("link: connection lost")  # no resend was needed
    assert not [x for x in lines if "incomplete" in x or "already stored" in x]


def test_clips_wait_on_flash_until_a_receiver_opens_the_port(tmp_path, speech):
    port = PtyPort()
    store = tmp_path / "clips"
    device = SerialDevice(tmp_path / "flash", port)
    device.say(speech)
    device.say(speech)
    device.until(lambda: len(device.queued()) == 2, "two clips queued on flash")
    device.until(lambda: device.output.having("no ack within"), "an unanswered clip")
    rx = SerialReceiver(port.path, store)
    device.until(lambda: count_stored(store) == 2 and not device.queued(), "both clips acked")
    device.stop()
    lines = rx.stop()
    clips = stored(store)
    assert len(clips) == 2 and len(device.detections()) == 2
    for i, (_, samples) in enumerate(sorted(clips.values(), key=lambda c: c[0].id)):
        start = int(round((device.detections()[i] - 1.0) * RATE_HZ))
        assert np.array_equal(samples, np.concatenate(device.fed)[start : start + len(samples)])
    # no reconnect storm: the link starts over once per unanswered send, after its backoff
    audio_s = sum(len(x) for x in device.fed) / RATE_HZ
    starts = device.output.having("link: connected")
    assert len(starts) <= 1 + audio_s / (ACK_TIMEOUT_MS / 1000), device.lines()
    assert any(x.startswith("device: link: connected, 2 clips queued") for x in lines)


class AckThief:
    """Port to device: the receiver's first ack never reaches the device."""

    def __init__(self) -> None:
        self.stolen: list[int] = []

    def __call__(self, data: bytes) -> bytes:
        if self.stolen:
            return data
        decoder = P.Decoder()
        decoder.feed(data)
        acks = [m["clip_id"] for kind, m in decoder if kind == "msg" and m["type"] == "ack"]
        self.stolen += acks
        return b"" if acks else data


def test_a_clip_whose_ack_was_lost_is_resent_and_stored_once(tmp_path, speech):
    thief = AckThief()
    port = PtyPort(to_device=thief)
    store = tmp_path / "clips"
    rx = SerialReceiver(port.path, store)
    device = SerialDevice(tmp_path / "flash", port)
    device.say(speech)
    device.until(lambda: thief.stolen, "the receiver's ack")
    assert count_stored(store) == 1 and device.queued() == thief.stolen
    device.until(lambda: not device.queued(), "the resent clip acknowledged")
    device.stop()
    lines = rx.stop()
    clips = stored(store)
    assert len(clips) == 1
    assert [x for x in lines if "already stored" in x and "acknowledged again" in x]
    assert device.output.having(f"link: connection lost (no ack within {ACK_TIMEOUT_MS} ms)")
    assert len(device.output.having("link: connected")) == 2


def test_every_byte_value_crosses_the_pty_unchanged_both_ways():
    """The pty is raw from the start (no echo, no CR/LF translation, no flow-control or
    signal bytes), for a reader that sets nothing itself. `cat` stands for the device and
    sends back what it gets."""
    port = PtyPort()
    fd = os.open(port.path, os.O_RDWR | os.O_NOCTTY)
    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port.attach(proc)
    data = bytes(range(256)) * 32 + b"\r\n\r\x03\x04\x11\x13\x1a\x1c\x7f\xff\n"
    got = bytearray()
    try:
        os.write(fd, data)
        while len(got) < len(data):
            got += os.read(fd, 65536)
    finally:
        os.close(fd)
        proc.terminate()
        proc.wait(WAIT_S)
        port.close()
    assert got == data


def listen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wakeward", "listen", *args],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )


def test_a_missing_or_busy_port_is_a_clear_error(tmp_path):
    missing = str(tmp_path / "ttyACM7")
    done = listen("--serial", missing, "--store", str(tmp_path / "clips"))
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"wakeward: {missing}: no such serial port: is the board plugged in (with a data cable)?"
    )
    port = PtyPort()
    holder = serial.Serial(port.path, exclusive=True)
    try:
        done = listen("--serial", port.path, "--store", str(tmp_path / "clips"))
    finally:
        holder.close()
        port.close()
    assert done.returncode == 1
    assert done.stderr == (
        f"wakeward: {port.path} is busy: another program has it open (a serial terminal, "
        "`mpremote repl`, another wakeward); close it and try again\n"
    )
    assert not (tmp_path / "clips").exists()  # nothing was made before the port was checked
    done = listen("--serial", port.path, "--tls")
    assert done.returncode == 1 and "--tls goes with --tcp" in done.stderr


def clip_frames(clip_id: int, pcm: bytes) -> bytes:
    return (
        P.encode_clip_start(clip_id, "alexa", 250, RATE_HZ, 1000)
        + b"a log line\r\n"
        + P.encode_clip_data(clip_id, 0, pcm)
        + P.encode_clip_end(clip_id, len(pcm) // 2, 0)
    )


def test_a_port_that_goes_away_is_opened_again_when_it_is_back(tmp_path):
    """A board's port, as /dev/serial/by-id names it (a link to the device node), unplugged
    and plugged in again: the receiver takes it up again; gone for good: it stops saying
    what to do."""
    link = tmp_path / "usb-board"
    lines: list[str] = []
    result: list = []

    def plug() -> int:
        master, slave = os.openpty()
        tty.setraw(slave)
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(slave))
        os.close(slave)
        return master

    def run() -> None:
        try:
            serialreceiver.serve_serial(
                str(link), store_dir=tmp_path / "clips", say=lines.append, reopen_s=2.0
            )
        except WakewardError as e:
            result.append(e)

    master = plug()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(lambda: any(x.startswith("listening on serial port") for x in lines), "listening")
    pcm = np.arange(800, dtype="<i2").tobytes()
    hello = P.encode_hello("board", "wakeward-0.1", ["alexa"], b"")
    os.write(master, hello + clip_frames(11, pcm))
    wait_for(lambda: count_stored(tmp_path / "clips") == 1, "the first clip")
    os.close(master)  # unplugged
    link.unlink()
    wait_for(lambda: any("the port went away" in x for x in lines), "the loss noticed")
    master = plug()
    wait_for(lambda: f"{link}: open again" in lines, "the port opened again")
    os.write(master, hello + clip_frames(12, pcm))
    wait_for(lambda: count_stored(tmp_path / "clips") == 2, "the second clip")
    os.close(master)
    link.unlink()
    thread.join(WAIT_S)
    (error,) = result
    assert str(error).startswith(
        f"{link} did not come back within 2 s: plug the board back in (with a data cable), "
        f"then run `wakeward listen --serial {link}` again"
    )
    assert "device: a log line" in lines


def test_deploy_with_a_serial_link_needs_no_pairing(tmp_path):
    """`wakeward deploy --link serial`: the console link, no certificate, no secret, and
    no pairing asked for (the device is not paired in this empty folder)."""
    with deploy.prepare(link="serial", device_id="desk", pairing_dir=tmp_path / "p") as bundle:
        assert bundle.config["link"] == {"serial": True}
        assert deploy.CERT_FILE not in {f.dest for f in bundle.files}
