"""Run the real firmware on the unix port with the `sim` board fed from a WAV file."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from wakeward import unixport
from wakeward.audio import read_wav
from wakeward.errors import WakewardError


def sim_config(
    wav: Path,
    *,
    realtime: bool = False,
    events: Path | None = None,
    button_ms: Sequence[tuple[int, int]] = (),
) -> dict:
    options: dict = {"wav": str(wav.resolve()), "realtime": realtime}
    if events is not None:
        options["events"] = str(events.resolve())
    if button_ms:
        options["button"] = [list(b) for b in button_ms]
    return {"board": "sim", "board_options": options}


def run_sim(
    wav: str | Path,
    *,
    realtime: bool = False,
    events: Path | None = None,
    button_ms: Sequence[tuple[int, int]] = (),
    heap: str = unixport.DEFAULT_HEAP_PROFILE,
    say: Callable[[str], None] = print,
) -> int:
    """Run firmware/main.py on the sim board over `wav`, passing each output line to `say`."""
    wav = Path(wav)
    read_wav(wav)  # refuse a wrong format here, with the host's message
    with tempfile.TemporaryDirectory(prefix="wakeward-sim-") as tmp:
        config = sim_config(wav, realtime=realtime, events=events, button_ms=button_ms)
        (Path(tmp) / "config.json").write_text(json.dumps(config))
        main = unixport.firmware_dir() / "main.py"
        proc = subprocess.Popen(
            unixport.command(main, heap=heap),
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
        raise WakewardError(f"the firmware stopped with exit code {rc}: {last}")
    return rc


def main_stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
