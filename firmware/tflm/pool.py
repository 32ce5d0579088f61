# Pooling kernels with TFLite Micro's int8 reference arithmetic
# (reference_integer_ops AveragePool / MaxPool): one NHWC image per call, the window
# clipped to the input (padding taps are left out, not counted as zeros), output
# quantized as the input (TFLite requires equal scales and zero points), then the fused
# activation's clamp.
#
# Average: acc = sum of the taps, count = taps inside the input, and the mean rounds half
# away from zero as TFLite's integer division does it:
#   acc > 0: (acc + count/2) / count   else: (acc - count/2) / count   (C: toward zero)
# 32-bit: |acc| <= 128 * taps; geometry() refuses windows over 65,000 taps.
import array

import micropython
from micropython import const

GEOMETRY_WORDS = const(13)
_MAX_TAPS = const(65000)
_BIAS = const(0x10000)


def geometry(in_hwc, out_hw, filter_hw, stride_hw, pad_hw, act_min, act_max):
    """The int32 table the kernels read; pad_hw is TFLite's (top, left) padding."""
    if filter_hw[0] * filter_hw[1] > _MAX_TAPS:
        raise ValueError("a %dx%d window is too large" % (filter_hw[0], filter_hw[1]))
    return array.array(
        "i",
        (
            in_hwc[0],
            in_hwc[1],
            in_hwc[2],
            out_hw[0],
            out_hw[1],
            filter_hw[0],
            filter_hw[1],
            stride_hw[0],
            stride_hw[1],
            pad_hw[0] + _BIAS,
            pad_hw[1] + _BIAS,
            act_min + _BIAS,
            act_max + _BIAS,
        ),
    )


@micropython.viper
def average_pool(inp, out, g, unused: int):
    """AVERAGE_POOL_2D of one int8 image (in_h, in_w, c) into out (out_h, out_w, c)."""
    x = ptr8(inp)
    o = ptr8(out)
    p = ptr32(g)
    in_h = p[0]
    in_w = p[1]
    c = p[2]
    out_h = p[3]
    out_w = p[4]
    f_h = p[5]
    f_w = p[6]
    s_h = p[7]
    s_w = p[8]
    pad_h = p[9] - _BIAS
    pad_w = p[10] - _BIAS
    lo = p[11] - _BIAS
    hi = p[12] - _BIAS
    at = 0
    oy = 0
    while oy < out_h:
        iy0 = oy * s_h - pad_h
        y_start = 0
        if iy0 < 0:
            y_start = 0 - iy0
        y_end = f_h
        if in_h - iy0 < y_end:
            y_end = in_h - iy0
        ox = 0
        while ox < out_w:
            ix0 = ox * s_w - pad_w
            x_start = 0
            if ix0 < 0:
                x_start = 0 - ix0
            x_end = f_w
            if in_w - ix0 < x_end:
                x_end = in_w - ix0
            count = 0
            if y_end > y_start and x_end > x_start:
                count = (y_end - y_start) * (x_end - x_start)
            ch = 0
            while ch < c:
                if count > 0:
                    acc = 0
                    ky = y_start
                    while ky < y_end:
                        i = ((iy0 + ky) * in_w + ix0 + x_start) * c + ch
                        end = i + (x_end - x_start) * c
                        while i < end:
                            acc += (x[i] ^ 0x80) - 0x80
                            i += c
                        ky += 1
                    half = count >> 1
                    if acc > 0:
                        v = (acc + half) // count
                    else:
                        v = 0 - ((half - acc) // count)
                    if v < lo:
                        v = lo
                    elif v > hi:
                        v = hi
                    o[at] = v & 0xFF
                at += 1
                ch += 1
            ox += 1
        oy += 1


@micropython.viper
def max_pool(inp, out, g, unused: int):
    """MAX_POOL_2D of one int8 image (in_h, in_w, c) into out (out_h, out_w, c)."""
    x = ptr8(inp)
    o = ptr8(out)
    p = ptr32(g)
    in_h = p[0]
    in_w = p[1]
    c = p[2]
    out_h = p[3]
    out_w = p[4]
    f_h = p[5]
    f_w = p[6]
    s_h = p[7]
    s_w = p[8]
    pad_h = p[9] - _BIAS
    pad_w = p[10] - _BIAS
    lo = p[11] - _BIAS
    hi = p[12] - _BIAS
    at = 0
    oy = 0
    while oy < out_h:
        iy0 = oy * s_h - pad_h
        y_start = 0
        if iy0 < 0:
            y_start = 0 - iy0
        y_end = f_h
        if in_h - iy0 < y_end:
            y_end = in_h - iy0
        ox = 0
        while ox < out_w:
            ix0 = ox * s_w - pad_w
            x_start = 0
            if ix0 < 0:
                x_start = 0 - ix0
            x_end = f_w
            if in_w - ix0 < x_end:
                x_end = in_w - ix0
            ch = 0
            while ch < c:
                v = -128
                ky = y_start
                while ky < y_end:
                    i = ((iy0 + ky) * in_w + ix0 + x_start) * c + ch
                    end = i + (x_end - x_start) * c
                    while i < end:
                        t = (x[i] ^ 0x80) - 0x80
                        if t > v:
                            v = t
                        i += c
                    ky += 1
                if v < lo:
                    v = lo
                elif v > hi:
                    v = hi
                o[at] = v & 0xFF
                at += 1
                ch += 1
            ox += 1
        oy += 1
