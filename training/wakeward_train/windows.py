"""Training windows cut from a dataset's clips (numpy only).

A window is `length` consecutive int8 feature frames (the model's receptive field) and is
labelled by where it ends, because the streaming model's output at an invocation looks at
the frames up to that invocation:

- positive clip, window ending within `positive_span` frames of the end of the wake phrase
  (`speech_end_frame`): label 1. The device should fire just as the phrase ends, and keep
  its output up for a few invocations so ESPHome's sliding-window mean passes the cutoff.
- positive clip, window ending `partial_gap` or more frames before the phrase's end (only
  part of it heard): label 0, a hard negative ("hey wake-").
- negative clip (confusable, ordinary speech, noise, silence, false wake): label 0, windows
  ending every `negative_stride` frames (a seeded choice of at most `negatives_per_clip`),
  plus `aligned_negatives` ending where a positive would (just after its speech), which are
  the hardest ones.

A window that starts before its clip is padded on the left with the clip's first frames
mirrored (the clips start with 0.5-1 s of the same room noise), never with zeros, which the
device would never see.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from wakeward.errors import WakewardError

from wakeward_train.dataset import ClipRecord, Dataset
from wakeward_train.features import NUM_CHANNELS as NUM_FEATURES


@dataclass(frozen=True)
class WindowConfig:
    positive_span: tuple[int, int] = (-3, 21)  # window ends, frames after speech_end_frame
    positives_per_clip: int = 5
    partial_gap: int = 25  # a positive clip's windows ending this early are negatives
    partials_per_clip: int = 2
    negative_stride: int = 9
    negatives_per_clip: int = 10
    aligned_negatives: int = 2  # per negative clip with speech, in the positive span

    def check(self) -> None:
        lo, hi = self.positive_span
        if lo > hi:
            raise WakewardError(f"windows positive_span {self.positive_span}: start > end")
        for name in (
            "positives_per_clip",
            "partials_per_clip",
            "negatives_per_clip",
            "aligned_negatives",
        ):
            if getattr(self, name) < 0:
                raise WakewardError(f"windows {name} must be >= 0")
        if self.negative_stride < 1 or self.partial_gap < 1:
            raise WakewardError("windows negative_stride and partial_gap must be >= 1")


# Why a window was cut (reported per kind in the training summary).
POSITIVE = "positive"
PARTIAL = "partial"  # the start of a positive clip: a negative
OWNER = "owner"  # a positive window of one of the owner's takes (weighted: train.py)


@dataclass
class Windows:
    x: np.ndarray  # int8 (n, length, 40)
    y: np.ndarray  # float32 (n,): 1 positive, 0 negative
    kind: np.ndarray  # str (n,): POSITIVE, PARTIAL or the negative clip's kind
    clip: np.ndarray  # int (n,): index of the record in the list it was cut from

    def __len__(self) -> int:
        return len(self.y)

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.kind.tolist()).items()))

    def take(self, index: np.ndarray) -> Windows:
        return Windows(self.x[index], self.y[index], self.kind[index], self.clip[index])


def window(clip: np.ndarray, end: int, length: int) -> np.ndarray:
    """The `length` frames of `clip` ending at frame `end` (inclusive), mirrored on the
    left where they would start before the clip."""
    if not 0 <= end < len(clip):
        raise WakewardError(f"window end {end} is outside a clip of {len(clip)} frames")
    start = end + 1 - length
    if start >= 0:
        return np.asarray(clip[start : end + 1])
    part = np.asarray(clip[: end + 1])
    return np.pad(part, ((-start, 0), (0, 0)), mode="symmetric")


def _choose(values: Sequence[int], count: int, rng: np.random.Generator) -> list[int]:
    """A seeded choice of `count` distinct values (all of them if there are fewer)."""
    vals = sorted(set(values))
    if len(vals) <= count:
        return vals
    return sorted(int(vals[i]) for i in rng.choice(len(vals), count, replace=False))


def _ends(
    record: ClipRecord, frames: int, config: WindowConfig, rng: np.random.Generator
) -> list[tuple[int, str]]:
    """(end frame, kind) of each window to cut from one clip."""
    out: list[tuple[int, str]] = []
    last = frames - 1
    if last < 0:
        return out
    lo, hi = config.positive_span
    speech_end = record.speech_end_frame
    if record.label == 1:
        end = last if speech_end is None else min(speech_end, last)
        span = [min(max(end + d, 0), last) for d in range(lo, hi + 1)]
        out += [(e, POSITIVE) for e in _choose(span, config.positives_per_clip, rng)]
        start = record.speech_start_frame or 0
        partial = range(start, end - config.partial_gap + 1)
        out += [(e, PARTIAL) for e in _choose(partial, config.partials_per_clip, rng)]
        return out
    kind = record.kind
    ends = list(range(last, -1, -config.negative_stride))
    chosen = _choose(ends, config.negatives_per_clip, rng)
    if speech_end is not None and config.aligned_negatives:
        end = min(speech_end, last)
        span = [min(max(end + d, 0), last) for d in range(lo, hi + 1)]
        chosen += _choose(span, config.aligned_negatives, rng)
    # as many windows every epoch (only their ends change), so no set() here
    return out + [(e, kind) for e in chosen]


def cut(
    data: Dataset,
    records: Sequence[ClipRecord],
    length: int,
    config: WindowConfig,
    seed: int,
    epoch: int = 0,
) -> Windows:
    """Windows of `length` frames from `records` (any split); seeded per clip and epoch
    (training draws new window ends every epoch), so the same records give the same
    windows in any order of calls."""
    config.check()
    xs: list[np.ndarray] = []
    ys: list[float] = []
    kinds: list[str] = []
    clips: list[int] = []
    for i, r in enumerate(records):
        feats = data.clip(r)
        rng = np.random.default_rng([seed, 0x77696E, epoch, i, r.offset, r.split == "train"])
        for end, kind in _ends(r, len(feats), config, rng):
            xs.append(window(feats, end, length))
            ys.append(1.0 if kind == POSITIVE else 0.0)
            kinds.append(OWNER if kind == POSITIVE and r.kind == OWNER else kind)
            clips.append(i)
    x = np.stack(xs) if xs else np.zeros((0, length, feats_width(data)), np.int8)
    return Windows(
        x.astype(np.int8, copy=False),
        np.asarray(ys, np.float32),
        np.asarray(kinds, dtype=object).astype(str) if kinds else np.zeros(0, str),
        np.asarray(clips, np.int64),
    )


STREAM = "stream"  # a window of the long negative training audio (streams.py, split TRAIN)


def concat(a: Windows, b: Windows) -> Windows:
    """Both sets of windows, `b`'s clip indices kept (stream windows have -1)."""
    return Windows(
        np.concatenate([a.x, b.x]),
        np.concatenate([a.y, b.y]),
        np.concatenate([a.kind.astype(str), b.kind.astype(str)]),
        np.concatenate([a.clip, b.clip]),
    )


def stream_windows(
    chunks: Sequence[np.ndarray],
    length: int,
    count: int,
    rng: np.random.Generator,
    part: tuple[float, float] = (0.0, 1.0),
) -> Windows:
    """`count` negative windows of `length` frames ending at random frames of the long
    negative streams, within the `part` (fractions) of each stream: training draws from
    one part and validation from another, so they never share a frame."""
    lo, hi = part
    if not 0.0 <= lo < hi <= 1.0:
        raise WakewardError(f"stream part {part} is not within (0, 1)")
    spans = []
    for i, c in enumerate(chunks):
        first = max(length - 1, int(len(c) * lo) + length - 1)
        last = int(len(c) * hi) - 1
        if last >= first:
            spans.append((i, first, last))
    if not spans or count <= 0:
        return Windows(
            np.zeros((0, length, NUM_FEATURES), np.int8),
            np.zeros(0, np.float32),
            np.zeros(0, str),
            np.zeros(0, np.int64),
        )
    sizes = np.array([b - a + 1 for _, a, b in spans], np.float64)
    which = rng.choice(len(spans), size=count, p=sizes / sizes.sum())
    x = np.empty((count, length, NUM_FEATURES), np.int8)
    for k, j in enumerate(which):
        i, a, b = spans[j]
        end = int(rng.integers(a, b + 1))
        x[k] = chunks[i][end + 1 - length : end + 1]
    return Windows(
        x, np.zeros(count, np.float32), np.full(count, STREAM), np.full(count, -1, np.int64)
    )


def feats_width(data: Dataset) -> int:
    return int(next(iter(data.features.values())).shape[1])


def validation_split(
    records: Sequence[ClipRecord], fraction: float, seed: int
) -> tuple[list[ClipRecord], list[ClipRecord]]:
    """(fit, validation) from the train split, by speaker like the held-out split: a seeded
    round(fraction) of the TTS speakers (at least one when there are two or more), and
    the same share of the clips without a speaker (noise, silence). The owner's takes and
    the false wakes always stay in fit: there are few and they matter most."""
    if not 0.0 < fraction < 1.0:
        raise WakewardError(f"validation fraction {fraction} is not in (0, 1)")
    speakers = sorted(
        {
            r.speaker
            for r in records
            if r.speaker and not r.speaker.startswith(("owner:", "false-wake"))
        }
    )
    rng = np.random.default_rng([seed, 0x76616C])
    k = 0 if len(speakers) < 2 else min(len(speakers) - 1, max(1, round(fraction * len(speakers))))
    held = {speakers[i] for i in rng.permutation(len(speakers))[:k]}
    fit: list[ClipRecord] = []
    val: list[ClipRecord] = []
    for r in records:
        if r.speaker:
            (val if r.speaker in held else fit).append(r)
        elif r.kind in ("owner", "false-wake"):
            fit.append(r)
        else:
            (val if rng.random() < fraction else fit).append(r)
    return fit, val
