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
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from wakeward import features as wf
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError
from wakeward.files import write_atomic, write_text_atomic

from wakeward_train import __version__, clips, dataset, phonemes, scenes, talk, voices
from wakeward_train.dataset import HELDOUT, TRAIN, Dataset
from wakeward_train.features import NUM_CHANNELS, load_split

FORMAT = "wakeward-eval-streams/1"
TRAIN_FORMAT = "wakeward-train-streams/2"  # 2: generated sentences (talk.py), more unique speech
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
_PURPOSES = {"texts": 1, "voices": 2, "chunk": 3, "lead_in": 4, "talk": 5}
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


def split_voices(data: Dataset, split: str) -> list[voices.Voice]:
    """Every installed voice of the dataset's speakers of `split`."""
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
    inv = voices.detect(espeak_variants=bool(config.get("espeak_variants", True)), engines=engines)
    found = [v for v in inv.voices if v.speaker in held]
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
    data: Dataset, minutes: float, seed: int, say: Say = _quiet, split: str = HELDOUT
) -> SpeechPool:
    """At least `minutes` of unique speech by `split`'s speakers (trimmed to the speech)."""
    held = split_voices(data, split)
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
            f"{_stage(split)}: unique {_split_name(split)} speech "
            f"{pool.seconds / 60:.1f}/{minutes:.1f} min"
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
        )
        return {"path": str(self.path), **{k: self.info.get(k) for k in keep}}


def _stage(split: str) -> str:
    return "evaluate" if split == HELDOUT else "train"


def stream_dir(data: Dataset, hours: float, seed: int, split: str = HELDOUT) -> Path:
    folder = FOLDER if split == HELDOUT else TRAIN_FOLDER
    return data.path / folder / f"seed{seed}-{hours:g}h"


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
    folder: Path, sha256: str, hours: float, seed: int, split: str = HELDOUT
) -> EvalStreams | None:
    """The cached streams in `folder` if they are whole and match; None otherwise."""
    try:
        info = json.loads((folder / DESCRIPTION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or (
        info.get("format"),
        info.get("dataset_sha256"),
        info.get("hours"),
        info.get("seed"),
    ) != (stream_format(split), sha256, hours, seed):
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
) -> EvalStreams:
    """The dataset's evaluation streams (or with split=TRAIN its training streams) of
    `hours` (seed: the dataset's), from the cache or built into it."""
    if not hours > 0:
        raise WakewardError(f"{_split_name(split)} stream hours {hours}: must be more than 0")
    if seed is None:
        seed = int((data.info.get("summary") or {}).get("seed") or 0)
    folder = stream_dir(data, hours, seed, split)
    sha = _dataset_sha256(data)
    cached = open_streams(folder, sha, hours, seed, split)
    if cached is not None:
        say(
            f"{_stage(split)}: reusing {hours:g} h of {_split_name(split)} negative audio in "
            f"{folder} ({cached.unique_speech_minutes:.1f} min unique speech)"
        )
        return cached
    return build(data, hours, seed, folder, sha, say, split)


def build(
    data: Dataset,
    hours: float,
    seed: int,
    folder: Path,
    sha256: str,
    say: Say = _quiet,
    split: str = HELDOUT,
) -> EvalStreams:
    """Synthesise, compose and featurise the streams into `folder`."""
    t0 = time.monotonic()
    (folder / DESCRIPTION).unlink(missing_ok=True)  # invalid until rewritten
    minutes = unique_speech_minutes(hours, split)
    stage, name = _stage(split), _split_name(split)
    say(f"{stage}: building {hours:g} h of {name} negative audio into {folder}")
    pool = speech_pool(data, minutes, seed, say, split)
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
            for piece in scenes.scenes(
                seconds, _rng(seed, "chunk", i, split), pool.utterances, comp
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
    lead_ins = np.stack([lead_in(seed, k, pool.utterances, split) for k in range(LEAD_INS)])
    _save_npy(folder / LEAD_INS_FILE, lead_ins)
    t_compose = time.monotonic() - t

    write_text_atomic(folder / POOL_LIST, "".join(json.dumps(r) + "\n" for r in pool.records))
    engines = Counter(r["voice"].split(":", 1)[0] for r in pool.records)
    info = {
        "format": stream_format(split),
        "split": split,
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
        "lead_ins": {"count": LEAD_INS, "seconds": LEAD_IN_S, "shares": LEAD_IN_SHARES},
        "times": {
            "speech_s": round(t_speech, 1),
            "compose_and_features_s": round(t_compose, 1),
            "total_s": round(time.monotonic() - t0, 1),
        },
    }
    write_text_atomic(folder / DESCRIPTION, json.dumps(info, indent=1) + "\n")
    opened = open_streams(folder, sha256, hours, seed, split)
    if opened is None:
        raise WakewardError(f"{folder}: the streams just written cannot be read back")
    say(
        f"{stage}: built {hours:g} h ({pool.seconds / 60:.1f} min unique speech, "
        f"{len(pool.utterances)} utterances by {len(opened.info['speakers'])} {name} "
        f"speakers) in {opened.info['times']['total_s']:.0f} s"
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
