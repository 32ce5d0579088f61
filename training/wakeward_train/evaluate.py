"""Evaluation of a streaming wake-word model as the device runs it: false rejects on the
held-out positives, false accepts per hour on hours of held-out negative audio, a DET curve,
and the cutoff and sliding window for a target FA/h.

The model (any microWakeWord v2 .tflite: ours, or pymicro-wakeword's) runs on TFLite Micro
(`export.Reference`, which the device interpreter equals bit for bit), one uint8 output per
3 feature frames, continuously from a fresh state over each stream, and the outputs go
through the device's detection rule, `wakeward.detector.detections` (ESPHome's sliding
window, with its hold-off of 100 frames at start and after every detection):

- false accepts: every detection on the negative streams (streams.py: each chunk of at
  most an hour is a device that has just started and then listens); FA/h = false accepts /
  hours. With H hours one false accept is 1/H per hour, so the count is kept beside the rate;
- false rejects: the held-out positive clips are one continuous stream too, each clip after
  a lead-in of LEAD_IN_S seconds of held-out background (room tone or noise, from the
  streams' cache), so the model's state and the detector's hold-off are those of a device
  that has been listening (3 s: longer than the hold-off, 1 s, and than our models' receptive
  field, 1.37 s, so one clip's detection or sound never reaches the next clip). A clip is
  detected when the device detects from its first frame to POSITIVE_GRACE_S after its last
  (the model answers a little after the phrase ends; the clips' tails are 0.1-0.4 s);
  detections elsewhere in the lead-ins are counted apart.

`measure_curve` gives, for every sliding window in WINDOWS and every uint8 cutoff
(`int(probability_cutoff * 255)`, as the device truncates it), the false accepts and the
missed clips. Each window's cutoffs are scanned from 254 down to 1 (at 255 no window sum
can exceed it; at 0 no output is below it, so the hold-off never ends) and the scan stops
once the false accepts pass both CURVE_STOP_FA_PER_HOUR and CURVE_STOP_FALSE_ACCEPTS (the
curve beyond is of no use and its detections cost time).

`choose` picks the operating point: the lowest FRR among the points with FA/h <= target
(default 0.5 per hour) and a cutoff of at least MIN_CHOSEN_CUTOFF_U8 (probability 0.5),
ties broken towards the higher cutoff, then fewer false accepts, then the smaller window.
When no point meets the target, the point with the fewest false accepts (then the lowest
FRR, the higher cutoff) is chosen and `target_met` is false. The floor is there because the
negative audio is synthetic (TTS voices, made-up rooms): a model with no false accept in it
down to a cutoff of 0.2 would still wake on real homes' sounds, and a few hours without a
false accept are weak evidence (one would be 1/H per hour). The curve and the FRR at fixed
FA/h (`best_at`, for comparing models) cover every cutoff.

The held-out negative clips are also scored one by one (each from a fresh state after a
mirrored left context, no hold-off: ESPHome's rule on the clip alone) for the count of
clips that would be accepted at the chosen point, by kind: cheap extra information.
"""

from __future__ import annotations

import struct
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from wakeward import detector
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError
from wakeward.wording import plural

from wakeward_train import folds
from wakeward_train import streams as evstreams
from wakeward_train.dataset import HELDOUT, ClipRecord, Dataset
from wakeward_train.export import Reference
from wakeward_train.model import FEATURES, STRIDE

DEFAULT_TARGET_FA_PER_HOUR = 0.5
WINDOWS = (3, 5, 7, 10)
REPORT_FA_PER_HOUR = (0.5, 1.0, 2.0)  # FRR at these FA/h, to compare models
HIGHEST_CUTOFF_U8 = 254  # at 255 nothing can detect (a window sum > 255 * window)
LOWEST_CUTOFF_U8 = 1  # at 0 nothing can either: the hold-off counts only outputs below it
MIN_CHOSEN_CUTOFF_U8 = 127  # probability 0.5: the lowest cutoff `choose` writes to a manifest
CURVE_STOP_FA_PER_HOUR = 100.0
CURVE_STOP_FALSE_ACCEPTS = 10
POSITIVE_GRACE_S = 0.5
REAL_TARGET_FA_PER_HOUR = 0.5  # issue 13's targets: on recorded speech ...
SYNTHETIC_TARGET_FA_PER_HOUR = 1.0  # ... and at the same time on the synthetic streams
USELESS_FRR = 0.5  # a point that meets the FA/h target by missing this much says so
FRAMES_PER_SECOND = 100  # one feature frame per 10 ms
DEFAULT_CONTEXT_FRAMES = 150  # mirrored context for the per-clip figures (>= our 137)
INSTALL_REFERENCE = (
    "evaluating a model needs TFLite Micro (PyPI tflite-micro, the `reference` extra): "
    "pip install -c constraints.txt -e '.[reference]'"
)
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


# -- the model on TFLite Micro -------------------------------------------------------------


def load_reference(flatbuffer: bytes, where: str | Path) -> Reference:
    """TFLite Micro running the model, after checking it is a microWakeWord streaming model
    (int8 [1, 3, 40] in, one uint8 out)."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise WakewardError(INSTALL_REFERENCE) from None
    try:
        it = runtime.Interpreter.from_bytes(flatbuffer)
        inp, out = it.get_input_details(0), it.get_output_details(0)
        ref = Reference(flatbuffer)
    except (RuntimeError, ValueError, IndexError, struct.error) as e:
        raise WakewardError(f"{where}: TFLite Micro cannot load the model ({e})") from None
    shape = [1, STRIDE, FEATURES]
    if (
        list(inp["shape"]) != shape
        or np.dtype(inp["dtype"]) != np.int8
        or int(np.prod(out["shape"])) != 1
        or np.dtype(out["dtype"]) != np.uint8
    ):
        raise WakewardError(
            f"{where}: not a microWakeWord streaming model (int8 {shape} in, one uint8 out); "
            f"it has {np.dtype(inp['dtype']).name} {list(inp['shape'])} in, "
            f"{np.dtype(out['dtype']).name} {list(out['shape'])} out"
        )
    return ref


def run_stream(ref: Reference, frames: np.ndarray) -> np.ndarray:
    """uint8 outputs over one stream from a fresh state (whole invocations only)."""
    steps = len(frames) // STRIDE
    ref.reset()
    return ref.run(np.asarray(frames[: steps * STRIDE]).reshape(steps, STRIDE, FEATURES))


@dataclass
class Outputs:
    """A model's outputs on an evaluation set."""

    negative: list[np.ndarray]  # uint8, one array per negative stream chunk
    negative_hours: float
    positive: np.ndarray  # uint8, the positive stream
    clip_spans: np.ndarray  # (clips, 2): the invocations [first, end) that count per clip
    seconds: float  # TFLite Micro time

    @property
    def invocations(self) -> int:
        return sum(len(o) for o in self.negative) + len(self.positive)


def invocation_spans(frame_spans: np.ndarray, grace_frames: int) -> np.ndarray:
    """Frame spans [a, b) as the invocations whose last frame (3k + 2) lies in
    [a, b + grace_frames)."""
    last = STRIDE - 1
    spans = np.asarray(frame_spans, np.int64)
    first = np.maximum(0, -(-(spans[:, 0] - last) // STRIDE))
    end = -(-(spans[:, 1] + grace_frames - last) // STRIDE)
    return np.stack([first, end], axis=1)


def run_model(
    ref: Reference, streams: evstreams.EvalStreams, positives: evstreams.PositiveStream
) -> Outputs:
    t = time.monotonic()
    negative = [run_stream(ref, chunk) for chunk in streams.chunks]
    positive = run_stream(ref, positives.frames)
    grace = int(round(POSITIVE_GRACE_S * FRAMES_PER_SECOND))
    return Outputs(
        negative=negative,
        negative_hours=streams.hours,
        positive=positive,
        clip_spans=invocation_spans(positives.spans, grace),
        seconds=time.monotonic() - t,
    )


# -- counting, as the device detects --------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One (window, cutoff): false accepts on the negative streams, missed positive clips,
    and detections in the positives' lead-ins."""

    window: int
    cutoff_u8: int
    false_accepts: int
    missed: int
    leadin_detections: int


def _clip_hits(outputs: Outputs, cutoff_u8: int, window: int) -> tuple[int, np.ndarray]:
    """(detections on the positive stream, detections inside each clip's span)."""
    hits = detector.detections(outputs.positive, cutoff_u8, window)
    lo = np.searchsorted(hits, outputs.clip_spans[:, 0], side="left")
    hi = np.searchsorted(hits, outputs.clip_spans[:, 1], side="left")
    return len(hits), hi - lo


def detected_clips(outputs: Outputs, cutoff_u8: int, window: int) -> np.ndarray:
    """Whether each positive clip was detected at (cutoff, window)."""
    return _clip_hits(outputs, cutoff_u8, window)[1] > 0


def false_accepts(chunks: Sequence[np.ndarray], cutoff_u8: int, window: int) -> int:
    """Detections over streams of model outputs (each from a fresh start)."""
    return sum(len(detector.detections(o, cutoff_u8, window)) for o in chunks)


def measure(outputs: Outputs, cutoff_u8: int, window: int) -> Point:
    fa = false_accepts(outputs.negative, cutoff_u8, window)
    hits, inside = _clip_hits(outputs, cutoff_u8, window)
    return Point(
        window=window,
        cutoff_u8=cutoff_u8,
        false_accepts=fa,
        missed=int(np.count_nonzero(inside == 0)),
        leadin_detections=int(hits - np.sum(inside)),
    )


@dataclass
class Curve:
    points: list[Point]
    positives: int
    hours: float

    def frr(self, p: Point) -> float:
        return p.missed / self.positives

    def fa_per_hour(self, p: Point) -> float:
        return p.false_accepts / self.hours

    def within(self, fa_per_hour: float) -> list[Point]:
        """The points whose FA/h is at most `fa_per_hour` (counts compared, not rates)."""
        limit = fa_per_hour * self.hours
        return [p for p in self.points if p.false_accepts <= limit + 1e-9]

    def compact(self) -> dict[str, list[list[int]]]:
        """Per window, [cutoff_u8, false_accepts, missed] where either changes (and the
        scan's first and last cutoffs)."""
        out: dict[str, list[list[int]]] = {}
        for w in sorted({p.window for p in self.points}):
            pts = [p for p in self.points if p.window == w]
            keep = [
                [p.cutoff_u8, p.false_accepts, p.missed]
                for i, p in enumerate(pts)
                if i in (0, len(pts) - 1)
                or (p.false_accepts, p.missed) != (pts[i - 1].false_accepts, pts[i - 1].missed)
            ]
            out[str(w)] = keep
        return out


def measure_curve(outputs: Outputs, windows: Sequence[int] = WINDOWS) -> Curve:
    stop = max(CURVE_STOP_FALSE_ACCEPTS, CURVE_STOP_FA_PER_HOUR * outputs.negative_hours)
    points = []
    for window in windows:
        for cutoff in range(HIGHEST_CUTOFF_U8, LOWEST_CUTOFF_U8 - 1, -1):
            p = measure(outputs, cutoff, window)
            points.append(p)
            if p.false_accepts > stop:
                break
    return Curve(points, len(outputs.clip_spans), outputs.negative_hours)


# -- the choice ------------------------------------------------------------------------------


def _frr_first(p: Point) -> tuple[int, int, int, int]:
    return (p.missed, -p.cutoff_u8, p.false_accepts, p.window)


def best_at(curve: Curve, fa_per_hour: float) -> Point | None:
    """The lowest FRR with FA/h <= fa_per_hour (ties: higher cutoff, fewer false accepts,
    smaller window); None when no point gets there."""
    ok = curve.within(fa_per_hour)
    return min(ok, key=_frr_first) if ok else None


def manifest_cutoff(cutoff_u8: int) -> float:
    """A probability_cutoff that ESPHome's int(p * 255) turns back into `cutoff_u8`."""
    p = round((cutoff_u8 + 0.5) / 255, 3)
    if int(p * 255) != cutoff_u8:
        raise WakewardError(f"cutoff {cutoff_u8} has no 3-decimal probability")
    return p


@dataclass
class RealCheck:
    """Recorded speech an operating point is chosen against (the validation part of the
    held-out groups, realspeech.VALIDATION): a point is within it when its false accepts
    there are at most `target_fa_per_hour` (counts compared, not rates)."""

    outputs: Sequence[np.ndarray]  # model outputs, one array per stream chunk
    hours: float
    target_fa_per_hour: float = REAL_TARGET_FA_PER_HOUR

    def false_accepts(self, p: Point) -> int:
        return false_accepts(self.outputs, p.cutoff_u8, p.window)

    def within(self, p: Point) -> bool:
        return self.false_accepts(p) <= self.target_fa_per_hour * self.hours + 1e-9


@dataclass
class OperatingPoint:
    probability_cutoff: float  # manifest value; int(x * 255) == cutoff_u8
    cutoff_u8: int
    sliding_window_size: int
    positives: int
    missed: int
    false_reject_rate: float
    false_accepts: int
    false_accepts_per_hour: float
    negative_hours: float
    target_fa_per_hour: float
    target_met: bool
    leadin_detections: int
    # the recorded speech the point was chosen against (RealCheck), when there was some
    validation_false_accepts: int | None = None
    validation_hours: float | None = None
    validation_target_fa_per_hour: float | None = None
    validation_met: bool | None = None

    @classmethod
    def of(
        cls, curve: Curve, p: Point, target: float, met: bool, real: RealCheck | None = None
    ) -> OperatingPoint:
        real_fa = None if real is None else real.false_accepts(p)
        return cls(
            probability_cutoff=manifest_cutoff(p.cutoff_u8),
            cutoff_u8=p.cutoff_u8,
            sliding_window_size=p.window,
            positives=curve.positives,
            missed=p.missed,
            false_reject_rate=round(curve.frr(p), 4),
            false_accepts=p.false_accepts,
            false_accepts_per_hour=round(curve.fa_per_hour(p), 4),
            negative_hours=round(curve.hours, 4),
            target_fa_per_hour=target,
            target_met=met,
            leadin_detections=p.leadin_detections,
            validation_false_accepts=real_fa,
            validation_hours=None if real is None else round(real.hours, 4),
            validation_target_fa_per_hour=None if real is None else real.target_fa_per_hour,
            validation_met=None
            if real_fa is None or real is None
            else real_fa <= real.target_fa_per_hour * real.hours + 1e-9,
        )


def choose(
    curve: Curve,
    target_fa_per_hour: float = DEFAULT_TARGET_FA_PER_HOUR,
    real: RealCheck | None = None,
) -> OperatingPoint:
    """The lowest FRR (ties: higher cutoff, fewer false accepts, smaller window) with at most
    `target_fa_per_hour` on the synthetic streams, a cutoff of at least one half, and, given
    `real`, at most its target on that recorded speech too. Out of reach: among the points
    within the synthetic target the fewest recorded false accepts, else the fewest synthetic
    ones; target_met says which."""
    if not curve.points:
        raise WakewardError("no evaluation points to choose from")
    floor = sorted(
        (p for p in curve.within(target_fa_per_hour) if p.cutoff_u8 >= MIN_CHOSEN_CUTOFF_U8),
        key=_frr_first,
    )
    if floor and real is None:
        return OperatingPoint.of(curve, floor[0], target_fa_per_hour, True)
    if floor and real is not None:
        counted = []
        for p in floor:
            fa = real.false_accepts(p)
            if fa <= real.target_fa_per_hour * real.hours + 1e-9:
                return OperatingPoint.of(curve, p, target_fa_per_hour, True, real)
            counted.append((fa, p))
        fewest_real = min(counted, key=lambda c: (c[0], *_frr_first(c[1])))[1]
        return OperatingPoint.of(curve, fewest_real, target_fa_per_hour, False, real)
    fewest = min(curve.points, key=lambda p: (p.false_accepts, *_frr_first(p)))
    return OperatingPoint.of(curve, fewest, target_fa_per_hour, False, real)


# -- the held-out clips one by one (extra information) ------------------------------------


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
    return run_stream(ref, frames)[lead // STRIDE :]


def score(
    ref: Reference, data: Dataset, context: int, label: int, split: str = HELDOUT
) -> list[ClipOutputs]:
    """Every clip of `split` with `label`, streamed alone through the model."""
    records = [r for r in data.records if r.split == split and r.label == label and r.frames]
    return [ClipOutputs(r, stream_clip(ref, data.clip(r), context)) for r in records]


def detects(outputs: np.ndarray, cutoff_u8: int, window: int) -> bool:
    """ESPHome's rule over one clip, no hold-off: a sum of the last `window` outputs
    > cutoff * window."""
    if len(outputs) == 0:
        return False
    sums = np.convolve(outputs.astype(np.int64), np.ones(window, np.int64))[: len(outputs)]
    return bool(np.any(sums > cutoff_u8 * window))


def clip_figures(clips: list[ClipOutputs], cutoff_u8: int, window: int) -> dict[str, Any]:
    accepted = [c for c in clips if detects(c.outputs, cutoff_u8, window)]
    return {
        "rule": "each held-out negative clip alone, fresh state after a mirrored context, "
        "no hold-off",
        "clips": len(clips),
        "accepted": len(accepted),
        "accepted_by_kind": dict(sorted(Counter(c.record.kind for c in accepted).items())),
        "hours": round(sum(c.record.samples for c in clips) / RATE_HZ / 3600, 4),
    }


# -- one model, start to end ---------------------------------------------------------------


@dataclass
class Evaluation:
    model: str
    model_bytes: int
    point: OperatingPoint
    curve: Curve
    at_fa_per_hour: dict[str, dict[str, Any] | None]
    streams: dict[str, Any]
    tflm_invocations: int
    tflm_us_per_invocation: float
    heldout_clips: dict[str, Any]
    manifest_point: dict[str, Any] | None = None
    det_png: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    by_engine: list[folds.EngineRow] = field(default_factory=list)  # at the chosen point
    real_speech: dict[str, Any] | None = None  # false accepts on recorded human speech
    real_validation: dict[str, Any] | None = None  # the recorded speech the point was chosen on
    smoke: bool = False  # a --quick run: too little audio to judge the model

    def point_json(self, p: Point | None) -> dict[str, Any] | None:
        if p is None:
            return None
        return {
            "probability_cutoff": manifest_cutoff(p.cutoff_u8),
            "cutoff_u8": p.cutoff_u8,
            "sliding_window_size": p.window,
            "false_reject_rate": round(self.curve.frr(p), 4),
            "missed": p.missed,
            "false_accepts": p.false_accepts,
            "false_accepts_per_hour": round(self.curve.fa_per_hour(p), 4),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self.point),
            "method": "lowest FRR with FA/h <= target over windows and cutoffs, on TFLite "
            "Micro outputs through the device's detector (wakeward.detector)"
            + (
                ""
                if self.point.validation_hours is None
                else f", and <= {self.point.validation_target_fa_per_hour:g} FA/h on the "
                "validation part of the held-out recorded speech (real_validation)"
            ),
            "false_accepts_per_hour_resolution": round(1 / self.curve.hours, 4),
            "windows": sorted({p.window for p in self.curve.points}),
            "frr_at_false_accepts_per_hour": self.at_fa_per_hour,
            "manifest_point": self.manifest_point,
            "lead_in_s": evstreams.LEAD_IN_S,
            "positive_grace_s": POSITIVE_GRACE_S,
            "negative_streams": self.streams,
            "det_png": self.det_png,
            "curve": {
                "columns": ["cutoff_u8", "false_accepts", "missed"],
                "by_window": self.curve.compact(),
            },
            "heldout_clips": self.heldout_clips,
            "smoke_run": self.smoke,
            "by_engine": {
                "what": "the held-out positive clips per TTS engine at the chosen point; "
                "heldout_engine true: the model never trained on that engine, false: held-out "
                "voices of an engine it trained on (flattering), null: unknown",
                "rows": [r.to_json() for r in self.by_engine],
            },
            "real_speech": self.real_speech,
            "real_validation": self.real_validation,
            "model": self.model,
            "model_bytes": self.model_bytes,
            "tflm_invocations": self.tflm_invocations,
            "tflm_us_per_invocation": self.tflm_us_per_invocation,
            "times": self.seconds,
        }

    def lines(self) -> list[str]:
        p = self.point
        met = "met" if p.target_met else "NOT MET"
        if self.smoke:
            met = "not judged: a --quick run"
        elif p.target_met and p.false_reject_rate >= USELESS_FRR:
            met = f"met, but the model misses {p.false_reject_rate:.0%} of the positives"
        out = [
            f"evaluate: {self.model}: cutoff {p.probability_cutoff} (uint8 {p.cutoff_u8}), "
            f"window {p.sliding_window_size}: FRR {p.false_reject_rate:.2%} ({p.missed}/"
            f"{p.positives} held-out positives missed), "
            f"{plural(p.false_accepts, 'false accept')} in "
            f"{p.negative_hours:g} h = {p.false_accepts_per_hour:.2f} FA/h (target "
            f"{p.target_fa_per_hour:g}/h: {met})"
        ]
        if self.smoke:
            out.append(
                f"evaluate: a --quick run is a smoke test of the pipeline: {p.positives} "
                f"positives and {p.negative_hours * 60:.1f} min of negative audio, a tiny model "
                "and 3 epochs tell nothing of how well a real run detects the phrase"
            )
        elif (
            not p.target_met
            and p.validation_met is False
            and p.false_accepts_per_hour <= (p.target_fa_per_hour)
        ):
            out.append(
                f"evaluate: WARNING: no cutoff and window within {p.target_fa_per_hour:g} false "
                f"accepts per hour here reach {p.validation_target_fa_per_hour:g} on the "
                "validation recorded speech; of those, the point with the fewest false accepts "
                "there was chosen"
            )
        elif not p.target_met:
            out.append(
                f"evaluate: WARNING: no cutoff and window reach {p.target_fa_per_hour:g} false "
                f"accepts per hour on this audio; the point with the fewest false accepts "
                f"was chosen"
            )
        if p.validation_hours is not None:
            vmet = "met" if p.validation_met else "NOT MET"
            ways = int((self.real_validation or {}).get("compositions") or 1)
            composed = "" if ways == 1 else f", its recordings composed {ways} ways"
            out.append(
                f"evaluate: chosen against {p.validation_hours:g} h of recorded speech too (the "
                f"validation part of the held-out speakers{composed}): "
                f"{plural(p.validation_false_accepts or 0, 'false accept')} there (target "
                f"{p.validation_target_fa_per_hour:g}/h: {vmet})"
            )
        at = []
        for key, q in self.at_fa_per_hour.items():
            if q is None:
                at.append(f"{key}/h: not reached")
            else:
                at.append(
                    f"{key}/h: {q['false_reject_rate']:.2%} (cutoff "
                    f"{q['probability_cutoff']}, window {q['sliding_window_size']})"
                )
        out.append("evaluate: FRR at FA/h " + "; ".join(at))
        if self.manifest_point is not None:
            m = self.manifest_point
            out.append(
                f"evaluate: its manifest's cutoff {m['probability_cutoff']}, window "
                f"{m['sliding_window_size']}: FRR {m['false_reject_rate']:.2%}, "
                f"{plural(m['false_accepts'], 'false accept')} = "
                f"{m['false_accepts_per_hour']:.2f} FA/h"
            )
        out += engine_lines(self.by_engine)
        if self.real_speech is not None:
            r = self.real_speech
            out.append(
                f"evaluate: recorded human speech ({r['hours']:.2f} h, held-out speakers of "
                f"{', '.join(r['sources'])}): {plural(r['false_accepts'], 'false accept')} = "
                f"{r['false_accepts_per_hour']:.2f} FA/h at the chosen point"
                + (
                    f", {r['manifest_false_accepts']} at the manifest's"
                    if r.get("manifest_false_accepts") is not None
                    else ""
                )
            )
            both = r.get("at_targets")
            out.append(
                f"evaluate: FRR at <= {REAL_TARGET_FA_PER_HOUR:g} FA/h on recorded speech and "
                f"<= {SYNTHETIC_TARGET_FA_PER_HOUR:g} on the synthetic streams (a curve "
                "reading): "
                + (
                    "not reached"
                    if both is None
                    else f"{both['false_reject_rate']:.2%} (cutoff {both['probability_cutoff']},"
                    f" window {both['sliding_window_size']}, {both['real_false_accepts']} + "
                    f"{both['synthetic_false_accepts']} false accepts)"
                )
            )
        clips = self.heldout_clips
        out.append(
            f"evaluate: held-out negative clips accepted one by one at the chosen point: "
            f"{clips['accepted']}/{clips['clips']} {clips['accepted_by_kind'] or ''}".rstrip()
        )
        out.append(
            f"evaluate: {self.model_bytes:,} bytes; TFLite Micro: {self.tflm_invocations:,} "
            f"invocations, {self.tflm_us_per_invocation:.0f} us each on this PC"
        )
        return out


def engine_lines(rows: Sequence[folds.EngineRow], what: str = "the chosen point") -> list[str]:
    """One line per engine: missed / clips, speakers, whether the engine was held out."""
    if not rows:
        return []
    kinds = {True: "held-out ENGINE", False: "held-out voices of a trained engine", None: ""}
    return [f"evaluate: by engine at {what}:"] + [
        f"evaluate:   {r.engine}: FRR {r.false_reject_rate:.1%} ({r.missed}/{r.clips} missed, "
        f"{plural(r.speakers, 'speaker')}) {kinds[r.heldout_engine]}".rstrip()
        for r in rows
    ]


def both_targets(
    curve: Curve,
    real_outputs: Sequence[np.ndarray],
    real_hours: float,
    real_fa_per_hour: float = REAL_TARGET_FA_PER_HOUR,
    synthetic_fa_per_hour: float = SYNTHETIC_TARGET_FA_PER_HOUR,
) -> dict[str, Any] | None:
    """A reading of the curves (like the FRR at fixed FA/h, not a chosen point): the lowest
    FRR with at most `real_fa_per_hour` on the recorded speech and `synthetic_fa_per_hour`
    on the synthetic streams, over every window and cutoff; None when none gets there."""
    for p in sorted(curve.within(synthetic_fa_per_hour), key=_frr_first):
        real_fa = false_accepts(real_outputs, p.cutoff_u8, p.window)
        if real_fa <= real_fa_per_hour * real_hours + 1e-9:
            return {
                "what": f"lowest FRR with <= {real_fa_per_hour:g} FA/h on the recorded speech "
                f"and <= {synthetic_fa_per_hour:g} on the synthetic streams: a reading of the "
                "curves on the held-out audio, not a point chosen before seeing it",
                "probability_cutoff": manifest_cutoff(p.cutoff_u8),
                "sliding_window_size": p.window,
                "false_reject_rate": round(curve.frr(p), 4),
                "real_false_accepts": real_fa,
                "synthetic_false_accepts": p.false_accepts,
            }
    return None


def real_speech_figures(
    ref: Reference,
    real: evstreams.EvalStreams,
    point: OperatingPoint,
    manifest: tuple[int, int] | None,
    curve: Curve | None = None,
) -> dict[str, Any]:
    """False accepts on recorded human speech at the chosen (and the manifest's) point, and
    the curves' reading at the issue's targets (`both_targets`)."""
    t = time.monotonic()
    outs = [run_stream(ref, chunk) for chunk in real.chunks]
    fa = false_accepts(outs, point.cutoff_u8, point.sliding_window_size)
    info = real.info
    keep = ("minutes_by_source", "minutes_by_language", "unique_speech_minutes", "utterances")
    return {
        "what": "recorded human speech by speakers training never heard (realspeech.py), "
        "as continuous streams (realspeech.py's test part when parted); the operating point "
        "was not chosen on it",
        "hours": round(real.hours, 4),
        "sources": sorted(info.get("sources") or {}),
        "false_accepts": fa,
        "false_accepts_per_hour": round(fa / real.hours, 4) if real.hours else None,
        "manifest_false_accepts": None
        if manifest is None
        else false_accepts(outs, manifest[0], manifest[1]),
        "streams": {"path": str(real.path), **{k: info.get(k) for k in keep}},
        "at_targets": None if curve is None else both_targets(curve, outs, real.hours),
        "tflm_s": round(time.monotonic() - t, 1),
    }


def evaluate_model(
    flatbuffer: bytes,
    name: str,
    data: Dataset,
    eval_streams: evstreams.EvalStreams,
    *,
    target_fa_per_hour: float = DEFAULT_TARGET_FA_PER_HOUR,
    context_frames: int = DEFAULT_CONTEXT_FRAMES,
    manifest: tuple[float, int] | None = None,
    where: str | Path | None = None,
    say: Say = _quiet,
    trained_engines: Sequence[str] | None = None,
    real_streams: evstreams.EvalStreams | None = None,
    real_validation: evstreams.EvalStreams | None = None,
) -> Evaluation:
    """The model over the streams and the held-out positives; the chosen point (within the
    target on the synthetic streams and, given `real_validation`, within
    REAL_TARGET_FA_PER_HOUR on that recorded speech); the curve; FRR at REPORT_FA_PER_HOUR;
    the point of `manifest` (probability_cutoff, window) too; the chosen point's FRR per
    engine (`trained_engines`: the engines the model heard in training, when known) and its
    false accepts on recorded speech (`real_streams`, never the validation part)."""
    if not target_fa_per_hour >= 0:
        raise WakewardError(f"target false accepts per hour {target_fa_per_hour}: must be >= 0")
    ref = load_reference(flatbuffer, where or name)
    positives = evstreams.positive_stream(data, eval_streams)
    say(
        f"evaluate: {name} over {eval_streams.hours:g} h of negative audio and "
        f"{len(positives.records)} held-out positives (TFLite Micro)"
    )
    outputs = run_model(ref, eval_streams, positives)
    check = None
    if real_validation is not None:
        say(
            f"evaluate: {name} over {real_validation.hours:g} h of recorded human speech "
            f"({evstreams.describe_part(real_validation)}: it chooses the cutoff)"
        )
        t = time.monotonic()
        check = RealCheck(
            [run_stream(ref, c) for c in real_validation.chunks], real_validation.hours
        )
        validation_tflm_s = time.monotonic() - t
    t = time.monotonic()
    curve = measure_curve(outputs)
    point = choose(curve, target_fa_per_hour, check)
    t_curve = time.monotonic() - t
    t = time.monotonic()
    clips = score(ref, data, context_frames, label=0)
    figures = clip_figures(clips, point.cutoff_u8, point.sliding_window_size)
    t_clips = time.monotonic() - t
    invocations = outputs.invocations
    ev = Evaluation(
        model=name,
        model_bytes=len(flatbuffer),
        point=point,
        curve=curve,
        at_fa_per_hour={},
        streams=eval_streams.summary(),
        tflm_invocations=invocations,
        tflm_us_per_invocation=round(1e6 * outputs.seconds / max(1, invocations), 1),
        heldout_clips=figures,
        seconds={
            "tflm_s": round(outputs.seconds, 1),
            "curve_s": round(t_curve, 1),
            "clips_s": round(t_clips, 1),
        },
    )
    ev.at_fa_per_hour = {f"{x:g}": ev.point_json(best_at(curve, x)) for x in REPORT_FA_PER_HOUR}
    if real_validation is not None and check is not None:
        ev.seconds["validation_tflm_s"] = round(validation_tflm_s, 1)
        ev.real_validation = {
            "what": "recorded human speech by held-out speakers (realspeech.py's validation "
            "part, groups kept from the training streams and from real_speech): the chosen "
            f"point has at most {check.target_fa_per_hour:g} false accepts an hour on it",
            "hours": round(real_validation.hours, 4),
            # each pass over the recordings composed anew (streams.VALIDATION_COMPOSITIONS)
            "compositions": int(real_validation.info.get("compositions") or 1),
            "path": str(real_validation.path),
            "sources": sorted(real_validation.info.get("sources") or {}),
            "speakers": len(real_validation.info.get("speakers") or ()),
            "unique_speech_minutes": real_validation.info.get("unique_speech_minutes"),
            "false_accepts": point.validation_false_accepts,
        }
    detected = detected_clips(outputs, point.cutoff_u8, point.sliding_window_size)
    ev.by_engine = folds.engine_rows(positives.records, detected, trained_engines)
    rule = None
    if manifest is not None:
        cutoff, window = manifest
        rule = (detector.cutoff_u8(cutoff), window)
        ev.manifest_point = ev.point_json(measure(outputs, *rule))
        if ev.manifest_point is not None:
            ev.manifest_point["probability_cutoff"] = cutoff
            ev.manifest_point["by_engine"] = [
                r.to_json()
                for r in folds.engine_rows(
                    positives.records, detected_clips(outputs, *rule), trained_engines
                )
            ]
    if real_streams is not None:
        say(f"evaluate: {name} over {real_streams.hours:g} h of recorded human speech")
        ev.real_speech = real_speech_figures(ref, real_streams, point, rule, curve)
    return ev
