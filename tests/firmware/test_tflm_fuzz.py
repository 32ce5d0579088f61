"""Mutated copies of the real models through the whole interpreter (read, prepare, invoke):
only the interpreter's own errors may come out, never a crash, a hang or another exception."""

from __future__ import annotations

import numpy as np
from wakeward import models

from tests import fuzzing

MUTANTS = 300 * fuzzing.SCALE

FUZZ = """
from tflm import interpreter, model
import gc
expected = 0
prepared = 0
for k in range(COUNT):
    name = "m%d.tflite" % k
    try:
        it = interpreter.Interpreter(model.load(name))
        prepared += 1
        it.invoke()
        it.invoke()
    except (model.ModelError, interpreter.InterpreterError):
        expected += 1
    except Exception as e:
        print("ESCAPED", name, type(e).__name__, e)
    it = None
    gc.collect()
print("expected", expected, "prepared", prepared)
"""


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = rng.integers(0, 4)
    if kind == 0:  # truncate
        return bytes(b[: int(rng.integers(8, len(b)))])
    if kind == 1:  # flip a few bytes in the structure (tables sit after the weights' offsets)
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(0, len(b)))] ^= int(rng.integers(1, 256))
    elif kind == 2:  # an extreme 32-bit word somewhere
        at = int(rng.integers(0, len(b) - 4)) & ~3
        value = int(rng.choice([0, 1, 3, 255, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000]))
        b[at : at + 4] = value.to_bytes(4, "little")
    else:  # a small integer (shape, index, stride...) nudged
        at = int(rng.integers(0, len(b) - 4)) & ~3
        v = int.from_bytes(b[at : at + 4], "little")
        if v < 1000:
            b[at : at + 4] = ((v + int(rng.integers(-3, 4))) & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(b)


def test_mutated_models_only_raise_interpreter_errors(mp, tmp_path):
    rng = np.random.default_rng(fuzzing.seed(2026))
    sources = [models.resolve(name).read_bytes() for name in models.BUILTIN]
    for k in range(MUTANTS):
        (tmp_path / f"m{k}.tflite").write_bytes(mutate(sources[k % len(sources)], rng))
    out = mp.output(
        FUZZ.replace("COUNT", str(MUTANTS)), heap="esp32s3-psram", timeout_s=300 * fuzzing.SCALE
    )
    assert "ESCAPED" not in out, out
    summary = out.strip().splitlines()[-1].split()
    expected, prepared = int(summary[1]), int(summary[3])
    assert expected + prepared >= MUTANTS  # every mutant either failed cleanly or ran
    assert expected > 0 and prepared > 0  # both outcomes happen: the mutator bites


# The boot path: main.load_wakewords over each mutant, then frames through the model as the
# listen loop feeds them. A broken model must be reported and left out; a model that loads
# must run (an error at invoke time would stop the device listening).
BOOT = """
import main, gc
from tflm import interpreter, model
frame = bytearray(40)
loaded = reported = 0
for k in range(COUNT):
    name = "m%d.tflite" % k
    said = []
    entry = {"name": "m%d" % k, "path": name, "probability_cutoff": 0.5,
             "sliding_window_size": 3}
    try:
        got = main.load_wakewords({"models": [entry]}, say=said.append)
        for ww in got:
            for i in range(6):
                frame[i] = (k + i * 37) & 0xFF
                ww.add_frame(frame)
        loaded += len(got)
        reported += len(said)
        if len(got) + len(said) != 1:
            print("ESCAPED", name, "neither loaded nor reported", said)
    except Exception as e:
        print("ESCAPED", name, type(e).__name__, e)
    got = None
    gc.collect()
print("loaded", loaded, "reported", reported)
"""
BOOT_MUTANTS = 120 * fuzzing.SCALE


def structural_mutants() -> list[bytes]:
    """alexa without its subgraph's inputs, without its outputs, and with neither."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    out = []
    for drop in ("inputs", "outputs", "both"):
        raw = models.resolve("alexa").read_bytes()
        m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(raw, 0))
        sg = m.subgraphs[0]
        if drop in ("inputs", "both"):
            sg.inputs = []
        if drop in ("outputs", "both"):
            sg.outputs = []
        builder = flatbuffers.Builder(1024)
        builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
        out.append(bytes(builder.Output()))
    return out


def test_mutated_models_at_boot_are_loaded_or_reported_never_a_crash(mp, tmp_path):
    rng = np.random.default_rng(fuzzing.seed(714))
    sources = [models.resolve(name).read_bytes() for name in models.BUILTIN]
    mutants = structural_mutants()
    while len(mutants) < BOOT_MUTANTS:
        mutants.append(mutate(sources[len(mutants) % len(sources)], rng))
    for k, data in enumerate(mutants):
        (tmp_path / f"m{k}.tflite").write_bytes(data)
    code = BOOT.replace("COUNT", str(len(mutants)))
    out = mp.output(code, heap="esp32s3-psram", timeout_s=300 * fuzzing.SCALE)
    assert "ESCAPED" not in out, out
    summary = out.strip().splitlines()[-1].split()
    loaded, reported = int(summary[1]), int(summary[3])
    assert loaded + reported == len(mutants)
    assert loaded > 0 and reported > 0
