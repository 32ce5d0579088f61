"""The device pipeline end to end: firmware/frontend.py feeding the firmware's TFLite Micro
interpreter (firmware/tflm), both in one MicroPython process on the unix port (ESP32-S3 with
PSRAM heap), gives the same output at every invocation as the PC reference:
pymicro-features (converted to int8 with ESPHome's formula) feeding TFLite Micro.

The audio is ~60 s of espeak-ng speech with the four wake phrases in five voices, over
light noise. Each invocation takes 3 consecutive frames ([1, 3, 40] int8, stride 3, not
overlapping), as pymicro-wakeword and ESPHome feed the models.
"""

from __future__ import annotations

import numpy as np
import pytest
from wakeward import features, models, tts

from tests.conftest import require_tools

PHRASES = [
    "Alexa, what time is it?",
    "Hey Jarvis, turn on the lights.",
    "Hey Mycroft, play some music.",
    "Okay Nabu, set a timer.",
]
VOICES = [("en-us", 150), ("en-gb", 130), ("en-us+f3", 160), ("en-us+m3", 120), ("en-gb-x-rp", 140)]
PAUSE = 8000  # samples of quiet before each phrase

# One process: the frontend streams audio.raw; every 3 frames, each model is invoked on
# the same [1, 3, 40] input. Writes the frames (int8) and the outputs of every invocation.
DEVICE_SCRIPT = """
import frontend
from tflm import interpreter, model
its = [interpreter.Interpreter(model.load(p)) for p in MODEL_PATHS]
fe = frontend.Frontend()
inp = bytearray(120)
inv = memoryview(inp)
buf = bytearray(6400)
src = open('audio.raw', 'rb')
frames = open('frames.raw', 'wb')
outs = open('outputs.raw', 'wb')
k = 0
calls = 0
while True:
    got = src.readinto(buf)
    if not got:
        break
    n = got >> 1
    at = 0
    while at < n:
        at += fe.feed(buf, at, n - at)
        if fe.ready:
            frames.write(fe.frame_int8)
            inv[40 * k : 40 * k + 40] = fe.frame_int8
            k += 1
            if k == 3:
                k = 0
                calls += 1
                for it in its:
                    it.set_input(0, inp)
                    it.invoke()
                    outs.write(it.outputs[0])
frames.close()
outs.close()
print('frames', fe.frames, 'invocations', calls)
"""


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    require_tools("espeak-ng", "sox")
    tmp = tmp_path_factory.mktemp("wake")
    parts = []
    for i, (voice, rate) in enumerate(VOICES):
        for j, text in enumerate(PHRASES):
            parts.append(np.zeros(PAUSE, np.int16))
            parts.append(tts.espeak(text, tmp / f"w{i}_{j}.wav", voice=voice, rate_wpm=rate))
    audio = np.concatenate(parts).astype(np.float64)
    audio += np.random.default_rng(7).normal(0, 200, len(audio))
    return np.clip(np.round(audio), -32768, 32767).astype(np.int16)


def reference_outputs(name: str, inputs: np.ndarray) -> np.ndarray:
    """TFLite Micro, one invocation per [1, 3, 40] input, in order (the state streams)."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(models.resolve(name).read_bytes())
    outs = []
    for x in inputs:
        it.set_input(x, 0)
        it.invoke()
        outs.append(it.get_output(0).reshape(-1).copy())
    return np.array(outs)


def test_device_frontend_and_interpreter_match_the_reference(mp, speech):
    seconds = len(speech) / 16000
    assert 55 <= seconds <= 70, seconds
    names = list(models.BUILTIN)
    paths = [str(models.resolve(n).resolve()) for n in names]

    # the PC reference
    want_frames = features.reference_features(speech)
    inputs = features.model_inputs(want_frames)
    want = {n: reference_outputs(n, inputs) for n in names}

    # the device, one process
    (mp.cwd / "audio.raw").write_bytes(speech.astype("<i2").tobytes())
    out = mp.output(
        DEVICE_SCRIPT.replace("MODEL_PATHS", repr(paths)), heap="esp32s3-psram", timeout_s=300
    )
    assert out.split() == ["frames", str(len(want_frames)), "invocations", str(len(inputs))]
    got_frames = np.frombuffer((mp.cwd / "frames.raw").read_bytes(), np.int8).reshape(-1, 40)
    assert np.array_equal(got_frames, want_frames), "the frontends differ"

    width = [want[n].shape[1] for n in names]
    dtypes = [want[n].dtype for n in names]
    raw = np.frombuffer((mp.cwd / "outputs.raw").read_bytes(), np.uint8)
    assert len(raw) == len(inputs) * sum(w * d.itemsize for w, d in zip(width, dtypes, strict=True))
    rows = raw.reshape(len(inputs), -1)
    at = 0
    for name, w, dt in zip(names, width, dtypes, strict=True):
        got = np.ascontiguousarray(rows[:, at : at + w * dt.itemsize]).view(dt)
        at += w * dt.itemsize
        bad = np.argwhere(got != want[name])
        assert not len(bad), (
            f"{name}: first mismatch at invocation {bad[0][0]}: "
            f"device {got[tuple(bad[0])]}, TFLite Micro {want[name][tuple(bad[0])]}"
        )

    peaks = {n: int(want[n].max()) for n in names}
    assert max(peaks.values()) > 200, f"no model woke on the speech: {peaks}"
