# The speech frontend: 40 log-mel features every 10 ms, bit-exact with the TFLite Micro
# audio "micro frontend" (pymicro-features 2.0.2, ESPHome's micro_wake_word) in the
# configuration docs/frontend.md lists. Integer only, viper kernels, no allocation after
# __init__. The tables come from frontend_tables.py (generated, never computed here).
#
# Per 480-sample window (160-sample step): Hann window -> shift up to full scale ->
# 512-point real FFT (kissfft int16: 256-point complex radix-4 + real split) -> energies
# -> 41 mel bands (64-bit sums) -> rounded sqrt >> shift -> noise reduction -> PCAN gain
# -> log -> uint16 features, and ESPHome's int8 model input.
#
# Word-size rule (see pcm.py): viper ints are 32-bit on the ESP32-S3 and 64-bit on the
# unix port, so every intermediate stays inside int32 and values the C holds in 32 or 64
# unsigned bits are carried in 16-bit halves. Only ptr8/ptr16 are used (they load
# unsigned on both). The FFT buffer holds int16 values biased by 0x8000 (stored as
# v + 0x8000, truncated to 16 bits = C's int16 wrap), which folds the sign correction of
# each load into the first multiply.
import array

import micropython
from frontend_tables import (
    FB_BAND_WIDTHS,
    FB_WEIGHTS,
    FFT_PERM,
    FFT_SUPER_TWIDDLES,
    FFT_TWIDDLES,
    LOG_LUT,
    PCAN_GAIN_LUT,
    WINDOW,
)
from micropython import const

NUM_CHANNELS = const(40)  # features per frame
WINDOW_SIZE = const(480)  # samples per window (30 ms)
WINDOW_STEP = const(160)  # samples per frame (10 ms)

_HDR = const(2)  # int16 slots before the samples in the input buffer: one 32-bit word,
# slot 0 = samples buffered
_KEEP = const(320)  # WINDOW_SIZE - WINDOW_STEP: samples kept for the next window
_FB_START = const(5)  # FB_START_INDEX
_NR_EVEN = const(409)  # NR_EVEN_SMOOTHING
_NR_ODD = const(983)  # NR_ODD_SMOOTHING
_NR_ONE = const(16384)  # 1 << NR_BITS
_NR_MIN = const(819)  # NR_MIN_SIGNAL_REMAINING
_LOG_COEFF = const(45426)
# ESPHome's int8 input: (y * 256 + 333) // 666 == (y * _I8_MUL + _I8_ROUND) >> _I8_SHIFT for
# every feature y below _I8_TOP (tests/firmware/test_frontend.py checks each), no divide
_I8_MUL = const(25191)
_I8_ROUND = const(1 << 15)
_I8_SHIFT = const(16)
_I8_TOP = const(665)
# kiss C_FIXDIV(x, 4) = (x * 8191 + 2**14) >> 15; with x = u - 0x8000 (u the biased
# value) that is (u * 8191 - _FD4) >> 15, and likewise for C_FIXDIV(x, 2).
_FD4 = const(32768 * 8191 - 16384)
_FD2 = const(32768 * 16383 - 16384)
_FFT_POINTS = const(256)  # complex points of the 512-point real FFT
_COMPLEX_BYTES = const(4)  # a complex value: two int16


@micropython.viper
def _copy_in(d: ptr16, s: ptr16, start: int, n: int) -> int:
    """Append up to n int16 samples from s[start:] to the window buffer d; returns how
    many it took (it stops when the window is full). d and s, the first two locals (in
    registers), walk the buffers eight samples at a time."""
    used = d[0]
    k = WINDOW_SIZE - used
    if n < k:
        k = n
    d[0] = used + k
    d = ptr16(uint(d) + 2 * (_HDR + used))
    s = ptr16(uint(s) + 2 * start)
    end = uint(s) + 2 * k
    end8 = uint(s) + 2 * (k & ~7)
    while uint(s) < end8:
        d[0] = s[0]
        d[1] = s[1]
        d[2] = s[2]
        d[3] = s[3]
        d[4] = s[4]
        d[5] = s[5]
        d[6] = s[6]
        d[7] = s[7]
        d = ptr16(uint(d) + 16)
        s = ptr16(uint(s) + 16)
    while uint(s) < end:
        d[0] = s[0]
        d = ptr16(uint(d) + 2)
        s = ptr16(uint(s) + 2)
    return k


@micropython.viper
def _window(p: ptr16, w: ptr16, xin, pcm) -> int:
    """window.c on the full buffer p (pcm) with the table w (WINDOW) into xin (int16);
    keeps the last 320 samples for the next window. Returns the FFT input shift,
    15 - msb(max |windowed|). p and w, the first two locals (which mpy-cross keeps in
    registers), walk the samples and the window two at a time."""
    x = ptr16(xin)
    # the bit length of the largest |v| is that of the OR of all |v|. -(-32768) is
    # -32768 in int16, so the C never counts a -32768: its |v|, 32768, is the only one
    # with bit 15 set and has no lower bits, so masking the OR with 0x7FFF drops it.
    bits_or = 0
    p = ptr16(uint(p) + 2 * _HDR)
    end = uint(w) + 2 * WINDOW_SIZE
    while uint(w) < end:
        v = (((p[0] ^ 0x8000) - 0x8000) * w[0]) >> 12
        x[0] = v
        sign = v >> 15  # 0 or -1: |v| <= 32768
        bits_or |= (v ^ sign) - sign
        v = (((p[1] ^ 0x8000) - 0x8000) * w[1]) >> 12
        x[1] = v
        sign = v >> 15
        bits_or |= (v ^ sign) - sign
        p = ptr16(uint(p) + 4)
        w = ptr16(uint(w) + 4)
        x = ptr16(uint(x) + 4)
    peak = bits_or & 0x7FFF
    # keep the last 320 samples for the next window, 8 at a time
    p = ptr16(pcm)
    p = ptr16(uint(p) + 2 * _HDR)
    w = ptr16(uint(p) + 2 * WINDOW_STEP)
    end = uint(p) + 2 * _KEEP
    while uint(p) < end:
        p[0] = w[0]
        p[1] = w[1]
        p[2] = w[2]
        p[3] = w[3]
        p[4] = w[4]
        p[5] = w[5]
        p[6] = w[6]
        p[7] = w[7]
        p = ptr16(uint(p) + 16)
        w = ptr16(uint(w) + 16)
    p = ptr16(pcm)
    p[0] = _KEEP
    bits = 0
    while peak:
        peak >>= 1
        bits += 1
    return 15 - bits


@micropython.viper
def _fft_first(x: ptr16, f: ptr16, shift: int):
    """fft.cc input shift (wraps to int16) and kissfft's first radix-4 stage (m = 1,
    twiddle 1 = (32767, 0), an exact identity on these values), reading the 256 complex
    inputs (even + j*odd) of x in FFT_PERM order; writes f biased."""
    # f, the second local (in a register), walks the output four complex values at a
    # time; perm walks the permutation
    perm = ptr8(FFT_PERM)
    end = uint(perm) + _FFT_POINTS
    while uint(perm) < end:
        s = perm[0] << 1
        ar = ((((x[s] << shift) & 0xFFFF) ^ 0x8000) * 8191 - _FD4) >> 15
        ai = ((((x[s + 1] << shift) & 0xFFFF) ^ 0x8000) * 8191 - _FD4) >> 15
        s = perm[1] << 1
        br = ((((x[s] << shift) & 0xFFFF) ^ 0x8000) * 8191 - _FD4) >> 15
        bi = ((((x[s + 1] << shift) & 0xFFFF) ^ 0x8000) * 8191 - _FD4) >> 15
        s = perm[2] << 1
        cr = ((((x[s] << shift) & 0xFFFF) ^ 0x8000) * 8191 - _FD4) >> 15
        ci = ((((x[s + 1] << shift) & 0xFFFF) ^ 0x8000) * 8191 - _FD4) >> 15
        s = perm[3] << 1
        dr = ((((x[s] << shift) & 0xFFFF) ^ 0x8000) * 8191 - _FD4) >> 15
        di = ((((x[s + 1] << shift) & 0xFFFF) ^ 0x8000) * 8191 - _FD4) >> 15
        f0r = ar + cr + 0x8000
        f0i = ai + ci + 0x8000
        s5r = ar - cr + 0x8000
        s5i = ai - ci + 0x8000
        s3r = br + dr
        s3i = bi + di
        s4r = br - dr
        s4i = bi - di
        f[0] = f0r + s3r
        f[1] = f0i + s3i
        f[2] = s5r + s4i
        f[3] = s5i - s4r
        f[4] = f0r - s3r
        f[5] = f0i - s3i
        f[6] = s5r - s4i
        f[7] = s5i + s4r
        f = ptr16(uint(f) + 4 * _COMPLEX_BYTES)
        perm = ptr8(uint(perm) + 4)


@micropython.viper
def _fft_stage(f: ptr16, t: ptr16, m: int, fstride: int):
    """kissfft kf_bfly4 over all groups of 4m complex values of f (biased), in place; t is
    FFT_TWIDDLES. The pointers are the first two locals, which mpy-cross keeps in
    registers: f walks the butterflies' first values, the other three sit at fixed offsets
    m, 2m and 3m complex values on. The first butterfly of each group has twiddles
    1 = (32767, 0), an exact identity on these values (|x| <= 8192 after the divide by 4):
    no multiplies there."""
    start = int(uint(f))
    b0 = m << 1  # int16 offsets of Fout[k + m], Fout[k + 2m], Fout[k + 3m]
    b1 = b0 + 1
    c0 = b0 << 1
    c1 = c0 + 1
    d0 = c0 + b0
    d1 = d0 + 1
    step = fstride << 1
    step2 = step << 1
    step3 = step + step2
    group = b0 << 3  # bytes per group of 4m complex values (4 of 4m int16 slots, m = b0 / 2)
    end_all = start + _COMPLEX_BYTES * _FFT_POINTS
    g = start
    while g < end_all:
        f = ptr16(g)
        ar = (f[0] * 8191 - _FD4) >> 15
        ai = (f[1] * 8191 - _FD4) >> 15
        s0r = (f[b0] * 8191 - _FD4) >> 15
        s0i = (f[b1] * 8191 - _FD4) >> 15
        s1r = (f[c0] * 8191 - _FD4) >> 15
        s1i = (f[c1] * 8191 - _FD4) >> 15
        s2r = (f[d0] * 8191 - _FD4) >> 15
        s2i = (f[d1] * 8191 - _FD4) >> 15
        f0r = ar + s1r + 0x8000
        f0i = ai + s1i + 0x8000
        s5r = ar - s1r + 0x8000
        s5i = ai - s1i + 0x8000
        s3r = s0r + s2r
        s3i = s0i + s2i
        s4r = s0r - s2r
        s4i = s0i - s2i
        f[0] = f0r + s3r
        f[1] = f0i + s3i
        f[b0] = s5r + s4i
        f[b1] = s5i - s4r
        f[c0] = f0r - s3r
        f[c1] = f0i - s3i
        f[d0] = s5r - s4i
        f[d1] = s5i + s4r
        f = ptr16(uint(f) + _COMPLEX_BYTES)
        end = g + (b0 << 1)  # m complex values on
        i1 = step
        i2 = step2
        i3 = step3
        while int(uint(f)) < end:
            ar = (f[0] * 8191 - _FD4) >> 15
            ai = (f[1] * 8191 - _FD4) >> 15
            br = (f[b0] * 8191 - _FD4) >> 15
            bi = (f[b1] * 8191 - _FD4) >> 15
            cr = (f[c0] * 8191 - _FD4) >> 15
            ci = (f[c1] * 8191 - _FD4) >> 15
            dr = (f[d0] * 8191 - _FD4) >> 15
            di = (f[d1] * 8191 - _FD4) >> 15
            tr = (t[i1] ^ 0x8000) - 0x8000
            ti = (t[i1 + 1] ^ 0x8000) - 0x8000
            s0r = (br * tr - bi * ti + 16384) >> 15
            s0i = (br * ti + bi * tr + 16384) >> 15
            tr = (t[i2] ^ 0x8000) - 0x8000
            ti = (t[i2 + 1] ^ 0x8000) - 0x8000
            s1r = (cr * tr - ci * ti + 16384) >> 15
            s1i = (cr * ti + ci * tr + 16384) >> 15
            tr = (t[i3] ^ 0x8000) - 0x8000
            ti = (t[i3 + 1] ^ 0x8000) - 0x8000
            s2r = (dr * tr - di * ti + 16384) >> 15
            s2i = (dr * ti + di * tr + 16384) >> 15
            # int16 sums wrap in C; chains of + and - wrap the same when truncated once
            f0r = ar + s1r + 0x8000
            f0i = ai + s1i + 0x8000
            s5r = ar - s1r + 0x8000
            s5i = ai - s1i + 0x8000
            s3r = s0r + s2r
            s3i = s0i + s2i
            s4r = s0r - s2r
            s4i = s0i - s2i
            f[0] = f0r + s3r
            f[1] = f0i + s3i
            f[b0] = s5r + s4i
            f[b1] = s5i - s4r
            f[c0] = f0r - s3r
            f[c1] = f0i - s3i
            f[d0] = s5r - s4i
            f[d1] = s5i + s4r
            i1 += step
            i2 += step2
            i3 += step3
            f = ptr16(uint(f) + _COMPLEX_BYTES)
        g += group


@micropython.viper
def _fft_split(f: ptr16, st: ptr16):
    """kiss_fftr: the 256-point complex FFT into real-FFT bins 0..256, in place (biased;
    f holds 257 complex values); st is FFT_SUPER_TWIDDLES."""
    dr = (f[0] * 16383 - _FD2) >> 15
    di = (f[1] * 16383 - _FD2) >> 15
    f[0] = dr + di + 0x8000
    f[1] = 0x8000
    f[512] = dr - di + 0x8000
    f[513] = 0x8000
    # bins k = 1..128: f and st, the first two locals (in registers), walk bin k and its
    # super twiddle; bin 256 - k is `back` int16 slots on from bin k (512 - 4k)
    f = ptr16(uint(f) + _COMPLEX_BYTES)
    back = 2 * _FFT_POINTS - 4
    back1 = 2 * _FFT_POINTS - 3
    while back >= 0:
        pr = (f[0] * 16383 - _FD2) >> 15
        pi = (f[1] * 16383 - _FD2) >> 15
        nr = (f[back] * 16383 - _FD2) >> 15
        ni = (((0 - f[back1]) & 0xFFFF) * 16383 - _FD2) >> 15  # -imag wraps in int16
        f1r = pr + nr
        f1i = pi + ni
        f2r = pr - nr
        f2i = pi - ni
        tr = (st[0] ^ 0x8000) - 0x8000
        ti = (st[1] ^ 0x8000) - 0x8000
        twr = ((((f2r * tr - f2i * ti + 16384) >> 15) + 0x8000) & 0xFFFF) - 0x8000
        twi = ((((f2r * ti + f2i * tr + 16384) >> 15) + 0x8000) & 0xFFFF) - 0x8000
        f[0] = ((f1r + twr) >> 1) + 0x8000
        f[1] = ((f1i + twi) >> 1) + 0x8000
        # at k = 128 (back 0) this overwrites bin 128, as the C loop does
        f[back] = ((f1r - twr) >> 1) + 0x8000
        f[back1] = ((twi - f1i) >> 1) + 0x8000
        f = ptr16(uint(f) + _COMPLEX_BYTES)
        st = ptr16(uint(st) + _COMPLEX_BYTES)
        back -= 4
        back1 -= 4


@micropython.viper
def _filterbank(f: ptr16, wt: ptr16, acc):
    """filterbank.c: energies re^2 + im^2 of f (int32, wrapping at 2^31 and sign-extended
    as the C does) into the 41 mel bands' uint64 sums; wt is FB_WEIGHTS. acc gets, per
    channel, the signed sum A (the C's uint64 is A mod 2^64) as 3 int16 slots:
    A & 0xFFFF, then A >> 16 (int32) in two halves."""
    out = ptr16(acc)
    widths = ptr8(FB_BAND_WIDTHS)
    # A bin's unweight (the share it gives the next band) is 4096 - its weight
    # (FB_UNWEIGHTS, checked in tests/host/test_frontend_tables.py), so a band's
    # unweighted sum is 4096 * (sum of its energies) - its weighted sum: per bin, one
    # weight and two sums instead of two weights. Sums are hi * 2^16 + lo: lo takes
    # weight * (energy & 0xFFFF) and stays below 2^31 for one band (band weight sums
    # < 2^15), hi takes weight * (energy >> 16).
    # f and wt, the first two locals (in registers), walk the bins and their weights
    cl = 0  # the previous band's unweighted sum, carried into this band
    ch = 0
    f = ptr16(uint(f) + _COMPLEX_BYTES * _FB_START)
    band = 0
    while band < 41:
        end = uint(wt) + 2 * widths[band]
        pl = 0
        ph = 0
        sl = 0
        sh = 0
        while uint(wt) < end:
            # with u = x + 0x8000 the biased value, x^2 - 2^30 = u * (u - 2^16), so
            # e = energy - 2^31 is in [-2^31, 0]: the C's wrapped energy has the same
            # low half and its high half is that of e plus 2^15, taken as int16
            u = f[0]
            e = u * (u - 0x10000)
            u = f[1]
            e += u * (u - 0x10000)
            el = e & 0xFFFF
            eh = ((e >> 16) & 0xFFFF) - 0x8000
            w = wt[0]
            pl += w * el
            ph += w * eh
            sl += el
            sh += eh
            f = ptr16(uint(f) + _COMPLEX_BYTES)
            wt = ptr16(uint(wt) + 2)
        if band > 0:
            wl = cl + pl
            wh = ch + ph + (wl >> 16)
            c = 3 * band - 3
            out[c] = wl
            out[c + 1] = wh
            out[c + 2] = wh >> 16
        # unweighted: 4096 * (sh * 2^16 + sl) - (ph * 2^16 + pl), with sl split so that
        # every term stays inside int32 (bands are at most 15 bins wide)
        ul = ((sl & 0xFFFF) << 12) - pl
        cl = ul & 0xFFFF
        ch = ((sh + (sl >> 16)) << 12) - ph + (ul >> 16)
        band += 1


@micropython.viper
def _sqrt(a: ptr16, out: ptr16, shift: int):
    """filterbank.c FilterbankSqrt: Sqrt64 (bitwise, rounded, saturating) of each uint64
    sum in a (three halves), >> shift, into out as uint32 halves (lo, hi); a and out, the
    first two locals (in registers), walk a channel at a time."""
    ch = 0
    while ch < NUM_CHANNELS:
        lo = a[0]
        hi = (((a[2] ^ 0x8000) - 0x8000) << 16) | a[1]
        rl = 0
        rh = 0
        if hi >= 0:
            if hi > 0:
                # r = isqrt(hi) by Newton's iteration from above (hi < 2^31)
                v = hi
                b = 1
                if v >= 0x10000:
                    v >>= 16
                    b = 17
                if v >= 0x100:
                    v >>= 8
                    b += 8
                if v >= 0x10:
                    v >>= 4
                    b += 4
                if v >= 4:
                    v >>= 2
                    b += 2
                if v >= 2:
                    b += 1
                # the first step from 2^k >= sqrt(hi) divides by a shift
                k = (b + 1) >> 1
                r = ((1 << k) + (hi >> k)) >> 1
                while True:
                    t = (r + hi // r) >> 1
                    if t >= r:
                        break
                    r = t
                rem = hi - r * r
                # then the 16 bits of lo, 8 at a time: with rem <= 2r the next 4 root
                # bits d are the largest d with d * (32r + d) <= (rem << 8) | byte
                rem = (rem << 8) | (lo >> 8)
                d = rem // (r << 5)
                if d > 15:
                    d = 15
                t = (r << 5) + d
                while d * t > rem:
                    d -= 1
                    t -= 1
                rem -= d * t
                r = (r << 4) + d
                rem = (rem << 8) | (lo & 0xFF)
                d = rem // (r << 5)
                if d > 15:
                    d = 15
                t = (r << 5) + d
                while d * t > rem:
                    d -= 1
                    t -= 1
                rem -= d * t
                r = (r << 4) + d
            else:
                # digit-by-digit, two bits at a time (rem <= 2r throughout)
                r = 0
                rem = 0
                pos = 14
                while pos > 0 and (lo >> pos) == 0:
                    pos -= 2
                while pos >= 0:
                    rem = (rem << 2) | ((lo >> pos) & 3)
                    t = (r << 2) | 1
                    r <<= 1
                    if rem >= t:
                        rem -= t
                        r |= 1
                    pos -= 2
            # rounding; the 32-bit path (hi < 2^16) saturates at 0xFFFF
            if rem > r and (hi >= 0x10000 or r != 0xFFFF):
                r += 1
            r >>= shift
            rl = r & 0xFFFF
            rh = r >> 16
        else:
            # the sum wrapped (an energy of 2^31): num = 2^64 - d, d = -A <= 2^47.
            # isqrt(num) = 2^32 - t for the least t with t * (2^33 - t) >= d.
            if lo:
                dh = (0 - hi) - 1
                dl = 0x10000 - lo
            else:
                dh = 0 - hi
                dl = 0
            if dl:
                t = (dh >> 17) + 1  # ceil(d / 2^33)
            else:
                t = ((dh - 1) >> 17) + 1
            # rem = t * (2^33 - t) - d as (rh * 2^16 + rl)
            sq = t * t
            rl = 0 - dl - (sq & 0xFFFF)
            rh = (t << 17) - dh - (sq >> 16) + (rl >> 16)
            rl &= 0xFFFF
            if rh < 0:  # one more: f(t + 1) = f(t) + 2^33 - 2t - 1
                rl -= (t << 1) + 1
                rh += 0x20000 + (rl >> 16)
                rl &= 0xFFFF
                t += 1
            # round up when rem > 2^32 - t, unless the root is already 0xFFFFFFFF
            rl += t
            rh += rl >> 16
            rl &= 0xFFFF
            if t != 1 and (rh > 0x10000 or (rh == 0x10000 and rl > 0)):
                t -= 1
            # result 2^32 - t = 0xFFFFFFFF - (t - 1), then >> shift
            rl = 0xFFFF - ((t - 1) & 0xFFFF)
            rh = 0xFFFF
            if shift:
                rl = (rl >> shift) | ((rh << (16 - shift)) & 0xFFFF)
                rh >>= shift
        out[0] = rl
        out[1] = rh
        a = ptr16(uint(a) + 6)
        out = ptr16(uint(out) + 4)
        ch += 1


@micropython.viper
def _finish(s: ptr16, e: ptr16, frame, frame_int8):
    """noise_reduction.c, pcan_gain_control.c and log_scale.c per channel (uint32 values
    in 16-bit halves), then ESPHome's int8 conversion. s: the signal; e: the noise estimate
    (state); both walked a channel (two halves) at a time as the first two locals, which
    mpy-cross keeps in registers."""
    lut = ptr16(PCAN_GAIN_LUT)
    log_lut = ptr16(LOG_LUT)
    y16 = ptr16(frame)
    y8 = ptr8(frame_int8)
    ch = 0
    while ch < NUM_CHANNELS:
        sl = s[0]
        sh = s[1]
        # --- noise reduction: scaled = signal << 10 (uint32, wraps)
        xl = (sl << 10) & 0xFFFF
        xh = ((sh << 10) | (sl >> 6)) & 0xFFFF
        smooth = _NR_EVEN
        if ch & 1:
            smooth = _NR_ODD
        keep = _NR_ONE - smooth
        # estimate = (scaled * smooth + estimate * keep) >> 14, in 16-bit limbs
        p = xl * smooth + e[0] * keep
        q = xh * smooth + e[1] * keep + (p >> 16)
        nl = ((q & 0x3FFF) << 2) | ((p & 0xFFFF) >> 14)
        nh = q >> 14
        e[0] = nl
        e[1] = nh
        ml = nl
        mh = nh
        if nh > xh or (nh == xh and nl > xl):
            ml = xl
            mh = xh
        dl = xl - ml
        dh = xh - mh
        if dl < 0:
            dl += 0x10000
            dh -= 1
        out = (dh << 6) | (dl >> 10)  # (scaled - estimate) >> 10
        floor = ((sh * _NR_MIN) << 2) + ((sl * _NR_MIN) >> 14)  # (signal * 819) >> 14
        if floor > out:
            out = floor
        # --- PCAN: gain = WideDynamicFunction(estimate), int16 (all >= 0 here)
        if nh == 0 and nl <= 2:
            gain = (lut[nl] ^ 0x8000) - 0x8000
        else:
            if nh:
                v = nh
                interval = 16
            else:
                v = nl
                interval = 0
            if v >= 0x100:
                v >>= 8
                interval += 8
            if v >= 0x10:
                v >>= 4
                interval += 4
            if v >= 4:
                v >>= 2
                interval += 2
            if v >= 2:
                interval += 2
            else:
                interval += 1
            if nh == 0:
                if interval < 11:
                    frac = (nl << (11 - interval)) & 0x3FF
                else:
                    frac = (nl >> (interval - 11)) & 0x3FF
            else:
                k = interval - 11  # >= 6
                if k >= 16:
                    frac = (nh >> (k - 16)) & 0x3FF
                else:
                    frac = ((nh << (16 - k)) | (nl >> k)) & 0x3FF
            b = (interval << 2) - 6
            r = (((lut[b + 2] ^ 0x8000) - 0x8000) * frac) >> 5
            r += ((lut[b + 1] ^ 0x8000) - 0x8000) << 5
            r *= frac
            r = ((r + 16384) >> 15) + ((lut[b] ^ 0x8000) - 0x8000)
            gain = ((r + 0x8000) & 0xFFFF) - 0x8000
        # snr = ((uint64)signal * gain) >> 6, as uint32; out < 2^28, gain < 2^15
        plo = (out & 0x3FFF) * gain
        phi = (out >> 14) * gain
        q = (((phi & 0xFFFFFF) << 2) + (plo >> 12)) & 0x3FFFFFF  # snr >> 6
        if q < 128:  # PcanShrink: snr < 2^13
            snr = (q << 6) | ((plo >> 6) & 63)
            out = (snr * snr) >> 20
        else:
            out = q - 64
        # --- log scale: value = out << 3; 0 when value <= 1
        y = 0
        if out:
            v = out << 3
            integer = 0
            x = v
            if x >= 0x10000:
                x >>= 16
                integer = 16
            if x >= 0x100:
                x >>= 8
                integer += 8
            if x >= 0x10:
                x >>= 4
                integer += 4
            if x >= 4:
                x >>= 2
                integer += 2
            if x >= 2:
                integer += 1
            frac = v - (1 << integer)
            if integer < 16:
                frac <<= 16 - integer
            else:
                frac >>= integer - 16
            seg = frac >> 9
            c0 = log_lut[seg]
            rel = ((log_lut[seg + 1] - c0) * (frac - (seg << 9))) >> 16
            log2 = (integer << 16) + frac + c0 + rel
            # loge = (45426 * log2 + 2^15) >> 16, log2 split at bit 15
            hi = _LOG_COEFF * (log2 >> 15)
            lo = _LOG_COEFF * (log2 & 0x7FFF) + 32768 + ((hi & 1) << 15)
            loge = (hi >> 1) + (lo >> 16)
            y = ((loge << 6) + 32768) >> 16
            if y > 0xFFFF:
                y = 0xFFFF
        y16[ch] = y
        # --- ESPHome: clamp((v * 256 + 333) // 666 - 128, -128, 127)
        i8 = 127
        if y < _I8_TOP:
            i8 = ((y * _I8_MUL + _I8_ROUND) >> _I8_SHIFT) - 128
        y8[ch] = i8
        s = ptr16(uint(s) + 4)
        e = ptr16(uint(e) + 4)
        ch += 1


class Frontend:
    """Streaming frontend: feed int16 samples, get a frame of 40 features every 160.

    feed(buf, start, n) takes samples buf[start:start+n] (buf: bytes, bytearray or a
    byte memoryview of int16 little-endian; start and n count samples, n defaults to
    the rest of buf) and returns how many it consumed: it stops right after a frame
    completes, so call it again with the rest. When `ready` is True after a call, `frame`
    (array of 40 uint16 features, pymicro-features' values) and `frame_int8` (array of
    40 int8, ESPHome's model input) hold the new frame until the next frame completes.
    The first frame comes after 480 samples, then one every 160, as in the C library.

        at = 0
        while at < n:
            at += fe.feed(buf, at, n - at)
            if fe.ready:
                use(fe.frame_int8)

    Allocates nothing after __init__.
    """

    def __init__(self):
        self._pcm = bytearray(2 * (_HDR + WINDOW_SIZE))  # slot 0: samples buffered
        self._xin = bytearray(1024)  # windowed samples, zero-padded to 512
        self._fft = bytearray(4 * 257)  # 257 complex int16 (biased)
        self._acc = bytearray(6 * NUM_CHANNELS)  # band sums
        self._sig = bytearray(4 * NUM_CHANNELS)  # uint32 halves
        self._est = bytearray(4 * NUM_CHANNELS)  # noise estimate (uint32 halves)
        self.frame = array.array("H", bytes(2 * NUM_CHANNELS))
        self.frame_int8 = array.array("b", bytes(NUM_CHANNELS))
        self.ready = False
        self.frames = 0  # frames produced since reset

    def reset(self):
        """Back to the state of a new frontend (FrontendReset)."""
        for b in (self._pcm, self._xin, self._est):
            for i in range(len(b)):
                b[i] = 0
        self.ready = False
        self.frames = 0

    def feed(self, buf, start=0, n=-1):
        if n < 0:
            n = (len(buf) >> 1) - start
        if start < 0 or n < 0 or 2 * (start + n) > len(buf):
            raise ValueError("samples out of range")
        k = _copy_in(self._pcm, buf, start, n)
        self.ready = False
        if self._pcm[0] | (self._pcm[1] << 8) == WINDOW_SIZE:
            self._process()
        return k

    def _process(self):
        f = self._fft
        shift = _window(self._pcm, WINDOW, self._xin, self._pcm)
        _fft_first(self._xin, f, shift)
        _fft_stage(f, FFT_TWIDDLES, 4, 16)
        _fft_stage(f, FFT_TWIDDLES, 16, 4)
        _fft_stage(f, FFT_TWIDDLES, 64, 1)
        _fft_split(f, FFT_SUPER_TWIDDLES)
        _filterbank(f, FB_WEIGHTS, self._acc)
        _sqrt(self._acc, self._sig, shift)
        _finish(self._sig, self._est, self.frame, self.frame_int8)
        self.ready = True
        self.frames = (self.frames + 1) & 0x3FFFFFFF
