"""Leave-one-engine-out: how a model does on a TTS engine it never heard.

Held-out *voices* of the engines a model trained on flatter it: a held-out espeak-ng
variant is still espeak-ng's formant synthesiser, and a held-out flite voice still flite's
signal processing. The honest figure for a person the trainer never heard is the FRR on a
whole engine left out of training. For each engine E of a dataset, a *fold* trains on the
dataset without E and is tested on E:

- training: the train split's clips, less every clip spoken by engine E and every clip of a
  person that E speaks as through another engine (flite's kal is festival's kal_diphone,
  espeak-ng's mb-us1 is festival's us1_mbrola: `voices.Voice.speaker`); the training streams
  are built again without those people (streams.ensure(..., without_engine=E));
- test: every positive clip engine E spoke, in both of the dataset's splits (the fold
  never heard any of them), after the usual lead-ins; the false accepts are counted on the
  dataset's usual evaluation streams, so every fold and the final model are judged on the
  same negative audio, and each fold's cutoff is chosen for the target FA/h on it as the
  final model's is;
- the held-out clips of the other engines are not used by a fold.

The pooled held-out-engine FRR is the missed clips over all folds divided by the clips
over all folds; each engine's row says how many clips it stands on.

Recorded clips with no voice (the owner's takes, false wakes, noise, silence) stay where
the dataset put them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from wakeward.errors import WakewardError

from wakeward_train import voices
from wakeward_train.dataset import HELDOUT, TRAIN, ClipRecord, Dataset

UNUSED = "unused"  # a fold's role for the held-out clips of the engines it trained on


def engine_of(voice: str | None) -> str | None:
    """'espeak-ng:en-us+f3' -> 'espeak-ng'; None for recorded clips."""
    if not voice:
        return None
    return voice.split(":", 1)[0]


def dataset_engines(data: Dataset) -> list[str]:
    """The engines that spoke the dataset's positive clips, in voices.ENGINES order."""
    found = {engine_of(r.voice) for r in data.records if r.label == 1}
    known = [e for e in voices.ENGINES if e in found]
    return known + sorted(e for e in found if e and e not in known)


def engine_speakers(data: Dataset, engine: str) -> set[str]:
    """The people engine `engine` speaks as: its clips' speakers and, where the engines are
    installed here, every speaker of its voices."""
    out = {r.speaker for r in data.records if engine_of(r.voice) == engine and r.speaker}
    config = data.info.get("config") or {}
    if engine in voices.ENGINES:
        inv = voices.detect(
            espeak_variants=bool(config.get("espeak_variants", True)),
            engines=(engine,),
            piper_dirs=[Path(p) for p in config.get("piper_voices") or ()],
        )
        out |= {v.speaker for v in inv.voices}
    return out


@dataclass
class FoldDataset(Dataset):
    """A dataset as one fold sees it: records relabelled train / held-out / unused, each
    clip still read from the features file it was built into."""

    engine: str = ""
    origin: dict[str, str] = field(default_factory=dict)  # record id -> its built split

    def clip(self, record: ClipRecord) -> np.ndarray:
        split = self.origin.get(record.id, record.split)
        return self.features[split][record.offset : record.offset + record.frames]


def fold_role(record: ClipRecord, engine: str, gone: set[str]) -> str:
    """TRAIN, HELDOUT (the fold's test clips) or UNUSED for one record in fold `engine`."""
    if engine_of(record.voice) == engine:
        return HELDOUT
    if record.voice and record.speaker in gone:
        return UNUSED  # the same person through another engine
    if record.voice and record.split == HELDOUT:
        return UNUSED  # held-out voices of the trained engines: not this fold's question
    return record.split


def fold_view(
    data: Dataset, engine: str, gone: set[str] | None = None, *, for_training: bool = True
) -> FoldDataset:
    """The dataset without engine `engine` in training and with only its clips held out
    (`for_training` False: only to evaluate a model on them, no training clips needed)."""
    if engine not in dataset_engines(data):
        raise WakewardError(
            f"{data.path}: no positive clip of engine {engine!r} to hold out "
            f"(the dataset's engines: {', '.join(dataset_engines(data)) or 'none'})"
        )
    gone = engine_speakers(data, engine) if gone is None else gone
    records: list[ClipRecord] = []
    origin: dict[str, str] = {}
    for r in data.records:
        role = fold_role(r, engine, gone)
        if role == UNUSED:
            continue
        origin[r.id] = r.split
        records.append(r if role == r.split else replace(r, split=role))
    if for_training and not any(r.split == TRAIN and r.label == 1 for r in records):
        raise WakewardError(
            f"{data.path}: without engine {engine!r} no positive clip is left to train on"
        )
    return FoldDataset(
        path=data.path,
        info=data.info,
        records=records,
        features=data.features,
        engine=engine,
        origin=origin,
    )


# -- per-engine rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class EngineRow:
    """One engine's positive clips at one operating point."""

    engine: str
    clips: int
    missed: int
    speakers: int
    heldout_engine: bool | None  # True: the model never heard this engine; None: unknown

    @property
    def false_reject_rate(self) -> float:
        return self.missed / self.clips if self.clips else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "clips": self.clips,
            "missed": self.missed,
            "false_reject_rate": round(self.false_reject_rate, 4),
            "speakers": self.speakers,
            "heldout_engine": self.heldout_engine,
        }


def engine_rows(
    records: Sequence[ClipRecord],
    detected: np.ndarray,
    trained_engines: Iterable[str] | None = None,
) -> list[EngineRow]:
    """Per engine (recorded clips as 'recorded'): clips, missed and speakers; whether the
    model trained on that engine, when `trained_engines` is known."""
    if len(records) != len(detected):
        raise WakewardError(f"{len(records)} clips but {len(detected)} detection results")
    trained = None if trained_engines is None else set(trained_engines)
    clips: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    people: dict[str, set[str]] = {}
    for r, hit in zip(records, detected, strict=True):
        e = engine_of(r.voice) or "recorded"
        clips[e] += 1
        missed[e] += 0 if hit else 1
        people.setdefault(e, set()).add(r.speaker or r.source or r.id)
    order = [e for e in voices.ENGINES if e in clips] + sorted(
        e for e in clips if e not in voices.ENGINES
    )
    return [
        EngineRow(
            engine=e,
            clips=clips[e],
            missed=missed[e],
            speakers=len(people[e]),
            heldout_engine=None if trained is None or e == "recorded" else e not in trained,
        )
        for e in order
    ]


def trained_engines(data: Dataset) -> list[str]:
    """The engines whose clips a model trained on `data` heard (its train split)."""
    found = {engine_of(r.voice) for r in data.records if r.split == TRAIN and r.voice}
    return sorted(e for e in found if e)


@dataclass
class Pooled:
    """Leave-one-engine-out over folds: each fold's own row for its held-out engine."""

    rows: list[EngineRow]

    @property
    def clips(self) -> int:
        return sum(r.clips for r in self.rows)

    @property
    def missed(self) -> int:
        return sum(r.missed for r in self.rows)

    @property
    def false_reject_rate(self) -> float:
        return self.missed / self.clips if self.clips else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "leave-one-engine-out: per engine, a model trained without it (and "
            "without any person it speaks as) tested on all of its positive clips, at the "
            "fold's own operating point for the target FA/h on the dataset's evaluation "
            "streams; pooled = missed / clips over the folds",
            "false_reject_rate": round(self.false_reject_rate, 4),
            "missed": self.missed,
            "clips": self.clips,
            "engines": [r.to_json() for r in self.rows],
        }
