"""The constant tables of the TFLite Micro audio frontend, reproduced bit-exactly.

microWakeWord models are trained on, and ESPHome feeds them, the features of the TFLite
Micro "micro frontend" (tensorflow/lite/experimental/microfrontend/lib) configured for a
30 ms window, 10 ms step, 16 kHz, 40 channels, noise reduction, PCAN and log scale. The
frontend's processing is integer-only, but at init it builds its tables in floating point
(float and libm's cosf/log1pf/powf; double and libm's sin/cos for the FFT twiddles). This
module repeats those computations operation by operation: float32 arithmetic through numpy
float32 scalars (IEEE single, round-to-nearest, like C float on SSE) and the libm functions
themselves through ctypes, so the tables equal the ones pymicro-features builds on this
host. docs/frontend.md gives every parameter and formula with its source.

`python -m wakeward.frontend_tables` writes them to firmware/frontend_tables.py, a
MicroPython module of integers and little-endian bytes literals.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------- configuration ----
# pymicro-features src/micro_features.cpp init_cfg(); ESPHome micro_wake_word setup().
SAMPLE_RATE = 16000
WINDOW_SIZE_MS = 30
WINDOW_STEP_MS = 10
NUM_CHANNELS = 40
LOWER_BAND_LIMIT = 125.0
UPPER_BAND_LIMIT = 7500.0
SMOOTHING_BITS = 10
EVEN_SMOOTHING = 0.025
ODD_SMOOTHING = 0.06
MIN_SIGNAL_REMAINING = 0.05
PCAN_STRENGTH = 0.95
PCAN_OFFSET = 80.0
PCAN_GAIN_BITS = 21
LOG_SCALE_SHIFT = 6

# Compile-time constants of the library (the #defines in its headers).
WINDOW_BITS = 12  # window.h kFrontendWindowBits
FILTERBANK_BITS = 12  # filterbank.h kFilterbankBits
NOISE_REDUCTION_BITS = 14  # noise_reduction.h kNoiseReductionBits
PCAN_SNR_BITS = 12  # pcan_gain_control.h kPcanSnrBits
PCAN_OUTPUT_BITS = 6  # pcan_gain_control.h kPcanOutputBits
WIDE_DYNAMIC_FUNCTION_BITS = 32  # pcan_gain_control_util.h kWideDynamicFunctionBits
PCAN_LUT_SIZE = 4 * WIDE_DYNAMIC_FUNCTION_BITS - 3  # kWideDynamicFunctionLUTSize
LOG_SEGMENTS_LOG2 = 7  # log_lut.h kLogSegmentsLog2
LOG_SCALE_LOG2 = 16  # log_lut.h kLogScaleLog2
LOG_COEFF = 45426  # log_lut.h kLogCoeff (round(ln 2 * 2**16))
KISS_SAMP_MAX = 32767  # _kiss_fft_guts.h SAMP_MAX for FIXED_POINT=16

# feature (uint16) -> model input (int8).
# ESPHome micro_wake_word.cpp: clamp((v * 256 + 333) // 666 - 128, -128, 127).
INT8_VALUE_SCALE = 256
INT8_VALUE_DIV = 666
# pymicro-wakeword: round(v * 0.0390625 / input_scale + input_zero_point), with the
# builtin models' float32 input_scale 0.10196078568696976 (= 26/255) and zero point -128.
# For 0 <= v <= 666 (where that stays in int8) it equals (v * 50215 + 2**16) >> 17, minus
# 128; tests/host/test_frontend_tables.py checks this against pymicro-wakeword itself.
PMW_INPUT_SCALE = 0.10196078568696976
PMW_INPUT_ZERO_POINT = -128
PMW_INT8_MUL = 50215
PMW_INT8_SHIFT = 17
FLOAT32_SCALE = 0.0390625  # pymicro-features: feature float = uint16 value * 0.0390625f

REPO = Path(__file__).resolve().parents[2]
FIRMWARE_MODULE = REPO / "firmware" / "frontend_tables.py"

# ------------------------------------------------------------- float emulation ----
f32 = np.float32


def _libm() -> ctypes.CDLL:
    name = ctypes.util.find_library("m") or "libm.so.6"
    return ctypes.CDLL(name)


_LIBM = _libm()


def _float_fn(name: str, nargs: int):
    fn = getattr(_LIBM, name)
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float] * nargs
    return fn


_cosf = _float_fn("cosf", 1)
_log1pf = _float_fn("log1pf", 1)
_powf = _float_fn("powf", 2)


def cosf(x: np.float32) -> np.float32:
    return f32(_cosf(float(x)))


def log1pf(x: np.float32) -> np.float32:
    return f32(_log1pf(float(x)))


def powf(x: np.float32, y: np.float32) -> np.float32:
    return f32(_powf(float(x), float(y)))


def _sincos_fn():
    for name in ("sincos", "__sincos"):
        fn = getattr(_LIBM, name, None)
        if fn is not None:
            fn.restype = None
            fn.argtypes = [
                ctypes.c_double,
                ctypes.POINTER(ctypes.c_double),
                ctypes.POINTER(ctypes.c_double),
            ]
            return fn
    return None


_SINCOS = _sincos_fn()
_libm_cos = _LIBM.cos
_libm_cos.restype = ctypes.c_double
_libm_cos.argtypes = [ctypes.c_double]
_libm_sin = _LIBM.sin
_libm_sin.restype = ctypes.c_double
_libm_sin.argtypes = [ctypes.c_double]


def sincos(phase: float) -> tuple[float, float]:
    """libm's double sin and cos (gcc turns kf_cexp's cos()+sin() into one sincos())."""
    if _SINCOS is None:
        return _libm_sin(phase), _libm_cos(phase)
    s, c = ctypes.c_double(), ctypes.c_double()
    _SINCOS(phase, ctypes.byref(s), ctypes.byref(c))
    return s.value, c.value


def msb(n: int) -> int:
    """bits.h MostSignificantBit32/64: 0 for 0, else the 1-based index of the top bit."""
    return int(n).bit_length()


# ------------------------------------------------------------------ the tables ----
@dataclass(frozen=True)
class FrontendTables:
    window_size: int
    window_step: int
    window: list[int]
    fft_size: int
    fft_factors: list[int]
    fft_perm: list[int]
    fft_twiddles: list[tuple[int, int]]
    fft_super_twiddles: list[tuple[int, int]]
    fb_start_index: int
    fb_end_index: int
    # Compact filterbank: band b (0..NUM_CHANNELS) covers fb_band_widths[b] consecutive
    # FFT bins from fb_start_index on; weights/unweights are per bin.
    fb_band_widths: list[int]
    fb_weights: list[int]
    fb_unweights: list[int]
    # The library's own padded layout (FilterbankState), for comparison with a C dump.
    fb_channel_frequency_starts: list[int]
    fb_channel_weight_starts: list[int]
    fb_channel_widths: list[int]
    fb_padded_weights: list[int]
    fb_padded_unweights: list[int]
    nr_even_smoothing: int
    nr_odd_smoothing: int
    nr_min_signal_remaining: int
    input_correction_bits: int
    pcan_snr_shift: int
    pcan_input_bits: int
    pcan_gain_lut: list[int]  # PCAN_LUT_SIZE entries; the never-written ones are 0
    log_lut: list[int]


def window_coefficients(size: int) -> list[int]:
    """window_util.c WindowPopulateState: Hann window, float, cosf, 12-bit."""
    arg = f32(math.pi) * f32(2.0) / f32(size)
    out = []
    for i in range(size):
        float_value = f32(0.5) - f32(0.5) * cosf(arg * (f32(i) + f32(0.5)))
        out.append(int(np.floor(float_value * f32(1 << WINDOW_BITS) + f32(0.5))))
    return out


def kiss_factors(n: int) -> list[int]:
    """kiss_fft.c kf_factor: p1, m1, p2, m2, ... (powers of 4 first, then 2, 3, 5, ...)."""
    facbuf = []
    p = 4
    floor_sqrt = math.floor(math.sqrt(n))
    while True:
        while n % p:
            p = {4: 2, 2: 3}.get(p, p + 2)
            if p > floor_sqrt:
                p = n
        n //= p
        facbuf += [p, n]
        if n <= 1:
            return facbuf


def kiss_perm(nfft: int, factors: list[int]) -> list[int]:
    """The input index kf_work copies into each output slot before the butterflies."""
    perm = [0] * nfft

    def work(out: int, inp: int, fstride: int, fac: list[int]) -> None:
        p, m = fac[0], fac[1]
        for j in range(p):
            if m == 1:
                perm[out + j] = inp + j * fstride
            else:
                work(out + j * m, inp + j * fstride, fstride * p, fac[2:])

    work(0, 0, 1, factors)
    return perm


def _kiss_cexp(phase: float) -> tuple[int, int]:
    # _kiss_fft_guts.h KISS_FFT_COS/SIN for FIXED_POINT: floor(.5 + SAMP_MAX * cos(phase)).
    s, c = sincos(phase)
    return math.floor(0.5 + KISS_SAMP_MAX * c), math.floor(0.5 + KISS_SAMP_MAX * s)


def kiss_twiddles(nfft: int) -> list[tuple[int, int]]:
    """kiss_fft.c kiss_fft_alloc (forward): phase = -2*pi*i / nfft, in double."""
    pi = 3.141592653589793238462643383279502884197169399375105820974944
    return [_kiss_cexp(-2 * pi * i / nfft) for i in range(nfft)]


def kiss_super_twiddles(ncfft: int) -> list[tuple[int, int]]:
    """kiss_fftr.c kiss_fftr_alloc: phase = -pi * ((i+1)/ncfft + .5), in double."""
    pi = 3.14159265358979323846264338327
    return [_kiss_cexp(-pi * ((i + 1) / ncfft + 0.5)) for i in range(ncfft // 2)]


def freq_to_mel(freq: np.float32) -> np.float32:
    """filterbank_util.c FreqToMel: 1127.0f * log1pf(freq / 700.0f)."""
    return f32(1127.0) * log1pf(freq / f32(700.0))


@dataclass(frozen=True)
class Filterbank:
    start_index: int
    end_index: int
    band_widths: list[int]
    weights: list[int]
    unweights: list[int]
    channel_frequency_starts: list[int]
    channel_weight_starts: list[int]
    channel_widths: list[int]
    padded_weights: list[int]
    padded_unweights: list[int]


def filterbank(spectrum_size: int) -> Filterbank:
    """filterbank_util.c FilterbankPopulateState, all in float."""
    n1 = NUM_CHANNELS + 1
    index_alignment = 4 // 2  # kFilterbankIndexAlignment / sizeof(int16_t)
    block = 4  # kFilterbankChannelBlockSize

    mel_low = freq_to_mel(f32(LOWER_BAND_LIMIT))
    mel_hi = freq_to_mel(f32(UPPER_BAND_LIMIT))
    mel_spacing = (mel_hi - mel_low) / f32(n1)
    center = [mel_low + mel_spacing * f32(i + 1) for i in range(n1)]

    hz_per_sbin = f32(0.5) * f32(SAMPLE_RATE) / (f32(spectrum_size) - f32(1))
    start_index = int(f32(1.5) + f32(LOWER_BAND_LIMIT) / hz_per_sbin)

    freq_starts, weight_starts, widths = [0] * n1, [0] * n1, [0] * n1
    actual_starts, actual_widths = [0] * n1, [0] * n1
    chan_start = start_index
    weight_index_start = 0
    needs_zeros = False
    for chan in range(n1):
        freq_index = chan_start
        while freq_to_mel(f32(freq_index) * hz_per_sbin) <= center[chan]:
            freq_index += 1
        width = freq_index - chan_start
        actual_starts[chan], actual_widths[chan] = chan_start, width
        if width == 0:
            freq_starts[chan], weight_starts[chan], widths[chan] = 0, 0, block
            if not needs_zeros:
                needs_zeros = True
                for j in range(chan):
                    weight_starts[j] += block
                weight_index_start += block
        else:
            aligned_start = (chan_start // index_alignment) * index_alignment
            aligned_width = chan_start - aligned_start + width
            padded_width = ((aligned_width - 1) // block + 1) * block
            freq_starts[chan] = aligned_start
            weight_starts[chan] = weight_index_start
            widths[chan] = padded_width
            weight_index_start += padded_width
        chan_start = freq_index

    padded_w = [0] * weight_index_start
    padded_u = [0] * weight_index_start
    compact_w: list[int] = []
    compact_u: list[int] = []
    end_index = 0
    for chan in range(n1):
        frequency = actual_starts[chan]
        offset = frequency - freq_starts[chan]
        denom = mel_low if chan == 0 else center[chan - 1]
        for j in range(actual_widths[chan]):
            weight = (center[chan] - freq_to_mel(f32(frequency) * hz_per_sbin)) / (
                center[chan] - denom
            )
            w = int(np.floor(weight * f32(1 << FILTERBANK_BITS) + f32(0.5)))
            u = int(np.floor((f32(1.0) - weight) * f32(1 << FILTERBANK_BITS) + f32(0.5)))
            padded_w[weight_starts[chan] + offset + j] = w
            padded_u[weight_starts[chan] + offset + j] = u
            compact_w.append(w)
            compact_u.append(u)
            frequency += 1
        end_index = max(end_index, frequency)
    if end_index >= spectrum_size:
        raise ValueError("filterbank end_index is above the spectrum size")
    if sum(actual_widths) != end_index - start_index:
        raise ValueError("filterbank bands do not tile [start_index, end_index)")
    return Filterbank(
        start_index=start_index,
        end_index=end_index,
        band_widths=actual_widths,
        weights=compact_w,
        unweights=compact_u,
        channel_frequency_starts=freq_starts,
        channel_weight_starts=weight_starts,
        channel_widths=widths,
        padded_weights=padded_w,
        padded_unweights=padded_u,
    )


def pcan_gain(input_bits: int, x: int) -> int:
    """pcan_gain_control_util.c PcanGainLookupFunction, in float with powf."""
    x_as_float = f32(x) / f32(1 << input_bits)
    gain = f32(1 << PCAN_GAIN_BITS) * powf(x_as_float + f32(PCAN_OFFSET), -f32(PCAN_STRENGTH))
    if gain > f32(0x7FFF):
        return 0x7FFF
    return int(gain + f32(0.5))  # C float -> int16_t truncates toward zero; gain > 0


def _int16(v: int) -> int:
    return ((v + 0x8000) & 0xFFFF) - 0x8000


def pcan_gain_lut(input_bits: int) -> list[int]:
    """pcan_gain_control_util.c PcanGainControlPopulateState: quadratic pieces per octave.

    Entry x (x <= 2) is the gain of x; for interval (octave) 2..32 entries 4*interval-6
    +0/+1/+2 hold y0, a1, a2. Entries 4*interval-3 are never written (malloc) nor read;
    here they are 0.
    """
    lut = [0] * PCAN_LUT_SIZE
    lut[0] = pcan_gain(input_bits, 0)
    lut[1] = pcan_gain(input_bits, 1)
    for interval in range(2, WIDE_DYNAMIC_FUNCTION_BITS + 1):
        x0 = 1 << (interval - 1)
        x1 = x0 + (x0 >> 1)
        x2 = x0 + (x0 - 1) if interval == WIDE_DYNAMIC_FUNCTION_BITS else 2 * x0
        y0, y1, y2 = (pcan_gain(input_bits, x) for x in (x0, x1, x2))
        diff1, diff2 = y1 - y0, y2 - y0
        a1 = 4 * diff1 - diff2
        a2 = diff2 - a1
        base = 4 * interval - 6
        lut[base], lut[base + 1], lut[base + 2] = y0, _int16(a1), _int16(a2)
    return lut


def log_lut() -> list[int]:
    """log_lut.c kLogLut: a static table, not computed at init.

    Its 129 entries are round(2**16 * (log2(1 + i/128) - i/128)), the correction from the
    linear to the true log2 mantissa, plus one padding 0; the tests pin the formula.
    """
    segments = 1 << LOG_SEGMENTS_LOG2
    scale = 1 << LOG_SCALE_LOG2
    return [
        math.floor(scale * (math.log2(1 + i / segments) - i / segments) + 0.5)
        for i in range(segments + 1)
    ] + [0]


def build_tables() -> FrontendTables:
    window_size = WINDOW_SIZE_MS * SAMPLE_RATE // 1000
    window_step = WINDOW_STEP_MS * SAMPLE_RATE // 1000
    fft_size = 1
    while fft_size < window_size:
        fft_size <<= 1
    ncfft = fft_size // 2  # kiss_fftr runs a complex FFT of half the size
    factors = kiss_factors(ncfft)
    fb = filterbank(fft_size // 2 + 1)
    input_correction_bits = msb(fft_size) - 1 - FILTERBANK_BITS // 2
    pcan_input_bits = SMOOTHING_BITS - input_correction_bits
    one = f32(1 << NOISE_REDUCTION_BITS)
    return FrontendTables(
        window_size=window_size,
        window_step=window_step,
        window=window_coefficients(window_size),
        fft_size=fft_size,
        fft_factors=factors,
        fft_perm=kiss_perm(ncfft, factors),
        fft_twiddles=kiss_twiddles(ncfft),
        fft_super_twiddles=kiss_super_twiddles(ncfft),
        fb_start_index=fb.start_index,
        fb_end_index=fb.end_index,
        fb_band_widths=fb.band_widths,
        fb_weights=fb.weights,
        fb_unweights=fb.unweights,
        fb_channel_frequency_starts=fb.channel_frequency_starts,
        fb_channel_weight_starts=fb.channel_weight_starts,
        fb_channel_widths=fb.channel_widths,
        fb_padded_weights=fb.padded_weights,
        fb_padded_unweights=fb.padded_unweights,
        # noise_reduction_util.c: float * (1 << 14), truncated into uint16_t.
        nr_even_smoothing=int(f32(EVEN_SMOOTHING) * one),
        nr_odd_smoothing=int(f32(ODD_SMOOTHING) * one),
        nr_min_signal_remaining=int(f32(MIN_SIGNAL_REMAINING) * one),
        input_correction_bits=input_correction_bits,
        pcan_snr_shift=PCAN_GAIN_BITS - input_correction_bits - PCAN_SNR_BITS,
        pcan_input_bits=pcan_input_bits,
        pcan_gain_lut=pcan_gain_lut(pcan_input_bits),
        log_lut=log_lut(),
    )


# --------------------------------------------------------------- the module ----
def _pack(values: list[int], fmt: str) -> bytes:
    return np.asarray(values, dtype=np.int64).astype(fmt).tobytes()


def _bytes_literal(name: str, data: bytes, comment: str, width: int = 96) -> str:
    """`NAME = (b"..." b"...")` wrapped under `width` columns, one byte never split."""
    tokens = []
    for b in data:
        if 0x20 <= b < 0x7F and b not in (0x22, 0x27, 0x5C):
            tokens.append(chr(b))
        else:
            tokens.append(f"\\x{b:02x}")
    lines, cur = [], ""
    for tok in tokens:
        if len(cur) + len(tok) > width - 8:
            lines.append(cur)
            cur = ""
        cur += tok
    lines.append(cur)
    body = "\n".join(f'    b"{line}"' for line in lines)
    return f"# {comment}\n{name} = (\n{body}\n)\n"


def render_module(t: FrontendTables) -> str:
    def flat(pairs: list[tuple[int, int]]) -> list[int]:
        return [v for pair in pairs for v in pair]

    consts = [
        ("SAMPLE_RATE", SAMPLE_RATE, "Hz"),
        ("WINDOW_SIZE", t.window_size, "samples per window (30 ms)"),
        ("WINDOW_STEP", t.window_step, "samples per step (10 ms)"),
        ("WINDOW_BITS", WINDOW_BITS, "windowed = (sample * WINDOW[i]) >> WINDOW_BITS"),
        ("FFT_SIZE", t.fft_size, "real FFT size; kiss_fftr runs a complex FFT of half"),
        ("FFT_NCFFT", t.fft_size // 2, "complex FFT size: log4(256) radix-4 stages"),
        ("NUM_CHANNELS", NUM_CHANNELS, "features per frame"),
        ("FILTERBANK_BITS", FILTERBANK_BITS, "weights are 12-bit fractions"),
        ("FB_START_INDEX", t.fb_start_index, "first FFT bin in the filterbank"),
        ("FB_END_INDEX", t.fb_end_index, "one past the last FFT bin in the filterbank"),
        ("NR_BITS", NOISE_REDUCTION_BITS, "noise reduction fractions are 14-bit"),
        ("NR_SMOOTHING_BITS", SMOOTHING_BITS, "signal is scaled up by this before smoothing"),
        ("NR_EVEN_SMOOTHING", t.nr_even_smoothing, "0.025 * 2**14, truncated"),
        ("NR_ODD_SMOOTHING", t.nr_odd_smoothing, "0.06 * 2**14, truncated"),
        ("NR_MIN_SIGNAL_REMAINING", t.nr_min_signal_remaining, "0.05 * 2**14, truncated"),
        ("PCAN_SNR_SHIFT", t.pcan_snr_shift, "snr = (signal * gain) >> PCAN_SNR_SHIFT"),
        ("PCAN_SNR_BITS", PCAN_SNR_BITS, ""),
        ("PCAN_OUTPUT_BITS", PCAN_OUTPUT_BITS, ""),
        ("LOG_CORRECTION_BITS", t.input_correction_bits, "value <<= 3 before the log"),
        ("LOG_SCALE_SHIFT", LOG_SCALE_SHIFT, ""),
        ("LOG_SCALE_LOG2", LOG_SCALE_LOG2, ""),
        ("LOG_SEGMENTS_LOG2", LOG_SEGMENTS_LOG2, ""),
        ("LOG_COEFF", LOG_COEFF, "round(ln(2) * 2**16)"),
        ("INT8_VALUE_SCALE", INT8_VALUE_SCALE, "ESPHome: (v * 256 + 333) // 666 - 128"),
        ("INT8_VALUE_DIV", INT8_VALUE_DIV, ""),
        ("PMW_INT8_MUL", PMW_INT8_MUL, "pymicro-wakeword: (v * 50215 + 2**16) >> 17 - 128"),
        ("PMW_INT8_SHIFT", PMW_INT8_SHIFT, ""),
    ]
    out = [
        "# Generated by `python -m wakeward.frontend_tables`: do not edit.",
        "# Constant tables of the TFLite Micro audio frontend as microWakeWord and ESPHome",
        "# configure it (30 ms window, 10 ms step, 16 kHz, 40 channels, noise reduction,",
        "# PCAN, log scale), equal to the ones pymicro-features 2.0.2 builds; see",
        "# docs/frontend.md. Tables are little-endian bytes: read them with ptr16/ptr8 in",
        "# viper, or copy them with array.array('h' or 'H', TABLE).",
        "from micropython import const",
        "",
    ]
    for name, value, comment in consts:
        line = f"{name} = const({value})"
        out.append(f"{line}  # {comment}" if comment else line)
    out.append("")
    tables = [
        ("WINDOW", _pack(t.window, "<u2"), f"{t.window_size} x uint16: Hann window, 12-bit"),
        (
            "FFT_PERM",
            _pack(t.fft_perm, "u1"),
            f"{t.fft_size // 2} x uint8: complex input index loaded into each slot before "
            "the radix-4 butterflies",
        ),
        (
            "FFT_TWIDDLES",
            _pack(flat(t.fft_twiddles), "<i2"),
            f"{t.fft_size // 2} x (re, im) int16: exp(-2j*pi*k/{t.fft_size // 2}) * 32767",
        ),
        (
            "FFT_SUPER_TWIDDLES",
            _pack(flat(t.fft_super_twiddles), "<i2"),
            f"{t.fft_size // 4} x (re, im) int16: exp(-1j*pi*((k+1)/{t.fft_size // 2}+.5))"
            " * 32767 (kiss_fftr split)",
        ),
        (
            "FB_BAND_WIDTHS",
            _pack(t.fb_band_widths, "u1"),
            f"{NUM_CHANNELS + 1} x uint8: FFT bins in each band from FB_START_INDEX on; "
            "band b+1 feeds channel b",
        ),
        (
            "FB_WEIGHTS",
            _pack(t.fb_weights, "<u2"),
            f"{len(t.fb_weights)} x uint16: per bin from FB_START_INDEX, weight into its band",
        ),
        (
            "FB_UNWEIGHTS",
            _pack(t.fb_unweights, "<u2"),
            f"{len(t.fb_unweights)} x uint16: per bin, weight into the next band",
        ),
        (
            "PCAN_GAIN_LUT",
            _pack(t.pcan_gain_lut, "<i2"),
            f"{PCAN_LUT_SIZE} x int16: WideDynamicFunction table (lut[x] for x <= 2; "
            "y0, a1, a2 at 4*msb(x)-6)",
        ),
        (
            "LOG_LUT",
            _pack(t.log_lut, "<u2"),
            f"{len(t.log_lut)} x uint16: log2 mantissa correction, 128 segments + padding",
        ),
    ]
    for name, data, comment in tables:
        out.append(_bytes_literal(name, data, comment))
    return "\n".join(out).rstrip("\n") + "\n"


def generate() -> str:
    return render_module(build_tables())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wakeward.frontend_tables",
        description="Write the micro frontend's tables as a MicroPython module.",
    )
    parser.add_argument("-o", "--output", type=Path, default=FIRMWARE_MODULE)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the output file is not up to date"
    )
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.output.read_text() if args.output.is_file() else None
        if current != text:
            print(f"{args.output} is out of date: run python -m wakeward.frontend_tables")
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
