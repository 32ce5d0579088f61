"""Held-out evaluation of an exported model, clip by clip, as the device would run it.

Every held-out clip is streamed through the int8 model on TFLite Micro (the reference the
device interpreter matches bit for bit) from a fresh state, after a left context of the
clip's own first frames mirrored (so the streaming buffers hold room noise, not zeros),
and its uint8 outputs go through ESPHome's detection rule (firmware/wakeword.py): a
detection when the sum of the last `sliding_window_size` outputs exceeds
`int(probability_cutoff * 255) * sliding_window_size`. A positive clip is missed when no
output detects; a negative clip is a false accept when any does.

`choose_operating_point` picks the cutoff for a sliding window (default 5, microWakeWord's):
the lowest cutoff at which no held-out negative clip is a false accept (so the fewest
positives are missed), no lower than 0.5. That is an interim choice from a few hundred
short clips.

Still to come here (issue 7, evaluation stage): false accepts per hour on several hours of
long held-out negative streams, a DET curve (PNG), and the cutoff/window chosen for a target
FA/h (default 0.5 per hour); `OperatingPoint` and the manifest's `micro` fields are where
that result goes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError

from wakeward_train.dataset import HELDOUT, ClipRecord, Dataset
from wakeward_train.export import Reference
from wakeward_train.model import FEATURES, STRIDE, ModelConfig

DEFAULT_WINDOW = 5
MIN_CUTOFF_U8 = 127  # probability 0.5
MAX_CUTOFF_U8 = 252  # 0.99


@dataclass
class ClipOutputs:
    record: ClipRecord
    outputs: np.ndarray  # uint8, one per invocation inside the clip


def stream_clip(ref: Reference, clip: np.ndarray, context: int) -> np.ndarray:
    """uint8 outputs for one clip from a fresh state, after `context` mirrored frames
    (rounded up to whole invocations); only invocations that end inside the clip."""
    lead = -(-context // STRIDE) * STRIDE
    frames = np.asarray(clip)
    if lead:
        frames = np.pad(frames, ((lead, 0), (0, 0)), mode="symmetric")
    steps = len(frames) // STRIDE
    ref.reset()
    out = ref.run(frames[: steps * STRIDE].reshape(steps, STRIDE, FEATURES))
    return out[lead // STRIDE :]


def score(
    flatbuffer: bytes, data: Dataset, config: ModelConfig, split: str = HELDOUT
) -> list[ClipOutputs]:
    """Every clip of `split` streamed through the int8 model."""
    ref = Reference(flatbuffer)
    records = [r for r in data.records if r.split == split and r.frames > 0]
    if not records:
        raise WakewardError(f"{data.path}: no {split} clips to evaluate on")
    return [
        ClipOutputs(r, stream_clip(ref, data.clip(r), config.receptive_frames)) for r in records
    ]


def detects(outputs: np.ndarray, cutoff_u8: int, window: int) -> bool:
    """ESPHome's rule over one clip: sum of the last `window` outputs > cutoff * window."""
    if len(outputs) == 0:
        return False
    sums = np.convolve(outputs.astype(np.int64), np.ones(window, np.int64))[: len(outputs)]
    return bool(np.any(sums > cutoff_u8 * window))


def peak_means(clips: list[ClipOutputs], window: int) -> np.ndarray:
    """Each clip's highest sliding-window sum, over the window: it detects at cutoff c
    exactly when this is > c."""
    out = np.zeros(len(clips))
    for i, c in enumerate(clips):
        if len(c.outputs):
            s = np.convolve(c.outputs.astype(np.int64), np.ones(window, np.int64))
            out[i] = s[: len(c.outputs)].max() / window
    return out


@dataclass
class OperatingPoint:
    probability_cutoff: float  # manifest value; int(x * 255) == cutoff_u8
    cutoff_u8: int
    sliding_window_size: int
    positives: int
    missed: int
    false_reject_rate: float
    negatives: int
    false_accepts: int
    negative_hours: float
    false_accepts_by_kind: dict[str, int] = field(default_factory=dict)
    method: str = "lowest cutoff with no false accept on the held-out negative clips"
    curve: list[dict[str, float]] = field(default_factory=list)  # FRR/FA at some cutoffs

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        return [
            f"evaluate: cutoff {self.probability_cutoff} (uint8 {self.cutoff_u8}), sliding "
            f"window {self.sliding_window_size}: {self.missed}/{self.positives} held-out "
            f"positives missed (FRR {self.false_reject_rate:.2%}), {self.false_accepts}/"
            f"{self.negatives} negative clips accepted ({self.negative_hours:.3f} h)",
            "evaluate: FRR / false-accept clips by cutoff: "
            + ", ".join(
                f"{c['cutoff']:.2f}: {c['frr']:.1%}/{int(c['false_accepts'])}" for c in self.curve
            ),
        ]


def manifest_cutoff(cutoff_u8: int) -> float:
    """A probability_cutoff that ESPHome's int(p * 255) turns back into `cutoff_u8`."""
    p = round((cutoff_u8 + 0.5) / 255, 3)
    if int(p * 255) != cutoff_u8:
        raise WakewardError(f"cutoff {cutoff_u8} has no 3-decimal probability")
    return p


def choose_operating_point(
    clips: list[ClipOutputs], window: int = DEFAULT_WINDOW
) -> OperatingPoint:
    pos = [c for c in clips if c.record.label == 1]
    neg = [c for c in clips if c.record.label == 0]
    if not pos or not neg:
        raise WakewardError("evaluation needs held-out positive and negative clips")
    pos_peak = peak_means(pos, window)
    neg_peak = peak_means(neg, window)
    # a clip detects at cutoff c when its peak > c: none does from ceil(highest peak) on
    cutoff = int(np.ceil(neg_peak.max()))
    cutoff = min(max(cutoff, MIN_CUTOFF_U8), MAX_CUTOFF_U8)
    missed = int(np.sum(pos_peak <= cutoff))
    accepted = neg_peak > cutoff
    by_kind = Counter(c.record.kind for c, a in zip(neg, accepted, strict=True) if a)
    curve = []
    for p in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99):
        c = int(p * 255)
        curve.append(
            {
                "cutoff": p,
                "frr": round(float(np.mean(pos_peak <= c)), 4),
                "false_accepts": int(np.sum(neg_peak > c)),
            }
        )
    return OperatingPoint(
        probability_cutoff=manifest_cutoff(cutoff),
        cutoff_u8=cutoff,
        sliding_window_size=window,
        positives=len(pos),
        missed=missed,
        false_reject_rate=round(missed / len(pos), 4),
        negatives=len(neg),
        false_accepts=int(accepted.sum()),
        negative_hours=round(sum(c.record.samples for c in neg) / RATE_HZ / 3600, 4),
        false_accepts_by_kind=dict(sorted(by_kind.items())),
        curve=curve,
    )
