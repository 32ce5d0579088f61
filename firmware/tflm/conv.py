# Convolution kernels with TFLite Micro's int8 reference arithmetic
# (reference_integer_ops ConvPerChannel / DepthwiseConvPerChannel / FullyConnected):
#   acc[oc] = bias[oc] + sum(filter * (input + input_offset)) over taps inside the input
# then requantize() per output channel. Batch 1, NHWC. Taps in the padding contribute
# nothing (as in TFLite).
#
# Buffers: `inp` int8 input; `filt` the filter biased, fb = w ^ 0x80 = w + 128 per byte
# (the interpreter biases the model's filters once, in place); `work` the
# outputs' int32 accumulators, one word per output, then the input's size in bytes of
# scratch for the biased input (work_bytes(); its contents live for one call, so one buffer
# serves every layer); `g` an int32 table (built by table()): GEOMETRY_WORDS of geometry,
# then the accumulators' per-channel start, out_c words.
#
# The kernels work on biased input bytes xb = x ^ 0x80 = x + 128 (no sign extension):
#   sum(w * (x + off)) = sum(w * xb) + (off - 128) * sum(w)
# so a channel's start holds bias + (off - 128) * sum(w over all taps), and a patch that reaches
# into the padding takes back (off - 128) * sum(w over the taps it skips). Each call first
# writes the biased input into the scratch, a word at a time: every input byte is read by
# many outputs, and a plain byte in the inner product costs viper far less than x ^ 0x80.
# conv2d's whole-patch loop multiplies plain bytes on both sides:
#   sum(w * xb) = sum(fb * xb) - 128 * sum(xb)
# where sum(xb) is the patch's, the same for every output channel at that position.
# The inner loops walk their pointers in inp and filt, locals 0 and 1, which mpy-cross
# keeps in registers.
#
# 32-bit: |w * xb| <= 128 * 255, fb * xb <= 255 * 255 and |(off - 128) * w| <= 255 * 128,
# so with at most _MAX_TAPS taps per output the sums stay inside int32; geometry() refuses
# bigger layers.
import array
import struct

import micropython
from micropython import const

GEOMETRY_WORDS = const(17)
_MAX_TAPS = const(16384)
_BIAS = const(0x10000)
_INT32_LIMIT = const(0x7FFFFFFF)
# 0x80 in every byte of an int32 word, as the signed value array("i") stores
_FLIP_WORD = const(-0x7F7F7F80)
_FLIP_BYTE = const(0x80)
_FLIP_SHIFT = const(7)  # 0x80 = 1 << 7


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
            _FLIP_WORD,
        ),
    )


def work_bytes(geom):
    """The work buffer's size for a layer of geometry geom (geometry() or table()): its
    outputs' accumulators, then the biased input."""
    n_out = geom[3] * geom[4] * geom[5]
    return 4 * n_out + geom[0] * geom[1] * geom[2]


def table(geom, bias, filt, depthwise):
    """The kernel's table: geom (geometry()) followed by the per-channel start of the
    accumulators.

    bias: int32 LE bytes (or None); filt: the biased filter bytes. A
    channel's start is its bias + (input_offset - 128) * sum(its w).
    """
    out_c = geom[5]
    t = array.array("i", geom)
    values = list(struct.unpack("<%di" % out_c, bias)) if bias is not None else [0] * out_c
    corr = geom[14] - _BIAS - 128
    per = len(filt) // out_c
    for oc in range(out_c):
        total = 0
        if depthwise:  # filter [1, k_h, k_w, out_c]: a channel's taps are out_c apart
            taps = range(oc, len(filt), out_c)
        else:  # filter [out_c, k_h, k_w, in_c]: a channel's taps are contiguous
            taps = range(oc * per, (oc + 1) * per)
        for i in taps:
            total += filt[i] - _FLIP_BYTE
        v = values[oc] + corr * total
        if v > _INT32_LIMIT or v < -_INT32_LIMIT:
            raise ValueError("bias of channel %d overflows int32" % oc)
        values[oc] = v
    t.extend(array.array("i", values))
    return t


@micropython.viper
def conv2d(inp: ptr8, filt: ptr8, work, g):
    """CONV_2D (and FULLY_CONNECTED as a 1x1 conv): work[pos*out_c + oc]."""
    a = ptr32(work)
    p = ptr32(g)
    start = ptr32(uint(p) + 4 * GEOMETRY_WORDS)
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
    f_addr = uint(filt)
    x_addr = uint(a) + 4 * out_h * out_w * out_c
    # the biased input: aligned words 4 bytes at a time (the ESP32-S3 faults on unaligned
    # 32-bit access), flip holding 0x80 in every byte
    flip = p[16]
    n = in_h * in_w * in_c
    src = int(uint(inp))
    dst = int(x_addr)
    if ((src | dst) & 3) == 0:
        s4 = ptr32(src)
        d4 = ptr32(dst)
        while n >= 16:
            d4[0] = s4[0] ^ flip
            d4[1] = s4[1] ^ flip
            d4[2] = s4[2] ^ flip
            d4[3] = s4[3] ^ flip
            s4 = ptr32(uint(s4) + 16)
            d4 = ptr32(uint(d4) + 16)
            n -= 16
        while n >= 4:
            d4[0] = s4[0] ^ flip
            s4 = ptr32(uint(s4) + 4)
            d4 = ptr32(uint(d4) + 4)
            n -= 4
        src = int(uint(s4))
        dst = int(uint(d4))
    s1 = ptr8(src)
    d1 = ptr8(dst)
    i = 0
    while i < n:
        d1[i] = s1[i] ^ 0x80
        i += 1
    x = ptr8(x_addr)
    f = ptr8(f_addr)
    per_oc = k_h * k_w * in_c
    # a patch is `rows` runs of `run` contiguous bytes, x_rows apart in the input; when the
    # rows follow each other (the streaming layers: full-width kernels), it is one run
    run = k_w * in_c
    rows = k_h
    x_rows = d_h * in_w * in_c
    if x_rows == run:
        run = k_h * run
        rows = 1
    run8 = run & ~7
    span_h = (k_h - 1) * d_h
    span_w = (k_w - 1) * d_w
    out = 0
    oy = 0
    while oy < out_h:
        iy0 = oy * s_h - pad_h
        inside_h = iy0 >= 0 and iy0 + span_h < in_h
        ox = 0
        while ox < out_w:
            ix0 = ox * s_w - pad_w
            if inside_h and d_w == 1 and ix0 >= 0 and ix0 + span_w < in_w:
                # whole runs in input and filter, plain bytes on both sides: the patch's
                # 128 * sum(xb) is taken off each channel's sum(fb * xb)
                x0 = x_addr + (iy0 * in_w + ix0) * in_c
                total = 0
                ky = 0
                while ky < rows:
                    inp = ptr8(x0 + ky * x_rows)
                    end = uint(inp) + run8
                    while uint(inp) < end:
                        total += (
                            inp[0] + inp[1] + inp[2] + inp[3] + inp[4] + inp[5] + inp[6] + inp[7]
                        )
                        inp = ptr8(uint(inp) + 8)
                    end = uint(inp) + (run - run8)
                    while uint(inp) < end:
                        total += inp[0]
                        inp = ptr8(uint(inp) + 1)
                    ky += 1
                x_sum = total << _FLIP_SHIFT
                filt = ptr8(f_addr)
                oc = 0
                while oc < out_c:
                    total = 0
                    ky = 0
                    while ky < rows:
                        inp = ptr8(x0 + ky * x_rows)
                        end = uint(inp) + run8
                        while uint(inp) < end:
                            total += (
                                filt[0] * inp[0]
                                + filt[1] * inp[1]
                                + filt[2] * inp[2]
                                + filt[3] * inp[3]
                                + filt[4] * inp[4]
                                + filt[5] * inp[5]
                                + filt[6] * inp[6]
                                + filt[7] * inp[7]
                            )
                            filt = ptr8(uint(filt) + 8)
                            inp = ptr8(uint(inp) + 8)
                        end = uint(inp) + (run - run8)
                        while uint(inp) < end:
                            total += filt[0] * inp[0]
                            filt = ptr8(uint(filt) + 1)
                            inp = ptr8(uint(inp) + 1)
                        ky += 1
                    a[out] = (total - x_sum) + start[oc]
                    out += 1
                    oc += 1
            else:
                oc = 0
                while oc < out_c:
                    total = start[oc]
                    f0 = oc * per_oc
                    skipped = 0
                    ky = 0
                    while ky < k_h:
                        iy = iy0 + ky * d_h
                        kx = 0
                        while kx < k_w:
                            ix = ix0 + kx * d_w
                            fi = f0 + (ky * k_w + kx) * in_c
                            fend = fi + in_c
                            if 0 <= iy < in_h and 0 <= ix < in_w:
                                xi = (iy * in_w + ix) * in_c
                                while fi < fend:
                                    total += (f[fi] - 0x80) * x[xi]
                                    fi += 1
                                    xi += 1
                            else:
                                while fi < fend:
                                    skipped += f[fi] - 0x80
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
def depthwise_conv2d(inp: ptr8, filt: ptr8, work, g):
    """DEPTHWISE_CONV_2D: out channel oc = ic * depth_mult + m; filter [1, k_h, k_w, out_c].
    Same biased-input scheme as conv2d; taps are strided, so pointers step per tap. With
    depth_mult 1 and the patch inside the input, each channel is summed on its own: inp
    and filt (locals 0 and 1, in registers) walk its taps down the kernel's columns, and
    its sum stays in one local."""
    a = ptr32(work)
    p = ptr32(g)
    start = ptr32(uint(p) + 4 * GEOMETRY_WORDS)
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
    f_addr = int(uint(filt))
    if (
        out_h == 1
        and out_w == 1
        and mult == 1
        and pad_h == 0
        and pad_w == 0
        and (k_h - 1) * d_h < in_h
        and (k_w - 1) * d_w < in_w
    ):
        # one output position (the streaming models' layers): every input byte is read
        # once, so it is biased as it is read (x ^ 0x80) instead of copied first. Four
        # channels at a time walk down a kernel column together: their taps sit at
        # constant offsets 0..3, and inp and filt step x_col and f_col per tap.
        x_addr = int(uint(inp))
        x_step = d_w * in_c
        x_col = d_h * in_w * in_c
        f_col = k_w * out_c
        x_len = k_h * x_col
        c4 = out_c & ~3
        c8 = out_c & ~7
        c = 0
        while c < c8:
            s4 = ptr32(uint(start) + 4 * c)
            t0 = s4[0]
            t1 = s4[1]
            t2 = s4[2]
            t3 = s4[3]
            t4 = s4[4]
            t5 = s4[5]
            t6 = s4[6]
            t7 = s4[7]
            kx = 0
            while kx < k_w:
                inp = ptr8(x_addr + kx * x_step + c)
                filt = ptr8(f_addr + kx * out_c + c)
                end = uint(inp) + x_len
                while uint(inp) < end:
                    t0 += (filt[0] - 0x80) * (inp[0] ^ 0x80)
                    t1 += (filt[1] - 0x80) * (inp[1] ^ 0x80)
                    t2 += (filt[2] - 0x80) * (inp[2] ^ 0x80)
                    t3 += (filt[3] - 0x80) * (inp[3] ^ 0x80)
                    t4 += (filt[4] - 0x80) * (inp[4] ^ 0x80)
                    t5 += (filt[5] - 0x80) * (inp[5] ^ 0x80)
                    t6 += (filt[6] - 0x80) * (inp[6] ^ 0x80)
                    t7 += (filt[7] - 0x80) * (inp[7] ^ 0x80)
                    filt = ptr8(uint(filt) + f_col)
                    inp = ptr8(uint(inp) + x_col)
                kx += 1
            s4 = ptr32(uint(a) + 4 * c)
            s4[0] = t0
            s4[1] = t1
            s4[2] = t2
            s4[3] = t3
            s4[4] = t4
            s4[5] = t5
            s4[6] = t6
            s4[7] = t7
            c += 8
        while c < c4:
            s4 = ptr32(uint(start) + 4 * c)
            t0 = s4[0]
            t1 = s4[1]
            t2 = s4[2]
            t3 = s4[3]
            kx = 0
            while kx < k_w:
                inp = ptr8(x_addr + kx * x_step + c)
                filt = ptr8(f_addr + kx * out_c + c)
                end = uint(inp) + x_len
                while uint(inp) < end:
                    t0 += (filt[0] - 0x80) * (inp[0] ^ 0x80)
                    t1 += (filt[1] - 0x80) * (inp[1] ^ 0x80)
                    t2 += (filt[2] - 0x80) * (inp[2] ^ 0x80)
                    t3 += (filt[3] - 0x80) * (inp[3] ^ 0x80)
                    filt = ptr8(uint(filt) + f_col)
                    inp = ptr8(uint(inp) + x_col)
                kx += 1
            s4 = ptr32(uint(a) + 4 * c)
            s4[0] = t0
            s4[1] = t1
            s4[2] = t2
            s4[3] = t3
            c += 4
        while c < out_c:
            total = start[c]
            kx = 0
            while kx < k_w:
                inp = ptr8(x_addr + kx * x_step + c)
                filt = ptr8(f_addr + kx * out_c + c)
                end = uint(inp) + x_len
                while uint(inp) < end:
                    total += (filt[0] - 0x80) * (inp[0] ^ 0x80)
                    filt = ptr8(uint(filt) + f_col)
                    inp = ptr8(uint(inp) + x_col)
                kx += 1
            a[c] = total
            c += 1
        return
    x_addr = int(uint(a)) + 4 * out_h * out_w * out_c
    # the biased input: aligned words 4 bytes at a time (the ESP32-S3 faults on unaligned
    # 32-bit access), flip holding 0x80 in every byte
    flip = p[16]
    n = in_h * in_w * in_c
    src = int(uint(inp))
    dst = int(x_addr)
    if ((src | dst) & 3) == 0:
        s4 = ptr32(src)
        d4 = ptr32(dst)
        while n >= 16:
            d4[0] = s4[0] ^ flip
            d4[1] = s4[1] ^ flip
            d4[2] = s4[2] ^ flip
            d4[3] = s4[3] ^ flip
            s4 = ptr32(uint(s4) + 16)
            d4 = ptr32(uint(d4) + 16)
            n -= 16
        while n >= 4:
            d4[0] = s4[0] ^ flip
            s4 = ptr32(uint(s4) + 4)
            d4 = ptr32(uint(d4) + 4)
            n -= 4
        src = int(uint(s4))
        dst = int(uint(d4))
    s1 = ptr8(src)
    d1 = ptr8(dst)
    i = 0
    while i < n:
        d1[i] = s1[i] ^ 0x80
        i += 1
    x = ptr8(x_addr)
    f = ptr8(f_addr)
    span_h = (k_h - 1) * d_h
    span_w = (k_w - 1) * d_w
    x_step = d_w * in_c
    x_row = d_h * in_w * in_c - k_w * x_step
    x_col = d_h * in_w * in_c
    x_col2 = 2 * x_col
    x_col3 = 3 * x_col
    x_col4 = 4 * x_col
    f_col = k_w * out_c
    f_col2 = 2 * f_col
    f_col3 = 3 * f_col
    f_col4 = 4 * f_col
    out = 0
    oy = 0
    while oy < out_h:
        iy0 = oy * s_h - pad_h
        inside_h = iy0 >= 0 and iy0 + span_h < in_h
        ox = 0
        while ox < out_w:
            ix0 = ox * s_w - pad_w
            fast = inside_h and ix0 >= 0 and ix0 + span_w < in_w
            if fast and mult == 1:
                # per channel, per kernel column: the column's k_h taps are x_col bytes
                # apart in the input and f_col in the filter, 4 at a time
                x0 = x_addr + (iy0 * in_w + ix0) * in_c
                c = 0
                while c < out_c:
                    total = start[c]
                    kx = 0
                    while kx < k_w:
                        inp = ptr8(x0 + kx * x_step + c)
                        filt = ptr8(f_addr + kx * out_c + c)
                        k = k_h
                        while k >= 4:
                            total += (
                                (filt[0] - 0x80) * inp[0]
                                + (filt[f_col] - 0x80) * inp[x_col]
                                + (filt[f_col2] - 0x80) * inp[x_col2]
                                + (filt[f_col3] - 0x80) * inp[x_col3]
                            )
                            filt = ptr8(uint(filt) + f_col4)
                            inp = ptr8(uint(inp) + x_col4)
                            k -= 4
                        while k > 0:
                            total += (filt[0] - 0x80) * inp[0]
                            filt = ptr8(uint(filt) + f_col)
                            inp = ptr8(uint(inp) + x_col)
                            k -= 1
                        kx += 1
                    a[out + c] = total
                    c += 1
                out += out_c
                ox += 1
                continue
            oc = 0
            while oc < out_c:
                ic = oc
                if mult != 1:
                    ic = oc // mult
                total = start[oc]
                if fast:
                    xp = ptr8(x_addr + (iy0 * in_w + ix0) * in_c + ic)
                    fp = ptr8(f_addr + oc)
                    ky = 0
                    while ky < k_h:
                        kx = 0
                        while kx < k_w:
                            total += (fp[0] - 0x80) * xp[0]
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
                            fv = f[(ky * k_w + kx) * out_c + oc] - 0x80
                            if 0 <= iy < in_h and 0 <= ix < in_w:
                                total += fv * x[(iy * in_w + ix) * in_c + ic]
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
