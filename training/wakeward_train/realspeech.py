"""Recorded human speech from Debian packages: hours of real talkers as negatives, because
TTS alone leaves a model false-accepting on real voices.

The sources (each used only when its package is installed; `detect()` says which are
missing and how to install them):

- flight-of-the-amazon-queen: the game's English voice cast. Its one resource file,
  queen.1c, is a "rebuilt" ScummVM resource file: 'QTBL', a 6-byte version string
  ("CEM10": CD, English), 2 bytes, a compression byte (0 none, 1 MP3, 2 Ogg Vorbis, 3 FLAC),
  a big-endian uint16 entry count, then per entry a 12-byte NUL-padded name, a bundle byte,
  and big-endian uint32 offset and size. The speech entries are .SB files, here MP3 at
  11,025 Hz mono. Their names say who speaks: a talk line is "KKHHHHJn" or "KKHHHHPn" (talk
  file KK, sentence HHHH in hex or SSSS/XXXX, J: Joe, P: the person Joe talks to in that
  file, n: the segment), JOEnnnnn is Joe, Cnnn... a cutscene line (speaker not in the name).
  So the groups are joe, person-KK (one character per talk file) and cutscene-nnn. Sound
  effects (e.g. 116BSSSS.SB) and the few other .SB names are left out. The cast is small
  and actors voice several characters, so the split is by character, not by actor.
- fillets-ng-data-cs, fillets-ng-data-nl: Fish Fillets' Czech and Dutch dialogue
  (sound/LEVEL/LANG/LEVEL-WHO-WORD.ogg, and sound/share/KIND/LANG/...): WHO m is the small
  fish, v the big fish (one actor each per language); the level's other characters are
  grouped by level.
- kajongg: voices/SPEAKER (English) and voices/de/SPEAKER (German) calling tiles.
- ktuberling-data: sounds/LANG/*.ogg|wav, klettres-data: LANG/{alpha,syllab}/*.ogg: words,
  letters and syllables, one group per language folder.

No source has transcripts that this module reads, so real speech cannot be checked for the
wake phrase by text (the TTS negatives can). A real talker saying the phrase is unlikely in
these sources, but not excluded. (queen.1c holds the game's dialogue text in its .DOG and
.CUT entries; it is not used.)

Every utterance is decoded (PyPI soundfile: libsndfile reads MP3, Ogg and WAV), mixed to
mono, resampled to 16 kHz (PyPI soxr), DC removed, trimmed to the stretch within
TRIM_BELOW_PEAK_DB of its loudest 10 ms frame, and dropped when shorter than
MIN_UTTERANCE_S or silent. The corpus is cached in the user cache folder
(~/.cache/wakeward/realspeech/KEY/: corpus.npy, all samples end to end as int16;
index.jsonl, one record per utterance; corpus.json, written last), keyed by FORMAT, the
decoding settings and each source's package version and files. Every file is written
atomically, so an interrupted or concurrent build never leaves a corpus that opens.

Splits: each utterance's group (speaker or character where the source says so, else its
folder) is on one side. Per source, the groups are ordered by a seeded hash and taken into
the held-out split until HELDOUT_SHARE of the source's hours is reached; a source with two
or more groups always has groups on both sides. The held-out groups are parted the same way
(another salt, VALIDATION_SHARE of each source's held-out hours): the validation part chooses
a model's operating point, the test part reports its false accepts, and neither is ever in
the training streams.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import platformdirs
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError
from wakeward.files import write_atomic, write_text_atomic

from wakeward_train import augment, clips, scenes
from wakeward_train.dataset import HELDOUT, TRAIN

FORMAT = "wakeward-realspeech/1"
CORPUS_FILE = "corpus.npy"
INDEX_FILE = "index.jsonl"
DESCRIPTION = "corpus.json"
HELDOUT_SHARE = 0.35  # of each source's hours
VALIDATION = "validation"  # held-out groups that choose a model's operating point
TEST = "test"  # held-out groups its reported recorded-speech figures rest on
HELDOUT_PARTS = (VALIDATION, TEST)
VALIDATION_SHARE = 0.5  # of each source's held-out hours
MIN_UTTERANCE_S = 0.4
TRIM_BELOW_PEAK_DB = 40.0
SILENT_DBFS = clips.SILENT_RMS_DBFS  # an utterance never louder than this is dropped
DISABLE_ENV = "WAKEWARD_REAL_SPEECH"  # set to 0 to leave real speech out
PROGRESS_EVERY_S = 2.0
STALE_PART_S = 3600.0  # a .part file untouched this long was left by a killed build
_SPLIT_SALT = "wakeward-realspeech-split/2"
_PART_SALT = "wakeward-realspeech-part/1"
_HASH_BYTES = 8
_NPY_COUNT_DIGITS = 13  # header room for up to 10**13 samples (a header rewritten in place)
_FULL_SCALE = 32767.0
_AUDIO_SUFFIXES = (".ogg", ".wav")
_FISH = {"m": "small-fish", "v": "big-fish"}

# queen.1c (ScummVM's "rebuilt" resource table)
QUEEN_MAGIC = b"QTBL"
_QUEEN_HEADER = struct.Struct(">4s6s2sBH")  # magic, version, 2 bytes, compression, entries
_QUEEN_ENTRY = struct.Struct(">12sBII")  # name, bundle, offset, size
_QUEEN_BUNDLE = 1  # queen.1c is bundle 1; a rebuilt file has no other
_QUEEN_COMPRESSION = {1: "mp3", 2: "ogg", 3: "flac"}  # 0: raw .SB, not supported
_QUEEN_TALK = re.compile(r"^(\d{2})(?:[0-9A-F]{4}|SSSS|XXXX)([JP])[0-9A-F]$")
_QUEEN_JOE = re.compile(r"^JOE\d{5}$")
_QUEEN_CUTSCENE = re.compile(r"^C(\d+)[A-Z]*_*\d{3}$")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


# -- the sources -------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    package: str
    what: str
    root: Path  # where Debian installs it
    patterns: tuple[str, ...]  # globs under root


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec(
        "flight-of-the-amazon-queen",
        "English game dialogue, MP3 inside queen.1c",
        Path("/usr/share/scummvm/flight-of-the-amazon-queen"),
        ("queen.1c",),
    ),
    SourceSpec(
        "fillets-ng-data-cs",
        "Czech game dialogue",
        Path("/usr/share/games/fillets-ng/sound"),
        ("*/cs/*.ogg", "share/*/cs/*.ogg"),
    ),
    SourceSpec(
        "fillets-ng-data-nl",
        "Dutch game dialogue",
        Path("/usr/share/games/fillets-ng/sound"),
        ("*/nl/*.ogg", "share/*/nl/*.ogg"),
    ),
    SourceSpec(
        "kajongg",
        "English and German tile calls",
        Path("/usr/share/kajongg/voices"),
        ("*/*.ogg", "de/*/*.ogg"),
    ),
    SourceSpec(
        "ktuberling-data",
        "words in many languages",
        Path("/usr/share/ktuberling/sounds"),
        ("*/*.ogg", "*/*.wav"),
    ),
    SourceSpec(
        "klettres-data",
        "letters and syllables in many languages",
        Path("/usr/share/klettres"),
        ("*/alpha/*.ogg", "*/syllab/*.ogg", "*/alpha/*.wav", "*/syllab/*.wav"),
    ),
)
QUEEN = SOURCES[0].package


@dataclass(frozen=True)
class Source:
    spec: SourceSpec
    version: str
    root: Path
    files: tuple[Path, ...]

    @property
    def package(self) -> str:
        return self.spec.package

    def key(self) -> dict[str, Any]:
        """What the cache depends on: the version and the files (names and sizes)."""
        sizes = hashlib.sha256()
        for f in self.files:
            sizes.update(f"{f.relative_to(self.root)}\0{f.stat().st_size}\n".encode())
        return {
            "package": self.package,
            "version": self.version,
            "files": len(self.files),
            "files_sha256": sizes.hexdigest(),
        }


@dataclass(frozen=True)
class Inventory:
    sources: tuple[Source, ...]
    missing: tuple[SourceSpec, ...]
    disabled: bool = False
    problems: tuple[str, ...] = ()  # e.g. a decoder library that is not installed

    @property
    def usable(self) -> bool:
        return bool(self.sources) and not self.disabled and not self.problems

    def describe(self) -> list[str]:
        """Lines for a summary: what is used, what is missing and how to install it."""
        if self.disabled:
            return [f"real speech: left out ({DISABLE_ENV}=0)"]
        lines = [
            f"real speech: {s.package} {s.version} ({s.spec.what}, {len(s.files)} files)"
            for s in self.sources
        ]
        if self.missing:
            names = " ".join(m.package for m in self.missing)
            lines.append(
                f"real speech: not installed: {names} (sudo apt-get install {names}; "
                "flight-of-the-amazon-queen needs the contrib component)"
            )
        lines += [f"real speech: {p}" for p in self.problems]
        if not self.sources:
            lines.append("real speech: no source installed, none is used")
        return lines

    def key(self) -> str:
        """The cache key: the format, the decoding settings and the sources."""
        blob = json.dumps(
            {
                "format": FORMAT,
                "rate_hz": RATE_HZ,
                "trim_below_peak_db": TRIM_BELOW_PEAK_DB,
                "min_utterance_s": MIN_UTTERANCE_S,
                "silent_dbfs": SILENT_DBFS,
                "heldout_share": HELDOUT_SHARE,
                "split_salt": _SPLIT_SALT,
                "sources": [s.key() for s in self.sources],
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def package_version(package: str) -> str | None:
    """The installed version of a Debian package, or None (not installed, or no dpkg)."""
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}\t${db:Status-Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    version, _, status = done.stdout.partition("\t")
    return version if done.returncode == 0 and status == "installed" and version else None


def _files(root: Path, patterns: Iterable[str]) -> tuple[Path, ...]:
    found = {p for pattern in patterns for p in root.glob(pattern) if p.is_file()}
    return tuple(sorted(found))


def _decoder_problems() -> tuple[str, ...]:
    problems = []
    for module in ("soundfile", "soxr"):
        try:
            __import__(module)
        except ImportError:
            problems.append(f"PyPI {module} is not installed (pip install soundfile soxr)")
    return tuple(problems)


def detect(roots: Mapping[str, Path] | None = None) -> Inventory:
    """The installed sources. `roots` (package -> folder laid out as installed, version
    "local") replaces the installed packages, e.g. in tests."""
    disabled = os.environ.get(DISABLE_ENV, "").strip().lower() in ("0", "no", "off", "false")
    found: list[Source] = []
    missing: list[SourceSpec] = []
    for spec in SOURCES:
        if roots is not None:
            root: Path | None = roots.get(spec.package)
            version: str | None = "local" if root is not None else None
        else:
            root, version = spec.root, package_version(spec.package)
        files = _files(root, spec.patterns) if root is not None and version else ()
        if root is not None and version and files:
            found.append(Source(spec, version, root, files))
        else:
            missing.append(spec)
    return Inventory(tuple(found), tuple(missing), disabled, _decoder_problems())


# -- queen.1c ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueenEntry:
    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class QueenTable:
    version: str
    compression: str
    entries: tuple[QueenEntry, ...]


def read_queen_table(path: Path) -> QueenTable:
    """The resource table of a rebuilt queen.1c."""
    try:
        with path.open("rb") as f:
            head = f.read(_QUEEN_HEADER.size)
            if len(head) < _QUEEN_HEADER.size:
                raise WakewardError(f"{path}: too short for a queen.1c resource table")
            magic, version, _, compression, count = _QUEEN_HEADER.unpack(head)
            if magic != QUEEN_MAGIC:
                raise WakewardError(
                    f"{path}: not a rebuilt Flight of the Amazon Queen resource file "
                    f"(starts {magic!r}, not {QUEEN_MAGIC!r})"
                )
            table = f.read(count * _QUEEN_ENTRY.size)
            size = path.stat().st_size
    except OSError as e:
        raise WakewardError(f"{path}: cannot read ({e.strerror})") from None
    if compression not in _QUEEN_COMPRESSION:
        raise WakewardError(
            f"{path}: speech compression {compression} is not supported (MP3, Ogg or FLAC "
            "rebuilds only, as Debian's flight-of-the-amazon-queen)"
        )
    if len(table) < count * _QUEEN_ENTRY.size:
        raise WakewardError(f"{path}: the resource table ends early ({count} entries)")
    entries = []
    for name_raw, bundle, offset, length in _QUEEN_ENTRY.iter_unpack(table):
        name = name_raw.split(b"\0", 1)[0].decode("ascii", "replace")
        if bundle != _QUEEN_BUNDLE:
            continue
        if offset + length > size:
            raise WakewardError(
                f"{path}: entry {name} ({offset}+{length} bytes) is past the end ({size})"
            )
        entries.append(QueenEntry(name, offset, length))
    return QueenTable(
        version.split(b"\0", 1)[0].decode("ascii", "replace"),
        _QUEEN_COMPRESSION[compression],
        tuple(entries),
    )


def queen_group(name: str) -> str | None:
    """Who speaks a queen.1c entry (joe, person-KK, cutscene-N), or None when the entry is
    not speech (sound effects, other files)."""
    stem, dot, ext = name.upper().partition(".")
    if ext != "SB":
        return None
    talk = _QUEEN_TALK.match(stem)
    if talk:
        return "joe" if talk.group(2) == "J" else f"person-{talk.group(1)}"
    if _QUEEN_JOE.match(stem):
        return "joe"
    cut = _QUEEN_CUTSCENE.match(stem)
    if cut:
        return f"cutscene-{int(cut.group(1))}"
    return None


# -- what each file is -------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One utterance to decode: a file, or a queen.1c entry."""

    source: str
    name: str  # the entry name, or the path under the source's root
    group: str  # speaker (or character, or folder), unique across sources
    language: str
    path: Path
    offset: int = 0
    size: int = -1  # -1: the whole file


def _file_group(package: str, rel: Path) -> tuple[str, str]:
    """(group, language) of a file under its source's root."""
    parts = rel.parts
    if package.startswith("fillets-ng-data-"):
        level, language = parts[-3], parts[-2]
        words = rel.stem.split("-")
        who = next((w for w in words[:2] if w in _FISH), None)
        return (_FISH[who] if who else f"level-{level}"), language
    if package == "kajongg":
        return ("/".join(parts[:-1]), parts[0] if len(parts) > 2 else "en")
    language = parts[0].split("@")[0]  # sr@latin: the same speaker as sr
    return language, language.split("_")[0]


def items(source: Source) -> list[Item]:
    """Every utterance a source holds, in a fixed order."""
    out = []
    if source.package == QUEEN:
        for path in source.files:
            table = read_queen_table(path)
            for e in table.entries:
                group = queen_group(e.name)
                if group is not None:
                    key = f"{source.package}:{group}"
                    out.append(Item(source.package, e.name, key, "en", path, e.offset, e.size))
        return out
    for path in source.files:
        rel = path.relative_to(source.root)
        group, language = _file_group(source.package, rel)
        out.append(
            Item(source.package, rel.as_posix(), f"{source.package}:{group}", language, path)
        )
    return out


# -- decoding ----------------------------------------------------------------------------


def _read_bytes(item: Item) -> bytes:
    try:
        with item.path.open("rb") as f:
            f.seek(item.offset)
            return f.read() if item.size < 0 else f.read(item.size)
    except OSError as e:
        raise WakewardError(f"{item.path}: cannot read ({e.strerror})") from None


def decode(item: Item) -> np.ndarray:
    """The utterance as 16 kHz mono float in [-1, 1] (untrimmed)."""
    import soundfile
    import soxr

    where = item.path if item.size < 0 else f"{item.path} entry {item.name}"
    try:
        audio, rate_hz = soundfile.read(io.BytesIO(_read_bytes(item)), dtype="float32")
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as e:
        raise WakewardError(f"{where}: cannot decode ({e})") from None
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate_hz != RATE_HZ and len(audio):
        audio = soxr.resample(audio, rate_hz, RATE_HZ)
    return np.asarray(audio, dtype=np.float64)


def trimmed(audio: np.ndarray) -> np.ndarray | None:
    """int16 speech trimmed of the quiet around it; None when too short or silent."""
    if len(audio) == 0:
        return None
    x = np.round(np.clip(audio - audio.mean(), -1.0, 1.0) * _FULL_SCALE).astype(np.int16)
    start, end = clips.speech_bounds(x, TRIM_BELOW_PEAK_DB)
    x = x[start:end]
    if len(x) < MIN_UTTERANCE_S * RATE_HZ:
        return None
    levels = clips.frame_levels_dbfs(x)
    if len(levels) == 0 or levels.max() < SILENT_DBFS:
        return None
    return x


# -- splits ------------------------------------------------------------------------------


def _group_hash(group: str, salt: str = _SPLIT_SALT) -> int:
    digest = hashlib.sha256(f"{salt}\0{group}".encode()).digest()
    return int.from_bytes(digest[:_HASH_BYTES], "big")


def _assign(
    seconds_by_group: Mapping[str, float], share: float, salt: str, taken: str, rest: str
) -> dict[str, str]:
    """Walking the groups in seeded-hash order, a group is `taken` when that brings the
    taken seconds closer to `share` of the total, else `rest`; both sides get a group when
    there are two or more."""
    order = sorted(seconds_by_group, key=lambda g: (_group_hash(g, salt), g))
    target = share * sum(seconds_by_group.values())
    out = dict.fromkeys(order, rest)
    held = 0.0
    for g in order:
        if held + seconds_by_group[g] / 2 < target:
            out[g] = taken
            held += seconds_by_group[g]
    if len(order) >= 2 and taken not in out.values():
        out[order[0]] = taken
    if len(order) >= 2 and rest not in out.values():
        out[order[-1]] = rest
    return out


def assign_splits(
    seconds_by_group: Mapping[str, float], share: float = HELDOUT_SHARE
) -> dict[str, str]:
    """Each group's split for one source (about `share` of its seconds held out)."""
    return _assign(seconds_by_group, share, _SPLIT_SALT, HELDOUT, TRAIN)


def assign_parts(
    seconds_by_group: Mapping[str, float], share: float = VALIDATION_SHARE
) -> dict[str, str]:
    """Each held-out group's part for one source (about `share` of its seconds to the
    validation part, the rest to the test part), by its own salt."""
    return _assign(seconds_by_group, share, _PART_SALT, VALIDATION, TEST)


# -- the corpus --------------------------------------------------------------------------


@dataclass(frozen=True)
class RealUtterance:
    samples: np.ndarray  # int16 at 16 kHz, trimmed to the speech
    record: dict[str, Any]

    @property
    def group(self) -> str:
        return str(self.record["group"])

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE_HZ


@dataclass
class Corpus:
    path: Path
    info: dict[str, Any]
    records: list[dict[str, Any]]
    samples: np.ndarray  # int16, all utterances end to end (memory-mapped)
    splits: dict[str, str] = field(default_factory=dict)
    parts: dict[str, str] = field(default_factory=dict)  # held-out group: validation or test

    def __post_init__(self) -> None:
        self.splits = {r["group"]: r["split"] for r in self.records}
        held: dict[str, Counter[str]] = {}
        for r in self.records:
            if r["split"] == HELDOUT:
                held.setdefault(r["source"], Counter())[r["group"]] += r["samples"]
        for groups in held.values():
            self.parts.update(assign_parts({g: n / RATE_HZ for g, n in groups.items()}))

    @property
    def key(self) -> str:
        return str(self.info["key"])

    def split_of(self, group: str) -> str:
        if group not in self.splits:
            raise WakewardError(f"{self.path}: no real-speech group {group!r}")
        return self.splits[group]

    def part_of(self, group: str) -> str:
        """A held-out group's part: VALIDATION or TEST."""
        if group not in self.parts:
            raise WakewardError(f"{self.path}: no held-out real-speech group {group!r}")
        return self.parts[group]

    def utterances(self, split: str | None = None, part: str | None = None) -> list[RealUtterance]:
        """The utterances of `split` (all with None), in the corpus's order; of the held-out
        split, only those of `part` (VALIDATION or TEST) when given."""
        if part is not None and part not in HELDOUT_PARTS:
            raise WakewardError(f"real speech part {part!r}: must be {VALIDATION} or {TEST}")
        if part is not None and split != HELDOUT:
            raise WakewardError(f"real speech part {part!r}: only the {HELDOUT} split has parts")
        return [
            RealUtterance(self.samples[r["offset"] : r["offset"] + r["samples"]], r)
            for r in self.records
            if (split is None or r["split"] == split)
            and (part is None or self.parts[r["group"]] == part)
        ]

    def summary(self) -> dict[str, Any]:
        """Hours, utterances, groups and languages per source and split."""
        out: dict[str, Any] = {}
        for r in self.records:
            src = out.setdefault(r["source"], {})
            side = src.setdefault(
                r["split"], {"hours": 0.0, "utterances": 0, "groups": set(), "languages": set()}
            )
            side["hours"] += r["samples"] / RATE_HZ / 3600
            side["utterances"] += 1
            side["groups"].add(r["group"])
            side["languages"].add(r["language"])
        for src in out.values():
            for side in src.values():
                side["hours"] = round(side["hours"], 3)
                side["groups"] = len(side["groups"])
                side["languages"] = sorted(side["languages"])
        return {
            "key": self.key,
            "sources": self.info["sources"],
            "hours": {s: round(self.hours(s), 3) for s in (TRAIN, HELDOUT)},
            "heldout_parts": {
                part: round(sum(u.seconds for u in self.utterances(HELDOUT, part)) / 3600, 3)
                for part in HELDOUT_PARTS
            },
            "by_source": out,
            "decode_s": self.info.get("decode_s"),
            "dropped": self.info.get("dropped"),
        }

    def hours(self, split: str | None = None) -> float:
        n = sum(r["samples"] for r in self.records if split is None or r["split"] == split)
        return n / RATE_HZ / 3600


def cache_root() -> Path:
    return Path(platformdirs.user_cache_dir("wakeward")) / "realspeech"


def open_corpus(folder: Path, key: str) -> Corpus | None:
    """The cached corpus in `folder` if it is whole and has `key`; None otherwise."""
    try:
        info = json.loads((folder / DESCRIPTION).read_text(encoding="utf-8"))
        if not isinstance(info, dict) or (info.get("format"), info.get("key")) != (FORMAT, key):
            return None
        lines = (folder / INDEX_FILE).read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        samples = np.load(folder / CORPUS_FILE, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if samples.dtype != np.int16 or samples.ndim != 1 or len(records) != info.get("utterances"):
        return None
    if len(samples) != info.get("samples") or (
        records and records[-1]["offset"] + records[-1]["samples"] != len(samples)
    ):
        return None
    return Corpus(folder, info, records, samples)


def ensure_corpus(
    inventory: Inventory | None = None,
    *,
    cache_dir: Path | None = None,
    progress: Progress = _quiet,
) -> Corpus | None:
    """The decoded corpus of the installed sources, from the cache or built into it; None
    when no source is usable (see `detect().describe()`)."""
    inv = inventory if inventory is not None else detect()
    if not inv.usable:
        return None
    key = inv.key()
    folder = (cache_dir or cache_root()) / key
    cached = open_corpus(folder, key)
    if cached is not None:
        return cached
    return build_corpus(inv, folder, progress)


def _npy_header(count: int) -> bytes:
    """The .npy header of an int16 vector of `count` samples, padded to the same length for
    every count up to 10**_NPY_COUNT_DIGITS (so it can be rewritten in place)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.dtype(np.int16).str, "fortran_order": False, "shape": (count,)}
    )
    return buf.getvalue()


_NPY_HEADER_BYTES = len(_npy_header(10**_NPY_COUNT_DIGITS - 1))


@dataclass
class _Decoded:
    records: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


def _decode_all(inv: Inventory, out: BinaryIO, progress: Progress) -> _Decoded:
    """Decode every source's utterances into `out` (after room for the header)."""
    done = _Decoded()
    work = [(s, it) for s in inv.sources for it in items(s)]
    t0 = last = time.monotonic()
    for i, (source, item) in enumerate(work):
        try:
            x = trimmed(decode(item))
        except WakewardError as e:  # one damaged file costs its utterance, not the corpus
            progress(f"real speech: left out: {e}")
            x = None
        if x is None:
            done.dropped[source.package] += 1
            continue
        out.write(x.astype("<i2").tobytes())
        done.records.append(
            {
                "source": item.source,
                "name": item.name,
                "group": item.group,
                "language": item.language,
                "offset": done.samples,
                "samples": len(x),
            }
        )
        done.samples += len(x)
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S:
            last = now
            progress(
                f"real speech: decoded {i + 1}/{len(work)} ({source.package}), "
                f"{done.samples / RATE_HZ / 3600:.2f} h, {now - t0:.0f} s"
            )
    return done


def _with_splits(records: list[dict[str, Any]]) -> None:
    by_source: dict[str, Counter[str]] = {}
    for r in records:
        by_source.setdefault(r["source"], Counter())[r["group"]] += r["samples"]
    splits: dict[str, str] = {}
    for groups in by_source.values():
        splits.update(assign_splits({g: n / RATE_HZ for g, n in groups.items()}))
    for r in records:
        r["split"] = splits[r["group"]]


def _remove_stale_parts(folder: Path) -> None:
    """Temp files of builds that were killed (a running build keeps writing its own)."""
    now = time.time()
    for part in folder.glob(".*.part"):
        try:
            if now - part.stat().st_mtime > STALE_PART_S:
                part.unlink()
        except OSError:
            continue


def build_corpus(inv: Inventory, folder: Path, progress: Progress = _quiet) -> Corpus:
    """Decode the sources into `folder` (each file atomically, corpus.json last)."""
    t0 = time.monotonic()
    (folder / DESCRIPTION).unlink(missing_ok=True)
    _remove_stale_parts(folder)
    names = ", ".join(s.package for s in inv.sources)
    progress(f"real speech: decoding {names} into {folder} (once)")
    done = _Decoded()

    def write(f: BinaryIO) -> None:
        nonlocal done
        f.write(b"\0" * _NPY_HEADER_BYTES)
        done = _decode_all(inv, f, progress)
        header = _npy_header(done.samples)
        if len(header) != _NPY_HEADER_BYTES:
            raise WakewardError(f"{folder / CORPUS_FILE}: {done.samples} samples is too many")
        f.seek(0)
        f.write(header)

    write_atomic(folder / CORPUS_FILE, write)
    _with_splits(done.records)
    write_text_atomic(
        folder / INDEX_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in done.records)
    )
    info = {
        "format": FORMAT,
        "key": inv.key(),
        "sources": {s.package: s.version for s in inv.sources},
        "utterances": len(done.records),
        "samples": done.samples,
        "hours": round(done.samples / RATE_HZ / 3600, 4),
        "dropped": dict(sorted(done.dropped.items())),
        "decode_s": round(time.monotonic() - t0, 1),
    }
    write_text_atomic(folder / DESCRIPTION, json.dumps(info, indent=1) + "\n")
    corpus = open_corpus(folder, inv.key())
    if corpus is None:
        raise WakewardError(f"{folder}: the real-speech corpus just written cannot be read back")
    progress(
        f"real speech: {corpus.hours():.2f} h in {len(corpus.records)} utterances "
        f"({corpus.hours(HELDOUT):.2f} h held out) in {info['decode_s']:.0f} s"
    )
    return corpus


# -- the module-level shortcuts ----------------------------------------------------------


def load(split: str, corpus: Corpus | None = None) -> list[RealUtterance]:
    """The installed real utterances of `split` (train or heldout); [] when none."""
    if split not in (TRAIN, HELDOUT):
        raise WakewardError(f"real speech split {split!r}: must be {TRAIN} or {HELDOUT}")
    got = corpus if corpus is not None else ensure_corpus()
    return got.utterances(split) if got is not None else []


def split_of(group: str, corpus: Corpus | None = None) -> str:
    """Which split a group (e.g. "kajongg:de/male1") is in."""
    got = corpus if corpus is not None else ensure_corpus()
    if got is None:
        raise WakewardError("no real speech source is installed: " + "; ".join(detect().describe()))
    return got.split_of(group)


def summary(corpus: Corpus | None = None) -> dict[str, Any] | None:
    got = corpus if corpus is not None else ensure_corpus()
    return got.summary() if got is not None else None


# -- the held-out real-speech stream -----------------------------------------------------

BACKGROUND_SHARES = {"room_tone": 0.4, "noise": 0.35, "music": 0.25}
ROOM_TONE_KINDS = ("pink", "brown")


@dataclass
class StreamComposition:
    """What a real-speech stream is made of."""

    utterances: int = 0
    speech_s: float = 0.0
    backgrounds: Counter[str] = field(default_factory=Counter)
    noises: Counter[str] = field(default_factory=Counter)
    reverberant_s: float = 0.0
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "utterances": self.utterances,
            "speech_s": round(self.speech_s, 1),
            "backgrounds": dict(sorted(self.backgrounds.items())),
            "noises": dict(sorted(self.noises.items())),
            "reverberant_s": round(self.reverberant_s, 1),
            "seconds": round(self.seconds, 3),
        }


def _db(x: float) -> float:
    return float(10 ** (x / 20))


def _scene_talk(
    run: Sequence[np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Utterances one after another with natural pauses: (audio, speech mask)."""
    lo, hi = scenes.PAUSE_RANGE_S
    gaps = [int(rng.uniform(lo, hi) * RATE_HZ) for _ in range(len(run) + 1)]
    n = sum(len(u) for u in run) + sum(gaps)
    x = np.zeros(n)
    mask = np.zeros(n, bool)
    at = gaps[0]
    for u, gap in zip(run, gaps[1:], strict=True):
        gain = _db(float(rng.uniform(*scenes.UTTERANCE_GAIN_RANGE_DB)))
        x[at : at + len(u)] = scenes.unit(u.astype(np.float64)) * gain
        mask[at : at + len(u)] = True
        at += len(u) + gap
    return x, mask


def _background(
    x: np.ndarray, mask: np.ndarray, rng: np.random.Generator, comp: StreamComposition
) -> np.ndarray:
    """x at a talking level with room tone, noise or music under it."""
    kinds = sorted(BACKGROUND_SHARES)
    p = np.array([BACKGROUND_SHARES[k] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
    comp.backgrounds[kind] += 1
    level = float(rng.uniform(*scenes.TALK_LEVEL_RANGE_DBFS))
    x = x * (augment.FULL_SCALE * _db(level) / np.sqrt(augment.power(x[mask])))
    speech_power = augment.power(x[mask])
    if kind == "room_tone":
        tone = scenes.noise(str(rng.choice(ROOM_TONE_KINDS)), len(x), rng)
        return x + tone * augment.FULL_SCALE * _db(float(rng.uniform(*scenes.ROOM_TONE_RANGE_DBFS)))
    if kind == "noise":
        name = scenes.NOISES[int(rng.integers(len(scenes.NOISES)))]
        comp.noises[name] += 1
        bed, snr_db = (
            scenes.noise(name, len(x), rng),
            float(rng.uniform(*scenes.SPEECH_SNR_RANGE_DB)),
        )
    else:
        bed, snr_db = scenes.chords(len(x), rng), float(rng.uniform(*scenes.TV_MUSIC_SNR_RANGE_DB))
    return x + bed * np.sqrt(speech_power / 10 ** (snr_db / 10))


def _reverberant(x: np.ndarray, rng: np.random.Generator, comp: StreamComposition) -> np.ndarray:
    if rng.random() >= scenes.REVERB_PROBABILITY:
        return x
    ir = augment.room_impulse_response(
        float(rng.uniform(*scenes.RT60_RANGE_S)),
        rng,
        drr_db=float(rng.uniform(*scenes.DRR_RANGE_DB)),
    )
    comp.reverberant_s += len(x) / RATE_HZ
    return augment.reverberate(x, ir)


def _fade(x: np.ndarray) -> np.ndarray:
    k = min(len(x) // 2, int(scenes.FADE_S * RATE_HZ))
    if k:
        ramp = np.linspace(0.0, 1.0, k)
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    return x


def compose_stream(
    utterances: Sequence[np.ndarray], rng: np.random.Generator, comp: StreamComposition
) -> Iterator[np.ndarray]:
    """Every utterance once, in the given order, as scenes of SCENE_RANGE_S: a talker's
    utterances with pauses, at a talking level, in a room now and then, over room tone,
    noise or music at an SNR (int16 at 16 kHz, scene by scene)."""
    i = 0
    while i < len(utterances):
        want = int(rng.uniform(*scenes.SCENE_RANGE_S) * RATE_HZ)
        run = [utterances[i]]
        i += 1
        while i < len(utterances) and sum(len(u) for u in run) + len(utterances[i]) <= want:
            run.append(utterances[i])
            i += 1
        x, mask = _scene_talk(run, rng)
        x = _background(_reverberant(x, rng, comp), mask, rng, comp)
        comp.utterances += len(run)
        comp.speech_s += sum(len(u) for u in run) / RATE_HZ
        comp.seconds += len(x) / RATE_HZ
        yield scenes.to_int16(_fade(x), rng)
