"""Per-kernel parity on models TensorFlow's converter made (tests/fixtures/tf_kernels/, built
by tests/fixtures/make_tf_kernels.py and committed, so no TensorFlow is needed here): the
device interpreter (MicroPython unix port) and TFLite Micro agree bit for bit on random
inputs, and each fixture still holds the ops it is there to cover."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from wakeward import modelcheck, unixport

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf_kernels"
INDEX = json.loads((FIXTURES / "index.json").read_text())
INVOCATIONS = 20


def test_every_fixture_is_indexed():
    assert sorted(p.stem for p in FIXTURES.glob("*.tflite")) == sorted(INDEX)


@pytest.mark.parametrize("name", sorted(INDEX))
def test_tf_made_model_is_bit_exact(name):
    report = modelcheck.check(
        FIXTURES / f"{name}.tflite",
        invocations=INVOCATIONS,
        seed=len(name),
        heap=unixport.MODEL_HEAP_PROFILE,
    )
    assert report.bit_exact, "\n".join(report.lines())
    covered = set(re.findall(r"\b[A-Z][A-Z0-9_]*[A-Z0-9]\b", INDEX[name])) - {"SAME", "VALID"}
    covered -= {"RELU", "RELU6"}  # fused activations, not ops of their own
    assert covered <= set(report.ops), (covered, report.ops)
    assert len(np.unique(report.outputs)) > 2, "outputs barely move: a weak test"
