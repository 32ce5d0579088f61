"""Recorded clips the owner gives the trainer: their own takes of the wake phrase
(positives) and clips they labelled false-wake (hard negatives).

Both come as WAV files in the device format (16 kHz, 16-bit, mono), listed one by one or as
folders (every *.wav inside, sorted). A file in any other format, an empty or silent file,
or a corrupt one is refused with a message naming it. Files are only read, never changed.

Hook for the clip store: `ClipSource` is what the dataset builder asks for. `WavFiles` is
the one implementation today. When host/wakeward/store.py lands, a source that lists the
store's clips labelled "false-wake" (and their WAV paths) implements the same `clips()`
and is passed as `DataConfig.false_wake_sources`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from wakeward.audio import RATE_HZ, read_wav
from wakeward.errors import WakewardError

OWNER = "owner"
FALSE_WAKE = "false-wake"
MIN_DURATION_S = 0.3
SILENT_RMS_DBFS = -65.0  # a take quieter than this everywhere is refused as silent
_FRAME = 160  # 10 ms analysis frames for speech_bounds


@dataclass(frozen=True)
class SourceClip:
    path: Path
    samples: np.ndarray  # int16, 16 kHz mono
    label: str  # OWNER or FALSE_WAKE
    speaker: str  # split group: all of one owner's takes stay on one side


class ClipSource(Protocol):
    """Anything that yields labelled clips (a WAV folder today; the clip store later)."""

    def clips(self) -> list[SourceClip]: ...


def frame_levels_dbfs(samples: np.ndarray) -> np.ndarray:
    """RMS level of each 10 ms frame, dBFS (-inf for digital silence)."""
    x = np.asarray(samples, dtype=np.float64)
    n = len(x) // _FRAME
    if n == 0:
        return np.zeros(0)
    p = np.mean(x[: n * _FRAME].reshape(n, _FRAME) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(p / 32768.0**2)


def speech_bounds(samples: np.ndarray, below_peak_db: float = 30.0) -> tuple[int, int]:
    """(start, end) samples of the stretch whose 10 ms frames come within `below_peak_db`
    of the loudest frame: the speech in a clip of speech with quiet around it."""
    levels = frame_levels_dbfs(samples)
    if len(levels) == 0 or not np.isfinite(levels.max()):
        return 0, len(samples)
    loud = np.flatnonzero(levels >= levels.max() - below_peak_db)
    return int(loud[0] * _FRAME), int(min(len(samples), (loud[-1] + 1) * _FRAME))


def read_clip(path: Path) -> np.ndarray:
    """A recorded clip, checked: device format, long enough, not silent."""
    samples = read_wav(path)  # refuses a wrong rate, width or channel count, naming the file
    if len(samples) == 0:
        raise WakewardError(f"{path}: the recording is empty")
    if len(samples) < MIN_DURATION_S * RATE_HZ:
        raise WakewardError(
            f"{path}: the recording is {len(samples) / RATE_HZ:.2f} s, shorter than "
            f"{MIN_DURATION_S} s"
        )
    levels = frame_levels_dbfs(samples)
    if len(levels) == 0 or levels.max() < SILENT_RMS_DBFS:
        raise WakewardError(
            f"{path}: the recording is silent (never louder than {SILENT_RMS_DBFS:.0f} dBFS)"
        )
    return samples


def wav_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders expanded to their *.wav files (sorted, not recursive)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() == ".wav" and f.is_file())
            if not found:
                raise WakewardError(f"{p}: the folder has no .wav files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise WakewardError(f"{p}: no such file or folder")
    return out


@dataclass(frozen=True)
class WavFiles:
    """Clips from WAV files and folders, all with one label and one speaker."""

    paths: tuple[Path, ...]
    label: str
    speaker: str

    def clips(self) -> list[SourceClip]:
        return [
            SourceClip(path, read_clip(path), self.label, self.speaker)
            for path in wav_paths(self.paths)
        ]


def owner_recordings(paths: Sequence[Path], owner: str = OWNER) -> WavFiles:
    return WavFiles(tuple(paths), OWNER, f"owner:{owner}")


def false_wakes(paths: Sequence[Path]) -> WavFiles:
    return WavFiles(tuple(paths), FALSE_WAKE, "false-wake")
