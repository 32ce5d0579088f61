# Convolution kernels with TFLite Micro's int8 reference arithmetic
# (reference_integer_ops ConvPerChannel / DepthwiseConvPerChannel / FullyConnected):
#   acc[oc] = bias[oc] + sum(filter * (input + input_offset)) over taps inside the input
# then requantize() per output channel. Batch 1, NHWC. Taps in the padding contribute
# nothing (as in TFLite).
#
# Buffers: `inp` int8 input; `filt` int8 filter as in the model; `acc` int32 with a
# per-channel prefix of out_c words (built once by accumulators()) followed by one word
# per output; `g` an int32 geometry table (GEOMETRY_WORDS, built by geometry()).
#
# conv2d works on biased input bytes xb = x ^ 0x80 = x + 128 (no sign extension):
#   sum(w * (x + off)) = sum(w * xb) + (off - 128) * sum(w)
# so its prefix holds bias + (off - 128) * sum(w over all taps), and a patch that reaches
# into the padding takes back (off - 128) * sum(w over the taps it skips). Its inner loop
# walks pointers 8 taps at a time.
#
# 32-bit: |w * xb| <= 128 * 255 and |(off - 128) * w| <= 255 * 128, so with at most
# _MAX_TAPS taps per output the sums stay inside int32; geometry() refuses bigger layers.
import array
import struct

import micropython
from micropython import const

GEOMETRY_WORDS = const(16)
_MAX_TAPS = const(16384)
_BIAS = const(0x10000)
_INT32_LIMIT = const(0x7FFFFFFF)


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


def accumulators(bias, filt, out_c, n_out, input_offset, depthwise):
    """The acc buffer: the per-channel prefix, then n_out words for the outputs.

    bias: int32 LE bytes (or None); filt: the int8 filter bytes. conv2d's prefix folds in
    (input_offset - 128) * sum(w) per output channel; depthwise's is the plain bias.
    """
    acc = bytearray(4 * (out_c + n_out))
    values = list(struct.unpack("<%di" % out_c, bias)) if bias is not None else [0] * out_c
    corr = input_offset - 128
    per = len(filt) // out_c
    for oc in range(out_c):
        total = 0
        if depthwise:  # filter [1, k_h, k_w, out_c]: a channel's taps are out_c apart
            taps = range(oc, len(filt), out_c)
        else:  # filter [out_c, k_h, k_w, in_c]: a channel's taps are contiguous
            taps = range(oc * per, (oc + 1) * per)
        for i in taps:
            w = filt[i]
            total += w - 256 if w > 127 else w
        values[oc] += corr * total
    for oc in range(out_c):
        v = values[oc]
        if v > _INT32_LIMIT or v < -_INT32_LIMIT:
            raise ValueError("bias of channel %d overflows int32" % oc)
        struct.pack_into("<i", acc, 4 * oc, v)
    return acc


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
    corr = p[14] - _BIAS - 128
    x_addr = uint(x)
    f_addr = uint(f)
    per_oc = k_h * k_w * in_c
    span_h = (k_h - 1) * d_h
    span_w = (k_w - 1) * d_w
    out = out_c
    oy = 0
    while oy < out_h:
        iy0 = oy * s_h - pad_h
        inside_h = iy0 >= 0 and iy0 + span_h < in_h
        ox = 0
        while ox < out_w:
            ix0 = ox * s_w - pad_w
            fast = inside_h and d_w == 1 and ix0 >= 0 and ix0 + span_w < in_w
            oc = 0
            while oc < out_c:
                total = a[oc]
                fbase = oc * per_oc
                if fast:
                    # whole rows of k_w * in_c contiguous bytes in input and filter
                    run = k_w * in_c
                    fp = ptr8(f_addr + fbase)
                    ky = 0
                    while ky < k_h:
                        xp = ptr8(x_addr + ((iy0 + ky * d_h) * in_w + ix0) * in_c)
                        n = run
                        while n >= 8:
                            total += (
                                ((fp[0] ^ 0x80) - 0x80) * (xp[0] ^ 0x80)
                                + ((fp[1] ^ 0x80) - 0x80) * (xp[1] ^ 0x80)
                                + ((fp[2] ^ 0x80) - 0x80) * (xp[2] ^ 0x80)
                                + ((fp[3] ^ 0x80) - 0x80) * (xp[3] ^ 0x80)
                                + ((fp[4] ^ 0x80) - 0x80) * (xp[4] ^ 0x80)
                                + ((fp[5] ^ 0x80) - 0x80) * (xp[5] ^ 0x80)
                                + ((fp[6] ^ 0x80) - 0x80) * (xp[6] ^ 0x80)
                                + ((fp[7] ^ 0x80) - 0x80) * (xp[7] ^ 0x80)
                            )
                            fp = ptr8(uint(fp) + 8)
                            xp = ptr8(uint(xp) + 8)
                            n -= 8
                        while n > 0:
                            total += ((fp[0] ^ 0x80) - 0x80) * (xp[0] ^ 0x80)
                            fp = ptr8(uint(fp) + 1)
                            xp = ptr8(uint(xp) + 1)
                            n -= 1
                        ky += 1
                else:
                    skipped = 0
                    ky = 0
                    while ky < k_h:
                        iy = iy0 + ky * d_h
                        kx = 0
                        while kx < k_w:
                            ix = ix0 + kx * d_w
                            fi = fbase + (ky * k_w + kx) * in_c
                            fend = fi + in_c
                            if 0 <= iy < in_h and 0 <= ix < in_w:
                                xi = (iy * in_w + ix) * in_c
                                while fi < fend:
                                    total += ((f[fi] ^ 0x80) - 0x80) * (x[xi] ^ 0x80)
                                    fi += 1
                                    xi += 1
                            else:
                                while fi < fend:
                                    skipped += (f[fi] ^ 0x80) - 0x80
                                    fi += 1
                            kx += 1
                        ky += 1
                    total -= corr * skipped
                a[out] = total
                out += 1
                oc += 1
            ox += 1
        oy += 1


@micropython.viper
def depthwise_conv2d(inp, filt, acc, g):
    """DEPTHWISE_CONV_2D: out channel oc = ic * depth_mult + m; filter [1, k_h, k_w, out_c].
    Same biased-input scheme as conv2d; taps are strided, so pointers step per tap."""
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
    corr = p[14] - _BIAS - 128
    mult = p[15]
    x_addr = int(uint(x))
    f_addr = int(uint(f))
    span_h = (k_h - 1) * d_h
    span_w = (k_w - 1) * d_w
    x_step = d_w * in_c
    x_row = d_h * in_w * in_c - k_w * x_step
    out = out_c
    oy = 0
    while oy < out_h:
        iy0 = oy * s_h - pad_h
        inside_h = iy0 >= 0 and iy0 + span_h < in_h
        ox = 0
        while ox < out_w:
            ix0 = ox * s_w - pad_w
            fast = inside_h and ix0 >= 0 and ix0 + span_w < in_w
            if fast and mult == 1:
                # channels are contiguous in input, filter and outputs: per tap, walk them
                # 4 at a time, accumulating in the output words
                ap = ptr32(int(uint(a)) + 4 * out)
                c = 0
                while c < out_c:
                    ap[c] = a[c]
                    c += 1
                ky = 0
                while ky < k_h:
                    kx = 0
                    while kx < k_w:
                        xp = ptr8(x_addr + ((iy0 + ky * d_h) * in_w + ix0 + kx * d_w) * in_c)
                        fp = ptr8(f_addr + (ky * k_w + kx) * out_c)
                        ap = ptr32(int(uint(a)) + 4 * out)
                        n = out_c
                        while n >= 8:
                            ap[0] += ((fp[0] ^ 0x80) - 0x80) * (xp[0] ^ 0x80)
                            ap[1] += ((fp[1] ^ 0x80) - 0x80) * (xp[1] ^ 0x80)
                            ap[2] += ((fp[2] ^ 0x80) - 0x80) * (xp[2] ^ 0x80)
                            ap[3] += ((fp[3] ^ 0x80) - 0x80) * (xp[3] ^ 0x80)
                            ap[4] += ((fp[4] ^ 0x80) - 0x80) * (xp[4] ^ 0x80)
                            ap[5] += ((fp[5] ^ 0x80) - 0x80) * (xp[5] ^ 0x80)
                            ap[6] += ((fp[6] ^ 0x80) - 0x80) * (xp[6] ^ 0x80)
                            ap[7] += ((fp[7] ^ 0x80) - 0x80) * (xp[7] ^ 0x80)
                            ap = ptr32(uint(ap) + 32)
                            fp = ptr8(uint(fp) + 8)
                            xp = ptr8(uint(xp) + 8)
                            n -= 8
                        while n >= 4:
                            ap[0] += ((fp[0] ^ 0x80) - 0x80) * (xp[0] ^ 0x80)
                            ap[1] += ((fp[1] ^ 0x80) - 0x80) * (xp[1] ^ 0x80)
                            ap[2] += ((fp[2] ^ 0x80) - 0x80) * (xp[2] ^ 0x80)
                            ap[3] += ((fp[3] ^ 0x80) - 0x80) * (xp[3] ^ 0x80)
                            ap = ptr32(uint(ap) + 16)
                            fp = ptr8(uint(fp) + 4)
                            xp = ptr8(uint(xp) + 4)
                            n -= 4
                        while n > 0:
                            ap[0] += ((fp[0] ^ 0x80) - 0x80) * (xp[0] ^ 0x80)
                            ap = ptr32(uint(ap) + 4)
                            fp = ptr8(uint(fp) + 1)
                            xp = ptr8(uint(xp) + 1)
                            n -= 1
                        kx += 1
                    ky += 1
                out += out_c
                ox += 1
                continue
            oc = 0
            while oc < out_c:
                ic = oc
                if mult != 1:
                    ic = oc // mult
                total = a[oc]
                if fast:
                    xp = ptr8(x_addr + (iy0 * in_w + ix0) * in_c + ic)
                    fp = ptr8(f_addr + oc)
                    ky = 0
                    while ky < k_h:
                        kx = 0
                        while kx < k_w:
                            total += ((fp[0] ^ 0x80) - 0x80) * (xp[0] ^ 0x80)
                            xp = ptr8(uint(xp) + x_step)
                            fp = ptr8(uint(fp) + out_c)
                            kx += 1
                        xp = ptr8(uint(xp) + x_row)
                        ky += 1
                else:
                    skipped = 0
                    ky = 0
                    while ky < k_h:
                        iy = iy0 + ky * d_h
                        kx = 0
                        while kx < k_w:
                            ix = ix0 + kx * d_w
                            fv = (f[(ky * k_w + kx) * out_c + oc] ^ 0x80) - 0x80
                            if 0 <= iy < in_h and 0 <= ix < in_w:
                                total += fv * (x[(iy * in_w + ix) * in_c + ic] ^ 0x80)
                            else:
                                skipped += fv
                            kx += 1
                        ky += 1
                    total -= corr * skipped
                a[out] = total
                out += 1
                oc += 1
            ox += 1
        oy += 1
