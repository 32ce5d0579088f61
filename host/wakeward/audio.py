"""WAV files in the one format the device pipeline uses: 16 kHz, 16-bit, mono."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from wakeward.errors import WakewardError
from wakeward.files import write_atomic

RATE_HZ = 16_000


def read_wav(path: str | Path) -> np.ndarray:
    """Samples of a 16 kHz mono 16-bit WAV as int16; anything else is refused by name."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            if channels != 1:
                raise WakewardError(f"{path}: {channels} channels, expected 1 (mono)")
            if width != 2:
                raise WakewardError(f"{path}: {8 * width}-bit samples, expected 16-bit")
            if rate != RATE_HZ:
                raise WakewardError(f"{path}: sample rate {rate} Hz, expected {RATE_HZ} Hz")
            data = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise WakewardError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as e:
        raise WakewardError(f"{path}: not a readable PCM WAV file ({e})") from None
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def write_wav(path: str | Path, samples: np.ndarray) -> Path:
    """Write int16 samples as a 16 kHz mono WAV atomically (never a half-written file)."""
    path = Path(path)
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError("write_wav needs a 1-D int16 array")

    def write(f) -> None:
        with wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE_HZ)
            w.writeframes(samples.astype("<i2").tobytes())

    return write_atomic(path, write)
