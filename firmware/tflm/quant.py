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
_FLOAT_BITS = const(24)
# Words of a requantize table (see requant_table): a channel is either a fast record (its
# right shift and low saturation bound, the multiplier's low limbs) or a general one (the
# shift, the multiplier).
CHANNEL_WORDS = const(2)
HEADER_WORDS = const(4)
_LOW = const(0)
_LIMBS = const(1)
_SHIFT = const(0)
_MULTIPLIER = const(1)
# a fast record's right shift, at most: its low saturation bound then lies within 2^25 of
# zero, and every accumulator from 2^30 on saturates high
_MAX_FAST_RIGHT = const(15)
_RIGHT_AT = const(26)
_BOUND_BIAS = const(1 << 25)
_BOUND_MASK = const((1 << 26) - 1)
_X_MAX = const((1 << 30) - 1)
_BIAS = const(0x10000)
_LIMB_BITS = const(15)
_LIMB_MASK = const(0x7FFF)
_HALF_WORD = const(16)
_HALF = const(1 << 30)  # prepare time only (not a small int on the device)
_INT32_SPAN = const(1 << 31)
_SIGN_BIT = const(31)


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


def _round(num, den, e, bits=_DOUBLE_BITS):
    """(m, e) of the IEEE value with a `bits`-bit significand nearest to num/den * 2^e
    (num, den > 0), ties to even (53 bits: double; 24 bits: float)."""
    k = bits - (_bit_length(num) - _bit_length(den)) + 1
    if k >= 0:
        q, r = divmod(num << k, den)
        d = den
    else:
        q, r = divmod(num, den << -k)
        d = den << -k
    while q >= 1 << bits:
        r += (q & 1) * d
        d <<= 1
        q >>= 1
        k -= 1
    if 2 * r > d or (2 * r == d and q & 1):
        q += 1
        if q == 1 << bits:
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


def requant_table(multipliers, zero_point, act_min, act_max):
    """An int32 array for requantize(): HEADER_WORDS, then CHANNEL_WORDS per channel.

    Header: channels, zero_point + _BIAS, act_min + _BIAS, act_max + _BIAS (biased: a ptr32
    load reads words unsigned on 64-bit). A channel is a fast record (see _fast_words) when
    it has one, else a general one: its shift + _BIAS (below 2^_RIGHT_AT: no fast record's
    right shift) and its multiplier."""
    import array

    words = [len(multipliers), zero_point + _BIAS, act_min + _BIAS, act_max + _BIAS]
    for multiplier, shift in multipliers:
        if not 0 <= multiplier < (1 << 31) or not -31 <= shift <= 30:
            raise ValueError("multiplier %d shift %d out of range" % (multiplier, shift))
        fast = _fast_words(multiplier, shift, act_min - zero_point, act_max - zero_point)
        words.extend(fast or (shift + _BIAS, multiplier))
    return array.array("i", words)


def _fast_words(multiplier, shift, lo, hi):
    """A channel's fast record, or None when it has none: the right shift << _RIGHT_AT |
    the accumulator at or below which the output is act_min (+ _BOUND_BIAS), then the
    multiplier's low limbs (m0 | m1 << 16: M = 2^30 + m1 * 2^15 + m0).

    Only for a multiplier with bit 30 set (QuantizeMultiplier's are in [2^30, 2^31)) and a
    right shift of 1 to _MAX_FAST_RIGHT (no left shift). Above the bound and below 2^30 the
    62-bit product is exact with four 15-bit multiplies, RoundingDivideByPOT of
    SaturatingRoundingDoublingHighMul is one shift and a halving, and the output only needs
    clamping to act_max; from 2^30 on it is act_max."""
    right = -shift
    if multiplier < _HALF or not 1 <= right <= _MAX_FAST_RIGHT or lo > hi:
        return None
    low = _last_at_most(multiplier, shift, lo)
    if low is None or not -_BOUND_BIAS <= low < _BOUND_BIAS:
        return None
    if mbqm(_X_MAX, multiplier, shift) < hi:
        return None
    m0 = multiplier & _LIMB_MASK
    m1 = (multiplier >> _LIMB_BITS) & _LIMB_MASK
    return (right << _RIGHT_AT | low + _BOUND_BIAS, m0 | m1 << _HALF_WORD)


def _last_at_most(multiplier, shift, target):
    """The largest int32 x with mbqm(x) <= target (mbqm grows with x), or None when there
    is none or it is the largest int32 (then no x saturates on that side)."""
    lo = -_INT32_SPAN
    hi = _INT32_SPAN - 1
    if mbqm(lo, multiplier, shift) > target or mbqm(hi, multiplier, shift) <= target:
        return None
    # mbqm(x) is x * multiplier * 2^shift / 2^31 to within one: search near that
    step = (1 << (31 - shift)) // multiplier + 2
    guess = (target << (31 - shift)) // multiplier
    a = max(lo, guess - 2 * step)
    b = min(hi, guess + 2 * step)
    if mbqm(a, multiplier, shift) > target:
        a = lo
    if mbqm(b, multiplier, shift) <= target:
        b = hi
    # invariant: mbqm(a) <= target < mbqm(b)
    while b - a > 1:
        m = (a + b) // 2
        if mbqm(m, multiplier, shift) <= target:
            a = m
        else:
            b = m
    return a


@micropython.viper
def requantize(acc: ptr32, out: ptr8, n: int, table: ptr32):
    """out[i] (8-bit) = clamp(MultiplyByQuantizedMultiplier(acc[i], ch) + zp).

    acc: n int32 accumulators, channel = i % channels (channels innermost, as NHWC).
    table: requant_table(). out gets the low 8 bits (int8 or uint8 per the clamp range).
    acc and out are locals 0 and 1 (in registers): they walk the buffers.
    """
    t = table
    channels = t[0]
    zp = t[1] - _BIAS
    lo = t[2] - _BIAS - zp
    hi = t[3] - _BIAS - zp
    lo_byte = (lo + zp) & 0xFF
    hi_byte = (hi + zp) & 0xFF
    first = uint(t) + 4 * HEADER_WORDS
    last = first + 4 * CHANNEL_WORDS * channels
    c = ptr32(first)
    end = uint(acc) + 4 * n
    while uint(acc) < end:
        w = acc[0]
        # sign-extend (a ptr32 load is unsigned on 64-bit, signed on the device): copy
        # bit 31 into the bits above it (on the device there are none)
        x = w | ((0 - ((w >> _SIGN_BIT) & 1)) << _SIGN_BIT)
        w = c[_LOW]
        right = w >> _RIGHT_AT
        if right:
            if x <= (w & _BOUND_MASK) - _BOUND_BIAS:
                out[0] = lo_byte
            elif x > _X_MAX:
                out[0] = hi_byte
            else:
                # LOW < x < 2^30 here: SaturatingRoundingDoublingHighMul(x, M) is
                # sign * floor(t / 2), t = floor((|x| * M + 2^30 - neg) / 2^30) and
                # M = 2^30 + m1 * 2^15 + m0; RoundingDivideByPOT of it by 2^right rounds
                # half away from zero: sign * floor((floor(t / 2^right) + 1) / 2)
                neg = 0
                if x < 0:
                    neg = 1
                    x = 0 - x
                limbs = c[_LIMBS]
                m0 = limbs & _LIMB_MASK
                m1 = limbs >> _HALF_WORD
                x0 = x & 0x7FFF
                x1 = x >> 15
                s = x0 * m0 - neg
                # the 2^30 nudge enters as 2^15 carried into the second limb
                s = x1 * m0 + x0 * m1 + (s >> 15) + 0x8000
                r = (((x1 * m1 + x + (s >> 15)) >> right) + 1) >> 1
                if neg:
                    r = 0 - r
                # above the low bound: only the high one can clamp
                if r > hi:
                    r = hi
                out[0] = r + zp
        else:
            mult = c[_MULTIPLIER]
            m0 = mult & 0x7FFF
            m1 = (mult >> 15) & 0x7FFF
            m2 = (mult >> 30) & 1
            shift = c[_SHIFT] - _BIAS
            left = 0
            right = 0
            mask = 0
            if shift > 0:
                left = shift
            elif shift < 0:
                right = 0 - shift
                mask = ((1 << (right - 1)) - 1) * 2 + 1  # 2^right - 1 without forming 2^31
            if left:
                x = x << left
            # SaturatingRoundingDoublingHighMul(x, M) = sign * floor((|x|*M + 2^30 - neg) / 2^31)
            neg = 0
            if x < 0:
                neg = 1
                x = -(x + 1)
            x0 = (x & 0x7FFF) + neg
            x1 = (x >> 15) & 0x7FFF
            x2 = x >> 30
            s = x0 * m0 - neg
            s = x1 * m0 + x0 * m1 + (s >> 15) + 0x8000
            if x2 == 0:  # |x| < 2^30: the x2 terms vanish
                s = x1 * m1 + x0 * m2 + (s >> 15)
                d2 = s & 0x7FFF
                s = x1 * m2 + (s >> 15)
                q = (d2 >> 1) + ((s & 0x7FFF) << 14) + ((s >> 15) << 29)
            else:
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
            out[0] = r + zp
        acc = ptr32(uint(acc) + 4)
        out = ptr8(uint(out) + 1)
        c = ptr32(uint(c) + 4 * CHANNEL_WORDS)
        if uint(c) == last:
            c = ptr32(first)


def mbqm(x, multiplier, shift):
    """MultiplyByQuantizedMultiplier on Python ints, for prepare-time tables (the int32
    wrap of x << left is TFLite's undefined overflow; callers stay inside int32)."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    a = x * (1 << left)
    if a == multiplier == -(1 << 31):
        high = (1 << 31) - 1
    else:
        ab = a * multiplier
        v = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
        high = (abs(v) >> 31) * (1 if v >= 0 else -1)
    mask = (1 << right) - 1
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if (high & mask) > threshold else 0)


def quantize_value(value_num, value_den, scale, zero_point):
    """TFLite's Quantize(scale, zero_point, f): zero_point + round(f / scale), the division
    in float32 and round() halving away from zero; f = value_num / value_den >= 0."""
    m, e = f32(scale)
    if m <= 0:
        raise ValueError("scale must be positive")
    if value_num == 0:
        return zero_point
    if e >= 0:
        q, qe = _round(value_num, value_den * (m << e), 0, _FLOAT_BITS)
    else:
        q, qe = _round(value_num << -e, value_den * m, 0, _FLOAT_BITS)
    if qe >= 0:
        return zero_point + (q << qe)
    return zero_point + ((q + (1 << (-qe - 1))) >> -qe)


def activation_range(activation, scale, zero_point, qmin, qmax):
    """CalculateActivationRangeQuantized: (act_min, act_max) for a fused activation."""
    if activation == 1:  # RELU
        return max(qmin, quantize_value(0, 1, scale, zero_point)), qmax
    if activation == 3:  # RELU6
        lo = max(qmin, quantize_value(0, 1, scale, zero_point))
        return lo, min(qmax, quantize_value(6, 1, scale, zero_point))
    if activation == 0:
        return qmin, qmax
    raise ValueError("fused activation %d is not supported" % activation)
