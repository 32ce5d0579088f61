"""The evaluation stage's counting and choice on synthetic model outputs (numpy only): false
accepts and missed clips as the device's detector (wakeward.detector) finds them, hold-off
included; the operating point for a target FA/h, met and not met; the DET curve PNG."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from wakeward import detector
from wakeward.errors import WakewardError
from wakeward_train import evaluate
from wakeward_train.evaluate import Curve, Outputs, Point

HIGH = 250  # an output well above the cutoffs used here
CUTOFF = 200
WINDOW = 3


def burst(out: np.ndarray, at: int, length: int = 4) -> None:
    out[at : at + length] = HIGH


def outputs_with(
    negative: list[np.ndarray], positive: np.ndarray, frame_spans: list[tuple[int, int]], hours
) -> Outputs:
    return Outputs(
        negative=negative,
        negative_hours=hours,
        positive=positive,
        clip_spans=evaluate.invocation_spans(np.array(frame_spans), grace_frames=0),
        seconds=0.0,
    )


def test_invocations_are_matched_to_clips_by_their_last_frame():
    # invocation k covers frames 3k..3k+2 and its output comes after frame 3k + 2
    spans = evaluate.invocation_spans(np.array([[0, 3], [3, 9], [10, 20]]), grace_frames=0)
    assert spans.tolist() == [[0, 1], [1, 3], [3, 6]]
    # the grace extends the span after the clip: frames 10..20 + 6 -> last frames 11..25
    assert evaluate.invocation_spans(np.array([[10, 20]]), 6).tolist() == [[3, 8]]


def test_false_accepts_follow_the_device_hold_off():
    neg = np.zeros(600, np.uint8)
    burst(neg, 10)  # within the start-up hold-off (100 frames = 33 quiet outputs): ignored
    burst(neg, 200)  # a false accept
    burst(neg, 215)  # inside the hold-off after it: ignored
    burst(neg, 400)  # a second false accept
    # a plain count of windows over the cutoff would see four bursts
    assert len(detector.detections(neg, CUTOFF, WINDOW)) == 2
    outs = outputs_with([neg, neg.copy()], np.zeros(10, np.uint8), [(0, 30)], hours=0.5)
    p = evaluate.measure(outs, CUTOFF, WINDOW)
    assert p.false_accepts == 4  # two per chunk, each chunk from a fresh start
    curve = Curve([p], positives=1, hours=0.5)
    assert curve.fa_per_hour(p) == 8.0


def test_missed_clips_follow_the_device_hold_off():
    pos = np.zeros(400, np.uint8)
    # clip 0: invocations 50..60 with a burst inside: detected
    burst(pos, 52)
    # lead-in of clip 1 fires at 150; the clip's own burst at 162 falls in the hold-off
    burst(pos, 150)
    burst(pos, 162)
    # clip 2: invocations 250..260, nothing: missed; clip 3: 300..310, burst at 305
    burst(pos, 305)
    spans = [(150, 183), (480, 513), (750, 783), (900, 933)]  # frames: 3 * invocations
    outs = outputs_with([np.zeros(100, np.uint8)], pos, spans, hours=1.0)
    p = evaluate.measure(outs, CUTOFF, WINDOW)
    assert (p.missed, p.leadin_detections, p.false_accepts) == (2, 1, 0)
    # without the lead-in's detection clip 1 is found
    pos[150:154] = 0
    assert evaluate.measure(outs, CUTOFF, WINDOW).missed == 1


def test_the_curve_scans_every_window_and_stops_past_the_useful_range():
    rng = np.random.default_rng(3)
    neg = rng.integers(0, 256, 3000).astype(np.uint8)
    outs = outputs_with([neg], np.zeros(60, np.uint8), [(0, 90)], hours=0.1)
    curve = evaluate.measure_curve(outs, windows=(3, 5))
    assert {p.window for p in curve.points} == {3, 5}
    for w in (3, 5):
        pts = [p for p in curve.points if p.window == w]
        assert pts[0].cutoff_u8 == evaluate.HIGHEST_CUTOFF_U8
        stop = max(evaluate.CURVE_STOP_FALSE_ACCEPTS, evaluate.CURVE_STOP_FA_PER_HOUR * 0.1)
        assert pts[-1].false_accepts > stop
        assert all(p.false_accepts <= stop for p in pts[:-1])
        # every count is what the detector gives for that point
        for p in pts[::7]:
            assert p.false_accepts == len(detector.detections(neg, p.cutoff_u8, w))
    packed = curve.compact()
    assert set(packed) == {"3", "5"} and packed["3"][0][0] == evaluate.HIGHEST_CUTOFF_U8


def pt(window: int, cutoff: int, fa: int, missed: int) -> Point:
    return Point(window, cutoff, fa, missed, 0)


def test_the_choice_is_the_lowest_frr_within_the_target():
    # 2 hours: a target of 0.5/h allows one false accept
    curve = Curve(
        [
            pt(3, 230, 0, 30),
            pt(3, 220, 1, 20),
            pt(3, 210, 2, 5),  # best FRR, but 1 FA/h
            pt(5, 215, 1, 20),  # same FRR as (3, 220): the higher cutoff wins
            pt(5, 200, 0, 25),
        ],
        positives=100,
        hours=2.0,
    )
    point = evaluate.choose(curve, 0.5)
    assert (point.sliding_window_size, point.cutoff_u8) == (3, 220)
    assert point.target_met and point.false_accepts == 1 and point.false_accepts_per_hour == 0.5
    assert point.false_reject_rate == 0.2 and point.negative_hours == 2.0
    assert int(point.probability_cutoff * 255) == 220
    assert evaluate.best_at(curve, 1.0) == pt(3, 210, 2, 5)
    assert evaluate.best_at(curve, 0.0) == pt(5, 200, 0, 25)


def test_the_choice_keeps_the_cutoff_at_one_half_or_above():
    curve = Curve(
        [pt(3, 200, 0, 10), pt(3, 126, 0, 2), pt(5, 60, 0, 0), pt(5, 127, 0, 4)],
        positives=100,
        hours=3.0,
    )
    point = evaluate.choose(curve, 0.5)
    assert (point.sliding_window_size, point.cutoff_u8) == (5, 127)
    assert point.target_met and point.probability_cutoff >= 0.5
    assert evaluate.best_at(curve, 0.5) == pt(5, 60, 0, 0)  # the comparison sees them all


def test_a_target_out_of_reach_takes_the_fewest_false_accepts_and_says_so():
    curve = Curve(
        [pt(3, 250, 4, 40), pt(3, 240, 6, 10), pt(5, 252, 4, 35), pt(5, 200, 9, 1)],
        positives=100,
        hours=1.0,
    )
    point = evaluate.choose(curve, 0.5)
    assert not point.target_met
    assert (point.sliding_window_size, point.cutoff_u8, point.false_accepts) == (5, 252, 4)
    assert evaluate.best_at(curve, 0.5) is None
    ev = evaluation_of(curve, point)
    said = "\n".join(ev.lines())
    assert "NOT MET" in said and "WARNING" in said and "0.5/h: not reached" in said
    assert ev.to_json()["target_met"] is False


def evaluation_of(curve: Curve, point: evaluate.OperatingPoint) -> evaluate.Evaluation:
    ev = evaluate.Evaluation(
        model="test",
        model_bytes=1000,
        point=point,
        curve=curve,
        at_fa_per_hour={},
        streams={"hours": curve.hours},
        tflm_invocations=10,
        tflm_us_per_invocation=30.0,
        heldout_clips={"clips": 5, "accepted": 1, "accepted_by_kind": {"speech": 1}},
    )
    ev.at_fa_per_hour = {
        f"{x:g}": ev.point_json(evaluate.best_at(curve, x)) for x in evaluate.REPORT_FA_PER_HOUR
    }
    return ev


def test_the_det_curve_is_a_png(tmp_path):
    from wakeward_train import detplot

    curve = Curve(
        [pt(w, c, max(0, 250 - c) // 4, c // 5) for w in (3, 5) for c in range(250, 150, -5)],
        positives=60,
        hours=2.0,
    )
    ev = evaluation_of(curve, evaluate.choose(curve, 0.5))
    path = detplot.save(ev, tmp_path / "m.det.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_file_that_is_no_model_is_named(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(WakewardError, match="bad.tflite: TFLite Micro cannot load the model"):
        evaluate.load_reference(bad.read_bytes(), bad)


def test_the_reading_at_both_targets_needs_recorded_and_synthetic_speech_within_them():
    # two points: a low cutoff that misses nothing, a high one that misses 2 of 4 clips
    low = Point(window=WINDOW, cutoff_u8=100, false_accepts=1, missed=0, leadin_detections=0)
    high = Point(window=WINDOW, cutoff_u8=220, false_accepts=0, missed=2, leadin_detections=0)
    curve = Curve([low, high], positives=4, hours=1.0)
    real = np.zeros(3000, np.uint8)
    for at in (500, 1000, 1500):  # three bursts over 150 but under 220
        real[at : at + 4] = 150
    # one hour of recorded speech: 3 false accepts at cutoff 100, none at 220
    got = evaluate.both_targets(curve, [real], real_hours=1.0)
    assert got is not None
    assert (got["probability_cutoff"], got["false_reject_rate"]) == (
        evaluate.manifest_cutoff(220),
        0.5,
    )
    assert (got["real_false_accepts"], got["synthetic_false_accepts"]) == (0, 0)
    # with 10 hours of it, 3 false accepts are 0.3 FA/h: the low cutoff is within both
    got = evaluate.both_targets(curve, [real], real_hours=10.0)
    assert got is not None and got["false_reject_rate"] == 0.0
    assert got["real_false_accepts"] == 3
    # a synthetic limit of 0 leaves only the high cutoff, and a recorded limit of 0 with a
    # burst at 250 leaves nothing
    real[2000:2004] = 250
    assert evaluate.both_targets(curve, [real], 1.0, real_fa_per_hour=0.0) is None


def _bursts(hours_frames: int, at: Sequence[int], level: int) -> np.ndarray:
    out = np.zeros(hours_frames, np.uint8)
    for a in at:
        out[a : a + 4] = level
    return out


def test_the_choice_stays_within_the_target_on_the_validation_recorded_speech_too():
    # synthetic: every point within 0.5/h; the recorded validation speech (1 h: no false
    # accept allowed) has bursts at 150 and 215, so only cutoffs of 215 and above keep it
    curve = Curve(
        [pt(3, 230, 0, 30), pt(3, 220, 0, 20), pt(3, 200, 0, 5), pt(3, 140, 0, 1)],
        positives=100,
        hours=2.0,
    )
    real = evaluate.RealCheck(
        [_bursts(5000, (100, 900, 1700), 150), _bursts(5000, (300,), 215)], 1.0
    )
    point = evaluate.choose(curve, 0.5, real)
    assert point.cutoff_u8 == 220 and point.target_met and point.validation_met
    assert (point.validation_false_accepts, point.validation_hours) == (0, 1.0)
    assert evaluate.choose(curve, 0.5).cutoff_u8 == 140  # without it: the lowest FRR
    ev = evaluation_of(curve, point)
    said = "\n".join(ev.lines())
    assert "chosen against 1 h of recorded speech too" in said and "target 0.5/h: met" in said
    assert "composed" not in said
    assert "real_validation" in ev.to_json()["method"]
    ev.real_validation = {"hours": 1.0, "compositions": 4}
    said = "\n".join(ev.lines())
    assert "held-out speakers, its recordings composed 4 ways): 0 false accepts" in said


def test_the_validation_out_of_reach_takes_its_fewest_false_accepts_and_says_so():
    curve = Curve([pt(3, 250, 0, 40), pt(3, 200, 0, 5), pt(5, 240, 3, 1)], positives=100, hours=1.0)
    # a burst at 255 for 4 frames: no cutoff turns it down; at 200 one more
    real = evaluate.RealCheck([_bursts(4000, (300, 2000), 255), _bursts(4000, (500,), 210)], 1.0)
    point = evaluate.choose(curve, 0.5, real)
    assert (point.cutoff_u8, point.validation_false_accepts) == (250, 2)
    assert not point.target_met and point.validation_met is False
    said = "\n".join(evaluation_of(curve, point).lines())
    assert "reach 0.5 on the validation recorded speech" in said and "NOT MET" in said
