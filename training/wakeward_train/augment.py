"""Augmentation in numpy: synthetic noise at an SNR, gain, room reverberation, time shift,
speed. Every random draw comes from the `numpy.random.Generator` passed in, so a clip is
reproduced exactly from its seed; `Augmentation` records what was applied. Speaker
augmentation (`speaker_augment`, configured by `SpeakerAugment`): tempo, pitch, vocal tract
length (formants), microphone colouration and early reflections, each a deterministic
function of the samples and drawn parameters.

Definitions used throughout:

- level in dBFS: `20 log10(rms / 32768)` (a full-scale square wave is 0 dBFS).
- SNR: mean power of the speech over the speech's own span, divided by the mean power of
  the added noise over that same span, in dB.
- RT60: the time the room's energy decay (Schroeder's backward integral of the impulse
  response) takes to fall 60 dB, extrapolated from its -5 to -25 dB stretch (T20).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError

from wakeward_train.resample import PAD_SAMPLES, _fft_resample, change_speed

FULL_SCALE = 32768.0
NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")
FLOOR_DBFS = -80.0  # microphone self-noise under every clip (the frontend never sees zeros)
_LN_1E3 = np.log(1000.0)  # amplitude falls by 1000 (60 dB) over one RT60


def power(x: np.ndarray) -> float:
    """Mean square of the samples (0 for none)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x * x)) if len(x) else 0.0


def level_dbfs(x: np.ndarray) -> float:
    p = power(x)
    return 10 * np.log10(p / FULL_SCALE**2) if p > 0 else -np.inf


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """10 log10(power(signal) / power(noise)) over the same span."""
    ps, pn = power(signal), power(noise)
    if pn == 0:
        return np.inf
    return 10 * np.log10(ps / pn)


def _unit(x: np.ndarray) -> np.ndarray:
    p = power(x)
    return x / np.sqrt(p) if p > 0 else x


# -- noises (unit RMS) -------------------------------------------------------------------


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return _unit(rng.standard_normal(n))


def _coloured(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectral density ~ 1 / f**exponent (above 20 Hz)."""
    if n == 0:
        return np.zeros(0)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE_HZ)
    spec *= 1 / np.maximum(f, 20.0) ** (exponent / 2)
    spec[0] = 0
    return _unit(np.fft.irfft(spec, n))


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return _coloured(n, rng, 1.0)


def brown_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return _coloured(n, rng, 2.0)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (50 or 60 Hz and its harmonics to ~1 kHz) over a little pink noise."""
    mains_hz = float(rng.choice([50.0, 60.0]))
    t = np.arange(n) / RATE_HZ
    x = np.zeros(n)
    for k in range(1, int(1000 // mains_hz) + 1):
        amp = rng.uniform(0.3, 1.0) / k ** rng.uniform(0.5, 1.5)
        x += amp * np.sin(2 * np.pi * mains_hz * k * t + rng.uniform(0, 2 * np.pi))
    return _unit(_unit(x) + 0.05 * pink_noise(n, rng))


def babble(
    n: int, rng: np.random.Generator, talkers: Sequence[np.ndarray], voices: int = 5
) -> np.ndarray:
    """Several talkers at once: `voices` speech clips, each looped from a random point."""
    usable = [t for t in talkers if len(t) > 0 and power(t) > 0]
    if not usable:
        raise WakewardError("babble noise needs speech clips to mix (none were given)")
    x = np.zeros(n)
    for _ in range(voices):
        src = _unit(np.asarray(usable[int(rng.integers(len(usable)))], dtype=np.float64))
        reps = int(np.ceil((n + len(src)) / len(src)))
        start = int(rng.integers(len(src)))
        x += np.tile(src, reps)[start : start + n] * rng.uniform(0.5, 1.0)
    return _unit(x)


def make_noise(
    kind: str, n: int, rng: np.random.Generator, talkers: Sequence[np.ndarray] = ()
) -> np.ndarray:
    """Unit-RMS noise of one of NOISE_KINDS."""
    if kind == "white":
        return white_noise(n, rng)
    if kind == "pink":
        return pink_noise(n, rng)
    if kind == "brown":
        return brown_noise(n, rng)
    if kind == "hum":
        return hum(n, rng)
    if kind == "babble":
        return babble(n, rng, talkers)
    raise WakewardError(f"unknown noise kind {kind!r}; known: {', '.join(NOISE_KINDS)}")


def mix_at_snr(
    signal: np.ndarray, noise: np.ndarray, snr_db: float, span: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """signal + noise scaled so that power(signal) / power(noise) over `span` (default:
    all of it) is `snr_db`. Returns (mix, the scaled noise)."""
    s = np.asarray(signal, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    if s.shape != n.shape:
        raise WakewardError(f"signal and noise differ in length: {s.shape} vs {n.shape}")
    a, b = span if span is not None else (0, len(s))
    ps, pn = power(s[a:b]), power(n[a:b])
    if ps == 0 or pn == 0:
        raise WakewardError("cannot set an SNR: the signal or the noise is silent in the span")
    scaled = n * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))
    return s + scaled, scaled


def gain_db(x: np.ndarray, db: float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) * 10 ** (db / 20)


# -- reverberation -----------------------------------------------------------------------


def room_impulse_response(
    rt60_s: float,
    rng: np.random.Generator,
    *,
    drr_db: float = 3.0,
    reflections: int = 8,
    rate_hz: int = RATE_HZ,
) -> np.ndarray:
    """A synthetic room: the direct sound, `reflections` early reflections in the first
    3..30 ms, and a late tail of Gaussian noise decaying exponentially by 60 dB over
    `rt60_s`; the direct sound's energy is `drr_db` above everything after it."""
    if not 0.05 <= rt60_s <= 3.0:
        raise WakewardError(f"rt60_s {rt60_s} is outside 0.05..3 s")
    n = int(round(1.1 * rt60_s * rate_hz)) + 1
    t = np.arange(n) / rate_hz
    envelope = np.exp(-_LN_1E3 * t / rt60_s)
    onset = int(0.003 * rate_hz)
    late = rng.standard_normal(n) * envelope
    late[:onset] = 0.0
    ramp = np.minimum(1.0, np.arange(n) / max(1, int(0.02 * rate_hz)))
    late *= ramp  # the diffuse tail builds up over the first 20 ms
    for _ in range(reflections):
        at = int(rng.integers(onset, int(0.03 * rate_hz)))
        late[at] += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5) * envelope[at] * 4
    reverberant = power(late) * n
    ir = late.copy()
    ir[0] = np.sqrt(reverberant * 10 ** (drr_db / 10))
    return ir / np.sqrt(np.sum(ir * ir))


def measure_rt60(ir: np.ndarray, rate_hz: int = RATE_HZ) -> float:
    """RT60 from Schroeder's energy decay curve, fitted over -5..-25 dB (T20 x 3)."""
    e = np.asarray(ir, dtype=np.float64) ** 2
    edc = np.cumsum(e[::-1])[::-1]
    if edc[0] <= 0:
        raise WakewardError("cannot measure RT60: the impulse response is silent")
    edc_db = 10 * np.log10(np.maximum(edc / edc[0], 1e-30))
    sel = np.flatnonzero((edc_db <= -5) & (edc_db >= -25))
    if len(sel) < 10:
        raise WakewardError("cannot measure RT60: the decay does not reach -25 dB")
    slope_db_per_s, _ = np.polyfit(sel / rate_hz, edc_db[sel], 1)
    return -60.0 / slope_db_per_s


def reverberate(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """x convolved with ir (FFT), cut to len(x), scaled back to x's RMS."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return x.copy()
    size = 1 << int(np.ceil(np.log2(len(x) + len(ir) - 1)))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: len(x)]
    py = power(y)
    return y * np.sqrt(power(x) / py) if py > 0 else y


# -- one clip ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges the per-clip parameters are drawn from (uniformly)."""

    speed_range: tuple[float, float] = (0.9, 1.1)
    reverb_probability: float = 0.5
    rt60_range_s: tuple[float, float] = (0.2, 0.9)
    drr_range_db: tuple[float, float] = (-3.0, 10.0)
    noise_probability: float = 0.8
    noise_kinds: tuple[str, ...] = NOISE_KINDS
    snr_range_db: tuple[float, float] = (0.0, 20.0)
    speech_level_range_dbfs: tuple[float, float] = (-40.0, -15.0)
    lead_range_s: tuple[float, float] = (0.5, 1.0)  # time shift; warms the frontend up
    tail_range_s: tuple[float, float] = (0.1, 0.4)

    def __post_init__(self) -> None:
        for name in (
            "speed_range",
            "rt60_range_s",
            "drr_range_db",
            "snr_range_db",
            "speech_level_range_dbfs",
            "lead_range_s",
            "tail_range_s",
        ):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise WakewardError(f"augmentation {name}: {lo} > {hi}")
        for name in ("reverb_probability", "noise_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise WakewardError(f"augmentation {name}: {getattr(self, name)} not in 0..1")
        for kind in self.noise_kinds:
            if kind not in NOISE_KINDS:
                raise WakewardError(f"augmentation noise_kinds: unknown kind {kind!r}")


@dataclass(frozen=True)
class Augmentation:
    """What one clip got; stored in the manifest."""

    speed: float
    rt60_s: float | None
    drr_db: float | None
    noise: str | None
    snr_db: float | None
    speech_level_dbfs: float
    lead_s: float
    tail_s: float

    def to_json(self) -> dict[str, float | str | None]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def draw(config: AugmentConfig, rng: np.random.Generator, *, babble_ok: bool) -> Augmentation:
    """Random parameters for one clip."""
    kinds = [k for k in config.noise_kinds if babble_ok or k != "babble"]
    reverb = bool(rng.random() < config.reverb_probability)
    noisy = bool(rng.random() < config.noise_probability) and bool(kinds)
    return Augmentation(
        speed=float(rng.uniform(*config.speed_range)),
        rt60_s=float(rng.uniform(*config.rt60_range_s)) if reverb else None,
        drr_db=float(rng.uniform(*config.drr_range_db)) if reverb else None,
        noise=str(kinds[int(rng.integers(len(kinds)))]) if noisy else None,
        snr_db=float(rng.uniform(*config.snr_range_db)) if noisy else None,
        speech_level_dbfs=float(rng.uniform(*config.speech_level_range_dbfs)),
        lead_s=float(rng.uniform(*config.lead_range_s)),
        tail_s=float(rng.uniform(*config.tail_range_s)),
    )


@dataclass(frozen=True)
class AugmentedClip:
    samples: np.ndarray  # int16
    speech_start: int  # sample where the (sped-up or slowed) speech starts
    speech_end: int  # ... and ends
    gain_db: float  # the gain finally applied (lowered where the mix would clip)


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def apply(
    speech: np.ndarray,
    aug: Augmentation,
    rng: np.random.Generator,
    talkers: Sequence[np.ndarray] = (),
) -> AugmentedClip:
    """Speed, placement (lead/tail), reverberation, noise at the SNR, level; int16 out."""
    s = change_speed(np.asarray(speech, dtype=np.float64), aug.speed)
    if power(s) == 0:
        raise WakewardError("cannot augment silence as speech")
    lead, tail = int(aug.lead_s * RATE_HZ), int(aug.tail_s * RATE_HZ)
    x = np.concatenate([np.zeros(lead), s, np.zeros(tail)])
    span = (lead, lead + len(s))
    if aug.rt60_s is not None:
        ir = room_impulse_response(aug.rt60_s, rng, drr_db=aug.drr_db or 0.0)
        x = reverberate(x, ir)
    gain = aug.speech_level_dbfs - level_dbfs(x[span[0] : span[1]])
    if aug.noise is not None and aug.snr_db is not None:
        x, _ = mix_at_snr(x, make_noise(aug.noise, len(x), rng, talkers), aug.snr_db, span)
    peak = float(np.max(np.abs(x))) * 10 ** (gain / 20)
    if peak > 32000:
        gain -= 20 * np.log10(peak / 32000)
    floor = white_noise(len(x), rng) * FULL_SCALE * 10 ** (FLOOR_DBFS / 20)
    return AugmentedClip(_to_int16(gain_db(x, gain) + floor), span[0], span[1], float(gain))


def background_clip(
    kind: str,
    duration_s: float,
    noise_level_dbfs: float,
    rng: np.random.Generator,
    talkers: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """A clip of noise alone (kind "silence": the microphone floor only), int16."""
    n = int(duration_s * RATE_HZ)
    floor = white_noise(n, rng) * FULL_SCALE * 10 ** (FLOOR_DBFS / 20)
    if kind == "silence":
        return _to_int16(floor)
    x = make_noise(kind, n, rng, talkers) * FULL_SCALE * 10 ** (noise_level_dbfs / 20)
    return _to_int16(x + floor)


# -- speaker augmentation ----------------------------------------------------------------
#
# Voices the TTS engines never made: the same speech from a longer or shorter vocal tract
# (formants moved, pitch kept), at another pitch (formants kept), at another tempo (pitch
# kept), through another microphone (EQ, saturation) and near a desk or wall (a few early
# reflections). Each part is a deterministic function of the samples and its parameters;
# the parameters come from a `draw_*` function and the clip's generator. All of them take
# 16 kHz float or int16 samples and return float64 in the same scale, at the input's RMS
# and never peaking above the input's peak; only the tempo changes the length.

SPEAKER_PARTS = ("tempo", "pitch", "vtlp", "mic", "room")
# the parts a dataset gets unless told otherwise: early reflections ("room") made the
# held-out-engine folds worse (training/README.md, the ablation), so they are left out
DEFAULT_SPEAKER_PARTS = ("tempo", "pitch", "vtlp", "mic")
SEMITONES_PER_OCTAVE = 12.0

# WSOLA (tempo, and the stretch under a pitch shift): 32 ms Hann frames at 50% overlap,
# each placed within +-10 ms of its nominal input position where it best continues the
# last one (a +-10 ms search covers a pitch period down to 50 Hz).
WSOLA_FRAME_SAMPLES = 512
WSOLA_HOP_SAMPLES = WSOLA_FRAME_SAMPLES // 2
WSOLA_TOLERANCE_SAMPLES = 160
STRETCH_LIMITS = (0.5, 2.0)  # duration factors the stretch accepts

# The resampling under a pitch shift picks transform lengths numpy's FFT does fast: the
# output a multiple of FFT_BLOCK_SAMPLES, the input round(output * factor) with no prime
# factor above FAST_PRIME if one of the next FFT_LENGTH_TRIES blocks gives that (the
# factor is then exact to 1 / (2 * output length), a few parts in 10^5).
FFT_BLOCK_SAMPLES = 256
FAST_PRIME = 7
FFT_LENGTH_TRIES = 32

# The spectral envelope warp (formants): 32 ms Hann frames every 8 ms; per frame an LPC
# envelope (order 18: nine resonances below 8 kHz), moved along the frequency axis and
# applied as a gain to the frame's spectrum, whose harmonics (the pitch) stay where they are.
STFT_SAMPLES = 512
STFT_HOP_SAMPLES = 128
LPC_ORDER = 18
LPC_FLOOR_DB = -100.0  # a silent frame's power, relative to the loudest frame's
MAX_ENVELOPE_GAIN_DB = 24.0  # the envelope warp's gain is clamped to +-this
WARP_LIMITS = (0.5, 2.0)  # formant factors the warp accepts
PITCH_LIMITS_SEMITONES = (-12.0, 12.0)

# The microphone: Butterworth magnitude responses for the cuts, bell-shaped peaking bands
# (gain_db at the centre, half of it in dB bandwidth_octaves / 2 either side), zero phase,
# applied in the frequency domain over the clip padded against wrap-around.
LOW_CUT_ORDER = 2  # 12 dB per octave below the low cut
HIGH_CUT_ORDER = 4  # 24 dB per octave above the high roll-off
FILTER_PAD_SAMPLES = 2048
MIN_RESPONSE_HZ = 1.0  # the response at 0 Hz is taken at this frequency (the low cut's -inf)

# Early reflections only: a desk, a wall, a shelf within a few metres.
MAX_REFLECTION_DELAY_MS = 50.0
VOICE_DIGITS = 6  # recorded tempo, pitch and formant factors: enough to redo the length


def _samples(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise WakewardError(f"speaker augmentation needs mono audio, got shape {x.shape}")
    return x


def _keep_scale(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y at x's RMS, then lowered if its peak would exceed x's peak (no new clipping)."""
    py, px = power(y), power(x)
    if py == 0 or px == 0:
        return y
    y = y * np.sqrt(px / py)
    peak_y, peak_x = float(np.max(np.abs(y))), float(np.max(np.abs(x)))
    return y * (peak_x / peak_y) if peak_y > peak_x else y


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """y cut or zero-padded to n samples."""
    return y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y))])


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def _check(name: str, value: float, limits: tuple[float, float]) -> None:
    if not limits[0] <= value <= limits[1]:
        raise WakewardError(f"{name} {value} is outside {limits[0]}..{limits[1]}")


def _wsola(x: np.ndarray, stretch: float) -> np.ndarray:
    """x lasting `stretch` times as long at the same pitch (waveform-similarity
    overlap-add): round(len(x) * stretch) samples."""
    _check("stretch factor", stretch, STRETCH_LIMITS)
    n_out = int(round(len(x) * stretch))
    if stretch == 1.0 or len(x) == 0:
        return _fit(x.copy(), n_out)
    frame, hop, tol = WSOLA_FRAME_SAMPLES, WSOLA_HOP_SAMPLES, WSOLA_TOLERANCE_SAMPLES
    pad = 2 * frame + tol
    xp = np.zeros(len(x) + 2 * pad + frame)
    xp[pad : pad + len(x)] = x
    window = _periodic_hann(frame)  # sums to 1 at 50% overlap
    frames = (n_out + frame) // hop + 1
    out = np.zeros(frames * hop + frame)  # out[frame + i] is output sample i
    natural = 0
    for k in range(frames):
        centre_out = k * hop + frame / 2 - frame  # in output samples
        nominal = int(round(pad + centre_out / stretch - frame / 2))
        start = nominal
        if k > 0:
            corr = np.correlate(
                xp[nominal - tol : nominal + tol + frame], xp[natural : natural + frame], "valid"
            )
            best = int(np.argmax(corr))
            if corr[best] > 0:  # silence: stay on the nominal position
                start = nominal - tol + best
        out[k * hop : k * hop + frame] += window * xp[start : start + frame]
        natural = start + hop
    return out[frame : frame + n_out]


def _largest_prime_factor(n: int) -> int:
    largest, p = 1, 2
    while p * p <= n:
        while n % p == 0:
            largest, n = p, n // p
        p += 1
    return max(largest, n)


def _resample_by(y: np.ndarray, factor: float) -> np.ndarray:
    """y played `factor` times faster (band-limited, like resample.change_speed), about
    len(y) / factor samples, through transform lengths that are fast."""
    first = -(-int(np.ceil((len(y) + 2 * PAD_SAMPLES) / factor + 1)) // FFT_BLOCK_SAMPLES)
    best: tuple[int, int, int] | None = None
    for k in range(first, first + FFT_LENGTH_TRIES):
        n_out = k * FFT_BLOCK_SAMPLES
        n_in = int(round(n_out * factor))
        cost = _largest_prime_factor(n_in)
        if best is None or cost < best[0]:
            best = (cost, n_in, n_out)
        if cost <= FAST_PRIME:
            break
    _, n_in, n_out = best if best is not None else (0, 0, 0)
    padded = np.zeros(n_in)
    padded[PAD_SAMPLES : PAD_SAMPLES + len(y)] = y
    start = int(round(PAD_SAMPLES * n_out / n_in))
    return _fft_resample(padded, n_out)[start : start + int(round(len(y) / factor))]


def _stft(x: np.ndarray) -> np.ndarray:
    """Hann-windowed frames of x, zero-padded by a frame each side: (frames, bins)."""
    xp = np.concatenate([np.zeros(STFT_SAMPLES), x, np.zeros(2 * STFT_SAMPLES)])
    view = np.lib.stride_tricks.sliding_window_view(xp, STFT_SAMPLES)[::STFT_HOP_SAMPLES]
    count = (len(x) + STFT_SAMPLES) // STFT_HOP_SAMPLES + 1
    return np.fft.rfft(view[:count] * _periodic_hann(STFT_SAMPLES), axis=1)


def _istft(spec: np.ndarray, n: int) -> np.ndarray:
    """Weighted overlap-add of _stft's frames back into n samples."""
    window = _periodic_hann(STFT_SAMPLES)
    frames = np.fft.irfft(spec, STFT_SAMPLES, axis=1) * window
    count, parts = len(frames), STFT_SAMPLES // STFT_HOP_SAMPLES
    out = np.zeros((count + parts) * STFT_HOP_SAMPLES)
    norm = np.zeros_like(out)
    chunks = frames.reshape(count, parts, STFT_HOP_SAMPLES)
    weights = np.broadcast_to((window * window).reshape(parts, STFT_HOP_SAMPLES), chunks.shape)
    for j in range(parts):
        at = j * STFT_HOP_SAMPLES
        out[at : at + count * STFT_HOP_SAMPLES] += chunks[:, j].reshape(-1)
        norm[at : at + count * STFT_HOP_SAMPLES] += weights[:, j].reshape(-1)
    out = out[STFT_SAMPLES : STFT_SAMPLES + n]
    return out / np.maximum(norm[STFT_SAMPLES : STFT_SAMPLES + n], np.finfo(float).tiny)


def _lpc_log_envelope(spec: np.ndarray) -> np.ndarray:
    """Each frame's LPC envelope, as log magnitude (up to a constant) per bin."""
    acf = np.fft.irfft(np.abs(spec) ** 2, STFT_SAMPLES, axis=1)[:, : LPC_ORDER + 1]
    floor = max(float(np.max(acf[:, 0])), np.finfo(float).tiny) * 10 ** (LPC_FLOOR_DB / 10)
    acf[:, 0] += floor  # silent frames get a flat envelope; all stay well conditioned
    a = np.zeros((len(acf), LPC_ORDER + 1))
    a[:, 0] = 1.0
    err = acf[:, 0].copy()
    for i in range(1, LPC_ORDER + 1):  # Levinson-Durbin, every frame at once
        k = -(acf[:, i] + np.sum(a[:, 1:i] * acf[:, i - 1 : 0 : -1], axis=1)) / err
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1 : 0 : -1]
        a[:, i] = k
        err *= 1.0 - k * k
    return -np.log(np.maximum(np.abs(np.fft.rfft(a, STFT_SAMPLES, axis=1)), 1e-12))


def _warp_envelope(x: np.ndarray, alpha: float) -> np.ndarray:
    """x with each frame's spectral envelope stretched along frequency by alpha (a
    formant at F moves to alpha F); the fine structure (the harmonics) stays."""
    _check("formant factor", alpha, WARP_LIMITS)
    if alpha == 1.0 or len(x) == 0:
        return x.copy()
    spec = _stft(x)
    env = _lpc_log_envelope(spec)
    bins = env.shape[1]
    src = np.minimum(np.arange(bins) / alpha, bins - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, bins - 1)
    w = src - i0
    warped = env[:, i0] * (1 - w) + env[:, i1] * w
    limit = MAX_ENVELOPE_GAIN_DB / 20 * np.log(10)
    return _istft(spec * np.exp(np.clip(warped - env, -limit, limit)), len(x))


def _voice(x: np.ndarray, tempo: float, pitch: float, alpha: float) -> np.ndarray:
    """Tempo (duration / tempo), pitch (F0 * pitch) and formants (* alpha) at once: one
    stretch, one resampling and one envelope warp."""
    n_out = int(round(len(x) / tempo))
    y = x
    stretch = pitch / tempo
    if stretch != 1.0:
        y = _wsola(y, stretch)
    if pitch != 1.0:
        y = _resample_by(y, pitch)  # F0 and formants * pitch, back to the duration
    warp = alpha / pitch  # formants to alpha times where they were
    if abs(warp - 1.0) > 1e-9:
        y = _warp_envelope(y, warp)
    return _fit(y, n_out)


def change_tempo(samples: np.ndarray, factor: float) -> np.ndarray:
    """The speech `factor` times faster (round(len / factor) samples) at the same pitch
    and formants (WSOLA)."""
    x = _samples(samples)
    return _keep_scale(_voice(x, factor, 1.0, 1.0), x)


def shift_pitch(samples: np.ndarray, semitones: float) -> np.ndarray:
    """The speech `semitones` higher (F0 * 2**(semitones/12)), same length and formants:
    a WSOLA stretch, resampling back to the length, and the envelope moved back. A shift
    up loses the top of the band (above 8 kHz / factor), a shift down likewise."""
    _check("pitch shift (semitones)", semitones, PITCH_LIMITS_SEMITONES)
    x = _samples(samples)
    return _keep_scale(_voice(x, 1.0, 2 ** (semitones / SEMITONES_PER_OCTAVE), 1.0), x)


def warp_formants(samples: np.ndarray, alpha: float) -> np.ndarray:
    """Vocal tract length perturbation: formants at alpha times their frequency (alpha > 1:
    a shorter tract), same pitch and length."""
    x = _samples(samples)
    return _keep_scale(_voice(x, 1.0, 1.0, alpha), x)


@dataclass(frozen=True)
class MicColour:
    """One microphone's colouration: low cut, high roll-off, peaking bands
    (centre_hz, gain_db, bandwidth_octaves), and a soft saturation drive (None: linear)."""

    low_cut_hz: float
    high_cut_hz: float
    peaks: tuple[tuple[float, float, float], ...] = ()
    saturation_drive: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.low_cut_hz < self.high_cut_hz < RATE_HZ / 2:
            raise WakewardError(
                f"microphone cuts must satisfy 0 < low {self.low_cut_hz} < high "
                f"{self.high_cut_hz} < {RATE_HZ / 2} Hz"
            )
        for centre_hz, _, bandwidth_octaves in self.peaks:
            if centre_hz <= 0 or bandwidth_octaves <= 0:
                raise WakewardError(f"microphone peak {centre_hz} Hz / {bandwidth_octaves} oct")
        if self.saturation_drive is not None and self.saturation_drive <= 0:
            raise WakewardError(f"saturation drive {self.saturation_drive} must be positive")

    def to_json(self) -> dict[str, object]:
        return {
            "low_cut_hz": round(self.low_cut_hz, 2),
            "high_cut_hz": round(self.high_cut_hz, 2),
            "peaks": [[round(v, 4) for v in p] for p in self.peaks],
            "saturation_drive": _round(self.saturation_drive),
        }


def mic_response_db(mic: MicColour, freqs_hz: np.ndarray) -> np.ndarray:
    """The microphone's designed magnitude response (dB) at the frequencies."""
    f = np.maximum(np.asarray(freqs_hz, dtype=np.float64), MIN_RESPONSE_HZ)
    db = -10 * np.log10(1 + (mic.low_cut_hz / f) ** (2 * LOW_CUT_ORDER))
    db -= 10 * np.log10(1 + (f / mic.high_cut_hz) ** (2 * HIGH_CUT_ORDER))
    for centre_hz, gain, bandwidth_octaves in mic.peaks:
        db += gain * 2.0 ** (-((2 * np.log2(f / centre_hz) / bandwidth_octaves) ** 2))
    return db


def colour_mic(samples: np.ndarray, mic: MicColour) -> np.ndarray:
    """The samples through the microphone's EQ (zero phase) and, with a drive, a soft
    saturation: peak * tanh(drive * y / peak) / tanh(drive)."""
    x = _samples(samples)
    if len(x) == 0:
        return x.copy()
    size = 1 << int(np.ceil(np.log2(len(x) + 2 * FILTER_PAD_SAMPLES)))
    padded = np.zeros(size)
    padded[FILTER_PAD_SAMPLES : FILTER_PAD_SAMPLES + len(x)] = x
    gain = 10 ** (mic_response_db(mic, np.fft.rfftfreq(size, 1 / RATE_HZ)) / 20)
    y = np.fft.irfft(np.fft.rfft(padded) * gain, size)[
        FILTER_PAD_SAMPLES : FILTER_PAD_SAMPLES + len(x)
    ]
    peak = float(np.max(np.abs(y)))
    if mic.saturation_drive is not None and peak > 0:
        drive = mic.saturation_drive
        y = peak * np.tanh(drive * y / peak) / np.tanh(drive)
    return _keep_scale(y, x)


@dataclass(frozen=True)
class EarlyRoom:
    """A few early reflections (delay_ms, gain) after the direct sound, and nothing else:
    a desk, a near wall, a small room's first bounces."""

    reflections: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        for delay_ms, _ in self.reflections:
            if not 0 < delay_ms <= MAX_REFLECTION_DELAY_MS:
                raise WakewardError(
                    f"reflection delay {delay_ms} ms is outside 0..{MAX_REFLECTION_DELAY_MS}"
                )

    def to_json(self) -> dict[str, object]:
        return {"reflections": [[round(d, 3), round(g, 4)] for d, g in self.reflections]}


def early_room_impulse_response(room: EarlyRoom) -> np.ndarray:
    """1 at 0, each reflection's gain at its delay (nearest sample, at least 1)."""
    delays = [max(1, int(round(d * RATE_HZ / 1000))) for d, _ in room.reflections]
    ir = np.zeros(max(delays, default=0) + 1)
    ir[0] = 1.0
    for at, (_, gain) in zip(delays, room.reflections, strict=True):
        ir[at] += gain
    return ir


def early_room(samples: np.ndarray, room: EarlyRoom) -> np.ndarray:
    """The samples with the room's early reflections (comb filtering), same length."""
    x = _samples(samples)
    return _keep_scale(reverberate(x, early_room_impulse_response(room)), x)


def _round(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(v, digits)


_PART_PROBABILITY = {part: f"{part}_probability" for part in SPEAKER_PARTS}


def _known_parts(parts: Sequence[str]) -> None:
    for part in parts:
        if part not in SPEAKER_PARTS:
            raise WakewardError(
                f"unknown speaker augmentation part {part!r}; known: {', '.join(SPEAKER_PARTS)}"
            )


@dataclass(frozen=True)
class SpeakerAugment:
    """Probabilities and ranges (uniform draws; peak centres log-uniform) of the speaker
    augmentation's parts. A part with probability 0 is off."""

    tempo_probability: float = 0.5
    tempo_range: tuple[float, float] = (0.85, 1.2)
    pitch_probability: float = 0.5
    pitch_range_semitones: tuple[float, float] = (-4.0, 4.0)
    vtlp_probability: float = 0.5
    vtlp_range: tuple[float, float] = (0.85, 1.18)
    mic_probability: float = 0.5
    low_cut_range_hz: tuple[float, float] = (80.0, 300.0)
    high_cut_range_hz: tuple[float, float] = (3500.0, 7500.0)
    peak_count_range: tuple[int, int] = (1, 3)
    peak_centre_range_hz: tuple[float, float] = (300.0, 6000.0)
    peak_gain_range_db: tuple[float, float] = (-6.0, 6.0)
    peak_bandwidth_range_octaves: tuple[float, float] = (0.5, 2.0)
    saturation_probability: float = 0.2  # of the clips that get a microphone
    saturation_drive_range: tuple[float, float] = (1.0, 3.0)
    room_probability: float = 0.3
    reflection_count_range: tuple[int, int] = (1, 4)
    reflection_delay_range_ms: tuple[float, float] = (0.5, 15.0)
    reflection_gain_range: tuple[float, float] = (0.1, 0.7)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name.endswith("_probability") and not 0.0 <= value <= 1.0:
                raise WakewardError(f"speaker augmentation {name}: {value} not in 0..1")
            if name.endswith("_range") or "_range_" in name:
                lo, hi = value
                if lo > hi:
                    raise WakewardError(f"speaker augmentation {name}: {lo} > {hi}")
        _check("tempo", self.tempo_range[0], STRETCH_LIMITS)
        _check("tempo", self.tempo_range[1], STRETCH_LIMITS)
        for semitones in self.pitch_range_semitones:
            _check("pitch shift (semitones)", semitones, PITCH_LIMITS_SEMITONES)
        for alpha in self.vtlp_range:
            _check("formant factor", alpha, WARP_LIMITS)
        if not 0 < self.low_cut_range_hz[0] <= self.low_cut_range_hz[1] < self.high_cut_range_hz[0]:
            raise WakewardError("speaker augmentation: the low cuts must lie below the high cuts")
        if self.high_cut_range_hz[1] >= RATE_HZ / 2:
            raise WakewardError(f"speaker augmentation: high cuts must be below {RATE_HZ / 2} Hz")
        if self.peak_centre_range_hz[0] <= 0 or self.peak_bandwidth_range_octaves[0] <= 0:
            raise WakewardError(
                "speaker augmentation: peak centres and bandwidths must be positive"
            )
        if self.peak_count_range[0] < 0 or self.reflection_count_range[0] < 0:
            raise WakewardError("speaker augmentation: counts cannot be negative")
        if not 0 < self.reflection_delay_range_ms[0] <= self.reflection_delay_range_ms[1]:
            raise WakewardError("speaker augmentation: reflection delays must be positive")
        if self.reflection_delay_range_ms[1] > MAX_REFLECTION_DELAY_MS:
            raise WakewardError(
                f"speaker augmentation: reflections later than {MAX_REFLECTION_DELAY_MS} ms"
                " are reverberation (AugmentConfig's rooms)"
            )

    @classmethod
    def off(cls) -> SpeakerAugment:
        """Every part off (speaker_augment returns the samples as they were)."""
        return cls.only()

    @classmethod
    def only(cls, *parts: str) -> SpeakerAugment:
        """The defaults with every part but `parts` off."""
        _known_parts(parts)
        return cls().without(*(p for p in SPEAKER_PARTS if p not in parts))

    def without(self, *parts: str) -> SpeakerAugment:
        """This config with `parts` off (e.g. leave-one-out ablations)."""
        _known_parts(parts)
        off: dict[str, Any] = {_PART_PROBABILITY[p]: 0.0 for p in parts}
        return replace(self, **off)

    @classmethod
    def parse(cls, spec: str) -> SpeakerAugment:
        """'none', 'all', 'default' (DEFAULT_SPEAKER_PARTS) or a comma list of SPEAKER_PARTS
        (the --speaker-augment option)."""
        words = [w.strip() for w in spec.lower().split(",") if w.strip()]
        if words == ["none"]:
            return cls.off()
        if words == ["all"]:
            return cls()
        if words == ["default"]:
            return cls.only(*DEFAULT_SPEAKER_PARTS)
        unknown = [w for w in words if w not in SPEAKER_PARTS]
        if unknown or not words:
            raise WakewardError(
                f"--speaker-augment {spec!r}: say none, all, default or some of "
                f"{','.join(SPEAKER_PARTS)} (comma-separated)"
            )
        return cls.only(*words)

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts that are on."""
        return tuple(p for p in SPEAKER_PARTS if getattr(self, _PART_PROBABILITY[p]) > 0)

    def to_json(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class SpeakerDraw:
    """What one clip gets (None: that part is not applied)."""

    tempo: float | None = None
    pitch_semitones: float | None = None
    vtlp_alpha: float | None = None
    mic: MicColour | None = None
    room: EarlyRoom | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "tempo": _round(self.tempo, VOICE_DIGITS),
            "pitch_semitones": _round(self.pitch_semitones, VOICE_DIGITS),
            "vtlp_alpha": _round(self.vtlp_alpha, VOICE_DIGITS),
            "mic": None if self.mic is None else self.mic.to_json(),
            "room": None if self.room is None else self.room.to_json(),
        }


def draw_tempo(config: SpeakerAugment, rng: np.random.Generator) -> float:
    return float(rng.uniform(*config.tempo_range))


def draw_pitch(config: SpeakerAugment, rng: np.random.Generator) -> float:
    return float(rng.uniform(*config.pitch_range_semitones))


def draw_vtlp(config: SpeakerAugment, rng: np.random.Generator) -> float:
    return float(rng.uniform(*config.vtlp_range))


def draw_mic(config: SpeakerAugment, rng: np.random.Generator) -> MicColour:
    low = float(rng.uniform(*config.low_cut_range_hz))
    high = float(rng.uniform(*config.high_cut_range_hz))
    count = int(rng.integers(config.peak_count_range[0], config.peak_count_range[1] + 1))
    log_lo, log_hi = np.log(config.peak_centre_range_hz)
    peaks = tuple(
        (
            float(np.exp(rng.uniform(log_lo, log_hi))),
            float(rng.uniform(*config.peak_gain_range_db)),
            float(rng.uniform(*config.peak_bandwidth_range_octaves)),
        )
        for _ in range(count)
    )
    saturate = bool(rng.random() < config.saturation_probability)
    drive = float(rng.uniform(*config.saturation_drive_range))
    return MicColour(low, high, peaks, drive if saturate else None)


def draw_early_room(config: SpeakerAugment, rng: np.random.Generator) -> EarlyRoom:
    lo, hi = config.reflection_count_range
    count = int(rng.integers(lo, hi + 1))
    delays = np.sort(rng.uniform(*config.reflection_delay_range_ms, size=count))
    gains = rng.uniform(*config.reflection_gain_range, size=count)
    return EarlyRoom(tuple((float(d), float(g)) for d, g in zip(delays, gains, strict=True)))


def draw_speaker(config: SpeakerAugment, rng: np.random.Generator) -> SpeakerDraw:
    """One clip's speaker augmentation. Every part's coin and parameters are drawn
    whatever the probabilities, so a part gets the same parameters from a given generator
    whichever other parts are on (ablations compare like with like)."""
    coins = rng.random(len(SPEAKER_PARTS))
    on = {
        p: bool(coins[i] < getattr(config, _PART_PROBABILITY[p]))
        for i, p in enumerate(SPEAKER_PARTS)
    }
    tempo, pitch, alpha = draw_tempo(config, rng), draw_pitch(config, rng), draw_vtlp(config, rng)
    mic, room = draw_mic(config, rng), draw_early_room(config, rng)
    return SpeakerDraw(
        tempo=tempo if on["tempo"] else None,
        pitch_semitones=pitch if on["pitch"] else None,
        vtlp_alpha=alpha if on["vtlp"] else None,
        mic=mic if on["mic"] else None,
        room=room if on["room"] and room.reflections else None,
    )


def apply_speaker(samples: np.ndarray, draw: SpeakerDraw) -> np.ndarray:
    """The draw applied: the voice (tempo, pitch, formants: one stretch, one resampling,
    one envelope warp), then the early reflections, then the microphone. Float64 at the
    input's RMS, never above its peak; round(len / tempo) samples."""
    x = _samples(samples)
    y = x
    tempo = draw.tempo if draw.tempo is not None else 1.0
    pitch = 1.0
    if draw.pitch_semitones is not None:
        _check("pitch shift (semitones)", draw.pitch_semitones, PITCH_LIMITS_SEMITONES)
        pitch = 2 ** (draw.pitch_semitones / SEMITONES_PER_OCTAVE)
    alpha = draw.vtlp_alpha if draw.vtlp_alpha is not None else 1.0
    if (tempo, pitch, alpha) != (1.0, 1.0, 1.0):
        y = _voice(y, tempo, pitch, alpha)
    if draw.room is not None:
        y = reverberate(y, early_room_impulse_response(draw.room))
    if draw.mic is not None:
        y = colour_mic(y, draw.mic)
    return _keep_scale(y, x) if y is not x else x.copy()


def speaker_augment(
    samples: np.ndarray, rng: np.random.Generator, config: SpeakerAugment | None = None
) -> tuple[np.ndarray, dict[str, object]]:
    """Draw and apply one clip's speaker augmentation: (float64 samples, the manifest
    record of what was applied)."""
    draw = draw_speaker(config if config is not None else SpeakerAugment(), rng)
    return apply_speaker(samples, draw), draw.to_json()
