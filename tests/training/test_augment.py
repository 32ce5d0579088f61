"""Augmentation and resampling measured, not just run: SNR, RT60, DRR, spectra, speed, level."""

from __future__ import annotations

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
