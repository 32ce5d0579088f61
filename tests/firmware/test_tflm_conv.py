"""Convolution kernels (firmware/tflm/conv.py) against a numpy transcription of TFLite
Micro's int8 reference kernels, on the unix port and in checked 32-bit mode."""

from __future__ import annotations

import numpy as np
import pytest

from tests import int32check
from tests.conftest import FIRMWARE

BIAS_OFFSET = 0


def ref_conv(x, w, bias, stride, dilation, pad, out_hw, input_offset):
    """int32 accumulators of ConvPerChannel (batch 1, NHWC; taps in padding skipped)."""
    in_h, in_w, in_c = x.shape
    out_c, k_h, k_w, _ = w.shape
    acc = np.zeros((*out_hw, out_c), np.int64)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            for oc in range(out_c):
                total = int(bias[oc])
                for ky in range(k_h):
                    iy = oy * stride[0] - pad[0] + ky * dilation[0]
                    if not 0 <= iy < in_h:
                        continue
                    for kx in range(k_w):
                        ix = ox * stride[1] - pad[1] + kx * dilation[1]
                        if not 0 <= ix < in_w:
                            continue
                        xs = x[iy, ix].astype(np.int64) + input_offset
                        total += int((w[oc, ky, kx].astype(np.int64) * xs).sum())
                acc[oy, ox, oc] = total
    return acc


def ref_depthwise(x, w, bias, stride, dilation, pad, out_hw, input_offset, mult):
    in_h, in_w, in_c = x.shape
    _, k_h, k_w, out_c = w.shape
    acc = np.zeros((*out_hw, out_c), np.int64)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            for oc in range(out_c):
                ic = oc // mult
                total = int(bias[oc])
                for ky in range(k_h):
                    iy = oy * stride[0] - pad[0] + ky * dilation[0]
                    for kx in range(k_w):
                        ix = ox * stride[1] - pad[1] + kx * dilation[1]
                        if 0 <= iy < in_h and 0 <= ix < in_w:
                            total += int(w[0, ky, kx, oc]) * (int(x[iy, ix, ic]) + input_offset)
                acc[oy, ox, oc] = total
    return acc


def out_size(n, k, stride, dilation, same):
    eff = (k - 1) * dilation + 1
    return (n + stride - 1) // stride if same else (n - eff + stride) // stride


def pad_for(n, k, stride, dilation, out):
    eff = (k - 1) * dilation + 1
    return max(0, ((out - 1) * stride + eff - n)) // 2


def layer_cases():
    rng = np.random.default_rng(21)
    cases = []
    for i in range(12):
        in_h, in_w, in_c = int(rng.integers(1, 8)), int(rng.integers(1, 6)), int(rng.integers(1, 9))
        k_h, k_w = int(rng.integers(1, min(in_h, 4) + 1)), int(rng.integers(1, min(in_w, 3) + 1))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 3)))
        dilation = (1, 1) if i % 3 else (2, 1)
        same = bool(i % 2)
        if not same and ((k_h - 1) * dilation[0] + 1 > in_h or (k_w - 1) * dilation[1] + 1 > in_w):
            dilation = (1, 1)
        out_hw = tuple(
            out_size(n, k, s, d, same)
            for n, k, s, d in zip((in_h, in_w), (k_h, k_w), stride, dilation, strict=True)
        )
        pad = (
            tuple(
                pad_for(n, k, s, d, o)
                for n, k, s, d, o in zip(
                    (in_h, in_w), (k_h, k_w), stride, dilation, out_hw, strict=True
                )
            )
            if same
            else (0, 0)
        )
        offset = 128 if i % 4 else int(rng.integers(-20, 20))
        cases.append(((in_h, in_w, in_c), (k_h, k_w), stride, dilation, pad, out_hw, offset, rng))
    return cases


def biased(w):
    """The filter bytes as the kernels take them: each int8 w as w ^ 0x80 (w + 128)."""
    return (w.astype(np.int8).view(np.uint8) ^ 0x80).tobytes()


def run_kernel(conv, kernel, x, w, bias, geom_args, out_count):
    depthwise = kernel is conv.depthwise_conv2d
    bias_bytes = np.asarray(bias, "<i4").tobytes()
    g = conv.table(conv.geometry(*geom_args), bias_bytes, biased(w), depthwise)
    assert conv.work_bytes(g) == 4 * out_count + x.size
    # the work buffer is shared by every layer: what an earlier one left in it is garbage
    work = bytearray(b"\xa5" * conv.work_bytes(g))
    kernel(x.astype(np.int8).tobytes(), biased(w), work, g)
    # the outputs come first; the biased input's scratch follows them
    return np.frombuffer(bytes(work), "<i4", count=out_count)


@pytest.fixture(scope="module")
def conv():
    return int32check.load(FIRMWARE / "tflm" / "conv.py")


@pytest.mark.parametrize("case", range(12))
def test_conv2d_checked_matches_reference(conv, case):
    in_hwc, k_hw, stride, dilation, pad, out_hw, offset, rng = layer_cases()[case]
    out_c = int(rng.integers(1, 6))
    x = rng.integers(-128, 128, in_hwc)
    w = rng.integers(-127, 128, (out_c, *k_hw, in_hwc[2]))
    bias = rng.integers(-5000, 5000, out_c)
    expected = ref_conv(x, w, bias, stride, dilation, pad, out_hw, offset)
    got = run_kernel(
        conv,
        conv.conv2d,
        x,
        w,
        bias,
        (in_hwc, (*out_hw, out_c), k_hw, stride, dilation, pad, offset),
        expected.size,
    )
    np.testing.assert_array_equal(got, expected.reshape(-1))


@pytest.mark.parametrize("case", range(12))
def test_depthwise_checked_matches_reference(conv, case):
    in_hwc, k_hw, stride, dilation, pad, out_hw, offset, rng = layer_cases()[case]
    mult = 1 + case % 2
    out_c = in_hwc[2] * mult
    x = rng.integers(-128, 128, in_hwc)
    w = rng.integers(-127, 128, (1, *k_hw, out_c))
    bias = rng.integers(-5000, 5000, out_c)
    expected = ref_depthwise(x, w, bias, stride, dilation, pad, out_hw, offset, mult)
    got = run_kernel(
        conv,
        conv.depthwise_conv2d,
        x,
        w,
        bias,
        (in_hwc, (*out_hw, out_c), k_hw, stride, dilation, pad, offset, mult),
        expected.size,
    )
    np.testing.assert_array_equal(got, expected.reshape(-1))


@pytest.mark.parametrize(
    ("in_hwc", "k_hw", "out_c"),
    [((5, 1, 40), (5, 1), 24), ((1, 1, 40), (1, 1), 40), ((3, 2, 7), (3, 2), 5)],
)
def test_conv2d_streaming_patch_checked(conv, in_hwc, k_hw, out_c):
    """The streaming models' layers: kernels as wide as the input, so a patch is one run
    of contiguous bytes (and run lengths that are and are not multiples of 8)."""
    rng = np.random.default_rng(in_hwc[2])
    x = rng.integers(-128, 128, in_hwc)
    w = rng.integers(-128, 128, (out_c, *k_hw, in_hwc[2]))
    bias = rng.integers(-5000, 5000, out_c)
    out_hw = (in_hwc[0] - k_hw[0] + 1, in_hwc[1] - k_hw[1] + 1)
    for offset in (128, 3, -20):
        expected = ref_conv(x, w, bias, (1, 1), (1, 1), (0, 0), out_hw, offset)
        geom = (in_hwc, (*out_hw, out_c), k_hw, (1, 1), (1, 1), (0, 0), offset)
        got = run_kernel(conv, conv.conv2d, x, w, bias, geom, expected.size)
        np.testing.assert_array_equal(got, expected.reshape(-1))


def test_conv2d_extremes_stay_in_int32(conv):
    # all -128 inputs with offset 128 -> 0; all 127 with offset 128 -> 255 times -128 weights
    x = np.full((1, 1, 320), 127)
    w = np.full((1, 1, 1, 320), -128)
    bias = np.array([-(2**20)])
    geom = ((1, 1, 320), (1, 1, 1), (1, 1), (1, 1), (1, 1), (0, 0), 128)
    got = run_kernel(conv, conv.conv2d, x, w, bias, geom, 1)
    assert got[0] == -(2**20) + 320 * 255 * -128


def test_kernels_on_the_unix_port(mp, tmp_path):
    in_hwc, k_hw, stride, dilation, pad, out_hw, offset, rng = layer_cases()[5]
    out_c = 4
    x = rng.integers(-128, 128, in_hwc)
    w = rng.integers(-127, 128, (out_c, *k_hw, in_hwc[2]))
    bias = rng.integers(-5000, 5000, out_c)
    expected = ref_conv(x, w, bias, stride, dilation, pad, out_hw, offset).reshape(-1)
    (tmp_path / "x.raw").write_bytes(x.astype(np.int8).tobytes())
    (tmp_path / "w.raw").write_bytes(biased(w))
    (tmp_path / "b.raw").write_bytes(np.asarray(bias, "<i4").tobytes())
    args = (in_hwc, (*out_hw, out_c), k_hw, stride, dilation, pad, offset)
    mp.run(
        "import micropython\n"
        "from tflm import conv\n"
        "x = open('x.raw', 'rb').read()\n"
        "w = open('w.raw', 'rb').read()\n"
        f"g = conv.table(conv.geometry(*{args!r}), open('b.raw', 'rb').read(), w, False)\n"
        "acc = bytearray(conv.work_bytes(g))\n"
        "def run(n):\n"
        "    micropython.heap_lock()\n"
        "    for _ in range(n):\n"
        "        conv.conv2d(x, w, acc, g)\n"
        "    micropython.heap_unlock()\n"
        "run(1)\n"
        "open('out.raw', 'wb').write(acc)\n"
    )
    got = np.frombuffer((tmp_path / "out.raw").read_bytes(), "<i4", count=expected.size)
    np.testing.assert_array_equal(got, expected)
