"""firmware/frontend_tables.py: up to date, and right, checked against the reference.

The reference is pymicro-features 2.0.2 (the TFLite Micro micro frontend as ESPHome's
micro_wake_word configures it). Its tables are not observable from Python, only its
features, so `IntegerFrontend` below runs the whole integer pipeline in numpy on the
tables of the generated firmware module and must reproduce pymicro-features' features
exactly, frame by frame. It is the blueprint for the viper implementation: every
intermediate is integer, and each place a value leaves 32 bits (or wraps in C) is marked
"> 32 bits" or "wraps". docs/frontend.md lists the stages and their sources.
"""

from __future__ import annotations

import ast
import ctypes
import math
from pathlib import Path

import numpy as np
import pytest
from wakeward import frontend_tables as ft

from tests.conftest import FIRMWARE

MODULE = FIRMWARE / "frontend_tables.py"
M32 = 0xFFFFFFFF

# ------------------------------------------------------------ the module's data ----
_LAYOUT = {
    "WINDOW": "<u2",
    "FFT_PERM": "u1",
    "FFT_TWIDDLES": "<i2",
    "FFT_SUPER_TWIDDLES": "<i2",
    "FB_BAND_WIDTHS": "u1",
    "FB_WEIGHTS": "<u2",
    "FB_UNWEIGHTS": "<u2",
    "PCAN_GAIN_LUT": "<i2",
    "LOG_LUT": "<u2",
}


def load_module(path: Path = MODULE) -> dict[str, object]:
    """The module's names, read with ast (CPython has no `micropython.const`)."""
    names: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign):
            (target,) = node.targets
            assert isinstance(target, ast.Name)
            value = node.value
            if isinstance(value, ast.Call):  # const(N)
                assert isinstance(value.func, ast.Name) and value.func.id == "const"
                value = value.args[0]
            names[target.id] = ast.literal_eval(value)
    return names


@pytest.fixture(scope="module")
def mod() -> dict[str, object]:
    return load_module()


@pytest.fixture(scope="module")
def tables(mod) -> dict[str, np.ndarray]:
    out = {}
    for name, fmt in _LAYOUT.items():
        data = mod[name]
        assert isinstance(data, bytes)
        out[name] = np.frombuffer(data, dtype=fmt).astype(np.int64)
    return out


# -------------------------------------------------------------- up to date ----
def test_firmware_module_is_up_to_date(tmp_path):
    out = tmp_path / "frontend_tables.py"
    assert ft.main(["-o", str(out)]) == 0
    assert out.read_text() == MODULE.read_text(), (
        "firmware/frontend_tables.py is stale: run python -m wakeward.frontend_tables"
    )
    assert ft.main(["--check"]) == 0
    out.write_text(out.read_text() + "# edited\n")
    assert ft.main(["--check", "-o", str(out)]) == 1


def test_module_has_only_ints_and_bytes(mod):
    assert set(_LAYOUT) <= set(mod)
    for name, value in mod.items():
        assert type(value) in (int, bytes), name
    assert mod["FB_END_INDEX"] - mod["FB_START_INDEX"] == len(mod["FB_WEIGHTS"]) // 2


def test_module_reads_the_same_in_micropython(mp, mod):
    """The bytes literals decode to the same bytes on the unix port, under the heap."""
    (mp.cwd / "frontend_tables.py").write_text(MODULE.read_text())
    names = sorted(_LAYOUT)
    out = mp.output(
        "import frontend_tables as t\n"
        f"for n in {names!r}:\n"
        "    open(n + '.bin', 'wb').write(getattr(t, n))\n"
        "from array import array\n"
        "print(t.NUM_CHANNELS, array('h', t.FFT_TWIDDLES)[3], array('H', t.WINDOW)[240])\n"
    )
    for n in names:
        assert (mp.cwd / f"{n}.bin").read_bytes() == mod[n], n
    twiddles = np.frombuffer(mod["FFT_TWIDDLES"], "<i2")
    window = np.frombuffer(mod["WINDOW"], "<u2")
    assert out.split() == ["40", str(twiddles[3]), str(window[240])]


# -------------------------------------------------------- stage properties ----
def test_scalar_parameters(mod):
    expect = {
        "SAMPLE_RATE": 16000,
        "WINDOW_SIZE": 480,
        "WINDOW_STEP": 160,
        "FFT_SIZE": 512,
        "NUM_CHANNELS": 40,
        "FB_START_INDEX": 5,  # 1.5 + 125 Hz / 31.25 Hz per bin, truncated
        "NR_EVEN_SMOOTHING": 409,
        "NR_ODD_SMOOTHING": 983,
        "NR_MIN_SIGNAL_REMAINING": 819,
        "PCAN_SNR_SHIFT": 6,  # 21 - 3 - 12
        "LOG_CORRECTION_BITS": 3,  # msb(512) - 1 - 12 / 2
        "LOG_SCALE_SHIFT": 6,
        "LOG_COEFF": round(math.log(2) * 65536),
    }
    assert {k: mod[k] for k in expect} == expect


def test_window_is_a_rounded_hann(tables):
    w = tables["WINDOW"]
    n = np.arange(480)
    hann = (0.5 - 0.5 * np.cos(2 * np.pi * (n + 0.5) / 480)) * 4096
    assert np.all(np.abs(w - hann) <= 0.5 + 1e-3)
    assert w.max() == 4096 and w.min() == 0
    # float32 rounding breaks the symmetry once: coefficient 17 is 54, its mirror 462
    # is 53 (in double both would be 53), so an implementation must not fold the window
    asym = np.flatnonzero(w != w[::-1])
    assert asym.tolist() == [17, 462] and w[17] == 54 and w[462] == 53


def test_twiddles_are_rounded_unit_phasors(tables):
    tw = tables["FFT_TWIDDLES"].reshape(-1, 2)
    k = np.arange(256)
    assert np.all(np.abs(tw[:, 0] - 32767 * np.cos(-2 * np.pi * k / 256)) <= 0.5 + 1e-9)
    assert np.all(np.abs(tw[:, 1] - 32767 * np.sin(-2 * np.pi * k / 256)) <= 0.5 + 1e-9)
    st = tables["FFT_SUPER_TWIDDLES"].reshape(-1, 2)
    ph = -np.pi * ((np.arange(128) + 1) / 256 + 0.5)
    assert np.all(np.abs(st[:, 0] - 32767 * np.cos(ph)) <= 0.5 + 1e-9)
    assert np.all(np.abs(st[:, 1] - 32767 * np.sin(ph)) <= 0.5 + 1e-9)


def test_fft_perm_is_base4_digit_reversal(tables):
    def rev4(i: int) -> int:
        return sum(((i >> (2 * d)) & 3) << (2 * (3 - d)) for d in range(4))

    assert list(tables["FFT_PERM"]) == [rev4(i) for i in range(256)]
    assert ft.kiss_factors(256) == [4, 64, 4, 16, 4, 4, 4, 1]


def test_filterbank_bands_tile_and_weights_are_complementary(mod, tables):
    widths = tables["FB_BAND_WIDTHS"]
    assert len(widths) == 41 and widths.min() >= 1
    assert widths.sum() == mod["FB_END_INDEX"] - mod["FB_START_INDEX"] == 236
    w, u = tables["FB_WEIGHTS"], tables["FB_UNWEIGHTS"]
    assert np.all((w >= 0) & (w <= 4096) & (u >= 0) & (u <= 4096))
    # weight + unweight = 4096 up to the two roundings
    assert np.all(np.abs(w + u - 4096) <= 1)
    # and here exactly, with no band wider than 15 bins: the firmware's _filterbank takes
    # the unweighted sum as 4096 * (sum of energies) - the weighted sum, inside int32
    assert np.all(w + u == 4096)
    assert widths.max() <= 15
    # within a band the weight falls as frequency rises
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]])
    for s, n in zip(starts, widths, strict=True):
        assert np.all(np.diff(w[s : s + n]) < 0)


def test_filterbank_layout_matches_the_padded_library_layout():
    """The compact per-bin tables carry exactly the nonzero padded weights of the C."""
    t = ft.build_tables()
    assert [w for w in t.fb_padded_weights if w] == [w for w in t.fb_weights if w]
    assert [u for u in t.fb_padded_unweights if u] == [u for u in t.fb_unweights if u]
    # no zero-width channel, so no shared block of zero weights
    assert min(t.fb_band_widths) > 0


def test_log_lut_is_the_library_table(tables):
    lut = tables["LOG_LUT"]
    # spot values of kLogLut in tflite-micro log_lut.c
    assert list(lut[:4]) == [0, 224, 442, 654]
    assert list(lut[-4:]) == [282, 142, 0, 0]
    assert lut[64] == 5568 and lut.max() == 5641
    assert len(lut) == 130


def test_pcan_lut_interpolates_the_gain_curve(tables):
    lut = tables["PCAN_GAIN_LUT"]
    assert len(lut) == 125
    # never-written slots (4 * interval - 3, interval 2..31) are 0
    assert all(lut[4 * i - 3] == 0 for i in range(2, 32))
    # the quadratic through (x0, y0), (x1, y1), (x2, y2) is exact at its knots
    for interval in range(2, 33):
        x0 = 1 << (interval - 1)
        x1 = x0 + (x0 >> 1)
        assert wide_dynamic_function(np.array([x0, x1]), lut).tolist() == [
            ft.pcan_gain(7, x0),
            ft.pcan_gain(7, x1),
        ]


# -------------------------------------------------------- integer pipeline ----
def wrap16(x: np.ndarray) -> np.ndarray:
    """C conversion to int16_t (wraps)."""
    return ((x + 0x8000) & 0xFFFF) - 0x8000


def wrap32(x: np.ndarray) -> np.ndarray:
    """C int32_t arithmetic (wraps)."""
    return ((x + 0x80000000) & M32) - 0x80000000


def msb(x: np.ndarray) -> np.ndarray:
    """MostSignificantBit32 (0 for 0); exact through float64 for x < 2**53."""
    return np.frexp(np.asarray(x, dtype=np.float64))[1].astype(np.int64)


def sround(x: np.ndarray) -> np.ndarray:
    """kiss sround: int32 (x + 2**14) >> 15, into int16."""
    return wrap16(wrap32(x + (1 << 14)) >> 15)


def fixdiv(x: np.ndarray, k: int) -> np.ndarray:
    """kiss C_FIXDIV: x * (32767 // k), rounded by sround."""
    return sround(x * (32767 // k))


def c_mul(ar, ai, br, bi):
    """kiss C_MUL: the int32 sum of two int16 products can wrap."""
    return sround(wrap32(ar * br - ai * bi)), sround(wrap32(ar * bi + ai * br))


def wide_dynamic_function(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """pcan_gain_control.c WideDynamicFunction: gain (int16) for noise estimate x."""
    x = np.asarray(x, dtype=np.int64)
    interval = msb(x)
    base = np.maximum(4 * interval - 6, 0)
    left = x << np.clip(11 - interval, 0, None)
    right = x >> np.clip(interval - 11, 0, None)
    frac = np.where(interval < 11, left, right) & 0x3FF
    result = (lut[np.minimum(base + 2, 124)] * frac) >> 5
    result = result + lut[np.minimum(base + 1, 124)] * 32
    result = result * frac  # |result| < 2**31
    result = (result + (1 << 14)) >> 15
    result = wrap16(result + lut[base])
    return np.where(x <= 2, lut[np.minimum(x, 2)], result)


def pcan_shrink(snr: np.ndarray) -> np.ndarray:
    """pcan_gain_control.c PcanShrink: (snr**2) >> 20 below 2**13, else snr/64 - 64."""
    snr = np.asarray(snr, dtype=np.int64)
    small = (snr * snr) >> (2 + 2 * 12 - 6)  # only taken where snr < 2**13: < 2**26
    big = (snr >> (12 - 6)) - (1 << 6)
    return np.where(snr < (2 << 12), small, big)


def sqrt32(num: int) -> int:
    """filterbank.c Sqrt32 (bitwise, rounded, saturating at 0xFFFF)."""
    if num == 0:
        return 0
    res = 0
    max_bit_number = (32 - num.bit_length()) | 1
    bit = 1 << (31 - max_bit_number)
    for _ in range((31 - max_bit_number) // 2 + 1):
        if num >= res + bit:
            num -= res + bit
            res = (res >> 1) + bit
        else:
            res >>= 1
        bit >>= 2
    if num > res and res != 0xFFFF:
        res += 1
    return res


def sqrt64(num: int) -> int:
    """filterbank.c Sqrt64: Sqrt32 when the top word is 0, else the same on 64 bits."""
    if num >> 32 == 0:
        return sqrt32(num)
    res = 0
    max_bit_number = (64 - num.bit_length()) | 1
    bit = 1 << (63 - max_bit_number)
    for _ in range((63 - max_bit_number) // 2 + 1):
        if num >= res + bit:
            num -= res + bit
            res = (res >> 1) + bit
        else:
            res >>= 1
        bit >>= 2
    if num > res and res != 0xFFFFFFFF:
        res += 1
    return res & M32  # returned as uint32_t


class IntegerFrontend:
    """FrontendProcessSamples in numpy, on the firmware module's tables.

    Per 480-sample frame (160-sample step): window -> FFT input shift -> 512-point int16
    kiss FFT -> energies -> mel filterbank (uint64) -> sqrt >> shift -> noise reduction
    -> PCAN -> log. Values the C holds as uint32 are held here as non-negative int64.
    """

    def __init__(self, mod: dict[str, object], tables: dict[str, np.ndarray]) -> None:
        self.m = mod
        self.t = tables
        self.estimate = np.zeros(40, dtype=np.int64)  # noise estimate, uint32 values

    # -- stateless per-frame stages, vectorized over frames (axis 0) --
    def window(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """window.c: (sample * coef) >> 12 into int16, and the FFT input shift."""
        # int32 product (< 2**28), and the result always fits int16
        w = (frames * self.t["WINDOW"]) >> self.m["WINDOW_BITS"]
        # max |value| as int16: -(-32768) stays negative in int16 and never counts
        mag = np.where(w == -32768, 0, np.abs(w))
        shift = 15 - msb(mag.max(axis=1))
        return w, shift

    def fft(self, w: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """fft.cc + kiss_fftr (FIXED_POINT 16): 512-point real FFT, bins 0..256."""
        x = wrap16(((w & 0xFFFF) << shift[:, None]) & 0xFFFF)  # (uint16)v << shift
        x = np.concatenate([x, np.zeros((len(x), 512 - x.shape[1]), np.int64)], axis=1)
        zr, zi = x[:, 0::2], x[:, 1::2]  # 256 complex samples: even + j*odd
        perm = self.t["FFT_PERM"]
        re, im = zr[:, perm].copy(), zi[:, perm].copy()
        tw = self.t["FFT_TWIDDLES"].reshape(-1, 2)
        # radix-4 stages, innermost first: (m, fstride) = (1, 64), (4, 16), (16, 4), (64, 1)
        for m, fstride in ((1, 64), (4, 16), (16, 4), (64, 1)):
            re, im = self._bfly4(re, im, m, fstride, tw)
        return self._split(re, im)

    @staticmethod
    def _bfly4(re, im, m, fstride, tw):
        n = re.shape[0]
        r = re.reshape(n, -1, 4, m)
        i = im.reshape(n, -1, 4, m)
        fr = [fixdiv(r[:, :, q, :], 4) for q in range(4)]
        fi = [fixdiv(i[:, :, q, :], 4) for q in range(4)]
        k = np.arange(m)
        t1, t2, t3 = tw[k * fstride], tw[2 * k * fstride], tw[3 * k * fstride]
        s0 = c_mul(fr[1], fi[1], t1[:, 0], t1[:, 1])
        s1 = c_mul(fr[2], fi[2], t2[:, 0], t2[:, 1])
        s2 = c_mul(fr[3], fi[3], t3[:, 0], t3[:, 1])
        s5 = wrap16(fr[0] - s1[0]), wrap16(fi[0] - s1[1])
        f0 = wrap16(fr[0] + s1[0]), wrap16(fi[0] + s1[1])
        s3 = wrap16(s0[0] + s2[0]), wrap16(s0[1] + s2[1])
        s4 = wrap16(s0[0] - s2[0]), wrap16(s0[1] - s2[1])
        out_r = np.empty_like(r)
        out_i = np.empty_like(i)
        out_r[:, :, 2, :], out_i[:, :, 2, :] = wrap16(f0[0] - s3[0]), wrap16(f0[1] - s3[1])
        out_r[:, :, 0, :], out_i[:, :, 0, :] = wrap16(f0[0] + s3[0]), wrap16(f0[1] + s3[1])
        out_r[:, :, 1, :], out_i[:, :, 1, :] = wrap16(s5[0] + s4[1]), wrap16(s5[1] - s4[0])
        out_r[:, :, 3, :], out_i[:, :, 3, :] = wrap16(s5[0] - s4[1]), wrap16(s5[1] + s4[0])
        return out_r.reshape(n, -1), out_i.reshape(n, -1)

    def _split(self, re, im):
        """kiss_fftr: the 256-point complex FFT of (even, odd) into 257 real-FFT bins."""
        n = re.shape[0]
        st = self.t["FFT_SUPER_TWIDDLES"].reshape(-1, 2)
        out_r = np.zeros((n, 257), np.int64)
        out_i = np.zeros((n, 257), np.int64)
        dr, di = fixdiv(re[:, 0], 2), fixdiv(im[:, 0], 2)
        out_r[:, 0] = wrap16(dr + di)
        out_r[:, 256] = wrap16(dr - di)
        k = np.arange(1, 129)
        pr, pi_ = fixdiv(re[:, k], 2), fixdiv(im[:, k], 2)
        nr, ni = fixdiv(re[:, 256 - k], 2), fixdiv(wrap16(-im[:, 256 - k]), 2)
        f1r, f1i = wrap16(pr + nr), wrap16(pi_ + ni)
        f2r, f2i = wrap16(pr - nr), wrap16(pi_ - ni)
        twr, twi = c_mul(f2r, f2i, st[:, 0], st[:, 1])
        out_r[:, k] = wrap16((f1r + twr) >> 1)
        out_i[:, k] = wrap16((f1i + twi) >> 1)
        # written after bin k: at k = 128 this overwrites bin 128, as in the C loop
        out_r[:, 256 - k] = wrap16((f1r - twr) >> 1)
        out_i[:, 256 - k] = wrap16((twi - f1i) >> 1)
        return out_r, out_i

    def filterbank(self, re: np.ndarray, im: np.ndarray) -> np.ndarray:
        """filterbank.c: energies, mel bands (uint64 accumulators), work[1..40]."""
        s, e = self.m["FB_START_INDEX"], self.m["FB_END_INDEX"]
        # re*re + im*im can reach 2**31 (wraps int32); the C then widens the int32
        # energy to uint64 with sign extension
        energy = wrap32(re[:, s:e] ** 2 + im[:, s:e] ** 2).astype(np.uint64)
        w = self.t["FB_WEIGHTS"].astype(np.uint64)
        u = self.t["FB_UNWEIGHTS"].astype(np.uint64)
        n = re.shape[0]
        w_acc = np.zeros(n, np.uint64)  # > 32 bits: up to 2**12 * 2**31 * bins
        u_acc = np.zeros(n, np.uint64)
        work = []
        pos = 0
        for width in self.t["FB_BAND_WIDTHS"]:
            for _ in range(int(width)):
                w_acc += w[pos] * energy[:, pos]
                u_acc += u[pos] * energy[:, pos]
                pos += 1
            work.append(w_acc)
            w_acc, u_acc = u_acc, np.zeros(n, np.uint64)
        return np.stack(work[1:], axis=1)  # band 0 only feeds channel 0's unweights

    def sqrt(self, work: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """filterbank.c FilterbankSqrt: Sqrt64(work) >> input shift (uint32)."""
        out = np.zeros(work.shape, np.int64)
        for f in range(work.shape[0]):
            for c in range(work.shape[1]):
                out[f, c] = sqrt64(int(work[f, c])) >> int(shift[f])
        return out

    # -- stateful stages, one frame at a time --
    def noise_reduction(self, signal: np.ndarray) -> np.ndarray:
        """noise_reduction.c, uint32 values held in int64."""
        even = np.arange(40) % 2 == 0
        smoothing = np.where(even, self.m["NR_EVEN_SMOOTHING"], self.m["NR_ODD_SMOOTHING"])
        one = 1 << self.m["NR_BITS"]
        scaled = (signal << self.m["NR_SMOOTHING_BITS"]) & M32  # wraps
        # > 32 bits: scaled * smoothing and estimate * (1 - smoothing) are up to 2**46
        est = scaled * smoothing + self.estimate * (one - smoothing)
        est = (est >> self.m["NR_BITS"]) & M32
        self.estimate = est  # stored before the clamp below
        est = np.minimum(est, scaled)
        # > 32 bits: signal * min_signal_remaining is up to 2**42
        floor = (signal * self.m["NR_MIN_SIGNAL_REMAINING"]) >> self.m["NR_BITS"]
        subtracted = (scaled - est) >> self.m["NR_SMOOTHING_BITS"]
        return np.maximum(subtracted, floor)

    def pcan(self, signal: np.ndarray) -> np.ndarray:
        """pcan_gain_control.c: gain from the noise estimate, then PcanShrink."""
        # int16 gain widened to uint32 (sign-extending; the table's gains are all >= 0)
        gain = wide_dynamic_function(self.estimate, self.t["PCAN_GAIN_LUT"]) & M32
        # > 32 bits: (uint64)signal * gain is up to 2**47 for these gains
        snr = (signal.astype(np.uint64) * gain.astype(np.uint64)) >> self.m["PCAN_SNR_SHIFT"]
        return pcan_shrink(snr.astype(np.int64) & M32)

    def log_scale(self, signal: np.ndarray) -> np.ndarray:
        """log_scale.c: fixed-point ln, scaled by 2**6, saturated to uint16."""
        v = (signal << self.m["LOG_CORRECTION_BITS"]) & M32  # wraps
        integer = np.maximum(msb(v) - 1, 0)
        frac = v - (1 << integer)
        frac = np.where(
            integer < 16,
            frac << np.clip(16 - integer, 0, None),
            frac >> np.clip(integer - 16, 0, None),
        )
        seg = frac >> 9
        lut = self.t["LOG_LUT"]
        c0, c1 = lut[seg], lut[np.minimum(seg + 1, len(lut) - 1)]
        rel = ((c1 - c0) * (frac - 512 * seg)) >> 16  # arithmetic shift of a signed value
        log2 = (integer << 16) + frac + c0 + rel
        loge = ((self.m["LOG_COEFF"] * log2 + 32768) >> 16) & M32  # > 32 bits: 2**37
        scaled = (((loge << self.m["LOG_SCALE_SHIFT"]) + 32768) & M32) >> 16
        return np.minimum(np.where(v > 1, scaled, 0), 0xFFFF)

    def features(self, samples: np.ndarray) -> np.ndarray:
        """uint16 features of every complete window, as pymicro-features streams them."""
        step, size = self.m["WINDOW_STEP"], self.m["WINDOW_SIZE"]
        n = (len(samples) - size) // step + 1
        idx = np.arange(n)[:, None] * step + np.arange(size)[None, :]
        frames = samples.astype(np.int64)[idx]
        w, shift = self.window(frames)
        re, im = self.fft(w, shift)
        signal = self.sqrt(self.filterbank(re, im), shift)
        out = np.zeros((n, 40), np.int64)
        for f in range(n):
            s = self.noise_reduction(signal[f])
            s = self.pcan(s)
            out[f] = self.log_scale(s)
        return out


def reference_features(samples: np.ndarray) -> np.ndarray:
    """pymicro-features' uint16 features: 160 samples per call, as microWakeWord feeds it."""
    from pymicro_features import MicroFrontend

    front = MicroFrontend()
    data = samples.astype("<i2").tobytes()
    rows = []
    for at in range(0, len(data) - 319, 320):
        result = front.process_samples(data[at : at + 320])
        assert result.samples_read == 160
        if result.features:
            # value * 0.0390625f is exact in float, so this division recovers the value
            rows.append([round(v / ft.FLOAT32_SCALE) for v in result.features])
    return np.array(rows, dtype=np.int64)


def varied_audio(seconds_each: float = 0.75, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(16000 * seconds_each)
    t = np.arange(n) / 16000
    parts = [
        np.zeros(n),  # silence
        rng.normal(0, 1000, n),  # noise
        rng.normal(0, 3, n),  # very quiet noise: large FFT input shift
        8000 * np.sin(2 * np.pi * 1000 * t),  # tone
        32767 * np.sin(2 * np.pi * (100 * t + 5200 * t * t)),  # full-scale chirp to 7.9 kHz
        rng.choice([-32768, 32767], n),  # full-scale random square: extreme values
        rng.normal(0, 6000, n) * (np.sin(2 * np.pi * 3 * t) > 0),  # noise bursts
        np.zeros(n),  # silence again: noise estimate decays
        300 * np.sin(2 * np.pi * 220 * t) + rng.normal(0, 50, n),  # quiet tone in noise
    ]
    return np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)


def test_integer_pipeline_matches_pymicro_features_exactly(mod, tables):
    audio = varied_audio()
    want = reference_features(audio)
    got = IntegerFrontend(mod, tables).features(audio)
    assert got.shape == want.shape == (len(audio) // 160 - 2, 40)
    bad = np.argwhere(got != want)
    assert len(bad) == 0, f"{len(bad)} values differ, first at (frame, channel) {bad[:5]}"
    assert want.max() > 600 and want.min() == 0  # the audio spans the output range


def test_integer_pipeline_matches_on_noise_at_every_level(mod, tables):
    rng = np.random.default_rng(5)
    level = np.repeat(np.logspace(0, 4.5, 24), 1600)
    audio = np.clip(rng.normal(0, 1, len(level)) * level, -32768, 32767).astype(np.int16)
    want = reference_features(audio)
    got = IntegerFrontend(mod, tables).features(audio)
    np.testing.assert_array_equal(got, want)


# ------------------------------------------- the reference's own tables and stages ----
# pymicro-features keeps its FrontendConfig + FrontendState in a malloc'd struct behind
# the capsule MicroFrontend()._frontend, and exports the library's functions. The
# structures below follow the library headers (frontend_util.h, frontend.h, window.h,
# fft.h, filterbank.h, noise_reduction.h, pcan_gain_control.h, log_scale.h and the
# *_util.h config structs) for the LP64 C ABI; the sanity checks in `reference_state`
# fail loudly if the layout is not what they say.
C = ctypes
P16, P32, P64 = C.POINTER(C.c_int16), C.POINTER(C.c_uint32), C.POINTER(C.c_uint64)


class _WindowConfig(C.Structure):
    _fields_ = [("size_ms", C.c_size_t), ("step_size_ms", C.c_size_t)]


class _FilterbankConfig(C.Structure):
    _fields_ = [
        ("num_channels", C.c_int),
        ("upper_band_limit", C.c_float),
        ("lower_band_limit", C.c_float),
        ("output_scale_shift", C.c_int),
    ]


class _NoiseReductionConfig(C.Structure):
    _fields_ = [
        ("smoothing_bits", C.c_int),
        ("even_smoothing", C.c_float),
        ("odd_smoothing", C.c_float),
        ("min_signal_remaining", C.c_float),
    ]


class _PcanConfig(C.Structure):
    _fields_ = [
        ("enable_pcan", C.c_int),
        ("strength", C.c_float),
        ("offset", C.c_float),
        ("gain_bits", C.c_int),
    ]


class _LogScaleConfig(C.Structure):
    _fields_ = [("enable_log", C.c_int), ("scale_shift", C.c_int)]


class _FrontendConfig(C.Structure):
    _fields_ = [
        ("window", _WindowConfig),
        ("filterbank", _FilterbankConfig),
        ("noise_reduction", _NoiseReductionConfig),
        ("pcan_gain_control", _PcanConfig),
        ("log_scale", _LogScaleConfig),
    ]


class _WindowState(C.Structure):
    _fields_ = [
        ("size", C.c_size_t),
        ("coefficients", P16),
        ("step", C.c_size_t),
        ("input", P16),
        ("input_used", C.c_size_t),
        ("output", P16),
        ("max_abs_output_value", C.c_int16),
    ]


class _FftState(C.Structure):
    _fields_ = [
        ("input", P16),
        ("output", P16),  # complex_int16_t pairs
        ("fft_size", C.c_size_t),
        ("input_size", C.c_size_t),
        ("scratch", C.c_void_p),  # kiss_fftr_state
        ("scratch_size", C.c_size_t),
    ]


class _FilterbankState(C.Structure):
    _fields_ = [
        ("num_channels", C.c_int),
        ("start_index", C.c_int),
        ("end_index", C.c_int),
        ("channel_frequency_starts", P16),
        ("channel_weight_starts", P16),
        ("channel_widths", P16),
        ("weights", P16),
        ("unweights", P16),
        ("work", P64),
    ]


class _NoiseReductionState(C.Structure):
    _fields_ = [
        ("smoothing_bits", C.c_int),
        ("even_smoothing", C.c_uint16),
        ("odd_smoothing", C.c_uint16),
        ("min_signal_remaining", C.c_uint16),
        ("num_channels", C.c_int),
        ("estimate", P32),
    ]


class _PcanState(C.Structure):
    _fields_ = [
        ("enable_pcan", C.c_int),
        ("noise_estimate", P32),
        ("num_channels", C.c_int),
        ("gain_lut", P16),
        ("snr_shift", C.c_int32),
    ]


class _LogScaleState(C.Structure):
    _fields_ = [("enable_log", C.c_int), ("scale_shift", C.c_int)]


class _FrontendState(C.Structure):
    _fields_ = [
        ("window", _WindowState),
        ("fft", _FftState),
        ("filterbank", _FilterbankState),
        ("noise_reduction", _NoiseReductionState),
        ("pcan_gain_control", _PcanState),
        ("log_scale", _LogScaleState),
    ]


class _FrontendHandle(C.Structure):
    _fields_ = [("cfg", _FrontendConfig), ("st", _FrontendState)]


class _KissFftrState(C.Structure):
    _fields_ = [("substate", C.c_void_p), ("tmpbuf", C.c_void_p), ("super_twiddles", P16)]


_KISS_TWIDDLES_OFFSET = 8 + 4 * 64  # kiss_fft_state: nfft, inverse, factors[64], twiddles


def _ints(ptr, n: int) -> list[int]:
    return [int(ptr[i]) for i in range(n)]


class Reference:
    """A live pymicro-features frontend: its state, and the library's stage functions."""

    def __init__(self) -> None:
        import micro_features_cpp
        from pymicro_features import MicroFrontend

        self.front = MicroFrontend()  # keeps the state alive
        get = C.pythonapi.PyCapsule_GetPointer
        get.restype = C.c_void_p
        get.argtypes = [C.py_object, C.c_char_p]
        addr = get(self.front._frontend, b"micro_features_cpp.FrontendHandle")
        self.handle = _FrontendHandle.from_address(addr)
        self.cfg, self.st = self.handle.cfg, self.handle.st
        self.lib = C.CDLL(micro_features_cpp.__file__)
        self.lib.FftCompute.argtypes = [C.POINTER(_FftState), P16, C.c_int]
        self.lib.FftCompute.restype = None
        self.lib.FilterbankSqrt.argtypes = [C.POINTER(_FilterbankState), C.c_int]
        self.lib.FilterbankSqrt.restype = P32
        self.lib.WideDynamicFunction.argtypes = [C.c_uint32, P16]
        self.lib.WideDynamicFunction.restype = C.c_int16
        self.lib.PcanShrink.argtypes = [C.c_uint32]
        self.lib.PcanShrink.restype = C.c_uint32
        self.lib.LogScaleApply.argtypes = [C.POINTER(_LogScaleState), P32, C.c_int, C.c_int]
        self.lib.LogScaleApply.restype = C.POINTER(C.c_uint16)
        st = self.st
        assert (st.window.size, st.window.step, st.fft.fft_size) == (480, 160, 512)
        assert (st.filterbank.num_channels, st.noise_reduction.num_channels) == (40, 40)
        assert st.pcan_gain_control.enable_pcan == 1 and st.log_scale.enable_log == 1

    def tables(self) -> dict[str, list[int]]:
        st = self.st
        fb = st.filterbank
        kr = _KissFftrState.from_address(st.fft.scratch)
        n_weights = max(fb.channel_weight_starts[c] + fb.channel_widths[c] for c in range(41))
        lut = _ints(st.pcan_gain_control.gain_lut, ft.PCAN_LUT_SIZE)
        for i in range(2, 32):  # never written by the library (malloc garbage)
            lut[4 * i - 3] = 0
        return {
            "window": _ints(st.window.coefficients, st.window.size),
            "twiddles": _ints(C.cast(kr.substate + _KISS_TWIDDLES_OFFSET, P16), 512),
            "super_twiddles": _ints(kr.super_twiddles, 256),
            "fb_indices": [fb.start_index, fb.end_index],
            "fb_channel_frequency_starts": _ints(fb.channel_frequency_starts, 41),
            "fb_channel_weight_starts": _ints(fb.channel_weight_starts, 41),
            "fb_channel_widths": _ints(fb.channel_widths, 41),
            "fb_weights": _ints(fb.weights, n_weights),
            "fb_unweights": _ints(fb.unweights, n_weights),
            "nr": [
                st.noise_reduction.smoothing_bits,
                st.noise_reduction.even_smoothing,
                st.noise_reduction.odd_smoothing,
                st.noise_reduction.min_signal_remaining,
            ],
            "pcan_snr_shift": [st.pcan_gain_control.snr_shift],
            "pcan_gain_lut": lut,
            "log_scale_shift": [st.log_scale.scale_shift],
            "log_lut": list((C.c_uint16 * 130).in_dll(self.lib, "kLogLut")),
        }

    def fft(self, windowed: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
        buf = (C.c_int16 * 480)(*windowed.tolist())
        self.lib.FftCompute(C.byref(self.st.fft), buf, shift)
        out = np.array(_ints(self.st.fft.output, 2 * 257)).reshape(257, 2)
        return out[:, 0], out[:, 1]

    def sqrt(self, work: list[int], shift: int) -> list[int]:
        fb = self.st.filterbank
        for i, v in enumerate(work):
            fb.work[i] = v
        return _ints(self.lib.FilterbankSqrt(C.byref(fb), shift), 40)

    def log_scale(self, values: list[int]) -> list[int]:
        buf = (C.c_uint32 * len(values))(*values)
        out = self.lib.LogScaleApply(C.byref(self.st.log_scale), buf, len(values), 3)
        return _ints(out, len(values))


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference()


def test_reference_runs_the_documented_config(ref):
    """The config pymicro-features actually holds (float fields as C floats)."""
    c = ref.cfg
    f = ft.f32
    assert (c.window.size_ms, c.window.step_size_ms) == (30, 10)
    assert (c.filterbank.num_channels, c.filterbank.lower_band_limit) == (40, 125.0)
    assert c.filterbank.upper_band_limit == 7500.0
    nr = c.noise_reduction
    assert nr.smoothing_bits == 10
    assert (nr.even_smoothing, nr.odd_smoothing) == (f(0.025), f(0.06))
    assert nr.min_signal_remaining == f(0.05)
    pc = c.pcan_gain_control
    assert (pc.enable_pcan, pc.strength, pc.offset, pc.gain_bits) == (1, f(0.95), 80.0, 21)
    assert (c.log_scale.enable_log, c.log_scale.scale_shift) == (1, 6)


def test_every_table_is_bit_exact_with_the_reference(ref, mod, tables):
    """The library's own tables, read from pymicro-features' memory, equal ours."""
    theirs = ref.tables()
    t = ft.build_tables()
    flat = [v for pair in t.fft_twiddles for v in pair]
    ours = {
        "window": t.window,
        "twiddles": flat,
        "super_twiddles": [v for pair in t.fft_super_twiddles for v in pair],
        "fb_indices": [t.fb_start_index, t.fb_end_index],
        "fb_channel_frequency_starts": t.fb_channel_frequency_starts,
        "fb_channel_weight_starts": t.fb_channel_weight_starts,
        "fb_channel_widths": t.fb_channel_widths,
        "fb_weights": t.fb_padded_weights,
        "fb_unweights": t.fb_padded_unweights,
        "nr": [
            ft.SMOOTHING_BITS,
            t.nr_even_smoothing,
            t.nr_odd_smoothing,
            t.nr_min_signal_remaining,
        ],
        "pcan_snr_shift": [t.pcan_snr_shift],
        "pcan_gain_lut": t.pcan_gain_lut,
        "log_scale_shift": [ft.LOG_SCALE_SHIFT],
        "log_lut": t.log_lut,
    }
    for name in theirs:
        assert ours[name] == theirs[name], name
    # and the firmware module carries the same values
    assert tables["WINDOW"].tolist() == theirs["window"]
    assert tables["FFT_TWIDDLES"].tolist() == theirs["twiddles"]
    assert tables["FFT_SUPER_TWIDDLES"].tolist() == theirs["super_twiddles"]
    assert tables["PCAN_GAIN_LUT"].tolist() == theirs["pcan_gain_lut"]
    assert tables["LOG_LUT"].tolist() == theirs["log_lut"]
    assert [mod["FB_START_INDEX"], mod["FB_END_INDEX"]] == theirs["fb_indices"]
    assert [w for w in tables["FB_WEIGHTS"].tolist() if w] == [w for w in theirs["fb_weights"] if w]
    assert [u for u in tables["FB_UNWEIGHTS"].tolist() if u] == [
        u for u in theirs["fb_unweights"] if u
    ]


def test_fft_stage_matches_the_library(ref, mod, tables):
    """Our int16 kiss FFT against the library's FftCompute, extreme inputs included."""
    rng = np.random.default_rng(11)
    frames = [
        rng.integers(-32768, 32768, 480),
        np.full(480, -32768),
        np.full(480, 32767),
        np.tile([32767, -32768], 240),
        rng.integers(-3, 4, 480),
        (20000 * np.sin(np.arange(480) * 0.7)).astype(np.int64),
    ] + [rng.integers(-(1 << b), 1 << b, 480) for b in range(1, 15)]
    front = IntegerFrontend(mod, tables)
    for frame in frames:
        for shift in sorted({0, 1, 3, 8, 15}):
            w = np.asarray(frame, np.int64)
            got_r, got_i = front.fft(w[None, :], np.array([shift]))
            want_r, want_i = ref.fft(w, shift)
            assert np.array_equal(got_r[0], want_r) and np.array_equal(got_i[0], want_i)


def test_noise_reduction_and_pcan_stages_match_the_library(ref, mod, tables):
    """NoiseReductionApply then PcanGainControlApply, from random states and signals."""
    lib = ref.lib
    lib.NoiseReductionApply.argtypes = [C.POINTER(_NoiseReductionState), P32]
    lib.NoiseReductionApply.restype = None
    lib.PcanGainControlApply.argtypes = [C.POINTER(_PcanState), P32]
    lib.PcanGainControlApply.restype = None
    nr, pcan = ref.st.noise_reduction, ref.st.pcan_gain_control
    rng = np.random.default_rng(14)
    front = IntegerFrontend(mod, tables)
    for trial in range(300):
        bits_e, bits_s = trial % 33, (trial * 7) % 33
        estimate = rng.integers(0, 2**32, 40, dtype=np.uint64) >> np.uint64(32 - bits_e)
        signal = rng.integers(0, 2**32, 40, dtype=np.uint64) >> np.uint64(32 - bits_s)
        for c in range(40):
            nr.estimate[c] = int(estimate[c])
        buf = (C.c_uint32 * 40)(*signal.tolist())
        lib.NoiseReductionApply(C.byref(nr), buf)
        lib.PcanGainControlApply(C.byref(pcan), buf)
        front.estimate = estimate.astype(np.int64)
        got = front.pcan(front.noise_reduction(signal.astype(np.int64)))
        assert got.tolist() == list(buf)
        assert front.estimate.tolist() == _ints(nr.estimate, 40)


def test_window_stage_matches_the_library(ref, mod, tables):
    lib = ref.lib
    lib.WindowProcessSamples.argtypes = [
        C.POINTER(_WindowState),
        P16,
        C.c_size_t,
        C.POINTER(C.c_size_t),
    ]
    lib.WindowProcessSamples.restype = C.c_int
    win = ref.st.window
    rng = np.random.default_rng(15)
    front = IntegerFrontend(mod, tables)
    frames = [np.full(480, -32768), np.full(480, 32767), np.zeros(480, np.int64)]
    frames += [rng.integers(-(1 << b), 1 << b, 480) for b in range(16)]
    for frame in frames:
        win.input_used = 0
        read = C.c_size_t()
        assert lib.WindowProcessSamples(
            C.byref(win), (C.c_int16 * 480)(*frame.tolist()), 480, C.byref(read)
        )
        w, shift = front.window(np.asarray(frame, np.int64)[None, :])
        assert w[0].tolist() == _ints(win.output, 480)
        # the frontend's shift is 15 - msb(max_abs_output_value)
        assert shift[0] == 15 - int(win.max_abs_output_value).bit_length()


def test_filterbank_stage_matches_the_library(ref, mod, tables):
    """Energies and band sums, with FFT outputs up to (-32768, -32768) (energy 2**31)."""
    lib = ref.lib
    lib.FilterbankConvertFftComplexToEnergy.argtypes = [
        C.POINTER(_FilterbankState),
        P16,
        C.POINTER(C.c_int32),
    ]
    lib.FilterbankConvertFftComplexToEnergy.restype = None
    lib.FilterbankAccumulateChannels.argtypes = [C.POINTER(_FilterbankState), C.POINTER(C.c_int32)]
    lib.FilterbankAccumulateChannels.restype = None
    fb = ref.st.filterbank
    rng = np.random.default_rng(16)
    front = IntegerFrontend(mod, tables)
    for trial in range(60):
        bits = 1 + trial % 16
        spec = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (257, 2))
        if trial % 5 == 0:
            spec[rng.integers(0, 257, 20)] = -32768
        energy = (C.c_int32 * 300)()  # the C aliases this onto the FFT output buffer
        flat = (C.c_int16 * 514)(*spec.ravel().tolist())
        lib.FilterbankConvertFftComplexToEnergy(C.byref(fb), flat, energy)
        lib.FilterbankAccumulateChannels(C.byref(fb), energy)
        got = front.filterbank(spec[None, :, 0], spec[None, :, 1])[0]
        assert got.tolist() == _ints(fb.work, 41)[1:]


def test_sqrt_stage_matches_the_library(ref):
    rng = np.random.default_rng(12)
    edge = [0, 1, 2, 3, 4, 0xFFFE0001, 0xFFFF0000, 2**32 - 1, 2**32, 2**32 + 1, 2**64 - 1]
    values = edge + [int(v) for v in rng.integers(0, 2**63, 200, dtype=np.uint64)]
    values += [
        int(v) >> int(s)
        for v, s in zip(
            rng.integers(0, 2**63, 400, dtype=np.uint64), rng.integers(0, 63, 400), strict=True
        )
    ]
    values += [0] * (-len(values) % 40)
    for at in range(0, len(values), 40):
        chunk = values[at : at + 40]
        for shift in (0, 5, 15):
            want = ref.sqrt([0, *chunk], shift)
            assert [sqrt64(v) >> shift for v in chunk] == want


def test_pcan_and_log_stages_match_the_library(ref, tables, mod):
    rng = np.random.default_rng(13)
    xs = [0, 1, 2, 3, 4, 5, 2**31, 2**32 - 1]
    xs += [int(v) for v in rng.integers(0, 2**32, 3000, dtype=np.uint64)]
    xs += [
        int(v) >> int(s)
        for v, s in zip(
            rng.integers(0, 2**32, 3000, dtype=np.uint64), rng.integers(0, 32, 3000), strict=True
        )
    ]
    lut = ref.st.pcan_gain_control.gain_lut
    want = [ref.lib.WideDynamicFunction(x, lut) for x in xs]
    assert wide_dynamic_function(np.array(xs), tables["PCAN_GAIN_LUT"]).tolist() == want
    assert pcan_shrink(np.array(xs)).tolist() == [ref.lib.PcanShrink(x) for x in xs]
    # LogScaleApply with correction_bits 3 (a wrapping uint32 shift left first)
    front = IntegerFrontend(mod, tables)
    assert front.log_scale(np.array(xs, np.int64)).tolist() == ref.log_scale(xs)


# ------------------------------------------------------------ int8 conversion ----
def esphome_int8(v: np.ndarray) -> np.ndarray:
    """ESPHome micro_wake_word.cpp: ((v * 256) + 666 / 2) / 666 - 128, clamped."""
    q = (v * ft.INT8_VALUE_SCALE + ft.INT8_VALUE_DIV // 2) // ft.INT8_VALUE_DIV - 128
    return np.clip(q, -128, 127)


def pmw_int8(v: np.ndarray) -> np.ndarray:
    """pymicro-wakeword's quantisation in integers (exact for v <= 666)."""
    return ((v * ft.PMW_INT8_MUL + (1 << (ft.PMW_INT8_SHIFT - 1))) >> ft.PMW_INT8_SHIFT) - 128


def pymicro_wakeword_int8(values: np.ndarray) -> np.ndarray:
    """The int8 input pymicro-wakeword hands its model for uint16 features `values`.

    Runs its own MicroWakeWord.process_streaming_prob on features scaled as
    MicroWakeWordFeatures scales them, and catches the quantized tensor on its way into
    TfLiteTensorCopyFromBuffer.
    """
    from pymicro_wakeword import MicroWakeWord, Model

    ww = MicroWakeWord.from_builtin(Model.OKAY_NABU)
    assert ww.input_scale == pytest.approx(ft.PMW_INPUT_SCALE, rel=0, abs=0)
    assert ww.input_zero_point == ft.PMW_INPUT_ZERO_POINT
    real = ww.lib
    caught: list[bytes] = []

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def TfLiteTensorCopyFromBuffer(self, tensor, ptr, size):  # noqa: N802
            caught.append(ctypes.string_at(ptr, size))
            return real.TfLiteTensorCopyFromBuffer(tensor, ptr, size)

    ww.lib = Spy()
    per_call = ww.stride * 40
    padded = np.concatenate([values, np.zeros(-len(values) % per_call, values.dtype)])
    try:
        for row in padded.reshape(-1, 40):
            ww.process_streaming_prob((row * ft.FLOAT32_SCALE).reshape(1, 1, 40))
    finally:
        ww.lib = real
        ww.close()
    got = np.frombuffer(b"".join(caught), dtype=np.int8).astype(np.int64)
    return got[: len(values)]


def test_int8_conversions_against_pymicro_wakeword():
    v = np.arange(667)  # above 666 pymicro-wakeword's astype(int8) overflows
    theirs = pymicro_wakeword_int8(v)
    assert np.array_equal(pmw_int8(v), theirs)
    esp = esphome_int8(v)
    assert np.abs(esp - theirs).max() == 1
    assert int(np.count_nonzero(esp != theirs)) == 282
    assert esp[0] == theirs[0] == -128 and esp[-1] == theirs[-1] == 127


def test_esphome_int8_rounds_and_saturates():
    v = np.array([0, 1, 2, 332, 333, 664, 665, 65535])
    assert esphome_int8(v).tolist() == [-128, -128, -127, 0, 0, 127, 127, 127]
    # v * 256 + 333 stays inside int32 for every uint16 v
    assert 65535 * 256 + 333 < 2**31
