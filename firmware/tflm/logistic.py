# int8 LOGISTIC with TFLite Micro's exact results, as a 256-entry table built at prepare.
#
# TFLite Micro (kernels/logistic_common.cc, reference/integer_ops/logistic.h) requires the
# output zero point -128 (scale 1/256) and computes, per element,
#   v = input - zp;  v <= -radius -> -128;  v >= radius -> 127;  else
#   q4 = MultiplyByQuantizedMultiplier(v, multiplier, left_shift)   (Q4.27)
#   out = clamp(RoundingDivideByPOT(gemmlowp::logistic(q4), 23) - 128, -128, 127)
# The output depends on the int8 input alone, so all 256 are computed once here, with
# Python ints emulating the C int32 arithmetic (gemmlowp fixedpoint.h), and the kernel is
# a byte lookup (tflm.move.map_bytes).
#
# Prepare: input_real_multiplier = double(scale) * 2^27, frexp, then round(q * 2^31). The
# scale is a float32 (24-bit significand), so the product, frexp and q * 2^31 are all exact
# in double: the multiplier is the significand shifted to 31 bits and no rounding (hence
# none of QuantizeMultiplier's 2^31 correction, which TFLM does not do here) can happen.
# radius = CalculateInputRadius(4, left_shift, 31) = floor(15 * 2^27 / 2^left_shift).
#
# Table layout: lut(...)[b] is the output byte for the input byte b, i.e. the int8 input x
# is looked up at x & 0xFF (what a ptr8 load gives) and the entry is the int8 output's
# two's-complement byte.
import struct

_MAX = 0x7FFFFFFF
_MIN = -0x80000000
_ONE_Q31 = 0x7FFFFFFF  # FixedPoint<int32, 0>::One()
_HALF_Q31 = 0x40000000
# exp_on_interval_between_negative_one_quarter_and_0_excl constants (Q0.31)
_EXP_M1_8 = 1895147668  # exp(-1/8)
_ONE_THIRD = 715827883
# exp_on_negative_values barrel shifter for Q4.27 inputs: (bit of the remainder, exp(-2^k))
_BARREL = (
    (25, 1672461947),
    (26, 1302514674),
    (27, 790015084),
    (28, 290630308),
    (29, 39332535),
    (30, 720401),
)
# one_over_one_plus_x_for_x_in_0_1 Newton-Raphson constants (Q2.29)
_C48_17 = 1515870810
_CM32_17 = -1010580540
_ONE_Q2 = 0x20000000


def _wrap(x):
    """C int32 wrap-around of an add/sub result (formally UB in C, wraps in practice)."""
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


def _srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul (int32)."""
    if a == b and a == _MIN:
        return _MAX
    ab = a * b
    if ab >= 0:
        return (ab + 0x40000000) >> 31
    return -((0x3FFFFFFF - ab) >> 31)  # (ab + 1 - 2^30) / 2^31, truncated toward zero


def _rdbp(x, exponent):
    """gemmlowp RoundingDivideByPOT."""
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def _sat_pot(x, exponent):
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0."""
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return _MAX
    if x < -threshold:
        return _MIN
    return x << exponent


def _exp_quarter(a):
    """exp(a) for Q0.31 a in [-1/4, 0): Taylor series around -1/8."""
    x = a + (1 << 28)
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = _rdbp(x4, 2)
    t = _rdbp(_wrap(_srdhm(_wrap(x4_over_4 + x3), _ONE_THIRD) + x2), 1)
    return _wrap(_EXP_M1_8 + _srdhm(_EXP_M1_8, _wrap(x + t)))


def _exp_negative_q4(a):
    """exp_on_negative_values for a Q4.27 a <= 0, result Q0.31."""
    if a == 0:
        return _ONE_Q31
    mod = (a & 0x1FFFFFF) - 0x2000000  # (a mod 1/4) - 1/4, in [-1/4, 0)
    result = _exp_quarter(mod << 4)  # Rescale<0>: |mod| <= 2^25, so no saturation
    remainder = _wrap(mod - a)
    for bit, multiplier in _BARREL:
        if (remainder >> bit) & 1:
            result = _srdhm(result, multiplier)
    return result


def _one_over_one_plus(a):
    """one_over_one_plus_x_for_x_in_0_1: Q0.31 in, Q0.31 out."""
    s = a + _ONE_Q31  # RoundingHalfSum in 64 bits
    half = (s + 1) >> 1 if s >= 0 else -((1 - s) >> 1)
    x = _wrap(_C48_17 + _srdhm(half, _CM32_17))
    for _ in range(3):
        e = _wrap(_ONE_Q2 - _srdhm(half, x))
        x = _wrap(x + _sat_pot(_srdhm(x, e), 2))
    return _sat_pot(x, 1)


def _logistic_q4(a):
    """gemmlowp::logistic of a FixedPoint<int32, 4> raw value: Q0.31 raw result."""
    if a == 0:
        return _HALF_Q31
    positive = _one_over_one_plus(_exp_negative_q4(-a if a > 0 else a))
    return positive if a > 0 else _wrap(_ONE_Q31 - positive)


def _bit_length(n):
    b = 0
    while n >> b:
        b += 1
    return b


def params(input_scale):
    """TFLM's (input_multiplier, input_left_shift, input_range_radius) for a float32 scale."""
    bits = struct.unpack("<I", struct.pack("<f", input_scale))[0]
    exp = (bits >> 23) & 0xFF
    frac = bits & 0x7FFFFF
    if bits >> 31 or exp == 0xFF:
        raise ValueError("logistic input scale must be finite and >= 0")
    if exp == 0:
        m, e = frac, -149
    else:
        m, e = frac | 0x800000, exp - 150
    if m == 0:
        return 0, 0, 15 << 27  # frexp(0) = 0 * 2^0
    n = _bit_length(m)  # <= 24
    # scale * 2^27 = (m / 2^n) * 2^shift, m / 2^n in [0.5, 1); q * 2^31 is an integer
    shift = e + 27 + n
    if shift < 0 or shift > 62:
        # TFLM shifts 1ll by this amount: undefined outside 0..63
        raise ValueError("logistic input scale out of range")
    return m << (31 - n), shift, (15 << 27) >> shift


def _output(v, multiplier, shift, radius):
    """The int8 output for v = input - zero_point."""
    if v <= -radius:
        return -128
    if v >= radius:
        return 127
    # MultiplyByQuantizedMultiplier with shift >= 0: |v| < radius keeps v << shift in int32
    q4 = _srdhm(v << shift, multiplier)
    out = _rdbp(_logistic_q4(q4), 23) - 128
    if out > 127:
        return 127
    if out < -128:
        return -128
    return out


def lut(input_scale, input_zero_point):
    """The 256-byte table: entry (x & 0xFF) is the output byte for the int8 input x."""
    multiplier, shift, radius = params(input_scale)
    table = bytearray(256)
    for x in range(-128, 128):
        table[x & 0xFF] = _output(x - input_zero_point, multiplier, shift, radius) & 0xFF
    return bytes(table)
