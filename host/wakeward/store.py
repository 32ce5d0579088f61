"""The clip store: every clip the speaker sent, kept on the owner's PC until the owner
deletes it (or a retention setting does).

One folder holds an SQLite index, ``clips.sqlite3``, and one WAV file per stored clip beside
it. The folder is ``--store``, else ``$WAKEWARD_DATA_DIR/clips``, else the config file's
``store`` (wakeward/config.py), else the platform's user data directory (platformdirs) +
``/clips``; it is created readable by the user alone.

A clip's row goes through three states: ``pending`` (being written; never shown) ->
``stored`` -> ``deleted`` (the audio file removed, the row kept as the record of what was
sent, when it went and why: ``delete``, ``purge``, ``retention`` or ``missing``).

Adding a clip (`ClipStore.add`), under the store's lock file:

1. the row is committed as ``pending`` with everything known about the clip, the SHA-256
   of its PCM and its final file name;
2. the WAV goes to a temporary name (``.<name>.part``), is flushed and fsynced;
3. it is renamed to its final name and the folder is fsynced;
4. the row is committed as ``stored``.

Opening the store finishes or undoes whatever a killed writer left (`Recovery`), in the same
order every time: a pending row whose final file, else whose temporary file, holds exactly
the recorded audio (same SHA-256) is adopted (the file put in place, the row stored);
otherwise its files are removed and the row dropped. A deleted row whose file is still there
(killed between the commit and the unlink) loses the file; a stored row whose file has gone
is marked deleted (``missing``); a temporary file no row owns is removed; any other file is
reported and left alone. So no row is ever ``stored`` without its full file, and no file the
store wrote stays unknown to it.

The store writes, replaces and removes only its own clip files, in its folder: a row's file
name must be one it makes (``<id>-<device>-<time>.wav``, letters, digits, ``-`` and ``_``);
a row edited or damaged to name ``../x`` or ``clips.sqlite3`` has no file touched (`delete`
marks it deleted and says so). A new clip's name is one no file has yet (``-2``, ``-3``...
added), and a failed add removes its final file only when that holds the WAV it wrote.

The index's own trouble is said, never a traceback: a damaged one (SQLite's "malformed") or
one SQLite cannot use (a disk error) is a WakewardError saying what to do, with nothing
changed; an empty index (0 bytes, or no tables) is a new store only when no clip file is
beside it, otherwise it was truncated and opening it is refused, changing nothing.

A clip is stored once per (device, device clip id, audio): a device that resends a clip it
saw no acknowledgement for gets the same row back, even when the owner has deleted it since
(it is acknowledged, not stored again). A resend of a clip whose WAV has gone without the
owner deleting it (its row stored, or marked deleted as ``missing``) writes the WAV again
from the resent audio, the same samples. The device keeps its clip counter on flash across
reboots (firmware/outbox.py), so the id alone names a clip while that flash lives; the audio
(its SHA-256) is in the key for when it does not: an erased or re-flashed board starts its
counter at a new random value, and a second board may be given the same device id, so an id
can come again with other audio. Such a clip is a new clip and is stored, where a key of
(device, id) alone would take it for a resend, acknowledge it and lose it. A real resend is
byte-for-byte the clip on the device's flash, so the hash costs nothing there.

Besides its clips the folder holds one status file per device (``<device>.status.json``,
the device's last status message, written by the receiver through `ClipStore.write_status`).

Time listened. A device's status says how long it has listened (not muted) since it booted
(protocol version 6: ``listened_s`` and ``listened_rem_ms``). The receiver hands each status
to `ClipStore.add_listened`, which adds it up in the index, per device and per model the
device announced in its hello, across statuses and reboots: a status whose time listened is
lower than the last one's, or whose uptime is well short of the last one's plus the time
between the two (a reboot the receiver did not see, after which the device listened longer
than before it), starts a new boot and adds its time whole; any other adds the difference.
The count runs from the boot before the first such status (``since``). Listening after a
device's last status before it rebooted is never reported, so the count is short by at most
one status interval per reboot. Statuses without the time listened (older firmware) add
nothing: the review page falls back to the time since boot for those devices.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import hashlib
import io
import math
import os
import re
import shutil
import sqlite3
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from wakeward import detector
from wakeward.errors import WakewardError
from wakeward.printable import printable

SCHEMA_VERSION = 2
DB_NAME = "clips.sqlite3"
LOCK_NAME = ".lock"
LABELS = ("wake", "false-wake", "unsure")
PENDING, STORED, DELETED = "pending", "stored", "deleted"
DELETED_BY = ("delete", "purge", "retention", "missing")
# Test hook: the writer stops (sleeps) at this step of `add`, so a test can kill it there.
PAUSE_ENV = "WAKEWARD_STORE_PAUSE_AT"
PAUSE_STEPS = ("pending", "temp-partial", "temp-synced", "renamed", "stored")
MB = 1_000_000
STATUS_SUFFIX = ".status.json"  # <device>.status.json: a device's last status message

_DIR_MODE = 0o700
_FILE_MODE = 0o600
_TEMP = re.compile(r"^\..+\.part$")
# A clip's file name as the store makes it (`_file_name`, `_free_name`): only such a name,
# in the store folder itself, is ever written, replaced or removed for a row.
_CLIP_FILE = re.compile(r"^[0-9]+-[A-Za-z0-9_-]+\.wav$")
# SQLite INTEGER's range: a clip id past it names no clip
MAX_CLIP_ID = 2**63 - 1
# SQLite's primary result codes for a damaged file (extended codes carry them in the low byte)
_SQLITE_PRIMARY_CODE = 0xFF
_DAMAGED_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
# SQLite's errors about the file or the disk (said as such); its others are this program's bugs
_UNUSABLE_INDEX = (sqlite3.DatabaseError, sqlite3.OperationalError)
_DB_FILES = {DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + "-journal", LOCK_NAME}
_STATUS_FILE = re.compile(r"^[A-Za-z0-9_-]+" + re.escape(STATUS_SUFFIX) + "$")
_AGE = re.compile(r"^(\d+(?:\.\d+)?)(s|min|h|d|w)$")
_AGE_UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# a bare "m" (or "mo", "M") reads as minutes to some and months to others: refused
_AMBIGUOUS_AGE = re.compile(r"^\d+(?:\.\d+)?(m|mo|M)$")
_AGE_FORMS = "30d, 12h, 90min, 45s or 2w"
_SETTING_MAX_AGE = "retention.max_age_s"
_SETTING_MAX_BYTES = "retention.max_bytes"

_SCHEMA = """
CREATE TABLE clips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    device_clip_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    score INTEGER NOT NULL,
    received_at REAL NOT NULL,          -- Unix time (seconds, UTC)
    rate_hz INTEGER NOT NULL CHECK (rate_hz > 0),
    samples INTEGER NOT NULL CHECK (samples >= 0),
    duration_s REAL GENERATED ALWAYS AS (CAST(samples AS REAL) / rate_hz) VIRTUAL,
    pre_roll_ms INTEGER NOT NULL,
    end_reason TEXT NOT NULL,
    file TEXT NOT NULL,                 -- WAV file name in the store folder
    bytes INTEGER NOT NULL,             -- its size
    sha256 TEXT NOT NULL,               -- of the PCM samples
    status TEXT NOT NULL CHECK (status IN ('pending', 'stored', 'deleted')),
    label TEXT CHECK (label IN ('wake', 'false-wake', 'unsure')),
    labeled_at REAL,
    deleted_at REAL,
    deleted_by TEXT CHECK (deleted_by IN ('delete', 'purge', 'retention', 'missing')),
    UNIQUE (device, device_clip_id, sha256)
);
CREATE INDEX clips_by_time ON clips (received_at);
CREATE INDEX clips_by_status ON clips (status);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Schema version 2: the time each device listened, added up over its statuses (add_listened).
_LISTENED_SCHEMA = """
CREATE TABLE listened (
    device TEXT NOT NULL,
    model TEXT NOT NULL,                -- '': the device, whatever models it ran
    listened_ms INTEGER NOT NULL CHECK (listened_ms >= 0),
    since REAL NOT NULL,                -- Unix time the count starts (a boot)
    updated REAL NOT NULL,              -- the last status that added to it
    PRIMARY KEY (device, model)
);
CREATE TABLE last_listened (
    device TEXT PRIMARY KEY,
    listened_ms INTEGER NOT NULL,       -- time listened since boot, in its last status
    uptime_ms INTEGER NOT NULL,         -- that status's uptime_ms (mod 2**32)
    received REAL NOT NULL,             -- its arrival, Unix time
    reboots INTEGER NOT NULL DEFAULT 0  -- new boots seen since the count started
);
"""
_SCHEMA += _LISTENED_SCHEMA
# MIGRATIONS[v] takes a store from schema version v to v + 1.
MIGRATIONS: dict[int, str] = {1: _LISTENED_SCHEMA}


# Telling a reboot from an uptime (ClipStore.add_listened): the device's uptime_ms wraps at
# 2**32; within half of that the difference from the one expected is unambiguous. Expected:
# the last status's uptime plus the time between the two arrivals, give or take the network's
# and the two clocks' doing (a fixed slack, and a drift of 0.1 %, ten times a crystal's).
UPTIME_WRAP = 2**32
_UPTIME_HALF = UPTIME_WRAP // 2
_REBOOT_SLACK_MS = 60_000
_CLOCK_DRIFT = 0.001
_MS_PER_S = 1000


def default_dir() -> Path:
    """Where the clips live: $WAKEWARD_DATA_DIR/clips, else the config file's `store`
    (wakeward/config.py), else the user data directory's."""
    override = os.environ.get("WAKEWARD_DATA_DIR")
    if override:
        return Path(override) / "clips"
    from wakeward import config

    configured = config.load().store
    if configured is not None:
        return configured
    import platformdirs

    return Path(platformdirs.user_data_dir("wakeward")) / "clips"


@dataclass(frozen=True)
class Clip:
    """One row of the store (a stored clip, or the record of a deleted one)."""

    id: int
    device: str
    device_clip_id: int
    model: str
    score: int
    received_at: float
    rate_hz: int
    samples: int
    pre_roll_ms: int
    end_reason: str
    path: Path
    bytes: int
    sha256: str
    status: str
    label: str | None
    labeled_at: float | None
    deleted_at: float | None
    deleted_by: str | None

    @property
    def duration_s(self) -> float:
        return self.samples / self.rate_hz

    @property
    def deleted(self) -> bool:
        return self.status == DELETED

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "device": self.device,
            "device_clip_id": self.device_clip_id,
            "model": self.model,
            "score": self.score,
            "probability": detector.probability(self.score),
            "received_at": iso_time(self.received_at),
            "duration_s": round(self.duration_s, 3),
            "samples": self.samples,
            "rate_hz": self.rate_hz,
            "pre_roll_ms": self.pre_roll_ms,
            "end_reason": self.end_reason,
            "file": str(self.path),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "label": self.label,
            "labeled_at": iso_time(self.labeled_at),
            "status": self.status,
            "deleted_at": iso_time(self.deleted_at),
            "deleted_by": self.deleted_by,
        }


@dataclass(frozen=True)
class AddResult:
    """What `ClipStore.add` did; unpacks as (clip, added)."""

    clip: Clip
    added: bool  # False: the store already had this clip (a resend); no new row
    # a resend whose audio file had gone (stored, or marked deleted as missing): the file
    # was written again from it
    restored: bool = False

    def __iter__(self) -> Iterator[Any]:
        return iter((self.clip, self.added))


@dataclass(frozen=True)
class Listened:
    """The time a device (model ""), or one of its models, listened, as the store added it
    up over its statuses (`ClipStore.add_listened`)."""

    device: str
    model: str  # "": the device, whatever models it ran
    listened_ms: int
    since: float  # Unix time the count starts: the boot before its first status
    updated: float  # the last status that added to it (its arrival)
    reboots: int = 0  # the device's new boots seen since (model "" only)


@dataclass(frozen=True)
class LastListened:
    """What a device's last status said about its time listened (`rebooted` compares)."""

    listened_ms: int
    uptime_ms: int
    received: float


def rebooted(last: LastListened, listened_ms: int, uptime_ms: int, received: float) -> bool:
    """Whether a status comes from a new boot of the device that sent `last`: its time
    listened is lower; or (a reboot that no status told of) its uptime falls well short of
    the last one's plus the time between their arrivals, and is no longer than that time (the
    device booted after the last status: not a clock on this PC put forward)."""
    if listened_ms < last.listened_ms:
        return True
    elapsed_ms = (received - last.received) * _MS_PER_S
    if not 0 <= elapsed_ms < _UPTIME_HALF:
        return False  # the receiver's clock went back, or too long to tell by the uptime
    expected_ms = last.uptime_ms + elapsed_ms
    behind_ms = (expected_ms - uptime_ms + _UPTIME_HALF) % UPTIME_WRAP - _UPTIME_HALF
    return (
        behind_ms > _REBOOT_SLACK_MS + elapsed_ms * _CLOCK_DRIFT
        and uptime_ms <= elapsed_ms + _REBOOT_SLACK_MS
    )


@dataclass(frozen=True)
class Retention:
    """Clips older than max_age_s, and the oldest beyond max_bytes in all, are deleted."""

    max_age_s: float | None = None
    max_bytes: int | None = None

    def describe(self) -> str:
        if self.max_age_s is None and self.max_bytes is None:
            return "retention: off (clips are kept until you delete them)"
        rules = []
        if self.max_age_s is not None:
            rules.append(f"clips older than {format_age(self.max_age_s)}")
        if self.max_bytes is not None:
            rules.append(f"the oldest clips beyond {self.max_bytes / MB:g} MB in all")
        return f"retention: {' and '.join(rules)} are deleted as each new clip is stored"


@dataclass
class Recovery:
    """What opening the store did about a writer that was killed (empty: nothing)."""

    adopted: list[int] = field(default_factory=list)
    discarded: list[int] = field(default_factory=list)
    finished_deletes: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    removed_temp: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in self.__dataclass_fields__)

    def lines(self) -> list[str]:
        out = [
            f"clip {i}: its write was interrupted with the audio complete; kept"
            for i in self.adopted
        ]
        out += [
            f"clip {i}: its write was interrupted before the audio was complete; dropped "
            "(the device resends a clip it saw no acknowledgement for)"
            for i in self.discarded
        ]
        out += [f"clip {i}: finished deleting its audio file" for i in self.finished_deletes]
        out += [f"clip {i}: its audio file has gone; marked deleted" for i in self.missing]
        out += [f"{name}: removed (an unfinished write)" for name in self.removed_temp]
        out += [f"{name}: not a file of the clip store; left alone" for name in self.unknown]
        return out


# -- parsing the owner's input --------------------------------------------------------------


def parse_age(text: str, what: str = "age") -> float:
    """'30d', '12h', '90min', '45s', '2w' -> seconds (more than 0)."""
    if _AMBIGUOUS_AGE.match(text.strip()):
        raise WakewardError(
            f"{what} {text!r}: 'm' could mean minutes or months: write minutes as 90min, "
            f"months in days (30d) or weeks (4w); ages look like {_AGE_FORMS}"
        )
    m = _AGE.match(text.strip())
    seconds = float(m.group(1)) * _AGE_UNITS[m.group(2)] if m else 0.0
    if not 0 < seconds < math.inf:
        raise WakewardError(
            f"{what} {text!r}: not an age like {_AGE_FORMS} (more than 0, and finite)"
        )
    return seconds


def format_age(seconds: float) -> str:
    for unit in ("w", "d", "h", "min"):
        n = seconds / _AGE_UNITS[unit]
        if n >= 1 and n == int(n):
            return f"{int(n)}{unit}"
    return f"{seconds:g}s"


def parse_since(text: str, what: str = "--since", now: float | None = None) -> float:
    """An age ('7d': that long ago) or a local date/time ('2026-05-01', '2026-05-01T08:00')."""
    now = time.time() if now is None else now
    if _AGE.match(text.strip()):
        return now - parse_age(text, what)
    try:
        return datetime.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise WakewardError(
            f"{what} {text!r}: give an age (7d, 12h) or a date (2026-05-01 or 2026-05-01T08:00)"
        ) from None


def parse_clip_id(text: str | int) -> int:
    """A clip's store id as the owner typed it: decimal digits, at most MAX_CLIP_ID."""
    if isinstance(text, int):
        n = text
    else:
        digits = text.strip()
        if not (digits.isascii() and digits.isdigit()):
            raise WakewardError(f"clip id {text!r}: not a number (see `wakeward clips list`)")
        n = int(digits)
    if not 0 <= n <= MAX_CLIP_ID:
        raise WakewardError(f"clip id {text!r}: no clip has such an id (see `wakeward clips list`)")
    return n


def check_label(label: str) -> str:
    if label not in LABELS:
        raise WakewardError(f"label {label!r}: use one of {', '.join(LABELS)}")
    return label


def iso_time(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="seconds")


def local_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


# -- files ----------------------------------------------------------------------------------


def wav_bytes(pcm: bytes, rate_hz: int) -> bytes:
    """A mono 16-bit WAV file's bytes for little-endian int16 PCM."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm)
    return buf.getvalue()


def _pcm_of(path: Path, rate_hz: int) -> bytes | None:
    """The PCM of a mono 16-bit WAV at rate_hz, or None if it is not one (or is cut short)."""
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, rate_hz):
                return None
            return w.readframes(w.getnframes())
    except (OSError, wave.Error, EOFError):
        return None


def _audio_matches(path: Path, row: sqlite3.Row) -> bool:
    pcm = _pcm_of(path, row["rate_hz"])
    return (
        pcm is not None
        and len(pcm) == 2 * row["samples"]
        and hashlib.sha256(pcm).hexdigest() == row["sha256"]
        and path.stat().st_size == row["bytes"]
    )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(name: str) -> str:
    return f".{name}.part"


def _file_name(clip_id: int, device: str, received_at: float) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", device)[:32] or "device"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(received_at))
    return f"{clip_id:06d}-{safe}-{stamp}.wav"


def _pause_at(step: str) -> None:
    """The crash tests' hook: with WAKEWARD_STORE_PAUSE_AT=step, say so and wait to be killed."""
    if os.environ.get(PAUSE_ENV) != step:
        return
    print(f"wakeward store: paused at {step}", file=sys.stderr, flush=True)
    while True:
        time.sleep(60)


# -- showing clips --------------------------------------------------------------------------

TABLE_COLUMNS = ("ID", "RECEIVED", "DEVICE", "MODEL", "SCORE", "DURATION", "LABEL", "STATUS")


def status_text(clip: Clip) -> str:
    if not clip.deleted:
        return clip.status
    return f"deleted {local_time(clip.deleted_at or 0)} ({clip.deleted_by})"


def table_lines(clips: Sequence[Clip]) -> list[str]:
    """`wakeward clips list`: one line per clip under a header; times are local."""
    rows = [TABLE_COLUMNS] + [
        tuple(
            printable(cell)  # the device id and model name are the device's word
            for cell in (
                str(c.id),
                local_time(c.received_at),
                c.device,
                c.model,
                f"{detector.probability(c.score):.3f}",
                f"{c.duration_s:.2f} s",
                c.label or "-",
                status_text(c),
            )
        )
        for c in clips
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    right = {0, 4, 5}  # numbers
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def detail_lines(clip: Clip) -> list[str]:
    """`wakeward clips show`: every field of one clip."""
    audio = f"{clip.path} ({clip.bytes} bytes)"
    if clip.deleted:
        audio = f"none: {clip.path.name} was deleted at {local_time(clip.deleted_at or 0)}"
    labeled = f" (at {local_time(clip.labeled_at)})" if clip.labeled_at is not None else ""
    lines = [
        f"clip {clip.id}",
        f"  status:      {status_text(clip)}",
        f"  device:      {clip.device} (its clip {clip.device_clip_id})",
        f"  model:       {clip.model}, score {detector.probability(clip.score):.3f} "
        f"(output {clip.score} of 255)",
        f"  received:    {local_time(clip.received_at)} ({iso_time(clip.received_at)})",
        f"  duration:    {clip.duration_s:.2f} s ({clip.samples} samples at {clip.rate_hz} Hz), "
        f"pre-roll {clip.pre_roll_ms} ms",
        f"  ended by:    {clip.end_reason or '-'}",
        f"  label:       {clip.label or '-'}{labeled}",
        f"  audio:       {audio}",
        f"  sha256:      {clip.sha256} (of the samples)",
    ]
    return [printable(line) for line in lines]  # the device id and model are the device's


# -- players --------------------------------------------------------------------------------

PLAYERS = (
    ("aplay", ("-q",), "alsa-utils"),
    ("paplay", (), "pulseaudio-utils"),
    ("play", ("-q",), "sox"),
    ("ffplay", ("-nodisp", "-autoexit", "-loglevel", "error"), "ffmpeg"),
)


PLAYER_EXAMPLE = "--player 'mpv --really-quiet'"


def player_command(path: Path, player: str | None = None) -> list[str]:
    """The command that plays a WAV: `player` (a command line; the path goes where `{}` is,
    or last) or else the first player found on PATH."""
    if player is not None:
        return _custom_player(path, player)
    for name, options, _package in PLAYERS:
        exe = shutil.which(name)
        if exe is not None:
            return [exe, *options, str(path)]
    names = ", ".join(f"{name} ({package})" for name, _options, package in PLAYERS)
    raise WakewardError(f"no audio player found: install one of {names}; the clip is {path}")


def _custom_player(path: Path, player: str) -> list[str]:
    import shlex

    try:
        words = shlex.split(player)
    except ValueError as e:
        raise WakewardError(f"--player {player!r}: {e}") from None
    if not words:
        raise WakewardError(f"--player: give a command, e.g. {PLAYER_EXAMPLE}")
    exe = shutil.which(words[0])
    if exe is None:
        raise WakewardError(f"--player: no program {words[0]!r} on PATH")
    if any("{}" in word for word in words):
        args = [word.replace("{}", str(path)) for word in words[1:]]
    else:
        args = [*words[1:], str(path)]
    return [exe, *args]


# -- the store ------------------------------------------------------------------------------


def store_exists(folder: Path | None = None) -> bool:
    return ((Path(folder) if folder is not None else default_dir()) / DB_NAME).is_file()


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _index_error(db_path: Path, error: sqlite3.DatabaseError) -> WakewardError:
    """What the owner reads when SQLite cannot use the index: damaged, or unusable now."""
    code = (getattr(error, "sqlite_errorcode", None) or 0) & _SQLITE_PRIMARY_CODE
    if code in _DAMAGED_CODES:
        return WakewardError(
            f"{db_path}: the clip store's index is damaged ({error}); nothing was changed and "
            f"the WAV files in {db_path.parent} are untouched. Stop `wakeward listen` and copy "
            f"that folder somewhere safe; then put back {DB_NAME} from a backup, or move it "
            "aside to start a new index (the WAV files stay in the folder, not listed; "
            f"`sqlite3 {db_path} .dump` shows what can still be read from it)"
        )
    return WakewardError(
        f"{db_path}: cannot use the clip store's index ({error}); check the disk and the "
        "folder's permissions, then try again"
    )


def _index_errors(
    method: Callable[Concatenate[ClipStore, _P], _R],
) -> Callable[Concatenate[ClipStore, _P], _R]:
    """A ClipStore method whose SQLite failures (a damaged index, a disk error) reach the
    owner as a WakewardError saying what to do (`_index_error`); a bug's still raises."""

    @functools.wraps(method)
    def wrapper(self: ClipStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            with self._thread_lock:  # one thread at a time on the connection (see close)
                return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            if type(e) not in _UNUSABLE_INDEX:
                raise  # IntegrityError, ProgrammingError...: this program's mistake
            raise _index_error(self.db_path, e) from None

    return wrapper


class ClipStore:
    """The clip store in `folder` (default: `default_dir()`); see the module's text.

    Opening it recovers from a killed writer (`self.recovery` says what was done). Safe to use
    from several threads and processes at once (the receiver and `wakeward clips`).
    """

    def __init__(self, folder: Path | None = None, *, create: bool = True) -> None:
        self.folder = Path(folder) if folder is not None else default_dir()
        self.db_path = self.folder / DB_NAME
        if not self.db_path.is_file():
            if not create:
                raise WakewardError(
                    f"no clip store in {self.folder} yet: `wakeward listen` makes it"
                )
            self._make_folder()
        elif self.db_path.stat().st_size == 0:
            self._check_new_index()  # before SQLite writes a header into it
        self._thread_lock = threading.RLock()
        self._lock_depth = 0
        self._db = self._connect()
        try:
            with self._locked():
                self._init_schema()
                self.recovery = self._recover()
        except sqlite3.DatabaseError as e:
            self._db.close()
            if type(e) not in _UNUSABLE_INDEX:
                raise
            raise _index_error(self.db_path, e) from None
        except BaseException:
            self._db.close()
            raise

    def __enter__(self) -> ClipStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the index once no other thread is using it: SQLite's connection closed
        under another thread's query crashes the process (a receiver stopping while a
        connection's thread still stores or trims clips). A method called afterwards gets
        sqlite3.ProgrammingError."""
        with self._thread_lock:
            self._db.close()

    # -- opening ---------------------------------------------------------------------------

    def _make_folder(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
        except OSError as e:
            raise WakewardError(
                f"{self.folder}: cannot make the clip store ({e.strerror})"
            ) from None

    def _private_db_file(self) -> None:
        """The index is readable by the owner alone, as the clips are: made 0600 before
        SQLite opens it (its -wal and -shm files take its mode), and tightened when an
        older wakeward left it readable by others."""
        try:
            fd = os.open(self.db_path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
            try:
                if os.fstat(fd).st_mode & 0o077:
                    os.fchmod(fd, _FILE_MODE)
            finally:
                os.close(fd)
        except OSError as e:
            raise WakewardError(
                f"{self.db_path}: cannot open the clip store ({e.strerror})"
            ) from None

    def _connect(self) -> sqlite3.Connection:
        self._private_db_file()
        try:
            db = sqlite3.connect(
                self.db_path, timeout=30, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise WakewardError(f"{self.db_path}: cannot open the clip store ({e})") from None
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as e:
            db.close()
            raise WakewardError(f"{self.db_path}: not a wakeward clip store ({e})") from None
        return db

    def _init_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise WakewardError(
                f"{self.db_path}: the clip store has schema version {version}, newer than this "
                f"wakeward knows ({SCHEMA_VERSION}); use the newer wakeward that wrote it"
            )
        if version == 0:
            if self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise WakewardError(
                    f"{self.db_path}: an SQLite database but not a wakeward clip store"
                )
            self._check_new_index()
            self._db.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
            return
        for v in range(version, SCHEMA_VERSION):
            self._db.executescript(
                f"BEGIN IMMEDIATE; {MIGRATIONS[v]}; PRAGMA user_version = {v + 1}; COMMIT;"
            )

    def _check_new_index(self) -> None:
        """An empty index is a new store (a writer killed while it made one), unless clip
        files are beside it: then the index was truncated or replaced, and a new one would
        leave those clips out of every list. That is refused, changing nothing."""
        clips = [p for p in self.folder.iterdir() if _CLIP_FILE.match(p.name)]
        if clips:
            raise WakewardError(
                f"{self.db_path}: the clip store's index is empty but {len(clips)} clip files "
                "are beside it (it was truncated or replaced); nothing was changed. Put back "
                f"{DB_NAME} from a backup; or, to start a new index without those clips, "
                f"delete the empty {DB_NAME} (the WAV files stay in {self.folder}, not listed)"
            )

    def _clip_file(self, name: str) -> Path | None:
        """A row's file in the store folder, or None when the name is not one the store
        makes (an index edited or damaged to name `../x` or another file): the store
        writes, replaces and removes no file but its own clips'."""
        return self.folder / name if _CLIP_FILE.match(name) else None

    # -- locking and transactions ----------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """This process's threads and other processes: one writer at a time (flock is
        released by the kernel when a writer dies, so recovery never waits on a dead one)."""
        with self._thread_lock:
            if self._lock_depth:
                self._lock_depth += 1
                try:
                    yield
                finally:
                    self._lock_depth -= 1
                return
            fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, _FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._lock_depth = 1
                yield
            finally:
                self._lock_depth = 0
                os.close(fd)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- recovery --------------------------------------------------------------------------

    def _recover(self) -> Recovery:
        report = Recovery()
        pending = self._db.execute("SELECT * FROM clips WHERE status = ?", (PENDING,))
        for row in pending.fetchall():
            self._recover_pending(row, report)
        deleted = self._db.execute("SELECT id, file FROM clips WHERE status = ?", (DELETED,))
        for row in deleted.fetchall():
            path = self._clip_file(row["file"])
            if path is not None and path.exists():
                path.unlink()
                report.finished_deletes.append(row["id"])
        stored = self._db.execute("SELECT id, file FROM clips WHERE status = ?", (STORED,))
        known = set()
        for row in stored.fetchall():
            known.add(row["file"])
            path = self._clip_file(row["file"])
            if path is not None and not path.is_file():
                self._mark_deleted([row["id"]], "missing", time.time())
                report.missing.append(row["id"])
        self._sweep(known, report)
        return report

    def _recover_pending(self, row: sqlite3.Row, report: Recovery) -> None:
        final = self._clip_file(row["file"])
        if final is None:  # not a name the store made: no file of it is touched
            with self._transaction() as db:
                db.execute("DELETE FROM clips WHERE id = ?", (row["id"],))
            report.discarded.append(row["id"])
            return
        temp = self.folder / _temp_name(row["file"])
        if not _audio_matches(final, row) and _audio_matches(temp, row):
            os.replace(temp, final)
            _fsync_dir(self.folder)
        if _audio_matches(final, row):
            temp.unlink(missing_ok=True)
            with self._transaction() as db:
                db.execute("UPDATE clips SET status = ? WHERE id = ?", (STORED, row["id"]))
            report.adopted.append(row["id"])
            return
        temp.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        with self._transaction() as db:
            db.execute("DELETE FROM clips WHERE id = ?", (row["id"],))
        report.discarded.append(row["id"])

    def _sweep(self, known: set[str], report: Recovery) -> None:
        for path in sorted(self.folder.iterdir()):
            if path.name in known or path.name in _DB_FILES or _STATUS_FILE.match(path.name):
                continue
            if _TEMP.match(path.name) and path.is_file():
                path.unlink()
                report.removed_temp.append(path.name)
            else:
                report.unknown.append(path.name)

    # -- adding ----------------------------------------------------------------------------

    @_index_errors
    def add(
        self,
        pcm: bytes | bytearray | memoryview,
        *,
        device: str,
        device_clip_id: int,
        model: str,
        score: int,
        rate_hz: int = 16_000,
        pre_roll_ms: int = 0,
        end_reason: str = "",
        received_at: float | None = None,
    ) -> AddResult:
        """Store a clip (int16 LE mono PCM) unless this device already sent this clip; a
        resend of a clip whose file has gone (not one deleted on purpose) writes it again."""
        data = bytes(pcm)
        _check_new_clip(data, device, device_clip_id, score, rate_hz, pre_roll_ms)
        digest = hashlib.sha256(data).hexdigest()
        wav = wav_bytes(data, rate_hz)
        received = time.time() if received_at is None else float(received_at)
        key = (device, device_clip_id, digest)
        with self._locked():
            row = self._row_by_key(key)
            if row is not None and row["status"] == PENDING:
                self._recover_pending(row, Recovery())  # left by a failed add in this process
                row = self._row_by_key(key)
            if row is not None:
                restored = self._restore(row, data)
                return AddResult(self._clip(self._row_by_key(key) or row), False, restored)
            values = (
                device,
                device_clip_id,
                model,
                score,
                received,
                rate_hz,
                len(data) // 2,
                pre_roll_ms,
                end_reason,
                len(wav),
                digest,
            )
            clip_id, name = self._insert_pending(values)
            _pause_at("pending")
            try:
                self._write_file(name, wav)
                with self._transaction() as db:
                    db.execute("UPDATE clips SET status = ? WHERE id = ?", (STORED, clip_id))
            except BaseException:
                self._undo_pending(clip_id, name, wav)
                raise
            _pause_at("stored")
            return AddResult(self.get(clip_id), added=True)

    def _row_by_key(self, key: tuple[str, int, str]) -> sqlite3.Row | None:
        return self._db.execute(
            "SELECT * FROM clips WHERE device = ? AND device_clip_id = ? AND sha256 = ?", key
        ).fetchone()

    def _insert_pending(self, values: tuple[Any, ...]) -> tuple[int, str]:
        with self._transaction() as db:
            clip_id = db.execute(
                "INSERT INTO clips (device, device_clip_id, model, score, received_at, rate_hz, "
                "samples, pre_roll_ms, end_reason, bytes, sha256, file, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?) RETURNING id",
                (*values, PENDING),
            ).fetchone()[0]
            name = self._free_name(_file_name(clip_id, values[0], values[4]))
            db.execute("UPDATE clips SET file = ? WHERE id = ?", (name, clip_id))
        return clip_id, name

    def _free_name(self, name: str) -> str:
        """`name`, or name-2.wav, -3...: the first that no file (nor temporary file) has, so
        a file the store did not write is never in a new clip's way."""
        stem = name.removesuffix(".wav")
        candidate, n = name, 1
        while any(os.path.lexists(self.folder / x) for x in (candidate, _temp_name(candidate))):
            n += 1
            candidate = f"{stem}-{n}.wav"
        return candidate

    def _restore(self, row: sqlite3.Row, pcm: bytes) -> bool:
        """A resend of a clip whose audio file has gone (its row stored, or marked deleted
        as missing; never one the owner or retention deleted): the file is written again
        from the resent audio, the same samples (its SHA-256 is in the key). False: nothing
        to restore."""
        lost = row["status"] == STORED or (
            row["status"] == DELETED and row["deleted_by"] == "missing"
        )
        path = self._clip_file(row["file"])
        if not lost or path is None or os.path.lexists(path):
            return False
        wav = wav_bytes(pcm, row["rate_hz"])
        if len(wav) != row["bytes"]:
            return False  # not the file the row describes
        try:
            self._write_file(row["file"], wav)
        except BaseException:
            (self.folder / _temp_name(row["file"])).unlink(missing_ok=True)
            raise
        with self._transaction() as db:
            db.execute(
                "UPDATE clips SET status = ?, deleted_at = NULL, deleted_by = NULL WHERE id = ?",
                (STORED, row["id"]),
            )
        return True

    def _write_file(self, name: str, wav: bytes) -> None:
        final = self.folder / name
        temp = self.folder / _temp_name(name)
        if final.exists():
            raise WakewardError(f"{final}: a file the clip store did not write is in the way")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            half = len(wav) // 2
            f.write(wav[:half])
            f.flush()
            _pause_at("temp-partial")
            f.write(wav[half:])
            f.flush()
            os.fsync(f.fileno())
        _pause_at("temp-synced")
        os.replace(temp, final)
        _fsync_dir(self.folder)
        _pause_at("renamed")

    def _undo_pending(self, clip_id: int, name: str, wav: bytes) -> None:
        """A failed add (disk full, interrupted): no trace; what is left, recovery takes.
        The final name is removed only when it holds this clip's WAV (this add put it
        there): a file that was in the way stays."""
        with contextlib.suppress(OSError, sqlite3.Error):
            (self.folder / _temp_name(name)).unlink(missing_ok=True)
            final = self.folder / name
            if final.is_file() and final.stat().st_size == len(wav) and final.read_bytes() == wav:
                final.unlink()
            with self._transaction() as db:
                db.execute("DELETE FROM clips WHERE id = ? AND status = ?", (clip_id, PENDING))

    # -- reading ---------------------------------------------------------------------------

    def _clip(self, row: sqlite3.Row) -> Clip:
        return Clip(
            id=row["id"],
            device=row["device"],
            device_clip_id=row["device_clip_id"],
            model=row["model"],
            score=row["score"],
            received_at=row["received_at"],
            rate_hz=row["rate_hz"],
            samples=row["samples"],
            pre_roll_ms=row["pre_roll_ms"],
            end_reason=row["end_reason"],
            path=self.folder / row["file"],
            bytes=row["bytes"],
            sha256=row["sha256"],
            status=row["status"],
            label=row["label"],
            labeled_at=row["labeled_at"],
            deleted_at=row["deleted_at"],
            deleted_by=row["deleted_by"],
        )

    @_index_errors
    def get(self, clip_id: int | str) -> Clip:
        """A clip (stored or deleted) by its store id."""
        n = parse_clip_id(clip_id)
        row = self._db.execute(
            "SELECT * FROM clips WHERE id = ? AND status != ?", (n, PENDING)
        ).fetchone()
        if row is None:
            raise WakewardError(
                f"clip {n}: no such clip in {self.folder} (see `wakeward clips list`)"
            )
        return self._clip(row)

    @_index_errors
    def clips(
        self,
        *,
        device: str | None = None,
        model: str | None = None,
        label: str | None = None,
        since: float | None = None,
        include_deleted: bool = True,
    ) -> list[Clip]:
        """Clips in the order they arrived; label 'none' selects unlabelled clips."""
        where = ["status != ?"]
        params: list[Any] = [PENDING]
        if device is not None:
            where.append("device = ?")
            params.append(device)
        if model is not None:
            where.append("model = ?")
            params.append(model)
        if label == "none":
            where.append("label IS NULL")
        elif label is not None:
            where.append("label = ?")
            params.append(check_label(label))
        if since is not None:
            where.append("received_at >= ?")
            params.append(since)
        if not include_deleted:
            where.append("status = ?")
            params.append(STORED)
        sql = f"SELECT * FROM clips WHERE {' AND '.join(where)} ORDER BY id"
        return [self._clip(row) for row in self._db.execute(sql, params)]

    @_index_errors
    def newest_id(self) -> int:
        """The id of the newest clip `clips` lists (0 when none): a cheap question for a page
        that polls for new clips. Adds hold the store's lock, so ids appear in order."""
        row = self._db.execute(
            "SELECT coalesce(max(id), 0) FROM clips WHERE status != ?", (PENDING,)
        ).fetchone()
        return int(row[0])

    @_index_errors
    def total_bytes(self) -> int:
        row = self._db.execute(
            "SELECT coalesce(sum(bytes), 0) FROM clips WHERE status = ?", (STORED,)
        ).fetchone()
        return int(row[0])

    # -- changing --------------------------------------------------------------------------

    @_index_errors
    def label(self, clip_id: int | str, label: str | None) -> Clip:
        """Label a clip wake, false-wake or unsure (a deleted clip's record too); None
        clears its label."""
        if label is not None:
            check_label(label)
        clip = self.get(clip_id)
        labeled_at = time.time() if label is not None else None
        with self._locked(), self._transaction() as db:
            db.execute(
                "UPDATE clips SET label = ?, labeled_at = ? WHERE id = ?",
                (label, labeled_at, clip.id),
            )
        return self.get(clip.id)

    @_index_errors
    def delete(self, clip_ids: int | str | Sequence[int | str]) -> list[Clip]:
        """Delete clips' audio, keeping their rows as the record; all ids are checked first."""
        if isinstance(clip_ids, int | str):
            clip_ids = [clip_ids]
        clips = [self.get(i) for i in clip_ids]
        for clip in clips:
            if clip.deleted:
                raise WakewardError(
                    f"clip {clip.id}: already deleted at {local_time(clip.deleted_at or 0)}"
                )
        return self._delete([c.id for c in clips], "delete", time.time())

    @_index_errors
    @_index_errors
    def purge_victims(self, older_than_s: float, *, now: float | None = None) -> list[Clip]:
        """The clips `purge` would delete now: stored, received more than older_than_s
        seconds before `now`; oldest first."""
        now = time.time() if now is None else now
        rows = self._db.execute(
            "SELECT * FROM clips WHERE status = ? AND received_at < ? ORDER BY id",
            (STORED, now - older_than_s),
        ).fetchall()
        return [self._clip(r) for r in rows]

    def purge(self, older_than_s: float, *, now: float | None = None) -> list[Clip]:
        """Delete the audio of every clip received more than older_than_s seconds ago."""
        now = time.time() if now is None else now
        victims = self.purge_victims(older_than_s, now=now)
        return self._delete([c.id for c in victims], "purge", now)

    def _delete(self, clip_ids: list[int], by: str, now: float) -> list[Clip]:
        if not clip_ids:
            return []
        with self._locked():
            self._mark_deleted(clip_ids, by, now)  # committed first: see the module's text
            failed = []
            foreign = []
            for clip_id in clip_ids:
                name = self._db.execute(
                    "SELECT file FROM clips WHERE id = ?", (clip_id,)
                ).fetchone()["file"]
                path = self._clip_file(name)
                if path is None:
                    foreign.append(f"clip {clip_id}: {name!r}")
                    continue
                try:
                    path.unlink(missing_ok=True)
                except OSError as e:
                    failed.append(f"{path} ({e.strerror})")
        problems = []
        if failed:
            problems.append(
                f"cannot remove {', '.join(failed)}; the clips are marked deleted and the "
                "store removes the files when it is next opened"
            )
        if foreign:
            problems.append(
                f"the index names a file that is not a file of the clip store for "
                f"{', '.join(foreign)} (it was edited or damaged): marked deleted, and that "
                f"file left alone; only clip files in {self.folder} are ever removed"
            )
        if problems:
            raise WakewardError(printable("; ".join(problems)))
        return [self.get(i) for i in clip_ids]

    def _mark_deleted(self, clip_ids: list[int], by: str, now: float) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE clips SET status = ?, deleted_at = ?, deleted_by = ? "
                "WHERE id = ? AND status = ?",
                [(DELETED, now, by, i, STORED) for i in clip_ids],
            )

    # -- device status files ---------------------------------------------------------------

    def status_path(self, device: str) -> Path:
        """`<device>.status.json` in the store folder (the device id made safe as a name:
        it is the device's word, not to be trusted with paths)."""
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", device)[:64] or "_"
        return self.folder / (safe + STATUS_SUFFIX)

    def write_status(self, device: str, text: str) -> Path:
        """Replace a device's status file atomically (a temporary name, then a rename)."""
        path = self.status_path(device)
        temp = self.folder / _temp_name(path.name)
        with self._locked():  # so a recovery sweep never takes the temporary file mid-write
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(text)
                os.replace(temp, path)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        return path

    # -- time listened ---------------------------------------------------------------------

    @_index_errors
    def add_listened(
        self,
        device: str,
        models: Sequence[str],
        listened_ms: int,
        uptime_ms: int,
        received: float,
    ) -> int:
        """Add a status's time listened (ms since the device booted) to the device's count
        and to each of its `models`' (those its hello announced); returns the ms added.
        A new boot adds its time whole, any other status the difference from the last one
        (see the module's text)."""
        if not device:
            raise WakewardError("a status needs a device name")
        for name, value in (("time listened", listened_ms), ("uptime", uptime_ms)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise WakewardError(f"status from {device}: bad {name} {value!r}")
        if not math.isfinite(received):
            raise WakewardError(f"status from {device}: bad arrival time {received!r}")
        # the boot this status comes from (an uptime past 2**32 ms reads short: the time
        # listened, never more than the uptime, keeps it at or before the boot)
        booted = received - max(uptime_ms, listened_ms) / _MS_PER_S
        with self._locked(), self._transaction() as db:
            row = db.execute(
                "SELECT listened_ms, uptime_ms, received FROM last_listened WHERE device = ?",
                (device,),
            ).fetchone()
            last = LastListened(*row) if row is not None else None
            new_boot = last is None or rebooted(last, listened_ms, uptime_ms, received)
            added = listened_ms if last is None or new_boot else listened_ms - last.listened_ms
            # a count that starts now: from the boot, or from the last status in this boot
            start = booted if new_boot or last is None else last.received
            db.execute(
                "INSERT INTO last_listened (device, listened_ms, uptime_ms, received) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET "
                "listened_ms = excluded.listened_ms, uptime_ms = excluded.uptime_ms, "
                "received = excluded.received, reboots = reboots + ?",
                (device, listened_ms, uptime_ms, received, int(new_boot)),
            )
            for model in ("", *dict.fromkeys(m for m in models if m)):
                db.execute(
                    "INSERT INTO listened (device, model, listened_ms, since, updated) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (device, model) DO UPDATE SET "
                    "listened_ms = listened_ms + excluded.listened_ms, "
                    "updated = excluded.updated",
                    (device, model, added, start, received),
                )
        return added

    @_index_errors
    def listened(self, device: str | None = None) -> list[Listened]:
        """The time listened added up so far: every device's (model "") and its models',
        or one device's; by device, then model."""
        query = (
            "SELECT l.*, coalesce(d.reboots, 0) AS reboots FROM listened AS l "
            "LEFT JOIN last_listened AS d ON d.device = l.device AND l.model = ''"
        )
        args: tuple[str, ...] = ()
        if device is not None:
            query += " WHERE l.device = ?"
            args = (device,)
        rows = self._db.execute(query + " ORDER BY l.device, l.model", args).fetchall()
        return [
            Listened(
                device=r["device"],
                model=r["model"],
                listened_ms=r["listened_ms"],
                since=r["since"],
                updated=r["updated"],
                reboots=r["reboots"],
            )
            for r in rows
        ]

    # -- retention -------------------------------------------------------------------------

    @_index_errors
    def retention(self) -> Retention:
        rows = dict(self._db.execute("SELECT key, value FROM settings").fetchall())
        age = rows.get(_SETTING_MAX_AGE)
        size = rows.get(_SETTING_MAX_BYTES)
        return Retention(
            max_age_s=float(age) if age is not None else None,
            max_bytes=int(size) if size is not None else None,
        )

    @_index_errors
    def set_retention(self, retention: Retention) -> Retention:
        """Replace the retention setting (None in a field: no limit of that kind)."""
        if retention.max_age_s is not None and retention.max_age_s <= 0:
            raise WakewardError("retention max age: must be more than 0")
        if retention.max_bytes is not None and retention.max_bytes <= 0:
            raise WakewardError("retention max size: must be more than 0")
        values = {_SETTING_MAX_AGE: retention.max_age_s, _SETTING_MAX_BYTES: retention.max_bytes}
        with self._locked(), self._transaction() as db:
            for key, value in values.items():
                if value is None:
                    db.execute("DELETE FROM settings WHERE key = ?", (key,))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                        (key, repr(value)),
                    )
        return self.retention()

    @_index_errors
    def retention_victims(self, *, now: float | None = None) -> list[int]:
        """Ids of the stored clips the retention setting removes now (oldest first)."""
        now = time.time() if now is None else now
        rule = self.retention()
        rows = self._db.execute(
            "SELECT id, received_at, bytes FROM clips WHERE status = ? "
            "ORDER BY received_at DESC, id DESC",
            (STORED,),
        ).fetchall()
        victims = set()
        total = 0
        over = False
        for row in rows:  # newest first: keep the newest that fit, drop the rest
            total += row["bytes"]
            over = over or (rule.max_bytes is not None and total > rule.max_bytes)
            too_old = rule.max_age_s is not None and row["received_at"] < now - rule.max_age_s
            if over or too_old:
                victims.add(row["id"])
        return sorted(victims)

    @_index_errors
    def apply_retention(self, *, now: float | None = None) -> list[Clip]:
        """Delete what the retention setting says must go; returns those clips' records."""
        now = time.time() if now is None else now
        with self._locked():
            return self._delete(self.retention_victims(now=now), "retention", now)


def _check_new_clip(
    pcm: bytes, device: str, device_clip_id: int, score: int, rate_hz: int, pre_roll_ms: int
) -> None:
    if len(pcm) % 2:
        raise WakewardError(f"clip {device_clip_id} from {device}: odd PCM byte count")
    if not device:
        raise WakewardError("a clip needs a device name")
    for name, value in (
        ("device clip id", device_clip_id),
        ("score", score),
        ("rate", rate_hz),
        ("pre-roll", pre_roll_ms),
    ):
        if not isinstance(value, int) or value < 0:
            raise WakewardError(f"clip {device_clip_id} from {device}: bad {name} {value!r}")
    if rate_hz == 0:
        raise WakewardError(f"clip {device_clip_id} from {device}: sample rate 0")
