"""Band-limited resampling in numpy (FFT): TTS output to 16 kHz, and speed changes.

`resample(x, src_rate_hz, dst_rate_hz)` changes the sample rate; `change_speed(x, factor)`
plays the audio `factor` times faster (shorter, higher pitched, like a tape at a faster
speed). Both work on the spectrum of the zero-padded signal: it is cut at the lower
Nyquist frequency (a half-cosine taper over the top 5% of the band softens the edge) and
transformed back at the new length. The zero padding keeps the FFT's circular wrap-around
out of the audio. Deterministic: no randomness anywhere.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from wakeward.errors import WakewardError

PAD_SAMPLES = 512  # zeros added on each side (at least) before the transform
TAPER_FRACTION = 0.05  # of the kept band, rolled off with a half cosine when cutting


def _fft_resample(x: np.ndarray, n_out: int) -> np.ndarray:
    """x (zero at both ends) at n_out samples over the same duration."""
    n = len(x)
    spec = np.fft.rfft(x)
    keep = min(len(spec), n_out // 2 + 1)
    out = np.zeros(n_out // 2 + 1, dtype=complex)
    out[:keep] = spec[:keep]
    if keep < len(spec):  # cutting the band: taper its top
        width = max(1, int(TAPER_FRACTION * keep))
        out[keep - width : keep] *= 0.5 * (1 + np.cos(np.pi * (np.arange(width) + 1) / width))
    return np.fft.irfft(out, n_out) * (n_out / n)


def _mono(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise WakewardError(f"resampling needs mono audio, got shape {x.shape}")
    return x


def resample(samples: np.ndarray, src_rate_hz: int, dst_rate_hz: int) -> np.ndarray:
    """Float samples at dst_rate_hz from samples at src_rate_hz (same duration):
    ceil(len * dst / src) samples, the first at the same instant as the input's first."""
    if src_rate_hz <= 0 or dst_rate_hz <= 0:
        raise WakewardError(f"sample rates must be positive: {src_rate_hz} -> {dst_rate_hz} Hz")
    x = _mono(samples)
    if src_rate_hz == dst_rate_hz or len(x) == 0:
        return x.copy()
    g = gcd(src_rate_hz, dst_rate_hz)
    up, down = dst_rate_hz // g, src_rate_hz // g
    pad = down * -(-PAD_SAMPLES // down)  # a multiple of `down`: lands on an output sample
    total = len(x) + 2 * pad
    total += -total % down
    padded = np.zeros(total)
    padded[pad : pad + len(x)] = x
    y = _fft_resample(padded, total * up // down)
    start = pad * up // down
    return y[start : start + -(-len(x) * up // down)]


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Float samples played `factor` times faster (duration / factor, pitch * factor)."""
    if not 0.25 <= factor <= 4.0:
        raise WakewardError(f"speed factor {factor} is outside 0.25..4")
    x = _mono(samples)
    if factor == 1.0 or len(x) == 0:
        return x.copy()
    total = len(x) + 2 * PAD_SAMPLES
    padded = np.zeros(total)
    padded[PAD_SAMPLES : PAD_SAMPLES + len(x)] = x
    y = _fft_resample(padded, int(round(total / factor)))
    start = int(round(PAD_SAMPLES / factor))
    return y[start : start + int(round(len(x) / factor))]
