"""Build the training data: positive and negative clips, augmented, as device features, with
a held-out split by speaker and a manifest saying where every clip came from.

Layout of the output folder:

    dataset.json            what was built: phrase, seed, config, voices, counts, hours
    manifest.jsonl          one JSON object per clip (see `ClipRecord`)
    features/train.npy      int8 (frames, 40): every train clip's features, end to end
    features/heldout.npy    the same for the held-out split
    audio/<id>.wav          each clip's audio (only with save_audio)

The split is by speaker, never by clip: every voice of a speaker (`voices.Voice.speaker`:
an espeak-ng variant in all its accents, flite's and festival's voices of one person, an
owner) is entirely in train or entirely in held-out, and so are all the clips it speaks,
positive or negative. Babble noise for a split is made only from that split's voices.
The owner's recordings and the labelled false wakes go to train.

Reproducible: every clip draws from its own generator seeded with (seed, stream, index),
recorded in the manifest, so the same config gives the same bytes.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from wakeward.audio import RATE_HZ, write_wav
from wakeward.errors import WakewardError
from wakeward.files import write_text_atomic
from wakeward.wording import plural

from wakeward_train import __version__, augment, clips, confusables, phonemes, pronounce, voices
from wakeward_train.augment import SpeakerAugment
from wakeward_train.features import FeatureStore, clip_features, frame_at, load_split

TRAIN = "train"
HELDOUT = "heldout"
SPLITS = (TRAIN, HELDOUT)
NEGATIVE_KINDS = ("confusable", "speech", "noise", "silence")
DEFAULT_NEGATIVE_SHARES = {"confusable": 0.45, "speech": 0.3, "noise": 0.15, "silence": 0.1}
DEFAULT_ENGINE_SHARES = {
    voices.ESPEAK: 0.4,
    voices.MBROLA: 0.2,
    voices.FLITE: 0.12,
    voices.FESTIVAL: 0.16,
    voices.PIPER: 0.12,
}
PHRASE_FORMS = ("{p}", "{p}.", "{p}!", "{p}?", "{P}.")
BABBLE_TALKERS = 6  # sentences synthesised per split for babble noise
# Speech starts and ends where 10 ms frames come within this of the loudest (TTS output is
# clean, so its quiet final consonants are kept; recordings have room noise around them).
TTS_TRIM_DB = 45.0
RECORDED_TRIM_DB = 35.0
# the speaker augmentation parts an owner's take gets in its copies: how fast they say it and
# what they say it into; never pitch, formants or early reflections of another vocal tract
OWNER_SPEAKER_PARTS = ("tempo", "mic")
SALAD_WORDS = (4, 9)  # word-salad sentences: this many random dictionary words
MANIFEST = "manifest.jsonl"
SUMMARY = "dataset.json"
FORMAT = "wakeward-train-data/1"
# Generator streams: each clip's generator is seeded [seed, stream, index].
_STREAMS = {
    "split": 1,
    "positive": 2,
    "confusable": 3,
    "speech": 4,
    "noise": 5,
    "silence": 6,
    "owner": 7,
    "false-wake": 8,
    "voices": 9,
    "babble": 10,
    "texts": 11,
}
_SPEAKER_STREAM = 2  # a TTS clip's speaker augmentation: [seed, stream, index, 2]
Progress = Callable[[str, int, int], None]


def _rng(seed: int, stream: str, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[stream], *index])


def _default_speaker_augment() -> SpeakerAugment:
    return SpeakerAugment.only(*augment.DEFAULT_SPEAKER_PARTS)  # training/README.md: the ablation


@dataclass(frozen=True)
class DataConfig:
    phrase: str
    positives: int = 1000
    negatives: int = 1000
    seed: int = 0
    heldout_fraction: float = 0.2  # of the speakers of each engine family, and of the clips
    negative_shares: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_NEGATIVE_SHARES)
    )
    engine_shares: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ENGINE_SHARES))
    speed_range: tuple[float, float] = (0.8, 1.25)  # TTS speaking rate (1 = voice default)
    pitch_range: tuple[float, float] = (0.75, 1.35)  # TTS pitch (1 = voice default)
    augment: augment.AugmentConfig = field(default_factory=augment.AugmentConfig)
    # speaker augmentation of every TTS clip (tempo, pitch, vocal tract length, microphone,
    # early reflections: augment.speaker_augment), before the clip's room, noise and level
    speaker: SpeakerAugment = field(default_factory=_default_speaker_augment)
    engines: tuple[str, ...] = voices.ENGINES
    piper_voices: tuple[Path, ...] = ()  # folders of Piper voices beside the wheel's
    espeak_variants: bool = True
    words: Path | None = None  # word list for confusables and word salads (default: system)
    owner: tuple[clips.ClipSource, ...] = ()  # the owner's takes of the phrase
    false_wakes: tuple[clips.ClipSource, ...] = ()  # clips labelled false-wake
    recorded_copies: int = 3  # augmented copies of each false wake (besides as recorded)
    # augmented copies of each of the owner's takes (besides as recorded): room, noise and
    # level like every clip, and the owner's own day-to-day variation (OWNER_SPEAKER_PARTS)
    owner_copies: int = 10
    background_range_s: tuple[float, float] = (2.0, 5.0)  # noise and silence clips
    noise_level_range_dbfs: tuple[float, float] = (-60.0, -20.0)
    save_audio: bool = False
    chunk: int = 64  # TTS requests per batch

    def check(self) -> None:
        if not self.phrase.strip():
            raise WakewardError("the wake phrase is empty")
        if self.positives < 0 or self.negatives < 0:
            raise WakewardError("--positives and --negatives must be >= 0")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise WakewardError(f"heldout_fraction {self.heldout_fraction} is not in (0, 1)")
        bad = set(self.negative_shares) - set(NEGATIVE_KINDS)
        if bad:
            raise WakewardError(f"unknown negative kinds {sorted(bad)}; known: {NEGATIVE_KINDS}")
        if any(v < 0 for v in self.negative_shares.values()):
            raise WakewardError("negative shares must be >= 0")
        if self.recorded_copies < 0 or self.owner_copies < 0:
            raise WakewardError("recorded_copies and owner_copies must be >= 0")

    def to_json(self) -> dict[str, Any]:
        d = asdict(replace(self, owner=(), false_wakes=()))
        d["words"] = str(self.words) if self.words else None
        d["piper_voices"] = [str(p) for p in self.piper_voices]
        d["owner"] = [repr(s) for s in self.owner]
        d["false_wakes"] = [repr(s) for s in self.false_wakes]
        return d


@dataclass
class ClipRecord:
    """One manifest line."""

    id: str
    split: str
    label: int  # 1 positive, 0 negative
    kind: str  # positive: tts, owner; negative: confusable, speech, noise, silence, false-wake
    text: str | None
    voice: str | None  # engine:name
    speaker: str | None
    prosody: dict[str, float] | None
    augmentation: dict[str, Any] | None
    gain_db: float | None
    seed: list[int]
    source: str | None  # the recorded file, for owner and false-wake clips
    offset: int  # first row in features/<split>.npy
    frames: int
    samples: int
    speech_start_frame: int | None  # first frame whose window reaches the speech
    speech_end_frame: int | None  # first frame whose window reaches the speech's end
    note: str = ""  # confusables: which kind and what from


@dataclass
class Summary:
    phrase: str
    seed: int
    voices: list[str]  # inventory, one line per engine
    word_source: str
    speakers: dict[str, list[str]]  # split -> speakers
    voices_used: dict[str, dict[str, int]]  # split -> engine -> distinct voices that spoke
    counts: dict[str, dict[str, int]]  # split -> "positive/tts" ... -> clips
    seconds: dict[str, dict[str, float]]  # split -> "positive"/"negative" -> audio seconds
    failures: list[str]
    elapsed_s: float = 0.0
    # festival voices taught the phrase's pronunciation (voices.festival_corrections)
    pronunciations: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"wake phrase {self.phrase!r}, seed {self.seed}", *self.voices]
        out.append(f"word list: {self.word_source}")
        out += self.pronunciations
        for split in SPLITS:
            used = self.voices_used.get(split, {})
            engines = ", ".join(f"{e} {n}" for e, n in sorted(used.items())) or "none"
            counts = self.counts.get(split, {})
            pos = sum(n for k, n in counts.items() if k.startswith("positive/"))
            neg = sum(n for k, n in counts.items() if k.startswith("negative/"))
            secs = self.seconds.get(split, {})
            out.append(
                f"{split}: {pos} positive, {neg} negative clips "
                f"({secs.get('negative', 0.0) / 3600:.3f} h of negative audio, "
                f"{secs.get('positive', 0.0) / 60:.1f} min positive); "
                f"{plural(len(self.speakers.get(split, [])), 'speaker')}; voices used: {engines}"
            )
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
            out.append(f"  {kinds}")
        if self.failures:
            out.append(
                f"{plural(len(self.failures), 'clip')} failed and "
                f"{'was' if len(self.failures) == 1 else 'were'} skipped; first: "
                f"{self.failures[0]}"
            )
        out.append(f"built in {self.elapsed_s:.1f} s")
        return out


# -- split -------------------------------------------------------------------------------


def split_speakers(speakers: Sequence[str], heldout_fraction: float, seed: int) -> dict[str, str]:
    """Speaker -> split. Within each family (the part before ':', e.g. every espeak-ng
    variant, or every flite/festival person) a seeded choice of round(fraction * n)
    speakers (at least 1, never all) is held out; a family of one stays in train."""
    families: dict[str, list[str]] = {}
    for s in sorted(set(speakers)):
        families.setdefault(s.split(":", 1)[0], []).append(s)
    out: dict[str, str] = {}
    for family, members in families.items():
        rng = _rng(seed, "split", zlib.crc32(family.encode()))
        order = [members[i] for i in rng.permutation(len(members))]
        k = (
            0
            if len(members) < 2
            else min(len(members) - 1, max(1, round(heldout_fraction * len(members))))
        )
        for n, s in enumerate(order):
            out[s] = HELDOUT if n < k else TRAIN
    return out


def _largest_remainder(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    live = {k: v for k, v in shares.items() if v > 0}
    if not live or total <= 0:
        return dict.fromkeys(shares, 0)
    s = sum(live.values())
    exact = {k: total * v / s for k, v in live.items()}
    out = {k: int(x) for k, x in exact.items()}
    for k in sorted(live, key=lambda k: (-(exact[k] - out[k]), k))[: total - sum(out.values())]:
        out[k] += 1
    return {k: out.get(k, 0) for k in shares}


def voice_sequence(
    pool: Sequence[voices.Voice], count: int, shares: Mapping[str, float], rng: np.random.Generator
) -> list[voices.Voice]:
    """`count` voices: engines in the given shares (of those present), each engine's voices
    cycled in a seeded order so every voice speaks before any speaks twice; shuffled."""
    by_engine: dict[str, list[voices.Voice]] = {}
    for v in pool:
        by_engine.setdefault(v.engine, []).append(v)
    if not by_engine or count <= 0:
        return []
    present = {e: shares.get(e, 0.0) for e in sorted(by_engine)}
    if sum(present.values()) <= 0:
        present = dict.fromkeys(present, 1.0)
    per_engine = _largest_remainder(count, present)
    out: list[voices.Voice] = []
    for engine in sorted(by_engine):
        vs = by_engine[engine]
        order = rng.permutation(len(vs))
        out += [vs[order[i % len(vs)]] for i in range(per_engine[engine])]
    return [out[i] for i in rng.permutation(len(out))]


def _split_counts(total: int, fraction: float, heldout_possible: bool) -> dict[str, int]:
    held = round(total * fraction) if heldout_possible else 0
    return {TRAIN: total - held, HELDOUT: held}


def negative_counts(
    total: int, shares: Mapping[str, float], fraction: float, heldout_possible: bool
) -> dict[str, dict[str, int]]:
    """Negatives per kind and split: the kinds' shares times the splits' shares, rounded
    together (so a small run still gets held-out negatives)."""
    held = fraction if heldout_possible else 0.0
    cells = {
        f"{kind}/{split}": share * (held if split == HELDOUT else 1.0 - held)
        for kind, share in shares.items()
        for split in SPLITS
    }
    counts = _largest_remainder(total, cells)
    return {kind: {split: counts[f"{kind}/{split}"] for split in SPLITS} for kind in shares}


# -- texts -------------------------------------------------------------------------------


def _phrase_form(phrase: str, rng: np.random.Generator) -> str:
    form = PHRASE_FORMS[int(rng.integers(len(PHRASE_FORMS)))]
    p = " ".join(phrase.split())
    return form.format(p=p, P=p[:1].upper() + p[1:])


def ordinary_texts(
    count: int,
    lexicon: phonemes.Lexicon,
    target: phonemes.Phonemes,
    rng: np.random.Generator,
) -> list[str]:
    """Ordinary speech: the built-in sentences and word salads from the word list, half and
    half, none containing the wake phrase's sounds."""
    sentences = phonemes.sentence_lines()
    usable = [lexicon.words[i] for i in np.flatnonzero(lexicon.spoken)]
    out: list[str] = []
    for _ in range(100):  # each round keeps nearly all; a phrase in every text is impossible
        if len(out) >= count:
            break
        need = count - len(out)
        batch = []
        for i in range(need):
            if i % 2 == 0 or not usable:
                batch.append(sentences[int(rng.integers(len(sentences)))])
            else:
                n = int(rng.integers(SALAD_WORDS[0], SALAD_WORDS[1] + 1))
                words = [usable[int(rng.integers(len(usable)))] for _ in range(n)]
                batch.append(" ".join(words).capitalize() + ".")
        said = phonemes.phonemize(batch)
        inside = phonemes.distances(target, said, "target_inside")
        out += [t for t, d in zip(batch, inside, strict=True) if d > 0]
    return out[:count]


# -- building ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    kind: str  # "positive" or a negative kind
    split: str
    index: int
    voice: voices.Voice
    text: str
    prosody: voices.Prosody
    note: str = ""


def _prosody(config: DataConfig, voice: voices.Voice, rng: np.random.Generator) -> voices.Prosody:
    speed = float(rng.uniform(*config.speed_range))
    pitch = float(rng.uniform(*config.pitch_range)) if voice.pitch_control else 1.0
    return voices.Prosody(round(speed, 4), round(pitch, 4))


class _Builder:
    def __init__(
        self,
        config: DataConfig,
        out: Path,
        progress: Progress | None,
        say_as: pronounce.Reference,
    ) -> None:
        self.config = config
        self.say_as = say_as  # the phrase as festival voices are taught to say it
        self.out = out
        self.progress = progress or (lambda stage, done, total: None)
        self.stores = {s: FeatureStore(out / "features" / f"{s}.npy") for s in SPLITS}
        self.records: list[ClipRecord] = []
        self.failures: list[str] = []
        self.talkers: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}

    # one finished clip
    def add(self, rec: dict[str, Any], samples: np.ndarray, span: tuple[int, int] | None) -> None:
        split = rec["split"]
        feats = clip_features(samples)
        offset = self.stores[split].add(feats)
        record = ClipRecord(
            **rec,
            offset=offset,
            frames=len(feats),
            samples=len(samples),
            speech_start_frame=None if span is None else frame_at(span[0]),
            speech_end_frame=None if span is None else frame_at(span[1] - 1),
        )
        self.records.append(record)
        if self.config.save_audio:
            write_wav(self.out / "audio" / f"{record.id}.wav", samples)

    def speak(self, plans: Sequence[_Plan], stage: str) -> None:
        """Synthesise, augment and store TTS clips, a chunk at a time."""
        cfg = self.config
        for at in range(0, len(plans), cfg.chunk):
            chunk = plans[at : at + cfg.chunk]
            audio = voices.speak_all(
                [voices.SpeechRequest(p.voice, p.text, p.prosody) for p in chunk],
                say_as=self.say_as,
            )
            for plan, a in zip(chunk, audio, strict=True):
                if isinstance(a, WakewardError):
                    self.failures.append(str(a))
                    continue
                start, end = clips.speech_bounds(a, TTS_TRIM_DB)
                rng = _rng(cfg.seed, plan.kind, plan.index, 1)
                talkers = self.talkers[plan.split]
                aug = augment.draw(cfg.augment, rng, babble_ok=bool(talkers))
                speech, person = a[start:end], None
                if cfg.speaker.parts:  # its own generator: the other draws stay as they were
                    srng = _rng(cfg.seed, plan.kind, plan.index, _SPEAKER_STREAM)
                    speech, person = augment.speaker_augment(speech, srng, cfg.speaker)
                clip = augment.apply(speech, aug, rng, talkers)
                positive = plan.kind == "positive"
                self.add(
                    {
                        "id": f"{plan.kind}-{plan.index:06d}",
                        "split": plan.split,
                        "label": int(positive),
                        "kind": "tts" if positive else plan.kind,
                        "text": plan.text,
                        "voice": plan.voice.id,
                        "speaker": plan.voice.speaker,
                        "prosody": asdict(plan.prosody),
                        "augmentation": {**aug.to_json(), "speaker": person}
                        if person
                        else aug.to_json(),
                        "gain_db": round(clip.gain_db, 4),
                        "seed": [cfg.seed, _STREAMS[plan.kind], plan.index],
                        "source": None,
                        "note": plan.note,
                    },
                    clip.samples,
                    (clip.speech_start, clip.speech_end),
                )
            self.progress(stage, min(at + cfg.chunk, len(plans)), len(plans))

    def recorded(
        self,
        source_clips: Sequence[clips.SourceClip],
        kind: str,
        label: int,
        copies: int,
        speaker: SpeakerAugment | None = None,
    ) -> None:
        """Each recorded clip as recorded and `copies` augmented copies of it (with
        `speaker`'s parts too, when given: the owner sounds a little different each day)."""
        cfg = self.config
        n = 0
        total = len(source_clips) * (1 + copies)
        for i, sc in enumerate(source_clips):
            start, end = clips.speech_bounds(sc.samples, RECORDED_TRIM_DB)
            base = {
                "split": TRAIN,
                "label": label,
                "kind": kind,
                "text": cfg.phrase if label else None,
                "voice": None,
                "speaker": sc.speaker,
                "prosody": None,
                "source": str(sc.path),
                "note": "",
            }
            self.add(
                {
                    **base,
                    "id": f"{kind}-{i:06d}-0",
                    "augmentation": None,
                    "gain_db": None,
                    "seed": [cfg.seed, _STREAMS[kind], i, 0],
                },
                sc.samples,
                (start, end),
            )
            n += 1
            for copy in range(1, copies + 1):
                rng = _rng(cfg.seed, kind, i, copy)
                talkers = self.talkers[TRAIN]
                aug = augment.draw(cfg.augment, rng, babble_ok=bool(talkers))
                speech, person = sc.samples[start:end], None
                if speaker is not None and speaker.parts:
                    srng = _rng(cfg.seed, kind, i, copy, _SPEAKER_STREAM)
                    speech, person = augment.speaker_augment(speech, srng, speaker)
                clip = augment.apply(speech, aug, rng, talkers)
                self.add(
                    {
                        **base,
                        "id": f"{kind}-{i:06d}-{copy}",
                        "augmentation": {**aug.to_json(), "speaker": person}
                        if person
                        else aug.to_json(),
                        "gain_db": round(clip.gain_db, 4),
                        "seed": [cfg.seed, _STREAMS[kind], i, copy],
                    },
                    clip.samples,
                    (clip.speech_start, clip.speech_end),
                )
                n += 1
            self.progress(kind, n, total)

    def backgrounds(self, kind: str, counts: Mapping[str, int]) -> None:
        cfg = self.config
        total = sum(counts.values())
        index = 0
        for split in SPLITS:
            for _ in range(counts[split]):
                rng = _rng(cfg.seed, kind, index)
                talkers = self.talkers[split]
                noise = "silence"
                if kind == "noise":
                    kinds = [k for k in augment.NOISE_KINDS if talkers or k != "babble"]
                    noise = kinds[int(rng.integers(len(kinds)))]
                duration_s = float(rng.uniform(*cfg.background_range_s))
                level = float(rng.uniform(*cfg.noise_level_range_dbfs))
                samples = augment.background_clip(noise, duration_s, level, rng, talkers)
                self.add(
                    {
                        "id": f"{kind}-{index:06d}",
                        "split": split,
                        "label": 0,
                        "kind": kind,
                        "text": None,
                        "voice": None,
                        "speaker": None,
                        "prosody": None,
                        "augmentation": {
                            "noise": noise,
                            "noise_level_dbfs": round(level, 4),
                            "duration_s": round(duration_s, 4),
                        },
                        "gain_db": None,
                        "seed": [cfg.seed, _STREAMS[kind], index],
                        "source": None,
                        "note": "",
                    },
                    samples,
                    None,
                )
                index += 1
                if index % 16 == 0 or index == total:
                    self.progress(kind, index, total)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise WakewardError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / SUMMARY).is_file():
        raise WakewardError(
            f"{out}: the folder is not empty and holds no {SUMMARY}; not writing into it "
            "(choose a new --out)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WakewardError(f"{out}: cannot create the folder ({e.strerror})") from None


def _usable_engines(
    inv: voices.Inventory, phrase: str, progress: Progress, say_as: pronounce.Reference
) -> tuple[list[voices.Voice], list[str]]:
    """Voices of the engines that can say the phrase (one try per engine)."""
    notes: list[str] = []
    keep: list[voices.Voice] = []
    engines = [e for e in voices.ENGINES if inv.by_engine(e)]
    tries = [voices.SpeechRequest(inv.by_engine(e)[0], phrase) for e in engines]
    for engine, result in zip(engines, voices.speak_all(tries, say_as=say_as), strict=True):
        if isinstance(result, WakewardError):
            notes.append(f"{engine}: cannot say the phrase, not used ({result})")
        else:
            keep += inv.by_engine(engine)
    progress("voices", len(engines), len(engines))
    if not keep:
        detail = "; ".join(notes) or "no offline TTS voices are installed (apt install espeak-ng)"
        raise WakewardError(f"no installed TTS can say {phrase!r}: {detail}")
    return keep, notes


def _pronunciations(pool: Sequence[voices.Voice], say_as: pronounce.Reference) -> list[str]:
    """What each festival voice is taught, or keeps its own way, of the phrase."""
    lines: list[str] = []
    for v in pool:
        if v.engine != voices.FESTIVAL or not say_as:
            continue
        try:
            phoneset, fixes, kept = voices.festival_corrections(v, say_as)
        except WakewardError as e:
            lines.append(f"{v.id}: cannot read its pronunciation of the phrase ({e})")
            continue
        lines += [f"{v.id} is taught {f.line()}" for f in fixes]
        lines += [
            f"{v.id} says {w!r} its own way (phone set {phoneset} is not in pronounce.py's tables)"
            for w in kept
        ]
    return lines


def build(config: DataConfig, out: Path, progress: Progress | None = None) -> Summary:
    """Build the dataset into `out`; returns what was built (also in out/dataset.json)."""
    config.check()
    t0 = time.monotonic()
    report = progress or (lambda stage, done, total: None)
    _check_out(out)
    recorded_owner = [c for src in config.owner for c in src.clips()]  # bad files fail early
    recorded_false = [c for src in config.false_wakes for c in src.clips()]

    inv = voices.detect(
        espeak_variants=config.espeak_variants,
        engines=config.engines,
        piper_dirs=config.piper_voices,
    )
    say_as = pronounce.reference(config.phrase)
    pool, notes = _usable_engines(inv, config.phrase, report, say_as)
    split_of = split_speakers([v.speaker for v in pool], config.heldout_fraction, config.seed)
    by_split = {s: [v for v in pool if split_of[v.speaker] == s] for s in SPLITS}
    has_heldout = bool(by_split[HELDOUT])

    lexicon = phonemes.load_lexicon(
        config.words, progress=lambda d, t: report("word list phonemes", d, t)
    )
    found = confusables.candidates(config.phrase, lexicon)
    target = phonemes.phonemize([config.phrase])[0]

    b = _Builder(config, out, progress, say_as)
    # babble talkers first: ordinary sentences by each split's own voices
    for split in SPLITS:
        rng = _rng(config.seed, "babble", SPLITS.index(split))
        vs = voice_sequence(by_split[split], BABBLE_TALKERS, config.engine_shares, rng)
        texts = ordinary_texts(len(vs), lexicon, target, rng)
        reqs = [voices.SpeechRequest(v, t) for v, t in zip(vs, texts, strict=True)]
        spoken = voices.speak_all(reqs, say_as=say_as)
        b.talkers[split] = [a for a in spoken if not isinstance(a, WakewardError)]

    plans: dict[str, list[_Plan]] = {"positive": []}
    pos = _split_counts(config.positives, config.heldout_fraction, has_heldout)
    shares = dict(config.negative_shares)
    if not found:  # no confusables for this phrase and word list: ordinary speech instead
        shares["speech"] = shares.get("speech", 0.0) + shares.pop("confusable", 0.0)
    neg = negative_counts(config.negatives, shares, config.heldout_fraction, has_heldout)
    neg_kinds = {k: sum(v.values()) for k, v in neg.items()}

    text_rng = _rng(config.seed, "texts", 0)
    chosen = confusables.select(found, neg_kinds.get("confusable", 0), config.seed)
    chosen = [chosen[i] for i in text_rng.permutation(len(chosen))]
    ordinary = ordinary_texts(neg_kinds.get("speech", 0), lexicon, target, text_rng)
    for kind in ("positive", "confusable", "speech"):
        counts = pos if kind == "positive" else neg.get(kind, {TRAIN: 0, HELDOUT: 0})
        plans[kind] = []
        index = 0
        for split in SPLITS:
            vrng = _rng(config.seed, "voices", _STREAMS[kind], SPLITS.index(split))
            seq = voice_sequence(by_split[split], counts[split], config.engine_shares, vrng)
            for v in seq:
                rng = _rng(config.seed, kind, index)
                note = ""
                if kind == "positive":
                    text = _phrase_form(config.phrase, rng)
                elif kind == "confusable":
                    c = chosen[index]
                    text, note = c.text, f"{c.kind}: {c.note}" if c.note else c.kind
                else:
                    text = ordinary[index]
                plans[kind].append(
                    _Plan(kind, split, index, v, text, _prosody(config, v, rng), note)
                )
                index += 1

    b.speak(plans["positive"], "positives")
    owner_speaker = config.speaker.without(
        *(p for p in augment.SPEAKER_PARTS if p not in OWNER_SPEAKER_PARTS)
    )
    b.recorded(recorded_owner, clips.OWNER, 1, config.owner_copies, owner_speaker)
    b.speak(plans["confusable"], "confusables")
    b.speak(plans["speech"], "ordinary speech")
    for kind in ("noise", "silence"):
        b.backgrounds(kind, neg.get(kind, {TRAIN: 0, HELDOUT: 0}))
    b.recorded(recorded_false, clips.FALSE_WAKE, 0, config.recorded_copies)

    for store in b.stores.values():
        store.close()
    write_text_atomic(out / MANIFEST, "".join(json.dumps(asdict(r)) + "\n" for r in b.records))
    summary = _summarise(config, inv, notes, lexicon, split_of, b)
    summary.pronunciations = _pronunciations(pool, say_as)
    summary.elapsed_s = round(time.monotonic() - t0, 2)
    info = {
        "format": FORMAT,
        "wakeward_train": __version__,
        "espeak_ng": phonemes.espeak_version(),
        "phrase_phonemes": " ".join(target),
        "config": config.to_json(),
        "summary": asdict(summary),
    }
    write_text_atomic(out / SUMMARY, json.dumps(info, indent=1) + "\n")
    return summary


def _summarise(
    config: DataConfig,
    inv: voices.Inventory,
    notes: list[str],
    lexicon: phonemes.Lexicon,
    split_of: Mapping[str, str],
    b: _Builder,
) -> Summary:
    counts: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
    seconds: dict[str, dict[str, float]] = {s: {} for s in SPLITS}
    used: dict[str, dict[str, set[str]]] = {s: {} for s in SPLITS}
    for r in b.records:
        label = "positive" if r.label else "negative"
        counts[r.split][f"{label}/{r.kind}"] += 1
        seconds[r.split][label] = seconds[r.split].get(label, 0.0) + r.samples / RATE_HZ
        if r.voice:
            used[r.split].setdefault(r.voice.split(":", 1)[0], set()).add(r.voice)
    speakers = {s: sorted(k for k, v in split_of.items() if v == s) for s in SPLITS}
    for r in b.records:
        if r.speaker and r.speaker not in split_of and r.speaker not in speakers[r.split]:
            speakers[r.split].append(r.speaker)
    return Summary(
        phrase=config.phrase,
        seed=config.seed,
        voices=inv.describe() + notes,
        word_source=f"{lexicon.source}, {len(lexicon)} words",
        speakers=speakers,
        voices_used={s: {e: len(v) for e, v in used[s].items()} for s in SPLITS},
        counts={s: dict(sorted(counts[s].items())) for s in SPLITS},
        seconds={s: {k: round(v, 2) for k, v in seconds[s].items()} for s in SPLITS},
        failures=b.failures,
    )


# -- reading -----------------------------------------------------------------------------


@dataclass
class Dataset:
    """A built dataset: the manifest and each split's features (memory-mapped)."""

    path: Path
    info: dict[str, Any]
    records: list[ClipRecord]
    features: dict[str, np.ndarray]

    def clip(self, record: ClipRecord) -> np.ndarray:
        """One clip's int8 features, (frames, 40)."""
        return self.features[record.split][record.offset : record.offset + record.frames]


def open_dataset(path: Path) -> Dataset:
    try:
        info = json.loads((path / SUMMARY).read_text(encoding="utf-8"))
        lines = (path / MANIFEST).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as e:
        raise WakewardError(
            f"{path}: not a wakeward training dataset ({e.filename} missing)"
        ) from None
    except (OSError, ValueError) as e:
        raise WakewardError(f"{path}: unreadable dataset ({e})") from None
    if info.get("format") != FORMAT:
        raise WakewardError(f"{path / SUMMARY}: format {info.get('format')!r}, expected {FORMAT!r}")
    records = [ClipRecord(**json.loads(line)) for line in lines if line.strip()]
    feats = {s: load_split(path / "features" / f"{s}.npy") for s in SPLITS}
    return Dataset(path, info, records, feats)
