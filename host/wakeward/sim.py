"""Run the real firmware on the unix port with the `sim` board fed from a WAV file."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wakeward import models, unixport
from wakeward.audio import RATE_HZ, device_wav, read_wav, write_wav
from wakeward.errors import WakewardError
from wakeward.ptyport import PtyPort

if TYPE_CHECKING:
    from wakeward.pairing import Pairing

# The receiver's certificate on the simulated flash (deploy puts it at the same name).
CERT_FILE = "receiver.der"
SIM_DEVICE_ID = "sim"  # config.json's default device id on the sim board
# On the simulated flash for --speaker-wav: the samples the sim speaker played (raw int16
# LE, board/sim.py) and, when no --events file is asked for, its events (their times).
SPEAKER_RAW = "speaker.raw"
SPEAKER_EVENTS = "speaker-events.jsonl"
_MS_PER_S = 1000


def model_entry(name_or_path: str) -> dict:
    """A config.json model entry: path, name and the cutoff and window of its manifest
    (microWakeWord's defaults, 0.9 and 5, when it has none)."""
    path, manifest = models.resolve_with_manifest(name_or_path)
    micro = (manifest or {}).get("micro", {})
    return {
        "name": path.stem,
        "path": str(path.resolve()),
        "probability_cutoff": micro.get("probability_cutoff", 0.9),
        "sliding_window_size": micro.get("sliding_window_size", 5),
    }


def sim_config(
    wav: Path,
    *,
    realtime: bool = False,
    events: Path | None = None,
    button_ms: Sequence[tuple[int, int]] = (),
    model_names: Sequence[str] = (),
    trace: bool = False,
    link_tcp: str | None = None,
    link_secret: str | None = None,
    device_id: str | None = None,
    link_serial: bool = False,
    link_requests: str | None = None,
    speaker: Path | None = None,
) -> dict:
    """The sim board's config.json; with link_secret the link is TLS, pinned to the
    certificate in CERT_FILE on the flash; with link_serial it is the console.
    link_requests: the link's link.requests (who may ask for outputs and recordings;
    firmware/request.py), or the firmware's default ("paired"). speaker: a file that gets
    every sample the speaker plays (raw int16 LE)."""
    options: dict = {"wav": str(wav.resolve()), "realtime": realtime}
    if events is not None:
        options["events"] = str(events.resolve())
    if speaker is not None:
        options["speaker"] = str(speaker.resolve())
    if button_ms:
        options["button"] = [list(b) for b in button_ms]
    config: dict = {"board": "sim", "board_options": options}
    if device_id is not None:
        config["device_id"] = device_id
    config["models"] = [model_entry(m) for m in model_names]
    config["trace"] = trace
    if link_tcp is not None:
        config["link"] = {"tcp": link_tcp}
        if link_secret is not None:
            config["link"].update(tls={"cert": CERT_FILE}, secret=link_secret)
    elif link_serial:
        config["link"] = {"serial": True}
    if link_requests is not None and "link" in config:
        config["link"]["requests"] = link_requests
    return config


def run_sim(
    wav: str | Path,
    *,
    realtime: bool = False,
    events: Path | None = None,
    button_ms: Sequence[tuple[int, int]] = (),
    model_names: Sequence[str] = (),
    trace: bool = False,
    link_tcp: str | None = None,
    heap: str = unixport.DEFAULT_HEAP_PROFILE,
    flash: Path | None = None,
    tls: Pairing | None = None,
    device_id: str | None = None,
    say: Callable[[str], None] = print,
    link_serial: bool = False,
    on_port: Callable[[PtyPort], None] | None = None,
    allow_requests: bool = False,
    speaker_wav: Path | None = None,
) -> int:
    """Run firmware/main.py on the sim board over `wav`, passing each output line to `say`.

    `flash` is the device's flash (its working directory: config.json, the clip queue and
    the clip counter), kept from run to run like a real device's; by default each run gets
    a new, empty one. With `tls` (a pairing folder) the link is TLS as on a paired device:
    the receiver's certificate goes on the flash and the device's secret into config.json
    (the device, `device_id` or "sim", must be paired there).

    With `link_serial` the link is the board's console on a pseudo-terminal (ptyport.py):
    `on_port` gets the port once it exists (by default its path is printed, and the
    firmware boots once a receiver has opened it).

    `allow_requests`: the device honours the owner's requests (`wakeward monitor --tcp`)
    on any link, plain TCP included (link.requests "any"); otherwise only over TLS (`tls`)
    and the serial link, as a real device by default.

    `speaker_wav`: what the sim speaker played (chimes, audio the receiver sent to play),
    written there as a 16 kHz WAV on the input's clock (speaker_timeline)."""
    wav = Path(wav)
    if allow_requests and link_tcp is None and not link_serial:
        raise WakewardError("--allow-requests goes with --link: requests come over the link")
    with contextlib.ExitStack() as stack:
        # the firmware reads 16 kHz mono 16-bit: anything else is converted first
        converted = stack.enter_context(tempfile.TemporaryDirectory(prefix="wakeward-wav-"))
        wav = device_wav(wav, Path(converted))
        secret = cert = None
        if tls is not None:
            if link_tcp is None:
                raise WakewardError(
                    "--tls goes with --link HOST:PORT (the serial link runs without TLS)"
                )
            secret = tls.secret(device_id or SIM_DEVICE_ID)
            cert = tls.cert_der()
        if flash is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="wakeward-sim-"))
        else:
            flash.mkdir(parents=True, exist_ok=True)
            tmp = str(flash)
        speaker = speaker_events = None
        if speaker_wav is not None:
            speaker = Path(tmp) / SPEAKER_RAW
            speaker_events = events if events is not None else Path(tmp) / SPEAKER_EVENTS
        config = sim_config(
            wav,
            realtime=realtime,
            events=speaker_events or events,
            button_ms=button_ms,
            model_names=model_names,
            trace=trace,
            link_tcp=link_tcp,
            link_secret=secret,
            device_id=device_id,
            link_serial=link_serial,
            link_requests="any" if allow_requests else None,
            speaker=speaker,
        )
        if cert is not None:
            (Path(tmp) / CERT_FILE).write_bytes(cert)
        config_path = Path(tmp) / "config.json"
        config_path.touch(mode=0o600)  # it may hold the device's secret: the user's alone
        config_path.chmod(0o600)
        config_path.write_text(json.dumps(config))
        if link_serial:
            rc, last = _run_on_pty(tmp, heap, say, on_port or _wait_for_receiver(say))
        else:
            rc, last = _run(tmp, heap, say)
        if speaker_wav is not None and speaker is not None and speaker_events is not None:
            played = speaker_timeline(speaker, speaker_events, len(read_wav(wav)))
            write_wav(speaker_wav, played)
            seconds = np.count_nonzero(played) / RATE_HZ
            say(f"the speaker's output ({seconds:.2f} s not silent) is in {speaker_wav}")
    if rc != 0:
        hint = unixport.memory_hint(heap, last)
        raise WakewardError(f"the firmware stopped with exit code {rc}: {last}{hint}")
    return rc


def _run(flash: str, heap: str, say: Callable[[str], None]) -> tuple[int, str]:
    """The firmware with its console on a pipe: (exit code, its last line)."""
    proc = subprocess.Popen(
        unixport.main_command(heap),
        cwd=flash,
        env=unixport.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    last = ""
    for line in proc.stdout or ():
        last = line.rstrip("\n")
        say(last)
    return proc.wait(), last


def _run_on_pty(
    flash: str, heap: str, say: Callable[[str], None], on_port: Callable[[PtyPort], None]
) -> tuple[int, str]:
    """The firmware with its console on a pseudo-terminal (the serial link): (exit code,
    its last log line). The firmware's log lines go to `say` as well as to the port."""
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        say(line)

    port = PtyPort(say=log)
    proc = None
    try:
        on_port(port)
        proc = subprocess.Popen(
            unixport.main_command(heap),
            cwd=flash,
            env=unixport.environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        port.attach(proc)
        rc = proc.wait()
    finally:
        if proc is not None and proc.poll() is None:  # interrupted: the board goes too
            proc.kill()
            proc.wait()
        port.close()
    return rc, lines[-1] if lines else ""


def _wait_for_receiver(say: Callable[[str], None]) -> Callable[[PtyPort], None]:
    def wait(port: PtyPort) -> None:
        say(
            f"sim: the board's USB serial port is {port.path}: receive with "
            f"`wakeward listen --serial {port.path}`; the board starts once that has it open"
        )
        port.wait_open()

    return wait


def json_lines_stdout(line: str) -> None:
    """--json: the invocation records on stdout, everything else the firmware says on stderr."""
    stream = sys.stdout if line.startswith("{") else sys.stderr
    stream.write(line + "\n")
    stream.flush()


def main_stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def speaker_timeline(raw: Path, events: Path, length: int) -> np.ndarray:
    """What the sim speaker played (`raw`: its samples back to back; `events`: the board's
    event log, whose "speaker" events say when, on the audio clock, and how many) as one
    track on the input's clock: each play's samples from its time on, or right after the
    play before it while that one still sounds (the amplifier plays one thing at a time, as
    the board's I2S does); silence elsewhere; at least `length` samples (the input's)."""
    pcm = np.frombuffer(raw.read_bytes(), "<i2") if raw.is_file() else np.zeros(0, "<i2")
    plays = []
    if events.is_file():
        for line in events.read_text().splitlines():
            event = json.loads(line)
            if event.get("dev") == "speaker":
                plays.append((event["t_ms"] * RATE_HZ // _MS_PER_S, event["samples"]))
    placed: list[tuple[int, np.ndarray]] = []
    at = cursor = 0
    for start, n in plays:
        cursor = max(cursor, start)
        placed.append((cursor, pcm[at : at + n]))
        at += n
        cursor += n
    out = np.zeros(max(length, cursor), np.int16)
    for start, samples in placed:
        out[start : start + len(samples)] = samples
    return out
