"""Augmentation in numpy: synthetic noise at an SNR, gain, room reverberation, time shift,
speed. Every random draw comes from the `numpy.random.Generator` passed in, so a clip is
reproduced exactly from its seed; `Augmentation` records what was applied.

Definitions used throughout:

- level in dBFS: `20 log10(rms / 32768)` (a full-scale square wave is 0 dBFS).
- SNR: mean power of the speech over the speech's own span, divided by the mean power of
  the added noise over that same span, in dB.
- RT60: the time the room's energy decay (Schroeder's backward integral of the impulse
  response) takes to fall 60 dB, extrapolated from its -5 to -25 dB stretch (T20).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError

from wakeward_train.resample import change_speed

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
