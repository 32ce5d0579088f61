# MEAN over any axes of an int8 tensor, with TFLite Micro's arithmetic
# (reference_ops::QuantizedMeanOrSum, which micro/kernels/reduce_common.cc uses for int8):
#   acc[o] = sum of the n inputs reduced into output o - input_zero_point * n
# then quant.requantize() with the multiplier folded with 1/n as TFLite does (see
# mean_multiplier) and the output zero point, clamped to int8.
#
# The walk is two offset lists worked out at prepare time: one base offset per output and
# one offset per reduced element (their sum is the input element). 32-bit: |acc| <= 256 n,
# and plan() refuses n >= 2^22.
import array

import micropython
from micropython import const

HEADER_WORDS = const(4)
_BIAS = const(0x10000)
_MAX_COUNT = const(0x400000)


def _strides(shape):
    s = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        s[d] = s[d + 1] * shape[d + 1]
    return s


def _offsets(dims, strides):
    """Every offset sum(index[d] * strides[d]) over the index space of dims, row-major."""
    out = [0]
    for n, s in zip(dims, strides):
        out = [o + k * s for o in out for k in range(n)]
    return out


def plan(shape, axes, zero_point):
    """(table, outputs, count): the int32 table mean_sums() reads for reducing `shape`
    over `axes` (already resolved: 0 <= axis < rank, no repeats)."""
    strides = _strides(shape)
    kept = [d for d in range(len(shape)) if d not in axes]
    reduced = [d for d in range(len(shape)) if d in axes]
    base = _offsets([shape[d] for d in kept], [strides[d] for d in kept])
    inner = _offsets([shape[d] for d in reduced], [strides[d] for d in reduced])
    count = len(inner)
    if count >= _MAX_COUNT:
        raise ValueError("a mean over %d elements would overflow int32" % count)
    words = array.array("i", [len(base), count, zero_point + _BIAS, 0])
    words.extend(array.array("i", base))
    words.extend(array.array("i", inner))
    return words, len(base), count


def mean_multiplier(multiplier, shift, count):
    """TFLite's QuantizedMeanOrSum: the input/output multiplier with 1/count folded in."""
    n = 0
    while (count >> (n + 1)) > 0:
        n += 1  # floor(log2(count))
    n = min(n, 32, 31 + shift)
    return ((multiplier << n) // count), shift - n


@micropython.viper
def mean_sums(inp, acc, t, unused: int):
    """acc[o] (int32) = sum(inp[base[o] + inner[k]] for k) - zero_point * count."""
    x = ptr8(inp)
    a = ptr32(acc)
    p = ptr32(t)
    outputs = p[0]
    count = p[1]
    offset = 0 - (p[2] - _BIAS) * count
    inner = HEADER_WORDS + outputs
    o = 0
    while o < outputs:
        base = p[HEADER_WORDS + o]
        total = offset
        k = inner
        end = inner + count
        while k < end:
            total += (x[base + p[k]] ^ 0x80) - 0x80
            k += 1
        a[o] = total
        o += 1
