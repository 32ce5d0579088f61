"""Training windows and the per-clip detection rule: numpy only (no TensorFlow needed).
The evaluation stage itself is tested in test_evaluate.py and test_streams.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from wakeward.errors import WakewardError
from wakeward_train import evaluate, windows
from wakeward_train.dataset import ClipRecord, Dataset
from wakeward_train.model import INPUT_SCALE, QUICK_CONFIG, ModelConfig, to_float


def record(i: int, label: int, frames: int, offset: int, **kw) -> ClipRecord:
    base = {
        "id": f"c{i}",
        "split": "train",
        "label": label,
        "kind": "tts" if label else "confusable",
        "text": None,
        "voice": None,
        "speaker": f"espeak:v{i % 7}",
        "prosody": None,
        "augmentation": None,
        "gain_db": None,
        "seed": [0, 0, i],
        "source": None,
        "offset": offset,
        "frames": frames,
        "samples": frames * 160,
        "speech_start_frame": 40,
        "speech_end_frame": 120,
    }
    return ClipRecord(**{**base, **kw})


def fake_dataset(n_clips: int = 20, frames: int = 180) -> Dataset:
    rng = np.random.default_rng(0)
    feats = rng.integers(-128, 128, (n_clips * frames, 40)).astype(np.int8)
    records = [record(i, i % 2, frames, i * frames) for i in range(n_clips)]
    return Dataset(Path("fake"), {}, records, {"train": feats, "heldout": feats[:0]})


def test_a_window_ends_where_asked_and_mirrors_the_clip_start():
    clip = np.arange(50 * 40, dtype=np.int64).reshape(50, 40).astype(np.int8)
    w = windows.window(clip, 30, 20)
    assert w.tobytes() == clip[11:31].tobytes()
    w = windows.window(clip, 4, 8)  # starts 3 frames before the clip: mirrored frames 2, 1, 0
    assert w.tobytes() == np.concatenate([clip[2::-1], clip[:5]]).tobytes()
    with pytest.raises(WakewardError, match="outside a clip of 50 frames"):
        windows.window(clip, 50, 8)


def test_positives_end_just_after_the_phrase_and_partials_before_it():
    data = fake_dataset()
    cfg = windows.WindowConfig()
    w = windows.cut(data, data.records, 47, cfg, seed=3)
    assert w.x.shape[1:] == (47, 40) and w.x.dtype == np.int8
    for x, y, kind, clip in zip(w.x, w.y, w.kind, w.clip, strict=True):
        r = data.records[clip]
        feats = data.clip(r)
        # find where the window ends in its clip (windows of random features are unique)
        end = next(e for e in range(len(feats)) if np.array_equal(x[-1], feats[e]))
        if kind == windows.POSITIVE:
            assert y == 1.0 and r.label == 1
            assert cfg.positive_span[0] <= end - r.speech_end_frame <= cfg.positive_span[1]
        elif kind == windows.PARTIAL:
            assert y == 0.0 and r.label == 1 and end <= r.speech_end_frame - cfg.partial_gap
        else:
            assert y == 0.0 and r.label == 0 and kind == "confusable"
    counts = w.counts()
    assert counts["positive"] == 10 * cfg.positives_per_clip
    assert counts["partial"] == 10 * cfg.partials_per_clip
    again = windows.cut(data, data.records, 47, cfg, seed=3)
    assert again.x.tobytes() == w.x.tobytes()  # seeded
    assert windows.cut(data, data.records, 47, cfg, seed=4).x.tobytes() != w.x.tobytes()


def test_the_validation_split_keeps_speakers_apart_and_the_owner_in_training():
    recs = [record(i, i % 2, 100, 0) for i in range(70)]
    recs += [record(100 + i, 1, 100, 0, kind="owner", speaker="owner:owner") for i in range(5)]
    recs += [record(200 + i, 0, 100, 0, kind="noise", speaker=None) for i in range(40)]
    fit, val = windows.validation_split(recs, 0.3, seed=1)
    assert len(fit) + len(val) == len(recs)
    assert {r.speaker for r in fit if r.speaker} & {r.speaker for r in val if r.speaker} == set()
    assert all(r.kind != "owner" for r in val)
    assert 0 < sum(r.kind == "noise" for r in val) < 40
    assert [r.id for r in val] == [r.id for r in windows.validation_split(recs, 0.3, seed=1)[1]]


def test_receptive_field_and_alignment():
    cfg = ModelConfig()
    assert cfg.receptive_steps == 1 + (4 + 8 + 12 + 16) + 4
    assert cfg.receptive_frames == cfg.first_kernel + 3 * (cfg.receptive_steps - 1) == 137
    assert QUICK_CONFIG.receptive_frames == 47
    for k, align in ((3, 0), (4, 2), (5, 1), (6, 0)):
        assert replace(cfg, first_kernel=k).alignment == align


def test_int8_features_map_onto_0_to_26():
    # the microWakeWord models' input scale, to the bit (prints as 0.10196079)
    assert np.float32(INPUT_SCALE).view(np.uint32) == 1037095121
    assert abs(float(INPUT_SCALE) - 0.10196079) < 1e-8
    f = to_float(np.array([-128, 0, 127], np.int8))
    assert f[0] == 0.0 and abs(f[2] - 26.0) < 1e-5
    with pytest.raises(WakewardError, match="int8"):
        to_float(np.zeros(3, np.int16))


# -- evaluation --------------------------------------------------------------------------


def esphome_detects(outputs: list[int], cutoff: int, window: int) -> bool:
    """firmware/wakeword.py's Detector without its start-up hold-off."""
    recent = [0] * window
    for k, p in enumerate(outputs):
        recent[k % window] = p
        if sum(recent) > cutoff * window:
            return True
    return False


def test_detection_follows_the_device_rule():
    rng = np.random.default_rng(5)
    for _ in range(200):
        out = rng.integers(0, 256, int(rng.integers(1, 30))).astype(np.uint8)
        cutoff, window = int(rng.integers(100, 255)), int(rng.integers(1, 8))
        expect = esphome_detects([int(v) for v in out], cutoff, window)
        assert evaluate.detects(out, cutoff, window) == expect


def test_manifest_cutoffs_survive_esphomes_truncation():
    for c in range(evaluate.HIGHEST_CUTOFF_U8 + 1):
        p = evaluate.manifest_cutoff(c)
        assert int(p * 255) == c and round(p, 3) == p


def test_stream_windows_come_from_their_part_of_each_stream():
    length = 10
    # every frame holds its index in its stream, so a window tells where it came from
    marks = [np.repeat(np.arange(n, dtype=np.int8)[:, None], 40, axis=1) for n in (120, 100)]
    rng = np.random.default_rng(0)
    w = windows.stream_windows(marks, length, 400, rng, (0.0, 0.9))
    assert len(w) == 400 and w.x.shape == (400, length, 40)
    assert not w.y.any() and set(w.kind.tolist()) == {windows.STREAM} and set(w.clip) == {-1}
    ends = w.x[:, -1, 0].astype(np.int64)
    assert np.all(np.diff(w.x[:, :, 0].astype(np.int64), axis=1) == 1)  # consecutive frames
    starts_late = windows.stream_windows(marks, length, 400, rng, (0.9, 1.0))
    late_first = starts_late.x[:, 0, 0].astype(np.int64)
    # fitting windows end before 90% of their stream; validation windows start after it
    assert ends.max() < 0.9 * 120 and late_first.min() >= int(0.9 * 100)
    both = windows.concat(w, starts_late)
    assert len(both) == 800 and list(both.counts()) == [windows.STREAM]
    with pytest.raises(WakewardError, match="part"):
        windows.stream_windows(marks, length, 1, rng, (0.5, 0.5))


def test_spec_augment_masks_one_stretch_and_one_band_and_warps_channels():
    from wakeward_train.train import SpecAugment

    x = np.random.default_rng(1).uniform(1, 26, (64, 137, 40)).astype(np.float32)
    masked = SpecAugment(probability=1.0, warp_probability=0.0).apply(
        x.copy(), np.random.default_rng(0)
    )
    for w in masked:
        rows = np.flatnonzero((w == 0).all(axis=1))
        cols = np.flatnonzero((w == 0).all(axis=0))
        assert len(rows) <= 10 and len(cols) <= 5
        assert not len(rows) or np.array_equal(rows, np.arange(rows[0], rows[-1] + 1))
    assert (masked == 0).any() and not (x == 0).any()

    def warped(max_warp: float, p: float = 1.0) -> np.ndarray:
        aug = SpecAugment(probability=0.0, warp_probability=p, max_warp=max_warp)
        return aug.apply(x.copy(), np.random.default_rng(5))

    assert np.array_equal(warped(0.0), x) and np.array_equal(warped(0.1, p=0.0), x)
    out = warped(0.1)
    # each window is its channels read at c * a by linear interpolation, one a per window
    rng = np.random.default_rng(5)
    chosen = np.flatnonzero(rng.random(len(x)) < 1.0)
    factors = 1.0 + rng.uniform(-0.1, 0.1, len(chosen))
    for i, a in zip(chosen[:8], factors[:8], strict=True):
        at = np.clip(np.arange(40) * a, 0, 39)
        want = np.stack([np.interp(at, np.arange(40), frame) for frame in x[i]])
        np.testing.assert_allclose(out[i], want, rtol=1e-5, atol=1e-5)
        assert 0.9 <= a <= 1.1 and not np.allclose(out[i], x[i])
    np.testing.assert_array_equal(out[:, :, 0], x[:, :, 0])  # channel 0 stays where it is


def test_the_owners_positive_windows_are_marked_and_weigh_their_share():
    from wakeward_train import train

    data = fake_dataset()
    recs = list(data.records)
    recs[1] = replace(recs[1], kind="owner", speaker="owner:owner")  # one positive take
    w = windows.cut(data, recs, 47, windows.WindowConfig(), seed=3)
    mine = w.clip == 1
    assert set(w.kind[mine & (w.y == 1.0)]) == {windows.OWNER}
    assert set(w.kind[mine & (w.y == 0.0)]) == {windows.PARTIAL}  # its starts stay negatives
    assert windows.OWNER not in set(w.kind[~mine])

    plain = train._weights(w.y, 2.0)
    weights = train._weights(w.y, 2.0, w.kind == windows.OWNER, 0.3)
    pos = w.y == 1.0
    owner = w.kind == windows.OWNER
    # the owner's windows weigh 30% of the positives (1 clip of 10: 10% unweighted), the
    # positive class as a whole and every negative weigh what they did
    assert weights[owner].sum() / weights[pos].sum() == pytest.approx(0.3)
    assert weights[pos].sum() == pytest.approx(plain[pos].sum())
    assert np.array_equal(weights[~pos], plain[~pos])
    assert np.array_equal(train._weights(w.y, 2.0, owner, 0.05), plain)  # already 10%
    assert np.array_equal(train._weights(w.y, 2.0, owner, 0.0), plain)
    with pytest.raises(WakewardError, match="owner_share"):
        train.TrainConfig(owner_share=1.0).check()
