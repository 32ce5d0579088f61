"""Everyday audio for the long negative streams: a home's sounds, scene after scene, made
from a pool of held-out speech and synthetic noise and music (numpy only, seeded).

A stream is a sequence of scenes of 5 to 40 s, each drawn by its share of the time:

- speech: one talker, utterance after utterance with pauses and level changes;
- conversation: two or three talkers taking turns, each at their own distance (level);
- tv: one or two talkers over music-like chords (speech over music, as a TV or radio);
- babble: several talkers at once (a party, a cafe), sometimes with a talker over it;
- music: chords alone (a melody, a bass line, chords, now and then a hi-hat);
- noise: white, pink, brown, mains hum or a fan (broadband noise, a blade tone, wobble);
- quiet: room tone (faint pink or brown noise) or silence (the microphone floor only).

Each scene gets its own level (dBFS, `level_dbfs` of augment.py), reverberation in a
synthetic room (augment.room_impulse_response) with some probability, and for the talking
scenes background noise at an SNR; every use of an utterance gets its own speed and gain,
so a pool of unique speech serves hours without repeating a sound exactly. Scenes join
with short fades; the -80 dBFS microphone floor runs under everything (augment.FLOOR_DBFS).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError

from wakeward_train import augment
from wakeward_train.resample import change_speed

SCENE_SHARES = {
    "speech": 0.22,
    "conversation": 0.16,
    "tv": 0.14,
    "babble": 0.1,
    "music": 0.1,
    "noise": 0.13,
    "quiet": 0.15,
}
SCENE_RANGE_S = (5.0, 40.0)
FADE_S = 0.05
TALK_LEVEL_RANGE_DBFS = (-45.0, -18.0)  # the talkers' level over their speech
BACKGROUND_LEVEL_RANGE_DBFS = (-55.0, -25.0)  # babble and music alone
NOISE_LEVEL_RANGE_DBFS = (-65.0, -30.0)
ROOM_TONE_RANGE_DBFS = (-75.0, -58.0)
SPEECH_SNR_RANGE_DB = (5.0, 30.0)  # background noise under talking scenes
TV_MUSIC_SNR_RANGE_DB = (0.0, 15.0)  # speech over the music
BABBLE_FOREGROUND_SNR_RANGE_DB = (0.0, 10.0)
BACKGROUND_NOISE_PROBABILITY = 0.6
REVERB_PROBABILITY = 0.6
RT60_RANGE_S = (0.2, 0.9)
DRR_RANGE_DB = (-3.0, 10.0)
TALKERS_RANGE = {"speech": (1, 1), "conversation": (2, 3), "tv": (1, 2)}
PAUSE_RANGE_S = (0.15, 1.5)  # between one talker's utterances
TURN_GAP_RANGE_S = (0.05, 0.8)  # between turns in a conversation
UTTERANCE_GAIN_RANGE_DB = (-4.0, 4.0)
TALKER_OFFSET_RANGE_DB = (-8.0, 0.0)  # a conversation's talkers at their distances
SPEED_RANGE = (0.92, 1.08)
BABBLE_TALKERS_RANGE = (3, 8)
BABBLE_FOREGROUND_PROBABILITY = 0.5  # a talker over the babble
SILENCE_PROBABILITY = 0.5  # of a quiet scene: the microphone floor alone, else room tone
NOISES = ("white", "pink", "brown", "hum", "fan")
# music
CHORD_RANGE_S = (0.4, 2.0)
A4_HZ = 440.0  # MIDI note 69
A4_MIDI = 69
OCTAVE = 12  # semitones: chords an octave above the root, the bass one below, a melody two above
ROOTS_MIDI = (45, 47, 48, 50, 52, 53, 55, 57)  # A2..A3
CHORD_INTERVALS = ((0, 4, 7), (0, 3, 7), (0, 4, 7, 11), (0, 3, 7, 10), (0, 5, 7))
HARMONICS = 6
ROLLOFF_RANGE = (0.8, 2.0)  # harmonic h at 1 / h**rolloff
ATTACK_RANGE_S = (0.005, 0.05)
PLUCKED_PROBABILITY = 0.5  # else a held note
DECAY_RANGE_S = (0.2, 1.0)  # a plucked note's exponential decay time constant
BASS_GAIN = 1.5
MELODY_GAIN = 0.8
HIHAT_GAIN = 2.0
HIHAT_PROBABILITY = 0.4
HIHAT_S = 0.04
HIHAT_DECAY_FRACTION = 0.25  # of its length: the burst's exponential time constant
# fan
FAN_BLADE_RANGE_HZ = (30.0, 120.0)
FAN_WOBBLE_RANGE_HZ = (0.2, 1.5)
FAN_BLADE_HARMONICS = 3
FAN_PINK = 0.5  # mixed with unit-RMS brown noise at these amplitudes
FAN_TONE = 0.3
FAN_WOBBLE_DEPTH = 0.15
PEAK_LIMIT = 32000.0  # a stream is turned down where it would clip


@dataclass(frozen=True)
class Utterance:
    samples: np.ndarray  # int16, trimmed to the speech
    voice: str  # engine:name


@dataclass
class Composition:
    """What a stream is made of: seconds and scenes per kind, and the noises used."""

    seconds: dict[str, float] = field(default_factory=dict)
    scenes: Counter[str] = field(default_factory=Counter)
    noises: Counter[str] = field(default_factory=Counter)
    reverberant_s: float = 0.0
    utterances_used: int = 0

    def add(self, other: Composition) -> None:
        for kind, secs in other.seconds.items():
            self.seconds[kind] = self.seconds.get(kind, 0.0) + secs
        self.scenes.update(other.scenes)
        self.noises.update(other.noises)
        self.reverberant_s += other.reverberant_s
        self.utterances_used += other.utterances_used

    def to_json(self) -> dict[str, object]:
        return {
            "seconds": {k: round(v, 1) for k, v in sorted(self.seconds.items())},
            "scenes": dict(sorted(self.scenes.items())),
            "noises": dict(sorted(self.noises.items())),
            "reverberant_s": round(self.reverberant_s, 1),
            "utterances_used": self.utterances_used,
        }


def _db(x: float) -> float:
    return float(10 ** (x / 20))


def unit(x: np.ndarray) -> np.ndarray:
    """x scaled to an RMS of 1 (silence stays silence)."""
    p = augment.power(x)
    return x / np.sqrt(p) if p > 0 else x


def _at_level(x: np.ndarray, level_dbfs: float, mask: np.ndarray | None = None) -> np.ndarray:
    """x scaled so its RMS (over `mask`, default all) is level_dbfs."""
    p = augment.power(x[mask] if mask is not None else x)
    if p == 0:
        return x
    return x * (augment.FULL_SCALE * _db(level_dbfs) / np.sqrt(p))


# -- synthetic sounds (unit RMS) ---------------------------------------------------------


def _tone(freq_hz: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """A note with HARMONICS harmonics, brightness and phase drawn at random."""
    t = np.arange(n) / RATE_HZ
    rolloff = rng.uniform(*ROLLOFF_RANGE)
    x = np.zeros(n)
    for h in range(1, HARMONICS + 1):
        if freq_hz * h >= RATE_HZ / 2:
            break
        x += np.sin(2 * np.pi * freq_hz * h * t + rng.uniform(0, 2 * np.pi)) / h**rolloff
    return x


def _envelope(n: int, rng: np.random.Generator) -> np.ndarray:
    """A plucked (decaying) or held (pad) note's envelope with a short attack."""
    attack = min(n, max(1, int(rng.uniform(*ATTACK_RANGE_S) * RATE_HZ)))
    env = np.ones(n)
    env[:attack] = np.linspace(0.0, 1.0, attack)
    if rng.random() < PLUCKED_PROBABILITY:
        env *= np.exp(-np.arange(n) / (rng.uniform(*DECAY_RANGE_S) * RATE_HZ))
    return env


def _midi_hz(note: float) -> float:
    return float(A4_HZ * 2 ** ((note - A4_MIDI) / 12))


def chords(n: int, rng: np.random.Generator) -> np.ndarray:
    """Music-like sound: a chord progression with a bass and a melody note, now and then a
    hi-hat on each chord."""
    x = np.zeros(n)
    at = 0
    hihat = rng.random() < HIHAT_PROBABILITY
    while at < n:
        length = min(n - at, max(1, int(rng.uniform(*CHORD_RANGE_S) * RATE_HZ)))
        root = int(rng.choice(ROOTS_MIDI))
        shape = CHORD_INTERVALS[int(rng.integers(len(CHORD_INTERVALS)))]
        seg = np.zeros(length)
        for step in shape:
            seg += _tone(_midi_hz(root + OCTAVE + step), length, rng) * _envelope(length, rng)
        seg += BASS_GAIN * _tone(_midi_hz(root - OCTAVE), length, rng) * _envelope(length, rng)
        melody = root + 2 * OCTAVE + int(rng.choice(shape))
        seg += MELODY_GAIN * _tone(_midi_hz(melody), length, rng) * _envelope(length, rng)
        if hihat:
            k = min(length, int(HIHAT_S * RATE_HZ))
            decay = np.exp(-np.arange(k) / (k * HIHAT_DECAY_FRACTION))
            seg[:k] += rng.standard_normal(k) * decay * HIHAT_GAIN
        x[at : at + length] = seg
        at += length
    return unit(x)


def fan(n: int, rng: np.random.Generator) -> np.ndarray:
    """A fan or an extractor: brown and pink noise, a blade tone with harmonics, a slow
    wobble in level."""
    t = np.arange(n) / RATE_HZ
    blade_hz = rng.uniform(*FAN_BLADE_RANGE_HZ)
    tone = np.zeros(n)
    for k in range(1, FAN_BLADE_HARMONICS + 1):
        tone += np.sin(2 * np.pi * blade_hz * k * t + rng.uniform(0, 2 * np.pi)) / k
    x = augment.brown_noise(n, rng) + FAN_PINK * augment.pink_noise(n, rng) + FAN_TONE * unit(tone)
    wobble = 1 + FAN_WOBBLE_DEPTH * np.sin(2 * np.pi * rng.uniform(*FAN_WOBBLE_RANGE_HZ) * t)
    return unit(x * wobble)


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise of one of NOISES."""
    if kind == "fan":
        return fan(n, rng)
    return augment.make_noise(kind, n, rng)


# -- talking -----------------------------------------------------------------------------


def _by_voice(pool: Sequence[Utterance]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, u in enumerate(pool):
        out.setdefault(u.voice, []).append(i)
    return out


def talk(
    n: int,
    rng: np.random.Generator,
    pool: Sequence[Utterance],
    talkers: int,
    gap_range_s: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, int]:
    """`talkers` voices taking turns for n samples: (audio, speech mask, utterances used).
    Each use of an utterance gets its own speed and gain; each talker their own level."""
    voices = _by_voice(pool)
    names = sorted(voices)
    chosen = [names[int(i)] for i in rng.choice(len(names), min(talkers, len(names)), False)]
    offsets = [float(rng.uniform(*TALKER_OFFSET_RANGE_DB)) for _ in chosen]
    x = np.zeros(n)
    mask = np.zeros(n, bool)
    at = int(rng.uniform(0.0, gap_range_s[1]) * RATE_HZ)
    used = 0
    turn = 0
    while at < n:
        who = turn % len(chosen)
        idxs = voices[chosen[who]]
        u = pool[idxs[int(rng.integers(len(idxs)))]]
        s = change_speed(u.samples.astype(np.float64), float(rng.uniform(*SPEED_RANGE)))
        s = unit(s) * _db(offsets[who] + float(rng.uniform(*UTTERANCE_GAIN_RANGE_DB)))
        s = s[: n - at]
        x[at : at + len(s)] += s
        mask[at : at + len(s)] = True
        used += 1
        at += len(s) + int(rng.uniform(*gap_range_s) * RATE_HZ)
        turn += 1
    return x, mask, used


# -- scenes ------------------------------------------------------------------------------


def _room(x: np.ndarray, rng: np.random.Generator, comp: Composition) -> np.ndarray:
    if rng.random() >= REVERB_PROBABILITY:
        return x
    ir = augment.room_impulse_response(
        float(rng.uniform(*RT60_RANGE_S)), rng, drr_db=float(rng.uniform(*DRR_RANGE_DB))
    )
    comp.reverberant_s += len(x) / RATE_HZ
    return augment.reverberate(x, ir)


def _under(
    x: np.ndarray,
    mask: np.ndarray,
    bed: np.ndarray,
    snr_db: float,
) -> np.ndarray:
    """x with `bed` (unit RMS) added at snr_db below x's power over its speech."""
    ps = augment.power(x[mask]) if mask.any() else augment.power(x)
    if ps == 0:
        return x
    return x + bed * np.sqrt(ps / 10 ** (snr_db / 10))


def _with_background_noise(
    x: np.ndarray, mask: np.ndarray, rng: np.random.Generator, comp: Composition
) -> np.ndarray:
    if rng.random() >= BACKGROUND_NOISE_PROBABILITY:
        return x
    kind = NOISES[int(rng.integers(len(NOISES)))]
    comp.noises[kind] += 1
    return _under(x, mask, noise(kind, len(x), rng), float(rng.uniform(*SPEECH_SNR_RANGE_DB)))


def scene(
    kind: str, n: int, rng: np.random.Generator, pool: Sequence[Utterance], comp: Composition
) -> np.ndarray:
    """One scene of n samples (float, in int16 units)."""
    if kind in ("speech", "conversation", "tv"):
        lo, hi = TALKERS_RANGE[kind]
        talkers = int(rng.integers(lo, hi + 1))
        gaps = PAUSE_RANGE_S if kind == "speech" else TURN_GAP_RANGE_S
        x, mask, used = talk(n, rng, pool, talkers, gaps)
        comp.utterances_used += used
        if kind == "tv":
            x = _under(x, mask, chords(n, rng), float(rng.uniform(*TV_MUSIC_SNR_RANGE_DB)))
        x = _with_background_noise(_room(x, rng, comp), mask, rng, comp)
        level = float(rng.uniform(*TALK_LEVEL_RANGE_DBFS))
        return _at_level(x, level, mask if mask.any() else None)
    if kind == "babble":
        voices = int(rng.integers(BABBLE_TALKERS_RANGE[0], BABBLE_TALKERS_RANGE[1] + 1))
        bed = augment.babble(n, rng, [u.samples for u in pool], voices=voices)
        if rng.random() < BABBLE_FOREGROUND_PROBABILITY:
            x, mask, used = talk(n, rng, pool, 1, PAUSE_RANGE_S)
            comp.utterances_used += used
            x = _under(x, mask, bed, float(rng.uniform(*BABBLE_FOREGROUND_SNR_RANGE_DB)))
        else:
            x = bed
        return _at_level(_room(x, rng, comp), float(rng.uniform(*BACKGROUND_LEVEL_RANGE_DBFS)))
    if kind == "music":
        x = _room(chords(n, rng), rng, comp)
        return _at_level(x, float(rng.uniform(*BACKGROUND_LEVEL_RANGE_DBFS)))
    if kind == "noise":
        name = NOISES[int(rng.integers(len(NOISES)))]
        comp.noises[name] += 1
        return _at_level(noise(name, n, rng), float(rng.uniform(*NOISE_LEVEL_RANGE_DBFS)))
    if kind == "quiet":
        if rng.random() < SILENCE_PROBABILITY:
            return np.zeros(n)
        tone = noise(str(rng.choice(["pink", "brown"])), n, rng)
        return _at_level(tone, float(rng.uniform(*ROOM_TONE_RANGE_DBFS)))
    raise WakewardError(f"unknown scene kind {kind!r}; known: {', '.join(SCENE_SHARES)}")


def _fade(x: np.ndarray) -> np.ndarray:
    k = min(len(x) // 2, int(FADE_S * RATE_HZ))
    if k:
        ramp = np.linspace(0.0, 1.0, k)
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    return x


def to_int16(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add the microphone floor, turn a scene down where it would clip, round to int16."""
    x = x + unit(rng.standard_normal(len(x))) * augment.FULL_SCALE * _db(augment.FLOOR_DBFS)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > PEAK_LIMIT:
        x = x * (PEAK_LIMIT / peak)
    return np.round(x).astype(np.int16)


def scenes(
    seconds: float,
    rng: np.random.Generator,
    pool: Sequence[Utterance],
    comp: Composition,
    shares: Mapping[str, float] | None = None,
) -> Iterator[np.ndarray]:
    """`seconds` of everyday audio, scene by scene (int16 at 16 kHz, end to end), noting
    what went into it in `comp`."""
    if not pool:
        raise WakewardError("everyday audio needs a pool of speech (none was synthesised)")
    shares = shares or SCENE_SHARES
    kinds = sorted(shares)
    weights = np.array([shares[k] for k in kinds], np.float64)
    if weights.sum() <= 0 or (weights < 0).any():
        raise WakewardError("scene shares must be >= 0 and not all zero")
    weights /= weights.sum()
    n = int(round(seconds * RATE_HZ))
    at = 0
    while at < n:
        kind = kinds[int(rng.choice(len(kinds), p=weights))]
        length = min(n - at, max(1, int(rng.uniform(*SCENE_RANGE_S) * RATE_HZ)))
        yield to_int16(_fade(scene(kind, length, rng, pool, comp)), rng)
        comp.seconds[kind] = comp.seconds.get(kind, 0.0) + length / RATE_HZ
        comp.scenes[kind] += 1
        at += length


def compose(
    seconds: float,
    rng: np.random.Generator,
    pool: Sequence[Utterance],
    shares: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, Composition]:
    """`seconds` of everyday audio in one array, and what went into it."""
    comp = Composition()
    parts = list(scenes(seconds, rng, pool, comp, shares))
    return (np.concatenate(parts) if parts else np.zeros(0, np.int16)), comp
