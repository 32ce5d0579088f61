# Convolution kernels with TFLite Micro's int8 reference arithmetic
# (reference_integer_ops ConvPerChannel / DepthwiseConvPerChannel / FullyConnected):
#   acc[oc] = bias[oc] + sum(filter * (input + input_offset)) over taps inside the input
# then requantize() per output channel. Batch 1, NHWC. Taps in the padding contribute
# nothing (as in TFLite), so the input offset cannot be folded into the bias there.
#
# Buffers: `inp` int8 input; `filt` int8 filter as in the model; `acc` int32 with the bias
# in its first out_c words (copied once at prepare) followed by one word per output;
# `g` an int32 geometry table (GEOMETRY_WORDS, built by geometry()).
#
# 32-bit: |filter * (input + offset)| <= 128 * 255, so a sum of up to 65,000 taps plus a
# bias stays inside int32; geometry() refuses layers with more taps than that.
import array

import micropython
from micropython import const

GEOMETRY_WORDS = const(16)
_MAX_TAPS = const(65000)
_BIAS = const(0x10000)


def geometry(in_hwc, out_hwc, k_hw, stride_hw, dilation_hw, pad_hw, input_offset, depth_mult=0):
    """The int32 table the kernels read. pad_hw is TFLite's (top, left) padding."""
    taps = k_hw[0] * k_hw[1] * (in_hwc[2] if depth_mult == 0 else 1)
    if taps > _MAX_TAPS:
        raise ValueError("%d taps per output would overflow int32 accumulators" % taps)
    return array.array(
        "i",
        (
            in_hwc[0],
            in_hwc[1],
            in_hwc[2],
            out_hwc[0],
            out_hwc[1],
            out_hwc[2],
            k_hw[0],
            k_hw[1],
            stride_hw[0],
            stride_hw[1],
            dilation_hw[0],
            dilation_hw[1],
            pad_hw[0] + _BIAS,
            pad_hw[1] + _BIAS,
            input_offset + _BIAS,
            depth_mult,
        ),
    )


@micropython.viper
def conv2d(inp, filt, acc, g):
    """CONV_2D (and FULLY_CONNECTED as a 1x1 conv): acc[out_c + pos*out_c + oc]."""
    x = ptr8(inp)
    f = ptr8(filt)
    a = ptr32(acc)
    p = ptr32(g)
    in_h = p[0]
    in_w = p[1]
    in_c = p[2]
    out_h = p[3]
    out_w = p[4]
    out_c = p[5]
    k_h = p[6]
    k_w = p[7]
    s_h = p[8]
    s_w = p[9]
    d_h = p[10]
    d_w = p[11]
    pad_h = p[12] - _BIAS
    pad_w = p[13] - _BIAS
    off = p[14] - _BIAS
    out = out_c
    oy = 0
    while oy < out_h:
        iy0 = oy * s_h - pad_h
        ox = 0
        while ox < out_w:
            ix0 = ox * s_w - pad_w
            oc = 0
            while oc < out_c:
                total = 0
                fbase = oc * k_h * k_w * in_c
                ky = 0
                while ky < k_h:
                    iy = iy0 + ky * d_h
                    if 0 <= iy < in_h:
                        kx = 0
                        while kx < k_w:
                            ix = ix0 + kx * d_w
                            if 0 <= ix < in_w:
                                xi = (iy * in_w + ix) * in_c
                                fi = fbase + (ky * k_w + kx) * in_c
                                end = xi + in_c
                                while xi < end:
                                    total += ((f[fi] ^ 0x80) - 0x80) * (
                                        ((x[xi] ^ 0x80) - 0x80) + off
                                    )
                                    xi += 1
                                    fi += 1
                            kx += 1
                    ky += 1
                a[out] = a[oc] + total
                out += 1
                oc += 1
            ox += 1
        oy += 1


@micropython.viper
def depthwise_conv2d(inp, filt, acc, g):
    """DEPTHWISE_CONV_2D: out channel oc = ic * depth_mult + m; filter [1, k_h, k_w, out_c]."""
    x = ptr8(inp)
    f = ptr8(filt)
    a = ptr32(acc)
    p = ptr32(g)
    in_h = p[0]
    in_w = p[1]
    in_c = p[2]
    out_h = p[3]
    out_w = p[4]
    out_c = p[5]
    k_h = p[6]
    k_w = p[7]
    s_h = p[8]
    s_w = p[9]
    d_h = p[10]
    d_w = p[11]
    pad_h = p[12] - _BIAS
    pad_w = p[13] - _BIAS
    off = p[14] - _BIAS
    mult = p[15]
    out = out_c
    oy = 0
    while oy < out_h:
        iy0 = oy * s_h - pad_h
        ox = 0
        while ox < out_w:
            ix0 = ox * s_w - pad_w
            oc = 0
            while oc < out_c:
                ic = oc // mult
                total = 0
                ky = 0
                while ky < k_h:
                    iy = iy0 + ky * d_h
                    if 0 <= iy < in_h:
                        kx = 0
                        while kx < k_w:
                            ix = ix0 + kx * d_w
                            if 0 <= ix < in_w:
                                xv = ((x[(iy * in_w + ix) * in_c + ic] ^ 0x80) - 0x80) + off
                                fv = (f[(ky * k_w + kx) * out_c + oc] ^ 0x80) - 0x80
                                total += fv * xv
                            kx += 1
                    ky += 1
                a[out] = a[oc] + total
                out += 1
                oc += 1
            ox += 1
        oy += 1
