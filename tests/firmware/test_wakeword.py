"""The listening pipeline on the sim board: device frontend -> device interpreter ->
ESPHome's detector, against pymicro-features -> TFLite Micro -> the same rule transcribed
here, and the firmware's handling of a broken model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wakeward import detector, features, models
from wakeward.audio import RATE_HZ, write_wav

from tests.conftest import require_tools

HOLD_FRAMES = 100  # ESPHome's MIN_SLICES_BEFORE_DETECTION


def reference_detections(outputs: list[int], cutoff: float, window: int) -> list[int]:
    """streaming_model.cpp's rule, transcribed: invocation indices that detect."""
    cutoff_u8 = int(cutoff * 255)
    recent = [0] * window
    at = 0
    hold = -HOLD_FRAMES
    found = []
    for k, p in enumerate(outputs):
        for frame in range(3):  # three feature frames per invocation, the output on the last
            if frame == 2:
                at = (at + 1) % window
                recent[at] = p
            if hold < 0 and recent[at] < cutoff_u8:
                hold = min(hold + 1, 0)
        if hold >= 0 and sum(recent) > cutoff_u8 * window:
            found.append(k)
            recent = [0] * window
            hold = -HOLD_FRAMES
    return found


DETECTOR = """
import json, sys
from wakeword import Detector
d = Detector(CUTOFF, WINDOW)
hits = []
outputs = json.load(open("outputs.json"))
for k in range(len(outputs)):
    d.frame()
    d.frame()
    if d.frame(outputs[k]):
        hits.append(k)
print(json.dumps(hits))
"""


def bursty_outputs(seed: int) -> list[int]:
    """Quiet stretches and bursts of high outputs of random length."""
    rng = np.random.default_rng(seed)
    outputs: list[int] = []
    for _ in range(60):
        outputs += [int(v) for v in rng.integers(0, 120, int(rng.integers(5, 60)))]
        outputs += [int(v) for v in rng.integers(200, 256, int(rng.integers(1, 12)))]
    return outputs


@pytest.mark.parametrize("seed", range(4))
def test_detector_follows_esphome(mp, seed):
    outputs = bursty_outputs(seed)
    (mp.cwd / "outputs.json").write_text(json.dumps(outputs))
    cutoff, window = 0.9, 5
    code = DETECTOR.replace("CUTOFF", str(int(cutoff * 255))).replace("WINDOW", str(window))
    got = json.loads(mp.output(code))
    expected = reference_detections(outputs, cutoff, window)
    assert got == expected
    assert len(expected) > 3  # the bursts do trigger it


HOST_CASES = [(c, w) for c in (0, 1, 60, 150, 229, 254, 255) for w in (1, 3, 5, 10, 34, 35, 40)]

DETECTOR_CASES = """
import json
from wakeword import Detector
outputs = json.load(open("outputs.json"))
result = []
for cutoff, window in json.load(open("cases.json")):
    d = Detector(cutoff, window)
    hits = []
    for k in range(len(outputs)):
        d.frame()
        d.frame()
        if d.frame(outputs[k]):
            hits.append(k)
    result.append(hits)
print(json.dumps(result))
"""


@pytest.mark.parametrize("seed", range(2))
def test_the_host_detector_equals_the_firmware(mp, seed):
    """wakeward.detector (try, and the trainer's FA/h over hours) against the firmware's
    own Detector on the unix port: the streaming class and the fast whole-stream search,
    over cutoffs and windows on both sides of the fast path's limit."""
    outputs = bursty_outputs(10 + seed)
    if seed:  # long windows need long bursts to reach the cutoff
        rng = np.random.default_rng(seed)
        outputs += [int(v) for v in rng.integers(240, 256, 200)] + [0] * 50
        outputs += [int(v) for v in rng.integers(140, 256, 300)]
    (mp.cwd / "outputs.json").write_text(json.dumps(outputs))
    (mp.cwd / "cases.json").write_text(json.dumps(HOST_CASES))
    device = json.loads(mp.output(DETECTOR_CASES))
    hits = 0
    for (cutoff, window), expected in zip(HOST_CASES, device, strict=True):
        fast = detector.detections(np.array(outputs, np.uint8), cutoff, window).tolist()
        streaming = detector.Detector(cutoff, window)
        stepped = [k for k, p in enumerate(outputs) if streaming.output(p)]
        assert fast == expected, (cutoff, window)
        assert stepped == expected, (cutoff, window)
        hits += len(expected)
    assert hits > 50  # the cases do detect


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    require_tools("espeak-ng", "sox")
    from wakeward import tts

    tmp = tmp_path_factory.mktemp("ww")
    parts = []
    texts = ["Alexa, what time is it?", "I like my coffee hot.", "Alexa, turn off the lights."]
    for i, text in enumerate(texts):
        parts.append(np.zeros(RATE_HZ // 2, np.int16))
        parts.append(tts.espeak(text, tmp / f"p{i}.wav", voice="en-us", rate_wpm=150))
    parts.append(np.zeros(RATE_HZ // 2, np.int16))
    return write_wav(tmp / "speech.wav", np.concatenate(parts))


def sim_json(wav: Path, *model_args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "wakeward",
            "sim",
            str(wav),
            "--json",
            "--heap",
            "esp32s3-psram",
            *model_args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_sim_json_equals_the_reference_pipeline(speech, tmp_path):
    done = sim_json(speech, "--model", "alexa", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    samples = np.frombuffer(speech.read_bytes()[44:], "<i2")
    inputs = features.model_inputs(features.reference_features(samples))
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(models.resolve("alexa").read_bytes())
    reference = []
    for chunk in inputs:
        it.set_input(chunk, 0)
        it.invoke()
        reference.append(int(it.get_output(0).reshape(-1)[0]))
    assert [r["p"] for r in records] == reference
    assert [r["model"] for r in records] == ["alexa"] * len(reference)
    times = [r["t"] for r in records]
    assert times[0] == pytest.approx(0.05) and np.allclose(np.diff(times), 0.03)
    detected = [k for k, r in enumerate(records) if r["detected"]]
    assert detected == reference_detections(reference, 0.9, 5)
    assert detected  # the model does fire on this recording (how often is the model's business)


def test_a_broken_model_is_reported_and_the_others_run(speech, tmp_path):
    (tmp_path / "broken.tflite").write_bytes(b"TFL3 but not really a model")
    done = sim_json(
        speech, "--model", str(tmp_path / "broken.tflite"), "--model", "alexa", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "model broken not loaded" in done.stderr
    assert any(json.loads(line)["detected"] for line in done.stdout.splitlines())
