"""No clip lost, none stored twice: the firmware on the sim board (a real process, its
microphone fed over a socket by the test, so the test decides when audio time moves) streams
to `wakeward listen` (a real process) over loopback TCP while the receiver is down, killed in
the middle of a clip, or loses an ack, while the queue on flash overflows, and across a
reboot of the device. Every clip that arrives is compared, sample for sample, with the audio
the test fed around its detection."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from wakeward import sim, unixport
from wakeward.audio import RATE_HZ, read_wav
from wakeward.store import Clip, ClipStore, store_exists

from tests.host.loglines import plain
from tests.host.test_protocol import P

WAIT_S = 60.0  # wall-clock limit on any one wait (a hang fails instead of blocking)
STEP_S = 0.1  # audio fed per step while waiting for the device
MAX_STEPS = 400  # 40 s of audio: the backoff is at most 1.6 s, the ack timeout 10 s
PRE_ROLL_S = 1.0
# Short backoff and frequent status (audio time), so the tests need little audio.
LINK = {"retry_min_ms": 200, "retry_max_ms": 1600, "status_interval_ms": 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Output:
    """A process's output lines, read by a thread."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(plain(line.rstrip("\n")))  # a receiver's: without time, level

    def having(self, text: str) -> list[str]:
        return [line for line in list(self.lines) if text in line]

    def join(self) -> list[str]:
        self._thread.join(WAIT_S)
        return self.lines


class Receiver:
    """`wakeward listen` in its own process (or another command that receives as it does)."""

    def __init__(
        self,
        port: int,
        out: Path,
        wrap: tuple[str, ...] = (),
        command: tuple[str, ...] = ("listen",),
    ) -> None:
        """`wrap`: a command that runs it, e.g. ("prlimit", "--nofile=1024"); `command`:
        the wakeward command and its options but --tcp and --store, e.g. ("satellite",
        "--wyoming", "127.0.0.1:10700")."""
        self.out = out
        self.proc = subprocess.Popen(
            [*wrap, sys.executable, "-m", "wakeward", *command, "--tcp", f"127.0.0.1:{port}"]
            + ["--store", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self.output = Output(self.proc.stdout)
        wait_for(lambda: self.output.having("listening on"), "the receiver to listen")

    def kill(self) -> list[str]:
        self.proc.kill()
        self.proc.wait(WAIT_S)
        return self.output.join()

    def stop(self) -> list[str]:
        self.proc.terminate()
        self.proc.wait(WAIT_S)
        return self.output.join()


class Device:
    """The firmware on the sim board with its flash in `flash`; the test feeds its
    microphone and keeps every sample it fed (the audio clock starts at 0 each boot).
    After stop(), first_clip_id is the id of this boot's first clip (the counter on flash,
    less the clips since), once the flash has had one."""

    first_clip_id: int

    def __init__(
        self,
        flash: Path,
        port: int,
        events: Path | None = None,
        speaker: Path | None = None,
        button: list[tuple[int, int]] | None = None,
        **link,
    ) -> None:
        """events: the board's event log (JSON lines); speaker: a file that gets every
        sample the speaker plays; button: the mute button's presses, [on_ms, off_ms) of
        the audio clock; link: config.json's link entries beyond LINK's."""
        self.flash = flash
        flash.mkdir(parents=True, exist_ok=True)
        self.fed: list[np.ndarray] = []
        self.rng = np.random.default_rng(len(os.listdir(flash)))
        mic = socket.create_server(("127.0.0.1", 0))
        mic.settimeout(WAIT_S)
        options: dict = {"pcm_socket": f"127.0.0.1:{mic.getsockname()[1]}"}
        if events is not None:  # the LED's, button's and speaker's changes (board/sim.py)
            options["events"] = str(events)
        if speaker is not None:
            options["speaker"] = str(speaker)
        if button is not None:
            options["button"] = [list(press) for press in button]
        config = {
            "board": "sim",
            "board_options": options,
            "models": [sim.model_entry("alexa")],
            "link": self.link_config(port, link),
        }
        (flash / "config.json").write_text(json.dumps(config))
        self.proc, self.output = self.boot()
        with mic:
            self.mic, _ = mic.accept()

    def link_config(self, port, link: dict) -> dict:
        return {"tcp": f"127.0.0.1:{port}", **LINK, **link}

    def boot(self) -> tuple[subprocess.Popen, Output]:
        """Start the firmware (its working directory is the flash); its output lines."""
        proc = subprocess.Popen(
            unixport.command(unixport.firmware_dir() / "main.py", heap="esp32s3-psram"),
            cwd=self.flash,
            env=unixport.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return proc, Output(proc.stdout)

    def noise(self, seconds: float) -> np.ndarray:
        return self.rng.normal(0, 30, int(seconds * RATE_HZ)).astype(np.int16)

    def feed(self, samples: np.ndarray) -> None:
        self.fed.append(samples)
        self.mic.sendall(samples.astype("<i2").tobytes())

    def say(self, speech: np.ndarray) -> None:
        """The wake word, with room noise around it long enough for its clip to end."""
        self.feed(self.noise(0.5))
        self.feed(speech)
        self.feed(self.noise(2.5))

    def until(self, cond: Callable[[], bool], what: str, audio: np.ndarray | None = None) -> None:
        """Feed `audio` (then room noise) a step at a time until cond() holds."""
        rest = np.zeros(0, np.int16) if audio is None else audio
        end = time.monotonic() + WAIT_S
        steps = 0
        while not cond():
            steps += 1
            if time.monotonic() > end or steps > MAX_STEPS or self.proc.poll() is not None:
                raise AssertionError(f"no {what}; the device said:\n" + "\n".join(self.lines()))
            step = int(STEP_S * RATE_HZ)
            chunk, rest = rest[:step], rest[step:]
            self.feed(chunk if len(chunk) else self.noise(STEP_S))
            time.sleep(0.01)
        if len(rest):
            self.feed(rest)

    def lines(self) -> list[str]:
        return list(self.output.lines)

    def queued(self) -> list[int]:
        """Clip ids waiting on flash for an ack."""
        folder = self.flash / "outbox.d"
        names = os.listdir(folder) if folder.is_dir() else []
        return sorted(int(n.split(".")[0]) for n in names if n.endswith(".clip"))

    def stop(self) -> list[str]:
        """End of the microphone's input: the firmware finishes and exits."""
        self.mic.close()
        assert self.proc.wait(WAIT_S) == 0, "\n".join(self.lines())
        state = self.flash / "outbox.d" / "state.json"
        if state.is_file():  # none on a flash that never had a clip
            next_clip_id = json.loads(state.read_text())["next_clip_id"]
            self.first_clip_id = next_clip_id - len(self.detections())
        return self.output.join()

    def power_off(self) -> None:
        """Cut the power (SIGKILL), whatever the firmware is doing."""
        self.proc.kill()
        self.proc.wait(WAIT_S)
        self.mic.close()

    def detections(self) -> list[float]:
        return [float(x.split()[-2]) for x in self.lines() if x.startswith("detected: alexa")]

    def audio_at(self, detected_s: float, samples: int) -> np.ndarray:
        start = int(round((detected_s - PRE_ROLL_S) * RATE_HZ))
        return np.concatenate(self.fed)[start : start + samples]


def stored(out: Path) -> dict[int, tuple[Clip, np.ndarray]]:
    """Device clip id -> (store row, samples) of every clip in the receiver's store; a clip
    id stored twice, or a store that is not consistent on disk, fails."""
    clips: dict[int, tuple[Clip, np.ndarray]] = {}
    with ClipStore(out, create=False) as s:
        assert not s.recovery, s.recovery.lines()  # no unfinished write, no stray file
        for clip in s.clips():
            assert clip.device == "sim" and not clip.deleted
            assert clip.device_clip_id not in clips, f"clip {clip.device_clip_id} stored twice"
            clips[clip.device_clip_id] = (clip, read_wav(clip.path))
    return clips


def count_stored(out: Path) -> int:
    if not store_exists(out):
        return 0
    with ClipStore(out, create=False) as s:
        return len(s.clips())


def check_clip(clips: dict, device: Device, index: int) -> None:
    """The clip of the device's index-th detection (this boot) is complete and exact."""
    clip_id = device.first_clip_id + index
    row, samples = clips[clip_id]
    assert row.pre_roll_ms == 1000 and row.end_reason == "end_of_speech"
    assert len(samples) == row.samples > 2 * RATE_HZ
    want = device.audio_at(device.detections()[index], len(samples))
    assert np.array_equal(samples, want), f"clip {clip_id} differs from the audio fed"


def status(out: Path) -> dict:
    path = out / "sim.status.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def test_clips_wait_on_flash_while_the_receiver_is_down(tmp_path, speech):
    port, out = free_port(), tmp_path / "clips"
    device = Device(tmp_path / "flash", port)
    device.say(speech)
    device.say(speech)
    device.until(lambda: len(device.queued()) == 2, "two clips queued on flash")
    assert not device.output.having("link: connected")
    assert len([x for x in device.lines() if x.startswith("link: cannot connect")]) >= 3
    receiver = Receiver(port, out)
    device.until(lambda: count_stored(out) == 2 and not device.queued(), "both clips acknowledged")
    device.stop()
    wait_for(lambda: status(out).get("clips_acked") == 2, "the last status")
    lines = receiver.stop()
    clips = stored(out)
    assert len(device.detections()) == 2 and len(clips) == 2
    check_clip(clips, device, 0)
    check_clip(clips, device, 1)
    last = status(out)
    assert (last["clips_sent"], last["queued"], last["clips_dropped"]) == (2, 0, 0)
    assert last["audio_bytes"] == sum(2 * len(s) for _, s in clips.values())
    assert any(x.startswith("status from sim: ") for x in lines)
    assert not list(out.glob("*.part"))


def test_a_clip_cut_off_by_a_killed_receiver_comes_once_and_whole(tmp_path, speech):
    port, out = free_port(), tmp_path / "clips"
    receiver = Receiver(port, out)
    device = Device(tmp_path / "flash", port)
    device.feed(device.noise(0.5))
    device.until(
        lambda: receiver.output.having(" started: alexa"),
        "clip streaming to the receiver",
        audio=np.concatenate([speech, device.noise(2.5)]),
    )
    assert device.queued() == [] and len(device.detections()) == 1
    receiver.kill()  # in the middle of the clip: its end is at least 1.5 s of audio away
    assert count_stored(out) == 0
    device.until(lambda: device.output.having("link: connection lost"), "a lost connection")
    device.until(lambda: len(device.queued()) == 1, "the clip finished on flash")
    receiver = Receiver(port, out)
    device.until(lambda: count_stored(out) == 1 and not device.queued(), "the clip acked")
    device.stop()
    lines = receiver.stop()
    clips = stored(out)
    assert len(clips) == 1
    check_clip(clips, device, 0)
    assert not [x for x in lines if "incomplete" in x or "already stored" in x]
    assert not list(out.glob("*.part"))


class AckThief:
    """A TCP proxy to the receiver that withholds the receiver's first ack and then closes
    both sides, as a connection that drops between the receiver storing a clip and the
    device reading its ack."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.stolen: list[int] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                device, _ = self.server.accept()
            except OSError:
                return
            try:
                receiver = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                device.close()
                continue
            threading.Thread(target=self._up, args=(device, receiver), daemon=True).start()
            threading.Thread(target=self._down, args=(receiver, device), daemon=True).start()

    @staticmethod
    def _cut(*socks: socket.socket) -> None:
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _up(self, device: socket.socket, receiver: socket.socket) -> None:
        try:
            while data := device.recv(65536):
                receiver.sendall(data)
        except OSError:
            pass
        self._cut(device, receiver)

    def _down(self, receiver: socket.socket, device: socket.socket) -> None:
        decoder = P.Decoder()
        try:
            while data := receiver.recv(65536):
                if not self.stolen:
                    decoder.feed(data)
                    acks = [m["clip_id"] for k, m in decoder if k == "msg" and m["type"] == "ack"]
                    if acks:
                        self.stolen.extend(acks)
                        break
                device.sendall(data)
        except OSError:
            pass
        self._cut(device, receiver)

    def close(self) -> None:
        self.server.close()


def test_a_clip_whose_ack_was_lost_is_resent_and_stored_once(tmp_path, speech):
    port, out = free_port(), tmp_path / "clips"
    receiver = Receiver(port, out)
    thief = AckThief(port)
    device = Device(tmp_path / "flash", thief.port)
    device.say(speech)
    device.until(lambda: thief.stolen, "the receiver's ack")
    assert count_stored(out) == 1  # the receiver has it; the device does not know
    assert device.queued() == thief.stolen
    receiver.kill()  # and a receiver restarted meanwhile still knows it has the clip
    receiver = Receiver(port, out)
    device.until(lambda: not device.queued(), "the resent clip acknowledged")
    device.stop()
    lines = receiver.stop()
    thief.close()
    clips = stored(out)
    assert len(clips) == 1
    check_clip(clips, device, 0)
    assert [x for x in lines if "already stored" in x and "acknowledged again" in x]
    assert device.output.having("link: connection lost (closed by the receiver)")


def test_a_full_queue_drops_the_oldest_clip_and_reports_it(tmp_path, speech):
    port, out = free_port(), tmp_path / "clips"
    device = Device(tmp_path / "flash", port, queue_max_clips=2)
    for _ in range(3):
        device.say(speech)
    device.until(lambda: device.output.having("outbox: full"), "the oldest clip dropped")
    device.until(lambda: len(device.queued()) == 2, "two clips queued")
    receiver = Receiver(port, out)
    device.until(lambda: count_stored(out) == 2 and not device.queued(), "both clips acked")
    device.stop()
    wait_for(lambda: status(out).get("clips_acked") == 2, "the last status")
    lines = receiver.stop()
    clips = stored(out)
    assert len(device.detections()) == 3 and len(clips) == 2
    first = device.first_clip_id
    assert sorted(clips) == [first + 1, first + 2]
    assert device.output.having(f"outbox: full, clip {first} dropped")
    check_clip(clips, device, 1)
    check_clip(clips, device, 2)
    assert status(out)["clips_dropped"] == 1
    assert [x for x in lines if x.startswith("status from sim:") and "dropped 1," in x]


def test_clips_queued_before_a_reboot_are_delivered_after_it(tmp_path, speech):
    port, out, flash = free_port(), tmp_path / "clips", tmp_path / "flash"
    before = Device(flash, port)
    before.say(speech)
    before.say(speech)
    before.until(lambda: len(before.queued()) == 2, "two clips queued")
    before.stop()  # the receiver was never up
    queued = before.queued()
    receiver = Receiver(port, out)
    after = Device(flash, port)
    after.say(speech)
    after.until(lambda: count_stored(out) == 3 and not after.queued(), "all three clips")
    after.stop()
    receiver.stop()
    clips = stored(out)
    assert sorted(clips) == [*queued, queued[-1] + 1]  # the new boot's id follows on
    check_clip(clips, before, 0)
    check_clip(clips, before, 1)
    check_clip(clips, after, 0)


def test_a_clip_cut_by_a_power_loss_is_never_taken_for_complete(tmp_path, speech):
    port, out, flash = free_port(), tmp_path / "clips", tmp_path / "flash"
    before = Device(flash, port)
    before.feed(before.noise(0.5))
    before.until(
        lambda: list((flash / "outbox.d").glob("*.part")),
        "a clip being captured",
        audio=np.concatenate([speech, before.noise(2.5)]),
    )
    before.power_off()  # in the middle of the clip: its end is at least 1.5 s of audio away
    parts = list((flash / "outbox.d").glob("*.part"))
    assert len(parts) == 1 and not before.queued()
    receiver = Receiver(port, out)
    after = Device(flash, port)
    after.until(lambda: status(out).get("clips_dropped") == 1, "the loss in a status")
    after.stop()
    receiver.stop()
    assert after.output.having("outbox: 1 unfinished or damaged clips removed at boot")
    assert not parts[0].exists() and count_stored(out) == 0


def test_the_time_listened_adds_up_across_a_mute_and_a_reboot(tmp_path):
    """The device's statuses say how long it listened, not muted, and the receiver adds
    that up in the store across the statuses and a reboot (audio time: the sim's clock)."""
    port, out, flash = free_port(), tmp_path / "clips", tmp_path / "flash"
    receiver = Receiver(port, out)
    # 12 s of audio, muted from 3 s to 8 s (the button pressed twice): 7 s listened
    before = Device(flash, port, button=[(3000, 3100), (8000, 8100)])
    before.feed(before.noise(12.0))
    before.stop()
    wait_for(lambda: status(out).get("listened_s") == 7, "the first boot's last status")
    assert status(out)["listened_rem_ms"] == 0 and status(out)["uptime_ms"] == 12_000
    assert before.output.having("muted") and before.output.having("listening")
    after = Device(flash, port)  # the same device booted again: 4 s, never muted
    after.feed(after.noise(4.0))
    after.stop()
    wait_for(lambda: status(out).get("uptime_ms") == 4_000, "the second boot's last status")
    lines = receiver.stop()
    with ClipStore(out, create=False) as s:
        listened = {e.model: (e.listened_ms, e.reboots) for e in s.listened("sim")}
    assert listened == {"": (11_000, 1), "alexa": (11_000, 0)}
    said = [x for x in lines if x.startswith("status from sim: ")]
    assert said[-1].endswith("listened 4.0 s") and any("listened 7.0 s" in x for x in said)
