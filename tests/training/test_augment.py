"""Augmentation and resampling measured, not just run: SNR, RT60, DRR, spectra, speed, level."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from wakeward.errors import WakewardError
from wakeward_train import augment
from wakeward_train.augment import Augmentation, AugmentConfig
from wakeward_train.resample import change_speed, resample

RATE = 16000


def tone(freq_hz: float, seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.sin(2 * np.pi * freq_hz * t) * np.hanning(len(t))


def speechlike(seconds: float = 1.2, seed: int = 0) -> np.ndarray:
    """Harmonics of a gliding 120..180 Hz voice with syllable-rate bursts, as float samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 120 + 60 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 30))
    env = 0.2 + np.abs(np.sin(2 * np.pi * 4 * t))
    return x * env * 3000 + rng.normal(0, 30, len(t))


def dominant_hz(x: np.ndarray, rate: int = RATE) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def psd_slope(x: np.ndarray, lo_hz: float = 100, hi_hz: float = 4000) -> float:
    """Slope of log power against log frequency (averaged periodogram)."""
    seg = 4096
    frames = x[: len(x) // seg * seg].reshape(-1, seg) * np.hanning(seg)
    p = np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    f = np.fft.rfftfreq(seg, 1 / RATE)
    sel = (f >= lo_hz) & (f <= hi_hz)
    return float(np.polyfit(np.log10(f[sel]), np.log10(p[sel]), 1)[0])


# -- resampling --------------------------------------------------------------------------


@pytest.mark.parametrize("src", [22050, 8000, 44100, 16000])
def test_resample_keeps_a_tone_and_its_timing(src):
    x = tone(1000, 1.3, src) * 10000
    y = resample(x, src, RATE)
    assert len(y) == -(-len(x) * RATE // src)
    t = np.arange(len(y)) / RATE
    ref = (
        np.sin(2 * np.pi * 1000 * t)
        * 10000
        * np.interp(t, np.arange(len(x)) / src, np.hanning(len(x)))
    )
    err_db = 10 * np.log10(augment.power(y - ref) / augment.power(ref))
    assert err_db < -60


def test_resample_down_removes_what_would_alias():
    # 10 kHz at 22.05 kHz would fold to 6 kHz at 16 kHz; it must vanish instead
    y = resample(tone(10000, 1.0, 22050) * 10000, 22050, RATE)
    assert augment.level_dbfs(y) < -100


@pytest.mark.parametrize("factor", [0.8, 0.9, 1.1, 1.25])
def test_speed_scales_duration_and_pitch(factor):
    x = tone(1000, 2.0)
    y = change_speed(x, factor)
    assert len(y) == round(len(x) / factor)
    assert dominant_hz(y) == pytest.approx(1000 * factor, abs=2)


def test_speed_refuses_silly_factors():
    with pytest.raises(WakewardError, match="speed factor 5"):
        change_speed(np.zeros(100), 5)


# -- noise and SNR -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", augment.NOISE_KINDS)
@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.5, 20.0])
def test_mixed_noise_is_at_the_target_snr(kind, snr):
    rng = np.random.default_rng(3)
    speech = speechlike()
    lead = 4000
    signal = np.concatenate([np.zeros(lead), speech, np.zeros(3000)])
    span = (lead, lead + len(speech))
    noise = augment.make_noise(kind, len(signal), rng, talkers=[speechlike(0.7, 9)])
    mix, _ = augment.mix_at_snr(signal, noise, snr, span)
    added = (mix - signal)[span[0] : span[1]]  # measured on the output, not the scale used
    assert augment.snr_db(speech, added) == pytest.approx(snr, abs=0.1)


def test_the_whole_augmentation_lands_on_the_snr_and_level():
    """Through `apply` (reverb, noise, gain, int16): the same draw with and without noise
    differs by noise at the target SNR, and the speech sits at the target level."""
    speech = speechlike()
    base = Augmentation(
        speed=1.0,
        rt60_s=0.5,
        drr_db=3.0,
        noise="pink",
        snr_db=10.0,
        speech_level_dbfs=-30.0,
        lead_s=0.5,
        tail_s=0.3,
    )
    noisy = augment.apply(speech, base, np.random.default_rng(1))
    clean = augment.apply(
        speech,
        Augmentation(**{**base.__dict__, "noise": None, "snr_db": None}),
        np.random.default_rng(1),
    )
    assert noisy.gain_db == clean.gain_db
    a, b = clean.speech_start, clean.speech_end
    assert (a, b) == (8000, 8000 + len(speech))
    s = clean.samples[a:b].astype(float)
    n = noisy.samples[a:b].astype(float) - s
    assert augment.snr_db(s, n) == pytest.approx(10.0, abs=0.1)
    assert augment.level_dbfs(s) == pytest.approx(-30.0, abs=0.1)


def test_pink_and_brown_noise_have_their_spectral_slopes():
    rng = np.random.default_rng(0)
    assert psd_slope(augment.white_noise(5 * RATE, rng)) == pytest.approx(0.0, abs=0.1)
    assert psd_slope(augment.pink_noise(5 * RATE, rng)) == pytest.approx(-1.0, abs=0.1)
    assert psd_slope(augment.brown_noise(5 * RATE, rng)) == pytest.approx(-2.0, abs=0.15)


def test_hum_sits_on_the_mains_frequency():
    for seed in range(4):
        x = augment.hum(2 * RATE, np.random.default_rng(seed))
        spec = np.abs(np.fft.rfft(x))
        peaks = np.fft.rfftfreq(len(x), 1 / RATE)[np.argsort(spec)[-3:]]
        mains = 50 if all(abs(p / 50 - round(p / 50)) < 0.02 for p in peaks) else 60
        assert all(abs(p / mains - round(p / mains)) < 0.02 for p in peaks), peaks
        assert augment.power(x) == pytest.approx(1.0)


def test_babble_needs_talkers():
    with pytest.raises(WakewardError, match="babble noise needs speech"):
        augment.make_noise("babble", 100, np.random.default_rng(0))
    with pytest.raises(WakewardError, match="unknown noise kind 'rain'"):
        augment.make_noise("rain", 100, np.random.default_rng(0))


# -- reverberation -----------------------------------------------------------------------


@pytest.mark.parametrize("rt60", [0.25, 0.5, 0.9, 1.4])
def test_room_impulse_response_decays_at_its_rt60(rt60):
    for seed in range(3):
        for drr in (-3.0, 3.0, 10.0):
            ir = augment.room_impulse_response(rt60, np.random.default_rng(seed), drr_db=drr)
            late = ir[int(0.005 * RATE) :]  # after the direct sound
            assert augment.measure_rt60(late) == pytest.approx(rt60, rel=0.05)
            assert augment.measure_rt60(ir) == pytest.approx(rt60, rel=0.1)


def test_room_impulse_response_has_its_direct_to_reverberant_ratio():
    for drr in (-3.0, 0.0, 6.0):
        ir = augment.room_impulse_response(0.6, np.random.default_rng(2), drr_db=drr)
        assert 10 * np.log10(ir[0] ** 2 / np.sum(ir[1:] ** 2)) == pytest.approx(drr, abs=0.01)
        assert np.sum(ir**2) == pytest.approx(1.0)


def test_reverberation_spreads_a_click_by_the_room():
    ir = augment.room_impulse_response(0.4, np.random.default_rng(0))
    x = np.zeros(RATE)
    x[1000] = 1.0
    y = augment.reverberate(x, ir)
    assert len(y) == len(x)
    assert np.allclose(y[1000 : 1000 + len(ir)] / y[1000], ir / ir[0])


# -- one clip ----------------------------------------------------------------------------


def test_apply_is_reproducible_from_its_seed():
    speech = speechlike()
    cfg = AugmentConfig()
    talkers = [speechlike(0.8, 5)]

    def one(seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 2, 7])
        aug = augment.draw(cfg, rng, babble_ok=True)
        return augment.apply(speech, aug, rng, talkers).samples

    assert np.array_equal(one(1), one(1))
    assert not np.array_equal(one(1), one(2))


def test_apply_never_clips_and_shifts_by_the_lead():
    speech = speechlike() * 8  # loud
    aug = Augmentation(1.1, None, None, "white", 0.0, -3.0, 0.73, 0.2)
    clip = augment.apply(speech, aug, np.random.default_rng(0))
    assert clip.samples.dtype == np.int16
    assert np.abs(clip.samples.astype(int)).max() <= 32767
    assert clip.speech_start == int(0.73 * RATE)
    assert clip.speech_end - clip.speech_start == round(len(speech) / 1.1)
    assert clip.gain_db < 30 - augment.level_dbfs(speech)  # lowered to stay clear of clipping


def test_config_refuses_bad_ranges():
    with pytest.raises(WakewardError, match="snr_range_db: 20 > 0"):
        AugmentConfig(snr_range_db=(20, 0))
    with pytest.raises(WakewardError, match="noise_probability"):
        AugmentConfig(noise_probability=1.5)
    with pytest.raises(WakewardError, match="unknown kind 'rain'"):
        AugmentConfig(noise_kinds=("rain",))


def test_background_clips_sit_at_their_level():
    rng = np.random.default_rng(4)
    x = augment.background_clip("pink", 2.0, -30.0, rng)
    assert len(x) == 2 * RATE and x.dtype == np.int16
    assert augment.level_dbfs(x.astype(float)) == pytest.approx(-30.0, abs=0.1)
    quiet = augment.background_clip("silence", 1.0, -30.0, rng)
    assert augment.level_dbfs(quiet.astype(float)) < -70


# -- speaker augmentation ----------------------------------------------------------------


def vowel(
    seconds: float = 1.0,
    f0_hz: tuple[float, float] = (120.0, 120.0),
    formants: tuple[tuple[float, float], ...] = ((700.0, 80.0), (1800.0, 120.0)),
) -> np.ndarray:
    """A pulse train (F0 gliding from f0_hz[0] to f0_hz[1]) through two-pole resonators
    (centre_hz, bandwidth_hz), made additively: each harmonic at the resonators' gain."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = np.linspace(*f0_hz, len(t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = np.zeros(len(t))
    for k in range(1, int(7800 / max(f0_hz)) + 1):
        f = k * f0
        gain = np.ones(len(t))
        for centre, bandwidth in formants:
            gain *= centre**2 / np.sqrt((centre**2 - f**2) ** 2 + (bandwidth * f) ** 2)
        x += gain * np.sin(k * phase)
    return x / np.sqrt(augment.power(x)) * 5000


FORMANT_BANDS_HZ = ((350.0, 1250.0), (1250.0, 3000.0))


def formants_hz(x: np.ndarray) -> np.ndarray:
    """Per band, the power-weighted mean frequency of the long-term spectrum where it is
    within 3 dB of the band's peak (with a gliding F0 the harmonics fill the envelope in)."""
    seg = 1024
    frames = np.lib.stride_tricks.sliding_window_view(x, seg)[::128] * np.hanning(seg)
    p = np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    f = np.fft.rfftfreq(seg, 1 / RATE)
    out = []
    for lo, hi in FORMANT_BANDS_HZ:
        sel = (f >= lo) & (f <= hi)
        top = p[sel] >= p[sel].max() / 2
        out.append(np.sum(f[sel][top] * p[sel][top]) / np.sum(p[sel][top]))
    return np.array(out)


def f0_hz(x: np.ndarray) -> float:
    """F0 of the middle half: the autocorrelation's highest peak between 2.5 and 20 ms."""
    mid = x[len(x) // 4 : 3 * len(x) // 4]
    ac = np.fft.irfft(np.abs(np.fft.rfft(mid, 2 * len(mid))) ** 2)[: RATE // 50]
    lo = RATE // 400
    i = lo + int(np.argmax(ac[lo:]))
    a, b, c = ac[i - 1], ac[i], ac[i + 1]
    return RATE / (i + 0.5 * (a - c) / (a - 2 * b + c))  # parabolic interpolation


def harmonic_share(x: np.ndarray, f0: float) -> float:
    """Share of the power within 12 Hz of a multiple of f0: a stretch that tore the
    waveform (clicks, phasiness) would spread power between the harmonics."""
    mid = x[len(x) // 8 : -len(x) // 8]
    p = np.abs(np.fft.rfft(mid * np.hanning(len(mid)))) ** 2
    f = np.fft.rfftfreq(len(mid), 1 / RATE)
    near = np.abs(f / f0 - np.round(f / f0)) * f0 < 12
    return float(p[near].sum() / p.sum())


@pytest.mark.parametrize("alpha", [0.85, 0.92, 1.08, 1.18])
def test_vtlp_moves_the_formants_by_alpha_and_keeps_the_pitch(alpha):
    gliding = vowel(1.0, (100.0, 140.0))
    moved = augment.warp_formants(gliding, alpha)
    assert len(moved) == len(gliding)
    assert formants_hz(moved) / formants_hz(gliding) == pytest.approx([alpha, alpha], rel=0.03)
    steady = vowel(1.0)
    out = augment.warp_formants(steady, alpha)
    assert f0_hz(out) == pytest.approx(f0_hz(steady), rel=0.005)
    assert harmonic_share(out, 120.0) > 0.999


@pytest.mark.parametrize("semitones", [-4.0, -1.5, 2.5, 4.0])
def test_pitch_shift_moves_f0_and_keeps_formants_and_length(semitones):
    factor = 2 ** (semitones / 12)
    steady = vowel(1.0)
    out = augment.shift_pitch(steady, semitones)
    assert len(out) == len(steady)
    assert f0_hz(out) == pytest.approx(f0_hz(steady) * factor, rel=0.01)
    assert harmonic_share(out, 120.0 * factor) > 0.99
    gliding = vowel(1.0, (100.0, 140.0))
    kept = formants_hz(augment.shift_pitch(gliding, semitones)) / formants_hz(gliding)
    assert kept == pytest.approx([1.0, 1.0], rel=0.04)


def gated(x: np.ndarray, on_s: Sequence[tuple[float, float]]) -> np.ndarray:
    gate = np.zeros(len(x))
    for a, b in on_s:
        gate[int(a * RATE) : int(b * RATE)] = 1.0
    return x * gate


def onsets_s(x: np.ndarray) -> list[float]:
    """Where the power, averaged over a centred 20 ms window, rises through half its peak."""
    width = RATE // 50
    env = np.convolve(x * x, np.ones(width) / width, "same")
    up = np.flatnonzero((env[1:] >= env.max() / 2) & (env[:-1] < env.max() / 2)) + 1
    return [i / RATE for i in up]


@pytest.mark.parametrize("factor", [0.85, 0.93, 1.2])
def test_tempo_changes_the_timing_and_not_the_pitch(factor):
    steady = vowel(1.6)
    out = augment.change_tempo(steady, factor)
    assert len(out) == round(len(steady) / factor)
    assert f0_hz(out) == pytest.approx(f0_hz(steady), rel=0.01)
    assert harmonic_share(out, 120.0) > 0.99
    bursts = augment.change_tempo(gated(steady, [(0.2, 0.5), (1.0, 1.3)]), factor)
    assert onsets_s(bursts) == pytest.approx([0.2 / factor, 1.0 / factor], abs=0.012)
    gliding = vowel(1.0, (100.0, 140.0))
    kept = formants_hz(augment.change_tempo(gliding, factor)) / formants_hz(gliding)
    assert kept == pytest.approx([1.0, 1.0], rel=0.03)


EDGE_SAMPLES = 4000  # cut from each end before measuring: the filters' start and end


def sines(freqs_hz: Sequence[float]) -> np.ndarray:
    """Equal sines (whole Hz), 1 s plus the edges either side."""
    t = np.arange(RATE + 2 * EDGE_SAMPLES) / RATE
    return 1000 * sum(np.sin(2 * np.pi * f * t + f) for f in freqs_hz)


def middle(x: np.ndarray) -> np.ndarray:
    return x[EDGE_SAMPLES:-EDGE_SAMPLES]


def sine_levels_db(x: np.ndarray, freqs_hz: Sequence[float]) -> np.ndarray:
    """Level of each (whole-Hz) sine in a 1 s-multiple signal, from its own FFT bin."""
    spec = np.abs(np.fft.rfft(x)) / len(x)
    return 20 * np.log10(spec[np.round(np.asarray(freqs_hz) * len(x) / RATE).astype(int)])


def test_microphone_response_is_the_one_drawn():
    """Textbook responses, written here independently: 2nd-order Butterworth low cut,
    4th-order Butterworth roll-off, peaking bands with half their dB gain at +-bw/2."""
    mic = augment.MicColour(200.0, 5000.0, ((1000.0, 6.0, 1.0), (2500.0, -6.0, 0.5)))
    freqs = np.array([70.0, 100.0, 200.0, 400.0, 707.0, 1000.0, 1414.0, 2500.0, 5000.0, 7000.0])
    octaves = np.log2
    expected = (
        -10 * np.log10(1 + (200 / freqs) ** 4)
        - 10 * np.log10(1 + (freqs / 5000) ** 8)
        + 6.0 * 0.5 ** ((octaves(freqs / 1000) / 0.5) ** 2)
        - 6.0 * 0.5 ** ((octaves(freqs / 2500) / 0.25) ** 2)
    )
    assert augment.mic_response_db(mic, freqs) == pytest.approx(expected, abs=1e-9)
    assert augment.mic_response_db(mic, [200.0, 5000.0]) == pytest.approx([-3.01, -3.01], abs=0.01)
    x = sines(freqs)
    measured = sine_levels_db(middle(augment.colour_mic(x, mic)), freqs) - sine_levels_db(
        middle(x), freqs
    )
    offset = measured - expected  # colour_mic keeps the input's RMS: one common offset
    assert np.ptp(offset) < 0.05, offset


@pytest.mark.parametrize("seed", range(4))
def test_drawn_microphones_filter_as_designed(seed):
    mic = augment.draw_mic(augment.SpeakerAugment(saturation_probability=0.0), rng(seed))
    cfg = augment.SpeakerAugment()
    assert cfg.low_cut_range_hz[0] <= mic.low_cut_hz <= cfg.low_cut_range_hz[1]
    assert cfg.high_cut_range_hz[0] <= mic.high_cut_hz <= cfg.high_cut_range_hz[1]
    assert 1 <= len(mic.peaks) <= 3
    assert all(abs(gain) <= 6.0 for _, gain, _ in mic.peaks)
    freqs = np.array([60.0, 150.0, 300.0, 600.0, 1200.0, 2400.0, 3600.0, 4800.0, 6400.0])
    x = sines(freqs)
    measured = sine_levels_db(middle(augment.colour_mic(x, mic)), freqs) - sine_levels_db(
        middle(x), freqs
    )
    offset = measured - augment.mic_response_db(mic, freqs)
    assert np.ptp(offset) < 0.05, (mic, offset)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_saturation_adds_odd_harmonics_within_the_peak():
    x = tone(500, 1.0) * 20000
    plain = augment.MicColour(20.0, 7900.0)
    clean = augment.colour_mic(x, plain)
    driven = augment.colour_mic(x, augment.MicColour(20.0, 7900.0, (), 3.0))
    for y in (clean, driven):
        assert np.max(np.abs(y)) <= np.max(np.abs(x)) + 1e-9
    assert augment.power(driven) == pytest.approx(augment.power(x))

    def harmonics_db(y: np.ndarray) -> np.ndarray:
        return sine_levels_db(y, [1000, 1500]) - sine_levels_db(y, [500])

    assert np.all(harmonics_db(clean) < -80)
    second, third = harmonics_db(driven)
    assert third > -30 and second < -80  # tanh is odd: no even harmonics


def test_early_room_is_its_reflections_and_nothing_after():
    room = augment.EarlyRoom(((1.0, 0.6), (4.5, 0.3), (11.0, 0.2)))
    ir = augment.early_room_impulse_response(room)
    assert len(ir) == 177 and np.count_nonzero(ir) == 4
    assert ir[[0, 16, 72, 176]] == pytest.approx([1.0, 0.6, 0.3, 0.2])
    x = np.zeros(RATE)
    x[4000] = 1000.0
    y = augment.early_room(x, room)
    assert len(y) == len(x)
    assert np.allclose(y[4000 : 4000 + len(ir)] / y[4000], ir)
    assert np.allclose(y[:4000], 0, atol=1e-9) and np.allclose(y[4000 + len(ir) :], 0, atol=1e-9)


def test_a_desk_reflection_combs_the_spectrum():
    """One reflection of gain g after d: |1 + g exp(-2 pi i f d)|, peaks at k/d, notches
    halfway between."""
    delay_s, g = 2e-3, 0.5  # 32 samples
    freqs = np.array([250.0, 500.0, 750.0, 1000.0, 1250.0])  # notch, peak, notch, peak...
    x = sines(freqs)
    y = augment.early_room(x, augment.EarlyRoom(((delay_s * 1000, g),)))
    measured = sine_levels_db(middle(y), freqs) - sine_levels_db(middle(x), freqs)
    expected = 20 * np.log10(np.abs(1 + g * np.exp(-2j * np.pi * freqs * delay_s)))
    assert np.ptp(measured - expected) < 0.1  # one common offset: the RMS is kept
    assert measured[1] - measured[0] == pytest.approx(20 * np.log10(1.5 / 0.5), abs=0.1)


def all_parts(**kw: float) -> augment.SpeakerAugment:
    on = {f"{p}_probability": 1.0 for p in augment.SPEAKER_PARTS}
    return augment.SpeakerAugment(**{**on, "saturation_probability": 1.0, **kw})


def test_speaker_augment_is_reproducible_and_records_what_it_did():
    x = speechlike(1.0)
    out1, rec1 = augment.speaker_augment(x, rng(7), all_parts())
    out2, rec2 = augment.speaker_augment(x, rng(7), all_parts())
    assert np.array_equal(out1, out2) and rec1 == rec2
    assert json.loads(json.dumps(rec1)) == rec1
    assert set(rec1) == {"tempo", "pitch_semitones", "vtlp_alpha", "mic", "room"}
    assert all(v is not None for v in rec1.values())
    assert len(out1) == round(len(x) / rec1["tempo"])
    other, _ = augment.speaker_augment(x, rng(8), all_parts())
    assert len(other) != len(out1) or not np.array_equal(other, out1)


def test_speaker_augment_off_and_only():
    x = speechlike(1.0)
    same, rec = augment.speaker_augment(x, rng(1), augment.SpeakerAugment.off())
    assert np.array_equal(same, x) and all(v is None for v in rec.values())
    full = [augment.speaker_augment(x, rng(s), all_parts())[1] for s in range(3)]
    for part, key in [("vtlp", "vtlp_alpha"), ("pitch", "pitch_semitones"), ("room", "room")]:
        cfg = augment.SpeakerAugment.only(part)
        assert cfg.parts == (part,)
        cfg = replace(cfg, **{f"{part}_probability": 1.0})
        for seed in range(3):
            out, rec = augment.speaker_augment(x, rng(seed), cfg)
            assert [k for k, v in rec.items() if v is not None] == [key]
            assert rec[key] == full[seed][key]  # the same draw as with every part on
            assert len(out) == len(x) and not np.allclose(out, x)
    assert augment.SpeakerAugment().without("mic", "room").parts == ("tempo", "pitch", "vtlp")
    with pytest.raises(WakewardError, match="unknown speaker augmentation part 'echo'"):
        augment.SpeakerAugment.only("echo")


@pytest.mark.parametrize("part", augment.SPEAKER_PARTS)
def test_each_part_keeps_the_scale_and_never_clips(part):
    loud = np.clip(speechlike(1.0) * 4, -32767, 32767).astype(np.int16)
    cfg = replace(augment.SpeakerAugment.only(part), **{f"{part}_probability": 1.0})
    for seed in range(3):
        out, rec = augment.speaker_augment(loud, rng(seed), cfg)
        assert out.dtype == np.float64 and np.all(np.isfinite(out))
        assert np.max(np.abs(out)) <= np.max(np.abs(loud.astype(float))) + 1e-6
        assert augment.power(out) <= augment.power(loud) * (1 + 1e-9)
        assert augment.level_dbfs(out) > augment.level_dbfs(loud) - 6
        n = round(len(loud) / rec["tempo"]) if part == "tempo" else len(loud)
        assert len(out) == n
    silent, _ = augment.speaker_augment(np.zeros(RATE), rng(0), cfg)
    assert not np.any(silent)


def test_speaker_augment_refuses_bad_configs():
    with pytest.raises(WakewardError, match="vtlp_probability: 2"):
        augment.SpeakerAugment(vtlp_probability=2)
    with pytest.raises(WakewardError, match="tempo_range: 1.2 > 0.9"):
        augment.SpeakerAugment(tempo_range=(1.2, 0.9))
    with pytest.raises(WakewardError, match="formant factor 3"):
        augment.SpeakerAugment(vtlp_range=(1.0, 3))
    with pytest.raises(WakewardError, match="reverberation"):
        augment.SpeakerAugment(reflection_delay_range_ms=(1.0, 80.0))
    with pytest.raises(WakewardError, match="microphone cuts"):
        augment.MicColour(500.0, 400.0)
    assert json.loads(json.dumps(augment.SpeakerAugment().to_json()))["vtlp_range"] == [0.85, 1.18]
