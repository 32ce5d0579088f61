# Elementwise int8 ADD and MUL with TFLite Micro's reference arithmetic
# (reference_integer_ops Add / Mul and their broadcasting variants).
#
# Both ops are split in two steps: binary() below writes one int32 accumulator per
# output element, then quant.requantize() scales it to the output (one channel).
#   ADD: acc = s1(a) + s2(b), s_k(x) = MBQM((x - zp_k) << 20, M_k, shift_k), a function
#        of the input byte only, so each input has a 256-entry table of it (prepare time).
#   MUL: acc = (a - zp1) * (b - zp2), each factor again a 256-entry table.
# Tables are stored + _LUT_BIAS: a ptr32 load reads words unsigned on 64-bit ports.
#
# Broadcasting: the output is walked as up to 4 collapsed dimensions; each input has a
# stride per dimension (0 where it is broadcast). 32-bit: |s_k| < 2^27, |product| <= 255^2.
import array

import micropython
from micropython import const

ADD = const(0)
MUL = const(1)
HEADER_WORDS = const(16)
_LUT_BIAS = const(0x10000000)
_LUT_LIMIT = const(0x0FFFFFFF)
_DIMS = const(4)


def _strides(shape):
    s = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        s[d] = s[d + 1] * shape[d + 1]
    return s


def broadcast(shape1, shape2):
    """(out_dims, strides1, strides2), each _DIMS long: the output walked as collapsed
    dimensions, with each input's element stride along them (0 where broadcast).
    Raises ValueError when the shapes do not broadcast or need more than _DIMS dims."""
    rank = max(len(shape1), len(shape2))
    a = [1] * (rank - len(shape1)) + list(shape1)
    b = [1] * (rank - len(shape2)) + list(shape2)
    sa = _strides(a)
    sb = _strides(b)
    dims = []
    for d in range(rank):
        if a[d] != b[d] and a[d] != 1 and b[d] != 1:
            raise ValueError("shapes %r and %r do not broadcast" % (tuple(shape1), tuple(shape2)))
        n = max(a[d], b[d])
        if n == 1:
            continue
        da = sa[d] if a[d] == n else 0
        db = sb[d] if b[d] == n else 0
        if dims:
            pn, pa, pb = dims[-1]
            # merge into the previous dimension when the walk continues it
            if pa == da * n and pb == db * n:
                dims[-1] = (pn * n, da, db)
                continue
        dims.append((n, da, db))
    if len(dims) > _DIMS:
        raise ValueError("broadcast of %r and %r needs %d dimensions" % (shape1, shape2, len(dims)))
    while len(dims) < _DIMS:
        dims.insert(0, (1, 0, 0))
    return [d[0] for d in dims], [d[1] for d in dims], [d[2] for d in dims]


def table(mode, shape1, shape2, lut1, lut2):
    """The int32 table binary() reads: mode, dims, strides, then the two 256-entry tables
    (indexed by the input byte, 0..255, i.e. int8 values two's complement)."""
    dims, s1, s2 = broadcast(shape1, shape2)
    words = [mode] + dims + s1 + s2
    words += [0] * (HEADER_WORDS - len(words))
    for lut in (lut1, lut2):
        if len(lut) != 256:
            raise ValueError("a table has %d entries" % len(lut))
        for v in lut:
            if not -_LUT_LIMIT <= v <= _LUT_LIMIT:
                raise ValueError("table value %d out of range" % v)
            words.append(v + _LUT_BIAS)
    return array.array("i", words)


@micropython.viper
def binary(in1, in2, acc, t):
    """acc[i] (int32) = lut1[in1[..]] + lut2[in2[..]] (ADD) or their product (MUL), for
    every output element i in row-major order, inputs indexed through the broadcast."""
    a = ptr8(in1)
    b = ptr8(in2)
    o = ptr32(acc)
    p = ptr32(t)
    mode = p[0]
    n0 = p[1]
    n1 = p[2]
    n2 = p[3]
    n3 = p[4]
    a0 = p[5]
    a1 = p[6]
    a2 = p[7]
    a3 = p[8]
    b0 = p[9]
    b1 = p[10]
    b2 = p[11]
    b3 = p[12]
    l1 = HEADER_WORDS
    l2 = HEADER_WORDS + 256
    at = 0
    i0 = 0
    while i0 < n0:
        i1 = 0
        while i1 < n1:
            i2 = 0
            while i2 < n2:
                ia = i0 * a0 + i1 * a1 + i2 * a2
                ib = i0 * b0 + i1 * b1 + i2 * b2
                end = at + n3
                if mode == ADD:
                    while at < end:
                        o[at] = (p[l1 + a[ia]] - _LUT_BIAS) + (p[l2 + b[ib]] - _LUT_BIAS)
                        ia += a3
                        ib += b3
                        at += 1
                else:
                    while at < end:
                        o[at] = (p[l1 + a[ia]] - _LUT_BIAS) * (p[l2 + b[ib]] - _LUT_BIAS)
                        ia += a3
                        ib += b3
                        at += 1
                i2 += 1
            i1 += 1
        i0 += 1
