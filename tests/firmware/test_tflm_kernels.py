"""Per-kernel parity: tiny int8 models (tests/tflm_builder.py, no TensorFlow) run on the
device interpreter (MicroPython unix port) and on TFLite Micro with the same random inputs
must agree bit for bit; models the interpreter cannot run are refused with the op or type
named. The new kernels' viper code also runs in checked 32-bit mode against numpy."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from wakeward import modelcheck
from wakeward.errors import WakewardError

from tests import int32check
from tests import tflm_builder as tb
from tests.conftest import FIRMWARE

INVOCATIONS = 20
Op = tb.Op
T = tb.TensorType


def parity(tmp_path, m, x, y, name="model", *, varied=True, seed=0) -> modelcheck.Report:
    """Build, check TFLite Micro loads it, and compare the two interpreters."""
    data = m.build([x], [y])
    tb.check_loads(data)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    report = modelcheck.check(path, invocations=INVOCATIONS, seed=seed, heap="esp32s3-psram")
    assert report.bit_exact, "\n".join(report.lines())
    if varied:
        assert len(np.unique(report.outputs)) > 2, "outputs barely move: a weak test"
    return report


def ids(cases):
    return [str(i) for i in range(len(cases))]


# -- convolutions -------------------------------------------------------------------------

# in_hwc, out_c (conv) / multiplier (depthwise), kernel, stride, dilation, padding,
# activation, per-channel, input scale, input zero point
CONV_CASES = [
    ((7, 5, 3), 4, (3, 3), (1, 1), (1, 1), tb.SAME, tb.NONE, True, 0.02, -128),
    ((9, 8, 2), 3, (3, 2), (2, 2), (1, 1), tb.SAME, tb.RELU, True, 0.05, 0),
    ((10, 7, 4), 5, (2, 3), (3, 1), (1, 1), tb.VALID, tb.RELU6, False, 0.02, 17),
    ((11, 9, 3), 2, (3, 3), (1, 2), (2, 2), tb.SAME, tb.NONE, False, 0.1, -128),
    ((8, 8, 5), 6, (3, 3), (2, 3), (2, 1), tb.VALID, tb.RELU, True, 0.02, -45),
    ((1, 13, 1), 3, (1, 5), (1, 3), (1, 1), tb.SAME, tb.NONE, True, 0.03, 100),
    ((6, 1, 7), 4, (3, 1), (3, 1), (1, 1), tb.VALID, tb.NONE, True, 0.02, -128),
    ((5, 5, 3), 8, (1, 1), (1, 1), (1, 1), tb.VALID, tb.RELU6, True, 0.04, 3),
    ((12, 3, 2), 3, (5, 1), (2, 1), (2, 1), tb.SAME, tb.RELU, False, 0.02, -128),
    ((3, 40, 1), 4, (3, 5), (1, 2), (1, 1), tb.VALID, tb.NONE, True, 0.1, -128),
]


def _out_scale(in_scale, taps):
    # real output std ~ 1.5 * in_scale * sqrt(taps) with these weights: ~40 levels of it
    return float(np.float32(1.5 * in_scale * math.sqrt(taps) * 128 / 40))


@pytest.mark.parametrize("case", CONV_CASES, ids=ids(CONV_CASES))
def test_conv2d(tmp_path, case):
    hwc, out_c, kernel, stride, dilation, padding, act, per_channel, in_s, in_zp = case
    rng = np.random.default_rng(hash(case) % 2**32)
    m = tb.Model()
    x = m.tensor((1, *hwc), scale=in_s, zero_point=in_zp)
    y = tb.conv2d(
        m, x, out_c, kernel, rng, stride=stride, dilation=dilation, padding=padding,
        activation=act, per_channel=per_channel,
        out_scale=_out_scale(in_s, kernel[0] * kernel[1] * hwc[2]), out_zp=-9,
    )  # fmt: skip
    parity(tmp_path, m, x, y)


@pytest.mark.parametrize("case", CONV_CASES, ids=ids(CONV_CASES))
def test_depthwise_conv2d(tmp_path, case):
    hwc, mult, kernel, stride, dilation, padding, act, per_channel, in_s, in_zp = case
    mult = 1 + mult % 2
    rng = np.random.default_rng(hash(case) % 2**32 + 1)
    m = tb.Model()
    x = m.tensor((1, *hwc), scale=in_s, zero_point=in_zp)
    y = tb.depthwise_conv2d(
        m, x, mult, kernel, rng, stride=stride, dilation=dilation, padding=padding,
        activation=act, per_channel=per_channel,
        out_scale=_out_scale(in_s, kernel[0] * kernel[1]), out_zp=11,
    )  # fmt: skip
    parity(tmp_path, m, x, y)


# input shape, units, bias, activation, per-channel
FC_CASES = [
    ((1, 40), 8, True, tb.NONE, False),
    ((1, 17), 5, False, tb.RELU, False),
    ((3, 12), 4, True, tb.RELU6, True),
    ((2, 3, 10), 6, False, tb.NONE, True),
]


@pytest.mark.parametrize("case", FC_CASES, ids=ids(FC_CASES))
def test_fully_connected(tmp_path, case):
    shape, units, bias, act, per_channel = case
    rng = np.random.default_rng(len(shape) * 100 + units)
    m = tb.Model()
    x = m.tensor(shape, scale=0.03, zero_point=-20)
    y = tb.fully_connected(
        m, x, units, rng, bias=bias, activation=act, per_channel=per_channel,
        out_scale=_out_scale(0.03, shape[-1]), out_zp=4,
    )  # fmt: skip
    parity(tmp_path, m, x, y)


def test_a_filter_read_twice_is_biased_in_a_copy(tmp_path):
    """conv.py reads filters biased (w ^ 0x80). Two FULLY_CONNECTED reading one filter
    tensor each get a biased copy (biasing the model's bytes in place for each read would
    bias them twice), and agree with TFLite Micro."""
    rng = np.random.default_rng(8)
    m = tb.Model()
    x = m.tensor((1, 8), scale=0.03, zero_point=-20)
    y1 = tb.fully_connected(m, x, 8, rng, out_scale=_out_scale(0.03, 8), out_zp=4)
    shared = m.operators[-1].inputs[1]
    y2 = tb.fully_connected(m, y1, 8, rng, out_scale=_out_scale(0.03, 8), out_zp=4)
    m.operators[-1].inputs[1] = shared
    parity(tmp_path, m, x, y2)


# -- lookup-table ops ---------------------------------------------------------------------


@pytest.mark.parametrize("scale, zp", [(0.05, 0), (0.1, -128), (0.02, 37), (0.3, -5)])
def test_logistic(tmp_path, scale, zp):
    m = tb.Model()
    x = m.tensor((1, 3, 40), scale=scale, zero_point=zp)
    parity(tmp_path, m, x, tb.logistic(m, x))


@pytest.mark.parametrize(
    "type, scale, zp",
    [(T.UINT8, 0.05, 128), (T.UINT8, 0.013, 3), (T.INT8, 0.07, -3), (T.INT8, 0.011, 20)],
)
def test_quantize(tmp_path, type, scale, zp):
    m = tb.Model()
    x = m.tensor((1, 2, 30), scale=0.02, zero_point=-6)
    parity(tmp_path, m, x, tb.quantize(m, x, type=type, scale=scale, zero_point=zp))


# -- data movement ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 24), (2, 12), (4, 3, 2)])
def test_reshape(tmp_path, shape):
    m = tb.Model()
    x = m.tensor((1, 4, 6), scale=0.02, zero_point=1)
    parity(tmp_path, m, x, tb.reshape(m, x, shape))


@pytest.mark.parametrize("axis", [1, 2, 3, -1])
def test_concatenation(tmp_path, axis):
    rng = np.random.default_rng(axis + 10)
    m = tb.Model()
    shape = (1, 3, 4, 5)
    x = m.tensor(shape, scale=0.02, zero_point=1)
    const_shape = list(shape)
    const_shape[axis] = 2
    c = m.tensor(const_shape, scale=0.02, zero_point=1, data=rng.integers(-128, 128, const_shape))
    parity(tmp_path, m, x, tb.concatenation(m, [x, c, x], axis))


# begin, end, strides, masks (begin, end, shrink)
SLICE_CASES = [
    ((0, 1, -7, 0), (1, -1, 8, 3), (1, 2, 3, 1), (0, 0, 0)),
    ((0, 4, 0, 1), (0, 0, 5, 3), (1, -1, 1, 1), (0b0001, 0b0011, 0)),
    ((0, 2, 0, 0), (1, 3, 8, 3), (1, 1, 2, 1), (0, 0, 0b0011)),
    ((0, -1, 7, 2), (1, -7, -9, -4), (1, -2, -3, -1), (0, 0, 0)),
    ((0, 0, 1, 0), (1, 6, 0, 3), (1, 5, 1, 2), (0b1111, 0b0100, 0)),
]


@pytest.mark.parametrize("case", SLICE_CASES, ids=ids(SLICE_CASES))
def test_strided_slice(tmp_path, case):
    begin, end, strides, (bm, em, sm) = case
    m = tb.Model()
    x = m.tensor((1, 6, 8, 3), scale=0.02, zero_point=1)
    y = tb.strided_slice(m, x, begin, end, strides, begin_mask=bm, end_mask=em, shrink_axis_mask=sm)
    parity(tmp_path, m, x, y)


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_split_v(tmp_path, axis):
    """Split into three and concatenate two of them (the model has one output)."""
    m = tb.Model()
    x = m.tensor((1, 6, 6, 6), scale=0.02, zero_point=1)
    a, _, c = tb.split_v(m, x, [1, 3, 2], axis)
    parity(tmp_path, m, x, tb.concatenation(m, [c, a], axis))


# -- pooling ------------------------------------------------------------------------------

# shape, filter, stride, padding, activation, zero point
POOL_CASES = [
    ((1, 7, 6, 3), (3, 2), (2, 3), tb.SAME, tb.NONE, 5),
    ((1, 7, 6, 3), (3, 2), (2, 3), tb.VALID, tb.RELU, 5),
    ((2, 5, 9, 4), (2, 2), (2, 2), tb.VALID, tb.NONE, -128),
    ((1, 8, 8, 2), (3, 3), (1, 1), tb.SAME, tb.RELU6, -20),
    ((1, 6, 7, 5), (6, 7), (1, 1), tb.VALID, tb.NONE, 0),  # global pool
    ((1, 10, 1, 3), (4, 1), (3, 1), tb.SAME, tb.RELU, 40),
    ((1, 5, 5, 1), (5, 5), (2, 2), tb.SAME, tb.NONE, -3),  # windows mostly padding
]


@pytest.mark.parametrize("code", [Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D], ids=["avg", "max"])
@pytest.mark.parametrize("case", POOL_CASES, ids=ids(POOL_CASES))
def test_pool(tmp_path, code, case):
    shape, filt, stride, padding, act, zp = case
    m = tb.Model()
    x = m.tensor(shape, scale=0.05, zero_point=zp)
    y = tb.pool2d(m, code, x, filt, stride=stride, padding=padding, activation=act)
    parity(tmp_path, m, x, y)


def test_average_pool_rounds_halves_away_from_zero(tmp_path):
    """Two-tap means of every pair of int8 values (sums of both signs, exact halves)."""
    m = tb.Model()
    x = m.tensor((1, 1, 2, 256), scale=0.05, zero_point=0)
    y = tb.pool2d(m, Op.AVERAGE_POOL_2D, x, (1, 2), stride=(1, 2), padding=tb.VALID)
    data = m.build([x], [y])
    path = tmp_path / "pairs.tflite"
    path.write_bytes(data)
    values = np.arange(-128, 128)
    pairs = [np.stack([values, np.roll(values, k)]) for k in range(0, 256, 5)]
    inputs = np.stack(pairs).reshape(-1, 1, 1, 2, 256).astype(np.int8)
    report = modelcheck.check(path, inputs=inputs, heap="esp32s3-psram")
    assert report.bit_exact, "\n".join(report.lines())
    sums = inputs.astype(np.int64).sum(axis=3).reshape(-1)
    got = report.outputs.reshape(-1).astype(np.int64)
    halves = sums % 2 == 1
    assert halves.any() and (sums[halves] < 0).any() and (sums[halves] > 0).any()
    np.testing.assert_array_equal(got, np.sign(sums) * ((np.abs(sums) + 1) // 2))


# -- ADD and MUL --------------------------------------------------------------------------


def _two_inputs(m, shape, q2):
    """Two same-shape operands from the one model input: split it along the last axis
    and requantize the second half (so the operands' scales and zero points differ)."""
    x = m.tensor((*shape[:-1], 2 * shape[-1]), scale=0.02, zero_point=-7)
    a, b = tb.split_v(m, x, [shape[-1], shape[-1]], -1)
    b = tb.quantize(m, b, type=T.INT8, scale=q2[0], zero_point=q2[1])
    return x, a, b


# second operand (scale, zp), output (scale, zp), activation
BINARY_SAME_SHAPE = [
    ((0.03, 9), (0.04, -10), tb.NONE),
    ((0.02, -7), (0.03, 0), tb.RELU),
    ((0.011, 100), (0.025, 20), tb.RELU6),
    ((0.05, -128), (0.07, -128), tb.NONE),
]


@pytest.mark.parametrize("case", BINARY_SAME_SHAPE, ids=ids(BINARY_SAME_SHAPE))
def test_add_same_shape(tmp_path, case):
    q2, (out_s, out_zp), act = case
    m = tb.Model()
    x, a, b = _two_inputs(m, (1, 4, 5, 3), q2)
    y = tb.binary(m, Op.ADD, a, b, out_scale=out_s, out_zp=out_zp, activation=act)
    parity(tmp_path, m, x, y)


@pytest.mark.parametrize("case", BINARY_SAME_SHAPE, ids=ids(BINARY_SAME_SHAPE))
def test_mul_same_shape(tmp_path, case):
    q2, (out_s, out_zp), act = case
    m = tb.Model()
    x, a, b = _two_inputs(m, (1, 4, 5, 3), q2)
    out_s *= q2[0] * 40  # products are on a finer scale
    y = tb.binary(m, Op.MUL, b, a, out_scale=out_s, out_zp=out_zp, activation=act)
    parity(tmp_path, m, x, y)


# input shape, constant shape, constant first, constant (scale, zp), output (scale, zp)
BROADCAST_CASES = [
    ((1, 4, 5, 6), (1, 1, 1, 6), False, (0.05, -3), (0.04, -10)),
    ((1, 4, 5, 6), (6,), True, (0.01, 12), (0.03, 2)),
    ((1, 4, 5, 6), (1, 4, 1, 1), True, (0.2, 0), (0.1, 0)),
    ((1, 4, 5, 6), (), False, (0.03, -100), (0.05, 5)),
    ((2, 3, 4), (2, 1, 4), False, (0.02, 7), (0.02, -2)),
    ((1, 3, 40), (1, 3, 1), True, (0.07, -60), (0.08, 30)),
]


@pytest.mark.parametrize("code", [Op.ADD, Op.MUL], ids=["add", "mul"])
@pytest.mark.parametrize("case", BROADCAST_CASES, ids=ids(BROADCAST_CASES))
def test_binary_broadcast(tmp_path, code, case):
    shape, c_shape, c_first, (c_s, c_zp), (out_s, out_zp) = case
    rng = np.random.default_rng(len(shape) + len(c_shape))
    m = tb.Model()
    x = m.tensor(shape, scale=0.02, zero_point=-7)
    c = m.tensor(c_shape, scale=c_s, zero_point=c_zp, data=rng.integers(-128, 128, c_shape))
    if code == Op.MUL:
        out_s *= c_s * 40
    a, b = (c, x) if c_first else (x, c)
    y = tb.binary(m, code, a, b, out_scale=out_s, out_zp=out_zp, activation=tb.NONE)
    parity(tmp_path, m, x, y)


def test_mul_with_a_multiplier_above_one(tmp_path):
    m = tb.Model()
    x, a, b = _two_inputs(m, (1, 2, 30), (0.05, 3))
    y = tb.binary(m, Op.MUL, a, b, out_scale=0.0004, out_zp=-1, activation=tb.NONE)
    parity(tmp_path, m, x, y)  # 0.02 * 0.05 / 0.0004 = 2.5


def test_add_after_conv_in_a_residual_block(tmp_path):
    rng = np.random.default_rng(5)
    m = tb.Model()
    x = m.tensor((1, 6, 5, 4), scale=0.02, zero_point=-128)
    y = tb.conv2d(m, x, 4, (3, 3), rng, out_scale=_out_scale(0.02, 36), out_zp=0)
    z = tb.binary(m, Op.ADD, y, x, out_scale=0.1, out_zp=-30, activation=tb.RELU)
    parity(tmp_path, m, x, z)


# -- MEAN ---------------------------------------------------------------------------------

# input shape, axes, keep_dims, input scale, output (scale, zp)
MEAN_CASES = [
    ((1, 5, 4, 6), [1, 2], True, 0.02, (0.015, 2)),
    ((1, 5, 4, 6), [2, 1], False, 0.02, (0.015, 2)),
    ((1, 5, 4, 6), [2], True, 0.05, (0.02, -10)),
    ((1, 5, 4, 6), [-1], False, 0.05, (0.05, 0)),
    ((1, 5, 4, 6), [1, -3], False, 0.02, (0.01, 5)),  # the same axis twice
    ((1, 7, 3), [0, 1, 2], False, 0.1, (0.004, -3)),  # to a scalar
    ((1, 2, 3, 4), [1], True, 0.1, (0.02, 1)),  # multiplier 5: a left shift
    ((1, 13, 1, 3), [1], True, 0.02, (0.025, -128)),
]


@pytest.mark.parametrize("case", MEAN_CASES, ids=ids(MEAN_CASES))
def test_mean(tmp_path, case):
    shape, axes, keep, in_s, (out_s, out_zp) = case
    m = tb.Model()
    x = m.tensor(shape, scale=in_s, zero_point=-4)
    y = tb.mean(m, x, axes, keep_dims=keep, out_scale=out_s, out_zp=out_zp)
    parity(tmp_path, m, x, y)


def test_mean_with_a_tiny_multiplier_clamps_its_shift(tmp_path):
    """in/out = 2^-28 gives shift -27, so the 1/count fold is clamped to 31 + shift."""
    m = tb.Model()
    x = m.tensor((1, 8, 8, 2), scale=2.0**-20, zero_point=0)
    y = tb.mean(m, x, [1, 2], keep_dims=True, out_scale=2.0**8, out_zp=0)
    parity(tmp_path, m, x, y, varied=False)


# -- models the interpreter refuses -------------------------------------------------------


def _write(tmp_path, m, x, y, name):
    data = m.build([x], [y])
    tb.check_loads(data)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("code, name", [(Op.TANH, "TANH"), (Op.SOFTMAX, "SOFTMAX")])
def test_an_unsupported_op_is_named_with_its_index(tmp_path, code, name):
    m = tb.Model()
    x = m.tensor((1, 12), scale=0.05, zero_point=0)
    r = tb.reshape(m, x, (1, 3, 4))
    y = m.tensor((1, 3, 4), scale=1 / 256 if code == Op.SOFTMAX else 1 / 128,
                 zero_point=-128 if code == Op.SOFTMAX else 0)  # fmt: skip
    if code == Op.SOFTMAX:
        o = tb.fb.SoftmaxOptionsT()
        o.beta = 1.0
        m.op(code, [r], [y], o)
    else:
        m.op(code, [r], [y])
    path = _write(tmp_path, m, x, y, name.lower())
    with pytest.raises(WakewardError, match=rf"operator 1 \({name}\): op {name} is not supported"):
        modelcheck.check(path, invocations=2, heap="esp32s3-psram")


def test_a_float_model_is_refused_naming_the_type(tmp_path):
    m = tb.Model()
    x = m.tensor((1, 8), T.FLOAT32)
    y = m.tensor((1, 8), T.FLOAT32)
    m.op(Op.LOGISTIC, [x], [y])
    path = _write(tmp_path, m, x, y, "float")
    with pytest.raises(WakewardError, match="input type FLOAT32"):
        modelcheck.check(path, invocations=2, heap="esp32s3-psram")


def test_a_float_tensor_inside_is_refused_naming_the_type(tmp_path):
    m = tb.Model()
    x = m.tensor((1, 8), scale=0.05, zero_point=0)
    f = m.tensor((1, 8), T.FLOAT32, name="dequantized")
    m.op(Op.DEQUANTIZE, [x], [f])
    y = m.tensor((1, 8), scale=0.1, zero_point=3)
    m.op(Op.QUANTIZE, [f], [y])
    path = _write(tmp_path, m, x, y, "dequant")
    with pytest.raises(WakewardError, match=r"tensor 1 \(dequantized\) has type FLOAT32"):
        modelcheck.check(path, invocations=2, heap="esp32s3-psram")


def test_wakeward_model_check_names_the_unsupported_op(tmp_path):
    m = tb.Model()
    x = m.tensor((1, 12), scale=0.05, zero_point=0)
    y = m.tensor((1, 12), scale=1 / 128, zero_point=0)
    m.op(Op.TANH, [x], [y])
    _write(tmp_path, m, x, y, "tanh")
    done = subprocess.run(
        [sys.executable, "-m", "wakeward", "model", "check", "tanh.tflite",
         "--heap", "esp32s3-psram"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "operator 0 (TANH): op TANH is not supported" in done.stderr
    assert "Traceback" not in done.stderr


# -- checked 32-bit mode ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    return int32check.load(FIRMWARE / "tflm" / "pool.py")


@pytest.fixture(scope="module")
def elementwise():
    return int32check.load(FIRMWARE / "tflm" / "elementwise.py")


@pytest.fixture(scope="module")
def reduce():
    return int32check.load(FIRMWARE / "tflm" / "reduce.py")


def ref_pool(x, filt, stride, pad, out_hw, lo, hi, average):
    in_h, in_w, c = x.shape
    out = np.zeros((*out_hw, c), np.int64)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            y0, x0 = oy * stride[0] - pad[0], ox * stride[1] - pad[1]
            win = x[max(y0, 0) : min(y0 + filt[0], in_h), max(x0, 0) : min(x0 + filt[1], in_w)]
            win = win.reshape(-1, c).astype(np.int64)
            if average:
                n = len(win)
                s = win.sum(axis=0)
                v = np.where(s > 0, (s + n // 2) // n, -((n // 2 - s) // n))
            else:
                v = np.maximum(win.max(axis=0), -128)
            out[oy, ox] = np.clip(v, lo, hi)
    return out


@pytest.mark.parametrize("average", [True, False], ids=["avg", "max"])
@pytest.mark.parametrize("case", range(6))
def test_pool_checked(pool, average, case):
    rng = np.random.default_rng(case)
    in_hwc = (int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 5)))
    filt = (int(rng.integers(1, in_hwc[0] + 1)), int(rng.integers(1, in_hwc[1] + 1)))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    same = case % 2 == 0
    out_hw, pad = [], []
    for n, k, s in zip(in_hwc[:2], filt, stride, strict=True):
        size = (n + s - 1) // s if same else (n - k + s) // s
        out_hw.append(size)
        pad.append(max(0, (size - 1) * s + k - n) // 2)
    lo, hi = (-128, 127) if case < 3 else (-20, 90)
    x = rng.integers(-128, 128, in_hwc)
    if case == 5:
        x[:] = -128  # the most negative sums
    expected = ref_pool(x, filt, stride, pad, out_hw, lo, hi, average)
    out = bytearray(expected.size)
    g = pool.geometry(in_hwc, out_hw, filt, stride, pad, lo, hi)
    (pool.average_pool if average else pool.max_pool)(x.astype(np.int8).tobytes(), out, g, 0)
    np.testing.assert_array_equal(np.frombuffer(bytes(out), np.int8), expected.reshape(-1))


def test_average_pool_checked_at_its_limit(pool):
    x = np.full((250, 260, 1), -128, np.int8).tobytes()
    g = pool.geometry((250, 260, 1), (1, 1), (250, 260), (1, 1), (0, 0), -128, 127)
    out = bytearray(1)
    pool.average_pool(x, out, g, 0)
    assert out == b"\x80"
    with pytest.raises(ValueError, match="too large"):
        pool.geometry((300, 300, 1), (1, 1), (300, 300), (1, 1), (0, 0), -128, 127)


@pytest.mark.parametrize(
    "shape1, shape2",
    [
        ((1, 4, 5, 6), (1, 4, 5, 6)),
        ((1, 4, 5, 6), (6,)),
        ((1, 4, 1, 1), (1, 4, 5, 6)),
        ((), (2, 3)),
        ((2, 1, 4, 3), (1, 5, 1, 3)),
        ((2, 1, 1, 4, 3), (5, 1, 1, 3)),
        ((3, 1, 2), (1, 1)),
    ],
)
@pytest.mark.parametrize("mode", ["add", "mul"])
def test_binary_checked(elementwise, shape1, shape2, mode):
    rng = np.random.default_rng(len(shape1) * 7 + len(shape2))
    limit = 0x0FFFFFFF if mode == "add" else 255
    lut1 = rng.integers(-limit, limit + 1, 256)
    lut2 = rng.integers(-limit, limit + 1, 256)
    lut1[:2], lut2[:2] = (limit, -limit), (limit, -limit)
    a = rng.integers(0, 256, shape1).astype(np.uint8)
    b = rng.integers(0, 256, shape2).astype(np.uint8)
    code = elementwise.ADD if mode == "add" else elementwise.MUL
    table = elementwise.table(code, shape1, shape2, lut1.tolist(), lut2.tolist())
    out_shape = np.broadcast_shapes(shape1, shape2)
    acc = bytearray(4 * int(np.prod(out_shape)))
    elementwise.binary(a.tobytes(), b.tobytes(), acc, table)
    va, vb = lut1[a.astype(np.int64)], lut2[b.astype(np.int64)]
    expected = va + vb if mode == "add" else va * vb
    got = np.frombuffer(bytes(acc), "<i4").reshape(out_shape)
    np.testing.assert_array_equal(got, expected)


def test_broadcast_refuses_what_does_not_broadcast(elementwise):
    with pytest.raises(ValueError, match="do not broadcast"):
        elementwise.broadcast((1, 3), (1, 4))
    with pytest.raises(ValueError, match="dimensions"):
        elementwise.broadcast((2, 1, 2, 1, 2), (1, 2, 1, 2, 1))


@pytest.mark.parametrize(
    "shape, axes",
    [((1, 5, 4, 6), [1, 2]), ((1, 5, 4, 6), [3]), ((2, 3, 4), [0, 2]), ((7,), [0]),
     ((3, 4), [])],
)  # fmt: skip
def test_mean_sums_checked(reduce, shape, axes):
    rng = np.random.default_rng(len(shape) + len(axes))
    x = rng.integers(-128, 128, shape)
    zp = int(rng.integers(-128, 128))
    table, outputs, count = reduce.plan(shape, axes, zp)
    acc = bytearray(4 * outputs)
    reduce.mean_sums(x.astype(np.int8).tobytes(), acc, table, 0)
    expected = (x - zp).sum(axis=tuple(axes)) if axes else x - zp
    assert count == int(np.prod([shape[a] for a in axes]))
    np.testing.assert_array_equal(np.frombuffer(bytes(acc), "<i4"), expected.reshape(-1))


def test_mean_sums_checked_extremes(reduce):
    n = 20000
    table, _, _ = reduce.plan((n,), [0], 127)
    acc = bytearray(4)
    reduce.mean_sums(bytes([0x80]) * n, acc, table, 0)
    assert int.from_bytes(acc, "little", signed=True) == -255 * n
    with pytest.raises(ValueError, match="overflow"):
        reduce.plan((0x400000,), [0], 0)  # 256 * 2^22 would reach 2^30


@pytest.mark.parametrize("count", [1, 2, 3, 7, 20, 49, 64, 1000, 2**20 + 1])
@pytest.mark.parametrize("shift", [-31, -27, -5, 0, 3])
def test_mean_multiplier_follows_tflite(reduce, count, shift):
    multiplier = 1518500250
    n = min(count.bit_length() - 1, 32, 31 + shift)
    assert reduce.mean_multiplier(multiplier, shift, count) == (
        (multiplier << n) // count,
        shift - n,
    )
