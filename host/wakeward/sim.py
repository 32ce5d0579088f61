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

from wakeward import models, unixport
from wakeward.audio import read_wav
from wakeward.errors import WakewardError

if TYPE_CHECKING:
    from wakeward.pairing import Pairing

# The receiver's certificate on the simulated flash (deploy puts it at the same name).
CERT_FILE = "receiver.der"
SIM_DEVICE_ID = "sim"  # config.json's default device id on the sim board


def model_entry(name_or_path: str) -> dict:
    """A config.json model entry: path, name and the cutoff and window of its manifest
    (microWakeWord's defaults, 0.9 and 5, when it has none)."""
    path = models.resolve(name_or_path)
    micro = (models.manifest(path) or {}).get("micro", {})
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
) -> dict:
    """The sim board's config.json; with link_secret the link is TLS, pinned to the
    certificate in CERT_FILE on the flash."""
    options: dict = {"wav": str(wav.resolve()), "realtime": realtime}
    if events is not None:
        options["events"] = str(events.resolve())
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
) -> int:
    """Run firmware/main.py on the sim board over `wav`, passing each output line to `say`.

    `flash` is the device's flash (its working directory: config.json, the clip queue and
    the clip counter), kept from run to run like a real device's; by default each run gets
    a new, empty one. With `tls` (a pairing folder) the link is TLS as on a paired device:
    the receiver's certificate goes on the flash and the device's secret into config.json
    (the device, `device_id` or "sim", must be paired there)."""
    wav = Path(wav)
    read_wav(wav)  # refuse a wrong format here, with the host's message
    secret = cert = None
    if tls is not None:
        if link_tcp is None:
            raise WakewardError("--tls goes with --link HOST:PORT")
        secret = tls.secret(device_id or SIM_DEVICE_ID)
        cert = tls.cert_der()
    with contextlib.ExitStack() as stack:
        if flash is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="wakeward-sim-"))
        else:
            flash.mkdir(parents=True, exist_ok=True)
            tmp = str(flash)
        config = sim_config(
            wav,
            realtime=realtime,
            events=events,
            button_ms=button_ms,
            model_names=model_names,
            trace=trace,
            link_tcp=link_tcp,
            link_secret=secret,
            device_id=device_id,
        )
        if cert is not None:
            (Path(tmp) / CERT_FILE).write_bytes(cert)
        config_path = Path(tmp) / "config.json"
        config_path.touch(mode=0o600)  # it may hold the device's secret: the user's alone
        config_path.chmod(0o600)
        config_path.write_text(json.dumps(config))
        proc = subprocess.Popen(
            unixport.main_command(heap),
            cwd=tmp,
            env=unixport.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        last = ""
        for line in proc.stdout or ():
            last = line.rstrip("\n")
            say(last)
        rc = proc.wait()
    if rc != 0:
        hint = unixport.memory_hint(heap, last)
        raise WakewardError(f"the firmware stopped with exit code {rc}: {last}{hint}")
    return rc


def json_lines_stdout(line: str) -> None:
    """--json: the invocation records on stdout, everything else the firmware says on stderr."""
    stream = sys.stdout if line.startswith("{") else sys.stderr
    stream.write(line + "\n")
    stream.flush()


def main_stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
