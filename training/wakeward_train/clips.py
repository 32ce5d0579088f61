"""Recorded clips the owner gives the trainer: their own takes of the wake phrase
(positives) and clips they labelled false-wake (hard negatives).

Both come as WAV files in the device format (16 kHz, 16-bit, mono), listed one by one or as
folders (every *.wav inside, sorted). A file in any other format, an empty or silent file,
or a corrupt one is refused with a message naming it. Files are only read, never changed.

`ClipSource` is what the dataset builder asks for: `WavFiles` (files and folders, e.g. the
takes `wakeward record` writes) and `StoreFalseWakes` (the clips labelled false-wake in the
clip store, host/wakeward/store.py). The store is read without changing anything: its index
is opened read-only and none of the recovery that opening a `ClipStore` does runs, so a
labelled clip whose audio is missing or damaged is reported (file, clip id, what to do)
rather than marked deleted behind the owner's back.

`take_problem` is the check `wakeward record` applies to each take before keeping it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from wakeward import store
from wakeward.audio import RATE_HZ, read_wav
from wakeward.errors import WakewardError

OWNER = "owner"
FALSE_WAKE = "false-wake"
MIN_DURATION_S = 0.3
SILENT_RMS_DBFS = -65.0  # a take quieter than this everywhere is refused as silent
# A take of the phrase (`wakeward record`) must also have speech in it:
FULL_SCALE = 32767  # |sample| at or above this is clipped
MAX_CLIPPED_FRACTION = 0.001  # of the samples
FLOOR_PERCENTILE = 10  # the background: the level 10% of the 10 ms frames stay below
SPEECH_ABOVE_FLOOR_DB = 20.0  # the loudest frame over the background
SPEECH_RANGE_DB = 30.0  # speech frames: within this of the loudest (and above mid-way)
MIN_SPEECH_S = 0.15  # of speech frames
END_MARGIN_S = 0.1  # quiet needed after the speech (not cut off by the take's end)
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


def recording_problem(samples: np.ndarray) -> str | None:
    """What makes samples unusable as a recorded clip (empty, too short, silent), or None."""
    if len(samples) == 0:
        return "the recording is empty"
    if len(samples) < MIN_DURATION_S * RATE_HZ:
        return f"the recording is {len(samples) / RATE_HZ:.2f} s, shorter than {MIN_DURATION_S} s"
    levels = frame_levels_dbfs(samples)
    if len(levels) == 0 or levels.max() < SILENT_RMS_DBFS:
        return f"the recording is silent (never louder than {SILENT_RMS_DBFS:.0f} dBFS)"
    return None


def take_problem(samples: np.ndarray) -> str | None:
    """What makes a take of the wake phrase unusable, or None: besides `recording_problem`,
    too much clipping, no speech above the background, or speech still going at its end."""
    problem = recording_problem(samples)
    if problem is not None:
        return problem
    x = np.asarray(samples, dtype=np.int32)
    clipped = int(np.count_nonzero(np.abs(x) >= FULL_SCALE))
    if clipped > MAX_CLIPPED_FRACTION * len(x):
        return (
            f"the recording is clipped ({clipped} samples at full scale): speak further from "
            "the microphone or turn its gain down"
        )
    levels = frame_levels_dbfs(samples)
    peak = float(levels.max())
    floor = float(np.percentile(levels, FLOOR_PERCENTILE, method="lower"))
    if peak - floor < SPEECH_ABOVE_FLOOR_DB:
        return (
            f"no speech heard: the loudest moment is only {peak - floor:.0f} dB above the "
            f"background (speech is at least {SPEECH_ABOVE_FLOOR_DB:.0f} dB louder)"
        )
    loud = np.flatnonzero(levels >= max(peak - SPEECH_RANGE_DB, (peak + floor) / 2))
    if len(loud) * _FRAME < MIN_SPEECH_S * RATE_HZ:
        return f"no speech heard: only a sound shorter than {MIN_SPEECH_S} s"
    if (len(levels) - 1 - loud[-1]) * _FRAME < END_MARGIN_S * RATE_HZ:
        return "the speech runs to the end of the take: start sooner or record longer takes"
    return None


def read_clip(path: Path) -> np.ndarray:
    """A recorded clip, checked: device format, long enough, not silent."""
    samples = read_wav(path)  # refuses a wrong rate, width or channel count, naming the file
    problem = recording_problem(samples)
    if problem is not None:
        raise WakewardError(f"{path}: {problem}")
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


def store_clips(folder: Path, label: str) -> tuple[list[store.Clip], int]:
    """The clip store's stored clips with `label`, and how many more with it were deleted,
    read from its index opened read-only (nothing in the store is changed)."""
    db_path = folder / store.DB_NAME
    if not db_path.is_file():
        raise WakewardError(f"no clip store in {folder} (`wakeward listen` makes it; --store DIR)")
    try:
        db = sqlite3.connect(db_path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as e:
        raise WakewardError(f"{db_path}: cannot read the clip store ({e})") from None
    try:
        db.row_factory = sqlite3.Row
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != store.SCHEMA_VERSION:
            raise WakewardError(
                f"{db_path}: clip store schema version {version}, this wakeward reads "
                f"{store.SCHEMA_VERSION} (open it once with `wakeward clips list`)"
            )
        rows = db.execute(
            "SELECT * FROM clips WHERE label = ? AND status IN (?, ?) ORDER BY id",
            (label, store.STORED, store.DELETED),
        ).fetchall()
    except sqlite3.Error as e:
        raise WakewardError(f"{db_path}: cannot read the clip store ({e})") from None
    finally:
        db.close()
    fields = [f.name for f in dataclasses.fields(store.Clip) if f.name != "path"]
    found = [
        store.Clip(**{name: row[name] for name in fields}, path=folder / row["file"])
        for row in rows
    ]
    stored = [c for c in found if not c.deleted]
    return stored, len(found) - len(stored)


def read_store_clip(clip: store.Clip) -> np.ndarray:
    """A stored clip's samples, checked against what the store recorded about it."""
    hint = (
        f"(clip {clip.id} in the clip store, labelled {clip.label}): leave it out with "
        f"`wakeward clips delete {clip.id}` or `wakeward clips label {clip.id} unsure`"
    )
    if not clip.path.is_file():
        raise WakewardError(f"{clip.path}: the audio file is missing {hint}")
    try:
        samples = read_wav(clip.path)
    except WakewardError as e:
        raise WakewardError(f"{e} {hint}") from None
    pcm = samples.astype("<i2").tobytes()
    if len(samples) != clip.samples or hashlib.sha256(pcm).hexdigest() != clip.sha256:
        raise WakewardError(
            f"{clip.path}: the audio is not what the store received (its sha256 differs) {hint}"
        )
    problem = recording_problem(samples)
    if problem is not None:
        raise WakewardError(f"{clip.path}: {problem} {hint}")
    return samples


@dataclass(frozen=True)
class StoreFalseWakes:
    """The clips the owner labelled false-wake in the clip store (`wakeward clips label ID
    false-wake`); deleted ones, whose audio is gone, are left out."""

    folder: Path

    def clips(self) -> list[SourceClip]:
        found, deleted = store_clips(self.folder, FALSE_WAKE)
        if not found:
            gone = f" ({deleted} labelled false-wake were deleted: their audio is gone)"
            raise WakewardError(
                f"no clips labelled false-wake in the clip store in {self.folder}"
                f"{gone if deleted else ''}: label some with `wakeward clips label ID "
                "false-wake` (see `wakeward clips list`), or leave out --false-wakes-from-store"
            )
        return [SourceClip(c.path, read_store_clip(c), FALSE_WAKE, FALSE_WAKE) for c in found]


def sources(
    owner: Sequence[Path] = (),
    false_wake_files: Sequence[Path] = (),
    false_wake_store: Path | None = None,
) -> tuple[tuple[ClipSource, ...], tuple[ClipSource, ...]]:
    """The owner's and the false-wake clip sources from the command line's options
    (--owner, --false-wakes, --false-wakes-from-store with its store folder)."""
    owners: tuple[ClipSource, ...] = (owner_recordings(owner),) if owner else ()
    falses: list[ClipSource] = [false_wakes(false_wake_files)] if false_wake_files else []
    if false_wake_store is not None:
        falses.append(StoreFalseWakes(false_wake_store))
    return owners, tuple(falses)
