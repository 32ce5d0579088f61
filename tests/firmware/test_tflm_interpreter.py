"""The device interpreter runs the four pymicro-wakeword models bit-exactly against TFLite
Micro (PyPI tflite-micro), over 2,000+ streaming invocations of real speech features and of
random inputs, without allocating per invocation."""

from __future__ import annotations

import numpy as np
import pytest
from wakeward import modelcheck

from tests.conftest import require_tools

MODELS = ("alexa", "hey_jarvis", "hey_mycroft", "okay_nabu")
INVOCATIONS = 2100


def check(name: str, inputs: np.ndarray) -> modelcheck.Report:
    """Device interpreter vs TFLite Micro (wakeward model check's API). The whole run is
    under heap_lock, so an allocation per invocation fails it."""
    return modelcheck.check(name, inputs=inputs, heap="esp32s3-psram")


def assert_bit_exact(report: modelcheck.Report) -> None:
    assert report.bit_exact, "\n".join(report.lines())


@pytest.fixture(scope="module")
def speech_chunks(tmp_path_factory) -> np.ndarray:
    """Consecutive [1, 3, 40] int8 model inputs from synthetic speech with the wake words,
    through pymicro-features, quantised as pymicro-wakeword feeds its models."""
    require_tools("espeak-ng", "sox")
    from pymicro_features import MicroFrontend
    from wakeward import tts

    tmp = tmp_path_factory.mktemp("speech")
    lines = [
        "Alexa, what is the weather like today?",
        "Hey Jarvis, turn on the kitchen lights.",
        "Hey Mycroft, play some music please.",
        "Okay Nabu, set a timer for ten minutes.",
        "The quick brown fox jumps over the lazy dog, and then Alexa laughed.",
    ]
    voices = [("en-us", 150), ("en-gb", 130), ("en-us+f3", 170), ("en-us+m3", 120)]
    parts = []
    for i, (voice, rate) in enumerate(voices):
        for j, text in enumerate(lines):
            parts.append(np.zeros(4000, np.int16))
            parts.append(tts.espeak(text, tmp / f"s{i}_{j}.wav", voice=voice, rate_wpm=rate))
    audio = np.concatenate(parts)
    frontend = MicroFrontend()
    features = []
    data = audio.tobytes()
    step = 320  # 10 ms of int16, advanced by what the frontend consumed (as pymicro-wakeword)
    at = 0
    while at + step <= len(data):
        result = frontend.process_samples(data[at : at + step])
        at += 2 * result.samples_read
        if result.features:
            features.append(result.features)
    feats = np.array(features, dtype=np.float64)
    q = np.clip(np.round(feats / 0.10196078568696976 - 128), -128, 127).astype(np.int8)
    n = len(q) // 3
    chunks = q[: 3 * n].reshape(n, 1, 3, 40)
    assert n >= INVOCATIONS, f"only {n} invocations of speech"
    return chunks[:INVOCATIONS]


def random_chunks(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (INVOCATIONS, 1, 3, 40)).astype(np.int8)


@pytest.mark.parametrize("name", MODELS)
def test_speech_features_bit_exact(speech_chunks, name):
    report = check(name, speech_chunks)
    assert_bit_exact(report)
    assert report.invocations == INVOCATIONS
    assert len(np.unique(report.outputs)) > 3, "the speech should move the model's output"
    assert report.manifest_arena_bytes is not None
    assert report.arena_bytes + report.variable_bytes <= report.manifest_arena_bytes


def test_alexa_fires_on_speech(speech_chunks):
    report = check("alexa", speech_chunks)
    assert report.outputs.max() >= 230  # the recording says "Alexa" several times


@pytest.mark.parametrize("name", MODELS)
def test_random_inputs_bit_exact(name):
    assert_bit_exact(check(name, random_chunks(MODELS.index(name))))


def test_a_mismatch_is_reported_with_its_place(monkeypatch):
    """The comparison can fail: a reference that differs in one place is reported there."""
    real = modelcheck._reference

    def off_by_one(model, inputs):
        outputs, us = real(model, inputs)
        outputs[17, 0] ^= 1
        return outputs, us

    monkeypatch.setattr(modelcheck, "_reference", off_by_one)
    report = check("alexa", random_chunks(9)[:50])
    assert not report.bit_exact
    k, i, device, reference = report.first_mismatch
    assert (k, i) == (17, 0) and device ^ reference == 1
    assert "first mismatch at invocation 17, output index 0" in report.lines()[-1]


BIASED_ONCE = """
from tflm import interpreter, model
path = {path!r}
data = open("inputs.raw", "rb").read()
size = {size}
file = open(path, "rb").read()
theirs = bytes(file)
own = model.load(path)
seen = []
for m in (own, own, model.Model(theirs)):
    it = interpreter.Interpreter(m)
    out = bytearray()
    for k in range(len(data) // size):
        it.set_input(0, data[k * size : (k + 1) * size])
        it.invoke()
        out.extend(it.outputs[0])
    seen.append(bytes(out))
print("same outputs", seen[0] == seen[1] == seen[2])
print("own biased", own.biased, bytes(own._buf) != file)
print("theirs untouched", theirs == file)
"""


def test_filters_are_biased_once_in_the_models_own_bytes(mp, tmp_path):
    """conv.py reads filters biased (w ^ 0x80): the interpreter rewrites them in a loaded
    model's own bytes once, however many interpreters the model gets, and copies them out
    of bytes that are the caller's, which stay as they are."""
    from wakeward import models

    chunks = random_chunks(7)[:40]
    (tmp_path / "inputs.raw").write_bytes(chunks.tobytes())
    code = BIASED_ONCE.format(path=str(models.resolve("alexa")), size=chunks[0].size)
    out = mp.output(code, heap="esp32s3-psram")
    assert "same outputs True" in out
    assert "own biased True True" in out
    assert "theirs untouched True" in out


NOTHING_LEFT = """
import gc
from tflm import interpreter, model
m = model.load({path!r})
interpreter.Interpreter(m)  # interns the names prepare uses, which stay
gc.collect()
start = gc.mem_alloc()
it = interpreter.Interpreter(m)
for name in list(it.__dict__):
    setattr(it, name, None)
gc.collect()
print("left", gc.mem_alloc() - start)
"""


def test_prepare_leaves_nothing_behind_but_the_attributes(mp):
    """With every attribute of a prepared interpreter set to None, what it still holds is
    the instance itself: MicroPython's delattr leaves a value in the instance's table,
    where the collector finds it, so the prepare-only state is set to None, not deleted
    (alexa: 4 KB of views into the model and the arena otherwise)."""
    from wakeward import models

    out = mp.output(NOTHING_LEFT.format(path=str(models.resolve("alexa"))), heap="esp32s3-psram")
    left = int(out.split("left")[1].split()[0])
    assert left < 1024, out
