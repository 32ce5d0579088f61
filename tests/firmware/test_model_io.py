"""A model without an input or an output tensor is broken like any other: the firmware
reports it at boot and listens with the others, never stops on an IndexError."""

from __future__ import annotations

import json

import numpy as np

from tests import tflm_builder as tb
from tests.conftest import write_test_wav

FEATURES = 3 * 40  # a microWakeWord input: [1, 3, 40] int8

BOOT = """
import json, main
cfg = json.load(open("cfg.json"))
loaded = main.load_wakewords(cfg)
print("loaded", [w.name for w in loaded])
"""


def no_inputs() -> bytes:
    """A constant reshaped: the subgraph lists no input tensor."""
    m = tb.Model()
    c = m.tensor([1, FEATURES], scale=0.1, zero_point=0, data=np.zeros(FEATURES, np.int8))
    y = tb.reshape(m, c, [1, FEATURES])
    return m.build([], [y])


def no_outputs() -> bytes:
    m = tb.Model()
    x = m.tensor([1, 3, 40], scale=0.1, zero_point=0)
    tb.reshape(m, x, [1, FEATURES])
    return m.build([x], [])


def one_output() -> bytes:
    """A well-formed toy: [1, 3, 40] in, one value out (a MEAN over everything)."""
    m = tb.Model()
    x = m.tensor([1, 3, 40], scale=0.1, zero_point=0)
    y = tb.reshape(m, x, [1, FEATURES])
    z = tb.mean(m, y, [1], keep_dims=True, out_scale=0.1, out_zp=0)
    return m.build([x], [z])


def entry(name: str) -> dict:
    return {"name": name, "path": f"{name}.tflite", "probability_cutoff": 0.9,
            "sliding_window_size": 5}  # fmt: skip


def test_models_without_inputs_or_outputs_are_reported_and_left_out(mp):
    (mp.cwd / "noin.tflite").write_bytes(no_inputs())
    (mp.cwd / "noout.tflite").write_bytes(no_outputs())
    (mp.cwd / "good.tflite").write_bytes(one_output())
    cfg = {"models": [entry("noin"), entry("noout"), entry("good")]}
    (mp.cwd / "cfg.json").write_text(json.dumps(cfg))
    out = mp.output(BOOT, heap="esp32s3-psram")
    assert "wakeward: model noin not loaded: noin.tflite: the model has no input" in out, out
    assert "wakeward: model noout not loaded: noout.tflite: the model has no output" in out
    assert "loaded ['good']" in out


def test_the_device_boots_and_listens_without_the_broken_model(mp):
    write_test_wav(mp.cwd / "x.wav", np.zeros(16000, np.int16))
    (mp.cwd / "noin.tflite").write_bytes(no_inputs())
    cfg = {"board": "sim", "board_options": {"wav": "x.wav"}, "models": [entry("noin")]}
    (mp.cwd / "config.json").write_text(json.dumps(cfg))
    out = mp.output(
        "import main\nmain.main()\nprint('listened to the end')\n", heap="esp32s3-psram"
    )
    assert "model noin not loaded" in out and "listened to the end" in out
