"""Offline speech synthesis (espeak-ng, resampled to 16 kHz with sox)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from wakeward.audio import RATE_HZ, read_wav
from wakeward.errors import WakewardError


def require(tool: str, package: str | None = None) -> str:
    path = shutil.which(tool)
    if path is None:
        raise WakewardError(
            f"{tool} is not installed: run `sudo apt-get install {package or tool}` "
            "(make demo and make test install it when they can)"
        )
    return path


def espeak(
    text: str, out: Path, voice: str = "en-us", rate_wpm: int = 150, pitch: int = 50
) -> np.ndarray:
    """Speak text with espeak-ng into a 16 kHz mono WAV at `out`; returns its samples."""
    espeak_ng = require("espeak-ng")
    sox = require("sox")
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_suffix(".22k.wav")
    cmd = [espeak_ng, "-v", voice, "-s", str(rate_wpm), "-p", str(pitch), "-w", str(raw), text]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not raw.is_file():
        raise WakewardError(
            f"espeak-ng could not speak with voice {voice!r}: {done.stderr.strip()}"
        )
    try:
        conv = subprocess.run(
            # -R: sox dithers with a fixed seed, so the same text gives the same file
            [sox, "-R", str(raw), "-r", str(RATE_HZ), "-c", "1", "-b", "16", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        if conv.returncode != 0:
            raise WakewardError(f"sox could not resample {raw}: {conv.stderr.strip()}")
    finally:
        raw.unlink(missing_ok=True)
    return read_wav(out)
