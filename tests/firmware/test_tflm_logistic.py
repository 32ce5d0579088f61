"""int8 LOGISTIC (firmware/tflm/logistic.py) against the real TFLite Micro (PyPI
tflite-micro): every one of the 256 inputs, for many float32 input scales and zero points,
through single-op LOGISTIC models built here with the flatbuffers object API."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from tflite_micro.python.tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tests import int32check
from tests.conftest import FIRMWARE

MODELS = Path(importlib.util.find_spec("pymicro_wakeword").origin).parent / "models"
ALL_INPUTS = np.arange(-128, 128, dtype=np.int8)
OPS_PER_MODEL = 64


@pytest.fixture(scope="module")
def logistic():
    return int32check.load(FIRMWARE / "tflm" / "logistic.py")


def _tensor(name: str, scale: float, zero_point: int) -> schema.TensorT:
    t = schema.TensorT()
    t.name = name.encode()
    t.shape = [1, 256]
    t.type = schema.TensorType.INT8
    t.buffer = 0
    q = schema.QuantizationParametersT()
    q.scale = [scale]
    q.zeroPoint = [zero_point]
    t.quantization = q
    return t


def logistic_model(cases: list[tuple[float, int]]) -> bytes:
    """One LOGISTIC op per (input scale, zero point), each with its own input and output."""
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.LOGISTIC
    code.version = 1
    sg = schema.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs = [], [], [], []
    for i, (scale, zp) in enumerate(cases):
        sg.tensors += [_tensor(f"in{i}", scale, zp), _tensor(f"out{i}", 1 / 256, -128)]
        op = schema.OperatorT()
        op.opcodeIndex = 0
        op.inputs, op.outputs = [2 * i], [2 * i + 1]
        sg.operators.append(op)
        sg.inputs.append(2 * i)
        sg.outputs.append(2 * i + 1)
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [sg]
    model.buffers = [schema.BufferT()]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def tflm_tables(cases: list[tuple[float, int]]) -> list[bytes]:
    """TFLite Micro's outputs for all 256 inputs, indexed like lut(): by the input byte."""
    order = np.argsort(ALL_INPUTS.view(np.uint8), kind="stable")
    tables = []
    for start in range(0, len(cases), OPS_PER_MODEL):
        chunk = cases[start : start + OPS_PER_MODEL]
        interp = runtime.Interpreter.from_bytes(logistic_model(chunk))
        for i in range(len(chunk)):
            interp.set_input(ALL_INPUTS.reshape(1, 256), i)
        interp.invoke()
        for i in range(len(chunk)):
            out = np.asarray(interp.get_output(i), np.int8).reshape(256)
            tables.append(out[order].tobytes())
    return tables


def model_logistic_inputs() -> list[tuple[float, int]]:
    """(scale, zero point) of the LOGISTIC inputs of the pymicro-wakeword models."""
    found = []
    for path in sorted(MODELS.glob("*.tflite")):
        model = runtime.convert_bytearray_to_object(bytearray(path.read_bytes()))
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
        for sg in model.subgraphs:
            for op in sg.operators:
                if codes[op.opcodeIndex] == schema.BuiltinOperator.LOGISTIC:
                    q = sg.tensors[op.inputs[0]].quantization
                    found.append((float(q.scale[0]), int(q.zeroPoint[0])))
    return found


def f32(x: float) -> float:
    return float(np.float32(x))


def edge_scales() -> list[float]:
    scales = [2.0**k for k in range(-27, 4)]  # left shift 1 .. 31 (radius 0 at 8.0)
    scales += [f32(np.nextafter(np.float32(2.0**k), np.float32(0))) for k in range(-26, 5)]
    scales += [15.999999, 8.5, 3.99, 1.0 / 3, 0.1, 1e-8, 0.0]
    return [f32(s) for s in scales]


def all_cases() -> list[tuple[float, int]]:
    rng = np.random.default_rng(2024)
    cases = []
    for e in rng.uniform(-10, 2, 200):
        scale = f32(rng.uniform(1.0, 2.0) * 2.0**e)
        for zp in rng.integers(-128, 128, 3):
            cases.append((scale, int(zp)))
    for scale in edge_scales():
        cases += [(scale, zp) for zp in (-128, -1, 0, 1, 127)]
    for scale, zp in model_logistic_inputs():
        cases += [(f32(scale), zp)] + [(f32(scale), z) for z in (-128, 0, 127)]
    return cases


def test_the_wakeword_models_have_logistic_inputs():
    found = model_logistic_inputs()
    assert len(found) >= 4, found


def boundary_cases(logistic) -> list[tuple[float, int]]:
    """Inputs whose Q0.31 logistic lies within 2 ulps of an int8 rounding boundary.

    The final RoundingDivideByPOT(., 23) hides most 1-ulp slips in the fixed-point maths,
    and random scales rarely land near a boundary; these do. For each boundary of the
    output rounding, bisect for the Q4.27 argument q4 that crosses it, then find a float32
    scale and an input difference v whose rescaled value is exactly that q4.
    """
    limit = 15 << 27
    found = []
    for j in range(256):
        boundary = j * 2**23 + 2**22  # raw >= boundary rounds up to output j + 1 - 128
        lo, hi = -limit, limit
        if not logistic._logistic_q4(lo) < boundary <= logistic._logistic_q4(hi):
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if logistic._logistic_q4(mid) >= boundary:
                hi = mid
            else:
                lo = mid
        near = range(hi - 3, hi + 3)
        targets = [q for q in near if -2 <= logistic._logistic_q4(q) - boundary <= 1]
        case = _input_for(logistic, targets)
        if case:
            found.append(case)
    return found


def _input_for(logistic, targets: list[int]) -> tuple[float, int] | None:
    """A (scale, zero point) under which some int8 input rescales exactly to a target q4."""
    for q4 in targets:
        sign = 1 if q4 > 0 else -1
        for v in range(1, 256):
            base = np.float32(abs(q4) / (v * 2.0**27))
            for s in (np.nextafter(base, np.float32(0)), base, np.nextafter(base, np.inf)):
                multiplier, shift, radius = logistic.params(float(s))
                if v < radius and logistic._srdhm((sign * v) << shift, multiplier) == q4:
                    # the int8 input x = sign * v + zero point exists
                    return float(s), -128 if sign > 0 else 127
    return None


def test_lut_matches_tflite_micro(logistic):
    cases = all_cases()
    near = boundary_cases(logistic)
    assert len(near) > 150
    cases += near
    expected = tflm_tables(cases)
    mismatches = []
    for (scale, zp), want in zip(cases, expected, strict=True):
        got = logistic.lut(scale, zp)
        if got != want:
            diff = [i for i in range(256) if got[i] != want[i]]
            mismatches.append((scale, zp, len(diff), diff[:4]))
    assert not mismatches, mismatches[:10]


def test_prepare_params(logistic):
    # 0.25 * 2^27 = 0.5 * 2^26: multiplier 2^30, left shift 26, radius 15 * 2
    assert logistic.params(0.25) == (1 << 30, 26, 30)
    # a 24-bit significand all ones: q * 2^31 = (2^24 - 1) << 7, no rounding up to 2^31
    scale = f32(np.nextafter(np.float32(1.0), np.float32(0)))
    assert logistic.params(scale) == ((2**24 - 1) << 7, 27, 15)
    for bad in (-0.5, float("inf"), float("nan"), 2.0**-29, 1e30):
        with pytest.raises(ValueError):
            logistic.params(bad)


def test_lut_on_the_unix_port_matches(mp, tmp_path, logistic):
    cases = [(f32(s), zp) for s, zp in model_logistic_inputs()]
    cases += [(f32(0.0123), -7), (f32(3.5), 100), (f32(2.0**-20), 0)]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    out = mp.output(
        "import json\n"
        "import micropython\n"
        "from tflm import logistic, move\n"
        "src = bytes(range(256))\n"
        "dst = bytearray(256)\n"
        "for scale, zp in json.load(open('cases.json')):\n"
        "    t = logistic.lut(scale, zp)\n"
        "    micropython.heap_lock()\n"
        "    move.map_bytes(dst, src, t, 256)\n"
        "    micropython.heap_unlock()\n"
        "    assert dst == t\n"
        "    print(t.hex())\n"
    )
    got = [bytes.fromhex(line) for line in out.split()]
    assert got == [logistic.lut(s, zp) for s, zp in cases]
