# Quantized arithmetic with TFLite Micro's exact results.
#
# Prepare time (Python ints, any size): TFLite computes its multipliers in C `double`
# from float32 scales (quantization_util.cc QuantizeMultiplier: frexp, then
# round(q * 2^31)). The device's floats are float32, so the doubles are emulated exactly
# with integers: a value is (m, e) = m * 2^e, m a 53-bit integer, every operation rounded
# to nearest-even as IEEE 754 does.
#
# Run time (viper, 32-bit safe): MultiplyByQuantizedMultiplier without single rounding
# (tensorflow/lite/kernels/internal/common.h), i.e.
#   RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, M), right)
# The 64-bit product x * M is built from 15-bit limbs so no intermediate leaves int32.
import struct

import micropython
from micropython import const

_DOUBLE_BITS = const(53)
_LIMB_MASK = const(0x7FFF)
# Per-channel parameter words in a requantize table (see requant_table).
CHANNEL_WORDS = const(6)
HEADER_WORDS = const(5)
_BIAS = const(0x10000)


def f32(x):
    """A float32 value (as stored in the model) as an exact (m, e) pair."""
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    sign = -1 if bits >> 31 else 1
    exp = (bits >> 23) & 0xFF
    frac = bits & 0x7FFFFF
    if exp == 0xFF:
        raise ValueError("scale is not finite")
    if exp == 0:
        return sign * frac, -149
    return sign * (frac | 0x800000), exp - 150


def _bit_length(n):
    """int.bit_length() for n >= 0 (MicroPython's int has no such method)."""
    b = 0
    while n >> (b + 16):
        b += 16
    while n >> b:
        b += 1
    return b


def _round(num, den, e):
    """(m, e) of the double nearest to num/den * 2^e (num, den > 0), ties to even."""
    k = _DOUBLE_BITS - (_bit_length(num) - _bit_length(den)) + 1
    if k >= 0:
        q, r = divmod(num << k, den)
        d = den
    else:
        q, r = divmod(num, den << -k)
        d = den << -k
    while q >= 1 << _DOUBLE_BITS:
        r += (q & 1) * d
        d <<= 1
        q >>= 1
        k -= 1
    if 2 * r > d or (2 * r == d and q & 1):
        q += 1
        if q == 1 << _DOUBLE_BITS:
            q >>= 1
            k -= 1
    return q, e - k


def dmul(a, b):
    """IEEE double a * b, both (m, e) pairs."""
    m = a[0] * b[0]
    if m == 0:
        return 0, 0
    sign = -1 if m < 0 else 1
    q, e = _round(abs(m), 1, a[1] + b[1])
    return sign * q, e


def ddiv(a, b):
    """IEEE double a / b."""
    if b[0] == 0:
        raise ZeroDivisionError("scale division by zero")
    if a[0] == 0:
        return 0, 0
    sign = -1 if (a[0] < 0) != (b[0] < 0) else 1
    q, e = _round(abs(a[0]), abs(b[0]), a[1] - b[1])
    return sign * q, e


def quantize_multiplier(d):
    """TFLite's QuantizeMultiplier of the double d = (m, e): (multiplier, shift)."""
    m, e = d
    if m == 0:
        return 0, 0
    if m < 0:
        raise ValueError("negative multiplier")
    n = _bit_length(m)
    shift = e + n  # frexp: d = (m / 2^n) * 2^shift with m / 2^n in [0.5, 1)
    # round(q * 2^31) with q = m / 2^n, halves away from zero
    if n > 31:
        q_fixed = (m + (1 << (n - 32))) >> (n - 31)
    else:
        q_fixed = m << (31 - n)
    if q_fixed == 1 << 31:
        q_fixed >>= 1
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def channel_words(multiplier, shift):
    """The CHANNEL_WORDS a requantize table holds for one (multiplier, shift)."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    if right > 31:
        raise ValueError("right shift %d is outside 0..31" % right)
    mask = (1 << right) - 1
    return (
        multiplier & _LIMB_MASK,
        (multiplier >> 15) & _LIMB_MASK,
        multiplier >> 30,
        left,
        right,
        mask,
    )


def requant_table(multipliers, zero_point, act_min, act_max):
    """An int32 array for requantize(): header then CHANNEL_WORDS per channel."""
    import array

    # signed header words are stored biased: a ptr32 load reads them unsigned on 64-bit
    words = [len(multipliers), zero_point + _BIAS, act_min + _BIAS, act_max + _BIAS, 0]
    for multiplier, shift in multipliers:
        words.extend(channel_words(multiplier, shift))
    return array.array("i", words)


@micropython.viper
def requantize(acc, out, n: int, table):
    """out[i] (8-bit) = clamp(MultiplyByQuantizedMultiplier(acc[i], ch) + zp).

    acc: n int32 accumulators, channel = i % channels (channels innermost, as NHWC).
    table: requant_table(). out gets the low 8 bits (int8 or uint8 per the clamp range).
    """
    a = ptr32(acc)
    o = ptr8(out)
    t = ptr32(table)
    channels = t[0]
    zp = t[1] - _BIAS
    lo = t[2] - _BIAS - zp
    hi = t[3] - _BIAS - zp
    ch = 0
    i = 0
    while i < n:
        c = 5 + 6 * ch
        m0 = t[c]
        m1 = t[c + 1]
        m2 = t[c + 2]
        left = t[c + 3]
        right = t[c + 4]
        mask = t[c + 5]
        w = a[i]
        hw = (w >> 16) & 0xFFFF
        if hw >= 0x8000:
            hw -= 0x10000
        x = ((hw << 16) | (w & 0xFFFF)) << left
        # SaturatingRoundingDoublingHighMul(x, M) = sign * floor((|x|*M + 2^30 - neg) / 2^31)
        neg = 0
        if x < 0:
            neg = 1
            x = -(x + 1)
        x0 = (x & 0x7FFF) + neg
        x1 = (x >> 15) & 0x7FFF
        x2 = x >> 30
        # the 2^30 nudge enters as 2^15 carried into the second limb (2^30 is no small int)
        s = x0 * m0 - neg
        s = x1 * m0 + x0 * m1 + (s >> 15) + 0x8000
        s = x2 * m0 + x1 * m1 + x0 * m2 + (s >> 15)
        d2 = s & 0x7FFF
        s = x2 * m1 + x1 * m2 + (s >> 15)
        q = (d2 >> 1) + ((s & 0x7FFF) << 14) + ((x2 * m2 + (s >> 15)) << 29)
        if neg:
            q = -q
        # RoundingDivideByPOT(q, right)
        threshold = (mask >> 1) + neg
        r = q >> right
        if (q & mask) > threshold:
            r += 1
        # clamp before adding the zero point, so the sum cannot leave int32
        if r < lo:
            r = lo
        elif r > hi:
            r = hi
        o[i] = (r + zp) & 0xFF
        ch += 1
        if ch == channels:
            ch = 0
        i += 1
