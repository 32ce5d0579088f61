"""Mutated copies of the real models through the whole interpreter (read, prepare, invoke):
only the interpreter's own errors may come out, never a crash, a hang or another exception."""

from __future__ import annotations

import numpy as np
from wakeward import models

MUTANTS = 300

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
    rng = np.random.default_rng(2026)
    sources = [models.resolve(name).read_bytes() for name in models.BUILTIN]
    for k in range(MUTANTS):
        (tmp_path / f"m{k}.tflite").write_bytes(mutate(sources[k % len(sources)], rng))
    out = mp.output(FUZZ.replace("COUNT", str(MUTANTS)), heap="esp32s3-psram", timeout_s=300)
    assert "ESCAPED" not in out, out
    summary = out.strip().splitlines()[-1].split()
    expected, prepared = int(summary[1]), int(summary[3])
    assert expected + prepared >= MUTANTS  # every mutant either failed cleanly or ran
    assert expected > 0 and prepared > 0  # both outcomes happen: the mutator bites
