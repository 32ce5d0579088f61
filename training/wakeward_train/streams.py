"""Long held-out negative audio for false accepts per hour: hours of everyday sounds made
from held-out material only, as the device's features, built once per dataset and cached.

What goes in (all seeded by the dataset's seed, so the same dataset gives the same bytes):

- a pool of unique speech: held-out voices only (the dataset's held-out speakers,
  dataset.json `summary.speakers.heldout`, every installed voice of theirs, in the dataset's
  engine shares, rate and pitch ranges), saying texts that training never said: the
  sentences of data/eval_sentences.txt (none is in sentences.txt) and new word salads from
  the dataset's word list, half and half; a text whose phonemes contain the wake phrase's is
  dropped (the same check as the dataset's ordinary speech), and so is any text a training
  clip said. The pool is UNIQUE_SPEECH_SHARE of the hours, between 0.5 and 45 minutes;
- scenes.py composes the hours from it: speech, conversation, TV-like speech over music,
  babble, music, noises, room tone and silence, each use of an utterance at its own speed
  and gain, with reverberation and noise at several SNRs;
- the features are computed as the device computes them, one continuous frontend run per
  chunk of at most CHUNK_HOURS (a device listening for an hour):
  `wakeward.features.StreamingFeatures` feeds
  pymicro-features scene by scene exactly as `features.clip_features` feeds a whole
  recording, so the frames are the same bits without holding an hour of audio;
- LEAD_INS short backgrounds (room tone and noise, 3 s) that the evaluation puts before
  each held-out positive clip (evaluate.py).

The cache, in the dataset folder: eval_streams/seed<S>-<H>h/ holds chunk-NNN.npy (int8
(frames, 40) each), lead_ins.npy (int8 (LEAD_INS, frames, 40)), pool.jsonl (each unique
utterance: voice, speaker, text, prosody, seconds) and streams.json (format, seed, hours,
the dataset's dataset.json sha256, unique speech minutes, composition, voices, times),
written last: a folder without it, or one whose streams.json does not match the dataset,
seed and hours, is built again. Any model evaluated on the dataset (ours, or
pymicro-wakeword's) then hears exactly the same audio.

Cost on this machine (2 shared cores): see README (training/README.md, evaluation).

The same machinery, with `split=TRAIN`, makes the trainer's long negative audio
(train_streams/, TRAIN_STREAM_HOURS): the training speakers' voices saying the training
sentences (data/sentences.txt and GENERATED_SENTENCES of talk.py's grammar) and word salads,
TRAIN_UNIQUE_SPEECH_SHARE of the hours unique speech, composed into everyday scenes with
other seeds. Training windows cut from it teach the model what hours of ordinary sound look like,
which short clips alone do not (train.py). Held-out voices and evaluation sentences never
appear in it.

Real recorded speech (realspeech.py: Debian game and education packages, when installed):
the training streams make REAL_SPEECH_SHARE of their REAL_BLOCK_S blocks from a seeded draw
of the real training split's utterances (REAL_POOL_MINUTES_PER_HOUR) instead of TTS, with
the same scenes, levels, rooms and noise; streams.json `real_speech` says which corpus,
sources and minutes went in (or why none did). `ensure_real` builds a separate held-out set,
real_streams/seed<S>-all-<part>/ (or -<H>h-): every held-out real utterance of the part once,
in a seeded order, scene by scene over room tone, noise or music, for a real-speech FA/h; it
is evaluated like the streams above. The validation part, which chooses the operating point,
is composed VALIDATION_COMPOSITIONS ways (each pass another order, pauses, rooms,
backgrounds and levels; folder suffix -x<K>), so that the choice does not rest on one or two
false accepts. Real speech has no transcripts, so unlike the TTS texts it is not checked
for the wake phrase.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from wakeward import features as wf
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError
from wakeward.files import write_atomic, write_text_atomic
from wakeward.wording import plural

from wakeward_train import __version__, clips, dataset, phonemes, realspeech, scenes, talk, voices
from wakeward_train.dataset import HELDOUT, TRAIN, Dataset
from wakeward_train.features import NUM_CHANNELS, load_split

FORMAT = "wakeward-eval-streams/1"
TRAIN_FORMAT = "wakeward-train-streams/3"  # 2: talk.py sentences; 3: real speech (realspeech.py)
REAL_FORMAT = "wakeward-real-streams/2"  # 2: the held-out groups parted (realspeech.py)
REAL_FOLDER = "real_streams"
# the recorded validation part is 2.5 h: composed once, <= 0.5 FA/h allows one false accept
# there and the chosen point rests on it; composed 4 ways it is 10 h and allows 5
VALIDATION_COMPOSITIONS = 4
REAL_SPEECH_SHARE = 0.3  # of the training streams' time: scenes made from real recorded speech
REAL_BLOCK_S = 60.0  # the training streams choose real or TTS speech per block of this long
REAL_POOL_MINUTES_PER_HOUR = 60.0  # real training speech drawn per hour of training stream
FOLDER = "eval_streams"
TRAIN_FOLDER = "train_streams"
DESCRIPTION = "streams.json"
POOL_LIST = "pool.jsonl"
LEAD_INS_FILE = "lead_ins.npy"
EVAL_SENTENCES = Path(__file__).with_name("data") / "eval_sentences.txt"
DEFAULT_HOURS = 3.0  # a full run's negative audio (about 4 min to build, see the README)
QUICK_HOURS = 0.04  # 2.4 minutes, for --quick
CHUNK_HOURS = 1.0  # one continuous frontend and model run each
UNIQUE_SPEECH_SHARE = 0.25  # unique speech minutes per minute of stream
MIN_UNIQUE_SPEECH_MINUTES = 0.5
MAX_UNIQUE_SPEECH_MINUTES = 45.0
TRAIN_UNIQUE_SPEECH_SHARE = 0.5  # the training streams: less reuse of each utterance
MAX_TRAIN_UNIQUE_SPEECH_MINUTES = 120.0
GENERATED_SENTENCES = 5000  # talk.py sentences beside data/sentences.txt, training streams
SALAD_SHARE = 0.5  # of the texts: word salads, the rest sentences
SYNTH_BATCH = 64  # TTS requests at a time
EXPECTED_UTTERANCE_S = 2.5  # to size the last batch
LEAD_INS = 32
LEAD_IN_S = 3.0
LEAD_IN_SHARES = {"quiet": 0.5, "noise": 0.5}
TEXT_ROUNDS = 100  # attempts to fill a batch of texts without the phrase's sounds
_SALT = 7311  # the streams' generators: [seed, _SALT, purpose, index]
_TRAIN_SALT = 7312  # ... of the training streams
_PURPOSES = {
    "texts": 1,
    "voices": 2,
    "chunk": 3,
    "lead_in": 4,
    "talk": 5,
    "real_blocks": 6,
    "real_pool": 7,
    "real_order": 8,
    "real_chunk": 9,
}
Say = Callable[[str], None]


def _rng(seed: int, purpose: str, index: int, split: str = HELDOUT) -> np.random.Generator:
    salt = _SALT if split == HELDOUT else _TRAIN_SALT
    return np.random.default_rng([seed, salt, _PURPOSES[purpose], index])


def _split_name(split: str) -> str:
    return "held-out" if split == HELDOUT else "training"


def _quiet(_: str) -> None:
    return None


# -- what the streams are made of --------------------------------------------------------


def unique_speech_minutes(hours: float, split: str = HELDOUT) -> float:
    if split == HELDOUT:
        share, most = UNIQUE_SPEECH_SHARE, MAX_UNIQUE_SPEECH_MINUTES
    else:
        share, most = TRAIN_UNIQUE_SPEECH_SHARE, MAX_TRAIN_UNIQUE_SPEECH_MINUTES
    return min(most, max(MIN_UNIQUE_SPEECH_MINUTES, share * hours * 60))


def stream_format(split: str) -> str:
    return FORMAT if split == HELDOUT else TRAIN_FORMAT


def heldout_voices(data: Dataset) -> list[voices.Voice]:
    """Every installed voice of the dataset's held-out speakers."""
    return split_voices(data, HELDOUT)


def split_voices(
    data: Dataset, split: str, without_engine: str | None = None
) -> list[voices.Voice]:
    """Every installed voice of the dataset's speakers of `split`; with `without_engine`,
    none of that engine's voices nor any voice of a person that engine speaks as (a
    leave-one-engine-out fold's training audio, folds.py)."""
    summary = data.info.get("summary") or {}
    held = set((summary.get("speakers") or {}).get(split) or [])
    where = data.path / dataset.SUMMARY
    if not held:
        raise WakewardError(
            f"{where}: no {_split_name(split)} speakers (the evaluation speaks with held-out "
            "voices only, training with training voices; build the dataset with several "
            "voices of each engine)"
        )
    config = data.info.get("config") or {}
    engines = tuple(config.get("engines") or voices.ENGINES)
    inv = voices.detect(
        espeak_variants=bool(config.get("espeak_variants", True)),
        engines=engines,
        piper_dirs=[Path(p) for p in config.get("piper_voices") or ()],
    )
    found = [v for v in inv.voices if v.speaker in held]
    if without_engine is not None:
        gone = {v.speaker for v in inv.voices if v.engine == without_engine}
        found = [v for v in found if v.engine != without_engine and v.speaker not in gone]
    if not found:
        raise WakewardError(
            f"{where}: none of the {_split_name(split)} speakers' voices is installed here "
            f"({', '.join(sorted(held)[:5])}, ...)"
        )
    return found


def _phrase_phonemes(data: Dataset) -> phonemes.Phonemes:
    stored = data.info.get("phrase_phonemes")
    if isinstance(stored, str) and stored.split():
        return tuple(stored.split())
    phrase = (data.info.get("summary") or {}).get("phrase", "")
    if not phrase.strip():
        raise WakewardError(f"{data.path / dataset.SUMMARY}: no wake phrase recorded")
    return phonemes.phonemize([phrase])[0]


@dataclass(frozen=True)
class _Texts:
    sentences: list[str]
    words: list[str]
    target: phonemes.Phonemes
    exclude: frozenset[str]


def _text_source(data: Dataset, split: str = HELDOUT, seed: int = 0) -> _Texts:
    """Evaluation texts (never said in training), or for the training streams the training
    sentences and GENERATED_SENTENCES from talk.py (never the evaluation ones)."""
    config = data.info.get("config") or {}
    words = config.get("words")
    lexicon = phonemes.load_lexicon(Path(words) if words else None)
    if split == HELDOUT:
        said = (r.text for r in data.records if r.split == TRAIN and r.text)
        exclude = frozenset(t.strip().lower() for t in said)
        lines = phonemes.sentence_lines(EVAL_SENTENCES)
    else:
        evaluation = phonemes.sentence_lines(EVAL_SENTENCES)
        exclude = frozenset(t.strip().lower() for t in evaluation)
        generated = talk.sentences(GENERATED_SENTENCES, _rng(seed, "talk", 0, split), evaluation)
        lines = phonemes.sentence_lines(phonemes.SENTENCES) + generated
    sentences = [s for s in lines if s.lower() not in exclude]
    usable = [lexicon.words[i] for i in np.flatnonzero(lexicon.spoken)]
    return _Texts(sentences, usable, _phrase_phonemes(data), exclude)


def eval_texts(count: int, source: _Texts, rng: np.random.Generator) -> list[str]:
    """`count` texts: sentences and word salads, none with the phrase's sounds inside and
    none that a training clip said."""
    out: list[str] = []
    lo, hi = dataset.SALAD_WORDS
    for _ in range(TEXT_ROUNDS):
        if len(out) >= count:
            break
        batch = []
        for _ in range(count - len(out)):
            if (rng.random() < SALAD_SHARE or not source.sentences) and source.words:
                n = int(rng.integers(lo, hi + 1))
                words = [source.words[int(rng.integers(len(source.words)))] for _ in range(n)]
                batch.append(" ".join(words).capitalize() + ".")
            elif source.sentences:
                batch.append(source.sentences[int(rng.integers(len(source.sentences)))])
        if not batch:
            break
        inside = phonemes.distances(source.target, phonemes.phonemize(batch), "target_inside")
        out += [
            t
            for t, d in zip(batch, inside, strict=True)
            if d > 0 and t.strip().lower() not in source.exclude
        ]
    if len(out) < count:
        raise WakewardError(
            "cannot find evaluation texts without the wake phrase's sounds (word list too small?)"
        )
    return out[:count]


@dataclass
class SpeechPool:
    utterances: list[scenes.Utterance]
    records: list[dict[str, Any]]
    failures: list[str]

    @property
    def seconds(self) -> float:
        return sum(len(u.samples) for u in self.utterances) / RATE_HZ


def speech_pool(
    data: Dataset,
    minutes: float,
    seed: int,
    say: Say = _quiet,
    split: str = HELDOUT,
    without_engine: str | None = None,
) -> SpeechPool:
    """At least `minutes` of unique speech by `split`'s speakers (trimmed to the speech)."""
    held = split_voices(data, split, without_engine)
    config = data.info.get("config") or {}
    shares = config.get("engine_shares") or dataset.DEFAULT_ENGINE_SHARES
    speed_range = tuple(config.get("speed_range") or (1.0, 1.0))
    pitch_range = tuple(config.get("pitch_range") or (1.0, 1.0))
    source = _text_source(data, split, seed)
    pool = SpeechPool([], [], [])
    want_s = minutes * 60
    batch = 0
    while pool.seconds < want_s:
        need = int(math.ceil((want_s - pool.seconds) / EXPECTED_UTTERANCE_S))
        count = min(SYNTH_BATCH, max(1, need))
        texts = eval_texts(count, source, _rng(seed, "texts", batch, split))
        vrng = _rng(seed, "voices", batch, split)
        chosen = dataset.voice_sequence(held, count, shares, vrng)
        requests = []
        for v, text in zip(chosen, texts, strict=True):
            speed = round(float(vrng.uniform(*speed_range)), 4)
            pitch = round(float(vrng.uniform(*pitch_range)), 4) if v.pitch_control else 1.0
            requests.append(voices.SpeechRequest(v, text, voices.Prosody(speed, pitch)))
        got = 0
        for req, audio in zip(requests, voices.speak_all(requests), strict=True):
            if isinstance(audio, WakewardError):
                pool.failures.append(str(audio))
                continue
            start, end = clips.speech_bounds(audio, dataset.TTS_TRIM_DB)
            pool.utterances.append(scenes.Utterance(audio[start:end], req.voice.id))
            pool.records.append(
                {
                    "voice": req.voice.id,
                    "speaker": req.voice.speaker,
                    "text": req.text,
                    "prosody": {"speed": req.prosody.speed, "pitch": req.prosody.pitch},
                    "seconds": round((end - start) / RATE_HZ, 3),
                }
            )
            got += 1
        if not got:
            first = pool.failures[-1] if pool.failures else "no voice spoke"
            raise WakewardError(
                f"no {_split_name(split)} voice could speak the stream texts: {first}"
            )
        batch += 1
        say(
            f"{_stage(split)}: unique {_split_name(split)} speech so far "
            f"{pool.seconds / 60:.1f} min (wanted: {minutes:.1f})"
        )
    return pool


def lead_in(
    seed: int, index: int, pool: Sequence[scenes.Utterance], split: str = HELDOUT
) -> np.ndarray:
    """One background to put before a positive clip: LEAD_IN_S of room tone or noise, as
    features."""
    rng = _rng(seed, "lead_in", index, split)
    audio, _ = scenes.compose(LEAD_IN_S, rng, pool, LEAD_IN_SHARES)
    return wf.StreamingFeatures().feed(audio)


# -- the cache ---------------------------------------------------------------------------


@dataclass
class EvalStreams:
    """The cached streams of one dataset, seed and length."""

    path: Path
    info: dict[str, Any]
    chunks: list[np.ndarray]  # int8 (frames, 40), one continuous recording each
    lead_ins: np.ndarray  # int8 (LEAD_INS, frames, 40)

    @property
    def hours(self) -> float:
        return float(self.info["hours"])

    @property
    def unique_speech_minutes(self) -> float:
        return float(self.info["unique_speech_minutes"])

    def summary(self) -> dict[str, Any]:
        """What the evaluation record keeps about them."""
        keep = (
            "seed",
            "hours",
            "chunks",
            "unique_speech_minutes",
            "utterances",
            "speakers",
            "voices_by_engine",
            "texts",
            "composition",
            "lead_ins",
            "times",
            "without_engine",
        )
        return {"path": str(self.path), **{k: self.info.get(k) for k in keep}}


def _stage(split: str) -> str:
    return "evaluate" if split == HELDOUT else "train"


def stream_dir(
    data: Dataset, hours: float, seed: int, split: str = HELDOUT, without_engine: str | None = None
) -> Path:
    folder = FOLDER if split == HELDOUT else TRAIN_FOLDER
    fold = f"-without-{without_engine}" if without_engine else ""
    return data.path / folder / f"seed{seed}-{hours:g}h{fold}"


def _dataset_sha256(data: Dataset) -> str:
    path = data.path / dataset.SUMMARY
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise WakewardError(f"{path}: cannot read ({e.strerror})") from None


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(f: BinaryIO) -> None:
        np.save(f, array, allow_pickle=False)

    write_atomic(path, write)


def _chunk_name(i: int) -> str:
    return f"chunk-{i:03d}.npy"


def open_streams(
    folder: Path,
    sha256: str,
    hours: float,
    seed: int,
    split: str = HELDOUT,
    without_engine: str | None = None,
) -> EvalStreams | None:
    """The cached streams in `folder` if they are whole and match; None otherwise."""
    return _read_cache(
        folder,
        {
            "format": stream_format(split),
            "dataset_sha256": sha256,
            "hours": hours,
            "seed": seed,
            "without_engine": without_engine,
        },
    )


def _read_cache(folder: Path, expected: dict[str, Any]) -> EvalStreams | None:
    """The streams in `folder` when their description has the `expected` values and every
    file is whole; None otherwise (then they are built again)."""
    try:
        info = json.loads((folder / DESCRIPTION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or any(info.get(k) != v for k, v in expected.items()):
        return None
    try:
        chunks = [load_split(folder / c["file"]) for c in info["chunks"]]
        lead_ins = np.load(folder / LEAD_INS_FILE, mmap_mode="r", allow_pickle=False)
    except (WakewardError, OSError, ValueError, KeyError, TypeError):
        return None
    if [len(c) for c in chunks] != [c["frames"] for c in info["chunks"]]:
        return None
    if lead_ins.dtype != np.int8 or lead_ins.ndim != 3 or lead_ins.shape[2] != NUM_CHANNELS:
        return None
    return EvalStreams(folder, info, chunks, lead_ins)


def ensure(
    data: Dataset,
    hours: float,
    *,
    seed: int | None = None,
    say: Say = _quiet,
    split: str = HELDOUT,
    without_engine: str | None = None,
) -> EvalStreams:
    """The dataset's evaluation streams (or with split=TRAIN its training streams) of
    `hours` (seed: the dataset's), from the cache or built into it. `without_engine`: the
    streams of a leave-one-engine-out fold, with none of that engine's people in them."""
    if not hours > 0:
        raise WakewardError(f"{_split_name(split)} stream hours {hours}: must be more than 0")
    if seed is None:
        seed = int((data.info.get("summary") or {}).get("seed") or 0)
    folder = stream_dir(data, hours, seed, split, without_engine)
    sha = _dataset_sha256(data)
    cached = open_streams(folder, sha, hours, seed, split, without_engine)
    if cached is not None and split == TRAIN and _real_key(cached.info) != _installed_real_key():
        cached = None  # real speech was installed or removed since
    if cached is not None:
        say(
            f"{_stage(split)}: reusing {hours:g} h of {_split_name(split)} negative audio in "
            f"{folder} ({cached.unique_speech_minutes:.1f} min unique speech)"
        )
        return cached
    return build(data, hours, seed, folder, sha, say, split, without_engine)


def build(
    data: Dataset,
    hours: float,
    seed: int,
    folder: Path,
    sha256: str,
    say: Say = _quiet,
    split: str = HELDOUT,
    without_engine: str | None = None,
) -> EvalStreams:
    """Synthesise, compose and featurise the streams into `folder`."""
    t0 = time.monotonic()
    (folder / DESCRIPTION).unlink(missing_ok=True)  # invalid until rewritten
    minutes = unique_speech_minutes(hours, split)
    stage, name = _stage(split), _split_name(split)
    say(f"{stage}: building {hours:g} h of {name} negative audio into {folder}")
    pool = speech_pool(data, minutes, seed, say, split, without_engine)
    real = _real_training_pool(hours, seed, say) if split == TRAIN else RealPool()
    t_speech = time.monotonic() - t0

    t = time.monotonic()
    total = scenes.Composition()
    chunk_info = []
    left_s = hours * 3600
    i = 0
    while left_s > 0:
        seconds = min(CHUNK_HOURS * 3600, left_s)
        front = wf.StreamingFeatures()
        comp = scenes.Composition()
        parts = [
            front.feed(piece)
            for piece in _chunk_scenes(
                seconds,
                _rng(seed, "chunk", i, split),
                pool.utterances,
                comp,
                real,
                _rng(seed, "real_blocks", i, split),
            )
        ]
        feats = np.concatenate(parts) if parts else np.zeros((0, NUM_CHANNELS), np.int8)
        _save_npy(folder / _chunk_name(i), feats)
        chunk_info.append(
            {"file": _chunk_name(i), "seconds": round(seconds, 3), "frames": len(feats)}
        )
        total.add(comp)
        say(f"{stage}: stream chunk {i + 1}: {seconds / 60:.1f} min, {len(feats):,} frames")
        left_s -= seconds
        i += 1
    total.add(real.composition)  # the whole stream's; real_speech.composition: its real part
    lead_ins = np.stack([lead_in(seed, k, pool.utterances, split) for k in range(LEAD_INS)])
    _save_npy(folder / LEAD_INS_FILE, lead_ins)
    t_compose = time.monotonic() - t

    write_text_atomic(folder / POOL_LIST, "".join(json.dumps(r) + "\n" for r in pool.records))
    engines = Counter(r["voice"].split(":", 1)[0] for r in pool.records)
    info = {
        "format": stream_format(split),
        "split": split,
        "without_engine": without_engine,
        "wakeward_train": __version__,
        "dataset_sha256": sha256,
        "seed": seed,
        "hours": hours,
        "chunks": chunk_info,
        "unique_speech_minutes": round(pool.seconds / 60, 2),
        "utterances": len(pool.utterances),
        "speakers": sorted({r["speaker"] for r in pool.records}),
        "voices_by_engine": {
            e: len({r["voice"] for r in pool.records if r["voice"].startswith(e + ":")})
            for e in sorted(engines)
        },
        "utterances_by_engine": dict(sorted(engines.items())),
        "texts": {
            "sentences_file": (EVAL_SENTENCES if split == HELDOUT else phonemes.SENTENCES).name,
            "generated_sentences": 0 if split == HELDOUT else GENERATED_SENTENCES,
            "distinct": len({r["text"] for r in pool.records}),
        },
        "synthesis_failures": len(pool.failures),
        "composition": total.to_json(),
        "real_speech": real.to_json() if split == TRAIN else None,
        "lead_ins": {"count": LEAD_INS, "seconds": LEAD_IN_S, "shares": LEAD_IN_SHARES},
        "times": {
            "speech_s": round(t_speech, 1),
            "compose_and_features_s": round(t_compose, 1),
            "total_s": round(time.monotonic() - t0, 1),
        },
    }
    write_text_atomic(folder / DESCRIPTION, json.dumps(info, indent=1) + "\n")
    opened = open_streams(folder, sha256, hours, seed, split, without_engine)
    if opened is None:
        raise WakewardError(f"{folder}: the streams just written cannot be read back")
    say(
        f"{stage}: built {hours:g} h ({pool.seconds / 60:.1f} min unique speech, "
        f"{plural(len(pool.utterances), 'utterance')} by "
        f"{plural(len(opened.info['speakers']), f'{name} speaker')}) in "
        f"{opened.info['times']['total_s']:.0f} s"
    )
    return opened


# -- the positives, as a device that has been listening hears them ------------------------


@dataclass
class PositiveStream:
    frames: np.ndarray  # int8 (frames, 40): lead-in, clip, lead-in, clip, ...
    spans: np.ndarray  # (clips, 2): each clip's frames [start, end) in `frames`
    records: list[dataset.ClipRecord]


def positive_stream(data: Dataset, streams: EvalStreams) -> PositiveStream:
    """Every held-out positive clip after a lead-in (the streams' backgrounds in turn), one
    continuous stream of features."""
    records = [r for r in data.records if r.split == HELDOUT and r.label == 1 and r.frames > 0]
    if not records:
        raise WakewardError(f"{data.path}: no held-out positive clips to evaluate on")
    parts: list[np.ndarray] = []
    spans = np.zeros((len(records), 2), np.int64)
    at = 0
    for i, r in enumerate(records):
        lead = np.asarray(streams.lead_ins[i % len(streams.lead_ins)])
        clip = data.clip(r)
        parts += [lead, clip]
        spans[i] = (at + len(lead), at + len(lead) + len(clip))
        at += len(lead) + len(clip)
    return PositiveStream(np.concatenate(parts), spans, records)


def check_voices(streams: EvalStreams, data: Dataset) -> list[str]:
    """The speakers in the streams that are not held-out speakers of the dataset (none,
    when the streams are as they should be)."""
    held = set(((data.info.get("summary") or {}).get("speakers") or {}).get(HELDOUT) or [])
    return [s for s in streams.info.get("speakers", []) if s not in held]


def pool_records(streams: EvalStreams) -> Sequence[dict[str, Any]]:
    """The unique utterances the streams were made from (pool.jsonl)."""
    path = streams.path / POOL_LIST
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise WakewardError(f"{path}: cannot read ({e.strerror})") from None
    return [json.loads(line) for line in lines if line.strip()]


# -- real recorded speech (realspeech.py) -------------------------------------------------


@dataclass
class RealPool:
    """The real training-split utterances a training stream draws from (none: TTS only)."""

    utterances: list[scenes.Utterance] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    corpus_key: str | None = None
    why_not: str = ""
    composition: scenes.Composition = field(default_factory=scenes.Composition)

    def to_json(self) -> dict[str, Any]:
        seconds: Counter[str] = Counter()
        for r in self.records:
            seconds[r["source"]] += r["samples"] / RATE_HZ
        return {
            "corpus": self.corpus_key,
            "share": REAL_SPEECH_SHARE if self.utterances else 0.0,
            "why_not": self.why_not or None,
            "pool_minutes_by_source": {k: round(v / 60, 2) for k, v in sorted(seconds.items())},
            "utterances": len(self.utterances),
            "groups": len({r["group"] for r in self.records}),
            "languages": sorted({r["language"] for r in self.records}),
            "composition": self.composition.to_json(),
        }


def _installed_real_key() -> str | None:
    inv = realspeech.detect()
    return inv.key() if inv.usable else None


def _real_key(info: dict[str, Any]) -> str | None:
    real = info.get("real_speech") or {}
    return real.get("corpus") if real.get("utterances") else None


def _real_training_pool(hours: float, seed: int, say: Say = _quiet) -> RealPool:
    """A seeded draw of REAL_POOL_MINUTES_PER_HOUR per stream hour from the real speech's
    training split; empty (with the reason) when no real speech source is installed."""
    inv = realspeech.detect()
    corpus = realspeech.ensure_corpus(inv, progress=say)
    if corpus is None:
        why = "; ".join(inv.describe())
        say(f"train: no real recorded speech in the training streams ({why})")
        return RealPool(why_not=why)
    found = corpus.utterances(TRAIN)
    order = _rng(seed, "real_pool", 0, TRAIN).permutation(len(found))
    want = REAL_POOL_MINUTES_PER_HOUR * hours * 60 * RATE_HZ
    pool = RealPool(corpus_key=corpus.key)
    taken = 0
    for k in order:
        if taken >= want:
            break
        u = found[int(k)]
        pool.utterances.append(scenes.Utterance(u.samples, f"real:{u.group}"))
        pool.records.append(u.record)
        taken += len(u.samples)
    say(
        f"train: {taken / RATE_HZ / 60:.1f} min of real recorded speech "
        f"({plural(len(pool.utterances), 'utterance')}) in {REAL_SPEECH_SHARE:.0%} of the streams"
    )
    return pool


def _chunk_scenes(
    seconds: float,
    rng: np.random.Generator,
    pool: Sequence[scenes.Utterance],
    comp: scenes.Composition,
    real: RealPool,
    block_rng: np.random.Generator,
) -> Iterator[np.ndarray]:
    """A stream chunk's scenes: from the TTS pool alone (as before) when there is no real
    speech; else block by block (REAL_BLOCK_S), REAL_SPEECH_SHARE of the blocks made from
    the real utterances (their talking, babble and TV scenes)."""
    if not real.utterances:
        yield from scenes.scenes(seconds, rng, pool, comp)
        return
    left_s = seconds
    while left_s > 0:
        block_s = min(REAL_BLOCK_S, left_s)
        if block_rng.random() < REAL_SPEECH_SHARE:
            yield from scenes.scenes(block_s, rng, real.utterances, real.composition)
        else:
            yield from scenes.scenes(block_s, rng, pool, comp)
        left_s -= block_s


def real_stream_dir(
    data: Dataset,
    hours: float | None,
    seed: int,
    part: str = realspeech.TEST,
    compositions: int = 1,
) -> Path:
    length = "all" if hours is None else f"{hours:g}h"
    ways = "" if compositions == 1 else f"-x{compositions}"
    return data.path / REAL_FOLDER / f"seed{seed}-{length}-{part}{ways}"


def open_real_streams(
    folder: Path,
    corpus_key: str,
    hours: float | None,
    seed: int,
    part: str = realspeech.TEST,
    compositions: int = 1,
) -> EvalStreams | None:
    """The cached real-speech streams in `folder` if whole and made from this corpus."""
    expected = {"format": REAL_FORMAT, "corpus": corpus_key, "requested_hours": hours}
    if compositions != 1:  # streams composed once from before compositions were counted
        expected["compositions"] = compositions
    return _read_cache(folder, {**expected, "seed": seed, "part": part})


def default_compositions(part: str) -> int:
    """How many ways a part of the held-out recorded speech is composed by default."""
    return VALIDATION_COMPOSITIONS if part == realspeech.VALIDATION else 1


def ensure_real(
    data: Dataset,
    hours: float | None = None,
    *,
    seed: int | None = None,
    say: Say = _quiet,
    corpus: realspeech.Corpus | None = None,
    part: str = realspeech.TEST,
    compositions: int | None = None,
) -> EvalStreams | None:
    """Held-out real recorded speech as negative streams for a real-speech FA/h: every
    utterance of one part of the held-out groups once (or the first `hours` of them; the
    VALIDATION part chooses a model's operating point, the TEST part reports it), in a
    seeded order, with pauses, over room tone, noise or music, as the device's features;
    `compositions` times over, each pass composed anew (default_compositions: the
    validation part VALIDATION_COMPOSITIONS times, the test part once); cached in the
    dataset folder (real_streams/). None, said, when no real speech source is installed.
    Evaluate it like `ensure`'s streams (`.chunks`, `.hours`, `.lead_ins`)."""
    if hours is not None and not hours > 0:
        raise WakewardError(f"real-speech stream hours {hours}: must be more than 0")
    if part not in realspeech.HELDOUT_PARTS:
        raise WakewardError(
            f"real speech part {part!r}: must be one of {', '.join(realspeech.HELDOUT_PARTS)}"
        )
    if compositions is None:
        compositions = default_compositions(part)
    if isinstance(compositions, bool) or not isinstance(compositions, int) or compositions < 1:
        raise WakewardError(f"real-speech compositions {compositions!r}: must be 1 or more")
    if corpus is None:
        inv = realspeech.detect()
        corpus = realspeech.ensure_corpus(inv, progress=say)
        if corpus is None:
            say(f"evaluate: no real-speech FA/h ({'; '.join(inv.describe())})")
            return None
    if seed is None:
        seed = int((data.info.get("summary") or {}).get("seed") or 0)
    folder = real_stream_dir(data, hours, seed, part, compositions)
    cached = open_real_streams(folder, corpus.key, hours, seed, part, compositions)
    if cached is not None:
        say(
            f"evaluate: reusing {cached.hours:.2f} h of held-out real speech "
            f"({describe_part(cached)}) in {folder}"
        )
        return cached
    return build_real(corpus, hours, seed, folder, say, part, compositions)


def _composed(part: str, ways: int) -> str:
    return part if ways == 1 else f"{part}, composed {ways} ways"


def describe_part(real: EvalStreams) -> str:
    """'validation', or 'validation, composed 4 ways'."""
    return _composed(
        str(real.info.get("part", realspeech.TEST)), int(real.info.get("compositions") or 1)
    )


def _real_order(
    corpus: realspeech.Corpus, seed: int, part: str, composition: int = 0
) -> list[realspeech.RealUtterance]:
    held = corpus.utterances(HELDOUT, part)
    order = _rng(seed, "real_order", composition).permutation(len(held))
    return [held[int(k)] for k in order]


def build_real(
    corpus: realspeech.Corpus,
    hours: float | None,
    seed: int,
    folder: Path,
    say: Say = _quiet,
    part: str = realspeech.TEST,
    compositions: int = 1,
) -> EvalStreams:
    """Compose and featurise one part of the held-out real speech into `folder`,
    `compositions` times over (pass k: its own seeded order and scenes; pass 0 is the same
    whatever the count), each pass its own streams."""
    t0 = time.monotonic()
    (folder / DESCRIPTION).unlink(missing_ok=True)
    held = _real_order(corpus, seed, part)
    if not held:
        raise WakewardError(f"{corpus.path}: no held-out real speech in its {part} part")
    say(
        f"evaluate: building the held-out real-speech streams "
        f"({_composed(part, compositions)}) into {folder}"
    )
    comp = realspeech.StreamComposition()
    limit_s = math.inf if hours is None else hours * 3600
    chunk_info: list[dict[str, Any]] = []
    parts: list[np.ndarray] = []
    front = wf.StreamingFeatures()
    chunk_s = 0.0

    def close_chunk() -> None:
        nonlocal parts, front, chunk_s
        feats = np.concatenate(parts) if parts else np.zeros((0, NUM_CHANNELS), np.int8)
        name = _chunk_name(len(chunk_info))
        _save_npy(folder / name, feats)
        chunk_info.append({"file": name, "seconds": round(chunk_s, 3), "frames": len(feats)})
        say(f"evaluate: real-speech chunk {len(chunk_info)}: {chunk_s / 60:.1f} min")
        parts, front, chunk_s = [], wf.StreamingFeatures(), 0.0

    used = 0
    for k in range(compositions):
        order = held if k == 0 else _real_order(corpus, seed, part, k)
        rng = _rng(seed, "real_chunk", k)
        for scene in realspeech.compose_stream([u.samples for u in order], rng, comp):
            parts.append(front.feed(scene))
            chunk_s += len(scene) / RATE_HZ
            used = min(len(held), comp.utterances)
            if chunk_s >= CHUNK_HOURS * 3600:
                close_chunk()
            if comp.seconds >= limit_s:
                break
        if parts:
            close_chunk()
        if comp.seconds >= limit_s:
            break
    pool = [scenes.Utterance(u.samples, f"real:{u.group}") for u in held[:used]]
    lead_ins = np.stack([lead_in(seed, k, pool) for k in range(LEAD_INS)])
    _save_npy(folder / LEAD_INS_FILE, lead_ins)
    records = [u.record for u in held[:used]]
    info = _real_info(corpus, records, hours, seed, chunk_info, comp)
    info["part"] = part
    info["compositions"] = compositions
    info["times"] = {"total_s": round(time.monotonic() - t0, 1)}
    write_text_atomic(folder / DESCRIPTION, json.dumps(info, indent=1) + "\n")
    opened = open_real_streams(folder, corpus.key, hours, seed, part, compositions)
    if opened is None:
        raise WakewardError(f"{folder}: the streams just written cannot be read back")
    say(
        f"evaluate: built {opened.hours:.2f} h of held-out real speech ({describe_part(opened)}) "
        f"({len(records)} utterances, {len(info['speakers'])} groups) "
        f"in {info['times']['total_s']:.0f} s"
    )
    return opened


def _real_info(
    corpus: realspeech.Corpus,
    records: Sequence[dict[str, Any]],
    hours: float | None,
    seed: int,
    chunk_info: list[dict[str, Any]],
    comp: realspeech.StreamComposition,
) -> dict[str, Any]:
    minutes_by_source: Counter[str] = Counter()
    minutes_by_language: Counter[str] = Counter()
    for r in records:
        minutes_by_source[r["source"]] += r["samples"] / RATE_HZ / 60
        minutes_by_language[r["language"]] += r["samples"] / RATE_HZ / 60
    return {
        "format": REAL_FORMAT,
        "split": HELDOUT,
        "wakeward_train": __version__,
        "corpus": corpus.key,
        "sources": {s: corpus.info["sources"][s] for s in sorted(minutes_by_source)},
        "seed": seed,
        "requested_hours": hours,
        "hours": round(sum(c["seconds"] for c in chunk_info) / 3600, 6),
        "chunks": chunk_info,
        "unique_speech_minutes": round(sum(minutes_by_source.values()), 2),
        "utterances": len(records),
        "speakers": sorted({r["group"] for r in records}),
        "minutes_by_source": {k: round(v, 2) for k, v in sorted(minutes_by_source.items())},
        "minutes_by_language": {k: round(v, 2) for k, v in sorted(minutes_by_language.items())},
        "composition": comp.to_json(),
        "lead_ins": {"count": LEAD_INS, "seconds": LEAD_IN_S, "shares": LEAD_IN_SHARES},
        "phrase_check": "none: the recordings have no transcripts to check for the phrase",
    }
