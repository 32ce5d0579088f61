"""Quantized arithmetic (firmware/tflm/quant.py) against TFLite Micro's formulas:
QuantizeMultiplier on C doubles, and MultiplyByQuantizedMultiplier (double rounding)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests import int32check
from tests.conftest import FIRMWARE

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@pytest.fixture(scope="module")
def quant():
    return int32check.load(FIRMWARE / "tflm" / "quant.py")


def ref_quantize_multiplier(d: float) -> tuple[int, int]:
    """tensorflow/lite/kernels/internal/quantization_util.cc, in CPython doubles."""
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = math.floor(q * 2**31 + 0.5)  # TfLiteRound: halves away from zero (q > 0)
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def ref_srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    v = ab + (2**30 if ab >= 0 else 1 - 2**30)
    return (abs(v) >> 31) * (1 if v >= 0 else -1)  # C integer division truncates


def ref_rdbp(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def ref_mbqm(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return ref_rdbp(ref_srdhm(x * (1 << left), m), right)


def random_scales(rng, n):
    exps = rng.uniform(-12, 2, n)
    return [float(np.float32(rng.uniform(0.5, 1.0) * 2.0**e)) for e in exps]


def test_quantize_multiplier_emulates_c_doubles(quant):
    rng = np.random.default_rng(11)
    a, b, c = (random_scales(rng, 3000) for _ in range(3))
    for x, y, z in zip(a, b, c, strict=True):
        d = x * y / z  # CPython floats are C doubles; x*y is exact (24+24 bits)
        product = quant.dmul(quant.f32(x), quant.f32(y))
        emulated = quant.quantize_multiplier(quant.ddiv(product, quant.f32(z)))
        assert emulated == ref_quantize_multiplier(d), (x, y, z)


def test_quantize_multiplier_edge_cases(quant):
    for d in (1.0, 0.5, 2.0**-31, 2.0**-32, 2.0**-40, 0.9999999999999999, 3.0, 1e-9):
        m, e = d.as_integer_ratio()
        pair = (m, -int(math.log2(e)))
        assert quant.quantize_multiplier(pair) == ref_quantize_multiplier(d), d
    assert quant.quantize_multiplier((0, 0)) == (0, 0)


def test_quantize_multiplier_on_the_unix_port_matches(mp, tmp_path):
    rng = np.random.default_rng(12)
    triples = [tuple(random_scales(rng, 3)) for _ in range(200)]
    (tmp_path / "triples.json").write_text(json.dumps(triples))
    out = mp.output(
        "import json\n"
        "from tflm import quant as q\n"
        "for a, b, c in json.load(open('triples.json')):\n"
        "    d = q.ddiv(q.dmul(q.f32(a), q.f32(b)), q.f32(c))\n"
        "    print(json.dumps(q.quantize_multiplier(d)))\n"
    )
    got = [tuple(json.loads(line)) for line in out.splitlines()]
    assert got == [ref_quantize_multiplier(a * b / c) for a, b, c in triples]


def requant_cases(rng, n: int):
    """(x, multiplier, shift) with x << left inside int32 (TFLite leaves overflow undefined)."""
    cases = []
    for _ in range(n):
        shift = int(rng.integers(-31, 8))
        m = int(rng.integers(2**30, 2**31))
        left = max(shift, 0)
        bound = 2**31 >> left
        x = int(rng.integers(-bound, bound))
        cases.append((x, m, shift))
    cases += [(INT32_MIN, 2**31 - 1, 0), (INT32_MAX, 2**31 - 1, 0), (INT32_MIN, 2**30, -31)]
    cases += [(INT32_MAX, 2**30, -1), (-1, 2**31 - 1, 0), (0, 2**30, 0), (12345, 0, 0)]
    return cases


def expected_bytes(cases, zp, lo, hi):
    out = []
    for x, m, shift in cases:
        v = min(max(ref_mbqm(x, m, shift) + zp, lo), hi)
        out.append(v & 0xFF)
    return bytes(out)


def test_requantize_checked_32bit(quant):
    rng = np.random.default_rng(13)
    cases = requant_cases(rng, 4000)
    for zp, lo, hi in ((-128, -128, 127), (5, -128, 127), (0, 0, 255), (-3, -128, 20)):
        # one channel per case: table of len(cases) channels, accumulators in order
        table = quant.requant_table([(m, s) for _, m, s in cases], zp, lo, hi)
        acc = np.array([x for x, _, _ in cases], dtype="<i4").tobytes()
        out = bytearray(len(cases))
        quant.requantize(acc, out, len(cases), table)
        assert bytes(out) == expected_bytes(cases, zp, lo, hi)


def test_requantize_on_the_unix_port(mp, tmp_path):
    rng = np.random.default_rng(14)
    cases = requant_cases(rng, 3000)
    (tmp_path / "acc.raw").write_bytes(np.array([c[0] for c in cases], "<i4").tobytes())
    (tmp_path / "qm.json").write_text(json.dumps([[m, s] for _, m, s in cases]))
    mp.run(
        "import json, micropython\n"
        "from tflm import quant\n"
        "acc = open('acc.raw', 'rb').read()\n"
        "table = quant.requant_table(json.load(open('qm.json')), -128, -128, 127)\n"
        "out = bytearray(len(acc) // 4)\n"
        "micropython.heap_lock()\n"
        "quant.requantize(acc, out, len(out), table)\n"
        "micropython.heap_unlock()\n"
        "open('out.raw', 'wb').write(out)\n",
        heap="esp32s3-psram",
    )
    assert (tmp_path / "out.raw").read_bytes() == expected_bytes(cases, -128, -128, 127)


def test_requantize_cycles_channels(quant):
    table = quant.requant_table([(2**30, 0), (2**30, -1)], 0, -128, 127)  # x/2, x/4
    acc = np.array([100, 100, -100, -100, 7, 7], "<i4").tobytes()
    out = bytearray(6)
    quant.requantize(acc, out, 6, table)
    assert list(np.frombuffer(bytes(out), np.int8)) == [50, 25, -50, -25, 4, 2]


def test_python_mbqm_matches_reference(quant):
    rng = np.random.default_rng(15)
    for x, m, shift in requant_cases(rng, 2000):
        assert quant.mbqm(x, m, shift) == ref_mbqm(x, m, shift)


def test_quantize_value_divides_in_float32(quant):
    rng = np.random.default_rng(16)
    for scale in random_scales(rng, 2000) + [6 / 255, 0.0235294122248888, 1.0, 2.0**-7]:
        ratio = float(np.float32(6.0) / np.float32(scale))  # C: float f / float scale
        expected = 3 + int(math.floor(ratio + 0.5))  # TfLiteRound, ratio > 0
        assert quant.quantize_value(6, 1, scale, 3) == expected, scale
    assert quant.quantize_value(0, 1, 0.5, -7) == -7


def test_activation_ranges(quant):
    assert quant.activation_range(0, 0.1, -5, -128, 127) == (-128, 127)
    assert quant.activation_range(1, 0.1, -5, -128, 127) == (-5, 127)
    assert quant.activation_range(3, 0.1, -128, -128, 127) == (-128, -68)
    with pytest.raises(ValueError, match="fused activation 4"):
        quant.activation_range(4, 0.1, 0, -128, 127)


def test_requantize_fast_path_at_its_saturation_bounds(quant):
    """Channels with a fast path (saturation bounds, four 15-bit multiplies) agree with
    MultiplyByQuantizedMultiplier at and around both bounds and inside them; the others
    (no right shift, or more than the fast path's) keep the general path. (Over the
    shipped models' 2,870 channels every accumulator between the bounds, 454M values, was
    checked against the reference once with a numpy transcription of the same arithmetic.)"""
    rng = np.random.default_rng(16)
    for zp, lo, hi in ((-128, -128, 127), (5, -128, 127), (-3, -128, 20), (0, 0, 255)):
        pairs = []
        for _ in range(60):
            shift = int(rng.integers(-20, 3))
            pairs.append((int(rng.integers(2**30, 2**31)), shift))
        table = quant.requant_table(pairs, zp, lo, hi)
        cases = []
        for k, (m, shift) in enumerate(pairs):
            base = quant.HEADER_WORDS + k * quant.CHANNEL_WORDS
            fast = 1 <= -shift <= quant._MAX_FAST_RIGHT
            assert table[base + quant._LOW] >> quant._RIGHT_AT == (-shift if fast else 0)
            xs = [INT32_MIN, INT32_MAX, 0, -1, 1]
            if fast:
                low = (table[base + quant._LOW] & quant._BOUND_MASK) - quant._BOUND_BIAS
                limbs = table[base + quant._LIMBS]
                assert 2**30 + (limbs >> 16) * 2**15 + (limbs & 0xFFFF) == m
                high = max(low, 0) + 1
                while ref_mbqm(high, m, shift) < hi - zp:
                    high *= 2  # past where the output saturates high
                xs += [low + d for d in range(-3, 4)] + [quant._X_MAX + d for d in range(-2, 3)]
                xs += [int(v) for v in rng.integers(low, high + 1, 20)]
                xs += [int(v) for v in rng.integers(low, 2**30, 4)]
            else:
                assert table[base + quant._MULTIPLIER] == m
                assert table[base + quant._SHIFT] == shift + 0x10000
                xs += [int(v) for v in rng.integers(-(2**20), 2**20, 34)]
            cases += [(x, m, shift) for x in xs if INT32_MIN <= x << max(shift, 0) <= INT32_MAX]
        # one channel per case, in the order of the table: lay the cases out channel-major
        per = [[c for c in cases if (c[1], c[2]) == p] for p in pairs]
        rounds = min(len(p) for p in per)
        acc = [per[k][r][0] for r in range(rounds) for k in range(len(pairs))]
        expected = [per[k][r] for r in range(rounds) for k in range(len(pairs))]
        out = bytearray(len(acc))
        quant.requantize(np.array(acc, "<i4").tobytes(), out, len(acc), table)
        assert bytes(out) == expected_bytes(expected, zp, lo, hi)
